/* bench-stall: the longest time a buffer spends in resembledetectsink's chain
 * while large batches upload. A live pipeline (raw audio in 10 ms buffers
 * into an audio pad, 10 JPEG snapshots a second into an image pad) runs on a
 * spool where an earlier run left --batches closed batches of --batch-mb
 * each; the element resumes them at its start and uploads them (max-in-flight
 * 4) to the emulator (--api-url) while the live buffers flow.
 *
 * The time in the chain is measured by a tracer (GstTracer hooks
 * pad-push-pre / pad-push-post, and the -list- pair) on the pads upstream of
 * the element's sink pads: from the moment the upstream element pushes a
 * buffer into the element to the moment that push returns, which is all the
 * element does with it on the streaming thread (its ghost pad, its queue or
 * appsink, its snapshot writing). Buffers pushed before the pipeline reached
 * PLAYING are left out: they wait for PLAYING there, as in any sink.
 *
 * Window: from the first upload progress of the left batches to the 202 of
 * the last of them. Baseline: the same pipeline, on a spool with nothing
 * left, for as long, in the same process afterwards. Prints a table and a
 * "RESULT ..." line for bench/run; it judges nothing. */

#define _GNU_SOURCE             /* RUSAGE_THREAD */

#include "batch.h"
#include "manifest.h"

#include <gst/gst.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_TARGETS 4
#define MAX_SAMPLES (1 << 20)

/* ---- the tracer ----------------------------------------------------- */

typedef struct
{
  GstPad *pad;                  /* upstream of one of the element's pads */
  gchar *name;                  /* the element's pad */
  GstClockTime pre;             /* of the push in progress */
  struct rusage pre_usage;      /* of the pushing thread, at pre */
  guint n;
  GstClockTime *at;             /* pre time of each push */
  GstClockTime *took;           /* its time in the element */
  guint32 *waits;               /* voluntary context switches during it */
  guint32 *preempted;           /* involuntary ones */
} Target;

static Target targets[MAX_TARGETS];
static guint n_targets;

static Target *
find_target (GstPad * pad)
{
  guint i;

  for (i = 0; i < n_targets; i++)
    if (targets[i].pad == pad)
      return &targets[i];
  return NULL;
}

static void
push_pre (GObject * tracer, GstClockTime ts, GstPad * pad, gpointer data)
{
  Target *t = find_target (pad);

  /* @ts counts from the tracing's start, which is not public: our own
   * clock, the one the windows use */
  if (t) {
    /* a push that took long: did its thread wait (a lock, I/O: voluntary
     * switches) or was it preempted (involuntary)? */
    getrusage (RUSAGE_THREAD, &t->pre_usage);
    t->pre = gst_util_get_timestamp ();
  }
}

static void
push_post (GObject * tracer, GstClockTime ts, GstPad * pad, GstFlowReturn res)
{
  Target *t = find_target (pad);

  if (t && t->pre != GST_CLOCK_TIME_NONE && t->n < MAX_SAMPLES) {
    struct rusage usage;

    t->took[t->n] = gst_util_get_timestamp () - t->pre;
    getrusage (RUSAGE_THREAD, &usage);
    t->at[t->n] = t->pre;
    t->waits[t->n] = usage.ru_nvcsw - t->pre_usage.ru_nvcsw;
    t->preempted[t->n] = usage.ru_nivcsw - t->pre_usage.ru_nivcsw;
    t->n++;
    t->pre = GST_CLOCK_TIME_NONE;
  }
}

typedef struct
{
  GstTracer parent;
} BenchChainTracer;

typedef struct
{
  GstTracerClass parent_class;
} BenchChainTracerClass;

G_DEFINE_TYPE (BenchChainTracer, bench_chain_tracer, GST_TYPE_TRACER);

static void
bench_chain_tracer_class_init (BenchChainTracerClass * klass)
{
}

static void
bench_chain_tracer_init (BenchChainTracer * self)
{
  GstTracer *tracer = GST_TRACER (self);

  gst_tracing_register_hook (tracer, "pad-push-pre", G_CALLBACK (push_pre));
  gst_tracing_register_hook (tracer, "pad-push-post", G_CALLBACK (push_post));
  gst_tracing_register_hook (tracer, "pad-push-list-pre",
      G_CALLBACK (push_pre));
  gst_tracing_register_hook (tracer, "pad-push-list-post",
      G_CALLBACK (push_post));
}

/* ---- options ---------------------------------------------------------- */

static gchar *api_url;
static gchar *token;
static gchar *dir;
static gint n_batches = 4;
static gint batch_mb = 200;
static gint files_per_batch = 10;
static gint min_seconds = 3;
static gchar *upload_mode = NULL;

/* ---- the left batches ------------------------------------------------ */

static gboolean
write_random_file (const gchar * path, gsize size, guint64 seed)
{
  const gsize block = 1024 * 1024;
  g_autofree guint64 *buffer = g_malloc (block);
  guint64 state = seed * 0x9e3779b97f4a7c15u + 1;
  gsize written = 0;
  int fd = g_open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

  if (fd < 0)
    return FALSE;
  while (written < size) {
    gsize n = MIN (block, size - written), i;

    for (i = 0; i < block / sizeof (guint64); i++) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      buffer[i] = state;
    }
    if (write (fd, buffer, n) != (gssize) n) {
      close (fd);
      return FALSE;
    }
    written += n;
  }
  return close (fd) == 0;
}

/* Batches 1..n in state closed, as a run that stopped before sending them
 * would have left them. */
static gboolean
leave_batches (const gchar * location, GError ** error)
{
  guint64 file_size = (guint64) batch_mb * 1000000 / files_per_batch;
  gint b, f;

  for (b = 1; b <= n_batches; b++) {
    g_autoptr (RdBatch) batch = rd_batch_new (b, location);

    if (g_mkdir_with_parents (batch->dir, 0700) != 0) {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
          "%s: %s", batch->dir, g_strerror (errno));
      return FALSE;
    }
    for (f = 0; f < files_per_batch; f++) {
      g_autofree gchar *name = g_strdup_printf ("left-%02d-%06d.wav", b, f);
      g_autofree gchar *path = g_build_filename (batch->dir, name, NULL);

      if (!write_random_file (path, file_size, b * 1000 + f)) {
        g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
            "%s: %s", path, g_strerror (errno));
        return FALSE;
      }
      rd_batch_add_file (batch, rd_batch_file_new (name, file_size,
              RD_MEDIA_TYPE_AUDIO, RD_TIME_NONE, RD_TIME_NONE));
    }
    batch->state = RD_BATCH_STATE_CLOSED;
    if (!rd_manifest_write (batch, error))
      return FALSE;
  }
  return TRUE;
}

/* ---- one run ----------------------------------------------------------- */

typedef struct
{
  GMainLoop *loop;
  gboolean uploading;           /* a phase with left batches */
  GstClockTime playing;
  GstClockTime window_start;    /* first upload progress of a left batch */
  GstClockTime window_end;      /* 202 of the last left batch */
  gint submitted;
  gint failed;
  gboolean error;
} Run;

static gboolean
quit_loop (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

static guint
index_of_code (const gchar * code)
{
  /* upload-batch-NNNNNN */
  const gchar *dash = code ? strrchr (code, '-') : NULL;

  return dash ? (guint) atoi (dash + 1) : 0;
}

static GstBusSyncReply
bus_sync (GstBus * bus, GstMessage * msg, gpointer user_data)
{
  Run *run = user_data;
  GstClockTime now = gst_util_get_timestamp ();
  const GstStructure *s = gst_message_get_structure (msg);

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_PROGRESS:{
      GstProgressType type;
      gchar *code = NULL, *text = NULL;

      gst_message_parse_progress (msg, &type, &code, &text);
      if (run->uploading && index_of_code (code) >= 1
          && index_of_code (code) <= (guint) n_batches
          && run->window_start == GST_CLOCK_TIME_NONE)
        run->window_start = now;
      g_free (code);
      g_free (text);
      break;
    }
    case GST_MESSAGE_ELEMENT:{
      guint index = 0;

      if (s == NULL || !gst_structure_get_uint (s, "index", &index)
          || index < 1 || index > (guint) n_batches || !run->uploading)
        break;
      if (gst_structure_has_name (s, "resemble-detect-batch-submitted"))
        run->submitted++;
      else if (gst_structure_has_name (s, "resemble-detect-batch-error"))
        run->failed++;
      else
        break;
      if (run->submitted + run->failed == n_batches) {
        run->window_end = now;
        /* a little more streaming after the last 202 */
        g_timeout_add (1000, quit_loop, run->loop);
      }
      break;
    }
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
    default:
      break;
  }
  return GST_BUS_PASS;
}

static void
targets_clear (void)
{
  guint i;

  for (i = 0; i < n_targets; i++) {
    gst_object_unref (targets[i].pad);
    g_free (targets[i].name);
    g_free (targets[i].at);
    g_free (targets[i].took);
    g_free (targets[i].waits);
    g_free (targets[i].preempted);
  }
  memset (targets, 0, sizeof (targets));
  n_targets = 0;
}

static void
targets_set (GstElement * sink)
{
  GstIterator *it = gst_element_iterate_sink_pads (sink);
  GValue item = G_VALUE_INIT;

  while (gst_iterator_next (it, &item) == GST_ITERATOR_OK) {
    GstPad *pad = g_value_get_object (&item);
    GstPad *peer = gst_pad_get_peer (pad);

    if (peer && n_targets < MAX_TARGETS) {
      Target *t = &targets[n_targets++];

      t->pad = peer;
      t->name = gst_pad_get_name (pad);
      t->pre = GST_CLOCK_TIME_NONE;
      t->at = g_new (GstClockTime, MAX_SAMPLES);
      t->took = g_new (GstClockTime, MAX_SAMPLES);
      t->waits = g_new (guint32, MAX_SAMPLES);
      t->preempted = g_new (guint32, MAX_SAMPLES);
    } else if (peer) {
      gst_object_unref (peer);
    }
    g_value_reset (&item);
  }
  g_value_unset (&item);
  gst_iterator_free (it);
}

static gint
compare_times (gconstpointer a, gconstpointer b)
{
  GstClockTime x = *(const GstClockTime *) a, y = *(const GstClockTime *) b;

  return (x > y) - (x < y);
}

typedef struct
{
  guint n;
  GstClockTime max;
  GstClockTime p99;
  GstClockTime median;
  guint over_1ms;
  guint over_5ms;
  guint max_waits;              /* context switches in the longest push */
  guint max_preempted;
  guint over_1ms_preempted;     /* pushes over 1 ms that were preempted */
} Stats;

/* The pushes of @t that began in [from, to). */
static Stats
target_stats (const Target * t, GstClockTime from, GstClockTime to)
{
  g_autofree GstClockTime *v = g_new (GstClockTime, MAX (t->n, 1));
  Stats s = { 0 };
  guint i;

  for (i = 0; i < t->n; i++) {
    if (t->at[i] < from || t->at[i] >= to)
      continue;
    v[s.n++] = t->took[i];
    if (t->took[i] >= s.max) {
      s.max = t->took[i];
      s.max_waits = t->waits[i];
      s.max_preempted = t->preempted[i];
    }
    s.over_1ms_preempted += t->took[i] > GST_MSECOND && t->preempted[i] > 0;
    s.over_1ms += t->took[i] > GST_MSECOND;
    s.over_5ms += t->took[i] > 5 * GST_MSECOND;
  }
  if (s.n) {
    qsort (v, s.n, sizeof (GstClockTime), compare_times);
    s.median = v[s.n / 2];
    s.p99 = v[MIN (s.n - 1, (guint) (s.n * 0.99))];
  }
  return s;
}

/* Runs the pipeline on @location; with @left batches until they are all
 * submitted (plus 1 s), else for @seconds. Fills @stats per target over the
 * window (or the whole PLAYING time). */
static gboolean
run_pipeline (const gchar * location, gboolean left, gdouble seconds,
    Stats * stats, gchar ** names, guint * n_stats, gdouble * window_s,
    gint * submitted)
{
  g_autofree gchar *desc = g_strdup_printf
      ("audiotestsrc is-live=true samplesperbuffer=480 "
      "! audio/x-raw,format=S16LE,rate=48000,channels=2 ! rd. "
      "videotestsrc is-live=true "
      "! video/x-raw,width=320,height=240,framerate=10/1 ! jpegenc ! rd. "
      "resembledetectsink name=rd location=%s api-url=%s api-token=%s "
      "max-in-flight=4 segment-duration=2000000000 max-files=10 "
      "fetch-results=false keep-files=false wait-on-eos=false "
      "poll-interval=1000000000 upload-mode=%s",
      location, api_url, token, upload_mode);
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  GstElement *sink;
  GstBus *bus;
  Run run = { 0 };
  GstClockTime from, to;
  guint i;

  if (pipeline == NULL) {
    g_printerr ("%s\n", error->message);
    return FALSE;
  }
  run.loop = g_main_loop_new (NULL, FALSE);
  run.uploading = left;
  run.window_start = run.window_end = GST_CLOCK_TIME_NONE;
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "rd");
  bus = gst_element_get_bus (pipeline);
  gst_bus_set_sync_handler (bus, bus_sync, &run, NULL);
  gst_object_unref (bus);

  /* the element's pads are requested at parse time */
  targets_set (sink);
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    g_printerr ("the pipeline did not start\n");
    return FALSE;
  }
  gst_element_get_state (pipeline, NULL, NULL, 30 * GST_SECOND);
  run.playing = gst_util_get_timestamp ();
  if (left)
    g_timeout_add_seconds (300, quit_loop, run.loop);
  else
    g_timeout_add ((guint) (seconds * 1000), quit_loop, run.loop);
  if (!run.error)
    g_main_loop_run (run.loop);
  gst_element_set_state (pipeline, GST_STATE_NULL);

  if (left) {
    if (run.window_start == GST_CLOCK_TIME_NONE
        || run.window_end == GST_CLOCK_TIME_NONE) {
      g_printerr ("the left batches were not all uploaded (%d submitted, "
          "%d failed)\n", run.submitted, run.failed);
      from = run.playing;
      to = gst_util_get_timestamp ();
    } else {
      from = MAX (run.window_start, run.playing);
      to = run.window_end;
    }
  } else {
    from = run.playing;
    to = gst_util_get_timestamp ();
  }
  *window_s = (to - from) / 1e9;
  *submitted = run.submitted;
  for (i = 0; i < n_targets; i++) {
    if (g_getenv ("BENCH_STALL_DEBUG"))
      g_printerr ("target %s (upstream %s:%s): %u pushes in all\n",
          targets[i].name, GST_DEBUG_PAD_NAME (targets[i].pad), targets[i].n);
    stats[i] = target_stats (&targets[i], from, to);
    names[i] = g_strdup (targets[i].name);
  }
  *n_stats = n_targets;
  targets_clear ();
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  g_main_loop_unref (run.loop);
  return !run.error;
}

static void
print_stats (const gchar * phase, const gchar * pad, const Stats * s)
{
  g_print ("  %-22s %-10s %7u %9.3f %9.3f %9.3f %6u %6u %6u   %u/%u\n",
      phase, pad, s->n, s->median / 1e6, s->p99 / 1e6, s->max / 1e6,
      s->over_1ms, s->over_5ms, s->over_1ms_preempted, s->max_waits,
      s->max_preempted);
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
        "Where the spools go (required, removed by the caller)", "DIR"},
    {"batches", 'b', 0, G_OPTION_ARG_INT, &n_batches,
        "Left batches to upload (4)", "N"},
    {"batch-mb", 's', 0, G_OPTION_ARG_INT, &batch_mb,
        "Size of each, MB (200)", "MB"},
    {"files", 'n', 0, G_OPTION_ARG_INT, &files_per_batch,
        "Files per left batch (10)", "N"},
    {"min-seconds", 0, 0, G_OPTION_ARG_INT, &min_seconds,
        "Shortest baseline run (3)", "S"},
    {"upload-mode", 0, 0, G_OPTION_ARG_STRING, &upload_mode,
        "files or zip (files)", "MODE"},
    {NULL}
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- chain stalls");
  g_autoptr (GError) error = NULL;
  g_autofree gchar *loaded = NULL, *idle = NULL;
  Stats up[MAX_TARGETS] = { 0 }, base[MAX_TARGETS] = { 0 };
  gchar *up_names[MAX_TARGETS] = { 0 }, *base_names[MAX_TARGETS] = { 0 };
  guint n_up = 0, n_base = 0, i;
  gdouble up_s = 0, base_s = 0;
  gint submitted = 0, base_submitted = 0;
  GstClockTime max_up = 0, max_base = 0;
  GstTracer *tracer;

  gst_init (&argc, &argv);
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  if (api_url == NULL || dir == NULL || n_batches < 1 || batch_mb < 1
      || files_per_batch < 1 || files_per_batch > RD_BATCH_MAX_FILES
      || batch_mb > 500) {
    g_printerr ("--api-url and --dir are required; --batch-mb 1..500, "
        "--files 1..50\n");
    return 2;
  }
  if (token == NULL)
    token = g_strdup ("bench-token");
  if (upload_mode == NULL)
    upload_mode = g_strdup ("files");
  tracer = g_object_new (bench_chain_tracer_get_type (), NULL);

  loaded = g_build_filename (dir, "uploading", NULL);
  idle = g_build_filename (dir, "idle", NULL);
  if (!leave_batches (loaded, &error)) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  if (!run_pipeline (loaded, TRUE, 0, up, up_names, &n_up, &up_s, &submitted))
    return 1;
  if (!run_pipeline (idle, FALSE, MAX (up_s, min_seconds), base, base_names,
          &n_base, &base_s, &base_submitted))
    return 1;

  g_print ("bench-stall: %d left batches of %d MB (%d files each, %s mode) "
      "uploaded at the element's start, max-in-flight 4; live raw audio "
      "(10 ms buffers) and 10 JPEG/s\n", n_batches, batch_mb,
      files_per_batch, upload_mode);
  g_print ("time in the element per buffer (tracer: pad-push-pre to "
      "pad-push-post on the pad upstream of each of its sink pads), ms\n");
  g_print ("  >1ms pre: pushes over 1 ms during which the thread was "
      "preempted; max w/p: voluntary/involuntary context switches of the "
      "pushing thread during the longest push (waiting vs preempted)\n");
  g_print ("  %-22s %-10s %7s %9s %9s %9s %6s %6s %6s   %s\n", "phase", "pad",
      "buffers", "median", "p99", "max", ">1ms", ">5ms", ">1ms", "max");
  g_print ("  %-22s %-10s %7s %9s %9s %9s %6s %6s %6s   %s\n", "", "",
      "", "", "", "", "", "", "pre", "w/p");
  for (i = 0; i < n_up; i++) {
    print_stats ("uploading", up_names[i], &up[i]);
    max_up = MAX (max_up, up[i].max);
  }
  for (i = 0; i < n_base; i++) {
    print_stats ("no upload (baseline)", base_names[i], &base[i]);
    max_base = MAX (max_base, base[i].max);
  }
  g_print ("  uploading window %.2f s (first progress to the last 202; %d of "
      "%d batches submitted); baseline %.2f s\n", up_s, submitted, n_batches,
      base_s);
  g_print ("RESULT max_ms=%.3f base_max_ms=%.3f window_s=%.3f base_s=%.3f "
      "submitted=%d batches=%d batch_mb=%d", max_up / 1e6, max_base / 1e6,
      up_s, base_s, submitted, n_batches, batch_mb);
  for (i = 0; i < n_up; i++)
    g_print (" %s_max_ms=%.3f %s_p99_ms=%.3f %s_n=%u %s_max_waits=%u "
        "%s_max_preempted=%u", up_names[i], up[i].max / 1e6, up_names[i],
        up[i].p99 / 1e6, up_names[i], up[i].n, up_names[i], up[i].max_waits,
        up_names[i], up[i].max_preempted);
  g_print ("\n");
  for (i = 0; i < MAX_TARGETS; i++) {
    g_free (up_names[i]);
    g_free (base_names[i]);
  }
  gst_object_unref (tracer);
  return submitted == n_batches ? 0 : 1;
}
