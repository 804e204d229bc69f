/* The real service, only when asked: with RESEMBLE_LIVE_TOKEN set (and
 * RESEMBLE_LIVE_API_URL to aim elsewhere than the production default), one
 * snapshot and one short audio segment go to the API, and every message
 * that comes back must have the shape the element reference documents.
 * Without the token the program exits 77: meson counts it as skipped.
 * Nothing else in the test suite ever leaves loopback. */
#include <string.h>
#include <gst/check/gstcheck.h>

#include "rd-check.h"
#include "rd-test-utils.h"

GST_START_TEST (test_live_service_gives_documented_verdicts)
{
  const gchar *token = g_getenv ("RESEMBLE_LIVE_TOKEN");
  const gchar *url = g_getenv ("RESEMBLE_LIVE_API_URL");
  g_autoptr (RdCheckContract) contract =
      rd_check_contract_read (DOCS_DIR "/resembledetectsink.md");
  g_autofree gchar *dir = rd_test_make_tmp_dir ("rd-live-XXXXXX");
  g_autofree gchar *desc = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GstBus) bus = NULL;
  GstElement *pipeline, *sink;
  guint results = 0, done = 0;
  gboolean eos = FALSE;

  desc = g_strdup_printf ("videotestsrc num-buffers=1 ! "
      "video/x-raw,width=320,height=240 ! jpegenc ! sink.image_0 "
      "audiotestsrc num-buffers=50 samplesperbuffer=1600 ! "
      "audio/x-raw,rate=16000,channels=1 ! audioconvert ! sink.audio_0 "
      "resembledetectsink name=sink location=%s api-url=%s "
      "poll-interval=5000000000 poll-timeout=600000000000", dir,
      url ? url : "https://app.resemble.ai/api/v2");
  pipeline = gst_parse_launch (desc, &error);
  fail_unless (pipeline != NULL, "%s", error ? error->message : "");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_object_set (sink, "api-token", token, NULL);
  gst_object_unref (sink);
  bus = gst_element_get_bus (pipeline);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  while (!eos) {
    g_autoptr (GstMessage) msg = gst_bus_timed_pop (bus, 700 * GST_SECOND);
    const GstStructure *s;

    fail_unless (msg != NULL, "no answer from the live service in 700 s");
    s = gst_message_get_structure (msg);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      g_autoptr (GError) gerror = NULL;
      gst_message_parse_error (msg, &gerror, NULL);
      fail ("live service: %s", gerror->message);
    }
    eos = GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS;
    if (s == NULL || (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT
            && GST_MESSAGE_TYPE (msg) != GST_MESSAGE_PROGRESS)
        || GST_MESSAGE_SRC (msg) != GST_OBJECT_CAST (sink))
      continue;
    rd_check_contract_assert (contract, s);
    fail_if (gst_structure_has_name (s, "resemble-detect-batch-error"),
        "live batch error: %s", gst_structure_get_string (s, "reason"));
    if (gst_structure_has_name (s, "resemble-detect-result")) {
      gdouble score = -2;
      const gchar *media = gst_structure_get_string (s, "media-type");

      fail_unless (gst_structure_get_double (s, "score", &score));
      fail_unless (score == -1 || (score >= 0 && score <= 1), "score %f",
          score);
      fail_unless (g_strcmp0 (media, "image") == 0
          || g_strcmp0 (media, "audio") == 0, "media-type %s", media);
      results++;
    }
    done += gst_structure_has_name (s, "resemble-detect-batch-done");
  }
  fail_unless_equals_int (done, 1);
  fail_unless_equals_int (results, 2);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  rd_test_remove_tree (dir);
}

GST_END_TEST;

static Suite *
live_suite (void)
{
  Suite *s = suite_create ("live");
  TCase *tc = tcase_create ("live");

  tcase_set_timeout (tc, 900);
  tcase_add_test (tc, test_live_service_gives_documented_verdicts);
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  const gchar *token = g_getenv ("RESEMBLE_LIVE_TOKEN");

  if (token == NULL || *token == '\0') {
    g_print ("SKIP: the live test runs only with RESEMBLE_LIVE_TOKEN set\n");
    return 77;
  }
  gst_check_init (&argc, &argv);
  return rd_check_main (live_suite (), NULL);
}
