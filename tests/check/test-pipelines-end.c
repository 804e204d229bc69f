/* Every pipeline ends. Real decoders and encoders into resembledetectsink,
 * submitting to the API emulator, run many times each in the way
 * gst-launch-1.0 runs them (PAUSED, then PLAYING once the pipeline says it
 * is PAUSED) and the way applications often do (PLAYING at once), with the
 * order of the sink's pads, the timing of the branches and wait-on-eos
 * varied from run to run. One run that does not reach EOS within its bound
 * fails the test.
 *
 * This is the regression test of a race that hung about one run in two:
 * the element did not preroll, so the pipeline committed PAUSED from a busy
 * streaming thread while gst-launch went on to PLAYING, and GstBin lost the
 * "posted PLAYING" flag that it needs to forward EOS. */
#include <string.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>

#include "emulator.h"
#include "rd-check.h"
#include "rd-test-utils.h"

#define TOKEN "end-token-7c1e"
#define RUNS 20
/* generous: a run takes about a second; a hang never ends */
#define RUN_BOUND (30 * GST_SECOND)

static RdEmulator *emulator;
static gchar *inputs;           /* made once: speech.wav, clip.mp4 */

typedef struct
{
  const gchar *name;
  const gchar *elements;
  /* @INPUTS@: the input directory, @DELAY@: an element that slows the
   * branch; the sink is "s", linked last */
  const gchar *audio_first;
  const gchar *video_first;     /* NULL: one pad only */
} Shape;

static const Shape shapes[] = {
  /* no demuxer, no queue: the snapshot pad's own thread commits PAUSED */
  {"jpeg-snapshots-only", "jpegenc",
      "videotestsrc num-buffers=6 ! video/x-raw,width=64,height=48 ! "
        "@DELAY@ jpegenc ! s.image_0", NULL},
  {"opus-audio-only", "decodebin opusenc wavparse",
      "filesrc location=@INPUTS@/speech.wav ! decodebin ! audioconvert ! "
        "audioresample ! @DELAY@ opusenc ! s.audio_0", NULL},
  {"h264-aac-from-uridecodebin",
        "uridecodebin x264enc avenc_aac qtdemux avdec_h264",
        "uridecodebin uri=file://@INPUTS@/clip.mp4 name=d "
        "d. ! queue ! audioconvert ! audioresample ! @DELAY@ avenc_aac ! "
        "s.audio_0 d. ! queue ! videoconvert ! x264enc tune=zerolatency "
        "speed-preset=ultrafast ! s.video",
      "uridecodebin uri=file://@INPUTS@/clip.mp4 name=d "
        "d. ! queue ! videoconvert ! x264enc tune=zerolatency "
        "speed-preset=ultrafast ! s.video d. ! queue ! audioconvert ! "
        "audioresample ! @DELAY@ avenc_aac ! s.audio_0"},
  {"snapshots-and-mp3", "uridecodebin jpegenc lamemp3enc videorate",
        "uridecodebin uri=file://@INPUTS@/clip.mp4 name=d "
        "d. ! queue ! audioconvert ! @DELAY@ lamemp3enc ! s.audio_0 "
        "d. ! queue ! videoconvert ! videorate ! video/x-raw,framerate=1/1 ! "
        "jpegenc ! s.image_0",
      "uridecodebin uri=file://@INPUTS@/clip.mp4 name=d "
        "d. ! queue ! videoconvert ! videorate ! video/x-raw,framerate=1/1 ! "
        "jpegenc ! s.image_0 d. ! queue ! audioconvert ! @DELAY@ lamemp3enc ! "
        "s.audio_0"},
};

static gchar *
fill_in (const gchar * shape, const gchar * delay)
{
  g_autoptr (GString) desc = g_string_new (shape);

  g_string_replace (desc, "@INPUTS@", inputs ? inputs : "", 0);
  g_string_replace (desc, "@DELAY@", delay, 0);
  return g_string_free (g_steal_pointer (&desc), FALSE);
}

static void
make_inputs (void)
{
  const gchar *descs[] = {
    "audiotestsrc wave=ticks num-buffers=120 samplesperbuffer=1024 ! "
        "audio/x-raw,rate=22050,channels=1 ! wavenc ! filesink "
        "location=%s/speech.wav",
    "videotestsrc num-buffers=75 ! video/x-raw,format=I420,width=160,"
        "height=120,framerate=25/1 ! x264enc speed-preset=ultrafast ! h264parse ! "
        "mp4mux name=m ! filesink location=%s/clip.mp4 "
        "audiotestsrc num-buffers=130 ! audio/x-raw,rate=44100,channels=1 ! "
        "audioconvert ! avenc_aac ! m.",
  };

  inputs = rd_test_make_tmp_dir ("rd-end-inputs-XXXXXX");
  for (guint i = 0; i < G_N_ELEMENTS (descs); i++) {
    g_autofree gchar *desc = g_strdup_printf (descs[i], inputs);
    g_autoptr (GError) error = NULL;
    g_autoptr (GstElement) pipeline = gst_parse_launch (desc, &error);
    g_autoptr (GstBus) bus = NULL;
    g_autoptr (GstMessage) msg = NULL;

    fail_unless (pipeline != NULL, "%s: %s", desc, error->message);
    bus = gst_element_get_bus (pipeline);
    gst_element_set_state (pipeline, GST_STATE_PLAYING);
    msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    fail_unless (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS,
        "making the input with %s failed", desc);
    gst_element_set_state (pipeline, GST_STATE_NULL);
  }
}

static void
setup (void)
{
  g_autoptr (GError) error = NULL;

  emulator = rd_emulator_new ();
  rd_emulator_set_token (emulator, TOKEN);
  fail_unless (rd_emulator_start (emulator, "127.0.0.1", 0, &error), "%s",
      error ? error->message : "");
  if (inputs == NULL && rd_check_have_elements ("x264enc avenc_aac mp4mux"))
    make_inputs ();
}

static void
teardown (void)
{
  g_clear_pointer (&emulator, rd_emulator_free);
}

typedef struct
{
  guint closed, done, errors;
  gboolean eos;
  gchar *error;
} Ending;

/* Runs @pipeline to its end, in @launch_style or not; FALSE when it did not
 * end within RUN_BOUND. */
static gboolean
run_to_the_end (GstElement * pipeline, gboolean launch_style, Ending * end)
{
  g_autoptr (GstBus) bus = gst_element_get_bus (pipeline);
  GstClockTime deadline = gst_util_get_timestamp () + RUN_BOUND;
  gboolean paused = !launch_style;

  fail_if (gst_element_set_state (pipeline, launch_style ? GST_STATE_PAUSED :
          GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE);
  while (!end->eos && end->error == NULL) {
    GstClockTime now = gst_util_get_timestamp ();
    g_autoptr (GstMessage) msg = NULL;
    const GstStructure *s;

    if (now >= deadline)
      return FALSE;
    msg = gst_bus_timed_pop (bus, deadline - now);
    if (msg == NULL)
      return FALSE;
    s = gst_message_get_structure (msg);
    switch (GST_MESSAGE_TYPE (msg)) {
      case GST_MESSAGE_EOS:
        end->eos = TRUE;
        break;
      case GST_MESSAGE_ERROR:{
        g_autoptr (GError) error = NULL;
        gst_message_parse_error (msg, &error, NULL);
        end->error = g_strdup (error->message);
        break;
      }
      case GST_MESSAGE_STATE_CHANGED:{
        GstState state;

        /* what gst-launch-1.0 does: PLAYING once the pipeline is PAUSED */
        gst_message_parse_state_changed (msg, NULL, &state, NULL);
        if (!paused && GST_MESSAGE_SRC (msg) == GST_OBJECT_CAST (pipeline)
            && state == GST_STATE_PAUSED) {
          paused = TRUE;
          gst_element_set_state (pipeline, GST_STATE_PLAYING);
        }
        break;
      }
      case GST_MESSAGE_ELEMENT:
        if (gst_structure_has_name (s, "resemble-detect-batch-closed"))
          end->closed++;
        else if (gst_structure_has_name (s, "resemble-detect-batch-done"))
          end->done++;
        else if (gst_structure_has_name (s, "resemble-detect-batch-error"))
          end->errors++;
        break;
      default:
        break;
    }
  }
  return TRUE;
}

GST_START_TEST (test_every_pipeline_shape_reaches_eos_every_time)
{
  const Shape *shape = &shapes[__i__];
  const guint sleeps[] = { 0, 300, 1000, 3000 };        /* µs per buffer */

  if (!rd_check_have_elements (shape->elements))
    return;
  for (guint run = 0; run < RUNS; run++) {
    g_autofree gchar *spool = rd_test_make_tmp_dir ("rd-end-XXXXXX");
    g_autofree gchar *delay = g_strdup_printf ("identity sleep-time=%u !",
        sleeps[run % G_N_ELEMENTS (sleeps)]);
    gboolean video_first = shape->video_first && run % 2 == 1;
    gboolean launch_style = run % 4 < 2;
    gboolean wait_on_eos = run % 3 != 2;
    g_autofree gchar *branches = NULL;
    g_autofree gchar *desc = NULL;
    g_autoptr (GError) error = NULL;
    GstElement *pipeline;
    Ending end = { 0, };
    gboolean ended;

    branches = fill_in (video_first ? shape->video_first : shape->audio_first,
        delay);
    desc = g_strdup_printf ("%s resembledetectsink name=s api-url=%s "
        "api-token=" TOKEN " location=%s segment-duration=1000000000 "
        "max-files=2 poll-interval=1000000000 wait-on-eos=%s", branches,
        rd_emulator_get_base_url (emulator), spool,
        wait_on_eos ? "true" : "false");
    pipeline = gst_parse_launch (desc, &error);
    fail_unless (pipeline != NULL, "%s: %s", desc, error ? error->message : "");
    ended = run_to_the_end (pipeline, launch_style, &end);
    /* stopped before any verdict, so that a failure leaves no thread */
    fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
    gst_object_unref (pipeline);
    fail_unless (ended, "%s, run %u (%s, %s first, wait-on-eos=%d): no EOS "
        "within %" GST_TIME_FORMAT, shape->name, run, launch_style ?
        "PAUSED then PLAYING" : "PLAYING at once", video_first ? "video" :
        "audio", wait_on_eos, GST_TIME_ARGS (RUN_BOUND));
    fail_unless (end.error == NULL, "%s, run %u: %s", shape->name, run,
        end.error);
    fail_unless (end.closed > 0, "%s, run %u: no batch", shape->name, run);
    /* held EOS: every closed batch ended before it */
    if (wait_on_eos)
      fail_unless_equals_int (end.done + end.errors, end.closed);
    g_free (end.error);
    rd_test_remove_tree (spool);
  }
}

GST_END_TEST;

static Suite *
pipelines_end_suite (void)
{
  Suite *s = suite_create ("pipelines-end");
  TCase *tc = tcase_create ("eos");

  /* RUNS runs of each shape, each bounded by RUN_BOUND */
  tcase_set_timeout (tc, 600);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_loop_test (tc, test_every_pipeline_shape_reaches_eos_every_time,
      0, G_N_ELEMENTS (shapes));
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  g_autoptr (GPtrArray) needed = g_ptr_array_new ();
  int status;

  gst_check_init (&argc, &argv);
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    g_ptr_array_add (needed, (gpointer) shapes[i].elements);
  g_ptr_array_add (needed, NULL);
  status = rd_check_main (pipelines_end_suite (),
      (const gchar * const *) needed->pdata);
  if (inputs)
    rd_test_remove_tree (inputs);
  g_free (inputs);
  return status;
}
