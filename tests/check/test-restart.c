/* Element tests of a restart after kill -9. A real gst-launch-1.0 runs
 * resembledetectsink against the API emulator (in this process, on a free
 * loopback port) and is killed with SIGKILL at a chosen point: while a POST
 * is held by the emulator (the body was received, the batch created, the
 * answer never comes), while a POST goes unanswered by a listener that
 * never reads the body (the API never got it), or while a submitted batch
 * is being polled. A second run, in this process, on the same location
 * must then end every batch with exactly one terminal message and never
 * POST again a batch whose manifest had a uuid; a batch whose upload was
 * cut is sent again or found by its file names, and the test counts which
 * (and how often the API got one twice). Each scenario runs
 * RD_RESTART_RUNS times (default 2) and prints what it saw; the figures in
 * docs/reliability.md come from RD_RESTART_RUNS=20. No sleep stands for an
 * event: every wait looks at state the test can see (the emulator's stats,
 * the manifests, the listener's count), with a deadline. */
#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <gst/check/gstcheck.h>

#include "batch.h"
#include "manifest.h"
#include "emulator.h"
#include "rd-check.h"
#include "rd-test-utils.h"

#define TOKEN "restart-token-4b7e1d"
#define WAIT_MS 30000
#define CAPS "video/x-raw,width=64,height=48,framerate=10/1"
/* between two looks at state that has no notification (stats, manifests);
 * never a guess at how long something takes */
#define LOOK_INTERVAL_US (10 * 1000)

typedef enum
{
  KILL_WHILE_UPLOAD_HELD,
  KILL_WHILE_UPLOAD_UNANSWERED,
  KILL_WHILE_POLLING,
} Scenario;

static const gchar *scenario_names[] = {
  "upload-held", "upload-unanswered", "polling",
};

static guint
runs_per_scenario (void)
{
  const gchar *runs = g_getenv ("RD_RESTART_RUNS");

  return runs ? MAX (1, (guint) g_ascii_strtoull (runs, NULL, 10)) : 2;
}

/* ---- a listener that reads a request's first bytes and never answers ---- */

typedef struct
{
  GSocket *listener;
  GThread *thread;
  GCancellable *cancellable;
  GMutex lock;
  GCond cond;
  guint posts;                  /* connections whose request is a POST */
  GPtrArray *connections;       /* GSocket*, held open, unanswered */
  gchar *url;
} Unanswered;

static gpointer
unanswered_thread (gpointer data)
{
  Unanswered *u = data;
  GSocket *connection;

  while ((connection = g_socket_accept (u->listener, u->cancellable, NULL))) {
    gchar head[5];
    gsize have = 0;
    gssize n = 1;

    /* the start of the request line; the rest of the request stays unread
     * in the socket */
    while (have < sizeof (head) && n > 0) {
      n = g_socket_receive (connection, head + have, sizeof (head) - have,
          u->cancellable, NULL);
      if (n > 0)
        have += n;
    }
    g_mutex_lock (&u->lock);
    g_ptr_array_add (u->connections, connection);
    if (have == sizeof (head) && memcmp (head, "POST ", 5) == 0)
      u->posts++;
    g_cond_broadcast (&u->cond);
    g_mutex_unlock (&u->lock);
  }
  return NULL;
}

static Unanswered *
unanswered_start (void)
{
  Unanswered *u = g_new0 (Unanswered, 1);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback
      (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  u->listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, &error);
  fail_unless (u->listener != NULL, "%s", error ? error->message : "");
  fail_unless (g_socket_bind (u->listener, any, TRUE, &error), "%s",
      error ? error->message : "");
  fail_unless (g_socket_listen (u->listener, &error), "%s",
      error ? error->message : "");
  bound = g_socket_get_local_address (u->listener, &error);
  fail_unless (bound != NULL);
  u->url = g_strdup_printf ("http://127.0.0.1:%u/api/v2",
      g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  u->cancellable = g_cancellable_new ();
  u->connections = g_ptr_array_new_with_free_func (g_object_unref);
  g_mutex_init (&u->lock);
  g_cond_init (&u->cond);
  u->thread = g_thread_new ("unanswered", unanswered_thread, u);
  return u;
}

static guint
unanswered_get_posts (Unanswered * u)
{
  guint posts;

  g_mutex_lock (&u->lock);
  posts = u->posts;
  g_mutex_unlock (&u->lock);
  return posts;
}

static void
unanswered_free (Unanswered * u)
{
  g_cancellable_cancel (u->cancellable);
  g_thread_join (u->thread);
  g_socket_close (u->listener, NULL);
  g_object_unref (u->listener);
  g_object_unref (u->cancellable);
  g_ptr_array_unref (u->connections);
  g_mutex_clear (&u->lock);
  g_cond_clear (&u->cond);
  g_free (u->url);
  g_free (u);
}

/* ---- what the emulator and the spool show -------------------------------- */

static JsonObject *
stats_object (JsonNode * stats)
{
  return json_node_get_object (stats);
}

static JsonNode *
read_stats (RdEmulator * emulator)
{
  g_autofree gchar *text = rd_emulator_get_stats_json (emulator);
  g_autoptr (GError) error = NULL;
  JsonNode *node = json_from_string (text, &error);

  fail_unless (node != NULL, "%s", error ? error->message : "");
  return node;
}

static guint
batches_created (RdEmulator * emulator)
{
  g_autoptr (JsonNode) stats = read_stats (emulator);

  return json_object_get_int_member (stats_object (stats), "batches_created");
}

/* Answers of any status to @route ("GET /api/v2/detect/batch/{uuid}"). */
static guint
route_requests (RdEmulator * emulator, const gchar * route)
{
  g_autoptr (JsonNode) stats = read_stats (emulator);
  JsonObject *by_route = json_object_get_object_member
      (json_object_get_object_member (stats_object (stats), "requests"),
      "by_route");
  JsonObject *statuses;
  g_autoptr (GList) members = NULL;
  guint n = 0;

  if (!json_object_has_member (by_route, route))
    return 0;
  statuses = json_object_get_object_member (by_route, route);
  members = json_object_get_members (statuses);
  for (GList * l = members; l; l = l->next)
    n += json_object_get_int_member (statuses, l->data);
  return n;
}

/* Every batch folder of @location, read back, in index order. */
static GPtrArray *
read_spool (const gchar * location)
{
  GPtrArray *batches = g_ptr_array_new_with_free_func ((GDestroyNotify)
      rd_batch_free);
  g_autoptr (GDir) dir = g_dir_open (location, 0, NULL);
  const gchar *entry;
  guint index;

  while (dir && (entry = g_dir_read_name (dir))) {
    g_autofree gchar *path = NULL;
    g_autoptr (GError) error = NULL;
    RdBatch *batch;

    if (!rd_batch_parse_dir_name (entry, &index))
      continue;
    path = g_build_filename (location, entry, NULL);
    batch = rd_manifest_read (path, &error);
    /* a batch folder whose first manifest is being written */
    if (batch)
      g_ptr_array_add (batches, batch);
  }
  return batches;
}

static RdBatch *
find_batch (GPtrArray * batches, guint index)
{
  for (guint i = 0; i < batches->len; i++) {
    RdBatch *batch = batches->pdata[i];
    if (batch->index == index)
      return batch;
  }
  return NULL;
}

static gboolean
same_names (RdBatch * batch, JsonArray * files)
{
  if (json_array_get_length (files) != batch->files->len)
    return FALSE;
  for (guint i = 0; i < batch->files->len; i++) {
    RdBatchFile *file = batch->files->pdata[i];
    JsonObject *posted = json_array_get_object_element (files, i);

    if (g_strcmp0 (file->name, json_object_get_string_member (posted,
                "name")) != 0)
      return FALSE;
  }
  return TRUE;
}

/* How many batches the emulator created from @batch's files, and the last
 * of them. */
static guint
times_created (JsonNode * stats, RdBatch * batch, JsonObject ** last)
{
  JsonArray *created = json_object_get_array_member (stats_object (stats),
      "batches");
  guint n = 0;

  *last = NULL;
  for (guint i = 0; i < json_array_get_length (created); i++) {
    JsonObject *b = json_array_get_object_element (created, i);

    if (same_names (batch, json_object_get_array_member (b, "files"))) {
      n++;
      *last = b;
    }
  }
  return n;
}

/* Whether @batch's files have the detect uuids of @created. */
static gboolean
same_detects (RdBatch * batch, JsonObject * created)
{
  JsonArray *uuids = json_object_get_array_member (created, "detect_uuids");

  if (json_array_get_length (uuids) != batch->files->len)
    return FALSE;
  for (guint i = 0; i < batch->files->len; i++) {
    RdBatchFile *file = batch->files->pdata[i];

    if (g_strcmp0 (file->detect_uuid, json_array_get_string_element (uuids,
                i)) != 0)
      return FALSE;
  }
  return TRUE;
}

/* "image_0-{run}-000001.jpg" -> "{run}" */
static gchar *
run_id_of (const gchar * name)
{
  const gchar *dash = strchr (name, '-');

  fail_unless (dash != NULL && strlen (dash) > 9 && dash[9] == '-', "%s", name);
  return g_strndup (dash + 1, 8);
}

/* ---- the two runs -------------------------------------------------------- */

typedef struct
{
  Scenario scenario;
  RdEmulator *emulator;
  Unanswered *unanswered;
  gchar *tmp;
  gchar *location;
  GSubprocess *child;
  gboolean child_exited;
  guint threshold;              /* how many POSTs or polls before the kill */
} Iteration;

static void
child_exited_cb (GObject * source, GAsyncResult * result, gpointer data)
{
  gboolean *exited = data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *exited = TRUE;
}

static gchar *
child_log (Iteration * it)
{
  g_autofree gchar *path = g_build_filename (it->tmp, "gst-launch.log", NULL);
  gchar *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    contents = g_strdup ("(no log)");
  return contents;
}

static void
spawn_gst_launch (Iteration * it, const gchar * api_url)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_autofree gchar *log = g_build_filename (it->tmp, "gst-launch.log", NULL);
  g_autofree gchar *location = g_strdup_printf ("location=%s", it->location);
  g_autofree gchar *url = g_strdup_printf ("api-url=%s", api_url);
  g_autoptr (GError) error = NULL;
  const gchar *argv[] = { GST_LAUNCH, "videotestsrc", "is-live=true", "!",
    CAPS, "!", "jpegenc", "!", "resembledetectsink", location, url,
    "max-files=2", "poll-interval=1000000000", "max-retries=2", NULL,
  };

  /* the real client module, and the token from the environment */
  g_subprocess_launcher_unsetenv (launcher, "GST_RESEMBLEDETECT_CLIENT_MODULE");
  g_subprocess_launcher_setenv (launcher, "RESEMBLE_API_TOKEN", TOKEN, TRUE);
#ifdef RD_CHILD_PRELOAD
  /* an uninstrumented gst-launch-1.0 loading the ASan-built plugin */
  g_subprocess_launcher_setenv (launcher, "LD_PRELOAD", RD_CHILD_PRELOAD, TRUE);
#endif
  g_subprocess_launcher_set_stdout_file_path (launcher, log);
  it->child = g_subprocess_launcher_spawnv (launcher, argv, &error);
  fail_unless (it->child != NULL, "%s", error ? error->message : "");
  g_subprocess_wait_async (it->child, NULL, child_exited_cb, &it->child_exited);
}

typedef gboolean (*ReadyFunc) (Iteration * it);

/* Waits until @ready, the child dying or WAIT_MS, whichever comes first. */
static void
wait_for (Iteration * it, ReadyFunc ready, const gchar * what)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;

  while (!ready (it)) {
    g_autofree gchar *log = NULL;

    while (g_main_context_iteration (NULL, FALSE));
    if (!it->child_exited && g_get_monotonic_time () < deadline) {
      g_usleep (LOOK_INTERVAL_US);
      continue;
    }
    log = child_log (it);
    ck_abort_msg ("%s: %s did not happen within %u ms (gst-launch-1.0 %s):\n%s",
        scenario_names[it->scenario], what, WAIT_MS,
        it->child_exited ? "exited" : "still running", log);
  }
}

static gboolean
a_post_was_handled (Iteration * it)
{
  return batches_created (it->emulator) >= it->threshold;
}

static gboolean
a_post_is_unanswered (Iteration * it)
{
  return unanswered_get_posts (it->unanswered) >= it->threshold;
}

/* A batch the API accepted is being polled: its manifest has the uuid and
 * GETs of batches arrived. */
static gboolean
a_batch_is_polled (Iteration * it)
{
  g_autoptr (GPtrArray) batches = read_spool (it->location);
  gboolean submitted = FALSE;

  for (guint i = 0; i < batches->len; i++) {
    RdBatch *batch = batches->pdata[i];
    if (batch->state == RD_BATCH_STATE_SUBMITTED && batch->uuid)
      submitted = TRUE;
  }
  return submitted && route_requests (it->emulator,
      "GET /api/v2/detect/batch/{uuid}") >= it->threshold;
}

static void
kill_child (Iteration * it)
{
  g_subprocess_send_signal (it->child, SIGKILL);
  while (!it->child_exited)
    g_main_context_iteration (NULL, TRUE);
  fail_unless (g_subprocess_get_if_signaled (it->child)
      && g_subprocess_get_term_sig (it->child) == SIGKILL,
      "gst-launch-1.0 ended before it was killed");
}

typedef struct
{
  GHashTable *terminal;         /* index -> terminal messages */
  GHashTable *done_uuids;       /* index -> uuid of its batch-done */
} Ends;

static void
note_message (GstMessage * msg, Ends * ends)
{
  const GstStructure *s = gst_message_get_structure (msg);
  guint index, n;

  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    g_autoptr (GError) error = NULL;
    g_autofree gchar *debug = NULL;

    gst_message_parse_error (msg, &error, &debug);
    ck_abort_msg ("second run: %s (%s)", error->message, debug);
  }
  if (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT
      || !(gst_structure_has_name (s, "resemble-detect-batch-done")
          || gst_structure_has_name (s, "resemble-detect-batch-error")))
    return;
  fail_unless (gst_structure_get_uint (s, "index", &index));
  n = GPOINTER_TO_UINT (g_hash_table_lookup (ends->terminal,
          GUINT_TO_POINTER (index)));
  g_hash_table_insert (ends->terminal, GUINT_TO_POINTER (index),
      GUINT_TO_POINTER (n + 1));
  if (gst_structure_has_name (s, "resemble-detect-batch-done"))
    g_hash_table_insert (ends->done_uuids, GUINT_TO_POINTER (index),
        g_strdup (gst_structure_get_string (s, "uuid")));
}

/* The second run: a few buffers, then EOS, which the element holds until
 * every batch has ended; then READY, whose messages count too. */
static void
run_again (Iteration * it, Ends * ends)
{
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc is-live=true "
      "num-buffers=3 ! " CAPS " ! jpegenc ! resembledetectsink location=%s "
      "api-url=%s api-token=" TOKEN " max-files=2 poll-interval=1000000000 "
      "max-retries=2", it->location, rd_emulator_get_base_url (it->emulator));
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  g_autoptr (GstBus) bus = NULL;
  GstMessage *msg;
  gboolean eos = FALSE;

  fail_unless (pipeline != NULL && error == NULL, "%s: %s", desc,
      error ? error->message : "");
  bus = gst_element_get_bus (pipeline);
  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
  while (!eos) {
    msg = gst_bus_timed_pop (bus, 90 * GST_SECOND);
    fail_unless (msg != NULL, "the second run did not end within 90 s");
    eos = GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS;
    note_message (msg, ends);
    gst_message_unref (msg);
  }
  fail_unless (gst_element_set_state (pipeline, GST_STATE_READY) ==
      GST_STATE_CHANGE_SUCCESS);
  while ((msg = gst_bus_pop (bus))) {
    note_message (msg, ends);
    gst_message_unref (msg);
  }
  fail_unless (gst_element_set_state (pipeline, GST_STATE_NULL) ==
      GST_STATE_CHANGE_SUCCESS);
  gst_object_unref (pipeline);
}

/* ---- the checks, and what they count ------------------------------------- */

typedef struct
{
  guint runs;
  guint open_at_kill;           /* closed and sent by the second run */
  guint closed_at_kill;         /* no uuid: the second run settles or sends */
  guint closed_sent_once;       /* ... sent, created once */
  guint closed_created_twice;   /* ... the API had it, and it was sent again */
  guint closed_adopted;         /* ... the API had it, found by file names */
  guint closed_failed;          /* ... outcome left unknown: batch-error */
  guint submitted_at_kill;      /* uuid: polled by the second run */
  guint new_batches;            /* made by the second run */
} Tally;

static void
tally_add (Tally * tally, const Tally * run)
{
  tally->runs += run->runs;
  tally->open_at_kill += run->open_at_kill;
  tally->closed_at_kill += run->closed_at_kill;
  tally->closed_sent_once += run->closed_sent_once;
  tally->closed_created_twice += run->closed_created_twice;
  tally->closed_adopted += run->closed_adopted;
  tally->closed_failed += run->closed_failed;
  tally->submitted_at_kill += run->submitted_at_kill;
  tally->new_batches += run->new_batches;
}

static void
tally_print (const gchar * what, const Tally * t)
{
  g_print ("restart %s: at the kill %u open, %u closed (then %u sent once, "
      "%u created twice, %u adopted by file names, %u failed as unknown), "
      "%u submitted (none POSTed again); %u new\n", what, t->open_at_kill,
      t->closed_at_kill, t->closed_sent_once, t->closed_created_twice,
      t->closed_adopted, t->closed_failed, t->submitted_at_kill,
      t->new_batches);
}

/* A batch that was closed at the kill: the element did not know whether
 * the API had it. The next run settles it by its file names before
 * sending anything: adopted (no batch uuid, the API's detect uuids), sent
 * because the API proved not to have it, or failed as unknown; never
 * created twice. */
static void
check_closed_at_kill (RdBatch * batch, guint created, JsonObject * last,
    const gchar * label, Tally * here)
{
  here->closed_at_kill++;
  fail_unless (created <= 1, "%s: batch %u created %u times", label,
      batch->index, created);
  if (batch->state == RD_BATCH_STATE_ERROR) {
    here->closed_failed++;
  } else if (batch->uuid == NULL) {
    fail_unless (created == 1 && same_detects (batch, last), "%s: batch %u "
        "done without a uuid, created %u times", label, batch->index, created);
    here->closed_adopted++;
  } else if (created == 2) {
    here->closed_created_twice++;
  } else {
    fail_unless_equals_int (created, 1);
    here->closed_sent_once++;
  }
}

static void
run_scenario_once (Scenario scenario, guint run, Tally * tally)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) at_kill = NULL;
  g_autoptr (GPtrArray) after = NULL;
  g_autoptr (GHashTable) terminal = g_hash_table_new (NULL, NULL);
  g_autoptr (GHashTable) done_uuids = g_hash_table_new_full (NULL, NULL,
      NULL, g_free);
  Ends ends = { terminal, done_uuids };
  g_autoptr (JsonNode) stats = NULL;
  g_autoptr (GHashTable) runs = g_hash_table_new_full (g_str_hash,
      g_str_equal, g_free, NULL);
  Tally here = { 1, };
  guint max_index_at_kill = 0;
  Iteration it = { scenario, };

  /* the kill comes after the first or second POST (libsoup opens two
   * connections to a host: a third POST waits for one of them), or after
   * the first, second or third poll */
  it.threshold = 1 + run % (scenario == KILL_WHILE_POLLING ? 3 : 2);

  it.emulator = rd_emulator_new ();
  rd_emulator_set_token (it.emulator, TOKEN);
  fail_unless (rd_emulator_start (it.emulator, "127.0.0.1", 0, &error), "%s",
      error ? error->message : "");
  it.tmp = rd_test_make_tmp_dir ("rd-restart-XXXXXX");
  it.location = g_build_filename (it.tmp, "spool", NULL);

  switch (scenario) {
    case KILL_WHILE_UPLOAD_HELD:
      /* every POST is handled (the batch is created) and its answer held
       * far longer than the test */
      rd_emulator_set_slow_delay (it.emulator, 600000);
      rd_emulator_set_fault (it.emulator, RD_EMULATOR_FAULT_SLOW, 1,
          "POST /api/v2/detect/batch");
      spawn_gst_launch (&it, rd_emulator_get_base_url (it.emulator));
      wait_for (&it, a_post_was_handled, "a POST reaching the emulator");
      break;
    case KILL_WHILE_UPLOAD_UNANSWERED:
      it.unanswered = unanswered_start ();
      spawn_gst_launch (&it, it.unanswered->url);
      wait_for (&it, a_post_is_unanswered, "a POST reaching the listener");
      break;
    case KILL_WHILE_POLLING:
      /* 2 s per file: a batch of two is processing for 4 s */
      rd_emulator_set_processing_time (it.emulator, 2000);
      spawn_gst_launch (&it, rd_emulator_get_base_url (it.emulator));
      wait_for (&it, a_batch_is_polled, "a submitted batch being polled");
      break;
  }
  kill_child (&it);
  at_kill = read_spool (it.location);
  fail_unless (at_kill->len > 0);

  /* the API is healthy again for the second run */
  g_clear_pointer (&it.unanswered, unanswered_free);
  rd_emulator_set_fault (it.emulator, RD_EMULATOR_FAULT_NONE, 0, NULL);
  rd_emulator_set_processing_time (it.emulator, 0);
  run_again (&it, &ends);

  after = read_spool (it.location);
  stats = read_stats (it.emulator);
  for (guint i = 0; i < at_kill->len; i++)
    max_index_at_kill = MAX (max_index_at_kill,
        ((RdBatch *) at_kill->pdata[i])->index);

  for (guint i = 0; i < after->len; i++) {
    RdBatch *batch = after->pdata[i];
    RdBatch *before = find_batch (at_kill, batch->index);
    guint terminals = GPOINTER_TO_UINT (g_hash_table_lookup (terminal,
            GUINT_TO_POINTER (batch->index)));
    JsonObject *last = NULL;
    guint created = times_created (stats, batch, &last);
    const gchar *label = scenario_names[scenario];
    gboolean closed = before && before->state == RD_BATCH_STATE_CLOSED
        && before->uuid == NULL;

    if (before && before->state == RD_BATCH_STATE_DONE) {
      fail_unless_equals_int (terminals, 0);
      continue;
    }
    /* every other batch ended in the second run, and did so once */
    fail_unless (terminals == 1, "%s: batch %u ended with %u terminal "
        "messages", label, batch->index, terminals);
    fail_unless (batch->state == RD_BATCH_STATE_DONE
        || (closed && batch->state == RD_BATCH_STATE_ERROR),
        "%s: batch %u ended %s", label, batch->index,
        rd_batch_state_to_string (batch->state));
    if (batch->uuid) {
      fail_unless (last != NULL);
      fail_unless_equals_string (batch->uuid,
          json_object_get_string_member (last, "uuid"));
    }
    if (batch->state == RD_BATCH_STATE_DONE)
      fail_unless (g_strcmp0 (batch->uuid, g_hash_table_lookup (done_uuids,
                  GUINT_TO_POINTER (batch->index))) == 0);
    for (guint f = 0; f < batch->files->len; f++)
      g_hash_table_add (runs,
          run_id_of (((RdBatchFile *) batch->files->pdata[f])->name));

    if (before == NULL) {
      /* made by the second run */
      fail_unless (batch->index > max_index_at_kill);
      fail_unless_equals_int (created, 1);
      here.new_batches++;
    } else if (before->uuid) {
      /* accepted before the kill: polled, never POSTed again */
      fail_unless (created == 1, "%s: batch %u (uuid %s before the kill) "
          "was created %u times", label, batch->index, before->uuid, created);
      fail_unless_equals_string (batch->uuid, before->uuid);
      here.submitted_at_kill++;
    } else if (before->state == RD_BATCH_STATE_OPEN) {
      fail_unless_equals_int (created, 1);
      here.open_at_kill++;
    } else {
      fail_unless (closed, "%s: batch %u was %s at the kill", label,
          batch->index, rd_batch_state_to_string (before->state));
      check_closed_at_kill (batch, created, last, label, &here);
    }
  }
  /* the second run's files are named apart from the first's */
  fail_unless (g_hash_table_size (runs) >= 2);

  switch (scenario) {
    case KILL_WHILE_UPLOAD_HELD:
      /* the API had at least one of the closed batches: adopted */
      fail_unless (here.closed_adopted >= 1);
      break;
    case KILL_WHILE_UPLOAD_UNANSWERED:
      /* the API had none of them */
      fail_unless (here.closed_at_kill >= 1);
      fail_unless_equals_int (here.closed_created_twice, 0);
      fail_unless_equals_int (here.closed_adopted, 0);
      break;
    case KILL_WHILE_POLLING:
      fail_unless (here.submitted_at_kill >= 1);
      break;
  }
  {
    g_autofree gchar *what =
        g_strdup_printf ("%s, run %u", scenario_names[scenario], run + 1);
    tally_print (what, &here);
  }
  tally_add (tally, &here);

  g_clear_object (&it.child);
  rd_emulator_free (it.emulator);
  rd_test_remove_tree (it.tmp);
  g_free (it.tmp);
  g_free (it.location);
}

static void
run_scenario (Scenario scenario)
{
  guint runs = runs_per_scenario ();
  Tally tally = { 0, };

  if (!rd_check_have_elements ("videotestsrc jpegenc"))
    return;
  for (guint run = 0; run < runs; run++)
    run_scenario_once (scenario, run, &tally);
  {
    g_autofree gchar *what = g_strdup_printf ("%s, all %u runs passed",
        scenario_names[scenario], tally.runs);
    tally_print (what, &tally);
  }
}

GST_START_TEST (test_kill_while_an_upload_is_held_ends_it_once)
{
  run_scenario (KILL_WHILE_UPLOAD_HELD);
}

GST_END_TEST;

GST_START_TEST (test_kill_while_an_upload_is_unanswered_resends_it)
{
  run_scenario (KILL_WHILE_UPLOAD_UNANSWERED);
}

GST_END_TEST;

GST_START_TEST (test_kill_while_polling_polls_on_without_posting_again)
{
  run_scenario (KILL_WHILE_POLLING);
}

GST_END_TEST;

static Suite *
restart_suite (void)
{
  Suite *s = suite_create ("restart");
  TCase *tc = tcase_create ("kill-9");

  suite_add_tcase (s, tc);
  /* a run takes a few seconds; the poll scenario waits for 4 s batches */
  tcase_set_timeout (tc, 60 + runs_per_scenario () * 30);
  tcase_add_test (tc, test_kill_while_an_upload_is_held_ends_it_once);
  tcase_add_test (tc, test_kill_while_an_upload_is_unanswered_resends_it);
  tcase_add_test (tc, test_kill_while_polling_polls_on_without_posting_again);
  return s;
}

int
main (int argc, char **argv)
{
  static const gchar *const needed[] = { "videotestsrc jpegenc", NULL };

  gst_check_init (&argc, &argv);
  if (!g_file_test (GST_LAUNCH, G_FILE_TEST_IS_EXECUTABLE)) {
    g_printerr ("%s: gst-launch-1.0 was not found at build time\n",
        g_getenv ("RD_TESTS_REQUIRE_ALL_ELEMENTS") ? "FAIL" : "SKIP");
    return g_getenv ("RD_TESTS_REQUIRE_ALL_ELEMENTS") ? 1 : 77;
  }
  return rd_check_main (restart_suite (), needed);
}
