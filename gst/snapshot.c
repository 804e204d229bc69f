/* Snapshot pads (see snapshot.h). The appsink neither syncs nor prerolls:
 * the element's own preroll gate stands in front of it. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/app/gstappsink.h>

#include "snapshot.h"

typedef struct
{
  const gchar *name;
  RdSnapshotCallbacks callbacks;
  gpointer user_data;
} Snapshot;

static const gchar *
extension_for_image_caps (const GstCaps * caps)
{
  const GstStructure *s = gst_caps_get_structure (caps, 0);

  if (gst_structure_has_name (s, "image/jpeg"))
    return "jpg";
  if (gst_structure_has_name (s, "image/png"))
    return "png";
  if (gst_structure_has_name (s, "image/gif"))
    return "gif";
  if (gst_structure_has_name (s, "image/webp"))
    return "webp";
  return NULL;
}

static GstFlowReturn
snapshot_new_sample (GstAppSink * appsink, gpointer user_data)
{
  Snapshot *snapshot = user_data;
  g_autoptr (GstSample) sample = gst_app_sink_pull_sample (appsink);
  g_autofree gchar *basename = NULL;
  g_autoptr (GError) error = NULL;
  RdMediaFile file = { NULL, };
  const GstSegment *segment;
  GstBuffer *buffer;
  GstCaps *caps;
  GstMapInfo map;
  gboolean ok;

  if (sample == NULL)
    return GST_FLOW_EOS;
  buffer = gst_sample_get_buffer (sample);
  caps = gst_sample_get_caps (sample);
  segment = gst_sample_get_segment (sample);
  file.extension = caps ? extension_for_image_caps (caps) : NULL;
  if (buffer == NULL || file.extension == NULL) {
    g_autofree gchar *debug = g_strdup_printf ("caps: %" GST_PTR_FORMAT, caps);
    g_autoptr (GError) format = g_error_new (GST_STREAM_ERROR,
        GST_STREAM_ERROR_FORMAT, "Snapshot without image caps.");
    snapshot->callbacks.error (format, debug, snapshot->user_data);
    return GST_FLOW_ERROR;
  }
  file.prefix = snapshot->name;
  file.media_type = RD_MEDIA_TYPE_IMAGE;
  file.start = GST_CLOCK_TIME_NONE;
  file.duration = GST_BUFFER_DURATION (buffer);
  if (segment && segment->format == GST_FORMAT_TIME
      && GST_BUFFER_PTS_IS_VALID (buffer))
    file.start = gst_segment_to_running_time (segment, GST_FORMAT_TIME,
        GST_BUFFER_PTS (buffer));

  basename = g_strdup_printf ("%s.%s", snapshot->name, file.extension);
  file.path = snapshot->callbacks.location (basename, snapshot->user_data);
  if (file.path == NULL)
    return GST_FLOW_FLUSHING;
  if (!gst_buffer_map (buffer, &map, GST_MAP_READ)) {
    g_free (file.path);
    return GST_FLOW_ERROR;
  }
  ok = g_file_set_contents_full (file.path, (const gchar *) map.data,
      map.size, G_FILE_SET_CONTENTS_NONE, 0600, &error);
  gst_buffer_unmap (buffer, &map);
  if (!ok) {
    /* RESOURCE errors chosen from errno, as multifilesink does */
    g_autoptr (GError) write = g_error_new (GST_RESOURCE_ERROR,
        g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOSPC) ?
        GST_RESOURCE_ERROR_NO_SPACE_LEFT : GST_RESOURCE_ERROR_WRITE,
        "Could not write \"%s\".", file.path);
    snapshot->callbacks.error (write, error->message, snapshot->user_data);
    g_free (file.path);
    return GST_FLOW_ERROR;
  }
  snapshot->callbacks.closed (&file, snapshot->user_data);
  g_free (file.path);
  return GST_FLOW_OK;
}

GstElement *
rd_snapshot_sink_new (const gchar * name,
    const RdSnapshotCallbacks * callbacks, gpointer user_data)
{
  GstAppSinkCallbacks appsink_callbacks = { NULL, NULL, snapshot_new_sample };
  GstElement *appsink = gst_element_factory_make ("appsink", NULL);
  Snapshot *snapshot;

  if (appsink == NULL)
    return NULL;
  snapshot = g_new0 (Snapshot, 1);
  snapshot->name = name;
  snapshot->callbacks = *callbacks;
  snapshot->user_data = user_data;
  g_object_set (appsink, "sync", FALSE, "async", FALSE, "max-buffers", 1,
      "emit-signals", FALSE, NULL);
  gst_app_sink_set_callbacks (GST_APP_SINK (appsink), &appsink_callbacks,
      snapshot, g_free);
  return appsink;
}
