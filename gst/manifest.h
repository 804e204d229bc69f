/* manifest.json of a batch: written atomically (temp file, fsync, rename,
 * mode 0600) before each state's network I/O, and read back on restart. */
#pragma once

#include "batch.h"

G_BEGIN_DECLS

#define RD_MANIFEST_NAME "manifest.json"

gboolean rd_manifest_write (const RdBatch * batch, GError ** error);
/* Reads {dir}/manifest.json. The batch's dir is @dir. */
RdBatch *rd_manifest_read (const gchar * dir, GError ** error);
gchar *rd_manifest_path (const RdBatch * batch);

G_END_DECLS
