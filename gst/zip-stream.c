/* RdZipStream: a stored-entry .zip of files on disk, written by libarchive
 * and pulled by the reader. Each read lets libarchive make one step (an entry
 * header, one chunk of file data, an entry's end, or the central directory);
 * the output callback collects that step into a buffer the reader drains
 * before the next step, so the stream holds at most one step's output.
 *
 * The length comes from a dry run through the same libarchive writer with the
 * same entries, fed zeros instead of file data and with CRC computation turned
 * off (libarchive's "fakecrc32" option): with stored entries the archive's
 * layout depends only on names, sizes and metadata, never on content, so the
 * dry run's byte count is the real archive's size, Zip64 records included.
 * Reading checks that every file still has the size the dry run used. */

#include "zip-stream.h"

#include <archive.h>
#include <archive_entry.h>
#include <string.h>

/* The ZIP name field is 16 bits. */
#define MAX_ENTRY_NAME_LENGTH 65535

typedef struct
{
  gchar *path;
  gchar *name;                  /* UTF-8, no '/' */
  goffset size;
  gint64 mtime;                 /* seconds since the epoch */
} Entry;

struct _RdZipStream
{
  GInputStream parent;

  GPtrArray *entries;           /* Entry*, in archive order */
  GHashTable *names;            /* entry names, to refuse duplicates */
  gboolean force_zip64;
  goffset length;               /* -1 until the dry run */

  /* Reading */
  struct archive *archive;
  gboolean started;
  gboolean finished;            /* the central directory was written */
  guint index;                  /* entry being written */
  GInputStream *file;           /* its open file, NULL before its header */
  goffset remaining;            /* its bytes not yet fed to libarchive */
  guint8 *chunk;                /* file data on its way to libarchive */
  GByteArray *out;              /* libarchive's output of the last step */
  gsize out_offset;             /* how much of it was read */
  gsize peak_buffered;
  gboolean discard_output;      /* closing early: drop what libarchive writes */
  GError *failure;              /* once a read failed, every read fails */
};

G_DEFINE_TYPE (RdZipStream, rd_zip_stream, G_TYPE_INPUT_STREAM);

/* What the dry run feeds libarchive instead of file data. */
static const guint8 zeros[RD_ZIP_STREAM_CHUNK_SIZE];

static void
entry_free (Entry * entry)
{
  g_free (entry->path);
  g_free (entry->name);
  g_free (entry);
}

static void
set_archive_error (struct archive *archive, const gchar * what, GError ** error)
{
  const gchar *message = archive_error_string (archive);

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "Zip %s failed: %s",
      what, message != NULL ? message : "unknown libarchive error");
}

static la_ssize_t
collect_output (struct archive *archive, void *user_data, const void *buffer,
    size_t length)
{
  RdZipStream *self = user_data;

  if (!self->discard_output)
    g_byte_array_append (self->out, buffer, length);
  return length;
}

static la_ssize_t
count_output (struct archive *archive, void *user_data, const void *buffer,
    size_t length)
{
  goffset *count = user_data;

  *count += length;
  return length;
}

/* The writer both the dry run and the real run use: their options must only
 * differ in what cannot change the output's size. */
static struct archive *
new_archive (RdZipStream * self, gboolean dry_run,
    archive_write_callback * write_callback, void *user_data, GError ** error)
{
  struct archive *archive = archive_write_new ();

  if (archive_write_set_format_zip (archive) != ARCHIVE_OK
      || archive_write_set_format_option (archive, "zip", "compression",
          "store") != ARCHIVE_OK
      || archive_write_set_format_option (archive, "zip", "hdrcharset",
          "UTF-8") != ARCHIVE_OK
      || (self->force_zip64
          && archive_write_set_format_option (archive, "zip", "zip64",
              "1") != ARCHIVE_OK)
      || (dry_run
          && archive_write_set_format_option (archive, "zip", "fakecrc32",
              "1") != ARCHIVE_OK)
      /* Unblocked: every write reaches the callback at once, unpadded. */
      || archive_write_set_bytes_per_block (archive, 0) != ARCHIVE_OK
      || archive_write_open (archive, user_data, NULL, write_callback,
          NULL) != ARCHIVE_OK) {
    set_archive_error (archive, "setup", error);
    archive_write_free (archive);
    return NULL;
  }
  return archive;
}

static gboolean
write_header (struct archive *archive, Entry * entry, GError ** error)
{
  struct archive_entry *header = archive_entry_new ();
  int ret;

  archive_entry_set_pathname_utf8 (header, entry->name);
  archive_entry_set_filetype (header, AE_IFREG);
  archive_entry_set_perm (header, 0644);
  archive_entry_set_size (header, entry->size);
  archive_entry_set_mtime (header, entry->mtime, 0);
  ret = archive_write_header (archive, header);
  archive_entry_free (header);

  if (ret != ARCHIVE_OK) {
    set_archive_error (archive, "entry header", error);
    return FALSE;
  }
  return TRUE;
}

static gboolean
feed_data (struct archive *archive, const guint8 * data, gsize length,
    GError ** error)
{
  if (archive_write_data (archive, data, length) != (la_ssize_t) length) {
    set_archive_error (archive, "data", error);
    return FALSE;
  }
  return TRUE;
}

static gboolean
finish_entry (struct archive *archive, GError ** error)
{
  if (archive_write_finish_entry (archive) != ARCHIVE_OK) {
    set_archive_error (archive, "entry end", error);
    return FALSE;
  }
  return TRUE;
}

static goffset
dry_run (RdZipStream * self, GError ** error)
{
  struct archive *archive;
  goffset count = 0;
  guint i;

  archive = new_archive (self, TRUE, count_output, &count, error);
  if (archive == NULL)
    return -1;

  for (i = 0; i < self->entries->len; i++) {
    Entry *entry = g_ptr_array_index (self->entries, i);
    goffset remaining = entry->size;

    if (!write_header (archive, entry, error))
      goto failed;
    while (remaining > 0) {
      gsize n = MIN (remaining, (goffset) sizeof (zeros));

      if (!feed_data (archive, zeros, n, error))
        goto failed;
      remaining -= n;
    }
    if (!finish_entry (archive, error))
      goto failed;
  }
  if (archive_write_close (archive) != ARCHIVE_OK) {
    set_archive_error (archive, "close", error);
    goto failed;
  }
  archive_write_free (archive);
  return count;

failed:
  /* Not archive_write_fail (): libarchive 3.6 then leaks its output state. */
  archive_write_close (archive);
  archive_write_free (archive);
  return -1;
}

static gboolean
begin_entry (RdZipStream * self, Entry * entry, GCancellable * cancellable,
    GError ** error)
{
  g_autoptr (GFile) file = g_file_new_for_path (entry->path);
  g_autoptr (GFileInputStream) stream = NULL;
  g_autoptr (GFileInfo) info = NULL;
  goffset size;

  stream = g_file_read (file, cancellable, error);
  if (stream == NULL)
    return FALSE;
  info = g_file_input_stream_query_info (stream,
      G_FILE_ATTRIBUTE_STANDARD_SIZE, cancellable, error);
  if (info == NULL)
    return FALSE;
  size = g_file_info_get_size (info);
  if (size != entry->size) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "File “%s” is %" G_GOFFSET_FORMAT " bytes, it was %"
        G_GOFFSET_FORMAT " when added to the archive", entry->path, size,
        entry->size);
    return FALSE;
  }

  if (!write_header (self->archive, entry, error))
    return FALSE;
  self->file = G_INPUT_STREAM (g_steal_pointer (&stream));
  self->remaining = entry->size;
  return TRUE;
}

static gboolean
end_entry (RdZipStream * self, Entry * entry, GCancellable * cancellable,
    GError ** error)
{
  guint8 extra;
  gssize n;

  /* One more byte means the file grew while it was being sent. */
  n = g_input_stream_read (self->file, &extra, 1, cancellable, error);
  if (n < 0)
    return FALSE;
  if (n > 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "File “%s” grew past %" G_GOFFSET_FORMAT " bytes while it was "
        "archived", entry->path, entry->size);
    return FALSE;
  }
  if (!g_input_stream_close (self->file, cancellable, error))
    return FALSE;
  g_clear_object (&self->file);

  if (!finish_entry (self->archive, error))
    return FALSE;
  self->index++;
  return TRUE;
}

static gboolean
feed_chunk (RdZipStream * self, Entry * entry, GCancellable * cancellable,
    GError ** error)
{
  gssize n;

  n = g_input_stream_read (self->file, self->chunk,
      MIN (self->remaining, RD_ZIP_STREAM_CHUNK_SIZE), cancellable, error);
  if (n < 0)
    return FALSE;
  if (n == 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "File “%s” ended after %" G_GOFFSET_FORMAT " of its %"
        G_GOFFSET_FORMAT " bytes while it was archived", entry->path,
        entry->size - self->remaining, entry->size);
    return FALSE;
  }
  if (!feed_data (self->archive, self->chunk, n, error))
    return FALSE;
  self->remaining -= n;
  return TRUE;
}

/* One step of libarchive; its output lands in self->out. */
static gboolean
step (RdZipStream * self, GCancellable * cancellable, GError ** error)
{
  Entry *entry;

  if (self->archive == NULL) {
    self->archive = new_archive (self, FALSE, collect_output, self, error);
    if (self->archive == NULL)
      return FALSE;
  }

  if (self->index == self->entries->len) {
    if (archive_write_close (self->archive) != ARCHIVE_OK) {
      set_archive_error (self->archive, "close", error);
      return FALSE;
    }
    self->finished = TRUE;
    return TRUE;
  }

  entry = g_ptr_array_index (self->entries, self->index);
  if (self->file == NULL)
    return begin_entry (self, entry, cancellable, error);
  if (self->remaining > 0)
    return feed_chunk (self, entry, cancellable, error);
  return end_entry (self, entry, cancellable, error);
}

static gssize
rd_zip_stream_read (GInputStream * stream, void *buffer, gsize count,
    GCancellable * cancellable, GError ** error)
{
  RdZipStream *self = RD_ZIP_STREAM (stream);
  GError *local_error = NULL;
  gsize n;

  if (self->failure != NULL) {
    g_propagate_error (error, g_error_copy (self->failure));
    return -1;
  }
  self->started = TRUE;

  while (self->out_offset == self->out->len) {
    if (self->finished)
      return 0;
    g_byte_array_set_size (self->out, 0);
    self->out_offset = 0;
    if (!step (self, cancellable, &local_error)) {
      self->failure = g_error_copy (local_error);
      g_propagate_error (error, local_error);
      return -1;
    }
    self->peak_buffered = MAX (self->peak_buffered, self->out->len);
  }

  n = MIN (count, self->out->len - self->out_offset);
  memcpy (buffer, self->out->data + self->out_offset, n);
  self->out_offset += n;
  return n;
}

static gboolean
rd_zip_stream_close (GInputStream * stream, GCancellable * cancellable,
    GError ** error)
{
  RdZipStream *self = RD_ZIP_STREAM (stream);
  gboolean ok = TRUE;

  if (self->file != NULL) {
    ok = g_input_stream_close (self->file, cancellable, error);
    g_clear_object (&self->file);
  }
  if (self->archive != NULL) {
    /* An unfinished archive still writes its end when closed; nobody reads
     * it. (archive_write_fail () would skip that, but libarchive 3.6 then
     * leaks its output state.) */
    self->discard_output = TRUE;
    archive_write_close (self->archive);
    archive_write_free (self->archive);
    self->archive = NULL;
  }
  g_clear_pointer (&self->chunk, g_free);
  return ok;
}

static void
rd_zip_stream_finalize (GObject * object)
{
  RdZipStream *self = RD_ZIP_STREAM (object);

  /* GInputStream's dispose closes the stream, freeing the archive. */
  g_ptr_array_unref (self->entries);
  g_hash_table_unref (self->names);
  g_byte_array_unref (self->out);
  g_free (self->chunk);
  g_clear_error (&self->failure);

  G_OBJECT_CLASS (rd_zip_stream_parent_class)->finalize (object);
}

static void
rd_zip_stream_class_init (RdZipStreamClass * klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = rd_zip_stream_finalize;
  stream_class->read_fn = rd_zip_stream_read;
  stream_class->close_fn = rd_zip_stream_close;
}

static void
rd_zip_stream_init (RdZipStream * self)
{
  self->entries = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
  self->names = g_hash_table_new (g_str_hash, g_str_equal);
  self->length = -1;
  self->chunk = g_malloc (RD_ZIP_STREAM_CHUNK_SIZE);
  self->out = g_byte_array_sized_new (RD_ZIP_STREAM_CHUNK_SIZE);
}

RdZipStream *
rd_zip_stream_new (void)
{
  return g_object_new (RD_TYPE_ZIP_STREAM, NULL);
}

static gboolean
check_entry_name (RdZipStream * self, const gchar * name, GError ** error)
{
  if (!g_utf8_validate (name, -1, NULL) || name[0] == '\0'
      || strchr (name, '/') != NULL || strcmp (name, ".") == 0
      || strcmp (name, "..") == 0 || strlen (name) > MAX_ENTRY_NAME_LENGTH) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_FILENAME,
        "“%s” is not a valid name for a flat zip entry", name);
    return FALSE;
  }
  if (g_hash_table_contains (self->names, name)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
        "The archive already has an entry named “%s”", name);
    return FALSE;
  }
  return TRUE;
}

gboolean
rd_zip_stream_add_file (RdZipStream * self, const gchar * path,
    const gchar * entry_name, GError ** error)
{
  g_autoptr (GFile) file = NULL;
  g_autoptr (GFileInfo) info = NULL;
  g_autofree gchar *basename = NULL;
  Entry *entry;

  g_return_val_if_fail (RD_IS_ZIP_STREAM (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (!self->started, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (entry_name == NULL) {
    basename = g_filename_display_basename (path);
    entry_name = basename;
  }
  if (!check_entry_name (self, entry_name, error))
    return FALSE;

  file = g_file_new_for_path (path);
  info = g_file_query_info (file,
      G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_STANDARD_SIZE ","
      G_FILE_ATTRIBUTE_TIME_MODIFIED, G_FILE_QUERY_INFO_NONE, NULL, error);
  if (info == NULL)
    return FALSE;
  if (g_file_info_get_file_type (info) != G_FILE_TYPE_REGULAR) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE,
        "“%s” is not a regular file", path);
    return FALSE;
  }

  entry = g_new0 (Entry, 1);
  entry->path = g_strdup (path);
  entry->name = g_strdup (entry_name);
  entry->size = g_file_info_get_size (info);
  entry->mtime = g_file_info_get_attribute_uint64 (info,
      G_FILE_ATTRIBUTE_TIME_MODIFIED);
  g_ptr_array_add (self->entries, entry);
  g_hash_table_add (self->names, entry->name);
  self->length = -1;
  return TRUE;
}

void
rd_zip_stream_set_force_zip64 (RdZipStream * self, gboolean force)
{
  g_return_if_fail (RD_IS_ZIP_STREAM (self));
  g_return_if_fail (!self->started);

  self->force_zip64 = force;
  self->length = -1;
}

goffset
rd_zip_stream_get_length (RdZipStream * self, GError ** error)
{
  g_return_val_if_fail (RD_IS_ZIP_STREAM (self), -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  if (self->length < 0)
    self->length = dry_run (self, error);
  return self->length;
}

gsize
rd_zip_stream_get_peak_buffered (RdZipStream * self)
{
  g_return_val_if_fail (RD_IS_ZIP_STREAM (self), 0);

  return self->peak_buffered;
}
