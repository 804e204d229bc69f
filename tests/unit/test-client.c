/* Tests of the API client end to end against an embedded emulator on a
 * free loopback port: uploads in both modes, every documented error,
 * injected faults, the in-flight limit, stopping in the middle of an
 * upload, the order of a batch's last callbacks, and the token staying out
 * of everything it writes (its retry rules are tested in test-retry.c). A
 * small stand-in server gives the answers the emulator does not (an error
 * echoing the token, fewer detect uuids than files). Callbacks arrive on
 * the client's thread and are recorded under a lock; the test thread waits
 * for them on a condition with a deadline. */
#include "client.h"
#include "client-private.h"
#include "emulator.h"
#include "manifest.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <glib/gstdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>

#define TOKEN "tok-Sekret-4f9a2c"
#define USER_AGENT "gst-resembledetect/test"
#define WAIT_S 20

/* ---- what the callbacks saw ---- */

typedef struct
{
  gboolean finished;
  gboolean done;
  guint http_status;
  gchar *reason;
  GstStructure *details;
  gboolean cancelled;
  RdBatchState state;           /* the batch's state at its final callback */
  gchar *uuid;
  gchar *status;
  guint completed_count;
  guint failed_count;
  GPtrArray *results;           /* GstStructure*, the done callback's */
  GPtrArray *reported;          /* GstStructure*, the result callbacks' */
  GArray *reported_index;       /* guint */
  guint submitted;              /* submitted callbacks */
  guint status_calls;
  guint progress_calls;
  guint progress_starts;        /* reports with sent == 0 */
  /* each upload attempt's start and end, in order: S (sent 0), T (sent ==
   * total: the whole body), F (failed before the whole body), C (stopped) */
  GString *uploads;
  guint64 first_sent;
  guint64 last_sent;
  guint64 last_total;
  gint64 submitted_us;
  gint64 finished_us;
  gboolean posting;             /* between its first progress and the end */
  guint pending_at_finish;      /* rd_client_get_pending() in done/error */
  guint finish_seq;             /* when, among the recorder's events */
} Outcome;

typedef struct
{
  GMutex lock;
  GCond cond;
  GHashTable *outcomes;         /* index -> Outcome* */
  guint finished;
  guint idle_calls;
  guint unauthorized_calls;
  gchar *unauthorized_reason;
  guint pending_at_idle;
  guint posting;                /* batches uploading or accepted, not ended */
  guint max_posting;
  GPtrArray *finish_order;      /* index, as GUINT_TO_POINTER */
  RdClient *client;             /* for the pending counts */
  guint seq;                    /* events so far: finishes, idle, 401 */
  guint idle_seq;               /* the last idle's */
  guint unauthorized_seq;
  guint submitted;              /* submitted callbacks, all batches */
  guint bodies_sent;            /* upload attempts whose whole body went */
  guint outage_starts;
  guint outage_ends;
  guint outage_resumed;         /* batches the last end resumed */

  /* stop in the middle of an upload: held at the first report of bytes */
  gboolean hold_first_progress;
  gboolean progress_seen;
  gboolean release_progress;
} Recorder;

static void
outcome_free (Outcome * outcome)
{
  g_free (outcome->reason);
  if (outcome->details)
    gst_structure_free (outcome->details);
  g_free (outcome->uuid);
  g_free (outcome->status);
  if (outcome->results)
    g_ptr_array_unref (outcome->results);
  g_ptr_array_unref (outcome->reported);
  g_array_unref (outcome->reported_index);
  g_string_free (outcome->uploads, TRUE);
  g_free (outcome);
}

/* With the lock held. */
static Outcome *
recorder_outcome (Recorder * rec, guint index)
{
  Outcome *outcome = g_hash_table_lookup (rec->outcomes,
      GUINT_TO_POINTER (index));

  if (outcome == NULL) {
    outcome = g_new0 (Outcome, 1);
    outcome->reported = g_ptr_array_new_with_free_func ((GDestroyNotify)
        gst_structure_free);
    outcome->reported_index = g_array_new (FALSE, FALSE, sizeof (guint));
    outcome->uploads = g_string_new (NULL);
    g_hash_table_insert (rec->outcomes, GUINT_TO_POINTER (index), outcome);
  }
  return outcome;
}

static void
recorder_init (Recorder * rec)
{
  g_mutex_init (&rec->lock);
  g_cond_init (&rec->cond);
  rec->outcomes = g_hash_table_new_full (NULL, NULL, NULL,
      (GDestroyNotify) outcome_free);
  rec->finish_order = g_ptr_array_new ();
}

static void
recorder_clear (Recorder * rec)
{
  g_hash_table_unref (rec->outcomes);
  g_ptr_array_unref (rec->finish_order);
  g_free (rec->unauthorized_reason);
  g_mutex_clear (&rec->lock);
  g_cond_clear (&rec->cond);
}

static void
on_submitted (const RdBatch * batch, gpointer user_data)
{
  Recorder *rec = user_data;
  Outcome *outcome;

  g_mutex_lock (&rec->lock);
  outcome = recorder_outcome (rec, batch->index);
  outcome->submitted++;
  rec->submitted++;
  outcome->submitted_us = g_get_monotonic_time ();
  g_free (outcome->uuid);
  outcome->uuid = g_strdup (batch->uuid);
  g_cond_broadcast (&rec->cond);
  g_mutex_unlock (&rec->lock);
}

static void
on_status (const RdBatch * batch, gpointer user_data)
{
  Recorder *rec = user_data;

  g_mutex_lock (&rec->lock);
  recorder_outcome (rec, batch->index)->status_calls++;
  g_mutex_unlock (&rec->lock);
}

static void
on_progress (const RdBatch * batch, guint64 sent, guint64 total,
    gpointer user_data)
{
  Recorder *rec = user_data;
  Outcome *outcome;

  g_mutex_lock (&rec->lock);
  outcome = recorder_outcome (rec, batch->index);
  if (outcome->progress_calls == 0)
    outcome->first_sent = sent;
  outcome->progress_calls++;
  g_assert_cmpuint (sent, <=, total);
  /* Each attempt starts again from 0. */
  if (sent == 0)
    g_string_append_c (outcome->uploads, 'S');
  if (sent == total) {
    g_string_append_c (outcome->uploads, 'T');
    rec->bodies_sent++;
  }
  if (sent == 0)
    outcome->progress_starts++;
  else if (outcome->last_total == total)
    g_assert_cmpuint (sent, >=, outcome->last_sent);
  outcome->last_sent = sent;
  outcome->last_total = total;
  g_cond_broadcast (&rec->cond);
  if (!outcome->posting) {
    outcome->posting = TRUE;
    rec->posting++;
    rec->max_posting = MAX (rec->max_posting, rec->posting);
  }
  if (rec->hold_first_progress && !rec->progress_seen && sent > 0) {
    rec->progress_seen = TRUE;
    g_cond_broadcast (&rec->cond);
    while (!rec->release_progress)
      g_cond_wait (&rec->cond, &rec->lock);
  }
  g_mutex_unlock (&rec->lock);
}

static void
on_upload_failed (const RdBatch * batch, guint64 sent, guint64 total,
    gboolean cancelled, const gchar * reason, gpointer user_data)
{
  Recorder *rec = user_data;
  Outcome *outcome;

  g_mutex_lock (&rec->lock);
  outcome = recorder_outcome (rec, batch->index);
  g_assert_cmpuint (sent, <, total);
  g_assert_true (cancelled || (reason != NULL && *reason != '\0'));
  g_string_append_c (outcome->uploads, cancelled ? 'C' : 'F');
  g_mutex_unlock (&rec->lock);
}

static void
on_result (const RdBatch * batch, guint file_index,
    const GstStructure * result, gpointer user_data)
{
  Recorder *rec = user_data;
  Outcome *outcome;

  g_mutex_lock (&rec->lock);
  outcome = recorder_outcome (rec, batch->index);
  g_ptr_array_add (outcome->reported, gst_structure_copy (result));
  g_array_append_val (outcome->reported_index, file_index);
  g_mutex_unlock (&rec->lock);
}

/* With the lock held. */
static void
recorder_finish (Recorder * rec, const RdBatch * batch, Outcome * outcome)
{
  g_assert_false (outcome->finished);
  outcome->finished = TRUE;
  outcome->finished_us = g_get_monotonic_time ();
  outcome->pending_at_finish = rec->client ?
      rd_client_get_pending (rec->client) : 0;
  outcome->finish_seq = ++rec->seq;
  outcome->state = batch->state;
  g_free (outcome->status);
  outcome->status = g_strdup (batch->status);
  outcome->completed_count = batch->completed_count;
  outcome->failed_count = batch->failed_count;
  if (batch->uuid && outcome->uuid == NULL)
    outcome->uuid = g_strdup (batch->uuid);
  if (outcome->posting) {
    outcome->posting = FALSE;
    rec->posting--;
  }
  rec->finished++;
  g_ptr_array_add (rec->finish_order, GUINT_TO_POINTER (batch->index));
  g_cond_broadcast (&rec->cond);
}

static void
on_done (const RdBatch * batch, const GPtrArray * results, gpointer user_data)
{
  Recorder *rec = user_data;
  Outcome *outcome;
  guint i;

  g_mutex_lock (&rec->lock);
  outcome = recorder_outcome (rec, batch->index);
  outcome->done = TRUE;
  outcome->results = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_structure_free);
  for (i = 0; i < results->len; i++)
    g_ptr_array_add (outcome->results,
        gst_structure_copy (g_ptr_array_index (results, i)));
  recorder_finish (rec, batch, outcome);
  g_mutex_unlock (&rec->lock);
}

static void
on_error (const RdBatch * batch, guint http_status, const gchar * reason,
    const GstStructure * details, gboolean cancelled, gpointer user_data)
{
  Recorder *rec = user_data;
  Outcome *outcome;

  g_mutex_lock (&rec->lock);
  outcome = recorder_outcome (rec, batch->index);
  outcome->http_status = http_status;
  outcome->reason = g_strdup (reason);
  outcome->details = details ? gst_structure_copy (details) : NULL;
  outcome->cancelled = cancelled;
  recorder_finish (rec, batch, outcome);
  g_mutex_unlock (&rec->lock);
}

static void
on_unauthorized (const gchar * reason, gpointer user_data)
{
  Recorder *rec = user_data;

  g_mutex_lock (&rec->lock);
  rec->unauthorized_calls++;
  rec->unauthorized_seq = ++rec->seq;
  g_free (rec->unauthorized_reason);
  rec->unauthorized_reason = g_strdup (reason);
  g_mutex_unlock (&rec->lock);
}

static void
on_idle (gpointer user_data)
{
  Recorder *rec = user_data;

  g_mutex_lock (&rec->lock);
  rec->idle_calls++;
  rec->idle_seq = ++rec->seq;
  rec->pending_at_idle = rec->client ? rd_client_get_pending (rec->client) : 0;
  g_cond_broadcast (&rec->cond);
  g_mutex_unlock (&rec->lock);
}

static void
on_outage (gboolean started, const gchar * reason, guint waiting,
    GstClockTime lasted, gpointer user_data)
{
  Recorder *rec = user_data;

  g_mutex_lock (&rec->lock);
  if (started) {
    g_assert_nonnull (reason);
    rec->outage_starts++;
  } else {
    rec->outage_ends++;
    rec->outage_resumed = waiting;
  }
  g_cond_broadcast (&rec->cond);
  g_mutex_unlock (&rec->lock);
}

/* Waits until @field (a counter of @rec) reaches @count. */
#define recorder_wait_for(rec, field, count) G_STMT_START {             \
    gint64 deadline_ = g_get_monotonic_time () + WAIT_S * G_TIME_SPAN_SECOND; \
    g_mutex_lock (&(rec)->lock);                                        \
    while ((rec)->field < (count))                                      \
      g_assert_true (g_cond_wait_until (&(rec)->cond, &(rec)->lock,     \
              deadline_));                                              \
    g_mutex_unlock (&(rec)->lock);                                      \
  } G_STMT_END

static const RdClientCallbacks recorder_callbacks = {
  .submitted = on_submitted,
  .status = on_status,
  .progress = on_progress,
  .upload_failed = on_upload_failed,
  .outage = on_outage,
  .result = on_result,
  .done = on_done,
  .error = on_error,
  .unauthorized = on_unauthorized,
  .idle = on_idle,
};

/* Waits until @count batches have had their final callback and the client
 * said it is idle. */
static void
recorder_wait_finished (Recorder * rec, guint count)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_S * G_TIME_SPAN_SECOND;

  g_mutex_lock (&rec->lock);
  while (rec->finished < count || rec->idle_calls == 0) {
    if (!g_cond_wait_until (&rec->cond, &rec->lock, deadline)) {
      g_mutex_unlock (&rec->lock);
      g_error ("timed out waiting for %u batches (%u finished)", count,
          rec->finished);
    }
  }
  g_mutex_unlock (&rec->lock);
}

static Outcome *
recorder_get (Recorder * rec, guint index)
{
  Outcome *outcome;

  g_mutex_lock (&rec->lock);
  outcome = g_hash_table_lookup (rec->outcomes, GUINT_TO_POINTER (index));
  g_mutex_unlock (&rec->lock);
  g_assert_nonnull (outcome);
  return outcome;
}

/* ---- fixture: an emulator, a spool directory and a client ---- */

typedef struct
{
  RdEmulator *emu;
  gchar *spool;
  RdClientConfig config;
  RdClient *client;
  Recorder rec;
} Fixture;

/* Every attempt is S, then T, F or C; a done batch's last attempt is T. */
static void
assert_upload_attempts (const Outcome * outcome, const gchar * expected)
{
  const gchar *u = outcome->uploads->str;
  gsize i;

  for (i = 0; u[i]; i += 2) {
    g_assert_cmpint (u[i], ==, 'S');
    g_assert_nonnull (strchr ("TFC", u[i + 1]));
  }
  if (expected)
    g_assert_cmpstr (u, ==, expected);
}

static void
fixture_setup (Fixture * f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->emu = rd_emulator_new ();
  rd_emulator_set_token (f->emu, TOKEN);
  rd_emulator_set_processing_time (f->emu, 0);
  g_assert_true (rd_emulator_start (f->emu, "127.0.0.1", 0, &error));
  g_assert_no_error (error);
  f->spool = g_dir_make_tmp ("test-client-XXXXXX", &error);
  g_assert_no_error (error);

  f->config.api_url = rd_emulator_get_base_url (f->emu);
  f->config.token = TOKEN;
  f->config.user_agent = USER_AGENT;
  f->config.max_retries = 3;
  f->config.max_in_flight = 4;
  f->config.poll_interval = 50 * GST_MSECOND;
  f->config.poll_max_interval = 200 * GST_MSECOND;
  f->config.poll_timeout = 30 * GST_SECOND;
  f->config.fetch_results = TRUE;
  f->config.keep_files = FALSE;
  recorder_init (&f->rec);
}

static void
remove_tree (const gchar * path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  if (dir) {
    while ((name = g_dir_read_name (dir))) {
      g_autofree gchar *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        remove_tree (child);
      else
        g_unlink (child);
    }
    g_dir_close (dir);
  }
  g_rmdir (path);
}

static void
fixture_teardown (Fixture * f, gconstpointer data)
{
  rd_client_free (f->client);
  rd_emulator_free (f->emu);
  remove_tree (f->spool);
  g_free (f->spool);
  recorder_clear (&f->rec);
}

static void
fixture_start (Fixture * f)
{
  g_autoptr (GError) error = NULL;

  f->client = rd_client_new (&f->config, &recorder_callbacks, &f->rec);
  f->rec.client = f->client;
  g_assert_true (rd_client_start (f->client, &error));
  g_assert_no_error (error);
}

static void
write_file (const gchar * path, guint64 size, guint32 seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  g_autofree guint8 *data = g_malloc (size);
  g_autoptr (GError) error = NULL;
  guint64 i;

  for (i = 0; i < size; i++)
    data[i] = (guint8) g_rand_int (rand);
  g_assert_true (g_file_set_contents (path, (const gchar *) data, size,
          &error));
  g_assert_no_error (error);
}

/* A closed batch on disk: its directory, files of the given names and
 * sizes (random bytes) and its manifest. */
static RdBatch *
make_batch (Fixture * f, guint index, const gchar * const *names,
    const guint64 * sizes)
{
  RdBatch *batch = rd_batch_new (index, f->spool);
  g_autoptr (GError) error = NULL;
  guint i;

  g_assert_cmpint (g_mkdir_with_parents (batch->dir, 0700), ==, 0);
  for (i = 0; names[i]; i++) {
    g_autofree gchar *path = g_build_filename (batch->dir, names[i], NULL);
    const gchar *ext = strrchr (names[i], '.');
    RdMediaType type = RD_MEDIA_TYPE_AUDIO;

    if (ext && (g_str_equal (ext, ".jpg") || g_str_equal (ext, ".png")))
      type = RD_MEDIA_TYPE_IMAGE;
    else if (ext && g_str_equal (ext, ".mp4"))
      type = RD_MEDIA_TYPE_VIDEO;
    write_file (path, sizes[i], index * 100 + i);
    rd_batch_add_file (batch, rd_batch_file_new (names[i], sizes[i], type,
            i * 10 * GST_SECOND, i == 0 ? RD_TIME_NONE : 10 * GST_SECOND));
  }
  batch->state = RD_BATCH_STATE_CLOSED;
  g_assert_true (rd_manifest_write (batch, &error));
  g_assert_no_error (error);
  return batch;
}

static RdBatch *
make_small_batch (Fixture * f, guint index)
{
  static const gchar *const names[] = { "seg-a.wav", "seg-b.mp3",
    "snap-c.jpg", NULL
  };
  static const guint64 sizes[] = { 4000, 12345, 777 };

  return make_batch (f, index, names, sizes);
}

static gchar *
sha256_of_file (const gchar * path)
{
  g_autofree gchar *contents = NULL;
  gsize length;

  g_assert_true (g_file_get_contents (path, &contents, &length, NULL));
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256,
      (const guchar *) contents, length);
}

typedef struct
{
  gchar *name;
  guint64 size;
  gchar *sha256;
} FileFacts;

static void
file_facts_free (FileFacts * facts)
{
  g_free (facts->name);
  g_free (facts->sha256);
  g_free (facts);
}

/* What was on disk before the client (possibly) deleted it. */
static GPtrArray *
batch_file_facts (const RdBatch * batch)
{
  GPtrArray *facts = g_ptr_array_new_with_free_func ((GDestroyNotify)
      file_facts_free);
  guint i;

  for (i = 0; i < batch->files->len; i++) {
    const RdBatchFile *file = g_ptr_array_index (batch->files, i);
    g_autofree gchar *path = rd_batch_file_path (batch, file);
    FileFacts *fact = g_new0 (FileFacts, 1);

    fact->name = g_strdup (file->name);
    fact->size = file->size;
    fact->sha256 = sha256_of_file (path);
    g_ptr_array_add (facts, fact);
  }
  return facts;
}

static JsonNode *
emulator_stats (Fixture * f)
{
  g_autofree gchar *text = rd_emulator_get_stats_json (f->emu);
  g_autoptr (GError) error = NULL;
  JsonNode *node = json_from_string (text, &error);

  g_assert_no_error (error);
  return node;
}

/* requests.by_route[route][status], 0 when absent. */
static gint64
stats_count (JsonNode * stats, const gchar * route, const gchar * status)
{
  JsonObject *by_route =
      json_object_get_object_member (json_object_get_object_member
      (json_node_get_object (stats), "requests"), "by_route");
  JsonObject *statuses;

  if (!json_object_has_member (by_route, route))
    return 0;
  statuses = json_object_get_object_member (by_route, route);
  if (!json_object_has_member (statuses, status))
    return 0;
  return json_object_get_int_member (statuses, status);
}

static gint64
stats_route_total (JsonNode * stats, const gchar * route)
{
  JsonObject *by_route =
      json_object_get_object_member (json_object_get_object_member
      (json_node_get_object (stats), "requests"), "by_route");
  JsonObject *statuses;
  GList *members, *l;
  gint64 total = 0;

  if (!json_object_has_member (by_route, route))
    return 0;
  statuses = json_object_get_object_member (by_route, route);
  members = json_object_get_members (statuses);
  for (l = members; l; l = l->next)
    total += json_object_get_int_member (statuses, l->data);
  g_list_free (members);
  return total;
}

#define POST_ROUTE "POST /api/v2/detect/batch"
#define POLL_ROUTE "GET /api/v2/detect/batch/{uuid}"
#define DETECT_ROUTE "GET /api/v2/detect/{uuid}"
#define LIST_ROUTE "GET /api/v2/detect"
/* a fault prefix that matches the list only */
#define LIST_FAULT "GET /api/v2/detect?"

static JsonObject *
stats_batch (JsonNode * stats, const gchar * uuid)
{
  JsonArray *batches = json_object_get_array_member (json_node_get_object
      (stats), "batches");
  guint i;

  for (i = 0; i < json_array_get_length (batches); i++) {
    JsonObject *batch = json_array_get_object_element (batches, i);

    if (g_strcmp0 (json_object_get_string_member (batch, "uuid"), uuid) == 0)
      return batch;
  }
  g_error ("the emulator has no batch %s", uuid);
  return NULL;
}

static gboolean
file_exists_in (const gchar * dir, const gchar * name)
{
  g_autofree gchar *path = g_build_filename (dir, name, NULL);

  return g_file_test (path, G_FILE_TEST_EXISTS);
}

static RdBatch *
read_manifest (const gchar * dir)
{
  g_autoptr (GError) error = NULL;
  RdBatch *batch = rd_manifest_read (dir, &error);

  g_assert_no_error (error);
  g_assert_nonnull (batch);
  return batch;
}

/* ---- end to end ---- */

static void
assert_result_fields (const GstStructure * result, const RdBatch * original,
    guint index, const gchar * dir, const gchar * uuid)
{
  static const gchar *const names[] = { "seg-a.wav", "seg-b.mp3",
    "snap-c.jpg"
  };
  g_autofree gchar *path = g_build_filename (dir, names[index], NULL);
  guint64 running_time = 0, duration = 0;

  g_assert_cmpstr (gst_structure_get_name (result), ==,
      "resemble-detect-result");
  g_assert_cmpstr (gst_structure_get_string (result, "batch-uuid"), ==, uuid);
  g_assert_cmpstr (gst_structure_get_string (result, "file"), ==, path);
  g_assert_nonnull (gst_structure_get_string (result, "detect-uuid"));
  g_assert_true (gst_structure_get_uint64 (result, "running-time",
          &running_time));
  g_assert_true (gst_structure_get_uint64 (result, "duration", &duration));
  g_assert_cmpuint (running_time, ==, index * 10 * GST_SECOND);
  g_assert_cmpuint (duration, ==, index == 0 ? GST_CLOCK_TIME_NONE :
      10 * GST_SECOND);
}

static void
test_files_mode_end_to_end (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 1);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (GPtrArray) facts = batch_file_facts (batch);
  g_autoptr (JsonNode) stats = NULL;
  g_autoptr (RdBatch) manifest = NULL;
  JsonObject *sent, *settings;
  JsonArray *files;
  Outcome *outcome;
  guint i;

  batch->settings.visualize = 0;
  batch->settings.frame_length = 2;
  batch->settings.start_region = 1.5;
  g_assert_true (rd_manifest_write (batch, NULL));
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  g_assert_cmpuint (rd_client_get_pending (f->client), ==, 0);
  g_assert_cmpuint (f->rec.pending_at_idle, ==, 0);

  outcome = recorder_get (&f->rec, 1);
  g_assert_true (outcome->done);
  g_assert_cmpuint (outcome->submitted, ==, 1);
  g_assert_cmpuint (outcome->status_calls, >=, 1);
  g_assert_cmpuint (outcome->progress_calls, >=, 1);
  g_assert_cmpuint (outcome->last_sent, ==, outcome->last_total);
  g_assert_cmpstr (outcome->status, ==, "completed");
  g_assert_cmpuint (outcome->completed_count, ==, 3);
  g_assert_cmpint (outcome->state, ==, RD_BATCH_STATE_DONE);

  /* One result per file, in file order, and the same ones in done. */
  g_assert_cmpuint (outcome->results->len, ==, 3);
  g_assert_cmpuint (outcome->reported->len, ==, 3);
  for (i = 0; i < 3; i++) {
    const GstStructure *result = g_ptr_array_index (outcome->results, i);

    g_assert_cmpuint (g_array_index (outcome->reported_index, guint, i), ==, i);
    g_assert_true (gst_structure_is_equal (result,
            g_ptr_array_index (outcome->reported, i)));
    assert_result_fields (result, batch, i, dir, outcome->uuid);
    g_assert_cmpstr (gst_structure_get_string (result, "status"), ==,
        "completed");
  }

  /* The emulator got exactly the bytes on disk and the settings set. */
  stats = emulator_stats (f);
  sent = stats_batch (stats, outcome->uuid);
  g_assert_cmpstr (json_object_get_string_member (sent, "upload_mode"), ==,
      "files");
  g_assert_cmpstr (json_object_get_string_member (sent, "user_agent"), ==,
      USER_AGENT);
  g_assert_false (json_object_get_boolean_member (sent, "prefer_present"));
  g_assert_cmpstr (json_object_get_string_member (sent,
          "authorization_scheme"), ==, "Bearer");
  files = json_object_get_array_member (sent, "files");
  g_assert_cmpuint (json_array_get_length (files), ==, 3);
  for (i = 0; i < 3; i++) {
    JsonObject *file = json_array_get_object_element (files, i);
    FileFacts *fact = g_ptr_array_index (facts, i);

    g_assert_cmpstr (json_object_get_string_member (file, "name"), ==,
        fact->name);
    g_assert_cmpint (json_object_get_int_member (file, "size"), ==, fact->size);
    g_assert_cmpstr (json_object_get_string_member (file, "sha256"), ==,
        fact->sha256);
  }
  settings = json_object_get_object_member (sent, "settings");
  g_assert_cmpuint (json_object_get_size (settings), ==, 3);
  g_assert_cmpstr (json_object_get_string_member (settings, "visualize"), ==,
      "false");
  g_assert_cmpstr (json_object_get_string_member (settings, "frame_length"),
      ==, "2");
  g_assert_cmpfloat (g_ascii_strtod (json_object_get_string_member (settings,
              "start_region"), NULL), ==, 1.5);

  /* Files deleted after done; manifest done with uuid and detect uuids. */
  for (i = 0; i < 3; i++)
    g_assert_false (file_exists_in (dir,
            ((FileFacts *) g_ptr_array_index (facts, i))->name));
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_DONE);
  g_assert_cmpstr (manifest->uuid, ==, outcome->uuid);
  g_assert_cmpstr (manifest->status, ==, "completed");
  for (i = 0; i < 3; i++)
    g_assert_nonnull (((RdBatchFile *) g_ptr_array_index (manifest->files,
                i))->detect_uuid);
}

static void
test_keep_files_keeps_them_after_done (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 2);
  g_autofree gchar *dir = g_strdup (batch->dir);

  f->config.keep_files = TRUE;
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  g_assert_true (recorder_get (&f->rec, 2)->done);
  g_assert_true (file_exists_in (dir, "seg-a.wav"));
  g_assert_true (file_exists_in (dir, "seg-b.mp3"));
  g_assert_true (file_exists_in (dir, "snap-c.jpg"));
}

static void
test_without_fetch_results_done_has_no_results (Fixture * f, gconstpointer data)
{
  f->config.fetch_results = FALSE;
  fixture_start (f);
  rd_client_submit (f->client, make_small_batch (f, 3));
  recorder_wait_finished (&f->rec, 1);
  g_assert_true (recorder_get (&f->rec, 3)->done);
  g_assert_cmpuint (recorder_get (&f->rec, 3)->results->len, ==, 0);
  g_assert_cmpuint (recorder_get (&f->rec, 3)->reported->len, ==, 0);
  g_autoptr (JsonNode) stats = emulator_stats (f);
  g_assert_cmpint (stats_route_total (stats, DETECT_ROUTE), ==, 0);
}

static void
test_zip_mode_end_to_end (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 4);
  g_autoptr (GPtrArray) facts = batch_file_facts (batch);
  g_autoptr (JsonNode) stats = NULL;
  JsonObject *sent;
  JsonArray *files;
  Outcome *outcome;
  guint i;

  batch->upload_mode = RD_UPLOAD_MODE_ZIP;
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);

  outcome = recorder_get (&f->rec, 4);
  g_assert_true (outcome->done);
  g_assert_cmpuint (outcome->results->len, ==, 3);
  stats = emulator_stats (f);
  sent = stats_batch (stats, outcome->uuid);
  g_assert_cmpstr (json_object_get_string_member (sent, "upload_mode"), ==,
      "zip");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member
          (sent, "zip"), "name"), ==, "batch-000004.zip");
  files = json_object_get_array_member (sent, "files");
  g_assert_cmpuint (json_array_get_length (files), ==, 3);
  for (i = 0; i < 3; i++) {
    JsonObject *file = json_array_get_object_element (files, i);
    FileFacts *fact = g_ptr_array_index (facts, i);

    g_assert_cmpstr (json_object_get_string_member (file, "name"), ==,
        fact->name);
    g_assert_cmpint (json_object_get_int_member (file, "size"), ==, fact->size);
    g_assert_cmpstr (json_object_get_string_member (file, "sha256"), ==,
        fact->sha256);
  }
}

static void
test_failed_files_still_get_a_result (Fixture * f, gconstpointer data)
{
  Outcome *outcome;

  rd_emulator_set_fail_substring (f->emu, "seg-b");
  fixture_start (f);
  rd_client_submit (f->client, make_small_batch (f, 5));
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 5);
  g_assert_true (outcome->done);
  g_assert_cmpstr (outcome->status, ==, "partially_failed");
  g_assert_cmpuint (outcome->failed_count, ==, 1);
  g_assert_cmpuint (outcome->results->len, ==, 3);
  g_assert_cmpstr (gst_structure_get_string (g_ptr_array_index
          (outcome->results, 1), "status"), ==, "failed");
  g_assert_cmpstr (gst_structure_get_string (g_ptr_array_index
          (outcome->results, 0), "status"), ==, "completed");
}

/* ---- refused before sending ---- */

static void
test_validation_refuses_51_files_without_a_request (Fixture * f,
    gconstpointer data)
{
  RdBatch *batch = rd_batch_new (6, f->spool);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (JsonNode) stats = NULL;
  g_autoptr (RdBatch) manifest = NULL;
  Outcome *outcome;
  guint i;

  g_assert_cmpint (g_mkdir_with_parents (batch->dir, 0700), ==, 0);
  for (i = 0; i < 51; i++) {
    g_autofree gchar *name = g_strdup_printf ("f%02u.wav", i);
    g_autofree gchar *path = g_build_filename (batch->dir, name, NULL);

    write_file (path, 10, i);
    rd_batch_add_file (batch, rd_batch_file_new (name, 10,
            RD_MEDIA_TYPE_AUDIO, RD_TIME_NONE, RD_TIME_NONE));
  }
  batch->state = RD_BATCH_STATE_CLOSED;
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);

  outcome = recorder_get (&f->rec, 6);
  g_assert_false (outcome->done);
  g_assert_cmpuint (outcome->http_status, ==, 0);
  g_assert_nonnull (strstr (outcome->reason, "51 files"));
  g_assert_false (outcome->cancelled);
  stats = emulator_stats (f);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member
          (json_node_get_object (stats), "requests"), "total"), ==, 0);
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_ERROR);
  g_assert_nonnull (strstr (manifest->error_reason, "51 files"));
  g_assert_true (file_exists_in (dir, "f00.wav"));
}

static void
test_validation_refuses_bad_extension_without_a_request (Fixture * f,
    gconstpointer data)
{
  static const gchar *const names[] = { "ok.wav", "notes.txt", NULL };
  static const guint64 sizes[] = { 100, 100 };
  g_autoptr (JsonNode) stats = NULL;
  Outcome *outcome;

  fixture_start (f);
  rd_client_submit (f->client, make_batch (f, 7, names, sizes));
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 7);
  g_assert_false (outcome->done);
  g_assert_cmpuint (outcome->http_status, ==, 0);
  g_assert_nonnull (strstr (outcome->reason, "notes.txt"));
  g_assert_cmpint (outcome->state, ==, RD_BATCH_STATE_ERROR);
  stats = emulator_stats (f);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member
          (json_node_get_object (stats), "requests"), "total"), ==, 0);
}

static void
test_bad_setting_is_refused_without_a_request (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 8);
  g_autoptr (JsonNode) stats = NULL;

  batch->settings.frame_length = 9;
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  g_assert_false (recorder_get (&f->rec, 8)->done);
  g_assert_cmpuint (recorder_get (&f->rec, 8)->http_status, ==, 0);
  stats = emulator_stats (f);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member
          (json_node_get_object (stats), "requests"), "total"), ==, 0);
}

static void
test_missing_token_fails_every_batch_without_a_request (Fixture * f,
    gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 9);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (JsonNode) stats = NULL;
  g_autoptr (RdBatch) manifest = NULL;
  Outcome *outcome;

  f->config.token = "";
  fixture_start (f);
  rd_client_submit (f->client, batch);
  rd_client_submit (f->client, make_small_batch (f, 10));
  recorder_wait_finished (&f->rec, 2);
  outcome = recorder_get (&f->rec, 9);
  g_assert_cmpuint (outcome->http_status, ==, 0);
  g_assert_cmpstr (outcome->reason, ==,
      "no API token: set api-token or RESEMBLE_API_TOKEN");
  g_assert_false (recorder_get (&f->rec, 10)->done);
  stats = emulator_stats (f);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member
          (json_node_get_object (stats), "requests"), "total"), ==, 0);
  /* Nothing reached the API: a next run with a token sends it. */
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_CLOSED);
}

/* ---- the API's errors ---- */

static void
test_401_reports_unauthorized_once_and_fails_every_batch (Fixture * f,
    gconstpointer data)
{
  g_autofree gchar *dir = NULL;
  g_autoptr (RdBatch) manifest = NULL;
  g_autoptr (JsonNode) stats = NULL;
  guint i;

  f->config.token = "a-wrong-token";
  f->config.max_in_flight = 1;
  fixture_start (f);
  for (i = 11; i <= 13; i++) {
    RdBatch *batch = make_small_batch (f, i);

    if (i == 11)
      dir = g_strdup (batch->dir);
    rd_client_submit (f->client, batch);
  }
  recorder_wait_finished (&f->rec, 3);
  g_assert_cmpuint (f->rec.unauthorized_calls, ==, 1);
  g_assert_nonnull (f->rec.unauthorized_reason);
  for (i = 11; i <= 13; i++) {
    Outcome *outcome = recorder_get (&f->rec, i);

    g_assert_false (outcome->done);
    g_assert_false (outcome->cancelled);
    g_assert_cmpuint (outcome->http_status, ==, 401);
    g_assert_nonnull (strstr (outcome->reason, "Unauthorized"));
    g_assert_null (strstr (outcome->reason, "a-wrong-token"));
  }
  /* Only the first batch reached the API. */
  stats = emulator_stats (f);
  g_assert_cmpint (stats_count (stats, POST_ROUTE, "401"), ==, 1);
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_CLOSED);
}

static void
test_402_carries_the_per_file_estimates (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 14);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (RdBatch) manifest = NULL;
  const GValue *estimates;
  Outcome *outcome;

  rd_emulator_set_wallet (f->emu, 5, 10);
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 14);
  g_assert_false (outcome->done);
  g_assert_cmpuint (outcome->http_status, ==, 402);
  g_assert_nonnull (outcome->details);
  estimates = gst_structure_get_value (outcome->details, "per-file-estimates");
  g_assert_nonnull (estimates);
  g_assert_true (GST_VALUE_HOLDS_ARRAY (estimates)
      || GST_VALUE_HOLDS_LIST (estimates));
  g_assert_cmpuint (GST_VALUE_HOLDS_ARRAY (estimates) ?
      gst_value_array_get_size (estimates) :
      gst_value_list_get_size (estimates), ==, 3);
  g_assert_true (gst_structure_has_field (outcome->details,
          "total-estimated-cost-cents"));
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_ERROR);
  g_assert_cmpuint (manifest->error_http_status, ==, 402);
  g_assert_true (file_exists_in (dir, "seg-a.wav"));
}

static void
test_403_carries_limit_used_requested (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 15);
  gint64 limit = -1, used = -1, requested = -1;
  Outcome *outcome;

  batch->settings.intelligence = 1;
  rd_emulator_set_intelligence_limit (f->emu, 2, 1);
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 15);
  g_assert_false (outcome->done);
  g_assert_cmpuint (outcome->http_status, ==, 403);
  g_assert_nonnull (outcome->details);
  g_assert_true (gst_structure_get_int64 (outcome->details, "limit", &limit));
  g_assert_true (gst_structure_get_int64 (outcome->details, "used", &used));
  g_assert_true (gst_structure_get_int64 (outcome->details, "requested",
          &requested));
  g_assert_cmpint (limit, ==, 2);
  g_assert_cmpint (used, ==, 1);
  g_assert_cmpint (requested, ==, 3);
  g_assert_cmpint (outcome->state, ==, RD_BATCH_STATE_ERROR);
}

static void
test_404_while_polling_a_resumed_batch (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 16);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (JsonNode) stats = NULL;
  g_autoptr (RdBatch) manifest = NULL;
  Outcome *outcome;

  batch->state = RD_BATCH_STATE_SUBMITTED;
  batch->uuid = g_strdup ("00000000-0000-4000-8000-000000000000");
  g_assert_true (rd_manifest_write (batch, NULL));
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 16);
  g_assert_false (outcome->done);
  g_assert_cmpuint (outcome->http_status, ==, 404);
  g_assert_nonnull (outcome->reason);
  stats = emulator_stats (f);
  /* Resumed: polled, never POSTed again. */
  g_assert_cmpint (stats_route_total (stats, POST_ROUTE), ==, 0);
  g_assert_cmpint (stats_count (stats, POLL_ROUTE, "404"), ==, 1);
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_ERROR);
  g_assert_cmpstr (manifest->uuid, ==, "00000000-0000-4000-8000-000000000000");
}

static void
test_resumed_submitted_batch_is_polled_to_done (Fixture * f, gconstpointer data)
{
  RdBatch *first = make_small_batch (f, 17);
  RdBatch *resumed = make_small_batch (f, 18);
  g_autoptr (JsonNode) stats = NULL;
  Outcome *outcome;
  guint i;

  /* A first client submits and is stopped right after acceptance. */
  f->config.fetch_results = FALSE;
  fixture_start (f);
  rd_client_submit (f->client, first);
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 17);
  g_assert_true (outcome->done);

  /* The same uuid, as a manifest would give it back, on a new client. */
  resumed->state = RD_BATCH_STATE_SUBMITTED;
  resumed->uuid = g_strdup (outcome->uuid);
  for (i = 0; i < resumed->files->len; i++)
    ((RdBatchFile *) g_ptr_array_index (resumed->files, i))->detect_uuid = NULL;
  rd_client_free (f->client);
  f->config.fetch_results = TRUE;
  fixture_start (f);
  rd_client_submit (f->client, resumed);
  recorder_wait_finished (&f->rec, 2);
  outcome = recorder_get (&f->rec, 18);
  g_assert_true (outcome->done);
  g_assert_cmpuint (outcome->submitted, ==, 0);
  /* The detect uuids came from the poll. */
  g_assert_cmpuint (outcome->results->len, ==, 3);
  g_assert_cmpstr (gst_structure_get_string (g_ptr_array_index
          (outcome->results, 2), "status"), ==, "completed");
  stats = emulator_stats (f);
  g_assert_cmpint (stats_route_total (stats, POST_ROUTE), ==, 1);
}

static void
test_poll_timeout_fails_the_batch_and_keeps_its_uuid (Fixture * f,
    gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 19);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (RdBatch) manifest = NULL;
  Outcome *outcome;
  gint64 handed_us;

  rd_emulator_set_processing_time (f->emu, 60000);
  f->config.poll_timeout = 300 * GST_MSECOND;
  fixture_start (f);
  handed_us = g_get_monotonic_time ();
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 19);
  g_assert_false (outcome->done);
  g_assert_nonnull (outcome->uuid);
  g_assert_cmpuint (outcome->http_status, ==, 0);
  g_assert_true (g_str_has_prefix (outcome->reason, "poll timeout after"));
  /* Counted from when the client took the batch, not much later. */
  g_assert_cmpint (outcome->finished_us - handed_us, >=,
      300 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpint (outcome->finished_us - handed_us, <, 5 * G_TIME_SPAN_SECOND);
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_ERROR);
  g_assert_cmpstr (manifest->uuid, ==, outcome->uuid);
  g_assert_true (file_exists_in (dir, "seg-a.wav"));
}

/* A Retry-After far beyond the batch's budget: the batch still ends at
 * its poll-timeout (the element holds EOS until then, not for 10 minutes),
 * after one last attempt at the deadline, and its manifest keeps what is
 * true (closed: never accepted; submitted: the API has it). */
static void
run_budget_against_retry_after (Fixture * f, guint index,
    const gchar * fault_prefix, const gchar * route, RdBatchState kept)
{
  RdBatch *batch = make_small_batch (f, index);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (RdBatch) manifest = NULL;
  g_autoptr (JsonNode) stats = NULL;
  Outcome *outcome;
  gint64 handed_us;

  rd_emulator_set_processing_time (f->emu, 60000);
  rd_emulator_set_retry_after (f->emu, 600);
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_429, 1, fault_prefix);
  f->config.poll_timeout = GST_SECOND;
  f->config.max_retries = 10;
  fixture_start (f);
  /* draining (EOS): what gives up ends rather than waiting for the API */
  rd_client_drain (f->client);
  handed_us = g_get_monotonic_time ();
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);

  outcome = recorder_get (&f->rec, index);
  g_assert_false (outcome->done);
  g_assert_false (outcome->cancelled);
  g_assert_cmpuint (outcome->http_status, ==, 429);
  g_assert_nonnull (strstr (outcome->reason,
          "gave up at the poll-timeout of 1 s, after 1 retries"));
  g_assert_cmpint (outcome->finished_us - handed_us, >=, G_TIME_SPAN_SECOND);
  g_assert_cmpint (outcome->finished_us - handed_us, <,
      10 * G_TIME_SPAN_SECOND);
  stats = emulator_stats (f);
  g_assert_cmpint (stats_count (stats, route, "429"), ==, 2);
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, kept);
  g_assert_true (file_exists_in (dir, "seg-a.wav"));
}

static void
test_budget_bounds_a_post_in_a_long_backoff (Fixture * f, gconstpointer data)
{
  run_budget_against_retry_after (f, 71, POST_ROUTE, POST_ROUTE,
      RD_BATCH_STATE_CLOSED);
}

static void
test_budget_bounds_polls_in_a_long_backoff (Fixture * f, gconstpointer data)
{
  run_budget_against_retry_after (f, 72, "GET /api/v2/detect/batch/",
      POLL_ROUTE, RD_BATCH_STATE_SUBMITTED);
}

/* ---- connections ---- */

/* Three uploads the API holds (its answer 30 s away) all go out at once
 * with max_in_flight 3: the session has connections for every request in
 * flight (libsoup's default of 2 per host would hold the third). */
static void
test_held_uploads_do_not_hold_the_others (Fixture * f, gconstpointer data)
{
  static const gchar *const names[3][2] = {
    {"c-1.wav", NULL}, {"c-2.wav", NULL}, {"c-3.wav", NULL}
  };
  static const guint64 sizes[] = { 4000 };
  guint i;

  rd_emulator_set_slow_delay (f->emu, 30000);
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_SLOW, 1, POST_ROUTE);
  f->config.max_in_flight = 3;
  fixture_start (f);
  for (i = 0; i < 3; i++)
    rd_client_submit (f->client, make_batch (f, 100 + i, names[i], sizes));
  /* WAIT_S (20 s) is well short of the held answers */
  recorder_wait_for (&f->rec, bodies_sent, 3);
  g_assert_cmpuint (f->rec.finished, ==, 0);
}

/* ---- a run stopped during an upload ---- */

/* A manifest as a run killed during the upload leaves it: closed, with the
 * time its last attempt began. */
static RdBatch *
as_left_by_a_killed_run (RdBatch * batch)
{
  guint i;

  batch->state = RD_BATCH_STATE_CLOSED;
  g_clear_pointer (&batch->uuid, g_free);
  g_clear_pointer (&batch->status, g_free);
  for (i = 0; i < batch->files->len; i++)
    g_clear_pointer (&((RdBatchFile *) g_ptr_array_index (batch->files,
                i))->detect_uuid, g_free);
  batch->upload_started_us = g_get_real_time () - G_TIME_SPAN_SECOND;
  g_assert_true (rd_manifest_write (batch, NULL));
  return batch;
}

/* The API got the whole upload before the run died: the next run finds
 * the files in the API's list and follows them, never uploading again. */
static void
test_restart_adopts_an_upload_the_api_got (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 90);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (JsonNode) stats = NULL;
  Outcome *outcome;

  f->config.keep_files = TRUE;
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  g_clear_pointer (&f->client, rd_client_free);

  /* the next run */
  recorder_clear (&f->rec);
  memset (&f->rec, 0, sizeof f->rec);
  recorder_init (&f->rec);
  fixture_start (f);
  rd_client_submit (f->client, as_left_by_a_killed_run (read_manifest (dir)));
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 90);
  g_assert_true (outcome->done);
  g_assert_cmpstr (outcome->status, ==, "completed");
  g_assert_cmpuint (outcome->results->len, ==, 3);
  stats = emulator_stats (f);
  g_assert_cmpint (stats_route_total (stats, POST_ROUTE), ==, 1);
  g_assert_cmpint (stats_count (stats, LIST_ROUTE, "200"), >=, 1);
}

/* The run died before the API had it: two looks at the list prove it,
 * and the batch is sent. */
static void
test_restart_sends_an_upload_the_api_never_got (Fixture * f, gconstpointer data)
{
  g_autoptr (JsonNode) stats = NULL;
  g_autoptr (RdBatch) manifest = NULL;
  RdBatch *batch = as_left_by_a_killed_run (make_small_batch (f, 91));
  g_autofree gchar *dir = g_strdup (batch->dir);

  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->upload_started_us, ==, batch->upload_started_us);
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  g_assert_true (recorder_get (&f->rec, 91)->done);
  stats = emulator_stats (f);
  g_assert_cmpint (stats_count (stats, LIST_ROUTE, "200"), ==, 2);
  g_assert_cmpint (stats_count (stats, POST_ROUTE, "202"), ==, 1);
}

/* ---- outages ---- */

static void
restart_emulator (Fixture * f, guint port)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (rd_emulator_start (f->emu, "127.0.0.1", port, &error));
  g_assert_no_error (error);
}

/* The API goes away with one batch being polled and two not yet sent:
 * they wait (one warning), a probe finds the API again on the same port
 * (one info), and all three finish, none uploaded twice. */
static void
test_outage_batches_wait_and_resume (Fixture * f, gconstpointer data)
{
  static const gchar *const names[3][2] = {
    {"a-1.wav", NULL}, {"a-2.wav", NULL}, {"a-3.wav", NULL}
  };
  static const guint64 sizes[] = { 4000 };
  guint port = rd_emulator_get_port (f->emu);
  g_autoptr (JsonNode) stats = NULL;
  guint i;

  rd_emulator_set_processing_time (f->emu, 2000);
  f->config.max_retries = 1;
  fixture_start (f);
  rd_client_submit (f->client, make_batch (f, 80, names[0], sizes));
  recorder_wait_for (&f->rec, submitted, 1);
  rd_emulator_stop (f->emu);
  rd_client_submit (f->client, make_batch (f, 81, names[1], sizes));
  rd_client_submit (f->client, make_batch (f, 82, names[2], sizes));
  recorder_wait_for (&f->rec, outage_starts, 1);
  g_assert_cmpuint (f->rec.finished, ==, 0);
  restart_emulator (f, port);
  recorder_wait_finished (&f->rec, 3);

  g_assert_cmpuint (f->rec.outage_starts, ==, 1);
  g_assert_cmpuint (f->rec.outage_ends, ==, 1);
  for (i = 80; i <= 82; i++)
    g_assert_true (recorder_get (&f->rec, i)->done);
  stats = emulator_stats (f);
  g_assert_cmpint (stats_count (stats, POST_ROUTE, "202"), ==, 3);
  g_assert_cmpint (stats_route_total (stats, POST_ROUTE), ==, 3);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (stats),
          "batches_created"), ==, 3);
}

/* EOS during an outage: the waiting batches end at once, kept for a next
 * run, instead of holding EOS while the API does not answer. */
static void
test_outage_drain_ends_waiting_batches (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 83);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (RdBatch) manifest = NULL;
  Outcome *outcome;

  f->config.max_retries = 0;
  rd_emulator_stop (f->emu);
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_for (&f->rec, outage_starts, 1);
  g_assert_cmpuint (f->rec.finished, ==, 0);
  rd_client_drain (f->client);
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 83);
  g_assert_false (outcome->done);
  g_assert_false (outcome->cancelled);
  g_assert_nonnull (strstr (outcome->reason, "does not answer"));
  g_assert_nonnull (strstr (outcome->reason, "kept for a next run"));
  g_assert_cmpuint (rd_client_get_pending (f->client), ==, 0);
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_CLOSED);
  g_assert_true (file_exists_in (dir, "seg-a.wav"));
}

/* ---- faults ---- */

/* Two batches, one after the other; the emulator's fault hits the second
 * POST (every 2nd), so the first shows the normal path and the second
 * the retry. */
static void
run_two_batches_with_post_fault (Fixture * f, RdEmulatorFault fault,
    guint first_index)
{
  /* names unique to a batch, as the spool makes them: an upload of
   * unknown outcome is settled by the names in the API's list */
  static const gchar *const first[] = { "a-1.wav", "b-1.jpg", NULL };
  static const gchar *const second[] = { "a-2.wav", "b-2.jpg", NULL };
  static const guint64 sizes[] = { 4000, 777 };

  rd_emulator_set_fault (f->emu, fault, 2, POST_ROUTE);
  f->config.max_in_flight = 1;
  f->config.fetch_results = FALSE;
  fixture_start (f);
  rd_client_submit (f->client, make_batch (f, first_index, first, sizes));
  rd_client_submit (f->client, make_batch (f, first_index + 1, second, sizes));
  recorder_wait_finished (&f->rec, 2);
  g_assert_true (recorder_get (&f->rec, first_index)->done);
  g_assert_true (recorder_get (&f->rec, first_index + 1)->done);
}

static void
test_503_on_post_is_retried (Fixture * f, gconstpointer data)
{
  g_autoptr (JsonNode) stats = NULL;

  run_two_batches_with_post_fault (f, RD_EMULATOR_FAULT_503, 20);
  stats = emulator_stats (f);
  g_assert_cmpint (stats_count (stats, POST_ROUTE, "503"), ==, 1);
  g_assert_cmpint (stats_count (stats, POST_ROUTE, "202"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (stats),
          "batches_created"), ==, 2);
}

static void
test_429_on_post_waits_for_retry_after (Fixture * f, gconstpointer data)
{
  g_autoptr (JsonNode) stats = NULL;
  Outcome *first, *second;

  rd_emulator_set_retry_after (f->emu, 2);
  run_two_batches_with_post_fault (f, RD_EMULATOR_FAULT_429, 22);
  first = recorder_get (&f->rec, 22);
  second = recorder_get (&f->rec, 23);
  /* The second POST starts once the first batch is done; its first
   * attempt got the 429, and the backoff alone would be under 1 s. */
  g_assert_cmpint (second->submitted_us - first->finished_us, >=,
      2 * G_TIME_SPAN_SECOND);
  stats = emulator_stats (f);
  g_assert_cmpint (stats_count (stats, POST_ROUTE, "429"), ==, 1);
  g_assert_cmpint (stats_count (stats, POST_ROUTE, "202"), ==, 2);
}

static void
test_drop_before_body_is_retried (Fixture * f, gconstpointer data)
{
  g_autoptr (JsonNode) stats = NULL;

  run_two_batches_with_post_fault (f, RD_EMULATOR_FAULT_DROP_BEFORE_BODY, 24);
  stats = emulator_stats (f);
  g_assert_cmpint (stats_count (stats, POST_ROUTE, "dropped"), ==, 1);
  g_assert_cmpint (stats_count (stats, POST_ROUTE, "202"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (stats),
          "batches_created"), ==, 2);
}

/* The connection is lost after the whole body went out, but the API had
 * created the batch: its files are in the API's list of detects, so the
 * batch is adopted (its detects followed, never sent twice) and ends
 * done. */
static void
test_drop_after_body_is_settled_by_the_list (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 26);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (JsonNode) stats = NULL;
  g_autoptr (RdBatch) manifest = NULL;
  Outcome *outcome;
  guint i;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_DROP_AFTER_BODY, 1,
      POST_ROUTE);
  rd_emulator_set_processing_time (f->emu, 200);
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 26);
  g_assert_true (outcome->done);
  g_assert_cmpuint (outcome->submitted, ==, 1);
  g_assert_cmpstr (outcome->status, ==, "completed");
  g_assert_cmpuint (outcome->completed_count, ==, 3);
  g_assert_cmpuint (outcome->results->len, ==, 3);
  for (i = 0; i < 3; i++)
    g_assert_cmpstr (gst_structure_get_string (g_ptr_array_index
            (outcome->results, i), "status"), ==, "completed");
  stats = emulator_stats (f);
  g_assert_cmpint (stats_route_total (stats, POST_ROUTE), ==, 1);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (stats),
          "batches_created"), ==, 1);
  g_assert_cmpint (stats_count (stats, LIST_ROUTE, "200"), >=, 1);
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_DONE);
  for (i = 0; i < manifest->files->len; i++)
    g_assert_nonnull (((RdBatchFile *) g_ptr_array_index (manifest->files,
                i))->detect_uuid);
}

/* A 500 after the whole body is ambiguous too; here the API created
 * nothing: two looks at the list, a grace period apart, prove it, and the
 * batch is sent again (once). */
static void
test_500_after_the_body_is_settled_and_sent_again (Fixture * f,
    gconstpointer data)
{
  g_autoptr (JsonNode) stats = NULL;

  /* the second batch's first POST gets the 500 */
  run_two_batches_with_post_fault (f, RD_EMULATOR_FAULT_500, 73);
  g_assert_cmpstr (recorder_get (&f->rec, 74)->uploads->str, ==, "STST");
  stats = emulator_stats (f);
  g_assert_cmpint (stats_count (stats, POST_ROUTE, "500"), ==, 1);
  g_assert_cmpint (stats_count (stats, POST_ROUTE, "202"), ==, 2);
  g_assert_cmpint (stats_count (stats, LIST_ROUTE, "200"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (stats),
          "batches_created"), ==, 2);
}

/* What cannot be settled stays an unknown outcome: never sent twice. */
static void
run_unsettled (Fixture * f, guint index, gboolean zero_retention,
    const gchar * expected)
{
  RdBatch *batch = make_small_batch (f, index);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (JsonNode) stats = NULL;
  g_autoptr (RdBatch) manifest = NULL;
  Outcome *outcome;

  batch->settings.zero_retention_mode = zero_retention;
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_DROP_AFTER_BODY, 1,
      POST_ROUTE);
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, index);
  g_assert_false (outcome->done);
  g_assert_false (outcome->cancelled);
  g_assert_nonnull (strstr (outcome->reason, "outcome unknown"));
  g_assert_nonnull (strstr (outcome->reason, "duplicate"));
  g_assert_nonnull (strstr (outcome->reason, expected));
  stats = emulator_stats (f);
  g_assert_cmpint (stats_route_total (stats, POST_ROUTE), ==, 1);
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_ERROR);
  g_assert_nonnull (strstr (manifest->error_reason, "outcome unknown"));
  g_assert_true (file_exists_in (dir, "seg-a.wav"));
}

static void
test_unknown_outcome_with_zero_retention_is_not_settled (Fixture * f,
    gconstpointer data)
{
  g_autoptr (JsonNode) stats = NULL;

  run_unsettled (f, 75, TRUE, "zero retention");
  stats = emulator_stats (f);
  g_assert_cmpint (stats_route_total (stats, LIST_ROUTE), ==, 0);
}

static void
test_unknown_outcome_without_a_list_is_not_settled (Fixture * f,
    gconstpointer data)
{
  /* a 500, not an outage (a 503 would make the batch wait for the API) */
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_500, 1, LIST_FAULT);
  f->config.max_retries = 1;
  run_unsettled (f, 76, FALSE, "not settled: Internal server error");
}

static void
test_500_on_poll_is_retried (Fixture * f, gconstpointer data)
{
  g_autoptr (JsonNode) stats = NULL;
  Outcome *outcome;

  /* 3 files at 150 ms: the first poll sees "processing", the second gets
   * the 500, a later one the terminal state. */
  rd_emulator_set_processing_time (f->emu, 150);
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_500, 2,
      "GET /api/v2/detect/batch/");
  fixture_start (f);
  rd_client_submit (f->client, make_small_batch (f, 27));
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 27);
  g_assert_true (outcome->done);
  g_assert_cmpstr (outcome->status, ==, "completed");
  stats = emulator_stats (f);
  g_assert_cmpint (stats_count (stats, POLL_ROUTE, "500"), >=, 1);
  g_assert_cmpint (stats_count (stats, POLL_ROUTE, "200"), >=, 2);
}

static void
test_500_on_results_is_retried (Fixture * f, gconstpointer data)
{
  g_autoptr (JsonNode) stats = NULL;
  Outcome *outcome;
  guint i;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_500, 2,
      "GET /api/v2/detect/");
  fixture_start (f);
  rd_client_submit (f->client, make_small_batch (f, 28));
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 28);
  g_assert_true (outcome->done);
  for (i = 0; i < 3; i++)
    g_assert_cmpstr (gst_structure_get_string (g_ptr_array_index
            (outcome->results, i), "status"), ==, "completed");
  stats = emulator_stats (f);
  g_assert_cmpint (stats_count (stats, DETECT_ROUTE, "500")
      + stats_count (stats, POLL_ROUTE, "500"), >=, 1);
}

static void
test_results_that_cannot_be_fetched_are_unknown (Fixture * f,
    gconstpointer data)
{
  Outcome *outcome;
  guint i, unknown = 0, completed = 0;

  /* No retries; of the GETs under /detect/ the one poll (terminal at
   * once) is the 1st, the three verdicts the 2nd to 4th: two of them
   * fail. */
  f->config.max_retries = 0;
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_503, 2,
      "GET /api/v2/detect/");
  fixture_start (f);
  rd_client_submit (f->client, make_small_batch (f, 29));
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 29);
  g_assert_true (outcome->done);
  g_assert_cmpuint (outcome->results->len, ==, 3);
  for (i = 0; i < 3; i++) {
    const GstStructure *result = g_ptr_array_index (outcome->results, i);
    const gchar *status = gst_structure_get_string (result, "status");

    g_assert_nonnull (gst_structure_get_string (result, "file"));
    g_assert_nonnull (gst_structure_get_string (result, "detect-uuid"));
    if (g_strcmp0 (status, "unknown") == 0) {
      g_assert_nonnull (gst_structure_get_string (result, "error-message"));
      unknown++;
    } else if (g_strcmp0 (status, "completed") == 0) {
      completed++;
    }
  }
  g_assert_cmpuint (unknown, ==, 2);
  g_assert_cmpuint (completed, ==, 1);
}

/* ---- the queue ---- */

static void
test_max_in_flight_one_runs_batches_one_at_a_time (Fixture * f,
    gconstpointer data)
{
  guint i;

  rd_emulator_set_processing_time (f->emu, 30);
  f->config.max_in_flight = 1;
  fixture_start (f);
  for (i = 30; i < 33; i++)
    rd_client_submit (f->client, make_small_batch (f, i));
  g_assert_cmpuint (rd_client_get_pending (f->client), >=, 1);
  recorder_wait_finished (&f->rec, 3);
  g_assert_cmpuint (f->rec.max_posting, ==, 1);
  g_assert_cmpuint (f->rec.finish_order->len, ==, 3);
  for (i = 0; i < 3; i++) {
    g_assert_cmpuint (GPOINTER_TO_UINT (g_ptr_array_index
            (f->rec.finish_order, i)), ==, 30 + i);
    g_assert_true (recorder_get (&f->rec, 30 + i)->done);
  }
  g_assert_cmpuint (f->rec.idle_calls, >=, 1);
  g_assert_cmpuint (rd_client_get_pending (f->client), ==, 0);
}

static void
test_max_in_flight_allows_parallel_batches (Fixture * f, gconstpointer data)
{
  guint i;

  rd_emulator_set_processing_time (f->emu, 100);
  f->config.max_in_flight = 3;
  fixture_start (f);
  for (i = 34; i < 37; i++)
    rd_client_submit (f->client, make_small_batch (f, i));
  recorder_wait_finished (&f->rec, 3);
  g_assert_cmpuint (f->rec.max_posting, >, 1);
  g_assert_cmpuint (f->rec.max_posting, <=, 3);
}

/* ---- stopping ---- */

static void
test_stop_in_the_middle_of_an_upload_is_prompt (Fixture * f, gconstpointer data)
{
  RdBatch *batch = rd_batch_new (40, f->spool);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autofree gchar *path = g_build_filename (batch->dir, "big.wav", NULL);
  g_autoptr (RdBatch) manifest = NULL;
  guint64 size = 64 * 1024 * 1024;
  gint64 deadline, start, elapsed;
  Outcome *outcome;
  int fd;

  g_assert_cmpint (g_mkdir_with_parents (batch->dir, 0700), ==, 0);
  fd = g_open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ftruncate (fd, size), ==, 0);
  g_close (fd, NULL);
  rd_batch_add_file (batch, rd_batch_file_new ("big.wav", size,
          RD_MEDIA_TYPE_AUDIO, 0, 10 * GST_SECOND));
  batch->state = RD_BATCH_STATE_CLOSED;
  g_assert_true (rd_manifest_write (batch, NULL));

  f->rec.hold_first_progress = TRUE;
  fixture_start (f);
  rd_client_submit (f->client, batch);

  /* Wait for the upload to start; the client's thread holds in the
   * progress callback until we are about to stop. */
  deadline = g_get_monotonic_time () + WAIT_S * G_TIME_SPAN_SECOND;
  g_mutex_lock (&f->rec.lock);
  while (!f->rec.progress_seen)
    g_assert_true (g_cond_wait_until (&f->rec.cond, &f->rec.lock, deadline));
  f->rec.release_progress = TRUE;
  g_cond_broadcast (&f->rec.cond);
  g_mutex_unlock (&f->rec.lock);

  /* a bound a user needs (stopping never waits for the network), generous
   * for a loaded machine; that the upload was cut is last_sent below */
  start = g_get_monotonic_time ();
  rd_client_stop (f->client);
  elapsed = g_get_monotonic_time () - start;
  g_assert_cmpint (elapsed, <, 20 * G_TIME_SPAN_SECOND);
  /* Stop is idempotent. */
  rd_client_stop (f->client);

  g_assert_cmpuint (f->rec.finished, ==, 1);
  outcome = recorder_get (&f->rec, 40);
  g_assert_false (outcome->done);
  g_assert_true (outcome->cancelled);
  g_assert_cmpuint (outcome->last_sent, <, size);
  assert_upload_attempts (outcome, "SC");
  g_assert_cmpuint (rd_client_get_pending (f->client), ==, 0);
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_CLOSED);
  g_assert_null (manifest->uuid);
  g_assert_true (file_exists_in (dir, "big.wav"));
}

static void
test_stop_while_polling_keeps_the_batch_submitted (Fixture * f,
    gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 41);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (RdBatch) manifest = NULL;
  gint64 deadline, start;
  Outcome *outcome;

  rd_emulator_set_processing_time (f->emu, 600000);
  f->config.poll_interval = 60 * GST_SECOND;
  f->config.poll_max_interval = 60 * GST_SECOND;
  fixture_start (f);
  rd_client_submit (f->client, batch);
  deadline = g_get_monotonic_time () + WAIT_S * G_TIME_SPAN_SECOND;
  g_mutex_lock (&f->rec.lock);
  while (g_hash_table_lookup (f->rec.outcomes, GUINT_TO_POINTER (41)) == NULL
      || ((Outcome *) g_hash_table_lookup (f->rec.outcomes,
              GUINT_TO_POINTER (41)))->submitted == 0)
    g_assert_true (g_cond_wait_until (&f->rec.cond, &f->rec.lock, deadline));
  g_mutex_unlock (&f->rec.lock);

  /* the next poll is 60 s away: a stop that waited for it would take that
   * long; the bound is generous for a loaded machine */
  start = g_get_monotonic_time ();
  rd_client_stop (f->client);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 20 * G_TIME_SPAN_SECOND);
  outcome = recorder_get (&f->rec, 41);
  g_assert_true (outcome->cancelled);
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_SUBMITTED);
  g_assert_cmpstr (manifest->uuid, ==, outcome->uuid);
}

/* The whole body went out and no answer came: the API may have the batch,
 * so it must not look "closed" (a next run would send it again). */
static void
test_stop_after_the_whole_upload_records_an_unknown_outcome (Fixture * f,
    gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 46);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (RdBatch) manifest = NULL;
  Outcome *outcome;
  gint64 deadline;

  rd_emulator_set_slow_delay (f->emu, 10000);
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_SLOW, 1, POST_ROUTE);
  fixture_start (f);
  rd_client_submit (f->client, batch);
  deadline = g_get_monotonic_time () + WAIT_S * G_TIME_SPAN_SECOND;
  g_mutex_lock (&f->rec.lock);
  for (;;) {
    outcome = g_hash_table_lookup (f->rec.outcomes, GUINT_TO_POINTER (46));
    if (outcome && outcome->last_total > 0
        && outcome->last_sent == outcome->last_total)
      break;
    g_assert_true (g_cond_wait_until (&f->rec.cond, &f->rec.lock, deadline));
  }
  g_mutex_unlock (&f->rec.lock);

  rd_client_stop (f->client);
  outcome = recorder_get (&f->rec, 46);
  g_assert_true (outcome->cancelled);
  g_assert_nonnull (strstr (outcome->reason, "outcome unknown"));
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_ERROR);
  g_assert_true (file_exists_in (dir, "seg-a.wav"));
}

static void
test_stop_cancels_queued_batches_and_later_submits (Fixture * f,
    gconstpointer data)
{
  guint i;

  rd_emulator_set_processing_time (f->emu, 60000);
  f->config.max_in_flight = 1;
  fixture_start (f);
  for (i = 42; i < 45; i++)
    rd_client_submit (f->client, make_small_batch (f, i));
  rd_client_stop (f->client);
  g_assert_cmpuint (f->rec.finished, ==, 3);
  for (i = 42; i < 45; i++) {
    g_assert_true (recorder_get (&f->rec, i)->cancelled);
    /* Still counted while its error is posted. */
    g_assert_cmpuint (recorder_get (&f->rec, i)->pending_at_finish, >=, 1);
  }
  /* After stop, a batch ends at once, still exactly once. */
  rd_client_submit (f->client, make_small_batch (f, 45));
  g_assert_cmpuint (f->rec.finished, ==, 4);
  g_assert_true (recorder_get (&f->rec, 45)->cancelled);
  g_assert_cmpuint (recorder_get (&f->rec, 45)->pending_at_finish, ==, 1);
  g_assert_cmpuint (rd_client_get_pending (f->client), ==, 0);
}

/* ---- the token ---- */

static void
assert_tree_lacks (const gchar * path, const gchar * needle)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir))) {
    g_autofree gchar *child = g_build_filename (path, name, NULL);
    g_autofree gchar *contents = NULL;

    if (g_file_test (child, G_FILE_TEST_IS_DIR)) {
      assert_tree_lacks (child, needle);
      continue;
    }
    g_assert_true (g_file_get_contents (child, &contents, NULL, NULL));
    g_assert_null (strstr (contents, needle));
  }
  g_dir_close (dir);
}

static void
test_token_appears_in_no_manifest_and_no_reason (Fixture * f,
    gconstpointer data)
{
  GHashTableIter iter;
  gpointer value;
  RdBatch *unsettled;

  f->config.keep_files = TRUE;
  fixture_start (f);
  rd_client_submit (f->client, make_small_batch (f, 50));
  recorder_wait_finished (&f->rec, 1);
  rd_emulator_set_wallet (f->emu, 0, 10);
  rd_client_submit (f->client, make_small_batch (f, 51));
  recorder_wait_finished (&f->rec, 2);
  rd_emulator_set_wallet (f->emu, -1, 0);
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_DROP_AFTER_BODY, 1,
      POST_ROUTE);
  /* an unknown outcome that stays one (zero retention: not settled) */
  unsettled = make_small_batch (f, 52);
  unsettled->settings.zero_retention_mode = 1;
  rd_client_submit (f->client, unsettled);
  recorder_wait_finished (&f->rec, 3);
  g_assert_true (recorder_get (&f->rec, 50)->done);
  g_assert_false (recorder_get (&f->rec, 51)->done);
  g_assert_false (recorder_get (&f->rec, 52)->done);

  assert_tree_lacks (f->spool, TOKEN);
  g_hash_table_iter_init (&iter, f->rec.outcomes);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    Outcome *outcome = value;
    g_autofree gchar *details = outcome->details ?
        gst_structure_to_string (outcome->details) : NULL;

    if (outcome->reason)
      g_assert_null (strstr (outcome->reason, TOKEN));
    if (details)
      g_assert_null (strstr (details, TOKEN));
  }
}

/* ---- the order of a batch's last callbacks ---- */

static void
test_done_comes_before_the_pending_count_drops (Fixture * f, gconstpointer data)
{
  Outcome *outcome;

  fixture_start (f);
  rd_client_submit (f->client, make_small_batch (f, 60));
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 60);
  g_assert_true (outcome->done);
  /* The element holds EOS while the count is above 0: the batch must
   * still be counted while its terminal message is posted. */
  g_assert_cmpuint (outcome->pending_at_finish, ==, 1);
  g_assert_cmpuint (f->rec.idle_calls, ==, 1);
  g_assert_cmpuint (f->rec.idle_seq, >, outcome->finish_seq);
  g_assert_cmpuint (f->rec.pending_at_idle, ==, 0);
}

static void
test_validation_error_comes_before_the_pending_count_drops (Fixture * f,
    gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 61);
  Outcome *outcome;

  batch->settings.frame_length = 9;
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 61);
  g_assert_false (outcome->done);
  g_assert_cmpuint (outcome->pending_at_finish, ==, 1);
  g_assert_cmpuint (f->rec.idle_seq, >, outcome->finish_seq);
  g_assert_cmpuint (f->rec.pending_at_idle, ==, 0);
}

/* The element turns unauthorized into an element error, which stops the
 * pipeline: every batch's error must be posted before it. */
static void
test_401_fails_the_batches_before_reporting_unauthorized (Fixture * f,
    gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  guint i;

  f->config.token = "a-wrong-token";
  f->config.max_in_flight = 1;
  f->client = rd_client_new (&f->config, &recorder_callbacks, &f->rec);
  f->rec.client = f->client;
  /* Queued before the thread runs: one POST gets the 401 while the
   * other two wait for a slot. */
  for (i = 62; i <= 64; i++)
    rd_client_submit (f->client, make_small_batch (f, i));
  g_assert_true (rd_client_start (f->client, &error));
  g_assert_no_error (error);
  recorder_wait_finished (&f->rec, 3);

  g_assert_cmpuint (f->rec.unauthorized_calls, ==, 1);
  for (i = 62; i <= 64; i++) {
    Outcome *outcome = recorder_get (&f->rec, i);

    g_assert_cmpuint (outcome->http_status, ==, 401);
    g_assert_cmpuint (outcome->finish_seq, <, f->rec.unauthorized_seq);
    g_assert_cmpuint (outcome->pending_at_finish, >=, 1);
  }
  /* EOS, which idle releases, must not overtake the element error. */
  g_assert_cmpuint (f->rec.idle_calls, ==, 1);
  g_assert_cmpuint (f->rec.idle_seq, >, f->rec.unauthorized_seq);
}

/* ---- progress ---- */

static void
test_progress_starts_at_zero_and_ends_at_total (Fixture * f, gconstpointer data)
{
  Outcome *outcome;

  fixture_start (f);
  rd_client_submit (f->client, make_small_batch (f, 65));
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 65);
  g_assert_true (outcome->done);
  g_assert_cmpuint (outcome->progress_calls, >=, 2);
  g_assert_cmpuint (outcome->first_sent, ==, 0);
  g_assert_cmpuint (outcome->progress_starts, ==, 1);
  g_assert_cmpuint (outcome->last_total, >, 0);
  g_assert_cmpuint (outcome->last_sent, ==, outcome->last_total);
}

static void
test_progress_starts_at_zero_for_each_attempt (Fixture * f, gconstpointer data)
{
  /* The second batch's first POST gets a 503 and is sent again. */
  run_two_batches_with_post_fault (f, RD_EMULATOR_FAULT_503, 66);
  g_assert_cmpuint (recorder_get (&f->rec, 66)->progress_starts, ==, 1);
  g_assert_cmpuint (recorder_get (&f->rec, 67)->progress_starts, ==, 2);
  assert_upload_attempts (recorder_get (&f->rec, 67), NULL);
  g_assert_cmpuint (recorder_get (&f->rec, 67)->last_sent, ==,
      recorder_get (&f->rec, 67)->last_total);
}

static void
test_progress_a_failed_attempt_ends_before_its_retry (Fixture * f,
    gconstpointer data)
{
  static const gchar *const names[] = { "seg-a.wav", "big.wav", NULL };
  static const guint64 sizes[] = { 4000, 8 * 1024 * 1024 };
  g_autoptr (JsonNode) stats = NULL;

  /* The second POST (the big batch's first) loses its connection while
   * its body is going out; the retry starts from 0 again. */
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_DROP_MID_BODY, 2,
      POST_ROUTE);
  f->config.max_in_flight = 1;
  f->config.fetch_results = FALSE;
  fixture_start (f);
  rd_client_submit (f->client, make_small_batch (f, 69));
  rd_client_submit (f->client, make_batch (f, 70, names, sizes));
  recorder_wait_finished (&f->rec, 2);
  g_assert_true (recorder_get (&f->rec, 70)->done);
  assert_upload_attempts (recorder_get (&f->rec, 69), "ST");
  assert_upload_attempts (recorder_get (&f->rec, 70), "SFST");
  stats = emulator_stats (f);
  g_assert_cmpint (stats_count (stats, POST_ROUTE, "dropped"), ==, 1);
}

/* ---- polls that keep failing ---- */

static void
test_poll_failures_keep_the_batch_submitted (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 68);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (RdBatch) manifest = NULL;
  g_autoptr (JsonNode) stats = NULL;
  Outcome *outcome;

  rd_emulator_set_processing_time (f->emu, 60000);
  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_503, 1,
      "GET /api/v2/detect/batch/");
  f->config.max_retries = 1;
  fixture_start (f);
  /* draining (the element got EOS): a batch that gives up ends rather
   * than waiting for the API (see outage/) */
  rd_client_drain (f->client);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);

  /* The element still hears the batch's end ... */
  outcome = recorder_get (&f->rec, 68);
  g_assert_false (outcome->done);
  g_assert_false (outcome->cancelled);
  g_assert_cmpuint (outcome->http_status, ==, 503);
  g_assert_nonnull (strstr (outcome->reason, "gave up after 1 retries"));
  stats = emulator_stats (f);
  g_assert_cmpint (stats_count (stats, POLL_ROUTE, "503"), ==, 2);
  /* ... but the API has the batch: a next run polls it again. */
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_SUBMITTED);
  g_assert_nonnull (outcome->uuid);
  g_assert_cmpstr (manifest->uuid, ==, outcome->uuid);
  g_assert_true (file_exists_in (dir, "seg-a.wav"));
}

/* An outage: the POST is refused until the retries run out. The batch was
 * provably not accepted, so it stays closed for the next start. */
static void
test_post_failures_keep_the_batch_closed (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 69);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (RdBatch) manifest = NULL;
  g_autoptr (JsonNode) stats = NULL;
  Outcome *outcome;

  rd_emulator_set_fault (f->emu, RD_EMULATOR_FAULT_503, 1,
      "POST /api/v2/detect/batch");
  f->config.max_retries = 1;
  fixture_start (f);
  /* draining (EOS): it ends rather than waiting for the API */
  rd_client_drain (f->client);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);

  outcome = recorder_get (&f->rec, 69);
  g_assert_false (outcome->done);
  g_assert_cmpuint (outcome->http_status, ==, 503);
  stats = emulator_stats (f);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (stats),
          "batches_created"), ==, 0);
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_CLOSED);
  g_assert_null (manifest->uuid);
  g_assert_true (file_exists_in (dir, "seg-a.wav"));
}

/* ---- a stand-in API for answers the emulator does not give ---- */

/* Echoes the request's Authorization header in its error answers, as some
 * APIs and proxies do, and may give fewer detect uuids than files. Runs on
 * its own thread and context, like the emulator. */
typedef struct
{
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  SoupServer *server;
  gchar *base_url;
  GMutex lock;
  GCond cond;
  gboolean ready;
  gint refuse_post;             /* atomic: 400 instead of 202 */
  gint pad_echo;                /* atomic: the echo comes after 976 chars */
  guint n_detect_uuids;         /* set before start */
} FakeApi;

static void
fake_api_answer (SoupServerMessage * msg, guint status, gchar * body)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json",
      SOUP_MEMORY_TAKE, body, strlen (body));
}

static gchar *
fake_api_batch (FakeApi * api)
{
  g_autoptr (GString) uuids = g_string_new (NULL);
  guint i;

  for (i = 0; i < api->n_detect_uuids; i++)
    g_string_append_printf (uuids, "%s\"fake-detect-%u\"", i ? "," : "", i);
  return g_strdup_printf ("{\"success\":true,\"item\":{\"uuid\":"
      "\"fake-batch-1\",\"status\":\"completed\",\"total_files\":3,"
      "\"completed_count\":3,\"failed_count\":0,\"detect_uuids\":[%s]}}",
      uuids->str);
}

static void
fake_api_handle (SoupServer * server, SoupServerMessage * msg,
    const char *path, GHashTable * query, gpointer user_data)
{
  FakeApi *api = user_data;
  const gchar *method = soup_server_message_get_method (msg);
  const gchar *auth =
      soup_message_headers_get_one (soup_server_message_get_request_headers
      (msg), "Authorization");
  g_autofree gchar *echo = g_strdup (auth ? auth : "");
  gboolean is_post = g_str_equal (method, "POST");

  if (is_post && g_atomic_int_get (&api->pad_echo)) {
    /* the API's message is cut at 1000 characters: here inside the token */
    g_autofree gchar *padding = g_strnfill (976, 'x');

    fake_api_answer (msg, SOUP_STATUS_BAD_REQUEST,
        g_strdup_printf ("{\"success\":false,\"message\":\"%s %s\"}",
            padding, echo));
  } else if ((is_post && g_atomic_int_get (&api->refuse_post))
      || g_str_has_prefix (path, "/api/v2/detect/fake-detect-")) {
    /* The token in the message, in a field error and in nested details. */
    fake_api_answer (msg, SOUP_STATUS_BAD_REQUEST,
        g_strdup_printf ("{\"success\":false,\"message\":\"request with "
            "Authorization: %s refused\",\"errors\":{\"files\":[\"not for "
            "%s\"]},\"details\":{\"seen\":\"%s\",\"per_file_estimates\":"
            "[{\"file\":\"%s\",\"cost_cents\":1}]}}", echo, echo, echo, echo));
  } else if (is_post && g_str_equal (path, "/api/v2/detect/batch")) {
    fake_api_answer (msg, SOUP_STATUS_ACCEPTED, fake_api_batch (api));
  } else if (g_str_has_prefix (path, "/api/v2/detect/batch/")) {
    fake_api_answer (msg, SOUP_STATUS_OK, fake_api_batch (api));
  } else {
    fake_api_answer (msg, SOUP_STATUS_NOT_FOUND,
        g_strdup ("{\"success\":false,\"message\":\"not found\"}"));
  }
}

static gpointer
fake_api_thread (gpointer user_data)
{
  FakeApi *api = user_data;
  g_autoptr (GError) error = NULL;
  GSList *uris;

  g_main_context_push_thread_default (api->context);
  api->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (api->server, NULL, fake_api_handle, api, NULL);
  g_assert_true (soup_server_listen_local (api->server, 0,
          SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (api->server);
  g_mutex_lock (&api->lock);
  api->base_url = g_strdup_printf ("http://127.0.0.1:%d/api/v2",
      g_uri_get_port (uris->data));
  api->ready = TRUE;
  g_cond_broadcast (&api->cond);
  g_mutex_unlock (&api->lock);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  g_main_loop_run (api->loop);
  soup_server_disconnect (api->server);
  g_clear_object (&api->server);
  while (g_main_context_iteration (api->context, FALSE));
  g_main_context_pop_thread_default (api->context);
  return NULL;
}

static FakeApi *
fake_api_start (guint n_detect_uuids)
{
  FakeApi *api = g_new0 (FakeApi, 1);

  g_mutex_init (&api->lock);
  g_cond_init (&api->cond);
  api->n_detect_uuids = n_detect_uuids;
  api->context = g_main_context_new ();
  api->loop = g_main_loop_new (api->context, FALSE);
  api->thread = g_thread_new ("fake-api", fake_api_thread, api);
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
fake_api_free (FakeApi * api)
{
  g_main_context_invoke (api->context, quit_loop, api->loop);
  g_thread_join (api->thread);
  g_main_loop_unref (api->loop);
  g_main_context_unref (api->context);
  g_free (api->base_url);
  g_mutex_clear (&api->lock);
  g_cond_clear (&api->cond);
  g_free (api);
}

/* What the client logged, at every level. */
typedef struct
{
  GMutex lock;
  GString *text;
} LogCapture;

static void
capture_log (GstDebugCategory * category, GstDebugLevel level,
    const gchar * file, const gchar * function, gint line, GObject * object,
    GstDebugMessage * message, gpointer user_data)
{
  LogCapture *capture = user_data;

  if (g_strcmp0 (gst_debug_category_get_name (category), "resembledetect"))
    return;
  g_mutex_lock (&capture->lock);
  g_string_append_printf (capture->text, "%s\n",
      gst_debug_message_get (message));
  g_mutex_unlock (&capture->lock);
}

static void
log_capture_start (LogCapture * capture)
{
  g_mutex_init (&capture->lock);
  capture->text = g_string_new (NULL);
  gst_debug_set_active (TRUE);
  gst_debug_remove_log_function (gst_debug_log_default);
  gst_debug_add_log_function (capture_log, capture, NULL);
  gst_debug_set_threshold_for_name ("resembledetect", GST_LEVEL_MEMDUMP);
}

static gchar *
log_capture_stop (LogCapture * capture)
{
  gst_debug_unset_threshold_for_name ("resembledetect");
  gst_debug_remove_log_function_by_data (capture);
  gst_debug_add_log_function (gst_debug_log_default, NULL, NULL);
  g_mutex_clear (&capture->lock);
  return g_string_free (capture->text, FALSE);
}

static void
assert_structure_lacks (const GstStructure * s, const gchar * needle)
{
  g_autofree gchar *text = gst_structure_to_string (s);

  g_assert_null (strstr (text, needle));
}

static void
test_token_echoed_by_the_api_is_redacted (Fixture * f, gconstpointer data)
{
  FakeApi *api = fake_api_start (3);
  RdBatch *refused = make_small_batch (f, 70);
  g_autofree gchar *refused_dir = g_strdup (refused->dir);
  g_autoptr (RdBatch) manifest = NULL;
  g_autofree gchar *log = NULL;
  LogCapture capture;
  Outcome *outcome;
  guint i;

  f->config.api_url = api->base_url;
  f->config.max_retries = 0;
  f->config.keep_files = TRUE;
  log_capture_start (&capture);
  fixture_start (f);

  /* An error answer to the POST. */
  g_atomic_int_set (&api->refuse_post, TRUE);
  rd_client_submit (f->client, refused);
  recorder_wait_finished (&f->rec, 1);
  /* Error answers to every verdict of an accepted batch. */
  g_atomic_int_set (&api->refuse_post, FALSE);
  rd_client_submit (f->client, make_small_batch (f, 71));
  recorder_wait_finished (&f->rec, 2);
  rd_client_free (g_steal_pointer (&f->client));
  log = log_capture_stop (&capture);
  fake_api_free (api);

  outcome = recorder_get (&f->rec, 70);
  g_assert_cmpuint (outcome->http_status, ==, 400);
  /* The echo reached the client, without the token. */
  g_assert_nonnull (strstr (outcome->reason, "Bearer [redacted]"));
  g_assert_null (strstr (outcome->reason, TOKEN));
  g_assert_nonnull (outcome->details);
  assert_structure_lacks (outcome->details, TOKEN);
  g_assert_cmpstr (gst_structure_get_string (outcome->details, "seen"), ==,
      "Bearer [redacted]");
  manifest = read_manifest (refused_dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_ERROR);
  g_assert_nonnull (strstr (manifest->error_reason, "[redacted]"));

  outcome = recorder_get (&f->rec, 71);
  g_assert_true (outcome->done);
  g_assert_cmpuint (outcome->results->len, ==, 3);
  for (i = 0; i < 3; i++) {
    const GstStructure *result = g_ptr_array_index (outcome->results, i);

    g_assert_cmpstr (gst_structure_get_string (result, "status"), ==,
        "unknown");
    g_assert_nonnull (strstr (gst_structure_get_string (result,
                "error-message"), "[redacted]"));
    assert_structure_lacks (result, TOKEN);
    assert_structure_lacks (g_ptr_array_index (outcome->reported, i), TOKEN);
  }

  assert_tree_lacks (f->spool, TOKEN);
  g_assert_nonnull (strstr (log, "[redacted]"));
  g_assert_null (strstr (log, TOKEN));
}

/* A long message is cut before it reaches the element: a cut inside the
 * token must not leave a piece of it behind. */
static void
test_token_cut_by_a_long_message_is_redacted (Fixture * f, gconstpointer data)
{
  FakeApi *api = fake_api_start (3);
  Outcome *outcome;

  f->config.api_url = api->base_url;
  f->config.max_retries = 0;
  fixture_start (f);
  g_atomic_int_set (&api->pad_echo, TRUE);
  rd_client_submit (f->client, make_small_batch (f, 73));
  recorder_wait_finished (&f->rec, 1);
  rd_client_free (g_steal_pointer (&f->client));
  fake_api_free (api);

  outcome = recorder_get (&f->rec, 73);
  g_assert_cmpuint (outcome->http_status, ==, 400);
  /* the cut at 1000 characters falls on the token's last character: all
   * but that one would be left */
  g_assert_nonnull (strstr (outcome->reason, "xxx Bearer "));
  g_assert_null (strstr (outcome->reason, "tok-Sek"));
}

/* ---- deleting files ---- */

static void
test_files_without_a_detect_uuid_are_kept (Fixture * f, gconstpointer data)
{
  FakeApi *api = fake_api_start (2);
  RdBatch *batch = make_small_batch (f, 72);
  g_autofree gchar *dir = g_strdup (batch->dir);
  g_autoptr (RdBatch) manifest = NULL;
  Outcome *outcome;

  /* Three files sent, two detect uuids back: the third's fate is unknown. */
  f->config.api_url = api->base_url;
  f->config.max_retries = 0;
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  rd_client_free (g_steal_pointer (&f->client));
  fake_api_free (api);

  outcome = recorder_get (&f->rec, 72);
  g_assert_true (outcome->done);
  g_assert_cmpuint (outcome->results->len, ==, 3);
  g_assert_null (gst_structure_get_string (g_ptr_array_index
          (outcome->results, 2), "detect-uuid"));
  g_assert_cmpstr (gst_structure_get_string (g_ptr_array_index
          (outcome->results, 2), "status"), ==, "unknown");
  g_assert_false (file_exists_in (dir, "seg-a.wav"));
  g_assert_false (file_exists_in (dir, "seg-b.mp3"));
  g_assert_true (file_exists_in (dir, "snap-c.jpg"));
  manifest = read_manifest (dir);
  g_assert_cmpint (manifest->state, ==, RD_BATCH_STATE_DONE);
}

/* ---- reading Retry-After ---- */

/* ---- the callback receiver ---- */

static void
recorder_wait_submitted (Recorder * rec, guint count)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_S * G_TIME_SPAN_SECOND;

  g_mutex_lock (&rec->lock);
  while (rec->submitted < count)
    if (!g_cond_wait_until (&rec->cond, &rec->lock, deadline))
      g_error ("timed out waiting for %u submitted batches", count);
  g_mutex_unlock (&rec->lock);
}

/* The callback URL the client sent with batch @index (its manifest). */
static gchar *
batch_callback_url (Fixture * f, guint index)
{
  g_autofree gchar *name = rd_batch_dir_name (index);
  g_autofree gchar *dir = g_build_filename (f->spool, name, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (RdBatch) batch = rd_manifest_read (dir, &error);

  g_assert_no_error (error);
  g_assert_nonnull (batch->settings.callback_url);
  return g_strdup (batch->settings.callback_url);
}

/* POSTs @body to @url from the test thread; the HTTP status. */
static guint
post_to (const gchar * url, const gchar * method, const gchar * body,
    gssize length, gboolean chunked)
{
  g_autoptr (SoupSession) session = soup_session_new ();
  g_autoptr (SoupMessage) msg = soup_message_new (method, url);
  g_autoptr (GBytes) answer = NULL;
  g_autoptr (GError) error = NULL;

  if (body) {
    g_autoptr (GBytes) bytes = g_bytes_new (body, length < 0 ? strlen (body) :
        (gsize) length);

    if (chunked) {
      g_autoptr (GInputStream) stream =
          g_memory_input_stream_new_from_bytes (bytes);

      soup_message_set_request_body (msg, "application/json", stream, -1);
    } else {
      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  }
  answer = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_no_error (error);
  return soup_message_get_status (msg);
}

static void
use_callbacks (Fixture * f, const gchar * public_url)
{
  f->config.callback_listen = "127.0.0.1:0";
  f->config.callback_public_url = public_url;
  /* polling alone would take this long: the callback must end it */
  f->config.poll_max_interval = 20 * GST_SECOND;
}

static void
test_callback_ends_a_batch_with_one_get (Fixture * f, gconstpointer data)
{
  g_autoptr (JsonNode) stats = NULL;
  g_autofree gchar *url = NULL;
  Outcome *outcome;

  use_callbacks (f, NULL);
  rd_emulator_set_processing_time (f->emu, 200);
  fixture_start (f);
  rd_client_submit (f->client, make_small_batch (f, 61));
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 61);
  g_assert_true (outcome->done);
  g_assert_cmpstr (outcome->status, ==, "completed");
  g_assert_cmpuint (outcome->results->len, ==, 3);
  /* well before the first poll at poll-max-interval */
  g_assert_cmpint (outcome->finished_us - outcome->submitted_us, <,
      10 * G_TIME_SPAN_SECOND);
  url = batch_callback_url (f, 61);
  g_assert_true (g_str_has_prefix (url, "http://127.0.0.1:"));
  stats = emulator_stats (f);
  g_assert_cmpint (stats_route_total (stats, POLL_ROUTE), ==, 1);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (stats),
          "callbacks_sent"), ==, 1);
  g_assert_cmpuint (f->client->receiver.accepted, ==, 1);
}

static void
test_forged_callbacks_change_nothing (Fixture * f, gconstpointer data)
{
  g_autoptr (JsonNode) stats = NULL;
  g_autofree gchar *url = NULL;
  g_autofree gchar *base = NULL;
  g_autofree gchar *guess = NULL;
  g_autofree gchar *forged = NULL;
  g_autofree gchar *other = NULL;
  g_autofree gchar *big = NULL;
  Outcome *outcome;
  gint64 forged_us;

  use_callbacks (f, NULL);
  /* 3 files at 1 s: terminal about 3 s after the 202 */
  rd_emulator_set_processing_time (f->emu, 1000);
  fixture_start (f);
  rd_client_submit (f->client, make_small_batch (f, 62));
  recorder_wait_submitted (&f->rec, 1);
  outcome = recorder_get (&f->rec, 62);
  url = batch_callback_url (f, 62);
  base = g_strndup (url, strrchr (url, '/') - url);

  /* a guessed path, another method, no length, too big: refused before
   * any body is read */
  guess = g_strconcat (base, "/0123456789abcdef0123456789abcdef", NULL);
  g_assert_cmpuint (post_to (guess, "POST", "{}", -1, FALSE), ==, 404);
  g_assert_cmpuint (post_to (url, "GET", NULL, 0, FALSE), ==, 405);
  g_assert_cmpuint (post_to (url, "POST", "{}", -1, TRUE), ==, 411);
  big = g_strnfill (2 * 1024 * 1024, ' ');
  g_assert_cmpuint (post_to (url, "POST", big, -1, FALSE), ==, 413);
  /* not this batch's JSON */
  g_assert_cmpuint (post_to (url, "POST", "{\"success\": tr", -1, FALSE), ==,
      400);
  other = g_strdup_printf ("{\"success\": true, \"item\": {\"uuid\": "
      "\"00000000-0000-0000-0000-000000000000\", \"status\": \"completed\", "
      "\"total_count\": 3, \"completed_count\": 3, \"failed_count\": 0}}");
  g_assert_cmpuint (post_to (url, "POST", other, -1, FALSE), ==, 400);
  g_assert_cmpuint (f->client->receiver.accepted, ==, 0);

  /* the right path and uuid, claiming it is done: only a hint, which the
   * batch's own GET (still processing) outweighs */
  forged = g_strdup_printf ("{\"success\": true, \"item\": {\"uuid\": \"%s\", "
      "\"status\": \"completed\", \"total_count\": 3, \"completed_count\": 3, "
      "\"failed_count\": 0}}", outcome->uuid);
  forged_us = g_get_monotonic_time ();
  g_assert_cmpuint (post_to (url, "POST", forged, -1, FALSE), ==, 200);

  recorder_wait_finished (&f->rec, 1);
  g_assert_true (outcome->done);
  g_assert_cmpstr (outcome->status, ==, "completed");
  g_assert_cmpuint (outcome->results->len, ==, 3);
  /* ended by the emulator's own callback, once its 3 s were over */
  g_assert_cmpint (outcome->finished_us - forged_us, >=,
      2 * G_TIME_SPAN_SECOND);
  stats = emulator_stats (f);
  /* one GET for the forged hint, one for the real callback */
  g_assert_cmpint (stats_route_total (stats, POLL_ROUTE), ==, 2);
  g_assert_cmpuint (f->client->receiver.accepted, ==, 2);
  g_assert_cmpuint (f->client->receiver.refused, ==, 5);
}

static void
test_callback_that_never_comes_ends_by_polling (Fixture * f, gconstpointer data)
{
  g_autoptr (JsonNode) stats = NULL;
  Outcome *outcome;

  /* the API is told to call a port where nothing listens */
  use_callbacks (f, "http://127.0.0.1:9/rd");
  f->config.poll_max_interval = 300 * GST_MSECOND;
  rd_emulator_set_processing_time (f->emu, 200);
  fixture_start (f);
  rd_client_submit (f->client, make_small_batch (f, 63));
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 63);
  g_assert_true (outcome->done);
  g_assert_cmpstr (outcome->status, ==, "completed");
  stats = emulator_stats (f);
  g_assert_cmpint (stats_route_total (stats, POLL_ROUTE), >=, 2);
  g_assert_cmpuint (f->client->receiver.accepted, ==, 0);
}

static void
test_callback_listen_that_cannot_bind_fails_start (Fixture * f,
    gconstpointer data)
{
  g_autoptr (GUri) uri = g_uri_parse (f->config.api_url, G_URI_FLAGS_NONE,
      NULL);
  /* the emulator's own address is taken */
  g_autofree gchar *taken = g_strdup_printf ("127.0.0.1:%d",
      g_uri_get_port (uri));
  g_autoptr (GError) error = NULL;

  use_callbacks (f, NULL);
  f->config.callback_listen = taken;
  f->client = rd_client_new (&f->config, &recorder_callbacks, &f->rec);
  g_assert_false (rd_client_start (f->client, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "callback-listen 127.0.0.1:"));
  f->config.callback_listen = NULL;
}

static void
test_results_carry_their_latency (Fixture * f, gconstpointer data)
{
  RdBatch *batch = make_small_batch (f, 64);
  gint64 before = g_get_monotonic_time ();
  Outcome *outcome;

  for (guint i = 0; i < batch->files->len; i++)
    ((RdBatchFile *) batch->files->pdata[i])->closed_us = before;
  /* an earlier run's file: no latency */
  ((RdBatchFile *) batch->files->pdata[2])->closed_us = 0;
  fixture_start (f);
  rd_client_submit (f->client, batch);
  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 64);
  g_assert_true (outcome->done);
  g_assert_cmpuint (outcome->reported->len, ==, 3);
  for (guint i = 0; i < 3; i++) {
    const GstStructure *r = outcome->reported->pdata[i];
    guint64 latency = 0;

    if (i == 2) {
      g_assert_false (gst_structure_has_field (r, "latency"));
      continue;
    }
    g_assert_true (gst_structure_get_uint64 (r, "latency", &latency));
    g_assert_cmpuint (latency, >, 0);
    g_assert_cmpuint (latency, <=, (guint64) (g_get_monotonic_time () -
            before) * GST_USECOND);
  }
}

/* ---- clients sharing a hub ---- */

/* Two clients on one network thread: stopping one cancels its batch only,
 * the other's ends as usual, and the thread outlives the first. */
static void
test_clients_on_one_hub_stop_apart (Fixture * f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  RdClientHub *hub = rd_client_hub_new (USER_AGENT, &error);
  Recorder other = { 0, };
  RdClient *first;
  Outcome *outcome;

  g_assert_no_error (error);
  recorder_init (&other);
  rd_emulator_set_processing_time (f->emu, 300);
  f->config.hub = hub;
  first = rd_client_new (&f->config, &recorder_callbacks, &other);
  other.client = first;
  g_assert_true (rd_client_start (first, &error));
  fixture_start (f);
  g_assert_true (f->client->hub == first->hub);

  rd_client_submit (first, make_small_batch (f, 71));
  rd_client_submit (f->client, make_small_batch (f, 72));
  recorder_wait_submitted (&other, 1);
  rd_client_stop (first);
  outcome = recorder_get (&other, 71);
  g_assert_true (outcome->finished);
  g_assert_true (outcome->cancelled);

  recorder_wait_finished (&f->rec, 1);
  outcome = recorder_get (&f->rec, 72);
  g_assert_true (outcome->done);
  g_assert_cmpstr (outcome->status, ==, "completed");
  rd_client_free (first);
  recorder_clear (&other);
  /* the fixture's client holds the hub until teardown */
  rd_client_hub_unref (hub);
  f->config.hub = NULL;
}

static void
test_retry_after_is_read_as_seconds (void)
{
  g_assert_cmpuint (rd_response_parse_retry_after ("7"), ==, 7 * GST_SECOND);
  g_assert_cmpuint (rd_response_parse_retry_after (" 2 "), ==, 2 * GST_SECOND);
  g_assert_cmpuint (rd_response_parse_retry_after ("0"), ==, 0);
  /* absurd values are kept for the policy to cap */
  g_assert_cmpuint (rd_response_parse_retry_after ("999999"), ==,
      999999 * GST_SECOND);
  g_assert_cmpuint (rd_response_parse_retry_after (NULL), ==,
      GST_CLOCK_TIME_NONE);
  /* neither form: none (the backoff applies) */
  g_assert_cmpuint (rd_response_parse_retry_after ("soon"), ==,
      GST_CLOCK_TIME_NONE);
}

static void
test_retry_after_is_read_as_an_http_date (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr (GDateTime) later = g_date_time_add_seconds (now, 30);
  g_autoptr (GDateTime) earlier = g_date_time_add_seconds (now, -30);
  g_autofree gchar *later_str = soup_date_time_to_string (later,
      SOUP_DATE_HTTP);
  g_autofree gchar *earlier_str = soup_date_time_to_string (earlier,
      SOUP_DATE_HTTP);
  GstClockTime delay;

  delay = rd_response_parse_retry_after (later_str);
  g_assert_cmpuint (delay, >=, 28 * GST_SECOND);
  g_assert_cmpuint (delay, <=, 30 * GST_SECOND);
  g_assert_cmpuint (rd_response_parse_retry_after (earlier_str), ==, 0);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add ("/client/" path, Fixture, NULL, \
    fixture_setup, func, fixture_teardown)

  g_test_add_func ("/client/retry-after/seconds",
      test_retry_after_is_read_as_seconds);
  g_test_add_func ("/client/retry-after/http-date",
      test_retry_after_is_read_as_an_http_date);

  ADD ("files-mode/end-to-end", test_files_mode_end_to_end);
  ADD ("files-mode/keep-files", test_keep_files_keeps_them_after_done);
  ADD ("files-mode/without-fetch-results",
      test_without_fetch_results_done_has_no_results);
  ADD ("files-mode/failed-files-get-a-result",
      test_failed_files_still_get_a_result);
  ADD ("zip-mode/end-to-end", test_zip_mode_end_to_end);
  ADD ("callback/ends-a-batch-with-one-get",
      test_callback_ends_a_batch_with_one_get);
  ADD ("callback/forged-callbacks-change-nothing",
      test_forged_callbacks_change_nothing);
  ADD ("callback/never-comes-ends-by-polling",
      test_callback_that_never_comes_ends_by_polling);
  ADD ("callback/listen-that-cannot-bind-fails-start",
      test_callback_listen_that_cannot_bind_fails_start);
  ADD ("latency/results-carry-their-latency", test_results_carry_their_latency);
  ADD ("hub/clients-on-one-hub-stop-apart", test_clients_on_one_hub_stop_apart);

  ADD ("refused/51-files-without-a-request",
      test_validation_refuses_51_files_without_a_request);
  ADD ("refused/bad-extension-without-a-request",
      test_validation_refuses_bad_extension_without_a_request);
  ADD ("refused/bad-setting-without-a-request",
      test_bad_setting_is_refused_without_a_request);
  ADD ("refused/missing-token",
      test_missing_token_fails_every_batch_without_a_request);

  ADD ("api-error/401-unauthorized",
      test_401_reports_unauthorized_once_and_fails_every_batch);
  ADD ("api-error/402-per-file-estimates",
      test_402_carries_the_per_file_estimates);
  ADD ("api-error/403-limit-used-requested",
      test_403_carries_limit_used_requested);
  ADD ("api-error/404-while-polling", test_404_while_polling_a_resumed_batch);
  ADD ("api-error/poll-timeout",
      test_poll_timeout_fails_the_batch_and_keeps_its_uuid);
  ADD ("connections/held-uploads-do-not-hold-the-others",
      test_held_uploads_do_not_hold_the_others);
  ADD ("restart/adopts-an-upload-the-api-got",
      test_restart_adopts_an_upload_the_api_got);
  ADD ("restart/sends-an-upload-the-api-never-got",
      test_restart_sends_an_upload_the_api_never_got);
  ADD ("outage/batches-wait-and-resume", test_outage_batches_wait_and_resume);
  ADD ("outage/drain-ends-waiting-batches",
      test_outage_drain_ends_waiting_batches);
  ADD ("budget/bounds-a-post-in-a-long-backoff",
      test_budget_bounds_a_post_in_a_long_backoff);
  ADD ("budget/bounds-polls-in-a-long-backoff",
      test_budget_bounds_polls_in_a_long_backoff);
  ADD ("resume/submitted-batch-is-polled",
      test_resumed_submitted_batch_is_polled_to_done);

  ADD ("fault/503-on-post-retried", test_503_on_post_is_retried);
  ADD ("fault/429-waits-for-retry-after",
      test_429_on_post_waits_for_retry_after);
  ADD ("fault/drop-before-body-retried", test_drop_before_body_is_retried);
  ADD ("settle/zero-retention-is-not-settled",
      test_unknown_outcome_with_zero_retention_is_not_settled);
  ADD ("settle/without-a-list-is-not-settled",
      test_unknown_outcome_without_a_list_is_not_settled);
  ADD ("settle/500-after-the-body-is-sent-again",
      test_500_after_the_body_is_settled_and_sent_again);
  ADD ("settle/drop-after-body-is-adopted",
      test_drop_after_body_is_settled_by_the_list);
  ADD ("fault/500-on-poll-retried", test_500_on_poll_is_retried);
  ADD ("fault/500-on-results-retried", test_500_on_results_is_retried);
  ADD ("fault/unfetchable-results-are-unknown",
      test_results_that_cannot_be_fetched_are_unknown);

  ADD ("queue/max-in-flight-one",
      test_max_in_flight_one_runs_batches_one_at_a_time);
  ADD ("queue/max-in-flight-parallel",
      test_max_in_flight_allows_parallel_batches);

  ADD ("stop/in-the-middle-of-an-upload",
      test_stop_in_the_middle_of_an_upload_is_prompt);
  ADD ("stop/while-polling", test_stop_while_polling_keeps_the_batch_submitted);
  ADD ("stop/after-the-whole-upload",
      test_stop_after_the_whole_upload_records_an_unknown_outcome);
  ADD ("stop/queued-and-later-batches",
      test_stop_cancels_queued_batches_and_later_submits);

  ADD ("token/in-no-manifest-and-no-reason",
      test_token_appears_in_no_manifest_and_no_reason);
  ADD ("token/cut-by-a-long-message-is-redacted",
      test_token_cut_by_a_long_message_is_redacted);
  ADD ("token/echoed-by-the-api-is-redacted",
      test_token_echoed_by_the_api_is_redacted);

  ADD ("order/done-before-the-pending-count-drops",
      test_done_comes_before_the_pending_count_drops);
  ADD ("order/validation-error-before-the-pending-count-drops",
      test_validation_error_comes_before_the_pending_count_drops);
  ADD ("order/401-batches-fail-before-unauthorized",
      test_401_fails_the_batches_before_reporting_unauthorized);

  ADD ("progress/starts-at-zero-and-ends-at-total",
      test_progress_starts_at_zero_and_ends_at_total);
  ADD ("progress/starts-at-zero-for-each-attempt",
      test_progress_starts_at_zero_for_each_attempt);
  ADD ("progress/a-failed-attempt-ends-before-its-retry",
      test_progress_a_failed_attempt_ends_before_its_retry);

  ADD ("fault/poll-failures-keep-the-batch-submitted",
      test_poll_failures_keep_the_batch_submitted);
  ADD ("fault/post-failures-keep-the-batch-closed",
      test_post_failures_keep_the_batch_closed);

  ADD ("files/without-a-detect-uuid-are-kept",
      test_files_without_a_detect_uuid_are_kept);

  return g_test_run ();
}
