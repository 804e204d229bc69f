/* Unit tests of RdMultipartStream: the body parses back as multipart/form-data
 * (by libsoup's parser and byte for byte), its length is exact, file bodies
 * are the files' bytes, names are escaped, a file that changed size fails the
 * read, large files stream in small reads, and the asynchronous read path and
 * a real libsoup upload over loopback work. */

#include "rd-test-utils.h"
#include "multipart-stream.h"

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
  fixture->dir = rd_test_make_tmp_dir ("rd-multipart-XXXXXX");
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

/* Reads @stream to its end, @chunk bytes at a time. */
static GBytes *
read_to_end (GInputStream * stream, gsize chunk, GError ** error)
{
  g_autoptr (GByteArray) all = g_byte_array_new ();
  g_autofree guint8 *buffer = g_malloc (chunk);
  gssize n;

  while ((n = g_input_stream_read (stream, buffer, chunk, NULL, error)) > 0) {
    g_assert_cmpint (n, <=, chunk);
    g_byte_array_append (all, buffer, n);
  }
  if (n < 0)
    return NULL;
  return g_byte_array_free_to_bytes (g_steal_pointer (&all));
}

static GBytes *
read_all_bytes (RdMultipartStream * stream)
{
  g_autoptr (GError) error = NULL;
  GBytes *bytes = read_to_end (G_INPUT_STREAM (stream), 4096, &error);

  g_assert_no_error (error);
  return bytes;
}

static SoupMultipart *
parse (const gchar * content_type, GBytes * body)
{
  g_autoptr (SoupMessageHeaders) headers =
      soup_message_headers_new (SOUP_MESSAGE_HEADERS_MULTIPART);
  SoupMultipart *multipart;

  soup_message_headers_replace (headers, "Content-Type", content_type);
  multipart = soup_multipart_new_from_message (headers, body);
  g_assert_nonnull (multipart);
  return multipart;
}

/* Checks part @index: its name, filename (NULL: none), content type (NULL:
 * none) and body. */
static void
assert_part (SoupMultipart * multipart, gint index, const gchar * name,
    const gchar * filename, const gchar * content_type, const void *body,
    gsize body_length)
{
  SoupMessageHeaders *headers;
  GBytes *part_body;
  g_autofree gchar *disposition = NULL;
  g_autoptr (GHashTable) params = NULL;

  g_assert_true (soup_multipart_get_part (multipart, index, &headers,
          &part_body));
  g_assert_true (soup_message_headers_get_content_disposition (headers,
          &disposition, &params));
  g_assert_cmpstr (disposition, ==, "form-data");
  g_assert_cmpstr (g_hash_table_lookup (params, "name"), ==, name);
  g_assert_cmpstr (g_hash_table_lookup (params, "filename"), ==, filename);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Content-Type"), ==,
      content_type);
  g_assert_cmpmem (g_bytes_get_data (part_body, NULL),
      g_bytes_get_size (part_body), body, body_length);
}

static void
test_fields_and_files_parse_back (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *audio = write_file (fixture, "clip1.mp3", "ID3 audio", -1);
  g_autofree gchar *video = write_file (fixture, "clip2.mp4", "\0\0\0 ftyp",
      9);
  g_autofree gchar *image = write_file (fixture, "shot.jpg", "\xff\xd8\xff",
      3);
  g_autoptr (GBytes) body = NULL;
  g_autoptr (SoupMultipart) multipart = NULL;

  rd_multipart_stream_add_field (stream, "intelligence", "true");
  rd_multipart_stream_add_field (stream, "callback_url",
      "https://example.com/hook");
  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", audio, NULL,
          "audio/mpeg", &error));
  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", video, NULL,
          "video/mp4", &error));
  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", image,
          "snapshot.jpg", "image/jpeg", &error));
  g_assert_no_error (error);

  body = read_all_bytes (stream);
  multipart = parse (rd_multipart_stream_get_content_type (stream), body);

  g_assert_cmpint (soup_multipart_get_length (multipart), ==, 5);
  assert_part (multipart, 0, "intelligence", NULL, NULL, "true", 4);
  assert_part (multipart, 1, "callback_url", NULL, NULL,
      "https://example.com/hook", 24);
  assert_part (multipart, 2, "files[]", "clip1.mp3", "audio/mpeg",
      "ID3 audio", 9);
  assert_part (multipart, 3, "files[]", "clip2.mp4", "video/mp4",
      "\0\0\0 ftyp", 9);
  assert_part (multipart, 4, "files[]", "snapshot.jpg", "image/jpeg",
      "\xff\xd8\xff", 3);
}

static void
test_body_is_rfc7578_byte_for_byte (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream =
      rd_multipart_stream_new_with_boundary ("BOUNDARY");
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (fixture, "a.wav", "RIFF", -1);
  g_autoptr (GBytes) body = NULL;
  const gchar *expected =
      "--BOUNDARY\r\n"
      "Content-Disposition: form-data; name=\"visualize\"\r\n"
      "\r\n"
      "false\r\n"
      "--BOUNDARY\r\n"
      "Content-Disposition: form-data; name=\"files[]\"; filename=\"a.wav\"\r\n"
      "Content-Type: audio/wav\r\n" "\r\n" "RIFF\r\n" "--BOUNDARY--\r\n";

  rd_multipart_stream_add_field (stream, "visualize", "false");
  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", path, NULL,
          "audio/wav", &error));
  g_assert_no_error (error);

  g_assert_cmpstr (rd_multipart_stream_get_content_type (stream), ==,
      "multipart/form-data; boundary=BOUNDARY");
  body = read_all_bytes (stream);
  g_assert_cmpmem (g_bytes_get_data (body, NULL), g_bytes_get_size (body),
      expected, strlen (expected));
}

static void
test_length_equals_bytes_produced (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *first = write_file (fixture, "one.mp3", "12345", -1);
  g_autofree gchar *empty = write_file (fixture, "empty.wav", "", 0);
  g_autoptr (GBytes) body = NULL;
  goffset length;

  rd_multipart_stream_add_field (stream, "use_llm", "true");
  rd_multipart_stream_add_field (stream, "empty", "");
  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", first,
          NULL, NULL, &error));
  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", empty,
          "é \"x\".wav", "audio/wav", &error));
  g_assert_no_error (error);

  length = rd_multipart_stream_get_length (stream);
  body = read_all_bytes (stream);
  g_assert_cmpint (length, ==, g_bytes_get_size (body));
}

static void
test_bytes_read_counts_what_was_read (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (fixture, "one.mp3", "12345", -1);
  guint8 buffer[10];
  g_autoptr (GBytes) rest = NULL;

  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", path, NULL,
          NULL, &error));
  g_assert_cmpint (rd_multipart_stream_get_bytes_read (stream), ==, 0);

  g_assert_cmpint (g_input_stream_read (G_INPUT_STREAM (stream), buffer,
          sizeof (buffer), NULL, &error), ==, sizeof (buffer));
  g_assert_no_error (error);
  g_assert_cmpint (rd_multipart_stream_get_bytes_read (stream), ==,
      sizeof (buffer));

  rest = read_all_bytes (stream);
  g_assert_cmpint (rd_multipart_stream_get_bytes_read (stream), ==,
      rd_multipart_stream_get_length (stream));
}

static void
test_one_byte_reads_give_the_same_body (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) whole = rd_multipart_stream_new_with_boundary
      ("b");
  g_autoptr (RdMultipartStream) bytewise =
      rd_multipart_stream_new_with_boundary ("b");
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (fixture, "x.mp3", "abc", -1);
  g_autoptr (GBytes) expected = NULL;
  g_autoptr (GBytes) actual = NULL;

  rd_multipart_stream_add_field (whole, "k", "v");
  rd_multipart_stream_add_file (whole, "files[]", path, NULL, NULL, &error);
  rd_multipart_stream_add_field (bytewise, "k", "v");
  rd_multipart_stream_add_file (bytewise, "files[]", path, NULL, NULL, &error);
  g_assert_no_error (error);

  expected = read_all_bytes (whole);
  actual = read_to_end (G_INPUT_STREAM (bytewise), 1, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (expected, actual));
}

static void
test_names_are_escaped (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream =
      rd_multipart_stream_new_with_boundary ("B");
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (fixture, "f.mp3", "x", -1);
  g_autoptr (GBytes) body = NULL;
  g_autoptr (SoupMultipart) multipart = NULL;
  g_autofree gchar *text = NULL;

  rd_multipart_stream_add_field (stream, "a\"b\\c", "1");
  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", path,
          "evil\"; name=\"x\r\nX-Injected: 1\r\n.mp3", "audio/mpeg\r\nX: y",
          &error));
  g_assert_no_error (error);

  body = read_all_bytes (stream);
  text = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  g_assert_nonnull (strstr (text, "name=\"a\\\"b\\\\c\"\r\n"));
  g_assert_nonnull (strstr (text, "filename=\"evil\\\"; "
          "name=\\\"x%0D%0AX-Injected: 1%0D%0A.mp3\"\r\n"));
  g_assert_null (strstr (text, "\r\nX-Injected"));
  g_assert_null (strstr (text, "\r\nX: y"));

  multipart = parse (rd_multipart_stream_get_content_type (stream), body);
  g_assert_cmpint (soup_multipart_get_length (multipart), ==, 2);
  assert_part (multipart, 0, "a\"b\\c", NULL, NULL, "1", 1);
  assert_part (multipart, 1, "files[]",
      "evil\"; name=\"x%0D%0AX-Injected: 1%0D%0A.mp3", "audio/mpeg  X: y",
      "x", 1);
}

static void
test_missing_file_fails_add (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = g_build_filename (fixture->dir, "gone.mp3", NULL);

  g_assert_false (rd_multipart_stream_add_file (stream, "files[]", path, NULL,
          NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "gone.mp3"));
  g_assert_cmpint (rd_multipart_stream_get_length (stream), ==,
      strlen ("--") + strlen (rd_multipart_stream_get_boundary (stream))
      + strlen ("--\r\n"));
}

static void
test_directory_fails_add (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (GError) error = NULL;

  g_assert_false (rd_multipart_stream_add_file (stream, "files[]",
          fixture->dir, NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE);
}

/* Reads @stream to its end and expects a G_IO_ERROR_INVALID_DATA that names
 * @needle; the error stays for later reads. */
static void
assert_read_fails (RdMultipartStream * stream, const gchar * needle)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) again = NULL;
  g_autoptr (GBytes) body = NULL;
  guint8 byte;

  body = read_to_end (G_INPUT_STREAM (stream), 4096, &error);
  g_assert_null (body);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, needle));

  g_assert_cmpint (g_input_stream_read (G_INPUT_STREAM (stream), &byte, 1,
          NULL, &again), ==, -1);
  g_assert_error (again, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

static void
test_file_shrunk_after_add_fails_read (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (fixture, "seg.mp4", "0123456789", -1);
  g_autofree gchar *unused = NULL;

  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", path, NULL,
          NULL, &error));
  g_assert_no_error (error);
  unused = write_file (fixture, "seg.mp4", "01234", -1);

  assert_read_fails (stream, path);
}

static void
test_file_grown_after_add_fails_read (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (fixture, "seg.mp4", "01234", -1);
  g_autofree gchar *unused = NULL;

  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", path, NULL,
          NULL, &error));
  g_assert_no_error (error);
  unused = write_file (fixture, "seg.mp4", "0123456789", -1);

  assert_read_fails (stream, path);
}

static void
append_to_file (const gchar * path, const gchar * text)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileOutputStream) out = NULL;
  g_autoptr (GError) error = NULL;

  out = g_file_append_to (file, G_FILE_CREATE_NONE, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_write_all (G_OUTPUT_STREAM (out), text, strlen (text), NULL,
      NULL, &error);
  g_assert_no_error (error);
  g_output_stream_close (G_OUTPUT_STREAM (out), NULL, &error);
  g_assert_no_error (error);
}

static void
test_file_grown_while_read_fails_read (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream =
      rd_multipart_stream_new_with_boundary ("B");
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (fixture, "seg.mp4", "0123456789", -1);
  g_autoptr (GString) head = g_string_new ("--B\r\nContent-Disposition: "
      "form-data; name=\"files[]\"; filename=\"seg.mp4\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\n");
  g_autofree guint8 *buffer = g_malloc (head->len + 2);

  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", path, NULL,
          NULL, &error));
  g_assert_no_error (error);

  /* The header and two bytes of the body: the file is open now. */
  g_assert_true (g_input_stream_read_all (G_INPUT_STREAM (stream), buffer,
          head->len + 2, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (buffer, head->len, head->str, head->len);
  append_to_file (path, "more");

  assert_read_fails (stream, path);
}

static void
test_stream_part_shorter_than_length_fails_read (Fixture * fixture,
    gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (GInputStream) body =
      g_memory_input_stream_new_from_data ("abc", 3, NULL);

  rd_multipart_stream_add_stream (stream, "file", "batch.zip",
      "application/zip", body, 4);

  assert_read_fails (stream, "batch.zip");
}

static void
test_stream_part_longer_than_length_fails_read (Fixture * fixture,
    gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (GInputStream) body =
      g_memory_input_stream_new_from_data ("abcde", 5, NULL);

  rd_multipart_stream_add_stream (stream, "file", "batch.zip",
      "application/zip", body, 4);

  assert_read_fails (stream, "batch.zip");
}

static void
test_stream_part_is_sent_and_closed (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (GInputStream) body =
      g_memory_input_stream_new_from_data ("PK\3\4", 4, NULL);
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (SoupMultipart) multipart = NULL;

  rd_multipart_stream_add_stream (stream, "file", "batch.zip",
      "application/zip", body, 4);
  bytes = read_all_bytes (stream);
  g_assert_cmpint (g_bytes_get_size (bytes), ==,
      rd_multipart_stream_get_length (stream));
  g_assert_true (g_input_stream_is_closed (body));

  multipart = parse (rd_multipart_stream_get_content_type (stream), bytes);
  assert_part (multipart, 0, "file", "batch.zip", "application/zip",
      "PK\3\4", 4);
}

static void
test_close_before_end_closes_stream_parts (Fixture * fixture,
    gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (GInputStream) body =
      g_memory_input_stream_new_from_data ("PK\3\4", 4, NULL);
  g_autoptr (GError) error = NULL;
  guint8 buffer[8];

  rd_multipart_stream_add_stream (stream, "file", "batch.zip",
      "application/zip", body, 4);
  g_assert_cmpint (g_input_stream_read (G_INPUT_STREAM (stream), buffer,
          sizeof (buffer), NULL, &error), ==, sizeof (buffer));
  g_assert_true (g_input_stream_close (G_INPUT_STREAM (stream), NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_input_stream_is_closed (body));
}

static void
test_random_boundary_avoids_field_values (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autofree gchar *first = NULL;
  g_autofree gchar *value = NULL;
  g_autofree gchar *expected_type = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autoptr (SoupMultipart) multipart = NULL;
  const gchar *boundary;

  first = g_strdup (rd_multipart_stream_get_boundary (stream));
  g_assert_cmpuint (strlen (first), >=, 32);
  g_assert_cmpuint (strlen (first), <=, 70);

  value = g_strdup_printf ("--%s--", first);
  rd_multipart_stream_add_field (stream, "tricky", value);

  boundary = rd_multipart_stream_get_boundary (stream);
  g_assert_cmpstr (boundary, !=, first);
  g_assert_null (strstr (value, boundary));
  expected_type = g_strdup_printf ("multipart/form-data; boundary=%s",
      boundary);
  g_assert_cmpstr (rd_multipart_stream_get_content_type (stream), ==,
      expected_type);

  body = read_all_bytes (stream);
  multipart = parse (rd_multipart_stream_get_content_type (stream), body);
  g_assert_cmpint (soup_multipart_get_length (multipart), ==, 1);
  assert_part (multipart, 0, "tricky", NULL, NULL, value, strlen (value));
}

static void
test_random_boundaries_differ (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) a = rd_multipart_stream_new ();
  g_autoptr (RdMultipartStream) b = rd_multipart_stream_new ();

  g_assert_cmpstr (rd_multipart_stream_get_boundary (a), !=,
      rd_multipart_stream_get_boundary (b));
}

static void
test_fixed_boundary_in_value_fails_read (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream =
      rd_multipart_stream_new_with_boundary ("sep");

  rd_multipart_stream_add_field (stream, "note", "a --sep b");

  assert_read_fails (stream, "note");
}

static void
test_boundary_with_specials_is_quoted (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream =
      rd_multipart_stream_new_with_boundary ("a b:c");
  g_autoptr (GBytes) body = NULL;
  g_autoptr (SoupMultipart) multipart = NULL;

  g_assert_cmpstr (rd_multipart_stream_get_content_type (stream), ==,
      "multipart/form-data; boundary=\"a b:c\"");
  rd_multipart_stream_add_field (stream, "k", "v");
  body = read_all_bytes (stream);
  multipart = parse (rd_multipart_stream_get_content_type (stream), body);
  assert_part (multipart, 0, "k", NULL, NULL, "v", 1);
}

/* A deterministic, non-repeating-looking pattern for large files. */
static void
fill_pattern (guint8 * buffer, gsize length, guint64 offset)
{
  gsize i;

  for (i = 0; i < length; i++) {
    guint64 x = offset + i;

    buffer[i] = (guint8) ((x * 2654435761u) >> 13);
  }
}

static void
test_large_file_streams_in_small_reads (Fixture * fixture, gconstpointer data)
{
  const gsize file_size = 50 * 1024 * 1024;
  const gsize write_chunk = 1024 * 1024;
  const gsize read_chunk = 1000;
  g_autoptr (RdMultipartStream) stream =
      rd_multipart_stream_new_with_boundary ("B");
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = g_build_filename (fixture->dir, "big.mp4", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileOutputStream) out = NULL;
  g_autoptr (GChecksum) expected = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GChecksum) actual = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guint8 *buffer = g_malloc (write_chunk);
  const gchar *head = "--B\r\nContent-Disposition: form-data; "
      "name=\"files[]\"; filename=\"big.mp4\"\r\n"
      "Content-Type: video/mp4\r\n\r\n";
  const gchar *tail = "\r\n--B--\r\n";
  goffset total = 0;
  gsize offset;
  gssize n;

  out = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, &error);
  g_assert_no_error (error);
  g_checksum_update (expected, (const guchar *) head, strlen (head));
  for (offset = 0; offset < file_size; offset += write_chunk) {
    fill_pattern (buffer, write_chunk, offset);
    g_output_stream_write_all (G_OUTPUT_STREAM (out), buffer, write_chunk,
        NULL, NULL, &error);
    g_assert_no_error (error);
    g_checksum_update (expected, buffer, write_chunk);
  }
  g_checksum_update (expected, (const guchar *) tail, strlen (tail));
  g_output_stream_close (G_OUTPUT_STREAM (out), NULL, &error);
  g_assert_no_error (error);

  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", path, NULL,
          "video/mp4", &error));
  g_assert_no_error (error);

  /* Every read hands out at most what was asked for: the stream keeps no
   * body data of its own. */
  while ((n = g_input_stream_read (G_INPUT_STREAM (stream), buffer,
              read_chunk, NULL, &error)) > 0) {
    g_assert_cmpint (n, <=, read_chunk);
    g_checksum_update (actual, buffer, n);
    total += n;
  }
  g_assert_no_error (error);
  g_assert_cmpint (total, ==, rd_multipart_stream_get_length (stream));
  g_assert_cmpstr (g_checksum_get_string (actual), ==,
      g_checksum_get_string (expected));
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
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = write_file (fixture, "a.mp3", "audio bytes", -1);
  g_autoptr (GBytes) body = NULL;
  g_autoptr (SoupMultipart) multipart = NULL;
  AsyncResult async = { 0 };
  goffset length;
  guint8 *buffer;

  rd_multipart_stream_add_field (stream, "intelligence", "true");
  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", path, NULL,
          "audio/mpeg", &error));
  g_assert_no_error (error);
  length = rd_multipart_stream_get_length (stream);

  /* One byte more than the length, to see the end of the stream too. */
  buffer = g_malloc (length + 1);
  g_main_context_push_thread_default (context);
  g_input_stream_read_all_async (G_INPUT_STREAM (stream), buffer, length + 1,
      G_PRIORITY_DEFAULT, NULL, read_all_done, &async);
  while (!async.done)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  g_assert_no_error (async.error);
  g_assert_cmpuint (async.bytes_read, ==, length);
  body = g_bytes_new_take (buffer, length);
  multipart = parse (rd_multipart_stream_get_content_type (stream), body);
  assert_part (multipart, 0, "intelligence", NULL, NULL, "true", 4);
  assert_part (multipart, 1, "files[]", "a.mp3", "audio/mpeg",
      "audio bytes", 11);
}

typedef struct
{
  GInputStream *stream;
  GByteArray *received;
  guint8 buffer[1000];
  guint reads_left;             /* then stop, leaving the rest */
  gboolean done;
  GError *error;
} SmallReads;

static void
small_read_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  SmallReads *reads = user_data;
  gssize n;

  n = g_input_stream_read_finish (reads->stream, result, &reads->error);
  if (n <= 0 || --reads->reads_left == 0) {
    reads->done = TRUE;
    return;
  }
  g_assert_cmpint (n, <=, sizeof (reads->buffer));
  g_byte_array_append (reads->received, reads->buffer, n);
  g_input_stream_read_async (reads->stream, reads->buffer,
      sizeof (reads->buffer), G_PRIORITY_DEFAULT, NULL, small_read_done, reads);
}

/* Asynchronous reads of 1000 bytes (libsoup's are 8 KiB) over more than one
 * read-ahead block, then synchronous reads for the rest: together they give
 * the body a plain synchronous reader gets. */
static void
test_small_async_then_sync_reads_give_the_same_body (Fixture * fixture,
    gconstpointer data)
{
  const gsize size = 2 * RD_MULTIPART_STREAM_READ_AHEAD + 12345;
  g_autoptr (RdMultipartStream) reference =
      rd_multipart_stream_new_with_boundary ("B");
  g_autoptr (RdMultipartStream) stream =
      rd_multipart_stream_new_with_boundary ("B");
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *contents = g_malloc (size);
  g_autofree gchar *path = NULL;
  g_autoptr (GBytes) expected = NULL;
  g_autoptr (GBytes) rest = NULL;
  SmallReads reads = { 0 };
  gsize i;

  for (i = 0; i < size; i++)
    contents[i] = 'a' + i % 26;
  path = write_file (fixture, "long.wav", contents, size);
  g_assert_true (rd_multipart_stream_add_file (reference, "files[]", path,
          NULL, NULL, &error));
  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", path, NULL,
          NULL, &error));
  g_assert_no_error (error);
  expected = read_all_bytes (reference);

  reads.stream = G_INPUT_STREAM (stream);
  reads.received = g_byte_array_new ();
  reads.reads_left = 600;
  g_main_context_push_thread_default (context);
  g_input_stream_read_async (reads.stream, reads.buffer,
      sizeof (reads.buffer), G_PRIORITY_DEFAULT, NULL, small_read_done, &reads);
  while (!reads.done)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);
  g_assert_no_error (reads.error);
  g_assert_cmpuint (reads.received->len, >, RD_MULTIPART_STREAM_READ_AHEAD);
  g_assert_cmpint (rd_multipart_stream_get_bytes_read (stream), ==,
      reads.received->len);

  rest = read_all_bytes (stream);
  g_byte_array_append (reads.received, g_bytes_get_data (rest, NULL),
      g_bytes_get_size (rest));
  g_assert_cmpmem (reads.received->data, reads.received->len,
      g_bytes_get_data (expected, NULL), g_bytes_get_size (expected));
  g_byte_array_unref (reads.received);
}

typedef struct
{
  GBytes *body;
  gchar *content_type;
  goffset content_length;
} Received;

static void
upload_handler (SoupServer * server, SoupServerMessage * msg,
    const gchar * path, GHashTable * query, gpointer user_data)
{
  Received *received = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupMessageBody *body = soup_server_message_get_request_body (msg);

  received->body = soup_message_body_flatten (body);
  received->content_type =
      g_strdup (soup_message_headers_get_one (headers, "Content-Type"));
  received->content_length = soup_message_headers_get_content_length (headers);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
send_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  AsyncResult *async = user_data;
  g_autoptr (GBytes) reply = NULL;

  reply = soup_session_send_and_read_finish (SOUP_SESSION (source), result,
      &async->error);
  async->done = TRUE;
}

/* The way the API client will use the stream: as a libsoup request body of
 * known length, read asynchronously while the message is sent. */
static void
test_libsoup_uploads_the_body (Fixture * fixture, gconstpointer data)
{
  g_autoptr (RdMultipartStream) stream = rd_multipart_stream_new ();
  g_autoptr (SoupServer) server = soup_server_new (NULL, NULL);
  /* No proxy: only loopback is ever a target. */
  g_autoptr (SoupSession) session =
      soup_session_new_with_options ("proxy-resolver", NULL, NULL);
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *audio = write_file (fixture, "a.mp3", "mp3 data", -1);
  g_autofree gchar *image = write_file (fixture, "b.png", "png data", -1);
  g_autoptr (SoupMultipart) multipart = NULL;
  g_autoptr (GUri) base = NULL;
  g_autoptr (GUri) uri = NULL;
  GSList *uris;
  Received received = { 0 };
  AsyncResult async = { 0 };

  rd_multipart_stream_add_field (stream, "visualize", "true");
  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", audio, NULL,
          "audio/mpeg", &error));
  g_assert_true (rd_multipart_stream_add_file (stream, "files[]", image, NULL,
          "image/png", &error));
  g_assert_no_error (error);

  soup_server_add_handler (server, "/detect/batch", upload_handler, &received,
      NULL);
  g_assert_true (soup_server_listen_local (server, 0,
          SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (server);
  base = g_uri_ref (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  uri = g_uri_parse_relative (base, "/detect/batch", G_URI_FLAGS_NONE, &error);
  g_assert_no_error (error);

  msg = soup_message_new_from_uri ("POST", uri);
  soup_message_set_request_body (msg,
      rd_multipart_stream_get_content_type (stream), G_INPUT_STREAM (stream),
      rd_multipart_stream_get_length (stream));
  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL,
      send_done, &async);
  while (!async.done)
    g_main_context_iteration (NULL, TRUE);

  g_assert_no_error (async.error);
  g_assert_cmpuint (soup_message_get_status (msg), ==, SOUP_STATUS_OK);
  g_assert_cmpint (received.content_length, ==,
      rd_multipart_stream_get_length (stream));
  g_assert_cmpint (g_bytes_get_size (received.body), ==,
      rd_multipart_stream_get_length (stream));
  g_assert_cmpint (rd_multipart_stream_get_bytes_read (stream), ==,
      rd_multipart_stream_get_length (stream));

  multipart = parse (received.content_type, received.body);
  g_assert_cmpint (soup_multipart_get_length (multipart), ==, 3);
  assert_part (multipart, 0, "visualize", NULL, NULL, "true", 4);
  assert_part (multipart, 1, "files[]", "a.mp3", "audio/mpeg", "mp3 data", 8);
  assert_part (multipart, 2, "files[]", "b.png", "image/png", "png data", 8);

  g_bytes_unref (received.body);
  g_free (received.content_type);
}

#define ADD_TEST(path, func) \
  g_test_add ((path), Fixture, NULL, fixture_set_up, (func), \
      fixture_tear_down)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD_TEST ("/multipart-stream/fields-and-files-parse-back",
      test_fields_and_files_parse_back);
  ADD_TEST ("/multipart-stream/body-is-rfc7578-byte-for-byte",
      test_body_is_rfc7578_byte_for_byte);
  ADD_TEST ("/multipart-stream/length-equals-bytes-produced",
      test_length_equals_bytes_produced);
  ADD_TEST ("/multipart-stream/bytes-read-counts-what-was-read",
      test_bytes_read_counts_what_was_read);
  ADD_TEST ("/multipart-stream/one-byte-reads-give-the-same-body",
      test_one_byte_reads_give_the_same_body);
  ADD_TEST ("/multipart-stream/names-are-escaped", test_names_are_escaped);
  ADD_TEST ("/multipart-stream/missing-file-fails-add",
      test_missing_file_fails_add);
  ADD_TEST ("/multipart-stream/directory-fails-add", test_directory_fails_add);
  ADD_TEST ("/multipart-stream/file-shrunk-after-add-fails-read",
      test_file_shrunk_after_add_fails_read);
  ADD_TEST ("/multipart-stream/file-grown-after-add-fails-read",
      test_file_grown_after_add_fails_read);
  ADD_TEST ("/multipart-stream/file-grown-while-read-fails-read",
      test_file_grown_while_read_fails_read);
  ADD_TEST ("/multipart-stream/stream-part-shorter-than-length-fails-read",
      test_stream_part_shorter_than_length_fails_read);
  ADD_TEST ("/multipart-stream/stream-part-longer-than-length-fails-read",
      test_stream_part_longer_than_length_fails_read);
  ADD_TEST ("/multipart-stream/stream-part-is-sent-and-closed",
      test_stream_part_is_sent_and_closed);
  ADD_TEST ("/multipart-stream/close-before-end-closes-stream-parts",
      test_close_before_end_closes_stream_parts);
  ADD_TEST ("/multipart-stream/random-boundary-avoids-field-values",
      test_random_boundary_avoids_field_values);
  ADD_TEST ("/multipart-stream/random-boundaries-differ",
      test_random_boundaries_differ);
  ADD_TEST ("/multipart-stream/fixed-boundary-in-value-fails-read",
      test_fixed_boundary_in_value_fails_read);
  ADD_TEST ("/multipart-stream/boundary-with-specials-is-quoted",
      test_boundary_with_specials_is_quoted);
  ADD_TEST ("/multipart-stream/large-file-streams-in-small-reads",
      test_large_file_streams_in_small_reads);
  ADD_TEST ("/multipart-stream/async-read-on-own-main-context",
      test_async_read_on_own_main_context);
  ADD_TEST ("/multipart-stream/small-async-then-sync-reads-give-the-same-body",
      test_small_async_then_sync_reads_give_the_same_body);
  ADD_TEST ("/multipart-stream/libsoup-uploads-the-body",
      test_libsoup_uploads_the_body);

  return g_test_run ();
}
