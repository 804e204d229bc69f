/* A complete media file, on its way from a segmenter or a snapshot pad
 * into the spool: where it is and what it covers of the pipeline's running
 * time. */
#pragma once

#include <gst/gst.h>
#include "batch.h"

G_BEGIN_DECLS

typedef struct
{
  gchar *path;                  /* in the spool's incoming directory */
  const gchar *prefix;          /* the pad's name */
  const gchar *extension;
  RdMediaType media_type;
  GstClockTime start;           /* running time, NONE when unknown */
  GstClockTime duration;
} RdMediaFile;

G_END_DECLS
