/* Reading the answers of the API client's requests: the body, status and
 * Retry-After of a finished request, whether it was cancelled, and an error
 * answer as a reason plus details. Everything the client got from a server
 * or a library passes through here before anything logs, records or
 * reports it, because an API or a proxy may echo the token back: this is
 * the one place that takes it out. It reads answers and nothing else: it
 * must not touch a job, a batch or the queue.
 *
 * It is also where an answer that is not the API's is told apart, so that
 * every stage sees it the same way:
 * - a body is read up to RESPONSE_MAX_BYTES and no further (one declared
 *   longer is not read at all): past it, a 2xx is no answer (a transport
 *   error, as if the connection had failed), and an error answer keeps
 *   its status with a body that says it was not read;
 * - a redirect is never followed (rd_client_new_message() sets
 *   SOUP_MESSAGE_NO_REDIRECT on every request, so that the token never
 *   goes to another host whatever the libsoup): it is a final answer whose
 *   body names where it pointed;
 * - a 2xx that neither is JSON by its Content-Type nor looks like it (the
 *   login page of a captive portal, a proxy's octet-stream) is no answer
 *   either, with a reason that names its Content-Type. */

#include "client-private.h"

#include <string.h>

/* What the token becomes in any text a server or a library gave us. */
#define REDACTED "[redacted]"

/* The API's answers are small JSON documents (a video's verdict with its
 * children, the longest, is some hundred kB): a body longer than this is
 * not read into memory. */
#define RESPONSE_MAX_BYTES (16 * 1024 * 1024)
#define RESPONSE_MAX_TEXT "16 MB"
/* Read at a time. */
#define RESPONSE_CHUNK_BYTES (64 * 1024)

/* ---- the token in other people's text ---- */

/* An API or a proxy may echo the request's Authorization header in its
 * error text; whatever the client got from elsewhere passes through here
 * before it is logged, recorded or handed to a callback. */
static gchar *
client_redact (RdClient * client, const gchar * text)
{
  GString *clean;

  if (text == NULL)
    return NULL;
  clean = g_string_new (text);
  if (client->token != NULL && client->token[0] != '\0')
    g_string_replace (clean, client->token, REDACTED, 0);
  return g_string_free (clean, FALSE);
}

/* The same for an answer's raw bytes, which need not be text. */
static GByteArray *
client_redact_bytes (RdClient * client, const gchar * data, gsize length)
{
  GByteArray *clean = g_byte_array_sized_new (length);
  gsize token_length = client->token ? strlen (client->token) : 0;
  gsize i = 0;

  while (i < length) {
    if (token_length > 0 && length - i >= token_length
        && memcmp (data + i, client->token, token_length) == 0) {
      g_byte_array_append (clean, (const guint8 *) REDACTED, strlen (REDACTED));
      i += token_length;
    } else {
      g_byte_array_append (clean, (const guint8 *) data + i, 1);
      i++;
    }
  }
  return clean;
}

void
rd_client_redact_error (RdClient * client, GError * error)
{
  gchar *clean;

  if (error == NULL)
    return;
  clean = client_redact (client, error->message);
  g_free (error->message);
  error->message = clean;
}

static void client_redact_structure (RdClient * client, GstStructure * s);

/* Strings, and the strings inside structures, arrays and lists. */
static void
client_redact_value (RdClient * client, GValue * value)
{
  GType type = G_VALUE_TYPE (value);

  if (type == G_TYPE_STRING) {
    g_value_take_string (value, client_redact (client,
            g_value_get_string (value)));
  } else if (type == GST_TYPE_STRUCTURE) {
    const GstStructure *s = gst_value_get_structure (value);
    GstStructure *clean;

    if (s == NULL)
      return;
    clean = gst_structure_copy (s);
    client_redact_structure (client, clean);
    g_value_take_boxed (value, clean);
  } else if (type == GST_TYPE_ARRAY || type == GST_TYPE_LIST) {
    gboolean is_array = type == GST_TYPE_ARRAY;
    guint i, n = is_array ? gst_value_array_get_size (value) :
        gst_value_list_get_size (value);
    GValue clean = G_VALUE_INIT;

    g_value_init (&clean, type);
    for (i = 0; i < n; i++) {
      const GValue *from = is_array ? gst_value_array_get_value (value, i) :
          gst_value_list_get_value (value, i);
      GValue element = G_VALUE_INIT;

      g_value_init (&element, G_VALUE_TYPE (from));
      g_value_copy (from, &element);
      client_redact_value (client, &element);
      if (is_array)
        gst_value_array_append_and_take_value (&clean, &element);
      else
        gst_value_list_append_and_take_value (&clean, &element);
    }
    g_value_unset (value);
    g_value_init (value, type);
    g_value_copy (&clean, value);
    g_value_unset (&clean);
  }
}

static gboolean
redact_field (GQuark field, GValue * value, gpointer client)
{
  client_redact_value (client, value);
  return TRUE;
}

static void
client_redact_structure (RdClient * client, GstStructure * s)
{
  gst_structure_map_in_place (s, redact_field, client);
}

void
rd_response_clear (Response * response)
{
  g_clear_pointer (&response->body, g_bytes_unref);
  g_clear_error (&response->error);
  g_clear_pointer (&response->retry_after, g_free);
}

/* ---- sending, and reading the body within bounds ---- */

typedef struct
{
  GInputStream *stream;
  GByteArray *body;
  gboolean too_large;           /* longer than RESPONSE_MAX_BYTES: not kept */
  gboolean at_end;              /* the body was read to its end */
  GError *error;                /* the read's, while the stream closes */
} Reading;

static void
reading_free (Reading * reading)
{
  g_clear_object (&reading->stream);
  if (reading->body)
    g_byte_array_unref (reading->body);
  g_clear_error (&reading->error);
  g_free (reading);
}

static void
reading_closed (GObject * source, GAsyncResult * result, gpointer user_data)
{
  GTask *task = user_data;
  Reading *reading = g_task_get_task_data (task);

  /* What was read is what counts: a body read to its end is the answer
   * (a 202 that arrived as the client stops must still be recorded), and
   * one left unread (too large) does not close cleanly. */
  g_input_stream_close_finish (G_INPUT_STREAM (source), result, NULL);
  if (reading->error) {
    g_task_return_error (task, g_steal_pointer (&reading->error));
  } else if (reading->too_large) {
    g_task_return_pointer (task, NULL, NULL);
  } else {
    g_task_return_pointer (task,
        g_byte_array_free_to_bytes (g_steal_pointer (&reading->body)),
        (GDestroyNotify) g_bytes_unref);
  }
  g_object_unref (task);
}

/* Closing early drops the connection rather than reading the rest. It
 * does so with a cancellable already cancelled: libsoup 3.2.3 would skip
 * the unread rest of the body, and when that would block it waits on a
 * source made from the wrong I/O object (soup-client-input-stream.c,
 * close_async_ready: the HTTP/1 I/O taken for its inner data, the heap
 * overflow of docs/client.md "libsoup 3.2"); cancelled, the skip fails at
 * once, the message's I/O finishes, and the connection is not reused. */
static void
reading_close (GTask * task)
{
  Reading *reading = g_task_get_task_data (task);
  g_autoptr (GCancellable) drop = NULL;

  if (!reading->at_end) {
    drop = g_cancellable_new ();
    g_cancellable_cancel (drop);
  }
  g_input_stream_close_async (reading->stream, G_PRIORITY_DEFAULT,
      drop ? drop : g_task_get_cancellable (task), reading_closed, task);
}

static void reading_next (GTask * task);

static void
reading_got_chunk (GObject * source, GAsyncResult * result, gpointer user_data)
{
  GTask *task = user_data;
  Reading *reading = g_task_get_task_data (task);
  g_autoptr (GBytes) chunk = NULL;
  gsize size;

  chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result,
      &reading->error);
  if (chunk == NULL || (size = g_bytes_get_size (chunk)) == 0) {
    reading->at_end = chunk != NULL;
    reading_close (task);
  } else if (reading->body->len + size > RESPONSE_MAX_BYTES) {
    reading->too_large = TRUE;
    g_byte_array_set_size (reading->body, 0);
    reading_close (task);
  } else {
    g_byte_array_append (reading->body, g_bytes_get_data (chunk, NULL), size);
    reading_next (task);
  }
}

static void
reading_next (GTask * task)
{
  Reading *reading = g_task_get_task_data (task);

  g_input_stream_read_bytes_async (reading->stream, RESPONSE_CHUNK_BYTES,
      G_PRIORITY_DEFAULT, g_task_get_cancellable (task), reading_got_chunk,
      task);
}

static void
reading_sent (GObject * source, GAsyncResult * result, gpointer user_data)
{
  GTask *task = user_data;
  Reading *reading = g_task_get_task_data (task);
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION
      (source), result);
  SoupMessageHeaders *headers;
  GError *error = NULL;

  reading->stream = soup_session_send_finish (SOUP_SESSION (source), result,
      &error);
  if (reading->stream == NULL) {
    g_task_return_error (task, error);
    g_object_unref (task);
    return;
  }
  headers = soup_message_get_response_headers (msg);
  if (soup_message_headers_get_encoding (headers) ==
      SOUP_ENCODING_CONTENT_LENGTH
      && soup_message_headers_get_content_length (headers) >
      RESPONSE_MAX_BYTES) {
    reading->too_large = TRUE;
    reading_close (task);
    return;
  }
  reading_next (task);
}

/* Sends @msg and reads its answer, at most RESPONSE_MAX_BYTES of it, on
 * the client's context; @callback gets a result for rd_response_read()
 * whose source object is the session. */
void
rd_response_send (RdClient * client, SoupMessage * msg,
    GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (client->session, client->cancellable, callback,
      user_data);
  Reading *reading = g_new0 (Reading, 1);

  reading->body = g_byte_array_new ();
  g_task_set_source_tag (task, rd_response_send);
  g_task_set_task_data (task, reading, (GDestroyNotify) reading_free);
  soup_session_send_async (client->session, msg, G_PRIORITY_DEFAULT,
      client->cancellable, reading_sent, task);
}

/* ---- answers that are not the API's ---- */

static gboolean
content_type_is_json (const gchar * type)
{
  return type != NULL && (g_ascii_strcasecmp (type, "application/json") == 0
      || g_ascii_strcasecmp (type, "text/json") == 0
      || g_str_has_suffix (type, "+json"));
}

/* Whether @body begins as a JSON object or array would (after white space
 * and a byte order mark); the parsers say the rest. */
static gboolean
body_looks_like_json (GBytes * body)
{
  gsize length = 0, i = 0;
  const gchar *data = body ? g_bytes_get_data (body, &length) : NULL;

  if (length >= 3 && memcmp (data, "\xef\xbb\xbf", 3) == 0)
    i = 3;
  while (i < length && g_ascii_isspace (data[i]))
    i++;
  return i < length && (data[i] == '{' || data[i] == '[');
}

/* Where a redirect pointed, as scheme://host:port only: the rest of a
 * Location (its path, its query) may carry what is not ours to log. */
static gchar *
redirect_target (SoupMessage * msg)
{
  const gchar *location =
      soup_message_headers_get_one (soup_message_get_response_headers (msg),
      "Location");
  g_autoptr (GUri) target = NULL;

  if (location == NULL || location[0] == '\0')
    return g_strdup ("nowhere (no Location)");
  target = g_uri_parse_relative (soup_message_get_uri (msg), location,
      G_URI_FLAGS_NONE, NULL);
  if (target == NULL || g_uri_get_host (target) == NULL)
    return g_strdup ("a Location that is not a URL");
  return g_uri_join (G_URI_FLAGS_NONE, g_uri_get_scheme (target), NULL,
      g_uri_get_host (target), g_uri_get_port (target), "", NULL, NULL);
}

/* An error answer whose own body is replaced by why it was not read; the
 * error parser turns it into "HTTP <status>: <why>". */
static void
response_replace_body (Response * response, const gchar * why)
{
  g_clear_pointer (&response->body, g_bytes_unref);
  response->body = g_bytes_new (why, strlen (why));
}

/* A 2xx that is not the API's answer: as if no answer had come. */
static void
response_no_answer (RdClient * client, Response * response, gint code,
    const gchar * why)
{
  response->error = g_error_new_literal (G_IO_ERROR, code, why);
  rd_client_redact_error (client, response->error);
  response->status = 0;
  g_clear_pointer (&response->body, g_bytes_unref);
}

/* The 2xx of @msg in @response, if it is not JSON by its Content-Type nor
 * by its first byte, is no answer: its reason names the type and begins
 * the text (the title of a portal's login page, say). */
static void
response_check_content_type (RdClient * client, SoupMessage * msg,
    Response * response)
{
  const gchar *type = soup_message_headers_get_content_type
      (soup_message_get_response_headers (msg), NULL);
  g_autofree gchar *excerpt = NULL;
  g_autofree gchar *why = NULL;
  g_autoptr (GstStructure) details = NULL;
  Response plain = { 0, };

  if (type == NULL || content_type_is_json (type)
      || body_looks_like_json (response->body))
    return;
  plain.status = response->status;
  plain.body = response->body;
  rd_response_parse_error (client, &plain, &excerpt, &details);
  why = g_strdup_printf ("the answer is %s, not the API's JSON: a captive "
      "portal or a proxy answered in its place? (%s)", type, excerpt);
  response_no_answer (client, response, G_IO_ERROR_FAILED, why);
}

/* A transport error's text may quote what a proxy said: redacted here,
 * before anything reads it. */
void
rd_response_read (RdClient * client, SoupSession * session,
    GAsyncResult * result, SoupMessage * msg, Response * response)
{
  Reading *reading = NULL;

  if (g_task_is_valid (result, session)
      && g_task_get_source_tag (G_TASK (result)) == rd_response_send) {
    reading = g_task_get_task_data (G_TASK (result));
    response->body = g_task_propagate_pointer (G_TASK (result),
        &response->error);
  } else {
    /* sent without rd_response_send(): read whole, as libsoup does */
    response->body = soup_session_send_and_read_finish (session, result,
        &response->error);
  }
  rd_client_redact_error (client, response->error);
  response->status = response->error ? 0 : soup_message_get_status (msg);
  response->retry_after =
      g_strdup (soup_message_headers_get_one
      (soup_message_get_response_headers (msg), "Retry-After"));
  if (response->status == 0)
    return;

  if (reading && reading->too_large
      && SOUP_STATUS_IS_SUCCESSFUL (response->status)) {
    g_autofree gchar *why = g_strdup_printf ("the answer (HTTP %u) is "
        "larger than " RESPONSE_MAX_TEXT ", which no answer of the API is; "
        "it was not read", response->status);

    response_no_answer (client, response, G_IO_ERROR_MESSAGE_TOO_LARGE, why);
  } else if (reading && reading->too_large) {
    response_replace_body (response, "an answer larger than "
        RESPONSE_MAX_TEXT ", not read");
  } else if (SOUP_STATUS_IS_REDIRECTION (response->status)) {
    g_autofree gchar *target = redirect_target (msg);
    g_autofree gchar *why = g_strdup_printf ("a redirect to %s, not "
        "followed: the token is only sent to the host of api-url (set "
        "api-url to the address that answers)", target);
    g_autofree gchar *clean = client_redact (client, why);

    response_replace_body (response, clean);
  } else if (SOUP_STATUS_IS_SUCCESSFUL (response->status)) {
    response_check_content_type (client, msg, response);
  }
}

GstClockTime
rd_response_parse_retry_after (const gchar * value)
{
  g_autofree gchar *text = value ? g_strstrip (g_strdup (value)) : NULL;
  g_autoptr (GDateTime) date = NULL;
  g_autoptr (GDateTime) now = NULL;
  guint64 seconds;
  GTimeSpan diff;

  if (text == NULL || text[0] == '\0')
    return GST_CLOCK_TIME_NONE;
  if (g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT64, &seconds, NULL))
    return MIN (seconds, (G_MAXUINT64 - 1) / GST_SECOND) * GST_SECOND;
  if (g_ascii_isdigit (text[0]))
    return GST_CLOCK_TIME_NONE;
  date = soup_date_time_new_from_http_string (text);
  if (date == NULL)
    return GST_CLOCK_TIME_NONE;
  now = g_date_time_new_now_utc ();
  diff = g_date_time_difference (date, now);
  return diff <= 0 ? 0 : (GstClockTime) diff *GST_USECOND;
}

const gchar *
rd_response_data (const Response * response, gssize * length)
{
  gsize size = 0;
  const gchar *data = NULL;

  if (response->body)
    data = g_bytes_get_data (response->body, &size);
  *length = (gssize) size;
  return data ? data : "";
}

gboolean
rd_response_cancelled (RdClient * client, const Response * response)
{
  return client->stopping
      || g_error_matches (response->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* The one place error answers are read, so the one place the token an
 * API or proxy may echo back is taken out of them. */
void
rd_response_parse_error (RdClient * client, const Response * response,
    gchar ** reason, GstStructure ** details)
{
  g_autofree gchar *text = NULL;
  g_autoptr (GByteArray) raw = NULL;
  gssize length;
  const gchar *data;

  if (response->status == 0) {
    *reason = g_strdup_printf ("network error: %s", response->error ?
        response->error->message : "no answer");
    *details = NULL;
    return;
  }
  data = rd_response_data (response, &length);
  /* redacted before parsing too: the parser shortens long texts, and a cut
   * inside the token would leave a piece of it that no later pass finds */
  raw = client_redact_bytes (client, data, length);
  rd_results_parse_error (response->status, (const gchar *) raw->data,
      raw->len, &text, details);
  *reason = client_redact (client, text);
  if (*details)
    client_redact_structure (client, *details);
}
