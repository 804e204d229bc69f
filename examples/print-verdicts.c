/* print-verdicts: runs a gst-launch style pipeline holding a
 * resembledetectsink and prints what the element says on the bus, one line
 * per batch event and per file verdict. The README's demo uses it:
 *
 *   print-verdicts "audiotestsrc num-buffers=300 ! audioconvert ! \
 *       resembledetectsink api-url=http://127.0.0.1:8080/api/v2"
 */
#include <gst/gst.h>

static void
print_result (const GstStructure * s)
{
  const gchar *file = gst_structure_get_string (s, "file");
  const gchar *label = gst_structure_get_string (s, "label");
  const gchar *status = gst_structure_get_string (s, "status");
  const gchar *media = gst_structure_get_string (s, "media-type");
  guint64 running_time = GST_CLOCK_TIME_NONE, duration = GST_CLOCK_TIME_NONE;
  gdouble score = -1;
  gboolean emulated = FALSE;

  gst_structure_get_uint64 (s, "running-time", &running_time);
  gst_structure_get_uint64 (s, "duration", &duration);
  gst_structure_get_double (s, "score", &score);
  gst_structure_get_boolean (s, "emulated", &emulated);
  g_print ("  verdict  %-5s %" GST_TIME_FORMAT " +%" GST_TIME_FORMAT
      "  %-9s label=%-12s score=%.3f%s  %s\n", media ? media : "?",
      GST_TIME_ARGS (running_time), GST_TIME_ARGS (duration),
      status ? status : "?", label ? label : "-", score,
      emulated ? " (emulated)" : "", file ? file : "");
}

static gboolean
on_message (GstBus * bus, GstMessage * msg, gpointer user_data)
{
  GMainLoop *loop = user_data;
  const GstStructure *s = gst_message_get_structure (msg);

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ELEMENT:{
      const gchar *name = s ? gst_structure_get_name (s) : "";
      guint index = 0, total = 0, completed = 0, failed = 0;
      const gchar *uuid = s ? gst_structure_get_string (s, "uuid") : NULL;

      if (!g_str_has_prefix (name, "resemble-detect-"))
        break;
      gst_structure_get_uint (s, "index", &index);
      gst_structure_get_uint (s, "total-files", &total);
      gst_structure_get_uint (s, "completed-count", &completed);
      gst_structure_get_uint (s, "failed-count", &failed);
      if (g_str_equal (name, "resemble-detect-batch-closed")) {
        g_print ("batch %u closed: %u files\n", index, total);
      } else if (g_str_equal (name, "resemble-detect-batch-submitted")) {
        g_print ("batch %u submitted: uuid %s\n", index, uuid);
      } else if (g_str_equal (name, "resemble-detect-batch-status")) {
        g_print ("batch %u %s: %u completed, %u failed\n", index,
            gst_structure_get_string (s, "status"), completed, failed);
      } else if (g_str_equal (name, "resemble-detect-result")) {
        print_result (s);
      } else if (g_str_equal (name, "resemble-detect-batch-done")) {
        g_print ("batch %u done: %s, %u of %u completed, %u failed\n", index,
            gst_structure_get_string (s, "status"), completed, total, failed);
      } else if (g_str_equal (name, "resemble-detect-batch-error")) {
        guint http = 0;
        gst_structure_get_uint (s, "http-status", &http);
        g_print ("batch %u error (HTTP %u): %s\n", index, http,
            gst_structure_get_string (s, "reason"));
      } else {
        g_autofree gchar *text = gst_structure_to_string (s);
        g_print ("%s\n", text);
      }
      break;
    }
    case GST_MESSAGE_ERROR:{
      g_autoptr (GError) error = NULL;
      g_autofree gchar *debug = NULL;

      gst_message_parse_error (msg, &error, &debug);
      g_printerr ("error from %s: %s\n", GST_OBJECT_NAME (msg->src),
          error->message);
      g_main_loop_quit (loop);
      break;
    }
    case GST_MESSAGE_EOS:
      g_print ("EOS: every batch has ended\n");
      g_main_loop_quit (loop);
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  g_autoptr (GstBus) bus = NULL;
  GstElement *pipeline;

  gst_init (&argc, &argv);
  if (argc < 2) {
    g_printerr ("usage: %s PIPELINE-DESCRIPTION\n", argv[0]);
    return 2;
  }
  pipeline = gst_parse_launchv ((const gchar **) &argv[1], &error);
  if (pipeline == NULL) {
    g_printerr ("bad pipeline: %s\n", error->message);
    return 2;
  }
  loop = g_main_loop_new (NULL, FALSE);
  bus = gst_element_get_bus (pipeline);
  gst_bus_add_watch (bus, on_message, loop);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  g_main_loop_run (loop);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_bus_remove_watch (bus);
  gst_object_unref (pipeline);
  return 0;
}
