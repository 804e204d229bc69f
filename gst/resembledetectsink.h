/* The resembledetectsink element (a GstBin): public type and registration. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_RESEMBLE_DETECT_SINK (gst_resemble_detect_sink_get_type ())
G_DECLARE_FINAL_TYPE (GstResembleDetectSink, gst_resemble_detect_sink,
    GST, RESEMBLE_DETECT_SINK, GstBin)

GST_ELEMENT_REGISTER_DECLARE (resembledetectsink);

G_END_DECLS
