/* The emulator's own tests: every endpoint, every documented error, every
 * knob and fault, driven with libsoup client requests against an embedded
 * emulator on a free loopback port, plus the program's first line. Waits on
 * emulator time (processing delays) poll with a deadline; nothing sleeps
 * to synchronise. */
#include "emulator.h"

#include <archive.h>
#include <archive_entry.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>

#define TOKEN "test-token"
#define WAIT_MS 5000

typedef struct
{
  RdEmulator *emu;
  SoupSession *session;
  gchar *base;                  /* http://127.0.0.1:PORT/api/v2 */
  gchar *root;                  /* http://127.0.0.1:PORT */
} Fixture;

typedef struct
{
  guint status;                 /* 0 when the transport failed */
  GError *error;
  gchar *body;
  JsonNode *json;               /* NULL when the body is not JSON */
  SoupMessageHeaders *headers;
} Response;

static void
fixture_set_up (Fixture * f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->emu = rd_emulator_new ();
  g_assert_true (rd_emulator_start (f->emu, "127.0.0.1", 0, &error));
  g_assert_no_error (error);
  f->session = soup_session_new ();
  f->base = g_strdup (rd_emulator_get_base_url (f->emu));
  f->root = g_strdup_printf ("http://127.0.0.1:%u",
      rd_emulator_get_port (f->emu));
}

static void
fixture_tear_down (Fixture * f, gconstpointer data)
{
  g_object_unref (f->session);
  rd_emulator_free (f->emu);
  g_free (f->base);
  g_free (f->root);
}

static void
response_free (Response * r)
{
  g_clear_error (&r->error);
  g_free (r->body);
  if (r->json)
    json_node_unref (r->json);
  if (r->headers)
    soup_message_headers_unref (r->headers);
  g_free (r);
}

/* *INDENT-OFF* */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Response, response_free)
/* *INDENT-ON* */

static Response *
send_with (SoupSession * session, SoupMessage * msg)
{
  Response *r = g_new0 (Response, 1);
  g_autoptr (GBytes) body = soup_session_send_and_read (session, msg, NULL,
      &r->error);

  if (body) {
    g_autoptr (JsonParser) parser = json_parser_new ();
    gsize len;
    const gchar *data = g_bytes_get_data (body, &len);

    r->status = soup_message_get_status (msg);
    r->body = g_strndup (data, len);
    if (json_parser_load_from_data (parser, r->body, len, NULL))
      r->json = json_node_ref (json_parser_get_root (parser));
    r->headers =
        soup_message_headers_ref (soup_message_get_response_headers (msg));
  }
  g_object_unref (msg);
  return r;
}

static SoupMessage *
new_message (const gchar * method, const gchar * url, const gchar * auth)
{
  SoupMessage *msg = soup_message_new (method, url);

  g_assert_nonnull (msg);
  if (auth)
    soup_message_headers_replace (soup_message_get_request_headers (msg),
        "Authorization", auth);
  return msg;
}

static Response *
get (Fixture * f, const gchar * path, const gchar * auth)
{
  g_autofree gchar *url = g_strconcat (f->base, path, NULL);

  return send_with (f->session, new_message (SOUP_METHOD_GET, url, auth));
}

static SoupMultipart *
form_new (void)
{
  return soup_multipart_new (SOUP_FORM_MIME_TYPE_MULTIPART);
}

static void
form_add_file (SoupMultipart * form, const gchar * field, const gchar * name,
    const gchar * content)
{
  g_autoptr (GBytes) bytes = g_bytes_new (content, strlen (content));

  soup_multipart_append_form_file (form, field, name,
      "application/octet-stream", bytes);
}

static void
form_add_bytes (SoupMultipart * form, const gchar * field, const gchar * name,
    GBytes * bytes)
{
  soup_multipart_append_form_file (form, field, name,
      "application/octet-stream", bytes);
}

static SoupMessage *
form_message (Fixture * f, SoupMultipart * form, const gchar * auth)
{
  g_autofree gchar *url = g_strconcat (f->base, "/detect/batch", NULL);
  SoupMessage *msg = soup_message_new_from_multipart (url, form);

  soup_multipart_free (form);
  if (auth)
    soup_message_headers_replace (soup_message_get_request_headers (msg),
        "Authorization", auth);
  return msg;
}

static Response *
post_form (Fixture * f, SoupMultipart * form)
{
  return send_with (f->session, form_message (f, form, "Bearer " TOKEN));
}

/* A form with one files[] part per name, each file's content its name. */
static SoupMultipart *
form_with_files (const gchar * first, ...)
{
  SoupMultipart *form = form_new ();
  const gchar *name;
  va_list args;

  va_start (args, first);
  for (name = first; name; name = va_arg (args, const gchar *))
      form_add_file (form, "files[]", name, name);
  va_end (args);
  return form;
}

static JsonObject *
root_object (Response * r)
{
  g_assert_nonnull (r->json);
  return json_node_get_object (r->json);
}

static JsonObject *
item_of (Response * r)
{
  JsonObject *root = root_object (r);

  g_assert_true (json_object_get_boolean_member (root, "success"));
  return json_object_get_object_member (root, "item");
}

static const gchar *
message_of (Response * r)
{
  JsonObject *root = root_object (r);

  g_assert_false (json_object_get_boolean_member (root, "success"));
  return json_object_get_string_member (root, "message");
}

static void
assert_error (Response * r, guint status, const gchar * message_part)
{
  g_assert_no_error (r->error);
  g_assert_cmpuint (r->status, ==, status);
  g_assert_nonnull (strstr (message_of (r), message_part));
}

static JsonNode *
stats (Fixture * f)
{
  g_autofree gchar *text = rd_emulator_get_stats_json (f->emu);
  g_autoptr (JsonParser) parser = json_parser_new ();

  g_assert_true (json_parser_load_from_data (parser, text, -1, NULL));
  return json_node_ref (json_parser_get_root (parser));
}

static gint64
stats_int (Fixture * f, const gchar * member)
{
  g_autoptr (JsonNode) node = stats (f);

  return json_object_get_int_member (json_node_get_object (node), member);
}

static JsonObject *
stats_batch (JsonNode * node, guint index)
{
  JsonArray *batches = json_object_get_array_member (json_node_get_object
      (node), "batches");

  g_assert_cmpuint (json_array_get_length (batches), >, index);
  return json_array_get_object_element (batches, index);
}

static gint64
route_count (JsonNode * node, const gchar * route, const gchar * status)
{
  JsonObject *requests = json_object_get_object_member (json_node_get_object
      (node), "requests");
  JsonObject *by_route = json_object_get_object_member (requests, "by_route");
  JsonObject *statuses;

  if (!json_object_has_member (by_route, route))
    return 0;
  statuses = json_object_get_object_member (by_route, route);
  if (!json_object_has_member (statuses, status))
    return 0;
  return json_object_get_int_member (statuses, status);
}

static gchar *
create_batch_ok (Fixture * f, SoupMultipart * form)
{
  g_autoptr (Response) r = post_form (f, form);

  g_assert_no_error (r->error);
  g_assert_cmpuint (r->status, ==, SOUP_STATUS_ACCEPTED);
  return g_strdup (json_object_get_string_member (item_of (r), "uuid"));
}

static gchar *
detect_uuid (Fixture * f, const gchar * batch_uuid, guint index)
{
  g_autofree gchar *path = g_strconcat ("/detect/batch/", batch_uuid, NULL);
  g_autoptr (Response) r = get (f, path, "Bearer " TOKEN);
  JsonArray *uuids;

  g_assert_cmpuint (r->status, ==, SOUP_STATUS_OK);
  uuids = json_object_get_array_member (item_of (r), "detect_uuids");
  return g_strdup (json_array_get_string_element (uuids, index));
}

static Response *
get_detect (Fixture * f, const gchar * uuid)
{
  g_autofree gchar *path = g_strconcat ("/detect/", uuid, NULL);

  return get (f, path, "Bearer " TOKEN);
}

/* Polls the batch until its status is @status; waiting on emulator time. */
static gboolean
wait_for_batch_status (Fixture * f, const gchar * uuid, const gchar * status)
{
  g_autofree gchar *path = g_strconcat ("/detect/batch/", uuid, NULL);
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  while (g_get_monotonic_time () < deadline) {
    g_autoptr (Response) r = get (f, path, "Bearer " TOKEN);

    if (g_strcmp0 (json_object_get_string_member (item_of (r), "status"),
            status) == 0)
      return TRUE;
    g_usleep (10 * 1000);
  }
  return FALSE;
}

static gdouble
expected_score (const gchar * content)
{
  guint8 digest[32];
  gsize len = sizeof (digest);
  GChecksum *checksum = g_checksum_new (G_CHECKSUM_SHA256);

  g_checksum_update (checksum, (const guchar *) content, strlen (content));
  g_checksum_get_digest (checksum, digest, &len);
  g_checksum_free (checksum);
  return (((guint32) digest[0] << 24) | ((guint32) digest[1] << 16) |
      ((guint32) digest[2] << 8) | digest[3]) / 4294967296.0;
}

/* A content whose verdict is fake (score >= 0.5) or real. */
static gchar *
content_with_verdict (gboolean fake)
{
  guint i;

  for (i = 0;; i++) {
    gchar *content = g_strdup_printf ("content-%u", i);
    if ((expected_score (content) >= 0.5) == fake)
      return content;
    g_free (content);
  }
}

/* ---- auth ---- */

static void
test_missing_token_is_401 (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = get (f, "/detect/batch/anything", NULL);

  assert_error (r, SOUP_STATUS_UNAUTHORIZED, "Unauthorized");
}

static void
test_wrong_token_is_401 (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = send_with (f->session,
      form_message (f, form_with_files ("a.wav", NULL), "Bearer nope"));

  assert_error (r, SOUP_STATUS_UNAUTHORIZED, "Unauthorized");
  g_assert_cmpint (stats_int (f, "batches_created"), ==, 0);
}

static void
test_bearer_token_is_accepted (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = send_with (f->session,
      form_message (f, form_with_files ("a.wav", NULL), "Bearer " TOKEN));

  g_assert_cmpuint (r->status, ==, SOUP_STATUS_ACCEPTED);
}

static void
test_legacy_token_is_accepted (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) plain = send_with (f->session,
      form_message (f, form_with_files ("a.wav", NULL), "Token token=" TOKEN));
  g_autoptr (Response) quoted = send_with (f->session,
      form_message (f, form_with_files ("a.wav", NULL),
          "Token token=\"" TOKEN "\""));

  g_assert_cmpuint (plain->status, ==, SOUP_STATUS_ACCEPTED);
  g_assert_cmpuint (quoted->status, ==, SOUP_STATUS_ACCEPTED);
}

static void
test_set_token_replaces_the_token (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) old = NULL;
  g_autoptr (Response) new = NULL;

  rd_emulator_set_token (f->emu, "fresh");
  old = get (f, "/detect/batch/x", "Bearer " TOKEN);
  new = get (f, "/detect/batch/x", "Bearer fresh");
  g_assert_cmpuint (old->status, ==, SOUP_STATUS_UNAUTHORIZED);
  g_assert_cmpuint (new->status, ==, SOUP_STATUS_NOT_FOUND);
}

/* A body that fails the client if it is ever read: with Expect:
 * 100-continue the 401 must come before it. */
static void
test_auth_is_checked_before_the_body (Fixture * f, gconstpointer data)
{
  g_autofree gchar *url = g_strconcat (f->base, "/detect/batch", NULL);
  SoupMessage *msg = new_message (SOUP_METHOD_POST, url, "Bearer nope");
  g_autoptr (GInputStream) stream =
      g_memory_input_stream_new_from_data ("x", 1, NULL);
  g_autoptr (Response) r = NULL;

  soup_message_headers_set_expectations (soup_message_get_request_headers
      (msg), SOUP_EXPECTATION_CONTINUE);
  soup_message_set_request_body (msg, "multipart/form-data; boundary=b",
      stream, 400 * 1000 * 1000);
  r = send_with (f->session, msg);

  assert_error (r, SOUP_STATUS_UNAUTHORIZED, "Unauthorized");
  g_assert_cmpint (stats_int (f, "bytes_received"), ==, 0);
}

/* ---- 400s ---- */

static void
assert_rejected (Fixture * f, SoupMultipart * form, const gchar * message)
{
  g_autoptr (Response) r = post_form (f, form);

  assert_error (r, SOUP_STATUS_BAD_REQUEST, message);
  g_assert_cmpint (stats_int (f, "batches_created"), ==, 0);
}

static void
test_no_media_is_400 (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_new ();

  soup_multipart_append_form_string (form, "intelligence", "true");
  assert_rejected (f, form, "no media supplied");
}

static void
test_files_and_zip_together_is_400 (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("a.wav", NULL);

  form_add_file (form, "file", "batch.zip", "PK");
  assert_rejected (f, form, "both files[] and a zip");
}

static void
test_more_than_50_files_is_400 (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_new ();
  guint i;

  for (i = 0; i < 51; i++) {
    g_autofree gchar *name = g_strdup_printf ("clip-%02u.wav", i);
    form_add_file (form, "files[]", name, name);
  }
  assert_rejected (f, form, "maximum of 50 files");
}

static void
test_50_files_are_accepted (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_new ();
  g_autoptr (Response) r = NULL;
  guint i;

  for (i = 0; i < 50; i++) {
    g_autofree gchar *name = g_strdup_printf ("clip-%02u.wav", i);
    form_add_file (form, "files[]", name, name);
  }
  r = post_form (f, form);
  g_assert_cmpuint (r->status, ==, SOUP_STATUS_ACCEPTED);
  g_assert_cmpint (json_object_get_int_member (item_of (r), "total_files"),
      ==, 50);
}

/* Clients that stream a body of unknown length send it chunked. */
static void
test_chunked_upload_is_accepted (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("a.wav", "b.png", NULL);
  g_autofree gchar *url = g_strconcat (f->base, "/detect/batch", NULL);
  SoupMessage *msg = new_message (SOUP_METHOD_POST, url, "Bearer " TOKEN);
  SoupMessageHeaders *headers = soup_message_headers_new
      (SOUP_MESSAGE_HEADERS_MULTIPART);
  g_autoptr (GBytes) body = NULL;
  g_autoptr (GInputStream) stream = NULL;
  g_autoptr (Response) r = NULL;
  g_autoptr (JsonNode) node = NULL;

  soup_multipart_to_message (form, headers, &body);
  soup_multipart_free (form);
  stream = g_memory_input_stream_new_from_bytes (body);
  soup_message_set_request_body (msg,
      soup_message_headers_get_one (headers, "Content-Type"), stream, -1);
  soup_message_headers_unref (headers);
  r = send_with (f->session, msg);

  g_assert_cmpuint (r->status, ==, SOUP_STATUS_ACCEPTED);
  node = stats (f);
  g_assert_cmpint (json_object_get_int_member (stats_batch (node, 0),
          "body_bytes"), ==, g_bytes_get_size (body));
}

static void
test_total_size_over_the_limit_is_400 (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_new ();
  g_autofree gchar *half = g_strnfill (600, 'x');

  rd_emulator_set_max_total_bytes (f->emu, 1000);
  form_add_file (form, "files[]", "a.wav", half);
  form_add_file (form, "files[]", "b.wav", half);
  assert_rejected (f, form, "maximum total upload size");
}

static void
test_declared_length_over_the_limit_is_400_before_the_body (Fixture * f,
    gconstpointer data)
{
  g_autofree gchar *url = g_strconcat (f->base, "/detect/batch", NULL);
  SoupMessage *msg = new_message (SOUP_METHOD_POST, url, "Bearer " TOKEN);
  g_autoptr (GInputStream) stream =
      g_memory_input_stream_new_from_data ("x", 1, NULL);
  g_autoptr (Response) r = NULL;

  soup_message_headers_set_expectations (soup_message_get_request_headers
      (msg), SOUP_EXPECTATION_CONTINUE);
  soup_message_set_request_body (msg, "multipart/form-data; boundary=b",
      stream, G_GINT64_CONSTANT (600) * 1000 * 1000);
  r = send_with (f->session, msg);

  assert_error (r, SOUP_STATUS_BAD_REQUEST, "maximum total upload size");
  g_assert_cmpint (stats_int (f, "bytes_received"), ==, 0);
}

static void
test_unsupported_extension_is_400 (Fixture * f, gconstpointer data)
{
  assert_rejected (f, form_with_files ("a.wav", "notes.txt", NULL),
      "unsupported file type: 'notes.txt'");
}

static void
test_extensions_are_case_insensitive (Fixture * f, gconstpointer data)
{
  g_autofree gchar *uuid =
      create_batch_ok (f, form_with_files ("A.WAV", "B.JpEg", NULL));

  g_assert_nonnull (uuid);
}

static void
test_empty_file_is_400 (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("a.wav", NULL);

  form_add_file (form, "files[]", "silence.wav", "");
  assert_rejected (f, form, "file 'silence.wav' is empty");
}

static void
test_malformed_boolean_is_400 (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("a.wav", NULL);
  g_autoptr (Response) r = NULL;
  JsonObject *errors;

  soup_multipart_append_form_string (form, "visualize", "yes");
  r = post_form (f, form);
  assert_error (r, SOUP_STATUS_BAD_REQUEST, "visualize must be a boolean");
  errors = json_object_get_object_member (root_object (r), "errors");
  g_assert_true (json_object_has_member (errors, "visualize"));
}

static void
test_frame_length_outside_1_to_4_is_400 (Fixture * f, gconstpointer data)
{
  const gchar *values[] = { "0", "5", "two", "2.5" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (values); i++) {
    SoupMultipart *form = form_with_files ("a.wav", NULL);

    soup_multipart_append_form_string (form, "frame_length", values[i]);
    assert_rejected (f, form, "frame_length must be an integer from 1 to 4");
  }
}

static void
test_non_numeric_region_is_400 (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("a.wav", NULL);

  soup_multipart_append_form_string (form, "start_region", "soon");
  assert_rejected (f, form, "start_region must be a non-negative number");
}

static void
test_end_region_before_start_is_400 (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("a.wav", NULL);

  soup_multipart_append_form_string (form, "start_region", "4");
  soup_multipart_append_form_string (form, "end_region", "2.5");
  assert_rejected (f, form, "end_region must be greater than start_region");
}

static void
test_bad_callback_url_is_400 (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("a.wav", NULL);

  soup_multipart_append_form_string (form, "callback_url", "ftp://x/y");
  assert_rejected (f, form, "callback_url must be an absolute http");
}

static void
test_prefer_wait_is_400 (Fixture * f, gconstpointer data)
{
  SoupMessage *msg = form_message (f, form_with_files ("a.wav", NULL),
      "Bearer " TOKEN);
  g_autoptr (Response) r = NULL;

  soup_message_headers_replace (soup_message_get_request_headers (msg),
      "Prefer", "wait=10");
  r = send_with (f->session, msg);
  assert_error (r, SOUP_STATUS_BAD_REQUEST, "Prefer: wait");
  g_assert_cmpint (stats_int (f, "batches_created"), ==, 0);
}

static void
test_non_multipart_body_is_400 (Fixture * f, gconstpointer data)
{
  g_autofree gchar *url = g_strconcat (f->base, "/detect/batch", NULL);
  SoupMessage *msg = new_message (SOUP_METHOD_POST, url, "Bearer " TOKEN);
  g_autoptr (GBytes) body = g_bytes_new_static ("{}", 2);
  g_autoptr (Response) r = NULL;

  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  r = send_with (f->session, msg);
  assert_error (r, SOUP_STATUS_BAD_REQUEST, "multipart/form-data");
}

static void
test_zip_field_without_zip_is_400 (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_new ();

  form_add_file (form, "file", "clip.wav", "RIFF");
  assert_rejected (f, form, "must be a .zip archive");
}

static void
test_unknown_file_field_is_400 (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_new ();

  form_add_file (form, "media", "clip.wav", "RIFF");
  assert_rejected (f, form, "unexpected file field 'media'");
}

/* ---- 402, 403 ---- */

static void
test_wallet_short_is_402_with_estimates (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;
  g_autoptr (JsonNode) after = NULL;
  JsonObject *details, *estimate;
  JsonArray *estimates;

  rd_emulator_set_wallet (f->emu, 25, 10);
  r = post_form (f, form_with_files ("a.wav", "b.png", "c.mp4", NULL));
  assert_error (r, SOUP_STATUS_PAYMENT_REQUIRED, "Insufficient wallet");
  details = json_object_get_object_member (root_object (r), "details");
  g_assert_cmpint (json_object_get_int_member (details,
          "total_estimated_cost_cents"), ==, 30);
  estimates = json_object_get_array_member (details, "per_file_estimates");
  g_assert_cmpuint (json_array_get_length (estimates), ==, 3);
  estimate = json_array_get_object_element (estimates, 1);
  g_assert_cmpstr (json_object_get_string_member (estimate, "filename"), ==,
      "b.png");
  g_assert_cmpint (json_object_get_int_member (estimate,
          "estimated_cost_cents"), ==, 10);

  after = stats (f);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (after),
          "batches_created"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member
          (json_node_get_object (after), "wallet"), "balance_cents"), ==, 25);
}

static void
test_wallet_is_charged_per_file (Fixture * f, gconstpointer data)
{
  g_autofree gchar *uuid = NULL;
  g_autoptr (JsonNode) after = NULL;

  rd_emulator_set_wallet (f->emu, 100, 10);
  uuid = create_batch_ok (f, form_with_files ("a.wav", "b.png", "c.mp4", NULL));
  after = stats (f);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member
          (json_node_get_object (after), "wallet"), "balance_cents"), ==, 70);
}

static void
test_intelligence_limit_is_403_with_details (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("a.wav", "b.wav", NULL);
  g_autoptr (Response) r = NULL;
  JsonObject *details;

  rd_emulator_set_intelligence_limit (f->emu, 5, 4);
  soup_multipart_append_form_string (form, "intelligence", "true");
  r = post_form (f, form);
  assert_error (r, SOUP_STATUS_FORBIDDEN, "Intelligence detect limit");
  details = json_object_get_object_member (root_object (r), "details");
  g_assert_cmpint (json_object_get_int_member (details, "limit"), ==, 5);
  g_assert_cmpint (json_object_get_int_member (details, "used"), ==, 4);
  g_assert_cmpint (json_object_get_int_member (details, "requested"), ==, 2);
  g_assert_cmpint (stats_int (f, "batches_created"), ==, 0);
}

static void
test_intelligence_limit_ignores_batches_without_it (Fixture * f,
    gconstpointer data)
{
  g_autofree gchar *uuid = NULL;

  rd_emulator_set_intelligence_limit (f->emu, 0, 0);
  uuid = create_batch_ok (f, form_with_files ("a.wav", NULL));
  g_assert_nonnull (uuid);
}

/* ---- batches ---- */

static void
test_create_answers_202_with_the_documented_item (Fixture * f,
    gconstpointer data)
{
  g_autoptr (Response) r = NULL;
  g_autoptr (GRegex) timestamp =
      g_regex_new ("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$", 0,
      0, NULL);
  JsonObject *item;
  JsonArray *uuids;

  rd_emulator_set_processing_time (f->emu, 1000);
  r = post_form (f, form_with_files ("a.wav", "b.jpg", "c.mp4", NULL));
  g_assert_cmpuint (r->status, ==, SOUP_STATUS_ACCEPTED);
  item = item_of (r);
  g_assert_cmpuint (strlen (json_object_get_string_member (item, "uuid")), ==,
      36);
  g_assert_cmpstr (json_object_get_string_member (item, "status"), ==,
      "processing");
  g_assert_cmpint (json_object_get_int_member (item, "total_files"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (item, "completed_count"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (item, "failed_count"), ==, 0);
  g_assert_true (g_regex_match (timestamp,
          json_object_get_string_member (item, "created_at"), 0, NULL));
  uuids = json_object_get_array_member (item, "detect_uuids");
  g_assert_cmpuint (json_array_get_length (uuids), ==, 3);
  g_assert_true (json_object_get_boolean_member (item, "emulated"));
}

static void
test_unknown_batch_is_404 (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r =
      get (f, "/detect/batch/00000000-0000-0000-0000-000000000000",
      "Bearer " TOKEN);

  assert_error (r, SOUP_STATUS_NOT_FOUND, "Batch not found");
}

static void
test_unknown_detect_is_404 (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = get_detect (f, "0123");

  assert_error (r, SOUP_STATUS_NOT_FOUND, "Detect not found");
}

static void
test_other_tokens_batch_is_404 (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) created = NULL;
  g_autoptr (Response) mine = NULL;
  g_autoptr (Response) theirs = NULL;
  g_autoptr (Response) their_detect = NULL;
  g_autofree gchar *batch_path = NULL;
  g_autofree gchar *detect_path = NULL;
  JsonObject *item;

  rd_emulator_add_token (f->emu, "other-team");
  created = send_with (f->session, form_message (f,
          form_with_files ("a.wav", NULL), "Bearer other-team"));
  g_assert_cmpuint (created->status, ==, SOUP_STATUS_ACCEPTED);
  item = item_of (created);
  batch_path = g_strconcat ("/detect/batch/",
      json_object_get_string_member (item, "uuid"), NULL);
  detect_path = g_strconcat ("/detect/",
      json_array_get_string_element (json_object_get_array_member (item,
              "detect_uuids"), 0), NULL);

  mine = get (f, batch_path, "Bearer other-team");
  theirs = get (f, batch_path, "Bearer " TOKEN);
  their_detect = get (f, detect_path, "Bearer " TOKEN);
  g_assert_cmpuint (mine->status, ==, SOUP_STATUS_OK);
  assert_error (theirs, SOUP_STATUS_NOT_FOUND, "Batch not found");
  assert_error (their_detect, SOUP_STATUS_NOT_FOUND, "Detect not found");
}

static void
test_uuids_may_be_given_without_dashes (Fixture * f, gconstpointer data)
{
  g_autofree gchar *uuid = create_batch_ok (f, form_with_files ("a.wav",
          NULL));
  g_auto (GStrv) parts = g_strsplit (uuid, "-", -1);
  g_autofree gchar *hex = g_strjoinv ("", parts);
  g_autofree gchar *path = g_strconcat ("/detect/batch/", hex, NULL);
  g_autoptr (Response) r = get (f, path, "Bearer " TOKEN);

  g_assert_cmpuint (r->status, ==, SOUP_STATUS_OK);
}

static void
test_zero_processing_time_is_terminal_at_once (Fixture * f, gconstpointer data)
{
  g_autofree gchar *uuid = create_batch_ok (f, form_with_files ("a.wav",
          "b.wav", NULL));
  g_autofree gchar *path = g_strconcat ("/detect/batch/", uuid, NULL);
  g_autoptr (Response) r = get (f, path, "Bearer " TOKEN);
  JsonObject *item = item_of (r);

  g_assert_cmpstr (json_object_get_string_member (item, "status"), ==,
      "completed");
  g_assert_cmpint (json_object_get_int_member (item, "completed_count"), ==, 2);
}

static void
test_batch_counts_advance_per_file (Fixture * f, gconstpointer data)
{
  g_autofree gchar *uuid = NULL;
  g_autofree gchar *path = NULL;
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  gint64 last_completed = -1;
  gboolean saw_partial = FALSE;
  gboolean done = FALSE;

  rd_emulator_set_processing_time (f->emu, 150);
  uuid = create_batch_ok (f, form_with_files ("a.wav", "b.wav", NULL));
  path = g_strconcat ("/detect/batch/", uuid, NULL);

  while (!done && g_get_monotonic_time () < deadline) {
    g_autoptr (Response) r = get (f, path, "Bearer " TOKEN);
    JsonObject *item = item_of (r);
    gint64 completed = json_object_get_int_member (item, "completed_count");
    const gchar *status = json_object_get_string_member (item, "status");

    g_assert_cmpint (completed, >=, last_completed);
    last_completed = completed;
    if (completed == 1) {
      g_assert_cmpstr (status, ==, "processing");
      saw_partial = TRUE;
    }
    done = completed == 2;
    if (done)
      g_assert_cmpstr (status, ==, "completed");
    else
      g_usleep (10 * 1000);
  }
  g_assert_true (done);
  g_assert_true (saw_partial);
}

static void
test_failures_make_the_batch_partially_failed (Fixture * f, gconstpointer data)
{
  g_autofree gchar *uuid = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *failed_uuid = NULL;
  g_autoptr (Response) batch = NULL;
  g_autoptr (Response) detect = NULL;
  JsonObject *item;

  rd_emulator_set_fail_substring (f->emu, "fail");
  uuid = create_batch_ok (f, form_with_files ("ok.wav", "fail-me.wav", NULL));
  path = g_strconcat ("/detect/batch/", uuid, NULL);
  batch = get (f, path, "Bearer " TOKEN);
  item = item_of (batch);
  g_assert_cmpstr (json_object_get_string_member (item, "status"), ==,
      "partially_failed");
  g_assert_cmpint (json_object_get_int_member (item, "completed_count"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (item, "failed_count"), ==, 1);

  failed_uuid = detect_uuid (f, uuid, 1);
  detect = get_detect (f, failed_uuid);
  item = item_of (detect);
  g_assert_cmpstr (json_object_get_string_member (item, "status"), ==,
      "failed");
  g_assert_nonnull (strstr (json_object_get_string_member (item,
              "error_message"), "fail"));
  g_assert_true (json_object_get_null_member (item, "metrics"));
}

static void
test_all_failures_make_the_batch_failed (Fixture * f, gconstpointer data)
{
  g_autofree gchar *uuid = NULL;

  rd_emulator_set_fail_rate (f->emu, 1.0);
  uuid = create_batch_ok (f, form_with_files ("a.wav", "b.wav", NULL));
  g_assert_true (wait_for_batch_status (f, uuid, "failed"));
}

static void
test_fail_rate_is_deterministic_per_content (Fixture * f, gconstpointer data)
{
  g_autofree gchar *first = NULL;
  g_autofree gchar *second = NULL;
  g_autoptr (JsonNode) node = NULL;
  JsonArray *a, *b;
  guint i, failures = 0;

  rd_emulator_set_fail_rate (f->emu, 0.5);
  for (i = 0; i < 2; i++) {
    SoupMultipart *form = form_new ();
    guint j;

    for (j = 0; j < 20; j++) {
      g_autofree gchar *name = g_strdup_printf ("clip-%u.wav", j);
      g_autofree gchar *content = g_strdup_printf ("content %u", j);
      form_add_file (form, "files[]", name, content);
    }
    g_free (create_batch_ok (f, form));
  }
  node = stats (f);
  a = json_object_get_array_member (stats_batch (node, 0), "files");
  b = json_object_get_array_member (stats_batch (node, 1), "files");
  for (i = 0; i < 20; i++) {
    const gchar *status = json_object_get_string_member
        (json_array_get_object_element (a, i), "status");

    g_assert_cmpstr (status, ==, json_object_get_string_member
        (json_array_get_object_element (b, i), "status"));
    failures += g_str_equal (status, "failed");
  }
  g_assert_cmpuint (failures, >, 0);
  g_assert_cmpuint (failures, <, 20);
}

/* ---- results ---- */

static JsonObject *
completed_result (Fixture * f, SoupMultipart * form, Response ** out)
{
  g_autofree gchar *uuid = create_batch_ok (f, form);
  g_autofree gchar *detect = detect_uuid (f, uuid, 0);
  JsonObject *item;

  *out = get_detect (f, detect);
  g_assert_cmpuint ((*out)->status, ==, SOUP_STATUS_OK);
  item = item_of (*out);
  g_assert_cmpstr (json_object_get_string_member (item, "status"), ==,
      "completed");
  return item;
}

static void
test_audio_result_has_string_typed_metrics (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;
  JsonObject *item = completed_result (f, form_with_files ("voice.wav", NULL),
      &r);
  JsonObject *metrics = json_object_get_object_member (item, "metrics");
  JsonArray *scores = json_object_get_array_member (metrics, "score");
  gdouble score = expected_score ("voice.wav");
  gchar *end;

  g_assert_cmpstr (json_object_get_string_member (item, "media_type"), ==,
      "audio");
  g_assert_cmpstr (json_object_get_string_member (metrics, "label"), ==,
      score >= 0.5 ? "fake" : "real");
  g_assert_cmpuint (json_array_get_length (scores), >=, 1);
  g_assert_cmpint (json_node_get_value_type (json_array_get_element (scores,
              0)), ==, G_TYPE_STRING);
  g_assert_cmpint (json_node_get_value_type (json_object_get_member (metrics,
              "consistency")), ==, G_TYPE_STRING);
  g_assert_cmpfloat_with_epsilon (g_ascii_strtod
      (json_object_get_string_member (metrics, "aggregated_score"), &end),
      score, 0.0001);
  g_assert_true (json_object_get_null_member (item, "image_metrics"));
  g_assert_true (json_object_get_null_member (item, "video_metrics"));
  g_assert_cmpstr (json_object_get_string_member (item, "filename"), ==,
      "voice.wav");
}

static void
test_image_result_uses_image_metrics (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;
  JsonObject *item = completed_result (f, form_with_files ("frame.png", NULL),
      &r);
  JsonObject *image = json_object_get_object_member (item, "image_metrics");
  const gchar *label = json_object_get_string_member (image, "label");
  gdouble score = expected_score ("frame.png");

  g_assert_cmpstr (json_object_get_string_member (item, "media_type"), ==,
      "image");
  g_assert_cmpuint (json_object_get_size (json_object_get_object_member (item,
              "metrics")), ==, 0);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (image,
          "score"), score, 1e-9);
  if (score >= 0.5)
    g_assert_true (g_str_equal (label, "Fake")
        || g_str_equal (label, "Likely fake"));
  else
    g_assert_true (g_str_equal (label, "Real")
        || g_str_equal (label, "Likely real"));
  g_assert_true (json_object_has_member (image, "children"));
  g_assert_true (json_object_get_null_member (item, "video_metrics"));
}

static void
test_video_result_has_video_and_audio_metrics (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;
  JsonObject *item = completed_result (f, form_with_files ("scene.mp4", NULL),
      &r);
  JsonObject *video = json_object_get_object_member (item, "video_metrics");
  JsonObject *result, *frame, *segment;
  gdouble score = expected_score ("scene.mp4");

  g_assert_cmpstr (json_object_get_string_member (item, "media_type"), ==,
      "video");
  g_assert_cmpstr (json_object_get_string_member (video, "label"), ==,
      score >= 0.5 ? "Fake" : "Real");
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (video,
          "score"), score, 1e-9);
  result = json_array_get_object_element (json_object_get_array_member (video,
          "children"), 0);
  g_assert_cmpstr (json_object_get_string_member (result, "type"), ==,
      "VideoResult");
  g_assert_true (g_str_has_suffix (json_object_get_string_member (result,
              "certainty (%)"), "%"));
  frame = json_array_get_object_element (json_object_get_array_member (result,
          "children"), 0);
  g_assert_cmpstr (json_object_get_string_member (frame, "type"), ==,
      "ImageResult");
  g_assert_true (json_object_has_member (frame, "timestamp"));
  segment = json_array_get_object_element (json_object_get_array_member
      (frame, "children"), 0);
  g_assert_cmpstr (json_object_get_string_member (segment, "type"), ==,
      "Segment");
  g_assert_nonnull (json_object_get_object_member (item, "metrics"));
}

static void
test_results_say_they_are_emulated (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;
  JsonObject *item = completed_result (f, form_with_files ("voice.wav", NULL),
      &r);
  JsonObject *extra = json_object_get_object_member (item, "extra_params");
  g_autofree gchar *sha = g_compute_checksum_for_string (G_CHECKSUM_SHA256,
      "voice.wav", -1);

  g_assert_true (json_object_get_boolean_member (item, "emulated"));
  g_assert_true (g_str_has_prefix (json_object_get_string_member (extra,
              "emulator"), "resemble-detect-emulator"));
  g_assert_cmpstr (json_object_get_string_member (extra, "content_sha256"),
      ==, sha);
}

static void
test_same_content_gets_the_same_verdict (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) a = NULL;
  g_autoptr (Response) b = NULL;
  JsonObject *first = completed_result (f, form_with_files ("voice.wav",
          NULL), &a);
  JsonObject *second = completed_result (f, form_with_files ("voice.wav",
          NULL), &b);

  JsonObject *a_metrics = json_object_get_object_member (first, "metrics");
  JsonObject *b_metrics = json_object_get_object_member (second, "metrics");

  /* The metrics differ only in the visualisation URL, which names the
   * detect. */
  g_assert_cmpstr (json_object_get_string_member (a_metrics, "label"), ==,
      json_object_get_string_member (b_metrics, "label"));
  g_assert_cmpstr (json_object_get_string_member (a_metrics,
          "aggregated_score"), ==, json_object_get_string_member (b_metrics,
          "aggregated_score"));
  g_assert_true (json_node_equal (json_object_get_member (a_metrics, "score"),
          json_object_get_member (b_metrics, "score")));
}

static void
test_processing_result_has_no_metrics (Fixture * f, gconstpointer data)
{
  g_autofree gchar *uuid = NULL;
  g_autofree gchar *detect = NULL;
  g_autoptr (Response) r = NULL;
  JsonObject *item;

  rd_emulator_set_processing_time (f->emu, 60000);
  uuid = create_batch_ok (f, form_with_files ("voice.wav", NULL));
  detect = detect_uuid (f, uuid, 0);
  r = get_detect (f, detect);
  item = item_of (r);
  g_assert_cmpstr (json_object_get_string_member (item, "status"), ==,
      "processing");
  g_assert_true (json_object_get_null_member (item, "metrics"));
}

static void
test_audio_source_tracing_only_for_fake_audio (Fixture * f, gconstpointer data)
{
  g_autofree gchar *fake = content_with_verdict (TRUE);
  g_autofree gchar *real = content_with_verdict (FALSE);
  SoupMultipart *form = form_new ();
  g_autofree gchar *uuid = NULL;
  g_autofree gchar *fake_uuid = NULL;
  g_autofree gchar *real_uuid = NULL;
  g_autoptr (Response) fake_r = NULL;
  g_autoptr (Response) real_r = NULL;
  JsonObject *tracing;

  form_add_file (form, "files[]", "fake.wav", fake);
  form_add_file (form, "files[]", "real.wav", real);
  soup_multipart_append_form_string (form, "audio_source_tracing_enabled",
      "true");
  uuid = create_batch_ok (f, form);
  fake_uuid = detect_uuid (f, uuid, 0);
  real_uuid = detect_uuid (f, uuid, 1);
  fake_r = get_detect (f, fake_uuid);
  real_r = get_detect (f, real_uuid);
  tracing = json_object_get_object_member (item_of (fake_r),
      "audio_source_tracing");
  g_assert_nonnull (json_object_get_string_member (tracing, "label"));
  g_assert_true (json_object_get_null_member (item_of (real_r),
          "audio_source_tracing"));
}

static void
test_zero_retention_redacts_and_deletes (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("secret.wav", NULL);
  g_autofree gchar *uuid = NULL;
  g_autofree gchar *detect = NULL;
  g_autoptr (Response) r = NULL;
  JsonObject *item;
  const gchar *filename;

  soup_multipart_append_form_string (form, "zero_retention_mode", "true");
  uuid = create_batch_ok (f, form);
  detect = detect_uuid (f, uuid, 0);
  r = get_detect (f, detect);
  item = item_of (r);
  filename = json_object_get_string_member (item, "filename");
  g_assert_true (g_str_has_prefix (filename, "redacted_"));
  g_assert_true (g_str_has_suffix (filename, ".wav"));
  g_assert_null (strstr (filename, "secret"));
  g_assert_true (json_object_get_null_member (item, "url"));
  g_assert_true (json_object_get_null_member (item, "audio_url"));
  g_assert_true (json_object_get_boolean_member (item, "zero_retention_mode"));
  g_assert_true (json_object_get_boolean_member (item, "media_redacted"));
  g_assert_true (json_object_get_boolean_member (item, "media_deleted"));
  g_assert_false (json_object_get_null_member (item, "file_deleted_at"));
}

static void
test_zero_retention_deletes_only_after_completion (Fixture * f,
    gconstpointer data)
{
  SoupMultipart *form = form_with_files ("secret.wav", NULL);
  g_autofree gchar *uuid = NULL;
  g_autofree gchar *detect = NULL;
  g_autoptr (Response) r = NULL;
  JsonObject *item;

  rd_emulator_set_processing_time (f->emu, 60000);
  soup_multipart_append_form_string (form, "zero_retention_mode", "true");
  uuid = create_batch_ok (f, form);
  detect = detect_uuid (f, uuid, 0);
  r = get_detect (f, detect);
  item = item_of (r);
  g_assert_true (json_object_get_boolean_member (item, "media_redacted"));
  g_assert_false (json_object_get_boolean_member (item, "media_deleted"));
  g_assert_true (json_object_get_null_member (item, "file_deleted_at"));
}

/* ---- zip ---- */

typedef struct
{
  const gchar *path;
  const gchar *content;         /* NULL: a directory */
} ZipEntry;

static GBytes *
make_zip (const ZipEntry * entries, guint n)
{
  struct archive *archive = archive_write_new ();
  gsize size = 1024 * 1024, used = 0;
  guint8 *buf = g_malloc (size);
  guint i;

  archive_write_set_format_zip (archive);
  g_assert_cmpint (archive_write_open_memory (archive, buf, size, &used), ==,
      ARCHIVE_OK);
  for (i = 0; i < n; i++) {
    struct archive_entry *entry = archive_entry_new ();

    archive_entry_set_pathname (entry, entries[i].path);
    archive_entry_set_perm (entry, 0644);
    if (entries[i].content) {
      archive_entry_set_filetype (entry, AE_IFREG);
      archive_entry_set_size (entry, strlen (entries[i].content));
    } else {
      archive_entry_set_filetype (entry, AE_IFDIR);
    }
    g_assert_cmpint (archive_write_header (archive, entry), ==, ARCHIVE_OK);
    if (entries[i].content)
      archive_write_data (archive, entries[i].content,
          strlen (entries[i].content));
    archive_entry_free (entry);
  }
  archive_write_close (archive);
  archive_write_free (archive);
  return g_bytes_new_take (buf, used);
}

static void
test_zip_entries_are_flattened_and_filtered (Fixture * f, gconstpointer data)
{
  const ZipEntry entries[] = {
    {"clips/", NULL},
    {"clips/a.wav", "first clip"},
    {"../escape.wav", "outside"},
    {"/etc/abs.wav", "absolute"},
    {"notes.txt", "not media"},
    {"__MACOSX/clips/._a.wav", "resource fork"},
    {"clips/deeper/b.png", "second clip"},
  };
  g_autoptr (GBytes) zip = make_zip (entries, G_N_ELEMENTS (entries));
  SoupMultipart *form = form_new ();
  g_autofree gchar *uuid = NULL;
  g_autofree gchar *sha_a = g_compute_checksum_for_string (G_CHECKSUM_SHA256,
      "first clip", -1);
  g_autoptr (JsonNode) node = NULL;
  JsonObject *batch, *file;
  JsonArray *files, *skipped;
  guint i;
  gboolean saw_escape = FALSE, saw_text = FALSE, saw_absolute = FALSE;

  form_add_bytes (form, "file", "batch.zip", zip);
  uuid = create_batch_ok (f, form);
  node = stats (f);
  batch = stats_batch (node, 0);
  g_assert_cmpstr (json_object_get_string_member (batch, "upload_mode"), ==,
      "zip");
  files = json_object_get_array_member (batch, "files");
  g_assert_cmpuint (json_array_get_length (files), ==, 2);
  file = json_array_get_object_element (files, 0);
  g_assert_cmpstr (json_object_get_string_member (file, "name"), ==, "a.wav");
  g_assert_cmpint (json_object_get_int_member (file, "size"), ==,
      strlen ("first clip"));
  g_assert_cmpstr (json_object_get_string_member (file, "sha256"), ==, sha_a);
  file = json_array_get_object_element (files, 1);
  g_assert_cmpstr (json_object_get_string_member (file, "name"), ==, "b.png");
  g_assert_cmpstr (json_object_get_string_member (file, "media_type"), ==,
      "image");

  skipped = json_object_get_array_member (batch, "skipped_entries");
  for (i = 0; i < json_array_get_length (skipped); i++) {
    JsonObject *entry = json_array_get_object_element (skipped, i);
    const gchar *name = json_object_get_string_member (entry, "name");
    const gchar *reason = json_object_get_string_member (entry, "reason");

    if (strstr (name, "escape.wav")) {
      saw_escape = TRUE;
      g_assert_nonnull (strstr (reason, "unsafe"));
    }
    if (strstr (name, "abs.wav")) {
      saw_absolute = TRUE;
      g_assert_nonnull (strstr (reason, "unsafe"));
    }
    if (strstr (name, "notes.txt")) {
      saw_text = TRUE;
      g_assert_cmpstr (reason, ==, "not a media file");
    }
  }
  g_assert_true (saw_escape);
  g_assert_true (saw_absolute);
  g_assert_true (saw_text);
}

static void
test_zip_without_media_is_400 (Fixture * f, gconstpointer data)
{
  const ZipEntry entries[] = { {"notes.txt", "not media"} };
  g_autoptr (GBytes) zip = make_zip (entries, G_N_ELEMENTS (entries));
  SoupMultipart *form = form_new ();

  form_add_bytes (form, "file", "batch.zip", zip);
  assert_rejected (f, form, "contains no media files");
}

static void
test_unreadable_zip_is_400 (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_new ();

  form_add_file (form, "file", "batch.zip", "this is not a zip archive");
  assert_rejected (f, form, "not a readable zip archive");
}

static void
test_zip_with_an_empty_entry_is_400 (Fixture * f, gconstpointer data)
{
  const ZipEntry entries[] = { {"a.wav", "clip"}, {"b.wav", ""} };
  g_autoptr (GBytes) zip = make_zip (entries, G_N_ELEMENTS (entries));
  SoupMultipart *form = form_new ();

  form_add_bytes (form, "file", "batch.zip", zip);
  assert_rejected (f, form, "file 'b.wav' is empty");
}

/* ---- callbacks ---- */

static RdEmulatorReceiver *
start_receiver (void)
{
  RdEmulatorReceiver *receiver = rd_emulator_receiver_new ();
  g_autoptr (GError) error = NULL;

  g_assert_true (rd_emulator_receiver_start (receiver, &error));
  return receiver;
}

static JsonObject *
wait_for_callback_stats (Fixture * f, JsonNode ** node, const gchar * state)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  for (;;) {
    JsonObject *callback;

    *node = stats (f);
    callback = json_object_get_object_member (stats_batch (*node, 0),
        "callback");
    if (g_str_equal (json_object_get_string_member (callback, "state"), state)
        || g_get_monotonic_time () > deadline)
      return callback;
    json_node_unref (*node);
    g_usleep (10 * 1000);
  }
}

static void
test_callback_is_posted_once_when_terminal (Fixture * f, gconstpointer data)
{
  g_autoptr (RdEmulatorReceiver) receiver = start_receiver ();
  SoupMultipart *form = form_with_files ("a.wav", "b.wav", NULL);
  g_autofree gchar *uuid = NULL;
  g_autofree gchar *body = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (JsonNode) node = NULL;
  JsonObject *item, *callback;

  rd_emulator_set_processing_time (f->emu, 50);
  soup_multipart_append_form_string (form, "callback_url",
      rd_emulator_receiver_get_url (receiver));
  uuid = create_batch_ok (f, form);

  g_assert_true (rd_emulator_receiver_wait (receiver, 1, WAIT_MS));
  body = rd_emulator_receiver_dup_body (receiver, 0);
  g_assert_true (json_parser_load_from_data (parser, body, -1, NULL));
  item = json_object_get_object_member (json_node_get_object
      (json_parser_get_root (parser)), "item");
  g_assert_cmpstr (json_object_get_string_member (item, "uuid"), ==, uuid);
  g_assert_cmpstr (json_object_get_string_member (item, "status"), ==,
      "completed");
  g_assert_cmpint (json_object_get_int_member (item, "completed_count"), ==, 2);

  callback = wait_for_callback_stats (f, &node, "sent");
  g_assert_cmpstr (json_object_get_string_member (callback, "state"), ==,
      "sent");
  g_assert_cmpint (json_object_get_int_member (callback, "http_status"), ==,
      200);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (node),
          "callbacks_sent"), ==, 1);
  /* Once: a bounded look for a second one. */
  g_assert_false (rd_emulator_receiver_wait (receiver, 2, 200));
}

static void
test_callback_answered_with_an_error_is_not_retried (Fixture * f,
    gconstpointer data)
{
  g_autoptr (RdEmulatorReceiver) receiver = start_receiver ();
  SoupMultipart *form = form_with_files ("a.wav", NULL);
  g_autofree gchar *uuid = NULL;
  g_autoptr (JsonNode) node = NULL;
  JsonObject *callback;

  rd_emulator_receiver_set_status (receiver, SOUP_STATUS_INTERNAL_SERVER_ERROR);
  soup_multipart_append_form_string (form, "callback_url",
      rd_emulator_receiver_get_url (receiver));
  uuid = create_batch_ok (f, form);
  callback = wait_for_callback_stats (f, &node, "sent");
  g_assert_cmpint (json_object_get_int_member (callback, "http_status"), ==,
      500);
  g_assert_false (rd_emulator_receiver_wait (receiver, 2, 200));
  g_assert_cmpuint (rd_emulator_receiver_get_count (receiver), ==, 1);
}

static void
test_unreachable_callback_is_recorded_as_failed (Fixture * f,
    gconstpointer data)
{
  SoupMultipart *form = form_with_files ("a.wav", NULL);
  g_autoptr (GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4,
      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) loopback =
      g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autofree gchar *url = NULL;
  g_autofree gchar *uuid = NULL;
  g_autoptr (JsonNode) node = NULL;
  JsonObject *callback;

  /* A port that was free a moment ago and has no listener. */
  g_assert_true (g_socket_bind (socket, any, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  url = g_strdup_printf ("http://127.0.0.1:%u/cb",
      g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  g_socket_close (socket, NULL);

  soup_multipart_append_form_string (form, "callback_url", url);
  uuid = create_batch_ok (f, form);
  callback = wait_for_callback_stats (f, &node, "failed");
  g_assert_cmpstr (json_object_get_string_member (callback, "state"), ==,
      "failed");
  g_assert_nonnull (json_object_get_string_member (callback, "error"));
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (node),
          "callbacks_failed"), ==, 1);
}

static void
test_non_loopback_callback_is_not_sent (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("a.wav", NULL);
  g_autofree gchar *uuid = NULL;
  g_autoptr (JsonNode) node = NULL;
  JsonObject *callback;

  soup_multipart_append_form_string (form, "callback_url",
      "https://example.com/hook");
  uuid = create_batch_ok (f, form);
  callback = wait_for_callback_stats (f, &node, "skipped");
  g_assert_cmpstr (json_object_get_string_member (callback, "state"), ==,
      "skipped");
}

/* ---- faults ---- */

static void
test_every_nth_request_gets_500 (Fixture * f, gconstpointer data)
{
  guint statuses[4], i;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_500, 2, NULL);
  for (i = 0; i < 4; i++) {
    g_autoptr (Response) r = get (f, "/detect/batch/x", "Bearer " TOKEN);
    statuses[i] = r->status;
  }
  g_assert_cmpuint (statuses[0], ==, SOUP_STATUS_NOT_FOUND);
  g_assert_cmpuint (statuses[1], ==, SOUP_STATUS_INTERNAL_SERVER_ERROR);
  g_assert_cmpuint (statuses[2], ==, SOUP_STATUS_NOT_FOUND);
  g_assert_cmpuint (statuses[3], ==, SOUP_STATUS_INTERNAL_SERVER_ERROR);
}

static void
test_fault_503_answers_before_accepting (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_503, 1, NULL);
  r = post_form (f, form_with_files ("a.wav", NULL));
  assert_error (r, SOUP_STATUS_SERVICE_UNAVAILABLE, "emulated fault");
  g_assert_cmpint (stats_int (f, "batches_created"), ==, 0);
}

static void
test_fault_path_prefix_limits_the_fault (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) detect = NULL;
  g_autoptr (Response) batch = NULL;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_503, 1,
      "/api/v2/detect/batch");
  detect = get (f, "/detect/x", "Bearer " TOKEN);
  batch = get (f, "/detect/batch/x", "Bearer " TOKEN);
  g_assert_cmpuint (detect->status, ==, SOUP_STATUS_NOT_FOUND);
  g_assert_cmpuint (batch->status, ==, SOUP_STATUS_SERVICE_UNAVAILABLE);
}

static void
test_fault_prefix_may_name_a_method (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) poll = NULL;
  g_autoptr (Response) create = NULL;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_500, 1,
      "POST /api/v2/detect/batch");
  poll = get (f, "/detect/batch/x", "Bearer " TOKEN);
  create = post_form (f, form_with_files ("a.wav", NULL));
  g_assert_cmpuint (poll->status, ==, SOUP_STATUS_NOT_FOUND);
  g_assert_cmpuint (create->status, ==, SOUP_STATUS_INTERNAL_SERVER_ERROR);
}

static void
test_fault_429_carries_retry_after (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_429, 1, NULL);
  rd_emulator_set_retry_after (f->emu, 7);
  r = get (f, "/detect/batch/x", "Bearer " TOKEN);
  assert_error (r, 429, "Too many requests");
  g_assert_cmpstr (soup_message_headers_get_one (r->headers, "Retry-After"),
      ==, "7");
}

static void
test_fault_none_turns_every_fault_off (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_500, 1, NULL);
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_429, 1, NULL);
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_NONE, 0, NULL);
  r = get (f, "/detect/batch/x", "Bearer " TOKEN);
  g_assert_cmpuint (r->status, ==, SOUP_STATUS_NOT_FOUND);
}

static void
test_faults_never_hit_the_stats_route (Fixture * f, gconstpointer data)
{
  g_autofree gchar *url = g_strconcat (f->root, "/__emulator/stats", NULL);
  g_autoptr (Response) r = NULL;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_500, 1, NULL);
  r = send_with (f->session, new_message (SOUP_METHOD_GET, url, NULL));
  g_assert_cmpuint (r->status, ==, SOUP_STATUS_OK);
}

/* Dropped requests go through a fresh session, so no kept-alive connection
 * invites libsoup to resend them. */
static Response *
post_form_fresh (Fixture * f, SoupMultipart * form)
{
  g_autoptr (SoupSession) session = soup_session_new ();

  return send_with (session, form_message (f, form, "Bearer " TOKEN));
}

static void
test_drop_before_body_creates_nothing (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;
  g_autoptr (JsonNode) node = NULL;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_DROP_BEFORE_BODY, 1, NULL);
  r = post_form_fresh (f, form_with_files ("a.wav", NULL));
  g_assert_nonnull (r->error);
  g_assert_cmpuint (r->status, ==, 0);
  node = stats (f);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (node),
          "batches_created"), ==, 0);
  g_assert_cmpint (route_count (node, "POST /api/v2/detect/batch", "dropped"),
      ==, 1);
}

static void
test_drop_mid_body_creates_nothing (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;
  g_autoptr (JsonNode) node = NULL;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_DROP_MID_BODY, 1, NULL);
  r = post_form_fresh (f, form_with_files ("a.wav", "b.wav", NULL));
  g_assert_nonnull (r->error);
  g_assert_cmpuint (r->status, ==, 0);
  node = stats (f);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (node),
          "batches_created"), ==, 0);
  g_assert_cmpint (route_count (node, "POST /api/v2/detect/batch", "dropped"),
      ==, 1);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member
          (json_node_get_object (node), "faults_injected"), "drop-mid-body"),
      ==, 1);
}

static void
test_drop_after_body_still_creates_the_batch (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;
  g_autoptr (JsonNode) node = NULL;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_DROP_AFTER_BODY, 1, NULL);
  r = post_form_fresh (f, form_with_files ("a.wav", NULL));
  g_assert_nonnull (r->error);
  node = stats (f);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (node),
          "batches_created"), ==, 1);
  g_assert_cmpint (route_count (node, "POST /api/v2/detect/batch", "dropped"),
      ==, 1);
}

static void
test_slow_fault_delays_the_answer (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;
  gint64 start;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_SLOW, 1, NULL);
  rd_emulator_set_slow_delay (f->emu, 300);
  start = g_get_monotonic_time ();
  r = get (f, "/detect/batch/x", "Bearer " TOKEN);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 300 * 1000);
  g_assert_cmpuint (r->status, ==, SOUP_STATUS_NOT_FOUND);
}

static void
test_malformed_json_fault_sends_a_broken_body (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_MALFORMED_JSON, 1, NULL);
  r = post_form (f, form_with_files ("a.wav", NULL));
  g_assert_cmpuint (r->status, ==, SOUP_STATUS_ACCEPTED);
  g_assert_nonnull (r->body);
  g_assert_null (r->json);
  g_assert_cmpint (stats_int (f, "batches_created"), ==, 1);
}

/* A stop while an answer is held back must not leak or hang. */
static gpointer
slow_request_thread (gpointer user_data)
{
  Fixture *f = user_data;
  g_autoptr (SoupSession) session = soup_session_new ();
  g_autofree gchar *url = g_strconcat (f->base, "/detect/x", NULL);

  return send_with (session, new_message (SOUP_METHOD_GET, url,
          "Bearer " TOKEN));
}

static void
test_stop_while_an_answer_is_held_back (Fixture * f, gconstpointer data)
{
  GThread *thread;
  Response *r;
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_SLOW, 1, NULL);
  rd_emulator_set_slow_delay (f->emu, 60000);
  thread = g_thread_new ("slow-request", slow_request_thread, f);
  /* The fault counts the request once its headers are in. */
  while (g_get_monotonic_time () < deadline) {
    g_autoptr (JsonNode) node = stats (f);
    JsonObject *faults = json_object_get_object_member (json_node_get_object
        (node), "faults_injected");

    if (json_object_get_int_member (faults, "slow") == 1)
      break;
    g_usleep (5 * 1000);
  }
  rd_emulator_stop (f->emu);
  r = g_thread_join (thread);
  g_assert_cmpuint (r->status, !=, SOUP_STATUS_OK);
  response_free (r);
}

/* ---- GET /detect: the list ---- */

static Response *
list (Fixture * f, const gchar * query, const gchar * auth)
{
  g_autofree gchar *path = g_strconcat ("/detect", query, NULL);

  return get (f, path, auth);
}

static Response *
list_ok (Fixture * f, const gchar * query)
{
  Response *r = list (f, query, "Bearer " TOKEN);

  g_assert_no_error (r->error);
  g_assert_cmpuint (r->status, ==, SOUP_STATUS_OK);
  g_assert_true (json_object_get_boolean_member (root_object (r), "success"));
  return r;
}

static gint64
list_int (Response * r, const gchar * member)
{
  return json_object_get_int_member (root_object (r), member);
}

static JsonArray *
list_items (Response * r)
{
  return json_object_get_array_member (root_object (r), "items");
}

/* A page's envelope: its number, the page count, its size, the total
 * and how many items it holds. */
static void
assert_page (Response * r, gint64 page, gint64 num_pages, gint64 page_size,
    gint64 total_count, guint n_items)
{
  g_assert_cmpint (list_int (r, "page"), ==, page);
  g_assert_cmpint (list_int (r, "num_pages"), ==, num_pages);
  g_assert_cmpint (list_int (r, "page_size"), ==, page_size);
  g_assert_cmpint (list_int (r, "total_count"), ==, total_count);
  g_assert_cmpuint (json_array_get_length (list_items (r)), ==, n_items);
}

/* "b.wav,a.wav": the filenames of a page's items, in order. */
static gchar *
list_filenames (Response * r)
{
  JsonArray *items = list_items (r);
  GString *names = g_string_new (NULL);
  guint i;

  for (i = 0; i < json_array_get_length (items); i++) {
    JsonObject *item = json_array_get_object_element (items, i);

    if (i > 0)
      g_string_append_c (names, ',');
    g_string_append (names, json_object_get_string_member (item, "filename"));
  }
  return g_string_free (names, FALSE);
}

/* A batch of @n files named PREFIX-0.wav, PREFIX-1.wav, ... */
static gchar *
create_numbered_batch (Fixture * f, const gchar * prefix, guint n)
{
  SoupMultipart *form = form_new ();
  guint i;

  for (i = 0; i < n; i++) {
    g_autofree gchar *name = g_strdup_printf ("%s-%u.wav", prefix, i);
    form_add_file (form, "files[]", name, name);
  }
  return create_batch_ok (f, form);
}

static void
test_list_pages_through_every_detect (Fixture * f, gconstpointer data)
{
  g_autofree gchar *a = create_numbered_batch (f, "a", 5);
  g_autofree gchar *b = create_numbered_batch (f, "b", 5);
  g_autofree gchar *c = create_numbered_batch (f, "c", 3);
  g_autoptr (Response) first = list_ok (f, "?page=1");
  g_autoptr (Response) second = list_ok (f, "?page=2");
  g_autoptr (Response) past = list_ok (f, "?page=3");
  g_autofree gchar *first_names = list_filenames (first);
  g_autofree gchar *second_names = list_filenames (second);

  g_assert_cmpstr (first_names, ==, "c-2.wav,c-1.wav,c-0.wav,b-4.wav,"
      "b-3.wav,b-2.wav,b-1.wav,b-0.wav,a-4.wav,a-3.wav");
  g_assert_cmpstr (second_names, ==, "a-2.wav,a-1.wav,a-0.wav");
  assert_page (first, 1, 2, 10, 13, 10);
  assert_page (second, 2, 2, 10, 13, 3);
  /* past the last page: 200, nothing in it */
  assert_page (past, 3, 2, 10, 13, 0);
}

static void
test_list_page_size_from_10_to_1000 (Fixture * f, gconstpointer data)
{
  g_autofree gchar *uuid = create_numbered_batch (f, "a", 12);
  g_autoptr (Response) smallest = list_ok (f, "?page=2&page_size=10");
  g_autoptr (Response) largest = list_ok (f, "?page=1&page_size=1000");

  assert_page (smallest, 2, 2, 10, 12, 2);
  assert_page (largest, 1, 1, 1000, 12, 12);
}

/* Queries GET /detect refuses, the parameter each names, and the message. */
static const struct
{
  const gchar *query;
  const gchar *name;
  const gchar *message;
} bad_list_queries[] = {
  {"", "page", "page is required: an integer >= 1"},
  {"?page_size=10", "page", "page is required: an integer >= 1"},
  {"?page=0", "page", "page must be an integer >= 1, got '0'"},
  {"?page=-1", "page", "page must be an integer >= 1, got '-1'"},
  {"?page=abc", "page", "page must be an integer >= 1, got 'abc'"},
  {"?page=1&page_size=9", "page_size",
      "page_size must be an integer from 10 to 1000, got '9'"},
  {"?page=1&page_size=1001", "page_size",
      "page_size must be an integer from 10 to 1000, got '1001'"},
  {"?page=1&page_size=abc", "page_size",
      "page_size must be an integer from 10 to 1000, got 'abc'"},
};

/* Each bad query of parameter @name is a 400 whose message names it and its
 * bounds, with `errors` naming it, as a bad batch setting is. */
static void
assert_bad_parameter (Fixture * f, const gchar * name)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad_list_queries); i++) {
    const gchar *message = bad_list_queries[i].message;
    g_autoptr (Response) r = NULL;
    JsonObject *errors;

    if (strcmp (bad_list_queries[i].name, name) != 0)
      continue;
    r = list (f, bad_list_queries[i].query, "Bearer " TOKEN);
    assert_error (r, SOUP_STATUS_BAD_REQUEST, message);
    g_assert_cmpstr (message_of (r), ==, message);
    errors = json_object_get_object_member (root_object (r), "errors");
    g_assert_cmpstr (json_array_get_string_element
        (json_object_get_array_member (errors, name), 0), ==, message);
  }
}

static void
test_list_page_must_be_an_integer_from_1 (Fixture * f, gconstpointer data)
{
  assert_bad_parameter (f, "page");
}

static void
test_list_page_size_outside_10_to_1000_is_400 (Fixture * f, gconstpointer data)
{
  assert_bad_parameter (f, "page_size");
}

static void
test_list_is_newest_first (Fixture * f, gconstpointer data)
{
  g_autofree gchar *a = create_numbered_batch (f, "a", 2);
  g_autofree gchar *b = create_numbered_batch (f, "b", 2);
  g_autoptr (Response) r = list_ok (f, "?page=1");
  g_autofree gchar *names = list_filenames (r);
  g_autoptr (GRegex) millis =
      g_regex_new ("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$", 0,
      0, NULL);
  JsonArray *items = list_items (r);
  guint i;

  g_assert_cmpstr (names, ==, "b-1.wav,b-0.wav,a-1.wav,a-0.wav");
  for (i = 0; i < json_array_get_length (items); i++) {
    JsonObject *item = json_array_get_object_element (items, i);
    const gchar *created = json_object_get_string_member (item, "created_at");

    g_assert_true (g_regex_match (millis, created, 0, NULL));
    g_assert_true (g_regex_match (millis, json_object_get_string_member (item,
                "updated_at"), 0, NULL));
    /* the same format sorts as text */
    if (i > 0)
      g_assert_cmpstr (created, <=, json_object_get_string_member
          (json_array_get_object_element (items, i - 1), "created_at"));
  }
}

/* created_at decides, not the order of creation: a batch created while the
 * server's clock ran an hour ahead stays the newest. */
static void
test_list_orders_by_created_at_under_clock_skew (Fixture * f,
    gconstpointer data)
{
  g_autofree gchar *ahead = NULL;
  g_autofree gchar *now = NULL;
  g_autoptr (Response) r = NULL;
  g_autofree gchar *names = NULL;
  g_autoptr (GDateTime) ahead_at = NULL;
  g_autoptr (GDateTime) now_at = NULL;
  JsonArray *items;

  rd_emulator_set_clock_offset (f->emu, 3600 * 1000);
  ahead = create_numbered_batch (f, "ahead", 1);
  rd_emulator_set_clock_offset (f->emu, 0);
  now = create_numbered_batch (f, "now", 1);
  r = list_ok (f, "?page=1");
  names = list_filenames (r);
  items = list_items (r);
  ahead_at = g_date_time_new_from_iso8601 (json_object_get_string_member
      (json_array_get_object_element (items, 0), "created_at"), NULL);
  now_at = g_date_time_new_from_iso8601 (json_object_get_string_member
      (json_array_get_object_element (items, 1), "created_at"), NULL);

  g_assert_cmpstr (names, ==, "ahead-0.wav,now-0.wav");
  g_assert_cmpint (g_date_time_difference (ahead_at, now_at), >=,
      (3600 - 60) * G_TIME_SPAN_SECOND);
}

/* Every item is what GET /detect/{uuid} gives for that detect. */
static void
test_list_items_are_the_detect_items (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("voice.wav", "frame.jpg", "clip.mp4",
      NULL);
  g_autofree gchar *uuid = NULL;
  g_autoptr (Response) r = NULL;
  JsonArray *items;
  guint i;

  soup_multipart_append_form_string (form, "intelligence", "true");
  uuid = create_batch_ok (f, form);
  r = list_ok (f, "?page=1");
  items = list_items (r);
  g_assert_cmpuint (json_array_get_length (items), ==, 3);
  for (i = 0; i < 3; i++) {
    JsonNode *item = json_array_get_element (items, i);
    g_autoptr (Response) single = get_detect (f,
        json_object_get_string_member (json_node_get_object (item), "uuid"));

    g_assert_true (json_node_equal (item, json_object_get_member (root_object
                (single), "item")));
  }
}

static void
test_list_shows_each_detects_own_status (Fixture * f, gconstpointer data)
{
  g_autofree gchar *uuid = NULL;
  g_autoptr (Response) r = NULL;
  JsonObject *item;

  rd_emulator_set_processing_time (f->emu, 60000);
  uuid = create_numbered_batch (f, "slow", 1);
  r = list_ok (f, "?page=1");
  item = json_array_get_object_element (list_items (r), 0);
  g_assert_cmpstr (json_object_get_string_member (item, "status"), ==,
      "processing");
  g_assert_true (json_object_get_null_member (item, "metrics"));
}

static void
test_list_redacts_zero_retention_filenames (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("secret.wav", NULL);
  g_autofree gchar *uuid = NULL;
  g_autofree gchar *plain = NULL;
  g_autofree gchar *detect = NULL;
  g_autoptr (Response) r = NULL;
  g_autoptr (Response) single = NULL;
  g_autofree gchar *names = NULL;
  JsonObject *item;

  soup_multipart_append_form_string (form, "zero_retention_mode", "true");
  uuid = create_batch_ok (f, form);
  plain = create_numbered_batch (f, "open", 1);
  detect = detect_uuid (f, uuid, 0);
  r = list_ok (f, "?page=1");
  single = get_detect (f, detect);
  item = json_array_get_object_element (list_items (r), 1);

  g_assert_cmpstr (json_object_get_string_member (item, "uuid"), ==, detect);
  g_assert_cmpstr (json_object_get_string_member (item, "filename"), ==,
      json_object_get_string_member (item_of (single), "filename"));
  g_assert_true (g_str_has_prefix (json_object_get_string_member (item,
              "filename"), "redacted_"));
  g_assert_true (json_object_get_boolean_member (item, "zero_retention_mode"));
  names = list_filenames (r);
  g_assert_null (strstr (names, "secret"));
  g_assert_true (g_str_has_prefix (names, "open-0.wav,"));
}

static void
test_list_shows_only_the_tokens_own_detects (Fixture * f, gconstpointer data)
{
  g_autofree gchar *mine = create_numbered_batch (f, "mine", 2);
  g_autoptr (Response) created = NULL;
  g_autoptr (Response) ours = NULL;
  g_autoptr (Response) theirs = NULL;
  g_autoptr (Response) newcomer = NULL;
  g_autofree gchar *our_names = NULL;
  g_autofree gchar *their_names = NULL;

  rd_emulator_add_token (f->emu, "other-team");
  rd_emulator_add_token (f->emu, "new-team");
  created = send_with (f->session, form_message (f,
          form_with_files ("theirs.wav", NULL), "Bearer other-team"));
  g_assert_cmpuint (created->status, ==, SOUP_STATUS_ACCEPTED);
  ours = list_ok (f, "?page=1");
  theirs = list (f, "?page=1", "Bearer other-team");
  newcomer = list (f, "?page=1", "Bearer new-team");
  our_names = list_filenames (ours);
  their_names = list_filenames (theirs);

  g_assert_cmpstr (our_names, ==, "mine-1.wav,mine-0.wav");
  assert_page (ours, 1, 1, 10, 2, 2);
  g_assert_cmpstr (their_names, ==, "theirs.wav");
  assert_page (theirs, 1, 1, 10, 1, 1);
  /* no detects: no pages */
  assert_page (newcomer, 1, 0, 10, 0, 0);
}

static void
test_list_without_a_valid_token_is_401 (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) missing = list (f, "?page=1", NULL);
  g_autoptr (Response) wrong = list (f, "?page=1", "Bearer nope");

  assert_error (missing, SOUP_STATUS_UNAUTHORIZED, "Unauthorized");
  assert_error (wrong, SOUP_STATUS_UNAUTHORIZED, "Unauthorized");
}

/* What a client settling a lost answer relies on: a POST that created its
 * batch shows its detects, one refused before the body does not. */
static void
test_list_shows_batches_whose_answer_was_lost (Fixture * f, gconstpointer data)
{
  const RdEmulatorFault created[] = { RD_EMULATOR_FAULT_DROP_AFTER_BODY,
    RD_EMULATOR_FAULT_MALFORMED_JSON
  };
  const RdEmulatorFault refused[] = { RD_EMULATOR_FAULT_503,
    RD_EMULATOR_FAULT_500, RD_EMULATOR_FAULT_429,
    RD_EMULATOR_FAULT_DROP_BEFORE_BODY, RD_EMULATOR_FAULT_DROP_MID_BODY
  };
  g_autoptr (Response) r = NULL;
  g_autofree gchar *names = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (refused); i++) {
    g_autoptr (Response) post = NULL;

    rd_emulator_set_fault (f->emu, refused[i], 1, "POST /api/v2/detect/batch");
    post = post_form_fresh (f, form_with_files ("refused.wav", NULL));
    g_assert_cmpuint (post->status, !=, SOUP_STATUS_ACCEPTED);
    rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_NONE, 0, NULL);
  }
  for (i = 0; i < G_N_ELEMENTS (created); i++) {
    g_autofree gchar *name = g_strdup_printf ("lost-%u.wav", i);
    g_autoptr (Response) post = NULL;

    rd_emulator_set_fault (f->emu, created[i], 1, "POST /api/v2/detect/batch");
    post = post_form_fresh (f, form_with_files (name, NULL));
    g_assert_null (post->json);
    rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_NONE, 0, NULL);
  }
  r = list_ok (f, "?page=1");
  names = list_filenames (r);
  g_assert_cmpstr (names, ==, "lost-1.wav,lost-0.wav");
}

static void
test_list_is_counted_in_the_stats (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) ok = list_ok (f, "?page=1");
  g_autoptr (Response) bad = list (f, "?page=0", "Bearer " TOKEN);
  g_autoptr (JsonNode) node = stats (f);

  g_assert_cmpint (route_count (node, "GET /api/v2/detect", "200"), ==, 1);
  g_assert_cmpint (route_count (node, "GET /api/v2/detect", "400"), ==, 1);
}

static void
test_list_route_allows_only_get (Fixture * f, gconstpointer data)
{
  g_autofree gchar *url = g_strconcat (f->base, "/detect", NULL);
  g_autoptr (Response) r = send_with (f->session,
      new_message (SOUP_METHOD_POST, url, "Bearer " TOKEN));

  assert_error (r, SOUP_STATUS_METHOD_NOT_ALLOWED, "Method not allowed");
  g_assert_cmpstr (soup_message_headers_get_one (r->headers, "Allow"), ==,
      "GET, HEAD");
}

/* A bare "GET /api/v2/detect" prefix also covers the polls and the
 * detects; "GET /api/v2/detect?" is the list alone. */
static void
test_fault_prefix_with_a_query_mark_faults_only_the_list (Fixture * f,
    gconstpointer data)
{
  g_autoptr (Response) listed = NULL;
  g_autoptr (Response) poll = NULL;
  g_autoptr (Response) detect = NULL;
  g_autoptr (Response) create = NULL;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_503, 1,
      "GET /api/v2/detect?");
  listed = list (f, "?page=1", "Bearer " TOKEN);
  poll = get (f, "/detect/batch/x", "Bearer " TOKEN);
  detect = get (f, "/detect/x", "Bearer " TOKEN);
  create = post_form (f, form_with_files ("a.wav", NULL));
  assert_error (listed, SOUP_STATUS_SERVICE_UNAVAILABLE, "emulated fault");
  g_assert_cmpuint (poll->status, ==, SOUP_STATUS_NOT_FOUND);
  g_assert_cmpuint (detect->status, ==, SOUP_STATUS_NOT_FOUND);
  g_assert_cmpuint (create->status, ==, SOUP_STATUS_ACCEPTED);
}

/* ---- fault rates ---- */

static gint64
faults_injected (Fixture * f, const gchar * name)
{
  g_autoptr (JsonNode) node = stats (f);

  return json_object_get_int_member (json_object_get_object_member
      (json_node_get_object (node), "faults_injected"), name);
}

/* The statuses of @n polls of an unknown batch, as "404 500 404 ...". */
static gchar *
poll_statuses (Fixture * f, guint n)
{
  GString *statuses = g_string_new (NULL);
  guint i;

  for (i = 0; i < n; i++) {
    g_autoptr (Response) r = get (f, "/detect/batch/x", "Bearer " TOKEN);

    g_string_append_printf (statuses, i ? " %u" : "%u", r->status);
  }
  return g_string_free (statuses, FALSE);
}

static void
test_fault_rates_give_each_kind_its_share (Fixture * f, gconstpointer data)
{
  const gchar *names[] = { "500", "503", "429" };
  guint counts[3] = { 0, }, answered = 0, i;

  rd_emulator_set_seed (f->emu, 1);
  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_500,
          10, NULL));
  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_503,
          10, NULL));
  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_429,
          10, NULL));
  for (i = 0; i < 2000; i++) {
    g_autoptr (Response) r = get (f, "/detect/batch/x", "Bearer " TOKEN);

    if (r->status == SOUP_STATUS_INTERNAL_SERVER_ERROR)
      counts[0]++;
    else if (r->status == SOUP_STATUS_SERVICE_UNAVAILABLE)
      counts[1]++;
    else if (r->status == 429)
      counts[2]++;
    else if (r->status == SOUP_STATUS_NOT_FOUND)
      answered++;
  }
  for (i = 0; i < 3; i++) {
    g_assert_cmpuint (counts[i], >=, 150);
    g_assert_cmpuint (counts[i], <=, 250);
    g_assert_cmpint (faults_injected (f, names[i]), ==, counts[i]);
  }
  g_assert_cmpuint (answered + counts[0] + counts[1] + counts[2], ==, 2000);
}

static void
test_fault_rate_is_repeated_by_its_seed (Fixture * f, gconstpointer data)
{
  g_autofree gchar *first = NULL;
  g_autofree gchar *again = NULL;
  g_autofree gchar *other = NULL;

  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_500,
          50, NULL));
  rd_emulator_set_seed (f->emu, 42);
  first = poll_statuses (f, 40);
  rd_emulator_set_seed (f->emu, 42);
  again = poll_statuses (f, 40);
  rd_emulator_set_seed (f->emu, 43);
  other = poll_statuses (f, 40);
  g_assert_cmpstr (first, ==, again);
  g_assert_cmpstr (first, !=, other);
  g_assert_nonnull (strstr (first, "500"));
  g_assert_nonnull (strstr (first, "404"));
}

static void
test_fault_rate_prefix_limits_the_rate (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) poll = NULL;
  g_autoptr (Response) detect = NULL;
  g_autoptr (Response) listed = NULL;

  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_500,
          100, "GET /api/v2/detect/batch/"));
  poll = get (f, "/detect/batch/x", "Bearer " TOKEN);
  detect = get (f, "/detect/x", "Bearer " TOKEN);
  listed = list (f, "?page=1", "Bearer " TOKEN);
  g_assert_cmpuint (poll->status, ==, SOUP_STATUS_INTERNAL_SERVER_ERROR);
  g_assert_cmpuint (detect->status, ==, SOUP_STATUS_NOT_FOUND);
  g_assert_cmpuint (listed->status, ==, SOUP_STATUS_OK);
}

static void
test_fault_none_clears_the_rates (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = NULL;

  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_500,
          100, NULL));
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_NONE, 0, NULL);
  r = get (f, "/detect/batch/x", "Bearer " TOKEN);
  g_assert_cmpuint (r->status, ==, SOUP_STATUS_NOT_FOUND);
  g_assert_cmpint (faults_injected (f, "500"), ==, 0);
}

static void
test_fault_rate_and_every_nth_replace_each_other (Fixture * f,
    gconstpointer data)
{
  g_autoptr (Response) after_rate = NULL;
  g_autoptr (Response) after_every_nth = NULL;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_500, 1, NULL);
  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_500,
          0, NULL));
  after_rate = get (f, "/detect/batch/x", "Bearer " TOKEN);
  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_500,
          100, NULL));
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_500, 0, NULL);
  after_every_nth = get (f, "/detect/batch/x", "Bearer " TOKEN);
  g_assert_cmpuint (after_rate->status, ==, SOUP_STATUS_NOT_FOUND);
  g_assert_cmpuint (after_every_nth->status, ==, SOUP_STATUS_NOT_FOUND);
}

static void
test_fault_every_nth_takes_precedence_over_rates (Fixture * f,
    gconstpointer data)
{
  g_autofree gchar *statuses = NULL;

  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_500,
          100, NULL));
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_503, 2, NULL);
  statuses = poll_statuses (f, 4);
  g_assert_cmpstr (statuses, ==, "500 503 500 503");
}

static void
test_fault_rates_over_100_on_one_request_are_refused (Fixture * f,
    gconstpointer data)
{
  g_autoptr (Response) detect = NULL;

  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_500,
          60, NULL));
  /* any request is also under the prefix */
  g_assert_false (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_503,
          50, "/api/v2/detect/batch"));
  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_503,
          40, "/api/v2/detect/batch"));
  /* a refused setting changes nothing */
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_NONE, 0, NULL);
  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_500,
          100, "/api/v2/detect/batch"));
  g_assert_false (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_503,
          100, NULL));
  detect = get (f, "/detect/x", "Bearer " TOKEN);
  g_assert_cmpuint (detect->status, ==, SOUP_STATUS_NOT_FOUND);

  /* prefixes no request can share: other methods, other paths */
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_NONE, 0, NULL);
  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_500,
          60, "GET /api/v2/detect/batch"));
  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_503,
          60, "POST /api/v2/detect/batch"));
  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_429,
          40, "/api/v2/detect/batch"));
  g_assert_false (rd_emulator_set_fault_rate (f->emu,
          RD_EMULATOR_FAULT_SLOW, 1, "/api/v2/detect"));
  g_assert_true (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_SLOW,
          90, "GET /api/v2/detect?"));
}

/* What a soak test runs: every kind at 10% on every route, 80% in all. */
static void
test_fault_rates_of_every_kind_fit_together (Fixture * f, gconstpointer data)
{
  guint i;

  for (i = RD_EMULATOR_FAULT_NONE + 1; i <= RD_EMULATOR_FAULT_DROP_MID_BODY;
      i++)
    g_assert_true (rd_emulator_set_fault_rate (f->emu, i, 10, NULL));
  g_assert_false (rd_emulator_set_fault_rate (f->emu, RD_EMULATOR_FAULT_500,
          30.5, "/api"));
}

/* ---- stats ---- */

static void
test_stats_describe_what_was_received (Fixture * f, gconstpointer data)
{
  SoupMultipart *form = form_with_files ("a.wav", "b.jpg", NULL);
  SoupMessage *msg;
  g_autoptr (Response) r = NULL;
  g_autoptr (JsonNode) node = NULL;
  g_autofree gchar *sha_b = g_compute_checksum_for_string (G_CHECKSUM_SHA256,
      "b.jpg", -1);
  g_autofree gchar *text = NULL;
  JsonObject *batch, *settings, *file;
  JsonArray *files, *uuids, *item_uuids;

  soup_multipart_append_form_string (form, "intelligence", "true");
  soup_multipart_append_form_string (form, "frame_length", "3");
  soup_multipart_append_form_string (form, "future_setting", "kept");
  msg = form_message (f, form, "Bearer " TOKEN);
  soup_message_headers_replace (soup_message_get_request_headers (msg),
      "User-Agent", "test-emulator/1");
  soup_message_headers_replace (soup_message_get_request_headers (msg),
      "Prefer", "respond-async");
  r = send_with (f->session, msg);
  g_assert_cmpuint (r->status, ==, SOUP_STATUS_ACCEPTED);

  node = stats (f);
  batch = stats_batch (node, 0);
  g_assert_cmpstr (json_object_get_string_member (batch, "upload_mode"), ==,
      "files");
  g_assert_cmpstr (json_object_get_string_member (batch, "user_agent"), ==,
      "test-emulator/1");
  g_assert_true (json_object_get_boolean_member (batch, "prefer_present"));
  g_assert_cmpstr (json_object_get_string_member (batch,
          "authorization_scheme"), ==, "Bearer");
  settings = json_object_get_object_member (batch, "settings");
  g_assert_cmpstr (json_object_get_string_member (settings, "intelligence"),
      ==, "true");
  g_assert_cmpstr (json_object_get_string_member (settings, "frame_length"),
      ==, "3");
  g_assert_cmpstr (json_object_get_string_member (settings, "future_setting"),
      ==, "kept");
  files = json_object_get_array_member (batch, "files");
  g_assert_cmpuint (json_array_get_length (files), ==, 2);
  file = json_array_get_object_element (files, 1);
  g_assert_cmpstr (json_object_get_string_member (file, "name"), ==, "b.jpg");
  g_assert_cmpint (json_object_get_int_member (file, "size"), ==, 5);
  g_assert_cmpstr (json_object_get_string_member (file, "sha256"), ==, sha_b);
  uuids = json_object_get_array_member (batch, "detect_uuids");
  item_uuids = json_object_get_array_member (item_of (r), "detect_uuids");
  g_assert_cmpstr (json_array_get_string_element (uuids, 0), ==,
      json_array_get_string_element (item_uuids, 0));
  g_assert_cmpstr (json_array_get_string_element (uuids, 1), ==,
      json_array_get_string_element (item_uuids, 1));
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (node),
          "files_received"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (node),
          "bytes_received"), ==, json_object_get_int_member (batch,
          "body_bytes"));

  text = rd_emulator_get_stats_json (f->emu);
  g_assert_null (strstr (text, TOKEN));
}

static void
test_stats_count_requests_by_route_and_status (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) a = post_form (f, form_with_files ("a.wav", NULL));
  g_autoptr (Response) b = get (f, "/detect/batch/x", "Bearer " TOKEN);
  g_autoptr (Response) c = get (f, "/detect/batch/y", "Bearer " TOKEN);
  g_autoptr (Response) d = get (f, "/detect/z", NULL);
  g_autoptr (JsonNode) node = stats (f);

  g_assert_cmpint (route_count (node, "POST /api/v2/detect/batch", "202"), ==,
      1);
  g_assert_cmpint (route_count (node, "GET /api/v2/detect/batch/{uuid}",
          "404"), ==, 2);
  g_assert_cmpint (route_count (node, "GET /api/v2/detect/{uuid}", "401"), ==,
      1);
}

/* A kept-alive connection is counted once however many requests it
 * carries; another session's is another connection (benchmarks count the
 * connections clients open). */
static void
test_stats_count_connections (Fixture * f, gconstpointer data)
{
  g_autoptr (SoupSession) other = soup_session_new ();
  g_autofree gchar *url = g_strconcat (f->base, "/detect/batch/x", NULL);

  g_assert_cmpint (stats_int (f, "connections_accepted"), ==, 0);
  response_free (get (f, "/detect/batch/x", "Bearer " TOKEN));
  response_free (get (f, "/detect/batch/y", "Bearer " TOKEN));
  g_assert_cmpint (stats_int (f, "connections_accepted"), ==, 1);
  response_free (send_with (other, new_message (SOUP_METHOD_GET, url,
              "Bearer " TOKEN)));
  g_assert_cmpint (stats_int (f, "connections_accepted"), ==, 2);
  response_free (get (f, "/detect/batch/z", "Bearer " TOKEN));
  g_assert_cmpint (stats_int (f, "connections_accepted"), ==, 2);
}

static void
test_stats_route_serves_the_same_json (Fixture * f, gconstpointer data)
{
  g_autofree gchar *uuid = create_batch_ok (f, form_with_files ("a.wav",
          NULL));
  g_autofree gchar *url = g_strconcat (f->root, "/__emulator/stats", NULL);
  g_autoptr (Response) r = send_with (f->session,
      new_message (SOUP_METHOD_GET, url, NULL));
  g_autoptr (JsonNode) node = stats (f);

  g_assert_cmpuint (r->status, ==, SOUP_STATUS_OK);
  g_assert_true (json_node_equal (json_object_get_member (root_object (r),
              "batches"), json_object_get_member (json_node_get_object (node),
              "batches")));
}

static void
test_unknown_route_is_404 (Fixture * f, gconstpointer data)
{
  g_autofree gchar *url = g_strconcat (f->root, "/nowhere", NULL);
  g_autoptr (Response) r = send_with (f->session,
      new_message (SOUP_METHOD_GET, url, NULL));

  assert_error (r, SOUP_STATUS_NOT_FOUND, "Not found");
}

static void
test_wrong_method_is_405 (Fixture * f, gconstpointer data)
{
  g_autoptr (Response) r = get (f, "/detect/batch", "Bearer " TOKEN);

  assert_error (r, SOUP_STATUS_METHOD_NOT_ALLOWED, "Method not allowed");
  g_assert_cmpstr (soup_message_headers_get_one (r->headers, "Allow"), ==,
      "POST");
}

/* ---- concurrency ---- */

typedef struct
{
  Fixture *f;
  guint index;
  gchar *uuid;
  guint status;
} ClientRun;

static gpointer
client_thread (gpointer user_data)
{
  ClientRun *run = user_data;
  g_autoptr (SoupSession) session = soup_session_new ();
  SoupMultipart *form = form_new ();
  g_autoptr (Response) r = NULL;
  guint i;

  for (i = 0; i < 3; i++) {
    g_autofree gchar *name = g_strdup_printf ("client%u-%u.wav", run->index,
        i);
    g_autofree gchar *content = g_strnfill (64 * 1024 + run->index, 'a' + i);
    form_add_file (form, "files[]", name, content);
  }
  r = send_with (session, form_message (run->f, form, "Bearer " TOKEN));
  run->status = r->status;
  if (r->json)
    run->uuid = g_strdup (json_object_get_string_member (item_of (r), "uuid"));
  return NULL;
}

static void
test_concurrent_batches_from_several_clients (Fixture * f, gconstpointer data)
{
  ClientRun runs[4];
  GThread *threads[4];
  guint i, j;

  for (i = 0; i < 4; i++) {
    runs[i].f = f;
    runs[i].index = i;
    runs[i].uuid = NULL;
    runs[i].status = 0;
    threads[i] = g_thread_new ("client", client_thread, &runs[i]);
  }
  for (i = 0; i < 4; i++)
    g_thread_join (threads[i]);
  for (i = 0; i < 4; i++) {
    g_assert_cmpuint (runs[i].status, ==, SOUP_STATUS_ACCEPTED);
    for (j = 0; j < i; j++)
      g_assert_cmpstr (runs[i].uuid, !=, runs[j].uuid);
  }
  g_assert_cmpint (stats_int (f, "batches_created"), ==, 4);
  g_assert_cmpint (stats_int (f, "files_received"), ==, 12);
  for (i = 0; i < 4; i++)
    g_free (runs[i].uuid);
}

/* ---- lifecycle and the program ---- */

static void
test_start_refuses_a_non_loopback_host (void)
{
  g_autoptr (RdEmulator) emu = rd_emulator_new ();
  g_autoptr (GError) error = NULL;

  g_assert_false (rd_emulator_start (emu, "0.0.0.0", 0, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
}

static void
test_emulator_restarts_after_stop (void)
{
  g_autoptr (RdEmulator) emu = rd_emulator_new ();
  g_autoptr (GError) error = NULL;

  g_assert_true (rd_emulator_start (emu, "127.0.0.1", 0, &error));
  rd_emulator_stop (emu);
  g_assert_true (rd_emulator_start (emu, "127.0.0.1", 0, &error));
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (rd_emulator_get_base_url (emu),
          "http://127.0.0.1:"));
}

static const gchar *
program_path (void)
{
  const gchar *path = g_getenv ("RD_EMULATOR_PROGRAM");

  if (path == NULL)
    g_test_skip ("RD_EMULATOR_PROGRAM is not set");
  return path;
}

static void
test_program_prints_its_url_first (void)
{
  const gchar *program = program_path ();
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GDataInputStream) lines = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GRegex) pattern =
      g_regex_new ("^http://127\\.0\\.0\\.1:\\d+/api/v2$", 0, 0, NULL);
  g_autoptr (SoupSession) session = soup_session_new ();
  g_autofree gchar *line = NULL;
  g_autofree gchar *stats_url = NULL;
  g_autoptr (Response) r = NULL;

  if (program == NULL)
    return;
  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
      program, "--port", "0", "--token", "secret-token", NULL);
  g_assert_no_error (error);
  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
  line = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_assert_true (g_regex_match (pattern, line, 0, NULL));

  stats_url = g_strconcat (line, "/detect/batch/x", NULL);
  r = send_with (session, new_message (SOUP_METHOD_GET, stats_url,
          "Bearer secret-token"));
  g_assert_cmpuint (r->status, ==, SOUP_STATUS_NOT_FOUND);

  g_subprocess_send_signal (process, SIGTERM);
  g_assert_true (g_subprocess_wait (process, NULL, &error));
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
}

static void
test_program_refuses_a_non_loopback_host (void)
{
  const gchar *program = program_path ();
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;

  if (program == NULL)
    return;
  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
      G_SUBPROCESS_FLAGS_STDERR_PIPE, &error, program, "--host", "0.0.0.0",
      NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (process, NULL, NULL, &out,
          &err, &error));
  g_assert_false (g_subprocess_get_successful (process));
  g_assert_cmpstr (out, ==, "");
  g_assert_nonnull (strstr (err, "loopback"));
}

/* Runs the program with @args (NULL-terminated) and "--exit-after-ms 100"
 * to its end: whether it succeeded; *out is its stdout. */
static gboolean
run_program (const gchar * const *args, gchar ** out)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GError) error = NULL;

  g_ptr_array_add (argv, (gpointer) program_path ());
  g_ptr_array_add (argv, (gpointer) "--exit-after-ms");
  g_ptr_array_add (argv, (gpointer) "100");
  for (; *args; args++)
    g_ptr_array_add (argv, (gpointer) * args);
  g_ptr_array_add (argv, NULL);
  process = g_subprocess_newv ((const gchar * const *) argv->pdata,
      G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
      &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (process, NULL, NULL, out,
          NULL, &error));
  return g_subprocess_get_successful (process);
}

/* Started with @args, the program serves: its first line is its URL. */
static void
assert_program_serves (const gchar * const *args)
{
  g_autofree gchar *out = NULL;

  g_assert_true (run_program (args, &out));
  g_assert_true (g_str_has_prefix (out, "http://127.0.0.1:"));
}

/* Started with @args, the program fails before printing anything. */
static void
assert_program_refuses (const gchar * const *args)
{
  g_autofree gchar *out = NULL;

  g_assert_false (run_program (args, &out));
  g_assert_cmpstr (out, ==, "");
}

static void
test_program_exits_after_the_asked_time (void)
{
  const gchar *args[] = { "--fault", "500:3:/api/v2", NULL };

  if (program_path () != NULL)
    assert_program_serves (args);
}

static void
test_program_rejects_an_unknown_fault (void)
{
  const gchar *args[] = { "--fault", "teapot:1", NULL };

  if (program_path () != NULL)
    assert_program_refuses (args);
}

static void
test_program_accepts_fault_rates_and_a_seed (void)
{
  const gchar *args[] = { "--fault", "500:10%", "--fault",
    "slow:10%:GET /api/v2/detect?", "--fault", "503:2.5%:/api/v2", "--seed",
    "7", NULL
  };

  if (program_path () != NULL)
    assert_program_serves (args);
}

static void
test_program_rejects_a_bad_fault_rate (void)
{
  const gchar *specs[] = { "500:101%", "500:x%", "500:-1%", "500:%",
    "500:10%%"
  };
  const gchar *overlapping[] = { "--fault", "500:60%", "--fault",
    "503:50%:/api/v2/detect", NULL
  };
  guint i;

  if (program_path () == NULL)
    return;
  for (i = 0; i < G_N_ELEMENTS (specs); i++) {
    const gchar *args[] = { "--fault", specs[i], NULL };

    assert_program_refuses (args);
  }
  assert_program_refuses (overlapping);
}

#define ADD(path, func) \
  g_test_add ("/emulator/" path, Fixture, NULL, fixture_set_up, func, \
      fixture_tear_down)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("auth/missing-token-is-401", test_missing_token_is_401);
  ADD ("auth/wrong-token-is-401", test_wrong_token_is_401);
  ADD ("auth/bearer-token-is-accepted", test_bearer_token_is_accepted);
  ADD ("auth/legacy-token-is-accepted", test_legacy_token_is_accepted);
  ADD ("auth/set-token-replaces-the-token", test_set_token_replaces_the_token);
  ADD ("auth/checked-before-the-body", test_auth_is_checked_before_the_body);

  ADD ("create/no-media-is-400", test_no_media_is_400);
  ADD ("create/files-and-zip-together-is-400",
      test_files_and_zip_together_is_400);
  ADD ("create/more-than-50-files-is-400", test_more_than_50_files_is_400);
  ADD ("create/50-files-are-accepted", test_50_files_are_accepted);
  ADD ("create/chunked-upload-is-accepted", test_chunked_upload_is_accepted);
  ADD ("create/total-size-over-the-limit-is-400",
      test_total_size_over_the_limit_is_400);
  ADD ("create/declared-length-over-the-limit-is-400-before-the-body",
      test_declared_length_over_the_limit_is_400_before_the_body);
  ADD ("create/unsupported-extension-is-400",
      test_unsupported_extension_is_400);
  ADD ("create/extensions-are-case-insensitive",
      test_extensions_are_case_insensitive);
  ADD ("create/empty-file-is-400", test_empty_file_is_400);
  ADD ("create/malformed-boolean-is-400", test_malformed_boolean_is_400);
  ADD ("create/frame-length-outside-1-to-4-is-400",
      test_frame_length_outside_1_to_4_is_400);
  ADD ("create/non-numeric-region-is-400", test_non_numeric_region_is_400);
  ADD ("create/end-region-before-start-is-400",
      test_end_region_before_start_is_400);
  ADD ("create/bad-callback-url-is-400", test_bad_callback_url_is_400);
  ADD ("create/prefer-wait-is-400", test_prefer_wait_is_400);
  ADD ("create/non-multipart-body-is-400", test_non_multipart_body_is_400);
  ADD ("create/zip-field-without-zip-is-400",
      test_zip_field_without_zip_is_400);
  ADD ("create/unknown-file-field-is-400", test_unknown_file_field_is_400);
  ADD ("create/wallet-short-is-402-with-estimates",
      test_wallet_short_is_402_with_estimates);
  ADD ("create/wallet-is-charged-per-file", test_wallet_is_charged_per_file);
  ADD ("create/intelligence-limit-is-403-with-details",
      test_intelligence_limit_is_403_with_details);
  ADD ("create/intelligence-limit-ignores-batches-without-it",
      test_intelligence_limit_ignores_batches_without_it);
  ADD ("create/answers-202-with-the-documented-item",
      test_create_answers_202_with_the_documented_item);

  ADD ("batch/unknown-batch-is-404", test_unknown_batch_is_404);
  ADD ("batch/unknown-detect-is-404", test_unknown_detect_is_404);
  ADD ("batch/other-tokens-batch-is-404", test_other_tokens_batch_is_404);
  ADD ("batch/uuids-may-be-given-without-dashes",
      test_uuids_may_be_given_without_dashes);
  ADD ("batch/zero-processing-time-is-terminal-at-once",
      test_zero_processing_time_is_terminal_at_once);
  ADD ("batch/counts-advance-per-file", test_batch_counts_advance_per_file);
  ADD ("batch/failures-make-it-partially-failed",
      test_failures_make_the_batch_partially_failed);
  ADD ("batch/all-failures-make-it-failed",
      test_all_failures_make_the_batch_failed);
  ADD ("batch/fail-rate-is-deterministic-per-content",
      test_fail_rate_is_deterministic_per_content);
  ADD ("batch/concurrent-batches-from-several-clients",
      test_concurrent_batches_from_several_clients);

  ADD ("result/audio-has-string-typed-metrics",
      test_audio_result_has_string_typed_metrics);
  ADD ("result/image-uses-image-metrics", test_image_result_uses_image_metrics);
  ADD ("result/video-has-video-and-audio-metrics",
      test_video_result_has_video_and_audio_metrics);
  ADD ("result/says-it-is-emulated", test_results_say_they_are_emulated);
  ADD ("result/same-content-gets-the-same-verdict",
      test_same_content_gets_the_same_verdict);
  ADD ("result/processing-has-no-metrics",
      test_processing_result_has_no_metrics);
  ADD ("result/audio-source-tracing-only-for-fake-audio",
      test_audio_source_tracing_only_for_fake_audio);
  ADD ("result/zero-retention-redacts-and-deletes",
      test_zero_retention_redacts_and_deletes);
  ADD ("result/zero-retention-deletes-only-after-completion",
      test_zero_retention_deletes_only_after_completion);

  ADD ("zip/entries-are-flattened-and-filtered",
      test_zip_entries_are_flattened_and_filtered);
  ADD ("zip/without-media-is-400", test_zip_without_media_is_400);
  ADD ("zip/unreadable-is-400", test_unreadable_zip_is_400);
  ADD ("zip/with-an-empty-entry-is-400", test_zip_with_an_empty_entry_is_400);

  ADD ("callback/posted-once-when-terminal",
      test_callback_is_posted_once_when_terminal);
  ADD ("callback/answered-with-an-error-is-not-retried",
      test_callback_answered_with_an_error_is_not_retried);
  ADD ("callback/unreachable-is-recorded-as-failed",
      test_unreachable_callback_is_recorded_as_failed);
  ADD ("callback/non-loopback-is-not-sent",
      test_non_loopback_callback_is_not_sent);

  ADD ("fault/every-nth-request-gets-500", test_every_nth_request_gets_500);
  ADD ("fault/503-answers-before-accepting",
      test_fault_503_answers_before_accepting);
  ADD ("fault/path-prefix-limits-the-fault",
      test_fault_path_prefix_limits_the_fault);
  ADD ("fault/prefix-may-name-a-method", test_fault_prefix_may_name_a_method);
  ADD ("fault/429-carries-retry-after", test_fault_429_carries_retry_after);
  ADD ("fault/none-turns-every-fault-off",
      test_fault_none_turns_every_fault_off);
  ADD ("fault/never-hits-the-stats-route",
      test_faults_never_hit_the_stats_route);
  ADD ("fault/drop-before-body-creates-nothing",
      test_drop_before_body_creates_nothing);
  ADD ("fault/drop-mid-body-creates-nothing",
      test_drop_mid_body_creates_nothing);
  ADD ("fault/drop-after-body-still-creates-the-batch",
      test_drop_after_body_still_creates_the_batch);
  ADD ("fault/slow-delays-the-answer", test_slow_fault_delays_the_answer);
  ADD ("fault/malformed-json-sends-a-broken-body",
      test_malformed_json_fault_sends_a_broken_body);
  ADD ("fault/stop-while-an-answer-is-held-back",
      test_stop_while_an_answer_is_held_back);
  ADD ("fault/prefix-with-a-query-mark-faults-only-the-list",
      test_fault_prefix_with_a_query_mark_faults_only_the_list);
  ADD ("fault/rates-give-each-kind-its-share",
      test_fault_rates_give_each_kind_its_share);
  ADD ("fault/rate-is-repeated-by-its-seed",
      test_fault_rate_is_repeated_by_its_seed);
  ADD ("fault/rate-prefix-limits-the-rate",
      test_fault_rate_prefix_limits_the_rate);
  ADD ("fault/none-clears-the-rates", test_fault_none_clears_the_rates);
  ADD ("fault/rate-and-every-nth-replace-each-other",
      test_fault_rate_and_every_nth_replace_each_other);
  ADD ("fault/every-nth-takes-precedence-over-rates",
      test_fault_every_nth_takes_precedence_over_rates);
  ADD ("fault/rates-over-100-on-one-request-are-refused",
      test_fault_rates_over_100_on_one_request_are_refused);
  ADD ("fault/rates-of-every-kind-fit-together",
      test_fault_rates_of_every_kind_fit_together);

  ADD ("list/pages-through-every-detect", test_list_pages_through_every_detect);
  ADD ("list/page-size-from-10-to-1000", test_list_page_size_from_10_to_1000);
  ADD ("list/page-must-be-an-integer-from-1",
      test_list_page_must_be_an_integer_from_1);
  ADD ("list/page-size-outside-10-to-1000-is-400",
      test_list_page_size_outside_10_to_1000_is_400);
  ADD ("list/is-newest-first", test_list_is_newest_first);
  ADD ("list/orders-by-created-at-under-clock-skew",
      test_list_orders_by_created_at_under_clock_skew);
  ADD ("list/items-are-the-detect-items", test_list_items_are_the_detect_items);
  ADD ("list/shows-each-detects-own-status",
      test_list_shows_each_detects_own_status);
  ADD ("list/redacts-zero-retention-filenames",
      test_list_redacts_zero_retention_filenames);
  ADD ("list/shows-only-the-tokens-own-detects",
      test_list_shows_only_the_tokens_own_detects);
  ADD ("list/without-a-valid-token-is-401",
      test_list_without_a_valid_token_is_401);
  ADD ("list/shows-batches-whose-answer-was-lost",
      test_list_shows_batches_whose_answer_was_lost);
  ADD ("list/is-counted-in-the-stats", test_list_is_counted_in_the_stats);
  ADD ("list/route-allows-only-get", test_list_route_allows_only_get);

  ADD ("stats/describe-what-was-received",
      test_stats_describe_what_was_received);
  ADD ("stats/count-requests-by-route-and-status",
      test_stats_count_requests_by_route_and_status);
  ADD ("stats/count-connections", test_stats_count_connections);
  ADD ("stats/route-serves-the-same-json",
      test_stats_route_serves_the_same_json);
  ADD ("route/unknown-is-404", test_unknown_route_is_404);
  ADD ("route/wrong-method-is-405", test_wrong_method_is_405);

  g_test_add_func ("/emulator/lifecycle/start-refuses-a-non-loopback-host",
      test_start_refuses_a_non_loopback_host);
  g_test_add_func ("/emulator/lifecycle/restarts-after-stop",
      test_emulator_restarts_after_stop);
  g_test_add_func ("/emulator/program/prints-its-url-first",
      test_program_prints_its_url_first);
  g_test_add_func ("/emulator/program/refuses-a-non-loopback-host",
      test_program_refuses_a_non_loopback_host);
  g_test_add_func ("/emulator/program/exits-after-the-asked-time",
      test_program_exits_after_the_asked_time);
  g_test_add_func ("/emulator/program/rejects-an-unknown-fault",
      test_program_rejects_an_unknown_fault);
  g_test_add_func ("/emulator/program/accepts-fault-rates-and-a-seed",
      test_program_accepts_fault_rates_and_a_seed);
  g_test_add_func ("/emulator/program/rejects-a-bad-fault-rate",
      test_program_rejects_a_bad_fault_rate);

  return g_test_run ();
}
