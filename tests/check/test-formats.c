/* Every format the pad templates advertise, end to end: a real encoder
 * into resembledetectsink, files that play, the extension the API expects,
 * and the media type that the API (here the emulator, which goes by the
 * extension as the API does) gives back in each verdict. */
#include <string.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>

#include "batch.h"
#include "emulator.h"
#include "manifest.h"
#include "rd-check.h"
#include "rd-test-utils.h"

#define TOKEN "formats-token-2b9d"

static RdEmulator *emulator;
static gchar *spool;

typedef struct
{
  const gchar *name;
  const gchar *elements;        /* needed; missing: SKIP (CI: failure) */
  const gchar *source;          /* up to the sink's pad */
  const gchar *pad;
  const gchar *extension;
  const gchar *media_type;      /* in the API's results */
} FormatCase;

#define AUDIO(enc) "audiotestsrc num-buffers=150 samplesperbuffer=480 ! " \
  "audio/x-raw,rate=48000,channels=1 ! audioconvert ! " enc
#define VIDEO(enc) "videotestsrc num-buffers=20 ! video/x-raw,format=I420," \
  "width=64,height=48,framerate=10/1 ! " enc
#define IMAGE(enc) "videotestsrc num-buffers=2 ! video/x-raw,width=64," \
  "height=48,framerate=1/1 ! videoconvert ! " enc

static const FormatCase format_cases[] = {
  {"raw", "wavparse", AUDIO ("identity"), "audio_0", "wav", "audio"},
  {"mp3", "lamemp3enc mpegaudioparse", AUDIO ("lamemp3enc"), "audio_0",
      "mp3", "audio"},
  {"aac", "avenc_aac avdec_aac", AUDIO ("avenc_aac"), "audio_0", "m4a",
      "audio"},
  {"opus", "opusenc opusdec", AUDIO ("opusenc"), "audio_0", "ogg", "audio"},
  {"vorbis", "vorbisenc vorbisdec", AUDIO ("vorbisenc"), "audio_0", "ogg",
      "audio"},
  {"flac", "flacenc flacdec", AUDIO ("flacenc"), "audio_0", "flac", "audio"},
  {"h264", "x264enc avdec_h264", VIDEO ("x264enc speed-preset=ultrafast"),
      "video", "mp4", "video"},
  {"h265", "x265enc h265parse avdec_h265",
        VIDEO ("x265enc speed-preset=ultrafast ! h265parse"), "video", "mp4",
      "video"},
  {"vp8", "vp8enc vp8dec", VIDEO ("vp8enc deadline=1"), "video", "webm",
      "video"},
  {"vp9", "vp9enc vp9dec", VIDEO ("vp9enc deadline=1"), "video", "webm",
      "video"},
  {"av1", "av1enc av1parse av1dec", VIDEO ("av1enc cpu-used=8 ! av1parse"),
      "video", "webm", "video"},
  {"jpeg", "jpegenc jpegdec", IMAGE ("jpegenc"), "image_0", "jpg", "image"},
  {"png", "pngenc pngdec", IMAGE ("pngenc"), "image_0", "png", "image"},
  {"webp", "webpenc webpdec", IMAGE ("webpenc"), "image_0", "webp", "image"},
  /* no GIF encoder (nor parser) in GStreamer: a GIF file, typefound, which
   * is checked byte for byte instead of decoded */
  {"gif", "typefind", "filesrc location=%s/in.gif ! typefind", "image_0",
      "gif", "image"},
};

/* A 2x2 GIF89a: what a GIF snapshot source would hand over. */
static const guint8 tiny_gif[] = {
  0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x02, 0x00, 0x02, 0x00, 0x80, 0x00,
  0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0x2c, 0x00, 0x00, 0x00, 0x00,
  0x02, 0x00, 0x02, 0x00, 0x00, 0x02, 0x03, 0x44, 0x5e, 0x05, 0x00, 0x3b,
};

static void
setup (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *gif = NULL;

  emulator = rd_emulator_new ();
  rd_emulator_set_token (emulator, TOKEN);
  fail_unless (rd_emulator_start (emulator, "127.0.0.1", 0, &error), "%s",
      error ? error->message : "");
  spool = rd_test_make_tmp_dir ("rd-formats-XXXXXX");
  gif = rd_test_write_file (spool, "in.gif", (const gchar *) tiny_gif,
      sizeof (tiny_gif));
}

static void
teardown (void)
{
  g_clear_pointer (&emulator, rd_emulator_free);
  rd_test_remove_tree (spool);
  g_clear_pointer (&spool, g_free);
}

/* Runs @desc to EOS; returns the resemble-detect-result structures. */
static GPtrArray *
run_for_results (const gchar * desc)
{
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  g_autoptr (GstBus) bus = NULL;
  GPtrArray *results = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_structure_free);
  gboolean eos = FALSE;

  fail_unless (pipeline != NULL, "%s: %s", desc, error ? error->message : "");
  bus = gst_element_get_bus (pipeline);
  fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE);
  while (!eos) {
    g_autoptr (GstMessage) msg = gst_bus_timed_pop (bus, 120 * GST_SECOND);
    const GstStructure *s;

    fail_unless (msg != NULL, "%s: no EOS within 120 s", desc);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      g_autoptr (GError) err = NULL;
      gst_message_parse_error (msg, &err, NULL);
      gst_element_set_state (pipeline, GST_STATE_NULL);
      fail ("%s: %s", desc, err->message);
    }
    eos = GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS;
    s = gst_message_get_structure (msg);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ELEMENT
        && gst_structure_has_name (s, "resemble-detect-result"))
      g_ptr_array_add (results, gst_structure_copy (s));
  }
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  gst_object_unref (pipeline);
  return results;
}

static guint
decoded_buffers (const gchar * path)
{
  g_autofree gchar *desc = g_strdup_printf ("filesrc location=\"%s\" ! "
      "decodebin ! fakesink name=out signal-handoffs=false", path);
  g_autoptr (GError) error = NULL;
  g_autoptr (GstElement) pipeline = gst_parse_launch (desc, &error);
  g_autoptr (GstBus) bus = gst_element_get_bus (pipeline);
  g_autoptr (GstMessage) msg = NULL;
  g_autoptr (GstElement) out = gst_bin_get_by_name (GST_BIN (pipeline), "out");
  guint64 rendered = 0;

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS,
      "%s does not decode", path);
  {
    GstStructure *stats = NULL;
    g_object_get (out, "stats", &stats, NULL);
    gst_structure_get_uint64 (stats, "rendered", &rendered);
    gst_structure_free (stats);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  return rendered;
}

GST_START_TEST (test_every_format_plays_and_reaches_the_api_as_its_type)
{
  const FormatCase *c = &format_cases[__i__];
  g_autofree gchar *source = g_strdup_printf (c->source, spool);
  g_autofree gchar *location = g_build_filename (spool, c->name, NULL);
  g_autofree gchar *suffix = g_strconcat (".", c->extension, NULL);
  g_autofree gchar *desc = NULL;
  g_autoptr (GPtrArray) results = NULL;
  g_autoptr (RdBatch) batch = NULL;
  g_autofree gchar *batch_dir = NULL;

  if (!rd_check_have_elements (c->elements))
    return;
  desc = g_strdup_printf ("%s ! s.%s resembledetectsink name=s api-url=%s "
      "api-token=" TOKEN " location=%s keep-files=true poll-interval="
      "1000000000 segment-duration=1000000000", source, c->pad,
      rd_emulator_get_base_url (emulator), location);
  results = run_for_results (desc);
  fail_unless (results->len > 0, "%s: no verdict", c->name);

  batch_dir = g_build_filename (location, "batch-000001", NULL);
  batch = rd_manifest_read (batch_dir, NULL);
  fail_unless (batch != NULL);
  fail_unless_equals_int (batch->files->len, results->len);
  for (guint i = 0; i < results->len; i++) {
    const GstStructure *s = results->pdata[i];
    const gchar *file = gst_structure_get_string (s, "file");

    fail_unless (file && g_str_has_suffix (file, suffix), "%s: %s", c->name,
        file);
    fail_unless_equals_string (gst_structure_get_string (s, "media-type"),
        c->media_type);
    if (g_str_equal (c->name, "gif")) {
      g_autofree gchar *contents = NULL;
      gsize length = 0;

      fail_unless (g_file_get_contents (file, &contents, &length, NULL));
      fail_unless (length == sizeof (tiny_gif)
          && memcmp (contents, tiny_gif, length) == 0, "%s", file);
    } else {
      fail_unless (decoded_buffers (file) > 0, "%s decodes to nothing", file);
    }
  }
}

GST_END_TEST;

static Suite *
formats_suite (void)
{
  Suite *s = suite_create ("formats");
  TCase *tc = tcase_create ("end-to-end");

  tcase_set_timeout (tc, 300);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_loop_test (tc,
      test_every_format_plays_and_reaches_the_api_as_its_type, 0,
      G_N_ELEMENTS (format_cases));
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  const gchar *needed[G_N_ELEMENTS (format_cases) + 1] = { NULL, };

  gst_check_init (&argc, &argv);
  for (guint i = 0; i < G_N_ELEMENTS (format_cases); i++)
    needed[i] = format_cases[i].elements;
  return rd_check_main (formats_suite (), needed);
}
