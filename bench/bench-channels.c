/* bench-channels: what many resembledetectsink channels cost on one host.
 * Each channel is a live raw-audio source (segments) and a live JPEG
 * snapshot source into one element, all uploading to the API emulator
 * (started by the caller, --api-url). Layouts:
 *
 *   branches          one pipeline holding every channel (the elements share
 *                     the pipeline's GstContext, so one network thread and
 *                     one SoupSession per api-url and token if the element
 *                     shares them)
 *   pipelines         one pipeline per channel, in this process, sharing
 *                     nothing the application did not set
 *   pipelines-shared  the same, the application setting the first
 *                     pipeline's client-pool context on every other one
 *   processes         one gst-launch-1.0 process per channel (the baseline)
 *
 * It starts every channel, lets them settle, then measures over a window:
 * CPU time (utime + stime from /proc), threads (all, and those named
 * "rd-client" in /proc/PID/task/T/comm, the network threads), RSS and PSS
 * (/proc/PID/status, smaps_rollup), client connections to the emulator
 * established at each sample (ss -tn), and the connections the emulator
 * accepted over the whole run (its stats, connections_accepted). It
 * reads whatever the element does: nothing here assumes sharing. Prints a
 * table and one "RESULT key=value ..." line for bench/run. Not a test: it
 * judges nothing. */

#define _GNU_SOURCE

#include <gst/gst.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define POOL_CONTEXT_TYPE "gst.resembledetect.ClientPool"

typedef struct
{
  gchar *layout;
  gint channels;
  gint settle_s;
  gint window_s;
  gint segment_s;
  gint snapshot_s;
  gint max_files;
  gchar *api_url;
  gchar *token;
  gchar *dir;
  gchar *gst_launch;
} Options;

static Options opt = {
  .channels = 100,
  .settle_s = 10,
  .window_s = 30,
  .segment_s = 5,
  .snapshot_s = 5,
  .max_files = 5,
  .gst_launch = NULL,
};

/* ---- /proc ----------------------------------------------------------- */

static guint64
read_status_kb (GPid pid, const gchar * field)
{
  g_autofree gchar *path = g_strdup_printf ("/proc/%d/status", pid);
  g_autofree gchar *text = NULL;
  const gchar *line;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  line = strstr (text, field);
  return line ? g_ascii_strtoull (line + strlen (field), NULL, 10) : 0;
}

static guint64
read_pss_kb (GPid pid)
{
  g_autofree gchar *path = g_strdup_printf ("/proc/%d/smaps_rollup", pid);
  g_autofree gchar *text = NULL;
  const gchar *line;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  line = strstr (text, "\nPss:");
  return line ? g_ascii_strtoull (line + strlen ("\nPss:"), NULL, 10) : 0;
}

/* utime + stime of the whole process, in seconds. */
static gdouble
read_cpu_s (GPid pid)
{
  g_autofree gchar *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree gchar *text = NULL;
  g_auto (GStrv) fields = NULL;
  const gchar *end;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  /* the command name may hold spaces: fields start after its ')' */
  end = strrchr (text, ')');
  if (end == NULL)
    return 0;
  fields = g_strsplit (end + 2, " ", -1);
  if (g_strv_length (fields) < 13)
    return 0;
  /* fields[0] is state (field 3); utime is field 14, stime 15 */
  return (g_ascii_strtod (fields[11], NULL) + g_ascii_strtod (fields[12],
          NULL)) / sysconf (_SC_CLK_TCK);
}

/* Threads of @pid, and how many are named "rd-client". */
static guint
count_threads (GPid pid, guint * rd_client)
{
  g_autofree gchar *path = g_strdup_printf ("/proc/%d/task", pid);
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *name;
  guint n = 0;

  *rd_client = 0;
  while (dir && (name = g_dir_read_name (dir))) {
    g_autofree gchar *comm_path = g_strdup_printf ("%s/%s/comm", path, name);
    g_autofree gchar *comm = NULL;

    n++;
    if (g_file_get_contents (comm_path, &comm, NULL, NULL)
        && g_str_equal (g_strchomp (comm), "rd-client"))
      (*rd_client)++;
  }
  return n;
}

/* ---- the emulator --------------------------------------------------- */

static gchar *
emulator_root (void)
{
  const gchar *api = strstr (opt.api_url, "/api/v2");

  return api ? g_strndup (opt.api_url, api - opt.api_url) :
      g_strdup (opt.api_url);
}

static guint
emulator_port (void)
{
  g_autofree gchar *root = emulator_root ();
  const gchar *colon = strrchr (root, ':');

  return colon ? atoi (colon + 1) : 0;
}

/* An integer member of the emulator's stats, read with curl (one
 * connection, which the caller accounts for); -1 if it cannot be read. */
static gint64
emulator_stat (const gchar * json, const gchar * member)
{
  g_autofree gchar *key = g_strdup_printf ("\"%s\":", member);
  const gchar *at = json ? strstr (json, key) : NULL;

  if (at == NULL)
    return -1;
  at += strlen (key);
  while (*at == ' ')
    at++;
  return g_ascii_strtoll (at, NULL, 10);
}

static gchar *
emulator_stats (void)
{
  g_autofree gchar *root = emulator_root ();
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

/* Client sockets established to the emulator's port (every process's:
 * nothing else talks to it during a run). */
static guint
established_connections (void)
{
  g_autofree gchar *filter = g_strdup_printf ("dport = :%u", emulator_port ());
  const gchar *argv[] = { "ss", "-tnH", "state", "established", filter,
    NULL
  };
  g_autofree gchar *out = NULL;
  guint n = 0;
  const gchar *p;
  gint status;

  if (!g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH |
          G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL, &status, NULL))
    return 0;
  for (p = out; p && *p; p++)
    if (*p == '\n')
      n++;
  return n;
}

/* ---- a channel ------------------------------------------------------- */

static gchar *
channel_description (gint i)
{
  /* wave=sine freq=...: each channel's segments differ */
  return g_strdup_printf
      ("audiotestsrc is-live=true wave=sine freq=%d samplesperbuffer=320 "
      "! audio/x-raw,format=S16LE,rate=16000,channels=1 ! rd%d. "
      "videotestsrc is-live=true pattern=ball "
      "! video/x-raw,width=160,height=120,framerate=1/%d ! jpegenc "
      "! rd%d. "
      "resembledetectsink name=rd%d location=%s/ch%03d "
      "segment-duration=%" G_GUINT64_FORMAT " max-files=%d "
      "api-url=%s api-token=%s poll-interval=1000000000 "
      "fetch-results=true keep-files=false wait-on-eos=false",
      200 + i, i, opt.snapshot_s, i, i, opt.dir, i,
      (guint64) opt.segment_s * GST_SECOND, opt.max_files, opt.api_url,
      opt.token);
}

/* ---- sampling -------------------------------------------------------- */

typedef struct
{
  guint threads;
  guint rd_client_threads;
  guint64 rss_kb;
  guint64 pss_kb;
  guint64 hwm_kb;
} Sample;

static Sample
sample_pids (const GPid * pids, guint n)
{
  Sample s = { 0 };
  guint i;

  for (i = 0; i < n; i++) {
    guint rd = 0;

    s.threads += count_threads (pids[i], &rd);
    s.rd_client_threads += rd;
    s.rss_kb += read_status_kb (pids[i], "VmRSS:");
    s.hwm_kb += read_status_kb (pids[i], "VmHWM:");
    s.pss_kb += read_pss_kb (pids[i]);
  }
  return s;
}

static gdouble
cpu_pids (const GPid * pids, guint n)
{
  gdouble cpu = 0;
  guint i;

  for (i = 0; i < n; i++)
    cpu += read_cpu_s (pids[i]);
  return cpu;
}

/* ---- bus: errors only ------------------------------------------------ */

static gint errors_seen;

static GstBusSyncReply
bus_sync (GstBus * bus, GstMessage * msg, gpointer user_data)
{
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    g_autoptr (GError) error = NULL;
    g_autofree gchar *debug = NULL;

    gst_message_parse_error (msg, &error, &debug);
    if (g_atomic_int_add (&errors_seen, 1) < 5)
      g_printerr ("error from %s: %s\n", GST_OBJECT_NAME (msg->src),
          error->message);
  }
  return GST_BUS_DROP;
}

static void
watch_bus (GstElement * pipeline)
{
  GstBus *bus = gst_element_get_bus (pipeline);

  gst_bus_set_sync_handler (bus, bus_sync, NULL, NULL);
  gst_object_unref (bus);
}

/* ---- main ------------------------------------------------------------ */

static void
sleep_s (gdouble seconds)
{
  g_usleep ((gulong) (seconds * G_USEC_PER_SEC));
}

int
main (int argc, char **argv)
{
  GOptionEntry entries[] = {
    {"layout", 'l', 0, G_OPTION_ARG_STRING, &opt.layout,
        "branches, pipelines, pipelines-shared or processes", "LAYOUT"},
    {"channels", 'n', 0, G_OPTION_ARG_INT, &opt.channels,
        "Channels (100)", "N"},
    {"settle", 0, 0, G_OPTION_ARG_INT, &opt.settle_s,
        "Seconds between every channel playing and the window (10)", "S"},
    {"window", 'w', 0, G_OPTION_ARG_INT, &opt.window_s,
        "Seconds measured (30)", "S"},
    {"segment", 0, 0, G_OPTION_ARG_INT, &opt.segment_s,
        "Audio segment length in seconds (5)", "S"},
    {"snapshot-every", 0, 0, G_OPTION_ARG_INT, &opt.snapshot_s,
        "Seconds between two snapshots of a channel (5)", "S"},
    {"max-files", 0, 0, G_OPTION_ARG_INT, &opt.max_files,
        "Files per batch (5)", "N"},
    {"api-url", 0, 0, G_OPTION_ARG_STRING, &opt.api_url,
        "The emulator's base URL (required)", "URL"},
    {"token", 0, 0, G_OPTION_ARG_STRING, &opt.token,
        "Its token (bench-token)", "T"},
    {"dir", 'd', 0, G_OPTION_ARG_FILENAME, &opt.dir,
        "Where the spools go (required; emptied by the caller)", "DIR"},
    {"gst-launch", 0, 0, G_OPTION_ARG_FILENAME, &opt.gst_launch,
        "gst-launch-1.0 for the processes layout (from PATH)", "PATH"},
    {NULL}
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- many channels");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) pipelines =
      g_ptr_array_new_with_free_func (gst_object_unref);
  g_autofree GPid *pids = NULL;
  g_autofree gchar *stats_before = NULL, *stats_after = NULL;
  guint n_pids = 0;
  gboolean processes, in_process_shared;
  guint64 base_rss_kb = 0, base_pss_kb = 0;
  gint64 t_start, t_playing;
  gdouble cpu0, cpu1, wall0, wall1;
  Sample peak = { 0 }, last = { 0 };
  guint conn_peak = 0, conn_sum = 0, n_samples = 0;
  gint64 accepted = -1, requests = -1, batches = -1;
  gint i;

  gst_init (&argc, &argv);
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  if (opt.layout == NULL)
    opt.layout = g_strdup ("branches");
  if (opt.token == NULL)
    opt.token = g_strdup ("bench-token");
  if (opt.api_url == NULL || opt.dir == NULL || opt.channels < 1) {
    g_printerr ("--api-url and --dir are required\n");
    return 2;
  }
  processes = g_str_equal (opt.layout, "processes");
  in_process_shared = g_str_equal (opt.layout, "pipelines-shared");
  if (!processes && !g_str_equal (opt.layout, "branches")
      && !g_str_equal (opt.layout, "pipelines") && !in_process_shared) {
    g_printerr ("unknown layout %s\n", opt.layout);
    return 2;
  }

  {
    /* Load the plugin and the client module first, so that the baseline
     * RSS has the code every layout needs whatever N is. */
    GstElement *probe = gst_element_factory_make ("resembledetectsink", NULL);

    if (probe == NULL) {
      g_printerr ("resembledetectsink not found (GST_PLUGIN_PATH?)\n");
      return 1;
    }
    gst_object_unref (probe);
    probe = gst_element_factory_make ("jpegenc", NULL);
    if (probe)
      gst_object_unref (probe);
  }
  base_rss_kb = read_status_kb (getpid (), "VmRSS:");
  base_pss_kb = read_pss_kb (getpid ());
  stats_before = emulator_stats ();
  t_start = g_get_monotonic_time ();

  if (processes) {
    const gchar *launcher = opt.gst_launch ? opt.gst_launch : "gst-launch-1.0";

    pids = g_new0 (GPid, opt.channels);
    for (i = 0; i < opt.channels; i++) {
      g_autofree gchar *desc = channel_description (i);
      g_auto (GStrv) words = NULL;
      g_autoptr (GPtrArray) args = g_ptr_array_new ();
      guint w;

      if (!g_shell_parse_argv (desc, NULL, &words, &error)) {
        g_printerr ("%s\n", error->message);
        return 1;
      }
      g_ptr_array_add (args, (gpointer) launcher);
      g_ptr_array_add (args, (gpointer) "-q");
      for (w = 0; words[w]; w++)
        g_ptr_array_add (args, words[w]);
      g_ptr_array_add (args, NULL);
      if (!g_spawn_async (NULL, (gchar **) args->pdata, NULL,
              G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
              G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &pids[n_pids], &error)) {
        g_printerr ("%s\n", error->message);
        break;
      }
      n_pids++;
    }
    /* Playing once each has its client (its network thread) started. */
    {
      gint64 deadline = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;

      while (g_get_monotonic_time () < deadline) {
        guint started = 0, j;

        for (j = 0; j < n_pids; j++) {
          guint rd = 0;

          count_threads (pids[j], &rd);
          started += rd > 0;
        }
        if (started == n_pids)
          break;
        sleep_s (0.2);
      }
    }
  } else {
    GstContext *shared = NULL;

    if (g_str_equal (opt.layout, "branches")) {
      g_autoptr (GString) desc = g_string_new (NULL);
      GstElement *pipeline;

      for (i = 0; i < opt.channels; i++) {
        g_autofree gchar *one = channel_description (i);

        g_string_append_printf (desc, "%s ", one);
      }
      pipeline = gst_parse_launch (desc->str, &error);
      if (pipeline == NULL) {
        g_printerr ("%s\n", error->message);
        return 1;
      }
      g_ptr_array_add (pipelines, pipeline);
    } else {
      for (i = 0; i < opt.channels; i++) {
        g_autofree gchar *one = channel_description (i);
        GstElement *pipeline = gst_parse_launch (one, &error);

        if (pipeline == NULL) {
          g_printerr ("%s\n", error->message);
          return 1;
        }
        g_ptr_array_add (pipelines, pipeline);
      }
    }
    for (i = 0; i < (gint) pipelines->len; i++) {
      GstElement *pipeline = g_ptr_array_index (pipelines, i);

      watch_bus (pipeline);
      if (in_process_shared && shared)
        gst_element_set_context (pipeline, shared);
      if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
          GST_STATE_CHANGE_FAILURE) {
        g_printerr ("pipeline %d failed to start\n", i);
        return 1;
      }
      if (in_process_shared && i == 0) {
        g_autofree gchar *name = g_strdup_printf ("rd%d", i);
        GstElement *rd = gst_bin_get_by_name (GST_BIN (pipeline), name);

        /* the element makes its pool when it starts its client */
        gst_element_get_state (pipeline, NULL, NULL, 10 * GST_SECOND);
        shared = rd ? gst_element_get_context (rd, POOL_CONTEXT_TYPE) : NULL;
        if (shared == NULL)
          g_printerr ("the element has no %s context: nothing to share\n",
              POOL_CONTEXT_TYPE);
        g_clear_object (&rd);
      }
    }
    for (i = 0; i < (gint) pipelines->len; i++)
      gst_element_get_state (g_ptr_array_index (pipelines, i), NULL, NULL,
          30 * GST_SECOND);
    if (shared)
      gst_context_unref (shared);
    n_pids = 1;
    pids = g_new0 (GPid, 1);
    pids[0] = getpid ();
  }
  t_playing = g_get_monotonic_time ();

  sleep_s (opt.settle_s);
  wall0 = g_get_monotonic_time () / 1e6;
  cpu0 = cpu_pids (pids, n_pids);
  while (g_get_monotonic_time () / 1e6 < wall0 + opt.window_s) {
    guint conns;

    last = sample_pids (pids, n_pids);
    peak.threads = MAX (peak.threads, last.threads);
    peak.rd_client_threads = MAX (peak.rd_client_threads,
        last.rd_client_threads);
    peak.rss_kb = MAX (peak.rss_kb, last.rss_kb);
    peak.pss_kb = MAX (peak.pss_kb, last.pss_kb);
    conns = established_connections ();
    conn_peak = MAX (conn_peak, conns);
    conn_sum += conns;
    n_samples++;
    sleep_s (1);
  }
  wall1 = g_get_monotonic_time () / 1e6;
  cpu1 = cpu_pids (pids, n_pids);
  last = sample_pids (pids, n_pids);
  stats_after = emulator_stats ();

  /* the after read's own connection is not the channels' */
  if (stats_before && stats_after) {
    accepted = emulator_stat (stats_after, "connections_accepted") -
        emulator_stat (stats_before, "connections_accepted") - 1;
    requests = emulator_stat (stats_after, "total") -
        emulator_stat (stats_before, "total") - 1;
    batches = emulator_stat (stats_after, "batches_created") -
        emulator_stat (stats_before, "batches_created");
  }

  {
    gdouble cpu = cpu1 - cpu0, window = wall1 - wall0;
    /* in one process: its growth over the plugin-loaded baseline; in
     * processes: every process's whole RSS */
    gdouble rss_per_channel_mb = processes ?
        last.rss_kb / 1024.0 / opt.channels :
        ((gdouble) last.rss_kb - base_rss_kb) / 1024.0 / opt.channels;
    gdouble pss_per_channel_mb = processes ?
        last.pss_kb / 1024.0 / opt.channels :
        ((gdouble) last.pss_kb - base_pss_kb) / 1024.0 / opt.channels;

    g_print ("bench-channels: %d channels, layout %s, %u process(es); "
        "started in %.1f s, settled %d s, measured %.1f s\n", opt.channels,
        opt.layout, n_pids, (t_playing - t_start) / 1e6, opt.settle_s, window);
    g_print ("  threads %u (rd-client: %u, peak %u)\n", last.threads,
        last.rd_client_threads, peak.rd_client_threads);
    g_print ("  RSS %.1f MB (%s %.1f MB), PSS %.1f MB; per channel: RSS "
        "%.2f MB, PSS %.2f MB\n", last.rss_kb / 1024.0,
        processes ? "sum of processes;" : "baseline before the channels",
        processes ? 0.0 : base_rss_kb / 1024.0, last.pss_kb / 1024.0,
        rss_per_channel_mb, pss_per_channel_mb);
    g_print ("  CPU %.2f s over %.1f s: %.2f%% of a core per channel\n", cpu,
        window, 100.0 * cpu / window / opt.channels);
    g_print ("  connections: established to the emulator peak %u, mean "
        "%.1f (ss, 1 s samples); accepted by the emulator over the run %"
        G_GINT64_FORMAT "; requests %" G_GINT64_FORMAT ", batches %"
        G_GINT64_FORMAT "\n", conn_peak, n_samples ? (gdouble) conn_sum /
        n_samples : 0.0, accepted, requests, batches);
    if (errors_seen)
      g_print ("  %d error message(s) on the buses\n", errors_seen);
    g_print ("RESULT layout=%s channels=%d processes=%u threads=%u "
        "rd_client_threads=%u rss_kb=%" G_GUINT64_FORMAT " pss_kb=%"
        G_GUINT64_FORMAT " base_rss_kb=%" G_GUINT64_FORMAT
        " rss_per_channel_mb=%.3f pss_per_channel_mb=%.3f cpu_s=%.3f "
        "window_s=%.3f cpu_per_channel_pct=%.4f conn_peak=%u conn_mean=%.1f "
        "accepted=%" G_GINT64_FORMAT " requests=%" G_GINT64_FORMAT
        " batches=%" G_GINT64_FORMAT " errors=%d start_s=%.2f\n", opt.layout,
        opt.channels, n_pids, last.threads, last.rd_client_threads,
        last.rss_kb, last.pss_kb, processes ? 0 : base_rss_kb,
        rss_per_channel_mb, pss_per_channel_mb, cpu, window,
        100.0 * cpu / window / opt.channels, conn_peak,
        n_samples ? (gdouble) conn_sum / n_samples : 0.0, accepted, requests,
        batches, errors_seen, (t_playing - t_start) / 1e6);
  }

  /* Stop. */
  if (processes) {
    guint j;

    for (j = 0; j < n_pids; j++)
      kill (pids[j], SIGINT);
    for (j = 0; j < n_pids; j++) {
      gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
      int status;

      while (waitpid (pids[j], &status, WNOHANG) == 0) {
        if (g_get_monotonic_time () > deadline) {
          kill (pids[j], SIGKILL);
          waitpid (pids[j], &status, 0);
          break;
        }
        sleep_s (0.05);
      }
      g_spawn_close_pid (pids[j]);
    }
  } else {
    for (i = 0; i < (gint) pipelines->len; i++)
      gst_element_set_state (g_ptr_array_index (pipelines, i), GST_STATE_NULL);
  }
  return 0;
}
