/* Unit tests of RdZipStream: the archive's advertised length is the bytes it
 * produces (with and without Zip64 records), it reads back with libarchive to
 * the same flat names and contents, entries are stored uncompressed, files
 * that changed size fail the read, a large file streams through a bounded
 * buffer, the asynchronous read path works, and a zip inside a multipart body
 * gives that body the right length. */

#include "rd-test-utils.h"
#include "multipart-stream.h"
#include "zip-stream.h"

#include <archive.h>
#include <archive_entry.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>

typedef struct
{
  gchar *dir;
} Fixture;

static void
fixture_set_up (Fixture * fixture, gconstpointer data)
{
  fixture->dir = rd_test_make_tmp_dir ("rd-zip-XXXXXX");
}

static void
fixture_tear_down (Fixture * fixture, gconstpointer data)
{
  rd_test_remove_tree (fixture->dir);
  g_free (fixture->dir);
}

static gchar *
write_file (Fixture * fixture, const gchar * name, const gchar * contents,
    gssize length)
{
  return rd_test_write_file (fixture->dir, name, contents, length);
}

static void
add_file (RdZipStream * zip, const gchar * path)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (rd_zip_stream_add_file (zip, path, NULL, &error));
  g_assert_no_error (error);
}

static goffset
get_length (RdZipStream * zip)
{
  g_autoptr (GError) error = NULL;
  goffset length = rd_zip_stream_get_length (zip, &error);

  g_assert_no_error (error);
  g_assert_cmpint (length, >, 0);
  return length;
}

static GBytes *
read_to_end (GInputStream * stream, gsize chunk, GError ** error)
{
  g_autoptr (GByteArray) all = g_byte_array_new ();
  g_autofree guint8 *buffer = g_malloc (chunk);
  gssize n;

  while ((n = g_input_stream_read (stream, buffer, chunk, NULL, error)) > 0)
    g_byte_array_append (all, buffer, n);
  if (n < 0)
    return NULL;
  return g_byte_array_free_to_bytes (g_steal_pointer (&all));
}

static GBytes *
read_all_bytes (GInputStream * stream)
{
  g_autoptr (GError) error = NULL;
  GBytes *bytes = read_to_end (stream, 8192, &error);

  g_assert_no_error (error);
  return bytes;
}

typedef struct
{
  gchar *name;
  GBytes *data;
} ReadEntry;

static void
read_entry_free (ReadEntry * entry)
{
  g_free (entry->name);
  g_bytes_unref (entry->data);
  g_free (entry);
}

/* The entries of the archive @zip as libarchive reads them, in order. */
static GPtrArray *
read_back (GBytes * zip)
{
  GPtrArray *entries =
      g_ptr_array_new_with_free_func ((GDestroyNotify) read_entry_free);
  struct archive *archive = archive_read_new ();
  struct archive_entry *header;
  int ret;

  g_assert_cmpint (archive_read_support_format_zip (archive), ==, ARCHIVE_OK);
  g_assert_cmpint (archive_read_open_memory (archive,
          g_bytes_get_data (zip, NULL), g_bytes_get_size (zip)), ==,
      ARCHIVE_OK);

  while ((ret = archive_read_next_header (archive, &header)) == ARCHIVE_OK) {
    ReadEntry *entry = g_new0 (ReadEntry, 1);
    g_autoptr (GByteArray) data = g_byte_array_new ();
    guint8 buffer[4096];
    la_ssize_t n;

    entry->name = g_strdup (archive_entry_pathname_utf8 (header));
    while ((n = archive_read_data (archive, buffer, sizeof (buffer))) > 0)
      g_byte_array_append (data, buffer, n);
    g_assert_cmpint (n, ==, 0);
    g_assert_cmpint (archive_entry_size (header), ==, data->len);
    entry->data = g_byte_array_free_to_bytes (g_steal_pointer (&data));
    g_ptr_array_add (entries, entry);
  }
  g_assert_cmpint (ret, ==, ARCHIVE_EOF);
  archive_read_free (archive);
  return entries;
}

static void
assert_entry (GPtrArray * entries, guint index, const gchar * name,
    const void *data, gsize length)
{
  ReadEntry *entry;

  g_assert_cmpuint (index, <, entries->len);
  entry = g_ptr_array_index (entries, index);
  g_assert_cmpstr (entry->name, ==, name);
  g_assert_cmpmem (g_bytes_get_data (entry->data, NULL),
      g_bytes_get_size (entry->data), data, length);
}

static guint
le16 (const guint8 * p)
{
  return p[0] | (p[1] << 8);
}

static guint32
le32 (const guint8 * p)
{
  return p[0] | (p[1] << 8) | (p[2] << 16) | ((guint32) p[3] << 24);
}

/* The names in the central directory of @zip (no Zip64, no comment), after
 * checking that every entry is stored: method 0, compressed size == size;
 * and that a non-ASCII name is flagged as UTF-8 (general purpose bit 11). */
static GStrv
central_directory_names (GBytes * zip)
{
  g_autoptr (GStrvBuilder) names = g_strv_builder_new ();
  gsize size;
  const guint8 *data = g_bytes_get_data (zip, &size);
  const guint8 *end_record;
  const guint8 *p;
  guint count, i;

  g_assert_cmpuint (size, >=, 22);
  end_record = data + size - 22;
  g_assert_cmpmem (end_record, 4, "PK\5\6", 4);
  count = le16 (end_record + 10);
  p = data + le32 (end_record + 16);

  for (i = 0; i < count; i++) {
    g_autofree gchar *name = NULL;
    const gchar *c;

    g_assert_cmpmem (p, 4, "PK\1\2", 4);
    g_assert_cmpuint (le16 (p + 10), ==, 0);
    g_assert_cmpuint (le32 (p + 20), ==, le32 (p + 24));
    name = g_strndup ((const gchar *) p + 46, le16 (p + 28));
    for (c = name; *c != '\0'; c++) {
      if ((guint8) * c > 127)
        g_assert_cmpuint (le16 (p + 8) & (1 << 11), !=, 0);
    }
    g_strv_builder_add (names, name);
    p += 46 + le16 (p + 28) + le16 (p + 30) + le16 (p + 32);
  }
  g_assert_true (p == end_record);
  return g_strv_builder_end (names);
}

static void
test_length_equals_bytes_produced (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autofree gchar *a = write_file (fixture, "a.mp3", "audio", -1);
  g_autofree gchar *b = write_file (fixture, "b.wav", "", 0);
  g_autofree gchar *c = write_file (fixture, "c.jpg", "\xff\xd8\xff\xe0", 4);
  g_autoptr (GBytes) bytes = NULL;
  goffset length;

  add_file (zip, a);
  add_file (zip, b);
  add_file (zip, c);
  length = get_length (zip);

  bytes = read_all_bytes (G_INPUT_STREAM (zip));
  g_assert_cmpint (g_bytes_get_size (bytes), ==, length);
}

static void
test_reads_back_to_same_names_and_contents (Fixture * fixture,
    gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *a = write_file (fixture, "clip1.mp3", "ID3 data", -1);
  g_autofree gchar *b = write_file (fixture, "clip2.mp4", "\0\0\0 ftyp", 9);
  g_autofree gchar *c = write_file (fixture, "shot.png", "", 0);
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GPtrArray) entries = NULL;

  add_file (zip, a);
  add_file (zip, b);
  g_assert_true (rd_zip_stream_add_file (zip, c, "renamed.png", &error));
  g_assert_no_error (error);

  bytes = read_all_bytes (G_INPUT_STREAM (zip));
  entries = read_back (bytes);
  g_assert_cmpuint (entries->len, ==, 3);
  assert_entry (entries, 0, "clip1.mp3", "ID3 data", 8);
  assert_entry (entries, 1, "clip2.mp4", "\0\0\0 ftyp", 9);
  assert_entry (entries, 2, "renamed.png", "", 0);
}

static void
test_entries_are_stored (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autofree gchar *contents = g_strnfill (100000, 'a');
  g_autofree gchar *a = write_file (fixture, "a.wav", contents, -1);
  g_autofree gchar *b = write_file (fixture, "b.wav", contents, -1);
  g_autoptr (GBytes) bytes = NULL;
  g_auto (GStrv) names = NULL;

  add_file (zip, a);
  add_file (zip, b);

  /* Deflate would shrink these to almost nothing. */
  bytes = read_all_bytes (G_INPUT_STREAM (zip));
  g_assert_cmpuint (g_bytes_get_size (bytes), >=, 2 * 100000);
  names = central_directory_names (bytes);
  g_assert_cmpuint (g_strv_length (names), ==, 2);
}

/* Written in whatever locale the process runs in (the C locale here): the
 * name goes in as UTF-8 and is flagged so. */
static void
test_non_ascii_name_is_utf8 (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autofree gchar *path = write_file (fixture, "clip-\xc3\xa9.mp3", "x", -1);
  g_autoptr (GBytes) bytes = NULL;
  g_auto (GStrv) names = NULL;
  goffset length;

  add_file (zip, path);
  length = get_length (zip);
  bytes = read_all_bytes (G_INPUT_STREAM (zip));
  g_assert_cmpint (g_bytes_get_size (bytes), ==, length);

  names = central_directory_names (bytes);
  g_assert_cmpuint (g_strv_length (names), ==, 1);
  g_assert_cmpstr (names[0], ==, "clip-\xc3\xa9.mp3");
}

static void
test_empty_archive_is_valid (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autoptr (GBytes) bytes = NULL;
  g_auto (GStrv) names = NULL;
  goffset length;

  length = get_length (zip);
  bytes = read_all_bytes (G_INPUT_STREAM (zip));
  g_assert_cmpint (g_bytes_get_size (bytes), ==, length);
  names = central_directory_names (bytes);
  g_assert_cmpuint (g_strv_length (names), ==, 0);
}

static void
test_entry_name_with_slash_is_refused (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (fixture, "a.mp3", "x", -1);

  g_assert_false (rd_zip_stream_add_file (zip, path, "sub/a.mp3", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_FILENAME);
}

static void
test_duplicate_entry_name_is_refused (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *a = write_file (fixture, "a.mp3", "x", -1);
  g_autofree gchar *b = write_file (fixture, "b.mp3", "y", -1);

  add_file (zip, a);
  g_assert_false (rd_zip_stream_add_file (zip, b, "a.mp3", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS);
}

static void
test_missing_file_fails_add (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = g_build_filename (fixture->dir, "gone.mp3", NULL);

  g_assert_false (rd_zip_stream_add_file (zip, path, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "gone.mp3"));
}

/* Reads @stream to its end and expects a G_IO_ERROR_INVALID_DATA naming
 * @needle; the error stays for later reads. */
static void
assert_read_fails (GInputStream * stream, const gchar * needle)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) again = NULL;
  g_autoptr (GBytes) bytes = NULL;
  guint8 byte;

  bytes = read_to_end (stream, 8192, &error);
  g_assert_null (bytes);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, needle));

  g_assert_cmpint (g_input_stream_read (stream, &byte, 1, NULL, &again), ==,
      -1);
  g_assert_error (again, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

static void
test_file_shrunk_after_add_fails_read (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autofree gchar *path = write_file (fixture, "a.mp4", "0123456789", -1);
  g_autofree gchar *unused = NULL;

  add_file (zip, path);
  get_length (zip);
  unused = write_file (fixture, "a.mp4", "012", -1);

  assert_read_fails (G_INPUT_STREAM (zip), path);
}

static void
test_file_grown_after_add_fails_read (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autofree gchar *path = write_file (fixture, "a.mp4", "012", -1);
  g_autofree gchar *unused = NULL;

  add_file (zip, path);
  get_length (zip);
  unused = write_file (fixture, "a.mp4", "0123456789", -1);

  assert_read_fails (G_INPUT_STREAM (zip), path);
}

static void
test_file_grown_while_read_fails_read (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (fixture, "a.mp4", "0123456789", -1);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileOutputStream) out = NULL;
  guint8 buffer[4];

  add_file (zip, path);
  /* The first step writes the entry header: the file is open now. */
  g_assert_cmpint (g_input_stream_read (G_INPUT_STREAM (zip), buffer,
          sizeof (buffer), NULL, &error), ==, sizeof (buffer));
  g_assert_no_error (error);
  g_assert_cmpmem (buffer, 4, "PK\3\4", 4);

  out = g_file_append_to (file, G_FILE_CREATE_NONE, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_write_all (G_OUTPUT_STREAM (out), "more", 4, NULL, NULL,
      &error);
  g_assert_no_error (error);
  g_output_stream_close (G_OUTPUT_STREAM (out), NULL, &error);
  g_assert_no_error (error);

  assert_read_fails (G_INPUT_STREAM (zip), path);
}

static void
fill_pattern (guint8 * buffer, gsize length, guint64 offset)
{
  gsize i;

  for (i = 0; i < length; i++) {
    guint64 x = offset + i;

    buffer[i] = (guint8) ((x * 2654435761u) >> 13);
  }
}

/* Writes @size bytes of the pattern to @path and returns their SHA-256. */
static gchar *
write_pattern_file (const gchar * path, gsize size)
{
  const gsize chunk = 1024 * 1024;
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileOutputStream) out = NULL;
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *buffer = g_malloc (chunk);
  gsize offset;

  out = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, &error);
  g_assert_no_error (error);
  for (offset = 0; offset < size; offset += chunk) {
    gsize n = MIN (chunk, size - offset);

    fill_pattern (buffer, n, offset);
    g_output_stream_write_all (G_OUTPUT_STREAM (out), buffer, n, NULL, NULL,
        &error);
    g_assert_no_error (error);
    g_checksum_update (checksum, buffer, n);
  }
  g_output_stream_close (G_OUTPUT_STREAM (out), NULL, &error);
  g_assert_no_error (error);
  return g_strdup (g_checksum_get_string (checksum));
}

static void
test_large_file_streams_through_bounded_buffer (Fixture * fixture,
    gconstpointer data)
{
  const gsize size = 50 * 1024 * 1024;
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = g_build_filename (fixture->dir, "big.mp4", NULL);
  g_autofree gchar *zip_path = g_build_filename (fixture->dir, "out.zip",
      NULL);
  g_autofree gchar *expected = write_pattern_file (path, size);
  g_autoptr (GFile) zip_file = g_file_new_for_path (zip_path);
  g_autoptr (GFileOutputStream) out = NULL;
  g_autoptr (GChecksum) actual = g_checksum_new (G_CHECKSUM_SHA256);
  struct archive *archive;
  struct archive_entry *header;
  guint8 buffer[8192];
  goffset length, total;
  la_ssize_t n;

  add_file (zip, path);
  length = get_length (zip);

  out = g_file_replace (zip_file, NULL, FALSE, G_FILE_CREATE_NONE, NULL,
      &error);
  g_assert_no_error (error);
  total = g_output_stream_splice (G_OUTPUT_STREAM (out), G_INPUT_STREAM (zip),
      G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
      NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (total, ==, length);

  /* One chunk of file data, or a header, at a time. */
  g_assert_cmpuint (rd_zip_stream_get_peak_buffered (zip), <=,
      RD_ZIP_STREAM_CHUNK_SIZE);

  archive = archive_read_new ();
  archive_read_support_format_zip (archive);
  g_assert_cmpint (archive_read_open_filename (archive, zip_path, 65536), ==,
      ARCHIVE_OK);
  g_assert_cmpint (archive_read_next_header (archive, &header), ==, ARCHIVE_OK);
  g_assert_cmpstr (archive_entry_pathname (header), ==, "big.mp4");
  g_assert_cmpint (archive_entry_size (header), ==, size);
  while ((n = archive_read_data (archive, buffer, sizeof (buffer))) > 0)
    g_checksum_update (actual, buffer, n);
  g_assert_cmpint (n, ==, 0);
  g_assert_cmpint (archive_read_next_header (archive, &header), ==,
      ARCHIVE_EOF);
  archive_read_free (archive);
  g_assert_cmpstr (g_checksum_get_string (actual), ==, expected);
}

static void
test_zip64_length_is_exact (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) plain = rd_zip_stream_new ();
  g_autoptr (RdZipStream) zip64 = rd_zip_stream_new ();
  g_autofree gchar *a = write_file (fixture, "a.mp3", "audio", -1);
  g_autofree gchar *b = write_file (fixture, "b.mp3", "more audio", -1);
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GPtrArray) entries = NULL;
  goffset length;

  add_file (plain, a);
  add_file (plain, b);
  rd_zip_stream_set_force_zip64 (zip64, TRUE);
  add_file (zip64, a);
  add_file (zip64, b);

  length = get_length (zip64);
  g_assert_cmpint (length, >, get_length (plain));
  bytes = read_all_bytes (G_INPUT_STREAM (zip64));
  g_assert_cmpint (g_bytes_get_size (bytes), ==, length);

  entries = read_back (bytes);
  g_assert_cmpuint (entries->len, ==, 2);
  assert_entry (entries, 0, "a.mp3", "audio", 5);
  assert_entry (entries, 1, "b.mp3", "more audio", 10);
}

/* A sparse file just over 4 GiB needs Zip64 sizes: the dry run must predict
 * them. Slow (it reads and checksums 4 GiB), so only with -m slow. */
static void
test_file_over_4gib_length_is_exact (Fixture * fixture, gconstpointer data)
{
  const goffset size = G_GINT64_CONSTANT (4294967296) + 1000;
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = g_build_filename (fixture->dir, "huge.mp4", NULL);
  g_autofree gchar *small = write_file (fixture, "small.mp3", "x", -1);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileIOStream) io = NULL;
  g_autofree guint8 *buffer = g_malloc (1024 * 1024);
  goffset length, total = 0;
  gssize n;

  if (!g_test_slow ()) {
    g_test_skip ("reads 4 GiB; run with -m slow");
    return;
  }

  io = g_file_create_readwrite (file, G_FILE_CREATE_NONE, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_seekable_truncate (G_SEEKABLE (io), size, NULL, &error));
  g_assert_no_error (error);
  g_io_stream_close (G_IO_STREAM (io), NULL, &error);
  g_assert_no_error (error);

  add_file (zip, path);
  add_file (zip, small);
  length = get_length (zip);

  while ((n = g_input_stream_read (G_INPUT_STREAM (zip), buffer, 1024 * 1024,
              NULL, &error)) > 0)
    total += n;
  g_assert_no_error (error);
  g_assert_cmpint (total, ==, length);
}

typedef struct
{
  gboolean done;
  gsize bytes_read;
  GError *error;
} AsyncResult;

static void
read_all_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  AsyncResult *async = user_data;

  g_input_stream_read_all_finish (G_INPUT_STREAM (source), result,
      &async->bytes_read, &async->error);
  async->done = TRUE;
}

static void
test_async_read_on_own_main_context (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autofree gchar *a = write_file (fixture, "a.mp3", "audio", -1);
  g_autofree gchar *b = write_file (fixture, "b.jpg", "image", -1);
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GPtrArray) entries = NULL;
  AsyncResult async = { 0 };
  goffset length;
  guint8 *buffer;

  add_file (zip, a);
  add_file (zip, b);
  length = get_length (zip);

  buffer = g_malloc (length + 1);
  g_main_context_push_thread_default (context);
  g_input_stream_read_all_async (G_INPUT_STREAM (zip), buffer, length + 1,
      G_PRIORITY_DEFAULT, NULL, read_all_done, &async);
  while (!async.done)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  g_assert_no_error (async.error);
  g_assert_cmpuint (async.bytes_read, ==, length);
  bytes = g_bytes_new_take (buffer, length);
  entries = read_back (bytes);
  g_assert_cmpuint (entries->len, ==, 2);
  assert_entry (entries, 0, "a.mp3", "audio", 5);
  assert_entry (entries, 1, "b.jpg", "image", 5);
}

static void
test_close_before_end_releases_archive (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *a = write_file (fixture, "a.mp3", "audio", -1);
  guint8 buffer[10];

  add_file (zip, a);
  g_assert_cmpint (g_input_stream_read (G_INPUT_STREAM (zip), buffer,
          sizeof (buffer), NULL, &error), ==, sizeof (buffer));
  g_assert_true (g_input_stream_close (G_INPUT_STREAM (zip), NULL, &error));
  g_assert_no_error (error);
}

static void
test_zip_inside_multipart_has_right_length (Fixture * fixture,
    gconstpointer data)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autoptr (RdMultipartStream) body = rd_multipart_stream_new ();
  g_autofree gchar *a = write_file (fixture, "a.mp3", "audio", -1);
  g_autofree gchar *b = write_file (fixture, "b.mp4", "video", -1);
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (SoupMessageHeaders) headers =
      soup_message_headers_new (SOUP_MESSAGE_HEADERS_MULTIPART);
  g_autoptr (SoupMultipart) multipart = NULL;
  g_autoptr (GPtrArray) entries = NULL;
  SoupMessageHeaders *part_headers;
  GBytes *part_body;
  goffset zip_length;

  add_file (zip, a);
  add_file (zip, b);
  zip_length = get_length (zip);
  rd_multipart_stream_add_field (body, "intelligence", "true");
  rd_multipart_stream_add_stream (body, "file", "batch.zip",
      "application/zip", G_INPUT_STREAM (zip), zip_length);

  bytes = read_all_bytes (G_INPUT_STREAM (body));
  g_assert_cmpint (g_bytes_get_size (bytes), ==,
      rd_multipart_stream_get_length (body));

  soup_message_headers_replace (headers, "Content-Type",
      rd_multipart_stream_get_content_type (body));
  multipart = soup_multipart_new_from_message (headers, bytes);
  g_assert_nonnull (multipart);
  g_assert_cmpint (soup_multipart_get_length (multipart), ==, 2);
  g_assert_true (soup_multipart_get_part (multipart, 1, &part_headers,
          &part_body));
  g_assert_cmpint (g_bytes_get_size (part_body), ==, zip_length);

  entries = read_back (part_body);
  g_assert_cmpuint (entries->len, ==, 2);
  assert_entry (entries, 0, "a.mp3", "audio", 5);
  assert_entry (entries, 1, "b.mp4", "video", 5);
}

#define ADD_TEST(path, func) \
  g_test_add ((path), Fixture, NULL, fixture_set_up, (func), \
      fixture_tear_down)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD_TEST ("/zip-stream/length-equals-bytes-produced",
      test_length_equals_bytes_produced);
  ADD_TEST ("/zip-stream/reads-back-to-same-names-and-contents",
      test_reads_back_to_same_names_and_contents);
  ADD_TEST ("/zip-stream/entries-are-stored", test_entries_are_stored);
  ADD_TEST ("/zip-stream/non-ascii-name-is-utf8", test_non_ascii_name_is_utf8);
  ADD_TEST ("/zip-stream/empty-archive-is-valid", test_empty_archive_is_valid);
  ADD_TEST ("/zip-stream/entry-name-with-slash-is-refused",
      test_entry_name_with_slash_is_refused);
  ADD_TEST ("/zip-stream/duplicate-entry-name-is-refused",
      test_duplicate_entry_name_is_refused);
  ADD_TEST ("/zip-stream/missing-file-fails-add", test_missing_file_fails_add);
  ADD_TEST ("/zip-stream/file-shrunk-after-add-fails-read",
      test_file_shrunk_after_add_fails_read);
  ADD_TEST ("/zip-stream/file-grown-after-add-fails-read",
      test_file_grown_after_add_fails_read);
  ADD_TEST ("/zip-stream/file-grown-while-read-fails-read",
      test_file_grown_while_read_fails_read);
  ADD_TEST ("/zip-stream/large-file-streams-through-bounded-buffer",
      test_large_file_streams_through_bounded_buffer);
  ADD_TEST ("/zip-stream/zip64-length-is-exact", test_zip64_length_is_exact);
  ADD_TEST ("/zip-stream/file-over-4gib-length-is-exact",
      test_file_over_4gib_length_is_exact);
  ADD_TEST ("/zip-stream/async-read-on-own-main-context",
      test_async_read_on_own_main_context);
  ADD_TEST ("/zip-stream/close-before-end-releases-archive",
      test_close_before_end_releases_archive);
  ADD_TEST ("/zip-stream/zip-inside-multipart-has-right-length",
      test_zip_inside_multipart_has_right_length);

  return g_test_run ();
}
