/* RdMultipartStream: the multipart/form-data body of a batch upload, produced
 * on demand. Only the part headers live in memory (one at a time); field
 * values are copied from their strings and file bodies are read from disk into
 * the caller's buffer (or, for asynchronous reads, into one read-ahead block
 * of fixed size), so a 500 MB batch costs no more memory than a small one.
 * The length is computed from the sizes recorded when the parts were
 * added, and every body is checked against that size while it is read, so the
 * stream can never send a body that disagrees with its Content-Length. */

#include "multipart-stream.h"

#include <stdatomic.h>
#include <string.h>

/* RFC 2046 allows at most 70 characters. */
#define MAX_BOUNDARY_LENGTH 70

typedef enum
{
  PART_FIELD,
  PART_FILE,
  PART_STREAM,
} PartKind;

typedef struct
{
  PartKind kind;
  gchar *name;
  gchar *filename;              /* NULL for fields */
  gchar *content_type;          /* NULL for fields */
  gchar *value;                 /* PART_FIELD */
  gchar *path;                  /* PART_FILE */
  GInputStream *body;           /* PART_STREAM */
  goffset length;               /* of the body */
} Part;

struct _RdMultipartStream
{
  GInputStream parent;

  gchar *boundary;
  gboolean random_boundary;
  gchar *content_type;
  GPtrArray *parts;             /* Part*, in sending order */
  gchar *conflicting_field;     /* a value holding a fixed boundary */

  /* Reading: the stream walks head(0) body(0) head(1) ... head(n), where a
   * head is the delimiter plus the part's headers and head(n) is the closing
   * delimiter. */
  gboolean started;
  gboolean finished;
  guint index;
  gboolean in_body;
  GString *head;
  gsize head_offset;
  goffset body_offset;
  GInputStream *file;           /* the open body of the current file part */
  GError *failure;              /* once a read failed, every read fails */
  guint8 *ahead;                /* read ahead by an asynchronous read */
  gsize ahead_length;
  gsize ahead_offset;

  _Atomic goffset bytes_read;
};

G_DEFINE_TYPE (RdMultipartStream, rd_multipart_stream, G_TYPE_INPUT_STREAM);

static void
part_free (Part * part)
{
  g_free (part->name);
  g_free (part->filename);
  g_free (part->content_type);
  g_free (part->value);
  g_free (part->path);
  g_clear_object (&part->body);
  g_free (part);
}

/* A quoted-string as libsoup and most servers parse it. CR and LF cannot be
 * escaped in a header, so they become %0D/%0A, as browsers send them. */
static void
append_quoted (GString * out, const gchar * text)
{
  const gchar *p;

  g_string_append_c (out, '"');
  for (p = text; *p != '\0'; p++) {
    switch (*p) {
      case '"':
      case '\\':
        g_string_append_c (out, '\\');
        g_string_append_c (out, *p);
        break;
      case '\r':
        g_string_append (out, "%0D");
        break;
      case '\n':
        g_string_append (out, "%0A");
        break;
      default:
        g_string_append_c (out, *p);
        break;
    }
  }
  g_string_append_c (out, '"');
}

/* A header value must stay on its line. */
static gchar *
sanitize_header_value (const gchar * value)
{
  gchar *copy = g_strdup (value);

  g_strdelimit (copy, "\r\n", ' ');
  return copy;
}

static gboolean
is_boundary_char (gchar c)
{
  return g_ascii_isalnum (c) || strchr ("'()+_,-./:=? ", c) != NULL;
}

static gboolean
is_valid_boundary (const gchar * boundary)
{
  gsize len = strlen (boundary);
  gsize i;

  if (len == 0 || len > MAX_BOUNDARY_LENGTH || boundary[len - 1] == ' ')
    return FALSE;
  for (i = 0; i < len; i++) {
    if (!is_boundary_char (boundary[i]))
      return FALSE;
  }
  return TRUE;
}

static void
update_content_type (RdMultipartStream * self)
{
  /* Boundary characters outside an HTTP token need the quoted form. */
  gboolean needs_quotes = strpbrk (self->boundary, "()<>@,;:/[]?= '") != NULL;

  g_free (self->content_type);
  self->content_type = g_strdup_printf ("multipart/form-data; boundary=%s%s%s",
      needs_quotes ? "\"" : "", self->boundary, needs_quotes ? "\"" : "");
}

static gchar *
random_boundary (void)
{
  return g_strdup_printf ("rd-%08x%08x%08x%08x", g_random_int (),
      g_random_int (), g_random_int (), g_random_int ());
}

static gboolean
boundary_in_values (RdMultipartStream * self, const gchar * boundary)
{
  guint i;

  for (i = 0; i < self->parts->len; i++) {
    Part *part = g_ptr_array_index (self->parts, i);

    if (part->kind == PART_FIELD && strstr (part->value, boundary) != NULL)
      return TRUE;
  }
  return FALSE;
}

/* head(index): the delimiter and headers of part @index, or the closing
 * delimiter when @index is the number of parts. The CRLF that ends the
 * previous body belongs to the delimiter (RFC 2046). */
static void
render_head (RdMultipartStream * self, guint index, GString * out)
{
  Part *part;

  g_string_truncate (out, 0);
  if (index > 0)
    g_string_append (out, "\r\n");
  g_string_append (out, "--");
  g_string_append (out, self->boundary);
  if (index == self->parts->len) {
    g_string_append (out, "--\r\n");
    return;
  }

  part = g_ptr_array_index (self->parts, index);
  g_string_append (out, "\r\nContent-Disposition: form-data; name=");
  append_quoted (out, part->name);
  if (part->filename != NULL) {
    g_string_append (out, "; filename=");
    append_quoted (out, part->filename);
  }
  g_string_append (out, "\r\n");
  if (part->content_type != NULL) {
    g_string_append (out, "Content-Type: ");
    g_string_append (out, part->content_type);
    g_string_append (out, "\r\n");
  }
  g_string_append (out, "\r\n");
}

static const gchar *
part_description (Part * part)
{
  if (part->kind == PART_FILE)
    return part->path;
  return part->filename != NULL ? part->filename : part->name;
}

static gboolean
open_file_body (RdMultipartStream * self, Part * part,
    GCancellable * cancellable, GError ** error)
{
  g_autoptr (GFile) file = g_file_new_for_path (part->path);
  g_autoptr (GFileInputStream) stream = NULL;
  g_autoptr (GFileInfo) info = NULL;
  goffset size;

  stream = g_file_read (file, cancellable, error);
  if (stream == NULL)
    return FALSE;

  /* Fail before sending any of the body rather than at its end. */
  info = g_file_input_stream_query_info (stream,
      G_FILE_ATTRIBUTE_STANDARD_SIZE, cancellable, error);
  if (info == NULL)
    return FALSE;
  size = g_file_info_get_size (info);
  if (size != part->length) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "File “%s” is %" G_GOFFSET_FORMAT " bytes, it was %"
        G_GOFFSET_FORMAT " when added to the upload", part->path, size,
        part->length);
    return FALSE;
  }

  self->file = G_INPUT_STREAM (g_steal_pointer (&stream));
  return TRUE;
}

/* The body must end exactly at its recorded length: one more byte means the
 * source grew while it was being sent. */
static gboolean
check_body_end (Part * part, GInputStream * source,
    GCancellable * cancellable, GError ** error)
{
  guint8 extra;
  gssize n;

  n = g_input_stream_read (source, &extra, 1, cancellable, error);
  if (n < 0)
    return FALSE;
  if (n > 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "“%s” grew past %" G_GOFFSET_FORMAT " bytes while it was uploaded",
        part_description (part), part->length);
    return FALSE;
  }
  return TRUE;
}

static void
next_part (RdMultipartStream * self)
{
  self->index++;
  self->in_body = FALSE;
  self->head_offset = 0;
  render_head (self, self->index, self->head);
}

/* Produces up to @count bytes of the current body, or finishes it. Returns the
 * number of bytes written to @out (0 when the body just ended), -1 on error. */
static gssize
read_body (RdMultipartStream * self, guint8 * out, gsize count,
    GCancellable * cancellable, GError ** error)
{
  Part *part = g_ptr_array_index (self->parts, self->index);
  goffset remaining = part->length - self->body_offset;
  GInputStream *source;
  gssize n;

  if (part->kind == PART_FIELD) {
    n = MIN ((goffset) count, remaining);
    memcpy (out, part->value + self->body_offset, n);
    self->body_offset += n;
    if (self->body_offset == part->length)
      next_part (self);
    return n;
  }

  if (part->kind == PART_FILE) {
    if (self->file == NULL && !open_file_body (self, part, cancellable, error))
      return -1;
    source = self->file;
  } else {
    source = part->body;
  }

  if (remaining == 0) {
    if (!check_body_end (part, source, cancellable, error))
      return -1;
    if (!g_input_stream_close (source, cancellable, error))
      return -1;
    g_clear_object (&self->file);
    next_part (self);
    return 0;
  }

  n = g_input_stream_read (source, out, MIN ((goffset) count, remaining),
      cancellable, error);
  if (n < 0)
    return -1;
  if (n == 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "“%s” ended after %" G_GOFFSET_FORMAT " of its %" G_GOFFSET_FORMAT
        " bytes while it was uploaded", part_description (part),
        self->body_offset, part->length);
    return -1;
  }
  self->body_offset += n;
  return n;
}

static gboolean
start_reading (RdMultipartStream * self, GError ** error)
{
  if (self->conflicting_field != NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "The value of field “%s” contains the multipart boundary",
        self->conflicting_field);
    return FALSE;
  }
  self->started = TRUE;
  self->index = 0;
  self->head_offset = 0;
  render_head (self, 0, self->head);
  return TRUE;
}

/* Fills @out with up to @count bytes of the body; returns fewer only at its
 * end. */
static gssize
produce (RdMultipartStream * self, guint8 * out, gsize count,
    GCancellable * cancellable, GError ** error)
{
  gsize done = 0;
  GError *local_error = NULL;

  if (self->failure != NULL) {
    g_propagate_error (error, g_error_copy (self->failure));
    return -1;
  }
  if (!self->started && !start_reading (self, &local_error))
    goto failed;

  while (done < count && !self->finished) {
    gssize n;

    if (self->in_body) {
      n = read_body (self, out + done, count - done, cancellable, &local_error);
      if (n < 0)
        goto failed;
    } else {
      n = MIN (count - done, self->head->len - self->head_offset);
      memcpy (out + done, self->head->str + self->head_offset, n);
      self->head_offset += n;
      if (self->head_offset == self->head->len) {
        if (self->index == self->parts->len) {
          self->finished = TRUE;
        } else {
          self->in_body = TRUE;
          self->body_offset = 0;
        }
      }
    }
    done += n;
  }
  return done;

failed:
  self->failure = g_error_copy (local_error);
  g_propagate_error (error, local_error);
  return -1;
}

/* Hands out what an asynchronous read fetched ahead; returns 0 if nothing is
 * waiting. */
static gsize
take_read_ahead (RdMultipartStream * self, void *buffer, gsize count)
{
  gsize n = MIN (count, self->ahead_length - self->ahead_offset);

  if (n == 0)
    return 0;
  memcpy (buffer, self->ahead + self->ahead_offset, n);
  self->ahead_offset += n;
  return n;
}

static void
count_bytes_read (RdMultipartStream * self, gsize n)
{
  atomic_fetch_add_explicit (&self->bytes_read, (goffset) n,
      memory_order_relaxed);
}

static gssize
rd_multipart_stream_read (GInputStream * stream, void *buffer, gsize count,
    GCancellable * cancellable, GError ** error)
{
  RdMultipartStream *self = RD_MULTIPART_STREAM (stream);
  gssize n;

  n = take_read_ahead (self, buffer, count);
  if (n == 0)
    n = produce (self, buffer, count, cancellable, error);
  if (n > 0)
    count_bytes_read (self, n);
  return n;
}

typedef struct
{
  void *buffer;
  gsize count;
} AsyncRead;

static void
read_ahead_in_thread (GTask * task, gpointer source, gpointer task_data,
    GCancellable * cancellable)
{
  RdMultipartStream *self = source;
  AsyncRead *read = task_data;
  GError *error = NULL;
  gssize n;

  n = produce (self, self->ahead, RD_MULTIPART_STREAM_READ_AHEAD,
      cancellable, &error);
  if (n < 0) {
    g_task_return_error (task, error);
    return;
  }
  self->ahead_length = n;
  self->ahead_offset = 0;
  n = take_read_ahead (self, read->buffer, read->count);
  count_bytes_read (self, n);
  g_task_return_int (task, n);
}

/* GInputStream's default runs every read in a worker thread, and libsoup
 * reads 8 KiB at a time: the thread hops then cost more than the reads. So a
 * worker reads ahead a larger block, and the reads that follow are served
 * from it without leaving the caller's thread. Disk reads stay off the
 * caller's (network) thread. */
static void
rd_multipart_stream_read_async (GInputStream * stream, void *buffer,
    gsize count, int io_priority, GCancellable * cancellable,
    GAsyncReadyCallback callback, gpointer user_data)
{
  RdMultipartStream *self = RD_MULTIPART_STREAM (stream);
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  AsyncRead *read;
  gsize n;

  g_task_set_source_tag (task, rd_multipart_stream_read_async);
  g_task_set_priority (task, io_priority);

  n = take_read_ahead (self, buffer, count);
  if (n > 0) {
    count_bytes_read (self, n);
    g_task_return_int (task, n);
    return;
  }

  if (self->ahead == NULL)
    self->ahead = g_malloc (RD_MULTIPART_STREAM_READ_AHEAD);
  read = g_new (AsyncRead, 1);
  read->buffer = buffer;
  read->count = count;
  g_task_set_task_data (task, read, g_free);
  /* Bytes the worker moved into @buffer must be reported, even if the read
   * was cancelled meanwhile. */
  g_task_set_check_cancellable (task, FALSE);
  g_task_run_in_thread (task, read_ahead_in_thread);
}

static gssize
rd_multipart_stream_read_finish (GInputStream * stream, GAsyncResult * result,
    GError ** error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), -1);

  return g_task_propagate_int (G_TASK (result), error);
}

static gboolean
rd_multipart_stream_close (GInputStream * stream, GCancellable * cancellable,
    GError ** error)
{
  RdMultipartStream *self = RD_MULTIPART_STREAM (stream);
  gboolean ok = TRUE;
  guint i;

  if (self->file != NULL) {
    ok = g_input_stream_close (self->file, cancellable, error);
    g_clear_object (&self->file);
  }
  /* Stream bodies are owned by their parts; closing an already closed stream
   * is a no-op. */
  for (i = 0; i < self->parts->len; i++) {
    Part *part = g_ptr_array_index (self->parts, i);

    if (part->body != NULL && !g_input_stream_is_closed (part->body))
      ok = g_input_stream_close (part->body, cancellable,
          ok ? error : NULL) && ok;
  }
  return ok;
}

static void
rd_multipart_stream_finalize (GObject * object)
{
  RdMultipartStream *self = RD_MULTIPART_STREAM (object);

  g_clear_object (&self->file);
  g_ptr_array_unref (self->parts);
  g_string_free (self->head, TRUE);
  g_free (self->ahead);
  g_free (self->boundary);
  g_free (self->content_type);
  g_free (self->conflicting_field);
  g_clear_error (&self->failure);

  G_OBJECT_CLASS (rd_multipart_stream_parent_class)->finalize (object);
}

static void
rd_multipart_stream_class_init (RdMultipartStreamClass * klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = rd_multipart_stream_finalize;
  stream_class->read_fn = rd_multipart_stream_read;
  stream_class->read_async = rd_multipart_stream_read_async;
  stream_class->read_finish = rd_multipart_stream_read_finish;
  stream_class->close_fn = rd_multipart_stream_close;
}

static void
rd_multipart_stream_init (RdMultipartStream * self)
{
  self->parts = g_ptr_array_new_with_free_func ((GDestroyNotify) part_free);
  self->head = g_string_new (NULL);
}

RdMultipartStream *
rd_multipart_stream_new (void)
{
  RdMultipartStream *self = g_object_new (RD_TYPE_MULTIPART_STREAM, NULL);

  self->boundary = random_boundary ();
  self->random_boundary = TRUE;
  update_content_type (self);
  return self;
}

RdMultipartStream *
rd_multipart_stream_new_with_boundary (const gchar * boundary)
{
  RdMultipartStream *self;

  g_return_val_if_fail (boundary != NULL, NULL);
  g_return_val_if_fail (is_valid_boundary (boundary), NULL);

  self = g_object_new (RD_TYPE_MULTIPART_STREAM, NULL);
  self->boundary = g_strdup (boundary);
  update_content_type (self);
  return self;
}

static Part *
add_part (RdMultipartStream * self, PartKind kind, const gchar * name,
    const gchar * filename, const gchar * content_type)
{
  Part *part = g_new0 (Part, 1);

  part->kind = kind;
  part->name = g_strdup (name);
  part->filename = g_strdup (filename);
  if (content_type != NULL)
    part->content_type = sanitize_header_value (content_type);
  g_ptr_array_add (self->parts, part);
  return part;
}

void
rd_multipart_stream_add_field (RdMultipartStream * self, const gchar * name,
    const gchar * value)
{
  Part *part;

  g_return_if_fail (RD_IS_MULTIPART_STREAM (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail (value != NULL);
  g_return_if_fail (!self->started);

  part = add_part (self, PART_FIELD, name, NULL, NULL);
  part->value = g_strdup (value);
  part->length = strlen (value);

  if (strstr (value, self->boundary) == NULL)
    return;

  if (self->random_boundary) {
    do {
      g_free (self->boundary);
      self->boundary = random_boundary ();
    } while (boundary_in_values (self, self->boundary));
    update_content_type (self);
  } else if (self->conflicting_field == NULL) {
    self->conflicting_field = g_strdup (name);
  }
}

gboolean
rd_multipart_stream_add_file (RdMultipartStream * self,
    const gchar * field_name, const gchar * path, const gchar * filename,
    const gchar * content_type, GError ** error)
{
  g_autoptr (GFile) file = NULL;
  g_autoptr (GFileInfo) info = NULL;
  Part *part;

  g_return_val_if_fail (RD_IS_MULTIPART_STREAM (self), FALSE);
  g_return_val_if_fail (field_name != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (!self->started, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  file = g_file_new_for_path (path);
  info = g_file_query_info (file,
      G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_STANDARD_SIZE,
      G_FILE_QUERY_INFO_NONE, NULL, error);
  if (info == NULL)
    return FALSE;
  if (g_file_info_get_file_type (info) != G_FILE_TYPE_REGULAR) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE,
        "“%s” is not a regular file", path);
    return FALSE;
  }

  if (filename != NULL) {
    part = add_part (self, PART_FILE, field_name, filename,
        content_type != NULL ? content_type : "application/octet-stream");
  } else {
    g_autofree gchar *basename = g_filename_display_basename (path);

    part = add_part (self, PART_FILE, field_name, basename,
        content_type != NULL ? content_type : "application/octet-stream");
  }
  part->path = g_strdup (path);
  part->length = g_file_info_get_size (info);
  return TRUE;
}

void
rd_multipart_stream_add_stream (RdMultipartStream * self,
    const gchar * field_name, const gchar * filename,
    const gchar * content_type, GInputStream * body, goffset length)
{
  Part *part;

  g_return_if_fail (RD_IS_MULTIPART_STREAM (self));
  g_return_if_fail (field_name != NULL);
  g_return_if_fail (G_IS_INPUT_STREAM (body));
  g_return_if_fail (length >= 0);
  g_return_if_fail (!self->started);

  part = add_part (self, PART_STREAM, field_name, filename,
      content_type != NULL ? content_type : "application/octet-stream");
  part->body = g_object_ref (body);
  part->length = length;
}

goffset
rd_multipart_stream_get_length (RdMultipartStream * self)
{
  g_autoptr (GString) head = g_string_new (NULL);
  goffset length = 0;
  guint i;

  g_return_val_if_fail (RD_IS_MULTIPART_STREAM (self), -1);

  for (i = 0; i <= self->parts->len; i++) {
    render_head (self, i, head);
    length += head->len;
    if (i < self->parts->len)
      length += ((Part *) g_ptr_array_index (self->parts, i))->length;
  }
  return length;
}

const gchar *
rd_multipart_stream_get_content_type (RdMultipartStream * self)
{
  g_return_val_if_fail (RD_IS_MULTIPART_STREAM (self), NULL);

  return self->content_type;
}

const gchar *
rd_multipart_stream_get_boundary (RdMultipartStream * self)
{
  g_return_val_if_fail (RD_IS_MULTIPART_STREAM (self), NULL);

  return self->boundary;
}

goffset
rd_multipart_stream_get_bytes_read (RdMultipartStream * self)
{
  g_return_val_if_fail (RD_IS_MULTIPART_STREAM (self), -1);

  return atomic_load_explicit (&self->bytes_read, memory_order_relaxed);
}
