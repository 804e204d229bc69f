/* A .zip archive of files on disk (entries stored, not recompressed),
 * produced on demand as it is read: libarchive is fed one chunk of one file at
 * a time, so memory stays bounded whatever the archive's size, and its exact
 * size is known before the first byte is sent. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define RD_TYPE_ZIP_STREAM (rd_zip_stream_get_type ())
G_DECLARE_FINAL_TYPE (RdZipStream, rd_zip_stream, RD, ZIP_STREAM, GInputStream)

/* How much file data is fed to libarchive per step. The stream buffers one
 * step's output at a time: this much data, an entry header, or at the end
 * the central directory (about 100 bytes per entry). */
#define RD_ZIP_STREAM_CHUNK_SIZE (64 * 1024)

RdZipStream *rd_zip_stream_new (void);

/* Stats @path now and records its size; the file is opened only when its entry
 * is read, one file at a time, and that read fails (G_IO_ERROR_INVALID_DATA,
 * naming the file) if the size has changed since. @entry_name NULL: the
 * basename of @path. Entries are flat: a name with '/' is refused, and so is
 * a name already in the archive. Only allowed before the first read. */
gboolean rd_zip_stream_add_file (RdZipStream * self, const gchar * path,
    const gchar * entry_name, GError ** error);

/* Always write Zip64 records (libarchive adds them by itself where sizes
 * need them). Only allowed before the first read. */
void rd_zip_stream_set_force_zip64 (RdZipStream * self, gboolean force);

/* The exact size of the archive: a dry run through libarchive with the
 * recorded sizes, reading no file. Call after the last add_file; the result
 * is cached. */
goffset rd_zip_stream_get_length (RdZipStream * self, GError ** error);

/* The most bytes the stream has held in its output buffer at once (for tests
 * and diagnostics). */
gsize rd_zip_stream_get_peak_buffered (RdZipStream * self);

G_END_DECLS
