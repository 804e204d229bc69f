/* bench-verdicts: how long resembledetectsink takes from closed batches to
 * their verdicts, against the ideal that the API's processing allows, and
 * how many requests each batch costs. --batches batches of --files JPEG
 * snapshots each are produced as fast as the pipeline goes (they all close
 * within a moment), and the element uploads them with --max-in-flight
 * batches in flight to the emulator (--api-url), which takes
 * --processing-ms per file (its --processing-ms must match: the ideal is
 * computed from it). With --callback the element runs its callback receiver
 * (callback-listen=127.0.0.1:0) and the emulator calls it when a batch is
 * terminal.
 *
 * The ideal: the emulator finishes a batch's detects one after the other,
 * files x processing-ms after it was created, and batches in parallel; with
 * at most M batches in flight and every batch closed at the start,
 * ceil(batches / M) rounds of files x processing-ms. Measured: from the
 * first batch-closed message to the last batch-done (wait-on-eos holds EOS
 * until then). Requests: the emulator's stats before and after (POST
 * /detect/batch, GET /detect/batch/{uuid}, GET /detect/{uuid}), per batch.
 * Prints a table and a "RESULT ..." line for bench/run; judges nothing. */

#include <gst/gst.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static gchar *api_url;
static gchar *token;
static gchar *dir;
static gint n_batches = 200;
static gint n_files = 10;
static gint max_in_flight = 4;
static gint processing_ms = 200;
static gboolean callback;
static gint poll_interval_ms = 0;

typedef struct
{
  GMutex lock;                  /* messages come from several threads */
  GMainLoop *loop;
  GstClockTime first_closed;
  GstClockTime last_done;
  GstClockTime *closed_at;      /* by batch index */
  gdouble latency_sum;
  gdouble latency_max;
  gint closed;
  gint done;
  gint failed;
  gint results;
  gboolean error;
} Run;

static GstBusSyncReply
bus_sync (GstBus * bus, GstMessage * msg, gpointer user_data)
{
  Run *run = user_data;
  GstClockTime now = gst_util_get_timestamp ();
  const GstStructure *s = gst_message_get_structure (msg);
  guint index = 0;

  g_mutex_lock (&run->lock);
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ELEMENT:
      if (s == NULL)
        break;
      gst_structure_get_uint (s, "index", &index);
      if (gst_structure_has_name (s, "resemble-detect-batch-closed")) {
        if (run->closed++ == 0)
          run->first_closed = now;
        if (index < (guint) n_batches + 2)
          run->closed_at[index] = now;
      } else if (gst_structure_has_name (s, "resemble-detect-batch-done")) {
        run->done++;
        run->last_done = now;
        if (index < (guint) n_batches + 2 && run->closed_at[index]) {
          gdouble latency = (now - run->closed_at[index]) / 1e9;

          run->latency_sum += latency;
          run->latency_max = MAX (run->latency_max, latency);
        }
      } else if (gst_structure_has_name (s, "resemble-detect-batch-error")) {
        run->failed++;
        run->last_done = now;
      } else if (gst_structure_has_name (s, "resemble-detect-result")) {
        run->results++;
      }
      break;
    case GST_MESSAGE_EOS:
      g_main_loop_quit (run->loop);
      break;
    case GST_MESSAGE_ERROR:{
      g_autoptr (GError) error = NULL;
      g_autofree gchar *debug = NULL;

      gst_message_parse_error (msg, &error, &debug);
      g_printerr ("error from %s: %s\n", GST_OBJECT_NAME (msg->src),
          error->message);
      run->error = TRUE;
      g_main_loop_quit (run->loop);
      break;
    }
    case GST_MESSAGE_WARNING:{
      g_autoptr (GError) error = NULL;
      g_autofree gchar *debug = NULL;

      gst_message_parse_warning (msg, &error, &debug);
      g_printerr ("warning from %s: %s\n", GST_OBJECT_NAME (msg->src),
          error->message);
      break;
    }
    default:
      break;
  }
  g_mutex_unlock (&run->lock);
  return GST_BUS_DROP;
}

/* ---- the emulator's stats (read with curl) --------------------------- */

static gchar *
emulator_stats (void)
{
  const gchar *api = strstr (api_url, "/api/v2");
  g_autofree gchar *root = api ? g_strndup (api_url, api - api_url) :
      g_strdup (api_url);
  g_autofree gchar *url = g_strconcat (root, "/__emulator/stats", NULL);
  const gchar *argv[] = { "curl", "-s", "--max-time", "10", url, NULL };
  gchar *out = NULL;
  gint status;

  if (!g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH |
          G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL, &status, NULL)
      || !g_spawn_check_wait_status (status, NULL)) {
    g_free (out);
    return NULL;
  }
  return out;
}

/* Sum of the counts of every status of @route ("GET /api/v2/detect/{uuid}"). */
static gint64
route_count (const gchar * json, const gchar * route)
{
  g_autofree gchar *key = g_strdup_printf ("\"%s\":{", route);
  const gchar *at = json ? strstr (json, key) : NULL;
  gint64 sum = 0;

  if (at == NULL)
    return 0;
  at += strlen (key);
  while (*at && *at != '}') {
    const gchar *colon = strchr (at, ':');

    if (colon == NULL)
      break;
    sum += g_ascii_strtoll (colon + 1, (gchar **) & at, 10);
    if (*at == ',')
      at++;
  }
  return sum;
}

static gint64
int_member (const gchar * json, const gchar * member)
{
  g_autofree gchar *key = g_strdup_printf ("\"%s\":", member);
  const gchar *at = json ? strstr (json, key) : NULL;

  return at ? g_ascii_strtoll (at + strlen (key), NULL, 10) : 0;
}

int
main (int argc, char **argv)
{
  GOptionEntry entries[] = {
    {"api-url", 0, 0, G_OPTION_ARG_STRING, &api_url,
        "The emulator's base URL (required)", "URL"},
    {"token", 0, 0, G_OPTION_ARG_STRING, &token, "Its token (bench-token)",
        "T"},
    {"dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir,
        "The spool (required, removed by the caller)", "DIR"},
    {"batches", 'b', 0, G_OPTION_ARG_INT, &n_batches, "Batches (200)", "N"},
    {"files", 'n', 0, G_OPTION_ARG_INT, &n_files,
        "Snapshots per batch (10)", "N"},
    {"max-in-flight", 'm', 0, G_OPTION_ARG_INT, &max_in_flight,
        "The element's max-in-flight (4)", "N"},
    {"processing-ms", 'p', 0, G_OPTION_ARG_INT, &processing_ms,
        "The emulator's --processing-ms, for the ideal (200)", "MS"},
    {"callback", 'c', 0, G_OPTION_ARG_NONE, &callback,
        "Run the callback receiver (callback-listen=127.0.0.1:0)", NULL},
    {"poll-interval-ms", 0, 0, G_OPTION_ARG_INT, &poll_interval_ms,
        "The element's poll-interval (its default)", "MS"},
    {NULL}
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- time to verdicts");
  g_autoptr (GError) error = NULL;
  g_autofree gchar *desc = NULL, *poll = NULL;
  g_autofree gchar *before = NULL, *after = NULL;
  GstElement *pipeline;
  GstBus *bus;
  Run run = { 0 };
  gdouble measured, ideal;
  gint64 posts, polls, fetches, callbacks, conns;
  gint rounds;

  gst_init (&argc, &argv);
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  if (api_url == NULL || dir == NULL || n_batches < 1 || n_files < 1
      || n_files > 50 || max_in_flight < 1) {
    g_printerr ("--api-url and --dir are required\n");
    return 2;
  }
  if (token == NULL)
    token = g_strdup ("bench-token");
  poll = poll_interval_ms > 0 ? g_strdup_printf (" poll-interval=%"
      G_GUINT64_FORMAT, (guint64) poll_interval_ms * GST_MSECOND) :
      g_strdup ("");
  desc = g_strdup_printf ("videotestsrc num-buffers=%d pattern=ball "
      "! video/x-raw,width=64,height=48,framerate=30/1 ! jpegenc "
      "! resembledetectsink location=%s api-url=%s api-token=%s "
      "max-files=%d max-in-flight=%d fetch-results=true wait-on-eos=true "
      "keep-files=false%s%s", n_batches * n_files, dir, api_url, token,
      n_files, max_in_flight, poll,
      callback ? " callback-listen=127.0.0.1:0" : "");
  pipeline = gst_parse_launch (desc, &error);
  if (pipeline == NULL) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  g_mutex_init (&run.lock);
  run.loop = g_main_loop_new (NULL, FALSE);
  run.closed_at = g_new0 (GstClockTime, n_batches + 2);
  bus = gst_element_get_bus (pipeline);
  gst_bus_set_sync_handler (bus, bus_sync, &run, NULL);
  gst_object_unref (bus);

  before = emulator_stats ();
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    g_printerr ("the pipeline did not start\n");
    return 1;
  }
  g_main_loop_run (run.loop);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  after = emulator_stats ();

  rounds = (n_batches + max_in_flight - 1) / max_in_flight;
  ideal = rounds * n_files * processing_ms / 1000.0;
  measured = run.done + run.failed > 0 && run.closed > 0 ?
      (run.last_done - run.first_closed) / 1e9 : -1;
  posts = route_count (after, "POST /api/v2/detect/batch") -
      route_count (before, "POST /api/v2/detect/batch");
  polls = route_count (after, "GET /api/v2/detect/batch/{uuid}") -
      route_count (before, "GET /api/v2/detect/batch/{uuid}");
  fetches = route_count (after, "GET /api/v2/detect/{uuid}") -
      route_count (before, "GET /api/v2/detect/{uuid}");
  callbacks = int_member (after, "callbacks_sent") -
      int_member (before, "callbacks_sent");
  /* the after read's own connection is not the element's */
  conns = int_member (after, "connections_accepted") -
      int_member (before, "connections_accepted") - 1;

  g_print ("bench-verdicts: %d batches of %d JPEG snapshots, max-in-flight "
      "%d, %s, emulator %d ms per file\n", n_batches, n_files, max_in_flight,
      callback ? "callback receiver (callback-listen=127.0.0.1:0)" :
      "polling", processing_ms);
  g_print ("  batches closed %d, done %d, failed %d, verdicts %d\n",
      run.closed, run.done, run.failed, run.results);
  g_print ("  first closed to last done %.2f s; ideal %d rounds x %d files x "
      "%d ms = %.2f s; ratio %.3f\n", measured, rounds, n_files,
      processing_ms, ideal, measured / ideal);
  g_print ("  per batch, closed to done: mean %.2f s, max %.2f s\n",
      run.done ? run.latency_sum / run.done : 0, run.latency_max);
  g_print ("  requests per batch: POST %.2f, GET batch (polls) %.2f, GET "
      "detect %.2f; callbacks sent %" G_GINT64_FORMAT "; connections "
      "accepted %" G_GINT64_FORMAT "\n", (gdouble) posts / n_batches,
      (gdouble) polls / n_batches, (gdouble) fetches / n_batches, callbacks,
      conns);
  g_print ("RESULT mode=%s max_in_flight=%d batches=%d files=%d "
      "measured_s=%.3f ideal_s=%.3f ratio=%.4f done=%d failed=%d "
      "verdicts=%d posts_per_batch=%.3f polls_per_batch=%.3f "
      "fetches_per_batch=%.3f callbacks=%" G_GINT64_FORMAT " connections=%"
      G_GINT64_FORMAT " latency_mean_s=%.3f latency_max_s=%.3f\n",
      callback ? "callback" : "poll", max_in_flight, n_batches, n_files,
      measured, ideal, measured / ideal, run.done, run.failed, run.results,
      (gdouble) posts / n_batches, (gdouble) polls / n_batches,
      (gdouble) fetches / n_batches, callbacks, conns,
      run.done ? run.latency_sum / run.done : 0, run.latency_max);
  g_main_loop_unref (run.loop);
  g_free (run.closed_at);
  return run.error || run.done != n_batches ? 1 : 0;
}
