/* Reading the answers of the API client's requests: the body, status and
 * Retry-After of a finished request, whether it was cancelled, and an error
 * answer as a reason plus details. Everything the client got from a server
 * or a library passes through here before anything logs, records or
 * reports it, because an API or a proxy may echo the token back: this is
 * the one place that takes it out. It reads answers and nothing else: it
 * must not touch a job, a batch or the queue. */

#include "client-private.h"

#include <string.h>

/* What the token becomes in any text a server or a library gave us. */
#define REDACTED "[redacted]"

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

/* A transport error's text may quote what a proxy said: redacted here,
 * before anything reads it. */
void
rd_response_read (RdClient * client, SoupSession * session,
    GAsyncResult * result, SoupMessage * msg, Response * response)
{
  response->body =
      soup_session_send_and_read_finish (session, result, &response->error);
  rd_client_redact_error (client, response->error);
  response->status = response->error ? 0 : soup_message_get_status (msg);
  response->retry_after =
      g_strdup (soup_message_headers_get_one
      (soup_message_get_response_headers (msg), "Retry-After"));
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
