/* A multipart/form-data request body (RFC 7578) read straight from disk: the
 * parts are described up front, their exact total length is known before the
 * first byte is sent, and file bodies are only opened and read as the HTTP
 * client pulls them, so memory does not grow with the size of a batch. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define RD_TYPE_MULTIPART_STREAM (rd_multipart_stream_get_type ())
G_DECLARE_FINAL_TYPE (RdMultipartStream, rd_multipart_stream, RD,
    MULTIPART_STREAM, GInputStream)

/* Synchronous reads go straight into the caller's buffer. An asynchronous
 * read fetches up to this much in a worker thread, and the asynchronous reads
 * after it are served from that block. */
#define RD_MULTIPART_STREAM_READ_AHEAD (256 * 1024)

/* A random boundary, re-drawn if a field value happens to contain it. */
RdMultipartStream *rd_multipart_stream_new (void);

/* A fixed boundary (1..70 characters of RFC 2046 "bchars", not ending in a
 * space). If a field value contains it, reading fails. */
RdMultipartStream *rd_multipart_stream_new_with_boundary (const gchar *
    boundary);

/* Parts are sent in the order they are added; adding is only allowed before
 * the first read. In names and filenames '"' and '\' are backslash-escaped
 * and CR/LF are sent as %0D/%0A, so no header line can be forged. */
void rd_multipart_stream_add_field (RdMultipartStream * self,
    const gchar * name, const gchar * value);

/* Stats @path now and records its size; the file is opened only when its part
 * is read, and that read fails (G_IO_ERROR_INVALID_DATA, naming the file) if
 * the size has changed since. @filename NULL: the basename of @path;
 * @content_type NULL: application/octet-stream. */
gboolean rd_multipart_stream_add_file (RdMultipartStream * self,
    const gchar * field_name, const gchar * path, const gchar * filename,
    const gchar * content_type, GError ** error);

/* A part whose body is exactly @length bytes of @body (e.g. an RdZipStream).
 * Takes a reference; @body is closed when its part is done or when this
 * stream is closed. Reading fails if @body is shorter or longer. */
void rd_multipart_stream_add_stream (RdMultipartStream * self,
    const gchar * field_name, const gchar * filename,
    const gchar * content_type, GInputStream * body, goffset length);

/* The exact number of bytes the stream produces (for Content-Length). */
goffset rd_multipart_stream_get_length (RdMultipartStream * self);

/* "multipart/form-data; boundary=...". Valid until the next add_field. */
const gchar *rd_multipart_stream_get_content_type (RdMultipartStream * self);

const gchar *rd_multipart_stream_get_boundary (RdMultipartStream * self);

/* Bytes handed out by read so far; safe to call from any thread (progress). */
goffset rd_multipart_stream_get_bytes_read (RdMultipartStream * self);

G_END_DECLS
