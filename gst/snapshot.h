/* The sink of an image pad: every buffer is one snapshot, written as it
 * comes into a file of the spool's incoming directory (.jpg, .png, .gif,
 * .webp from the caps). An appsink with callbacks; knows nothing of
 * batches. */
#pragma once

#include <gst/gst.h>
#include "media-file.h"

G_BEGIN_DECLS

typedef struct
{
  /* where a file named @basename goes; NULL: stopped, the snapshot is
   * dropped */
  gchar *(*location) (const gchar * basename, gpointer user_data);
  /* a snapshot file is complete */
  void (*closed) (const RdMediaFile * file, gpointer user_data);
  /* a snapshot could not be written (GST_RESOURCE_ERROR, or
   * GST_STREAM_ERROR_FORMAT for a buffer without image caps) */
  void (*error) (const GError * error, const gchar * debug,
      gpointer user_data);
} RdSnapshotCallbacks;

/* A new appsink for the pad @name (its files' prefix); @name and
 * @user_data must outlive it. */
GstElement *rd_snapshot_sink_new (const gchar * name,
    const RdSnapshotCallbacks * callbacks, gpointer user_data);

G_END_DECLS
