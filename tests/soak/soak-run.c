/* The soak run (see soak-run.h). Two elements in one pipeline, each with
 * its own spool: "images" (one JPEG snapshot per batch) and "audio" (two
 * one-second WAV segments per batch). Each request the emulator gets, on
 * any route, draws one number: about fault_percent of them get each fault
 * kind. Nothing here waits on a clock but the bus; the checks read only
 * what the run left behind: the messages, the spool and the emulator's
 * stats. */
#include <string.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "batch.h"
#include "manifest.h"
#include "emulator.h"
#include "rd-test-utils.h"
#include "soak-run.h"

#define ONE_SECOND "1000000000"
/* nothing on the bus for this long is a hang: with batches in flight,
 * something is always posted well before it */
#define BUS_SILENCE_LIMIT (5 * 60 * GST_SECOND)
#define AUDIO_BUFFERS_PER_SECOND 10

static const RdEmulatorFault soak_faults[] = {
  RD_EMULATOR_FAULT_500,
  RD_EMULATOR_FAULT_503,
  RD_EMULATOR_FAULT_429,
  RD_EMULATOR_FAULT_DROP_BEFORE_BODY,
  RD_EMULATOR_FAULT_DROP_AFTER_BODY,
  RD_EMULATOR_FAULT_SLOW,
  RD_EMULATOR_FAULT_MALFORMED_JSON,
};

/* The four kinds of request the client makes, as the stats name them. */
static const struct
{
  const gchar *route;
  const gchar *label;
} soak_routes[] = {
  {"POST /api/v2/detect/batch", "POST /detect/batch"},
  {"GET /api/v2/detect/batch/{uuid}", "GET /detect/batch/{uuid}"},
  {"GET /api/v2/detect/{uuid}", "GET /detect/{uuid}"},
  {"GET /api/v2/detect", "GET /detect (list)"},
};

static const gchar *soak_elements[] = { "images", "audio" };

struct _SoakRun
{
  SoakConfig config;
  gchar *spool;
  GPtrArray *messages;          /* every message the bus carried */
  GArray *arrivals;             /* gint64: when each came, µs from PLAYING */
  GArray *durations;            /* gdouble: s from closed to terminal */
  gchar *slowest;               /* "images batch 12": the longest of them */
  gdouble slowest_seconds;
  gchar *stats;
  gdouble seconds;
  gboolean eos;
  GString *problems;

  /* figures */
  guint closed, done, errors, lost_batches, lost_files;
  guint files_deleted, files_kept, unknown_verdicts;
  GHashTable *error_classes;    /* class -> count */
  GHashTable *created;          /* file name -> uuid of the emulator's batch */
  JsonNode *stats_root;
  GString *error_lines;         /* one line per batch that ended in error */
};

/* ---- configuration ------------------------------------------------------- */

static guint64
env_uint (const gchar * name, guint64 fallback, guint64 max)
{
  const gchar *value = g_getenv (name);
  guint64 n;

  if (value == NULL || *value == '\0')
    return fallback;
  if (!g_ascii_string_to_unsigned (value, 10, 0, max, &n, NULL))
    g_error ("%s must be an integer from 0 to %" G_GUINT64_FORMAT ", got '%s'",
        name, max, value);
  return n;
}

void
soak_config_from_env (SoakConfig * config, const gchar * token,
    const gchar * batches_variable, guint default_batches)
{
  const gchar *percent = g_getenv ("RD_SOAK_FAULT_PERCENT");

  config->token = token;
  config->seed = env_uint ("RD_SOAK_SEED", 1, G_MAXUINT32);
  config->batches = env_uint (batches_variable, default_batches, 100000);
  config->in_flight = env_uint ("RD_SOAK_IN_FLIGHT", 16, 1000);
  config->fault_percent = 10;
  if (percent && *percent) {
    gchar *end = NULL;
    config->fault_percent = g_ascii_strtod (percent, &end);
    if (end == percent || *end != '\0' || config->fault_percent < 0
        || config->fault_percent * G_N_ELEMENTS (soak_faults) > 100)
      g_error ("RD_SOAK_FAULT_PERCENT must be a number from 0 to %.2f "
          "(%u kinds share one draw), got '%s'",
          100.0 / G_N_ELEMENTS (soak_faults), (guint)
          G_N_ELEMENTS (soak_faults), percent);
  }
  config->batches = MAX (config->batches, 5);
  g_print ("soak: RD_SOAK_SEED=%u RD_SOAK_FAULT_PERCENT=%g %s=%u "
      "RD_SOAK_IN_FLIGHT=%u\n", config->seed, config->fault_percent,
      batches_variable, config->batches, config->in_flight);
}

gchar *
soak_make_token (void)
{
  GString *token = g_string_new ("soak-token-");

  for (guint i = 0; i < 4; i++)
    g_string_append_printf (token, "%08x", g_random_int ());
  return g_string_free (token, FALSE);
}

/* ---- what the client logs ------------------------------------------------ */

static gint log_retries, log_unknown, log_adopted, log_resent;
static gboolean log_forward_warnings;

static void
count_client_log (GstDebugCategory * category, GstDebugLevel level,
    const gchar * file, const gchar * function, gint line, GObject * object,
    GstDebugMessage * message, gpointer user_data)
{
  const gchar *text;

  if (level == GST_LEVEL_INFO
      && g_str_equal (gst_debug_category_get_name (category),
          "resembledetect")) {
    text = gst_debug_message_get (message);
    /* the wording of gst/client-job.c and gst/client-settle.c */
    if (strstr (text, ": attempt ") && strstr (text, " failed ("))
      g_atomic_int_inc (&log_retries);
    else if (strstr (text, ": outcome unknown ("))
      g_atomic_int_inc (&log_unknown);
    else if (strstr (text, ": the API created it ("))
      g_atomic_int_inc (&log_adopted);
    else if (strstr (text, " shows none of its files"))
      g_atomic_int_inc (&log_resent);
  }
  if (log_forward_warnings && level <= GST_LEVEL_WARNING)
    gst_debug_log_default (category, level, file, function, line, object,
        message, NULL);
}

void
soak_count_client_log (void)
{
  log_retries = log_unknown = log_adopted = log_resent = 0;
  if (g_getenv ("GST_DEBUG") == NULL) {
    /* the client's INFO lines are counted, not printed: the default
     * handler only gets what it would print without them */
    gst_debug_set_threshold_for_name ("resembledetect", GST_LEVEL_INFO);
    gst_debug_remove_log_function (gst_debug_log_default);
    log_forward_warnings = TRUE;
  }
  gst_debug_add_log_function (count_client_log, NULL, NULL);
}

/* ---- the run ------------------------------------------------------------- */

/* One more thing that went wrong, for the failure message. */
static void
problem (SoakRun * run, const gchar * format, ...)
{
  va_list args;

  va_start (args, format);
  g_string_append (run->problems, "\n  ");
  g_string_append_vprintf (run->problems, format, args);
  va_end (args);
}

static GstElement *
soak_pipeline (SoakRun * run, RdEmulator * emulator)
{
  const SoakConfig *c = &run->config;
  guint audio_batches = MAX (1, c->batches / 5);
  guint image_batches = c->batches - audio_batches;
  g_autofree gchar *common = g_strdup_printf ("api-url=%s max-in-flight=%u "
      "max-retries=10 poll-interval=" ONE_SECOND " poll-max-interval="
      ONE_SECOND, rd_emulator_get_base_url (emulator), c->in_flight);
  /* the token is set below, not here: GStreamer's parser logs the
   * description it parses (docs/resembledetectsink.md) */
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc num-buffers=%u ! "
      "video/x-raw,width=64,height=48,framerate=5/1 ! jpegenc ! "
      "resembledetectsink name=images location=%s/images max-files=1 %s "
      "audiotestsrc num-buffers=%u samplesperbuffer=1600 ! "
      "audio/x-raw,rate=16000,channels=1 ! audioconvert ! "
      "resembledetectsink name=audio location=%s/audio max-files=2 "
      "segment-duration=" ONE_SECOND " %s", image_batches, run->spool,
      common, audio_batches * 2 * AUDIO_BUFFERS_PER_SECOND, run->spool,
      common);
  g_autoptr (GError) error = NULL;
  g_autoptr (GstElement) images = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);

  fail_unless (pipeline != NULL && error == NULL, "%s: %s", desc,
      error ? error->message : "");
  /* images: the property; audio: RESEMBLE_API_TOKEN (soak_make_token) */
  images = gst_bin_get_by_name (GST_BIN (pipeline), "images");
  g_object_set (images, "api-token", c->token, NULL);
  return pipeline;
}

static void
soak_run_add_message (SoakRun * run, GstMessage * msg, gint64 start)
{
  gint64 arrival = g_get_monotonic_time () - start;

  g_ptr_array_add (run->messages, msg);
  g_array_append_val (run->arrivals, arrival);
}

SoakRun *
soak_run (const SoakConfig * config)
{
  SoakRun *run = g_new0 (SoakRun, 1);
  g_autoptr (GError) error = NULL;
  g_autoptr (RdEmulator) emulator = rd_emulator_new ();
  g_autoptr (GstBus) bus = NULL;
  GstElement *pipeline;
  gint64 start;

  run->config = *config;
  run->messages = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_message_unref);
  run->arrivals = g_array_new (FALSE, FALSE, sizeof (gint64));
  run->durations = g_array_new (FALSE, FALSE, sizeof (gdouble));
  run->problems = g_string_new (NULL);
  run->error_classes = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, NULL);
  run->created = g_hash_table_new (g_str_hash, g_str_equal);
  run->error_lines = g_string_new (NULL);
  run->spool = rd_test_make_tmp_dir ("rd-soak-XXXXXX");
  g_print ("soak: spool %s\n", run->spool);

  rd_emulator_set_token (emulator, config->token);
  rd_emulator_set_seed (emulator, config->seed);
  rd_emulator_set_slow_delay (emulator, 200);
  rd_emulator_set_retry_after (emulator, 1);
  for (guint i = 0; i < G_N_ELEMENTS (soak_faults); i++)
    fail_unless (rd_emulator_set_fault_rate (emulator, soak_faults[i],
            config->fault_percent, NULL), "the emulator refused %g%% of %s",
        config->fault_percent, rd_emulator_fault_to_string (soak_faults[i]));
  fail_unless (rd_emulator_start (emulator, "127.0.0.1", 0, &error), "%s",
      error ? error->message : "");

  pipeline = soak_pipeline (run, emulator);
  bus = gst_element_get_bus (pipeline);
  start = g_get_monotonic_time ();
  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
  while (TRUE) {
    GstMessage *msg = gst_bus_timed_pop (bus, BUS_SILENCE_LIMIT);

    if (msg == NULL) {
      problem (run, "nothing on the bus for %" GST_TIME_FORMAT
          " before EOS", GST_TIME_ARGS (BUS_SILENCE_LIMIT));
      break;
    }
    soak_run_add_message (run, msg, start);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
      run->eos = TRUE;
      break;
    }
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      g_autoptr (GError) gerror = NULL;
      g_autofree gchar *debug = NULL;

      gst_message_parse_error (msg, &gerror, &debug);
      problem (run, "element error from %s: %s (%s)",
          GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), gerror->message, debug);
      break;
    }
  }
  run->seconds = (g_get_monotonic_time () - start) / (gdouble) G_USEC_PER_SEC;
  fail_unless (gst_element_set_state (pipeline, GST_STATE_NULL) ==
      GST_STATE_CHANGE_SUCCESS);
  /* what the elements posted while stopping */
  for (GstMessage * msg; (msg = gst_bus_pop (bus));)
    soak_run_add_message (run, msg, start);
  gst_object_unref (pipeline);

  run->stats = rd_emulator_get_stats_json (emulator);
  return run;
}

/* ---- checks -------------------------------------------------------------- */

/* The messages of one element, by batch index. */
typedef struct
{
  GHashTable *closed;           /* index -> count */
  GHashTable *closed_at;        /* index -> gint64* arrival of the first */
  GHashTable *terminal;         /* index -> GPtrArray of GstStructure* */
} ElementMessages;

static guint
structure_uint (const GstStructure * s, const gchar * field)
{
  guint v = G_MAXUINT;

  gst_structure_get_uint (s, field, &v);
  return v;
}

static void
element_messages_collect (ElementMessages * em, SoakRun * run,
    const gchar * element)
{
  em->closed = g_hash_table_new (NULL, NULL);
  em->closed_at = g_hash_table_new (NULL, NULL);
  em->terminal = g_hash_table_new_full (NULL, NULL, NULL,
      (GDestroyNotify) g_ptr_array_unref);
  for (guint i = 0; i < run->messages->len; i++) {
    GstMessage *msg = run->messages->pdata[i];
    const GstStructure *s = gst_message_get_structure (msg);
    gint64 *arrival;
    gpointer index;
    GPtrArray *list;

    if (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT || s == NULL
        || !g_str_equal (GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), element))
      continue;
    index = GUINT_TO_POINTER (structure_uint (s, "index"));
    arrival = &g_array_index (run->arrivals, gint64, i);
    if (gst_structure_has_name (s, "resemble-detect-batch-closed")) {
      if (!g_hash_table_contains (em->closed_at, index))
        g_hash_table_insert (em->closed_at, index, arrival);
      g_hash_table_insert (em->closed, index,
          GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (em->closed,
                      index)) + 1));
    } else if (gst_structure_has_name (s, "resemble-detect-batch-done")
        || gst_structure_has_name (s, "resemble-detect-batch-error")) {
      gint64 *closed_at = g_hash_table_lookup (em->closed_at, index);

      if (closed_at) {
        gdouble seconds = (*arrival - *closed_at) / (gdouble) G_USEC_PER_SEC;
        g_array_append_val (run->durations, seconds);
        if (seconds >= run->slowest_seconds) {
          g_free (run->slowest);
          run->slowest = g_strdup_printf ("%s batch %u", element,
              GPOINTER_TO_UINT (index));
          run->slowest_seconds = seconds;
        }
      }
      list = g_hash_table_lookup (em->terminal, index);
      if (list == NULL) {
        list = g_ptr_array_new ();
        g_hash_table_insert (em->terminal, index, list);
      }
      g_ptr_array_add (list, (gpointer) s);
    }
  }
}

static void
element_messages_clear (ElementMessages * em)
{
  g_clear_pointer (&em->closed, g_hash_table_unref);
  g_clear_pointer (&em->closed_at, g_hash_table_unref);
  g_clear_pointer (&em->terminal, g_hash_table_unref);
}

static gchar *
error_class (const gchar * reason, guint http_status)
{
  if (strstr (reason, "outcome unknown"))
    return g_strdup ("outcome unknown");
  if (strstr (reason, "gave up at the poll-timeout"))
    return g_strdup ("poll-timeout reached while retrying");
  if (strstr (reason, "gave up after"))
    return g_strdup ("retries used up");
  if (strstr (reason, "poll timeout"))
    return g_strdup ("poll timeout");
  return g_strdup_printf ("other, HTTP %u: %.60s", http_status, reason);
}

/* The cases docs/client.md lists with "manifest unchanged": retries or
 * the budget used up, a slot never free, a 401, a batch parked in an
 * outage when the element drained. */
static gboolean
manifest_may_stay (const gchar * reason, guint http_status)
{
  return strstr (reason, "gave up") != NULL
      || strstr (reason, "waited for a slot") != NULL
      || strstr (reason, "kept for a next run") != NULL || http_status == 401;
}

/* Files of @batch: a file may be gone only if its batch is done and the API
 * confirmed it with a detect uuid; every other file is as it was closed. */
static void
check_files (SoakRun * run, const gchar * element, RdBatch * batch)
{
  for (guint i = 0; i < batch->files->len; i++) {
    RdBatchFile *file = batch->files->pdata[i];
    g_autofree gchar *path = rd_batch_file_path (batch, file);
    GStatBuf st;

    if (g_stat (path, &st) != 0) {
      if (batch->state == RD_BATCH_STATE_DONE && file->detect_uuid) {
        run->files_deleted++;
      } else {
        run->lost_files++;
        problem (run, "%s batch %u (%s): %s deleted without a confirmed "
            "verdict", element, batch->index,
            rd_batch_state_to_string (batch->state), path);
      }
      continue;
    }
    run->files_kept++;
    if ((guint64) st.st_size != file->size)
      problem (run, "%s batch %u: %s has %" G_GUINT64_FORMAT " bytes, the "
          "manifest says %" G_GUINT64_FORMAT, element, batch->index, path,
          (guint64) st.st_size, file->size);
  }
}

static void
check_done (SoakRun * run, const gchar * element, RdBatch * batch,
    const GstStructure * done)
{
  const GValue *uuids = gst_structure_get_value (done, "detect-uuids");
  const GValue *results = gst_structure_get_value (done, "results");

  run->done++;
  if (batch->state != RD_BATCH_STATE_DONE) {
    problem (run, "%s batch %u: done on the bus, %s in its manifest",
        element, batch->index, rd_batch_state_to_string (batch->state));
    return;
  }
  if (g_strcmp0 (gst_structure_get_string (done, "uuid"), batch->uuid) != 0)
    problem (run, "%s batch %u: uuid %s on the bus, %s in its manifest",
        element, batch->index, gst_structure_get_string (done, "uuid"),
        batch->uuid);
  if (uuids == NULL || gst_value_array_get_size (uuids) != batch->files->len) {
    problem (run, "%s batch %u: the done message has %u detect uuids for "
        "%u files", element, batch->index,
        uuids ? gst_value_array_get_size (uuids) : 0, batch->files->len);
    return;
  }
  for (guint i = 0; i < batch->files->len; i++) {
    RdBatchFile *file = batch->files->pdata[i];
    const gchar *uuid =
        g_value_get_string (gst_value_array_get_value (uuids, i));

    if (g_strcmp0 (uuid, file->detect_uuid) != 0)
      problem (run, "%s batch %u file %u: detect uuid %s on the bus, %s in "
          "its manifest", element, batch->index, i, uuid, file->detect_uuid);
  }
  for (guint i = 0; results && i < gst_value_array_get_size (results); i++) {
    const GstStructure *result =
        gst_value_get_structure (gst_value_array_get_value (results, i));
    if (g_strcmp0 (gst_structure_get_string (result, "status"), "unknown") == 0)
      run->unknown_verdicts++;
  }
}

static void
check_error (SoakRun * run, const gchar * element, RdBatch * batch,
    const GstStructure * error)
{
  const gchar *reason = gst_structure_get_string (error, "reason");
  guint http_status = structure_uint (error, "http-status");
  gboolean cancelled = FALSE;
  gchar *class;

  run->errors++;
  if (reason == NULL)
    reason = "";
  class = error_class (reason, http_status);
  g_hash_table_insert (run->error_classes, class,
      GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup
              (run->error_classes, class)) + 1));
  g_string_append_printf (run->error_lines, "soak: %s batch %u: HTTP %u, "
      "manifest %s: %s\n", element, batch->index, http_status,
      rd_batch_state_to_string (batch->state), reason);
  gst_structure_get_boolean (error, "cancelled", &cancelled);
  if (cancelled)
    problem (run, "%s batch %u: cancelled, but nothing stopped the client",
        element, batch->index);
  switch (batch->state) {
    case RD_BATCH_STATE_ERROR:
      if (g_strcmp0 (batch->error_reason, reason) != 0
          || batch->error_http_status != http_status)
        problem (run, "%s batch %u: error %u '%s' on the bus, %u '%s' in "
            "its manifest", element, batch->index, http_status, reason,
            batch->error_http_status, batch->error_reason);
      break;
    case RD_BATCH_STATE_CLOSED:
    case RD_BATCH_STATE_SUBMITTED:
      if (!manifest_may_stay (reason, http_status))
        problem (run, "%s batch %u: error '%s' on the bus, but its manifest "
            "stayed %s", element, batch->index, reason,
            rd_batch_state_to_string (batch->state));
      if (batch->state == RD_BATCH_STATE_SUBMITTED && batch->uuid
          && g_strcmp0 (gst_structure_get_string (error, "uuid"),
              batch->uuid) != 0)
        problem (run, "%s batch %u: uuid %s on the bus, %s in its manifest",
            element, batch->index, gst_structure_get_string (error, "uuid"),
            batch->uuid);
      break;
    default:
      problem (run, "%s batch %u: error on the bus, %s in its manifest",
          element, batch->index, rd_batch_state_to_string (batch->state));
      break;
  }
}

/* Each file name is in at most one batch the emulator created: an upload
 * of unknown outcome is settled through the list, never sent twice. Fills
 * run->created. */
static guint
check_created_once (SoakRun * run, JsonObject * stats)
{
  JsonArray *batches = json_object_get_array_member (stats, "batches");
  guint files = 0;

  for (guint i = 0; i < json_array_get_length (batches); i++) {
    JsonObject *batch = json_array_get_object_element (batches, i);
    JsonArray *list = json_object_get_array_member (batch, "files");
    const gchar *uuid = json_object_get_string_member (batch, "uuid");

    for (guint j = 0; j < json_array_get_length (list); j++) {
      const gchar *name = json_object_get_string_member
          (json_array_get_object_element (list, j), "name");

      files++;
      if (g_hash_table_contains (run->created, name))
        problem (run, "the emulator created a second batch (%s, after %s) "
            "with %s", uuid, (const gchar *) g_hash_table_lookup
            (run->created, name), name);
      else
        g_hash_table_insert (run->created, (gpointer) name, (gpointer) uuid);
    }
  }
  return files;
}

/* What the manifest says against what the API created: a batch left
 * closed (a next run sends it) was not created; one the client knows by
 * its uuid was created as that uuid. */
static void
check_against_api (SoakRun * run, const gchar * element, RdBatch * batch)
{
  for (guint i = 0; i < batch->files->len; i++) {
    RdBatchFile *file = batch->files->pdata[i];
    const gchar *created = g_hash_table_lookup (run->created, file->name);

    if (batch->state == RD_BATCH_STATE_CLOSED && created)
      problem (run, "%s batch %u: its manifest says closed (a next run "
          "sends it again) but the API created %s with %s", element,
          batch->index, created, file->name);
    else if ((batch->state == RD_BATCH_STATE_DONE
            || batch->state == RD_BATCH_STATE_SUBMITTED) && created == NULL)
      problem (run, "%s batch %u: %s, but the API never received %s",
          element, batch->index, rd_batch_state_to_string (batch->state),
          file->name);
    else if (batch->uuid && created && !g_str_equal (batch->uuid, created))
      problem (run, "%s batch %u: uuid %s in its manifest, the API created "
          "%s with %s", element, batch->index, batch->uuid, created,
          file->name);
  }
}

/* Every batch directory of @element's spool against its messages. */
static void
check_element (SoakRun * run, const gchar * element)
{
  g_autofree gchar *location = g_build_filename (run->spool, element, NULL);
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  g_autoptr (GDir) dir = g_dir_open (location, 0, NULL);
  ElementMessages em;
  GHashTableIter iter;
  gpointer key, value;
  const gchar *name;

  element_messages_collect (&em, run, element);
  g_hash_table_iter_init (&iter, em.closed);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    GPtrArray *terminal = g_hash_table_lookup (em.terminal, key);
    guint index = GPOINTER_TO_UINT (key);

    run->closed++;
    if (GPOINTER_TO_UINT (value) != 1)
      problem (run, "%s batch %u: closed %u times", element, index,
          GPOINTER_TO_UINT (value));
    if (terminal == NULL) {
      run->lost_batches++;
      problem (run, "%s batch %u: closed, no terminal message", element, index);
    } else if (terminal->len != 1) {
      problem (run, "%s batch %u: %u terminal messages", element, index,
          terminal->len);
    }
  }
  g_hash_table_iter_init (&iter, em.terminal);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    if (!g_hash_table_contains (em.closed, key))
      problem (run, "%s batch %u: a terminal message, never closed",
          element, GPOINTER_TO_UINT (key));
  }

  fail_unless (dir != NULL, "no spool at %s", location);
  while ((name = g_dir_read_name (dir))) {
    g_autofree gchar *path = g_build_filename (location, name, NULL);
    g_autoptr (GError) error = NULL;
    g_autoptr (RdBatch) batch = NULL;
    GPtrArray *terminal;
    const GstStructure *last;
    guint index;

    if (!rd_batch_parse_dir_name (name, &index))
      continue;
    g_hash_table_add (seen, GUINT_TO_POINTER (index));
    batch = rd_manifest_read (path, &error);
    if (batch == NULL) {
      problem (run, "%s: %s", path, error->message);
      continue;
    }
    check_files (run, element, batch);
    check_against_api (run, element, batch);
    if (!g_hash_table_contains (em.closed, GUINT_TO_POINTER (index))) {
      problem (run, "%s batch %u: on disk (%s), never closed", element,
          index, rd_batch_state_to_string (batch->state));
      continue;
    }
    terminal = g_hash_table_lookup (em.terminal, GUINT_TO_POINTER (index));
    if (terminal == NULL)
      continue;
    last = terminal->pdata[terminal->len - 1];
    if (gst_structure_has_name (last, "resemble-detect-batch-done"))
      check_done (run, element, batch, last);
    else
      check_error (run, element, batch, last);
  }
  g_hash_table_iter_init (&iter, em.closed);
  while (g_hash_table_iter_next (&iter, &key, NULL)) {
    if (!g_hash_table_contains (seen, key))
      problem (run, "%s batch %u: closed, no directory", element,
          GPOINTER_TO_UINT (key));
  }
  element_messages_clear (&em);
}

/* "N (500: a, 503: b, ...)" of one route's answers. */
static gchar *
route_figures (JsonObject * by_route, const gchar * route, guint * total,
    guint * failed)
{
  JsonObject *statuses = json_object_has_member (by_route, route) ?
      json_object_get_object_member (by_route, route) : NULL;
  g_autoptr (GString) text = g_string_new (NULL);
  g_autoptr (GList) members = NULL;

  *total = *failed = 0;
  if (statuses == NULL)
    return g_strdup ("0");
  members = json_object_get_members (statuses);
  for (GList * l = members; l; l = l->next) {
    guint n = json_object_get_int_member (statuses, l->data);

    *total += n;
    if (g_str_equal (l->data, "dropped") || g_str_equal (l->data, "500")
        || g_str_equal (l->data, "503") || g_str_equal (l->data, "429"))
      *failed += n;
    g_string_append_printf (text, "%s%s: %u", text->len ? ", " : "",
        (const gchar *) l->data, n);
  }
  return g_strdup_printf ("%u (%s)", *total, text->str);
}

static gint
compare_doubles (gconstpointer a, gconstpointer b)
{
  gdouble x = *(const gdouble *) a, y = *(const gdouble *) b;

  return x < y ? -1 : x > y;
}

void
soak_run_check (SoakRun * run)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) table = g_string_new (NULL);
  g_autoptr (GString) classes = g_string_new (NULL);
  g_autoptr (GString) faults = g_string_new (NULL);
  JsonObject *stats, *by_route, *injected;
  GHashTableIter iter;
  gpointer key, value;
  guint received_files, lost;

  if (!run->eos)
    problem (run, "no EOS");
  run->stats_root = json_from_string (run->stats, &error);
  fail_unless (run->stats_root != NULL, "%s", error ? error->message : "");
  stats = json_node_get_object (run->stats_root);
  by_route = json_object_get_object_member (json_object_get_object_member
      (stats, "requests"), "by_route");
  injected = json_object_get_object_member (stats, "faults_injected");
  received_files = check_created_once (run, stats);
  for (guint i = 0; i < G_N_ELEMENTS (soak_elements); i++)
    check_element (run, soak_elements[i]);
  if (run->closed < run->config.batches)
    problem (run, "%u batches closed, fewer than the %u asked for",
        run->closed, run->config.batches);

  g_hash_table_iter_init (&iter, run->error_classes);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_string_append_printf (classes, "%s%s: %u", classes->len ? ", " : "",
        (const gchar *) key, GPOINTER_TO_UINT (value));
  for (guint i = 0; i < G_N_ELEMENTS (soak_faults); i++) {
    const gchar *name = rd_emulator_fault_to_string (soak_faults[i]);
    g_string_append_printf (faults, "%s%s: %" G_GINT64_FORMAT,
        faults->len ? ", " : "", name,
        json_object_get_int_member (injected, name));
  }
  lost = run->lost_batches + run->lost_files;

  g_string_append_printf (table, "\n| soak | seed %u, %g%% of requests per "
      "fault kind, max-in-flight %u |\n| --- | --- |\n", run->config.seed,
      run->config.fault_percent, run->config.in_flight);
  g_string_append_printf (table, "| batches closed | %u (snapshots: 1 file "
      "each; audio: 2 segments each) |\n", run->closed);
  g_string_append_printf (table, "| terminal messages | %u (done %u, error "
      "%u) |\n", run->done + run->errors, run->done, run->errors);
  g_string_append_printf (table, "| completed | %u (verdicts unknown: %u) |\n",
      run->done, run->unknown_verdicts);
  g_string_append_printf (table, "| errors | %u%s%s%s |\n", run->errors,
      classes->len ? " (" : "", classes->str, classes->len ? ")" : "");
  g_string_append_printf (table, "| faults injected | %s |\n", faults->str);
  for (guint i = 0; i < G_N_ELEMENTS (soak_routes); i++) {
    guint total, failed;
    g_autofree gchar *figures = route_figures (by_route, soak_routes[i].route,
        &total, &failed);

    g_string_append_printf (table, "| requests %s | %s |\n",
        soak_routes[i].label, figures);
    if (total == 0 && run->config.fault_percent > 0)
      problem (run, "no %s request: that route was not soaked",
          soak_routes[i].label);
    else if (total >= 30 && failed == 0 && run->config.fault_percent > 0)
      problem (run, "%u %s requests, none failed: were faults injected?",
          total, soak_routes[i].label);
  }
  g_string_append_printf (table, "| retries | %d (the client's \"attempt N "
      "failed, retrying\" log lines: POST, polls and the list; verdict "
      "fetches retry without a log line) |\n", g_atomic_int_get (&log_retries));
  g_string_append_printf (table, "| uploads of unknown outcome | %d: adopted "
      "from the list %d, not created so sent again %d |\n",
      g_atomic_int_get (&log_unknown), g_atomic_int_get (&log_adopted),
      g_atomic_int_get (&log_resent));
  g_string_append_printf (table, "| emulator | %" G_GINT64_FORMAT " batches "
      "created, %u files received, each file in at most one batch: %s |\n",
      json_object_get_int_member (stats, "batches_created"), received_files,
      strstr (run->problems->str, "second batch") ? "NO" : "yes");
  g_string_append_printf (table, "| files | %u deleted after a confirmed "
      "verdict, %u kept |\n", run->files_deleted, run->files_kept);
  g_string_append_printf (table, "| lost | %u (closed batches without a "
      "terminal message: %u, files missing from unconfirmed batches: %u) |\n",
      lost, run->lost_batches, run->lost_files);
  g_string_append_printf (table, "| time to EOS | %.1f s |\n", run->seconds);
  if (run->durations->len > 0) {
    gdouble *d = (gdouble *) run->durations->data;
    guint n = run->durations->len;

    g_array_sort (run->durations, compare_doubles);
    g_string_append_printf (table, "| a batch, closed to its terminal "
        "message | median %.1f s, 90%% %.1f s, max %.1f s (%s) |\n",
        d[n / 2], d[n * 9 / 10], d[n - 1], run->slowest);
  }
  g_print ("%s\n%s", table->str, run->error_lines->str);

  fail_unless (run->problems->len == 0, "the soak found problems (spool "
      "kept at %s):%s", run->spool, run->problems->str);
}

/* ---- the rest ------------------------------------------------------------ */

void
soak_run_free (SoakRun * run)
{
  if (run->problems->len == 0)
    rd_test_remove_tree (run->spool);
  else
    g_print ("soak: spool kept at %s\n", run->spool);
  g_free (run->spool);
  g_ptr_array_unref (run->messages);
  g_array_unref (run->arrivals);
  g_array_unref (run->durations);
  g_free (run->slowest);
  g_free (run->stats);
  g_string_free (run->problems, TRUE);
  g_hash_table_unref (run->error_classes);
  g_hash_table_unref (run->created);
  g_clear_pointer (&run->stats_root, json_node_unref);
  g_string_free (run->error_lines, TRUE);
  g_free (run);
}

GPtrArray *
soak_run_get_messages (SoakRun * run)
{
  return run->messages;
}

const gchar *
soak_run_get_spool (SoakRun * run)
{
  return run->spool;
}

const gchar *
soak_run_get_stats (SoakRun * run)
{
  return run->stats;
}

guint
soak_run_get_done (SoakRun * run)
{
  return run->done;
}
