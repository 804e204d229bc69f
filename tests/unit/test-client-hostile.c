/* Tests of the API client against answers that are not what the API
 * documents: malformed, truncated, huge (over 16 MB) and type-confused
 * JSON on every endpoint it calls (POST /detect/batch, GET
 * /detect/batch/{uuid}, GET /detect/{uuid}, GET /detect?page=, and their
 * error answers), a 202 without a uuid or with the wrong number of detect
 * uuids, a 2xx in the wrong Content-Type (a captive portal's login page, a
 * proxy's octet-stream), and a redirect to another host, which must not
 * take the token there. Each one must end the batch with a reason that
 * says what came, never crash, never carry the token, and keep every file
 * the API did not confirm.
 *
 * A stand-in API (a SoupServer on its own thread, on 127.0.0.1) answers
 * each endpoint as the test tells it; a second server on 127.0.0.2, a
 * different host, is where its redirects point and counts what reaches
 * it. */
#include "client.h"
#include "manifest.h"
#include "rd-test-utils.h"

#include <libsoup/soup.h>
#include <glib/gstdio.h>
#include <string.h>

#define TOKEN "tok-Hostile-7d1e5b"
#define WAIT_S 60
/* Over the client's 16 MB cap, and more than the socket buffers of the
 * loopback hold, so that a body the client stops reading is not sent
 * whole. */
#define HUGE_BYTES (96 * 1024 * 1024)
#define HUGE_CHUNK_BYTES (256 * 1024)
#define BATCH_UUID "hb-1"

/* ---- the stand-in API ---- */

typedef enum
{
  ROUTE_POST,                   /* POST /detect/batch */
  ROUTE_BATCH,                  /* GET /detect/batch/{uuid} */
  ROUTE_DETECT,                 /* GET /detect/{uuid} */
  ROUTE_LIST,                   /* GET /detect?page=&page_size= */
  N_ROUTES
} Route;

typedef enum
{
  BODY_TEXT,
  BODY_HUGE_WITH_LENGTH,        /* Content-Length: HUGE_BYTES */
  BODY_HUGE_CHUNKED,            /* no length: the client must count */
} BodyKind;

typedef struct
{
  guint status;
  const gchar *content_type;
  const gchar *body;            /* BODY_TEXT; NULL: the route's good answer */
  BodyKind kind;
  gboolean redirect;            /* Location: the same path on 127.0.0.2 */
} Answer;

typedef struct
{
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  SoupServer *api;
  SoupServer *elsewhere;
  gchar *base_url;
  gchar *elsewhere_origin;      /* http://127.0.0.2:PORT */
  GBytes *filler;               /* one chunk of a huge body */

  GMutex lock;
  GCond cond;
  gboolean ready;
  Answer answers[N_ROUTES];     /* set before the client starts */
  guint requests[N_ROUTES];
  guint elsewhere_requests;
  guint64 huge_written;
  guint huge_started;
  guint huge_finished;
} HostileApi;

static const gchar *const good_bodies[N_ROUTES] = {
  [ROUTE_POST] = "{\"success\":true,\"item\":{\"uuid\":\"" BATCH_UUID "\","
      "\"status\":\"processing\",\"total_files\":3,\"completed_count\":0,"
      "\"failed_count\":0,\"detect_uuids\":[\"hd-0\",\"hd-1\",\"hd-2\"]}}",
  [ROUTE_BATCH] = "{\"success\":true,\"item\":{\"uuid\":\"" BATCH_UUID "\","
      "\"status\":\"completed\",\"total_files\":3,\"completed_count\":3,"
      "\"failed_count\":0,\"detect_uuids\":[\"hd-0\",\"hd-1\",\"hd-2\"]}}",
  [ROUTE_DETECT] = "{\"success\":true,\"item\":{\"uuid\":\"hd-0\","
      "\"status\":\"completed\",\"media_type\":\"audio\",\"metrics\":"
      "{\"label\":\"real\",\"score\":[\"0.1\"],\"aggregated_score\":0.1}}}",
  [ROUTE_LIST] = "{\"success\":false,\"message\":\"no list here\"}",
};

static const guint good_statuses[N_ROUTES] = {
  [ROUTE_POST] = SOUP_STATUS_ACCEPTED,
  [ROUTE_BATCH] = SOUP_STATUS_OK,
  [ROUTE_DETECT] = SOUP_STATUS_OK,
  [ROUTE_LIST] = SOUP_STATUS_NOT_FOUND,
};

static gboolean
route_of (SoupServerMessage * msg, const gchar * path, Route * route)
{
  gboolean is_post = g_str_equal (soup_server_message_get_method (msg), "POST");

  if (is_post && g_str_equal (path, "/api/v2/detect/batch"))
    *route = ROUTE_POST;
  else if (is_post)
    return FALSE;
  else if (g_str_has_prefix (path, "/api/v2/detect/batch/"))
    *route = ROUTE_BATCH;
  else if (g_str_equal (path, "/api/v2/detect"))
    *route = ROUTE_LIST;
  else if (g_str_has_prefix (path, "/api/v2/detect/"))
    *route = ROUTE_DETECT;
  else
    return FALSE;
  return TRUE;
}

typedef struct
{
  HostileApi *api;
  guint64 appended;
} HugeBody;

static void
huge_next_chunk (SoupServerMessage * msg, HugeBody * huge)
{
  SoupMessageBody *body = soup_server_message_get_response_body (msg);
  gsize size = g_bytes_get_size (huge->api->filler);

  if (huge->appended >= HUGE_BYTES) {
    soup_message_body_complete (body);
    return;
  }
  soup_message_body_append_bytes (body, huge->api->filler);
  huge->appended += size;
}

static void
huge_wrote_data (SoupServerMessage * msg, guint size, HugeBody * huge)
{
  g_mutex_lock (&huge->api->lock);
  huge->api->huge_written += size;
  g_mutex_unlock (&huge->api->lock);
}

static void
huge_finished (SoupServerMessage * msg, HugeBody * huge)
{
  g_mutex_lock (&huge->api->lock);
  huge->api->huge_finished++;
  g_cond_broadcast (&huge->api->cond);
  g_mutex_unlock (&huge->api->lock);
}

/* A body of HUGE_BYTES made as it is sent, never held whole. */
static void
answer_huge (HostileApi * api, SoupServerMessage * msg, const Answer * answer)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  HugeBody *huge = g_new0 (HugeBody, 1);

  huge->api = api;
  soup_server_message_set_status (msg, answer->status, NULL);
  soup_message_headers_set_content_type (headers, "application/json", NULL);
  if (answer->kind == BODY_HUGE_WITH_LENGTH) {
    soup_message_headers_set_content_length (headers, HUGE_BYTES);
  } else {
    soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  }
  soup_message_body_set_accumulate (soup_server_message_get_response_body
      (msg), FALSE);
  g_signal_connect (msg, "wrote-headers", G_CALLBACK (huge_next_chunk), huge);
  g_signal_connect (msg, "wrote-chunk", G_CALLBACK (huge_next_chunk), huge);
  g_signal_connect (msg, "wrote-body-data", G_CALLBACK (huge_wrote_data), huge);
  g_signal_connect (msg, "finished", G_CALLBACK (huge_finished), huge);
  g_object_set_data_full (G_OBJECT (msg), "huge", huge, g_free);
  g_mutex_lock (&api->lock);
  api->huge_started++;
  g_mutex_unlock (&api->lock);
}

static void
answer_text (SoupServerMessage * msg, guint status, const gchar * type,
    const gchar * body)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, type, SOUP_MEMORY_COPY, body,
      strlen (body));
}

static void
api_handle (SoupServer * server, SoupServerMessage * msg, const char *path,
    GHashTable * query, gpointer user_data)
{
  HostileApi *api = user_data;
  Answer answer;
  Route route;

  if (!route_of (msg, path, &route)) {
    answer_text (msg, SOUP_STATUS_NOT_FOUND, "application/json",
        "{\"success\":false,\"message\":\"no such route\"}");
    return;
  }
  g_mutex_lock (&api->lock);
  answer = api->answers[route];
  api->requests[route]++;
  g_mutex_unlock (&api->lock);

  if (answer.redirect) {
    g_autofree gchar *location = g_strconcat (api->elsewhere_origin, path,
        NULL);

    soup_server_message_set_redirect (msg, answer.status, location);
  } else if (answer.kind != BODY_TEXT) {
    answer_huge (api, msg, &answer);
  } else {
    answer_text (msg, answer.status, answer.content_type,
        answer.body ? answer.body : good_bodies[route]);
  }
}

/* The other host: whatever reaches it is counted (no request may, with or
 * without the token). It answers as the API would, so that a client
 * following there would go on. */
static void
elsewhere_handle (SoupServer * server, SoupServerMessage * msg,
    const char *path, GHashTable * query, gpointer user_data)
{
  HostileApi *api = user_data;
  Route route = ROUTE_LIST;

  g_mutex_lock (&api->lock);
  api->elsewhere_requests++;
  g_mutex_unlock (&api->lock);
  if (!route_of (msg, path, &route))
    route = ROUTE_LIST;
  answer_text (msg, good_statuses[route], "application/json",
      good_bodies[route]);
}

static SoupServer *
listen_on (const gchar * address, SoupServerCallback handler, gpointer data,
    gchar ** origin)
{
  g_autoptr (GSocketAddress) where =
      g_inet_socket_address_new_from_string (address, 0);
  g_autoptr (GError) error = NULL;
  SoupServer *server = soup_server_new (NULL, NULL);
  GSList *uris;

  soup_server_add_handler (server, NULL, handler, data, NULL);
  g_assert_true (soup_server_listen (server, where, 0, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (server);
  *origin = g_strdup_printf ("http://%s:%d", address,
      g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  return server;
}

static gpointer
api_thread (gpointer user_data)
{
  HostileApi *api = user_data;
  g_autofree gchar *origin = NULL;

  g_main_context_push_thread_default (api->context);
  api->api = listen_on ("127.0.0.1", api_handle, api, &origin);
  api->elsewhere = listen_on ("127.0.0.2", elsewhere_handle, api,
      &api->elsewhere_origin);
  g_mutex_lock (&api->lock);
  api->base_url = g_strconcat (origin, "/api/v2", NULL);
  api->ready = TRUE;
  g_cond_broadcast (&api->cond);
  g_mutex_unlock (&api->lock);

  g_main_loop_run (api->loop);
  soup_server_disconnect (api->api);
  soup_server_disconnect (api->elsewhere);
  g_clear_object (&api->api);
  g_clear_object (&api->elsewhere);
  while (g_main_context_iteration (api->context, FALSE));
  g_main_context_pop_thread_default (api->context);
  return NULL;
}

static HostileApi *
api_start (void)
{
  HostileApi *api = g_new0 (HostileApi, 1);
  g_autofree gchar *filler = g_strnfill (HUGE_CHUNK_BYTES, ' ');
  guint i;

  /* a JSON object that never ends */
  filler[0] = '{';
  api->filler = g_bytes_new (filler, HUGE_CHUNK_BYTES);
  for (i = 0; i < N_ROUTES; i++) {
    api->answers[i].status = good_statuses[i];
    api->answers[i].content_type = "application/json";
  }
  g_mutex_init (&api->lock);
  g_cond_init (&api->cond);
  api->context = g_main_context_new ();
  api->loop = g_main_loop_new (api->context, FALSE);
  api->thread = g_thread_new ("hostile-api", api_thread, api);
  g_mutex_lock (&api->lock);
  while (!api->ready)
    g_cond_wait (&api->cond, &api->lock);
  g_mutex_unlock (&api->lock);
  return api;
}

static gboolean
quit_loop (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static void
api_free (HostileApi * api)
{
  g_main_context_invoke (api->context, quit_loop, api->loop);
  g_thread_join (api->thread);
  g_main_loop_unref (api->loop);
  g_main_context_unref (api->context);
  g_bytes_unref (api->filler);
  g_free (api->base_url);
  g_free (api->elsewhere_origin);
  g_mutex_clear (&api->lock);
  g_cond_clear (&api->cond);
  g_free (api);
}

/* Requests that reached @route, or with @route N_ROUTES the other host. */
static guint
api_count (HostileApi * api, Route route)
{
  guint count;

  g_mutex_lock (&api->lock);
  count = route == N_ROUTES ? api->elsewhere_requests : api->requests[route];
  g_mutex_unlock (&api->lock);
  return count;
}

static void
api_set_answer (HostileApi * api, Route route, const Answer * answer)
{
  g_mutex_lock (&api->lock);
  api->answers[route] = *answer;
  g_mutex_unlock (&api->lock);
}

/* Every huge answer started has ended (sent, or dropped by the client);
 * how many bytes of them went out. */
static guint64
api_wait_huge_written (HostileApi * api)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_S * G_TIME_SPAN_SECOND;
  guint64 written;

  g_mutex_lock (&api->lock);
  while (api->huge_finished < api->huge_started)
    if (!g_cond_wait_until (&api->cond, &api->lock, deadline))
      g_error ("a huge answer did not end");
  written = api->huge_written;
  g_mutex_unlock (&api->lock);
  return written;
}

/* ---- what the client said of the one batch ---- */

typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean finished;
  gboolean done;
  guint http_status;
  gchar *reason;
  GPtrArray *results;           /* GstStructure* of done */
  guint submitted;
  gchar **submitted_uuids;
  gchar *outage_reason;         /* the first outage's */
  gchar *warnings;              /* every callback's text, for the token */
} Said;

static void
said_append (Said * said, const gchar * text)
{
  gchar *all = g_strconcat (said->warnings ? said->warnings : "", text, "\n",
      NULL);

  g_free (said->warnings);
  said->warnings = all;
}

static void
on_submitted (const RdBatch * batch, gpointer user_data)
{
  Said *said = user_data;
  guint i;

  g_mutex_lock (&said->lock);
  said->submitted++;
  g_strfreev (said->submitted_uuids);
  said->submitted_uuids = g_new0 (gchar *, batch->files->len + 1);
  for (i = 0; i < batch->files->len; i++) {
    const RdBatchFile *file = g_ptr_array_index (batch->files, i);

    said->submitted_uuids[i] = g_strdup (file->detect_uuid ?
        file->detect_uuid : "");
  }
  g_mutex_unlock (&said->lock);
}

static void
on_done (const RdBatch * batch, const GPtrArray * results, gpointer user_data)
{
  Said *said = user_data;
  guint i;

  g_mutex_lock (&said->lock);
  said->finished = said->done = TRUE;
  said->results = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_structure_free);
  for (i = 0; i < results->len; i++) {
    g_autofree gchar *text = gst_structure_to_string (results->pdata[i]);

    g_ptr_array_add (said->results, gst_structure_copy (results->pdata[i]));
    said_append (said, text);
  }
  g_cond_broadcast (&said->cond);
  g_mutex_unlock (&said->lock);
}

static void
on_error (const RdBatch * batch, guint http_status, const gchar * reason,
    const GstStructure * details, gboolean cancelled, gpointer user_data)
{
  Said *said = user_data;

  g_mutex_lock (&said->lock);
  said->finished = TRUE;
  said->http_status = http_status;
  said->reason = g_strdup (reason);
  said_append (said, reason);
  if (details) {
    g_autofree gchar *text = gst_structure_to_string (details);

    said_append (said, text);
  }
  g_cond_broadcast (&said->cond);
  g_mutex_unlock (&said->lock);
}

static void
on_outage (gboolean started, const gchar * reason, guint waiting,
    GstClockTime lasted, gpointer user_data)
{
  Said *said = user_data;

  g_mutex_lock (&said->lock);
  if (started && said->outage_reason == NULL)
    said->outage_reason = g_strdup (reason);
  if (reason)
    said_append (said, reason);
  g_cond_broadcast (&said->cond);
  g_mutex_unlock (&said->lock);
}

static const RdClientCallbacks callbacks = {
  .submitted = on_submitted,
  .done = on_done,
  .error = on_error,
  .outage = on_outage,
};

/* ---- fixture: the stand-in API, a spool, a client ---- */

typedef struct
{
  HostileApi *api;
  gchar *spool;
  gchar *batch_dir;
  RdClientConfig config;
  RdClient *client;
  Said said;
} Fixture;

static const gchar *const file_names[] = { "seg-a.wav", "seg-b.mp3",
  "snap-c.jpg", NULL
};

static void
fixture_setup (Fixture * f, gconstpointer data)
{
  f->api = api_start ();
  f->spool = rd_test_make_tmp_dir ("test-client-hostile-XXXXXX");
  f->config.api_url = f->api->base_url;
  f->config.token = TOKEN;
  f->config.user_agent = "gst-resembledetect/test";
  /* a failure is final at once, but for outages (see run_batch) */
  f->config.max_retries = 0;
  f->config.max_in_flight = 1;
  f->config.poll_interval = 20 * GST_MSECOND;
  f->config.poll_max_interval = 100 * GST_MSECOND;
  f->config.poll_timeout = 60 * GST_SECOND;
  f->config.fetch_results = TRUE;
  f->config.keep_files = FALSE;
  g_mutex_init (&f->said.lock);
  g_cond_init (&f->said.cond);
}

static void
fixture_teardown (Fixture * f, gconstpointer data)
{
  rd_client_free (f->client);
  api_free (f->api);
  rd_test_remove_tree (f->spool);
  g_free (f->spool);
  g_free (f->batch_dir);
  g_free (f->said.reason);
  g_clear_pointer (&f->said.results, g_ptr_array_unref);
  g_strfreev (f->said.submitted_uuids);
  g_free (f->said.outage_reason);
  g_free (f->said.warnings);
  g_mutex_clear (&f->said.lock);
  g_cond_clear (&f->said.cond);
}

/* A batch of three small files on disk, closed (to be sent) or, with
 * @submitted, accepted earlier as BATCH_UUID (to be polled). */
static RdBatch *
make_batch (Fixture * f, gboolean submitted)
{
  RdBatch *batch = rd_batch_new (1, f->spool);
  g_autoptr (GError) error = NULL;
  guint i;

  g_assert_cmpint (g_mkdir_with_parents (batch->dir, 0700), ==, 0);
  for (i = 0; file_names[i]; i++) {
    g_autofree gchar *contents = g_strdup_printf ("file %u of the batch", i);
    g_autofree gchar *path = rd_test_write_file (batch->dir, file_names[i],
        contents, -1);
    RdBatchFile *file = rd_batch_file_new (file_names[i], strlen (contents),
        i == 2 ? RD_MEDIA_TYPE_IMAGE : RD_MEDIA_TYPE_AUDIO,
        i * 10 * GST_SECOND, 10 * GST_SECOND);

    if (submitted)
      file->detect_uuid = g_strdup_printf ("hd-%u", i);
    rd_batch_add_file (batch, file);
  }
  batch->state = RD_BATCH_STATE_CLOSED;
  if (submitted) {
    batch->state = RD_BATCH_STATE_SUBMITTED;
    batch->uuid = g_strdup (BATCH_UUID);
  }
  g_assert_true (rd_manifest_write (batch, &error));
  g_assert_no_error (error);
  f->batch_dir = g_strdup (batch->dir);
  return batch;
}

/* Sends one batch and waits for its end. A batch whose requests found no
 * API (what is not the API's answer counts as none) waits on disk for an
 * outage to end: the client is drained, as at EOS, and it ends then. */
static void
run_batch (Fixture * f, gboolean submitted)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_S * G_TIME_SPAN_SECOND;
  g_autoptr (GError) error = NULL;
  gboolean drained = FALSE;

  f->client = rd_client_new (&f->config, &callbacks, &f->said);
  g_assert_true (rd_client_start (f->client, &error));
  g_assert_no_error (error);
  rd_client_submit (f->client, make_batch (f, submitted));

  g_mutex_lock (&f->said.lock);
  while (!f->said.finished) {
    if (f->said.outage_reason && !drained) {
      drained = TRUE;
      g_mutex_unlock (&f->said.lock);
      rd_client_drain (f->client);
      g_mutex_lock (&f->said.lock);
      continue;
    }
    if (!g_cond_wait_until (&f->said.cond, &f->said.lock, deadline))
      g_error ("the batch did not end within %d s", WAIT_S);
  }
  g_mutex_unlock (&f->said.lock);
  rd_client_free (g_steal_pointer (&f->client));
}

static RdBatch *
read_manifest (Fixture * f)
{
  g_autoptr (GError) error = NULL;
  RdBatch *batch = rd_manifest_read (f->batch_dir, &error);

  g_assert_no_error (error);
  return batch;
}

static void
assert_files_kept (Fixture * f)
{
  guint i;

  for (i = 0; file_names[i]; i++) {
    g_autofree gchar *path = g_build_filename (f->batch_dir, file_names[i],
        NULL);

    g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));
  }
}

static void
assert_contains (const gchar * text, const gchar * needle)
{
  if (text == NULL || strstr (text, needle) == NULL)
    g_error ("\"%s\" is not in \"%s\"", needle, text ? text : "(null)");
}

/* What holds after every hostile answer: no token in what was said or
 * written, nothing reached the other host. */
static void
assert_nothing_leaked (Fixture * f)
{
  g_autofree gchar *manifest = NULL;
  g_autofree gchar *path = g_build_filename (f->batch_dir, "manifest.json",
      NULL);

  g_assert_true (g_file_get_contents (path, &manifest, NULL, NULL));
  g_assert_null (strstr (manifest, TOKEN));
  g_assert_null (f->said.warnings ? strstr (f->said.warnings, TOKEN) : NULL);
  g_assert_cmpuint (api_count (f->api, N_ROUTES), ==, 0);
}

/* ---- one hostile answer on one endpoint ---- */

typedef struct
{
  Route route;
  Answer answer;
  const gchar *expect;          /* in the reason or the verdicts */
} HostileCase;

/* The POST's answer is not a batch: the batch ends in an error, never
 * done, and keeps its files; its manifest says it was not accepted
 * (closed) or that nobody knows (error). */
static void
check_post (Fixture * f, const HostileCase * c)
{
  g_autoptr (RdBatch) manifest = read_manifest (f);

  g_assert_false (f->said.done);
  assert_contains (f->said.reason, c->expect);
  assert_files_kept (f);
  g_assert_true (manifest->state == RD_BATCH_STATE_CLOSED
      || manifest->state == RD_BATCH_STATE_ERROR);
}

/* The poll's answer is not a status: an error, files kept, the uuid kept
 * in a manifest that stays submitted (a next run polls again) or error. */
static void
check_batch (Fixture * f, const HostileCase * c)
{
  g_autoptr (RdBatch) manifest = read_manifest (f);

  g_assert_false (f->said.done);
  assert_contains (f->said.reason, c->expect);
  assert_files_kept (f);
  g_assert_true (manifest->state == RD_BATCH_STATE_SUBMITTED
      || manifest->state == RD_BATCH_STATE_ERROR);
  g_assert_cmpstr (manifest->uuid, ==, BATCH_UUID);
}

/* A verdict's answer is not a verdict: the batch is done all the same,
 * each such verdict unknown with the reason as its error-message. */
static void
check_detect (Fixture * f, const HostileCase * c)
{
  g_autoptr (RdBatch) manifest = read_manifest (f);
  guint i;

  g_assert_true (f->said.done);
  g_assert_cmpuint (f->said.results->len, ==, 3);
  for (i = 0; i < 3; i++) {
    const GstStructure *result = g_ptr_array_index (f->said.results, i);
    gdouble score = 0;

    g_assert_cmpstr (gst_structure_get_string (result, "status"), ==,
        "unknown");
    g_assert_true (gst_structure_get_double (result, "score", &score));
    g_assert_cmpfloat (score, ==, -1.0);
    assert_contains (gst_structure_get_string (result, "error-message"),
        c->expect);
  }
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_DONE);
}

/* The list cannot settle a POST of unknown outcome: the batch ends so,
 * never sent twice, its files kept. */
static void
check_list (Fixture * f, const HostileCase * c)
{
  g_autoptr (RdBatch) manifest = read_manifest (f);

  g_assert_false (f->said.done);
  assert_contains (f->said.reason, "outcome unknown");
  assert_contains (f->said.reason, c->expect);
  assert_files_kept (f);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_ERROR);
  g_assert_cmpuint (api_count (f->api, ROUTE_POST), ==, 1);
}

static void
test_hostile_answer (Fixture * f, gconstpointer data)
{
  const HostileCase *c = data;
  gboolean huge = c->answer.kind != BODY_TEXT;

  api_set_answer (f->api, c->route, &c->answer);
  if (c->route == ROUTE_LIST) {
    /* a 500 after the whole body: the list must say what happened */
    const Answer failed = { 500, "application/json",
      "{\"success\":false,\"message\":\"internal error\"}"
    };

    api_set_answer (f->api, ROUTE_POST, &failed);
  }
  run_batch (f, c->route == ROUTE_BATCH);
  g_test_message ("said: %s", f->said.warnings);
  g_assert_cmpuint (api_count (f->api, c->route), >=, 1);

  switch (c->route) {
    case ROUTE_POST:
      check_post (f, c);
      break;
    case ROUTE_BATCH:
      check_batch (f, c);
      break;
    case ROUTE_DETECT:
      check_detect (f, c);
      break;
    default:
      check_list (f, c);
      break;
  }
  assert_nothing_leaked (f);
  /* a huge body was neither read whole nor sent whole */
  if (huge)
    g_assert_cmpuint (api_wait_huge_written (f->api), <, HUGE_BYTES);
}

#define JSON "application/json"
#define HTML "text/html; charset=utf-8"
#define PORTAL "<!DOCTYPE html><html><head><title>Welcome to Station " \
  "WiFi</title></head><body><form>Accept the terms</form></body></html>"
#define OCTETS "application/octet-stream"
#define MALFORMED "{\"success\":true,\"item\":{\"uuid\":\"hb-1\",,}}"
#define TRUNCATED "{\"success\":true,\"item\":{\"uuid\":\"hb-1\",\"stat"
#define ERROR_TRUNCATED "{\"success\":false,\"message\":\"the batch is"
#define ERROR_CONFUSED "{\"success\":false,\"message\":42,\"error\":[1]," \
  "\"errors\":\"files\",\"details\":[\"limit\"]}"
#define LARGER "larger than 16 MB"
#define ELSEWHERE "a redirect to http://127.0.0.2:"

/* *INDENT-OFF* */
static const struct
{
  const gchar *path;
  HostileCase c;
} cases[] = {
  /* POST /detect/batch: an answer of unknown meaning after the whole body
   * is an unknown outcome (the list, here absent, would settle it) */
  { "post/malformed-202", { ROUTE_POST, { 202, JSON, MALFORMED },
      "is not JSON" } },
  { "post/truncated-202", { ROUTE_POST, { 202, JSON, TRUNCATED },
      "is not JSON" } },
  { "post/202-without-a-uuid", { ROUTE_POST, { 202, JSON,
      "{\"success\":true,\"item\":{\"status\":\"processing\","
      "\"detect_uuids\":[\"hd-0\",\"hd-1\",\"hd-2\"]}}" },
      "has no \"uuid\" id" } },
  { "post/type-confused-202", { ROUTE_POST, { 202, JSON,
      "{\"success\":\"yes\",\"item\":{\"uuid\":42,\"status\":[\"done\"],"
      "\"detect_uuids\":\"hd-0\"}}" }, "has no \"uuid\" id" } },
  { "post/202-whose-item-is-an-array", { ROUTE_POST, { 202, JSON,
      "{\"success\":true,\"item\":[1,2,3]}" }, "has no \"item\" object" } },
  { "post/202-detect-uuids-not-ids", { ROUTE_POST, { 202, JSON,
      "{\"item\":{\"uuid\":\"hb-1\",\"status\":\"processing\","
      "\"detect_uuids\":[\"hd-0\",{\"x\":1},\"hd-2\"]}}" },
      "\"detect_uuids\"[1] is not an id" } },
  { "post/202-a-json-array", { ROUTE_POST, { 202, JSON, "[{\"item\":{}}]" },
      "is not a JSON object" } },
  { "post/huge-202-with-a-length", { ROUTE_POST, { 202, JSON, NULL,
      BODY_HUGE_WITH_LENGTH }, LARGER } },
  { "post/huge-202-chunked", { ROUTE_POST, { 202, JSON, NULL,
      BODY_HUGE_CHUNKED }, LARGER } },
  { "post/html-200-of-a-captive-portal", { ROUTE_POST, { 200, HTML,
      PORTAL }, "the answer is text/html, not the API's JSON: a captive "
      "portal or a proxy" } },
  { "post/html-200-echoing-the-token", { ROUTE_POST, { 200, HTML,
      "<html><body>Your request (Authorization: Bearer " TOKEN ") was "
      "blocked</body></html>" }, "(Authorization: Bearer [redacted])" } },
  { "post/octet-stream-202", { ROUTE_POST, { 202, OCTETS, "\x01\x02garbage" },
      "the answer is application/octet-stream, not the API's JSON" } },
  { "post/malformed-400", { ROUTE_POST, { 400, JSON, MALFORMED },
      "HTTP 400: {\"success\":true" } },
  { "post/truncated-400", { ROUTE_POST, { 400, JSON, ERROR_TRUNCATED },
      "HTTP 400: {\"success\":false,\"message\":\"the batch is" } },
  { "post/type-confused-400", { ROUTE_POST, { 400, JSON, ERROR_CONFUSED },
      "HTTP 400" } },
  { "post/html-413-of-a-proxy", { ROUTE_POST, { 413, HTML,
      "<html><body><h1>413 Request Entity Too Large</h1><hr>nginx</body>"
      "</html>" }, "HTTP 413: 413 Request Entity Too Large nginx" } },
  { "post/huge-400", { ROUTE_POST, { 400, JSON, NULL, BODY_HUGE_CHUNKED },
      "HTTP 400: an answer " LARGER ", not read" } },
  { "post/redirect-to-another-host", { ROUTE_POST, { 307, JSON, NULL,
      BODY_TEXT, TRUE }, "HTTP 307: " ELSEWHERE } },

  /* GET /detect/batch/{uuid}, of a batch accepted earlier */
  { "poll/malformed-200", { ROUTE_BATCH, { 200, JSON, MALFORMED },
      "unreadable batch status from the API: The batch answer is not "
      "JSON" } },
  { "poll/truncated-200", { ROUTE_BATCH, { 200, JSON, TRUNCATED },
      "is not JSON" } },
  { "poll/type-confused-200", { ROUTE_BATCH, { 200, JSON,
      "{\"item\":{\"uuid\":\"hb-1\",\"status\":{\"is\":\"completed\"}}}" },
      "has no \"status\" word" } },
  { "poll/huge-200-with-a-length", { ROUTE_BATCH, { 200, JSON, NULL,
      BODY_HUGE_WITH_LENGTH }, LARGER } },
  { "poll/huge-200-chunked", { ROUTE_BATCH, { 200, JSON, NULL,
      BODY_HUGE_CHUNKED }, LARGER } },
  { "poll/html-200-of-a-captive-portal", { ROUTE_BATCH, { 200, HTML,
      PORTAL }, "the answer is text/html, not the API's JSON: a captive "
      "portal or a proxy answered in its place? (HTTP 200: Welcome to "
      "Station WiFi Accept the terms)" } },
  { "poll/octet-stream-200", { ROUTE_BATCH, { 200, OCTETS, "\x7f" "ELF" },
      "application/octet-stream, not the API's JSON" } },
  { "poll/malformed-404", { ROUTE_BATCH, { 404, JSON, MALFORMED },
      "HTTP 404: {\"success\":true" } },
  { "poll/html-500", { ROUTE_BATCH, { 500, HTML,
      "<html><title>500 Internal Server Error</title></html>" },
      "HTTP 500: 500 Internal Server Error" } },
  { "poll/huge-500", { ROUTE_BATCH, { 500, JSON, NULL,
      BODY_HUGE_WITH_LENGTH }, "HTTP 500: an answer " LARGER } },
  { "poll/redirect-to-another-host", { ROUTE_BATCH, { 302, JSON, NULL,
      BODY_TEXT, TRUE }, "HTTP 302: " ELSEWHERE } },

  /* GET /detect/{uuid}: the verdicts of a completed batch */
  { "verdict/malformed-200", { ROUTE_DETECT, { 200, JSON, MALFORMED },
      "unreadable verdict from the API: The detect answer is not JSON" } },
  { "verdict/truncated-200", { ROUTE_DETECT, { 200, JSON, TRUNCATED },
      "is not JSON" } },
  { "verdict/type-confused-200", { ROUTE_DETECT, { 200, JSON,
      "{\"item\":{\"uuid\":[\"hd-0\"],\"status\":7,\"metrics\":\"x\"}}" },
      "The detect item has no \"uuid\" id" } },
  { "verdict/huge-200-chunked", { ROUTE_DETECT, { 200, JSON, NULL,
      BODY_HUGE_CHUNKED }, LARGER } },
  { "verdict/html-200-of-a-captive-portal", { ROUTE_DETECT, { 200, HTML,
      PORTAL }, "the answer is text/html, not the API's JSON" } },
  { "verdict/truncated-404", { ROUTE_DETECT, { 404, JSON, ERROR_TRUNCATED },
      "HTTP 404: {\"success\":false" } },
  { "verdict/type-confused-400", { ROUTE_DETECT, { 400, JSON,
      ERROR_CONFUSED }, "HTTP 400" } },
  { "verdict/huge-403", { ROUTE_DETECT, { 403, JSON, NULL,
      BODY_HUGE_WITH_LENGTH }, "HTTP 403: an answer " LARGER } },
  { "verdict/redirect-to-another-host", { ROUTE_DETECT, { 301, JSON, NULL,
      BODY_TEXT, TRUE }, "HTTP 301: " ELSEWHERE } },

  /* GET /detect?page=: settling a POST of unknown outcome */
  { "list/malformed-200", { ROUTE_LIST, { 200, JSON, MALFORMED },
      "not settled: The list answer is not JSON" } },
  { "list/truncated-200", { ROUTE_LIST, { 200, JSON,
      "{\"success\":true,\"page\":1,\"items\":[{\"uuid\":\"d-1\"," },
      "not settled: The list answer is not JSON" } },
  { "list/type-confused-200", { ROUTE_LIST, { 200, JSON,
      "{\"success\":true,\"page\":\"one\",\"items\":{\"uuid\":\"d-1\"}}" },
      "not settled: The list answer has no \"items\" array" } },
  { "list/huge-200-chunked", { ROUTE_LIST, { 200, JSON, NULL,
      BODY_HUGE_CHUNKED }, LARGER } },
  { "list/html-200-of-a-captive-portal", { ROUTE_LIST, { 200, HTML,
      PORTAL }, "the answer is text/html, not the API's JSON" } },
  { "list/type-confused-403", { ROUTE_LIST, { 403, JSON, ERROR_CONFUSED },
      "not settled: HTTP 403" } },
  /* items whose uuid is not an id may be the batch's own files: the list
   * cannot prove it was not created, and it is not sent again */
  { "list/items-without-ids", { ROUTE_LIST, { 200, JSON,
      "{\"success\":true,\"page\":1,\"num_pages\":1,\"items\":["
      "{\"uuid\":5,\"filename\":\"seg-a.wav\"},"
      "{\"uuid\":[1],\"filename\":\"seg-b.mp3\"},"
      "{\"uuid\":null,\"filename\":\"snap-c.jpg\"}]}" },
      "not settled: The list answer has 3 of its 3 items without a "
      "\"uuid\" id" } },
  { "list/redirect-to-another-host", { ROUTE_LIST, { 302, JSON, NULL,
      BODY_TEXT, TRUE }, "not settled: HTTP 302: " ELSEWHERE } },
};
/* *INDENT-ON* */

/* ---- the right to a file: detect uuids that do not match ---- */

/* More detect uuids than files: each file still gets the one at its
 * position, the batch is done, and nothing crashes on the rest. */
static void
test_more_detect_uuids_than_files (Fixture * f, gconstpointer data)
{
  const Answer more = { 202, JSON,
    "{\"success\":true,\"item\":{\"uuid\":\"hb-1\",\"status\":\"completed\","
        "\"detect_uuids\":[\"hd-0\",\"hd-1\",\"hd-2\",\"hd-3\",\"hd-4\"]}}"
  };
  g_autoptr (RdBatch) manifest = NULL;
  guint i;

  api_set_answer (f->api, ROUTE_POST, &more);
  run_batch (f, FALSE);

  g_assert_true (f->said.done);
  g_assert_cmpuint (f->said.results->len, ==, 3);
  g_assert_cmpuint (g_strv_length (f->said.submitted_uuids), ==, 3);
  for (i = 0; i < 3; i++) {
    g_autofree gchar *uuid = g_strdup_printf ("hd-%u", i);

    g_assert_cmpstr (f->said.submitted_uuids[i], ==, uuid);
  }
  g_assert_cmpuint (api_count (f->api, ROUTE_DETECT), ==, 3);
  manifest = read_manifest (f);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_DONE);
  assert_nothing_leaked (f);
}

/* None at all: every file's outcome is unknown, so every file stays, and
 * every verdict says why. */
static void
test_no_detect_uuids_keeps_every_file (Fixture * f, gconstpointer data)
{
  const Answer none = { 202, JSON,
    "{\"success\":true,\"item\":{\"uuid\":\"hb-1\",\"status\":\"completed\","
        "\"detect_uuids\":[]}}"
  };
  guint i;

  api_set_answer (f->api, ROUTE_POST, &none);
  run_batch (f, FALSE);

  g_assert_true (f->said.done);
  g_assert_cmpuint (f->said.results->len, ==, 3);
  for (i = 0; i < 3; i++) {
    const GstStructure *result = g_ptr_array_index (f->said.results, i);

    g_assert_cmpstr (gst_structure_get_string (result, "status"), ==,
        "unknown");
    assert_contains (gst_structure_get_string (result, "error-message"),
        "the API gave no detect uuid for this file");
  }
  g_assert_cmpuint (api_count (f->api, ROUTE_DETECT), ==, 0);
  assert_files_kept (f);
  assert_nothing_leaked (f);
}

/* Values of the wrong type inside a verdict are absent, not an error: the
 * verdict is read, its status unknown, its score none. */
static void
test_type_confused_verdict_fields_are_absent (Fixture * f, gconstpointer data)
{
  const Answer confused = { 200, JSON,
    "{\"success\":true,\"item\":{\"uuid\":\"hd-0\",\"status\":{\"a\":1},"
        "\"media_type\":5,\"metrics\":[1,2],\"video_metrics\":\"x\","
        "\"image_metrics\":{\"children\":\"no\",\"score\":[]},"
        "\"intelligence\":{\"description\":[[[[[[1]]]]]]},"
        "\"error_message\":{\"x\":\"y\"},\"duration\":\"long\"}}"
  };
  guint i;

  api_set_answer (f->api, ROUTE_DETECT, &confused);
  run_batch (f, FALSE);

  g_assert_true (f->said.done);
  for (i = 0; i < 3; i++) {
    const GstStructure *result = g_ptr_array_index (f->said.results, i);
    gdouble score = 0;

    g_assert_cmpstr (gst_structure_get_string (result, "status"), ==,
        "unknown");
    g_assert_true (gst_structure_get_double (result, "score", &score));
    g_assert_cmpfloat (score, ==, -1.0);
    g_assert_null (gst_structure_get_string (result, "label"));
    g_assert_false (gst_structure_has_field (result, "error-message"));
  }
  assert_nothing_leaked (f);
}

/* ---- a portal in the way of everything ---- */

/* Every request gets the portal's login page: the API is as good as
 * unreachable. The batch waits on disk for it (an outage, whose warning
 * names the portal's answer), and ends kept for a next run when nothing
 * waits any more. */
static void
test_a_captive_portal_is_an_outage (Fixture * f, gconstpointer data)
{
  const Answer portal = { 200, HTML, PORTAL };
  g_autoptr (RdBatch) manifest = NULL;
  guint route;

  for (route = 0; route < N_ROUTES; route++)
    api_set_answer (f->api, route, &portal);
  run_batch (f, TRUE);

  assert_contains (f->said.outage_reason, "text/html");
  assert_contains (f->said.outage_reason, "Welcome to Station WiFi");
  g_assert_false (f->said.done);
  assert_contains (f->said.reason, "a captive portal or a proxy");
  assert_files_kept (f);
  manifest = read_manifest (f);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_SUBMITTED);
  assert_nothing_leaked (f);
}

/* ---- the token on a redirect ---- */

/* A portal that sends every request elsewhere: the token never reaches
 * the other host, and the error names where the redirect pointed. */
static void
test_redirect_takes_the_token_nowhere (Fixture * f, gconstpointer data)
{
  const Answer away = { 302, JSON, NULL, BODY_TEXT, TRUE };
  guint route;

  for (route = 0; route < N_ROUTES; route++)
    api_set_answer (f->api, route, &away);
  run_batch (f, TRUE);

  g_assert_false (f->said.done);
  g_assert_cmpuint (f->said.http_status, ==, 302);
  assert_contains (f->said.reason, f->api->elsewhere_origin);
  assert_contains (f->said.reason, "not followed");
  g_assert_cmpuint (api_count (f->api, ROUTE_BATCH), ==, 1);
  assert_nothing_leaked (f);
}

int
main (int argc, char **argv)
{
  guint i;

  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add ("/client-hostile/" path, Fixture, NULL, \
    fixture_setup, func, fixture_teardown)

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree gchar *path = g_strconcat ("/client-hostile/", cases[i].path,
        NULL);

    g_test_add (path, Fixture, &cases[i].c, fixture_setup,
        test_hostile_answer, fixture_teardown);
  }
  ADD ("post/more-detect-uuids-than-files", test_more_detect_uuids_than_files);
  ADD ("post/no-detect-uuids-keeps-every-file",
      test_no_detect_uuids_keeps_every_file);
  ADD ("verdict/type-confused-fields-are-absent",
      test_type_confused_verdict_fields_are_absent);
  ADD ("portal/is-an-outage", test_a_captive_portal_is_an_outage);
  ADD ("redirect/takes-the-token-nowhere",
      test_redirect_takes_the_token_nowhere);

  return g_test_run ();
}
