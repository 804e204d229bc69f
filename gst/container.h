/* The containers segment files are written in: the muxer that writes each
 * one inside splitmuxsink, the caps it takes, the extension the API sees (the
 * API tells audio from video by the extension alone), and what `auto` picks.
 * Knows element factories, not pipelines: the segmenter asks, it answers. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

typedef enum
{
  GST_RESEMBLE_DETECT_CONTAINER_AUTO,
  GST_RESEMBLE_DETECT_CONTAINER_MP4,
  GST_RESEMBLE_DETECT_CONTAINER_MOV,
  GST_RESEMBLE_DETECT_CONTAINER_MKV,
  GST_RESEMBLE_DETECT_CONTAINER_WEBM,
  GST_RESEMBLE_DETECT_CONTAINER_M4A,
  GST_RESEMBLE_DETECT_CONTAINER_MP3,
  GST_RESEMBLE_DETECT_CONTAINER_WAV,
  GST_RESEMBLE_DETECT_CONTAINER_OGG,
  GST_RESEMBLE_DETECT_CONTAINER_FLAC,
} GstResembleDetectContainer;

#define GST_TYPE_RESEMBLE_DETECT_CONTAINER (gst_resemble_detect_container_get_type ())
GType gst_resemble_detect_container_get_type (void);

/* "mp4", "m4a", ... without the dot. */
const gchar *rd_container_extension (GstResembleDetectContainer container);

/* Picks the container of one segmenter whose streams have @caps (@n of
 * them, the video stream first if there is one; @names are their pads, for
 * errors). @requested is the `container` property: itself when it can hold
 * every stream, else a GST_STREAM_ERROR_WRONG_TYPE error that says why. For
 * auto: the container of the first stream's caps, or Matroska when that one
 * cannot hold the others. Audio without video always gets an audio
 * extension: in a video container the API would analyse it as video. */
gboolean rd_container_choose (GstResembleDetectContainer requested, guint n,
    GstCaps * const *caps, const gchar * const *names,
    GstResembleDetectContainer * chosen, GError ** error);

/* A new muxer for splitmuxsink's "muxer" property, or a
 * GST_CORE_ERROR_MISSING_PLUGIN error naming the missing element. */
GstElement *rd_container_make_muxer (GstResembleDetectContainer container,
    GError ** error);

G_END_DECLS
