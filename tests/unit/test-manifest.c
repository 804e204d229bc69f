/* Unit tests of manifest.json: every field written is read back as it was,
 * the file is replaced atomically and private to its owner, and damaged or
 * foreign documents are refused with a message saying what is wrong, while
 * fields this version does not know are ignored. */

#include "manifest.h"

#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct
{
  gchar *location;              /* the spool, a fresh temp dir */
  gchar *dir;                   /* {location}/batch-000003, created */
} Fixture;

static void
fixture_set_up (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *dir_name = rd_batch_dir_name (3);

  fixture->location = g_dir_make_tmp ("rd-manifest-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->dir = g_build_filename (fixture->location, dir_name, NULL);
  g_assert_cmpint (g_mkdir (fixture->dir, 0700), ==, 0);
}

static void
remove_tree (const gchar * path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  if (dir != NULL) {
    while ((name = g_dir_read_name (dir)) != NULL) {
      g_autofree gchar *child = g_build_filename (path, name, NULL);

      remove_tree (child);
    }
    g_dir_close (dir);
  }
  g_remove (path);
}

static void
fixture_tear_down (Fixture * fixture, gconstpointer user_data)
{
  remove_tree (fixture->location);
  g_free (fixture->location);
  g_free (fixture->dir);
}

/* A batch with every field set to something other than its default. */
static RdBatch *
full_batch (const Fixture * fixture)
{
  RdBatch *batch = rd_batch_new (3, fixture->location);
  RdBatchFile *file;

  batch->state = RD_BATCH_STATE_ERROR;
  batch->upload_mode = RD_UPLOAD_MODE_ZIP;
  batch->settings.callback_url = g_strdup ("https://example.com/hook");
  batch->settings.intelligence = TRUE;
  batch->settings.search_identity = FALSE;
  batch->settings.visualize = TRUE;
  batch->settings.audio_source_tracing = TRUE;
  batch->settings.use_llm = FALSE;
  batch->settings.zero_retention_mode = TRUE;
  batch->settings.frame_length = 2;
  batch->settings.start_region = 0.1;
  batch->settings.end_region = 9.75;
  batch->settings.max_video_secs = 120;
  batch->uuid = g_strdup ("batch-uuid-1");
  batch->status = g_strdup ("partially_failed");
  batch->completed_count = 2;
  batch->failed_count = 1;
  batch->error_http_status = 402;
  batch->error_reason = g_strdup ("Insufficient \"wallet\" balance\n");

  file = rd_batch_file_new ("audio_0-000001.wav", 1234, RD_MEDIA_TYPE_AUDIO,
      G_MAXINT64, 10 * G_GUINT64_CONSTANT (1000000000));
  file->detect_uuid = g_strdup ("detect-uuid-1");
  rd_batch_add_file (batch, file);
  file = rd_batch_file_new ("video-000002.mp4", 5000000000, RD_MEDIA_TYPE_VIDEO,
      0, RD_TIME_NONE);
  rd_batch_add_file (batch, file);
  file = rd_batch_file_new ("image_1-000003.jpg", 1, RD_MEDIA_TYPE_IMAGE,
      RD_TIME_NONE, 0);
  file->detect_uuid = g_strdup ("detect-uuid-3");
  rd_batch_add_file (batch, file);
  return batch;
}

static RdBatch *
minimal_batch (const Fixture * fixture)
{
  RdBatch *batch = rd_batch_new (3, fixture->location);

  batch->state = RD_BATCH_STATE_CLOSED;
  rd_batch_add_file (batch, rd_batch_file_new ("a.wav", 10,
          RD_MEDIA_TYPE_AUDIO, 5, 7));
  return batch;
}

static void
write_ok (const RdBatch * batch)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (rd_manifest_write (batch, &error));
  g_assert_no_error (error);
}

static RdBatch *
read_ok (const gchar * dir)
{
  g_autoptr (GError) error = NULL;
  RdBatch *batch = rd_manifest_read (dir, &error);

  g_assert_no_error (error);
  g_assert_nonnull (batch);
  return batch;
}

static void
write_raw (const Fixture * fixture, const gchar * text)
{
  g_autofree gchar *path = g_build_filename (fixture->dir, RD_MANIFEST_NAME,
      NULL);
  g_autoptr (GError) error = NULL;

  g_assert_true (g_file_set_contents (path, text, -1, &error));
  g_assert_no_error (error);
}

static gchar *
read_raw (const Fixture * fixture)
{
  g_autofree gchar *path = g_build_filename (fixture->dir, RD_MANIFEST_NAME,
      NULL);
  g_autoptr (GError) error = NULL;
  gchar *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  g_assert_no_error (error);
  return text;
}

/* The written manifest parsed as plain JSON, to look at its form. */
static JsonNode *
parse_written (const Fixture * fixture)
{
  g_autofree gchar *text = read_raw (fixture);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

static void
assert_refused (const Fixture * fixture, const gchar * text,
    const gchar * needle)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (RdBatch) batch = NULL;

  write_raw (fixture, text);
  batch = rd_manifest_read (fixture->dir, &error);

  g_assert_null (batch);
  g_assert_error (error, RD_ERROR, RD_ERROR_FORMAT);
  if (strstr (error->message, needle) == NULL)
    g_error ("\"%s\" does not name \"%s\"", error->message, needle);
}

/* A valid document with @files_json as its files and @extra spliced in
 * at the top level. */
static gchar *
document (const gchar * extra, const gchar * files_json)
{
  return g_strdup_printf ("{\"version\": 1, \"index\": 3, \"state\": "
      "\"closed\", %s \"files\": %s}", extra, files_json);
}

#define ONE_FILE "[{\"name\": \"a.wav\", \"size\": 10, \"media_type\": \"audio\"}]"

static void
test_path_in_batch_dir (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = rd_batch_new (3, fixture->location);
  g_autofree gchar *path = rd_manifest_path (batch);
  g_autofree gchar *expected = g_build_filename (fixture->dir,
      "manifest.json", NULL);

  g_assert_cmpstr (path, ==, expected);
}

/* @written, written and read back, has every field as it was. */
static void
assert_round_trips (const Fixture * fixture, const RdBatch * written)
{
  g_autoptr (RdBatch) read = NULL;
  guint i;

  write_ok (written);
  read = read_ok (fixture->dir);

  g_assert_cmpuint (read->index, ==, written->index);
  g_assert_cmpstr (read->dir, ==, written->dir);
  g_assert_cmpint (read->state, ==, written->state);
  g_assert_cmpint (read->upload_mode, ==, written->upload_mode);
  g_assert_cmpstr (read->settings.callback_url, ==,
      written->settings.callback_url);
  g_assert_cmpint (read->settings.intelligence, ==,
      written->settings.intelligence);
  g_assert_cmpint (read->settings.search_identity, ==,
      written->settings.search_identity);
  g_assert_cmpint (read->settings.visualize, ==, written->settings.visualize);
  g_assert_cmpint (read->settings.audio_source_tracing, ==,
      written->settings.audio_source_tracing);
  g_assert_cmpint (read->settings.use_llm, ==, written->settings.use_llm);
  g_assert_cmpint (read->settings.zero_retention_mode, ==,
      written->settings.zero_retention_mode);
  g_assert_cmpuint (read->settings.frame_length, ==,
      written->settings.frame_length);
  g_assert_cmpfloat (read->settings.start_region, ==,
      written->settings.start_region);
  g_assert_cmpfloat (read->settings.end_region, ==,
      written->settings.end_region);
  g_assert_cmpfloat (read->settings.max_video_secs, ==,
      written->settings.max_video_secs);
  g_assert_cmpstr (read->uuid, ==, written->uuid);
  g_assert_cmpstr (read->status, ==, written->status);
  g_assert_cmpuint (read->completed_count, ==, written->completed_count);
  g_assert_cmpuint (read->failed_count, ==, written->failed_count);
  g_assert_cmpint (read->upload_started_us, ==, written->upload_started_us);
  g_assert_cmpuint (read->error_http_status, ==, written->error_http_status);
  g_assert_cmpstr (read->error_reason, ==, written->error_reason);
  g_assert_cmpuint (read->total_bytes, ==, written->total_bytes);
  g_assert_cmpuint (read->files->len, ==, written->files->len);
  for (i = 0; i < written->files->len; i++) {
    const RdBatchFile *a = g_ptr_array_index (written->files, i);
    const RdBatchFile *b = g_ptr_array_index (read->files, i);

    g_assert_cmpstr (b->name, ==, a->name);
    g_assert_cmpuint (b->size, ==, a->size);
    g_assert_cmpint (b->media_type, ==, a->media_type);
    g_assert_cmpuint (b->running_time, ==, a->running_time);
    g_assert_cmpuint (b->duration, ==, a->duration);
    g_assert_cmpstr (b->detect_uuid, ==, a->detect_uuid);
  }
}

static void
test_round_trip_every_field (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = full_batch (fixture);

  assert_round_trips (fixture, batch);
}

/* Text that JSON must escape, and some it must not: quotes, backslashes,
 * every control character, DEL, and UTF-8 of 2, 3 and 4 bytes. */
static gchar *
hostile_text (const gchar * prefix)
{
  GString *text = g_string_new (prefix);
  guint c;

  g_string_append (text, " \"quoted\" back\\slash \\\" / ");
  for (c = 0x01; c < 0x20; c++)
    g_string_append_c (text, (gchar) c);
  /* DEL, then "é€😀" */
  g_string_append (text, "\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 end");
  return g_string_free (text, FALSE);
}

/* full_batch() with hostile text in every string the manifest holds but the
 * file names, which must stay plain. */
static RdBatch *
hostile_batch (const Fixture * fixture)
{
  RdBatch *batch = full_batch (fixture);
  guint i;

  g_free (batch->settings.callback_url);
  batch->settings.callback_url = hostile_text ("https://example.com/?q=");
  g_free (batch->uuid);
  batch->uuid = hostile_text ("uuid");
  g_free (batch->status);
  batch->status = hostile_text ("status");
  g_free (batch->error_reason);
  batch->error_reason = hostile_text ("reason");
  batch->upload_started_us = G_GINT64_CONSTANT (1700000000123456);
  for (i = 0; i < batch->files->len; i++) {
    RdBatchFile *file = g_ptr_array_index (batch->files, i);

    g_free (file->detect_uuid);
    file->detect_uuid = hostile_text ("detect");
  }
  return batch;
}

static void
test_round_trip_escaped_strings (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = hostile_batch (fixture);

  assert_round_trips (fixture, batch);
}

/* Plain JSON, whatever the strings hold: json-glib itself parses it to the
 * same strings, and no byte below 0x20 but the line breaks, nor DEL, is left
 * raw (a lenient parser would not notice those). */
static void
test_write_escapes_strings (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = hostile_batch (fixture);
  g_autoptr (JsonNode) root = NULL;
  g_autofree gchar *text = NULL;
  JsonObject *object;
  const gchar *p;

  write_ok (batch);
  root = parse_written (fixture);
  object = json_node_get_object (root);
  text = read_raw (fixture);

  g_assert_cmpstr (json_object_get_string_member (object, "uuid"), ==,
      batch->uuid);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member
          (object, "error"), "reason"), ==, batch->error_reason);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member
          (object, "settings"), "callback_url"), ==,
      batch->settings.callback_url);
  for (p = text; *p != '\0'; p++) {
    if (*p != '\n' && ((guchar) * p < 0x20 || *p == 0x7f))
      g_error ("byte 0x%02x left raw at %d", (guchar) * p, (gint) (p - text));
  }
  g_assert_nonnull (strstr (text, "\\\"quoted\\\" back\\\\slash "));
  g_assert_nonnull (strstr (text, "\\b\\t\\n\\u000b\\f\\r"));
  g_assert_nonnull (strstr (text, "\\u001f"));
  g_assert_nonnull (strstr (text,
          "\\u007f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 end"));
}

/* Unknown times are null in the text and RD_TIME_NONE again when read, and
 * so is a time beyond what a JSON integer of json-glib holds. */
static void
test_round_trip_time_none (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) written = minimal_batch (fixture);
  g_autoptr (RdBatch) read = NULL;
  g_autoptr (JsonNode) root = NULL;
  RdBatchFile *file = g_ptr_array_index (written->files, 0);
  JsonObject *object;

  file->running_time = RD_TIME_NONE;
  file->duration = (guint64) G_MAXINT64 + 1;
  write_ok (written);
  root = parse_written (fixture);
  object = json_array_get_object_element (json_object_get_array_member
      (json_node_get_object (root), "files"), 0);
  read = read_ok (fixture->dir);
  file = g_ptr_array_index (read->files, 0);

  g_assert_true (json_object_get_null_member (object, "running_time"));
  g_assert_true (json_object_get_null_member (object, "duration"));
  g_assert_cmpuint (file->running_time, ==, RD_TIME_NONE);
  g_assert_cmpuint (file->duration, ==, RD_TIME_NONE);
}

static void
test_round_trip_unset_fields (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) written = rd_batch_new (3, fixture->location);
  g_autoptr (RdBatch) read = NULL;

  write_ok (written);
  read = read_ok (fixture->dir);

  g_assert_cmpint (read->state, ==, RD_BATCH_STATE_OPEN);
  g_assert_cmpint (read->upload_mode, ==, RD_UPLOAD_MODE_FILES);
  g_assert_null (read->settings.callback_url);
  g_assert_cmpint (read->settings.intelligence, ==, RD_SETTING_UNSET);
  g_assert_cmpuint (read->settings.frame_length, ==, 0);
  g_assert_cmpfloat (read->settings.start_region, <, 0);
  g_assert_null (read->uuid);
  g_assert_null (read->status);
  g_assert_cmpuint (read->error_http_status, ==, 0);
  g_assert_null (read->error_reason);
  g_assert_cmpuint (read->files->len, ==, 0);
}

static void
test_round_trip_error_without_status (Fixture * fixture,
    gconstpointer user_data)
{
  g_autoptr (RdBatch) written = minimal_batch (fixture);
  g_autoptr (RdBatch) read = NULL;

  written->state = RD_BATCH_STATE_ERROR;
  written->error_reason = g_strdup ("connection refused");
  write_ok (written);
  read = read_ok (fixture->dir);

  g_assert_cmpuint (read->error_http_status, ==, 0);
  g_assert_cmpstr (read->error_reason, ==, "connection refused");
}

static void
test_write_time_none_is_null (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = full_batch (fixture);
  g_autoptr (JsonNode) root = NULL;
  JsonObject *file;

  write_ok (batch);
  root = parse_written (fixture);
  file = json_array_get_object_element (json_object_get_array_member
      (json_node_get_object (root), "files"), 1);

  g_assert_true (json_object_get_null_member (file, "duration"));
  g_assert_cmpint (json_object_get_int_member (file, "running_time"), ==, 0);
}

static void
test_write_known_fields_only (Fixture * fixture, gconstpointer user_data)
{
  const gchar *top[] = {
    "version", "index", "state", "upload_mode", "settings", "uuid", "status",
    "completed_count", "failed_count", "total_files", "total_bytes", "error",
    "files", NULL
  };
  const gchar *per_file[] = {
    "name", "size", "media_type", "running_time", "duration", "detect_uuid",
    NULL
  };
  g_autoptr (RdBatch) batch = full_batch (fixture);
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GList) top_members = NULL;
  g_autoptr (GList) file_members = NULL;
  g_autofree gchar *text = NULL;
  JsonObject *object;
  GList *l;
  guint i;

  write_ok (batch);
  root = parse_written (fixture);
  object = json_node_get_object (root);
  top_members = json_object_get_members (object);
  file_members = json_object_get_members (json_array_get_object_element
      (json_object_get_array_member (object, "files"), 0));

  for (l = top_members, i = 0; l != NULL; l = l->next, i++)
    g_assert_cmpstr (l->data, ==, top[i]);
  g_assert_null (top[i]);
  for (l = file_members, i = 0; l != NULL; l = l->next, i++)
    g_assert_cmpstr (l->data, ==, per_file[i]);
  g_assert_null (per_file[i]);
  text = read_raw (fixture);
  g_assert_null (strstr (text, "token"));
  g_assert_null (strstr (text, "Bearer"));
}

static void
test_write_settings_as_wire_strings (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = rd_batch_new (3, fixture->location);
  g_autoptr (JsonNode) root = NULL;
  JsonObject *settings;
  g_autoptr (GList) members = NULL;

  batch->settings.use_llm = TRUE;
  batch->settings.frame_length = 4;
  batch->settings.start_region = 0.1;
  write_ok (batch);
  root = parse_written (fixture);
  settings = json_object_get_object_member (json_node_get_object (root),
      "settings");
  members = json_object_get_members (settings);

  g_assert_cmpuint (g_list_length (members), ==, 3);
  g_assert_cmpstr (g_list_nth_data (members, 0), ==, "frame_length");
  g_assert_cmpstr (g_list_nth_data (members, 1), ==, "start_region");
  g_assert_cmpstr (g_list_nth_data (members, 2), ==, "use_llm");
  g_assert_cmpstr (json_object_get_string_member (settings, "frame_length"),
      ==, "4");
  g_assert_cmpstr (json_object_get_string_member (settings, "start_region"),
      ==, "0.1");
  g_assert_cmpstr (json_object_get_string_member (settings, "use_llm"), ==,
      "true");
}

/* minimal_batch() with a setting, as json-glib's JsonGenerator printed it
 * (pretty, indent 2): the form people have seen in their spools. */
/* *INDENT-OFF* */
static const gchar minimal_manifest[] =
  "{\n"
  "  \"version\" : 1,\n"
  "  \"index\" : 3,\n"
  "  \"state\" : \"closed\",\n"
  "  \"upload_mode\" : \"files\",\n"
  "  \"settings\" : {\n"
  "    \"use_llm\" : \"true\"\n"
  "  },\n"
  "  \"uuid\" : null,\n"
  "  \"status\" : null,\n"
  "  \"completed_count\" : 0,\n"
  "  \"failed_count\" : 0,\n"
  "  \"total_files\" : 1,\n"
  "  \"total_bytes\" : 10,\n"
  "  \"error\" : null,\n"
  "  \"files\" : [\n"
  "    {\n"
  "      \"name\" : \"a.wav\",\n"
  "      \"size\" : 10,\n"
  "      \"media_type\" : \"audio\",\n"
  "      \"running_time\" : 5,\n"
  "      \"duration\" : 7,\n"
  "      \"detect_uuid\" : null\n"
  "    }\n"
  "  ]\n"
  "}\n";
/* *INDENT-ON* */

static void
test_write_pretty_printed (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = minimal_batch (fixture);
  g_autofree gchar *text = NULL;

  batch->settings.use_llm = TRUE;
  write_ok (batch);
  text = read_raw (fixture);

  g_assert_cmpstr (text, ==, minimal_manifest);
}

static void
test_write_mode_0600 (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = minimal_batch (fixture);
  g_autofree gchar *path = rd_manifest_path (batch);
  GStatBuf st;

  write_ok (batch);

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
}

static void
test_write_replaces_with_mode_0600 (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = minimal_batch (fixture);
  g_autofree gchar *path = rd_manifest_path (batch);
  GStatBuf st;

  write_raw (fixture, "{}");
  g_assert_cmpint (g_chmod (path, 0644), ==, 0);
  write_ok (batch);

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
}

static void
test_write_replaces_previous (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = minimal_batch (fixture);
  g_autoptr (RdBatch) read = NULL;

  write_ok (batch);
  batch->state = RD_BATCH_STATE_SUBMITTED;
  batch->uuid = g_strdup ("u-1");
  write_ok (batch);
  read = read_ok (fixture->dir);

  g_assert_cmpint (read->state, ==, RD_BATCH_STATE_SUBMITTED);
  g_assert_cmpstr (read->uuid, ==, "u-1");
}

static void
test_write_leaves_no_temp_files (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = full_batch (fixture);
  g_autoptr (GDir) dir = NULL;
  const gchar *name;
  guint count = 0;

  write_ok (batch);
  batch->state = RD_BATCH_STATE_DONE;
  write_ok (batch);
  dir = g_dir_open (fixture->dir, 0, NULL);
  g_assert_nonnull (dir);

  while ((name = g_dir_read_name (dir)) != NULL) {
    g_assert_cmpstr (name, ==, RD_MANIFEST_NAME);
    count++;
  }
  g_assert_cmpuint (count, ==, 1);
}

static void
test_write_into_missing_dir_fails (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = rd_batch_new (4, fixture->location);
  g_autoptr (GError) error = NULL;

  g_assert_false (rd_manifest_write (batch, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

static void
test_read_missing_file_is_file_error (Fixture * fixture,
    gconstpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (RdBatch) batch = rd_manifest_read (fixture->dir, &error);

  g_assert_null (batch);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

static void
test_read_uses_given_dir (Fixture * fixture, gconstpointer user_data)
{
  g_autofree gchar *doc = document ("", ONE_FILE);
  g_autofree gchar *moved = g_build_filename (fixture->location, "elsewhere",
      NULL);
  g_autoptr (RdBatch) batch = NULL;

  write_raw (fixture, doc);
  g_assert_cmpint (g_rename (fixture->dir, moved), ==, 0);
  batch = read_ok (moved);

  g_assert_cmpstr (batch->dir, ==, moved);
  g_assert_cmpuint (batch->index, ==, 3);
}

static void
test_read_optional_fields_default (Fixture * fixture, gconstpointer user_data)
{
  g_autofree gchar *doc = document ("", ONE_FILE);
  g_autoptr (RdBatch) batch = NULL;
  const RdBatchFile *file;

  write_raw (fixture, doc);
  batch = read_ok (fixture->dir);
  file = g_ptr_array_index (batch->files, 0);

  g_assert_cmpint (batch->state, ==, RD_BATCH_STATE_CLOSED);
  g_assert_cmpint (batch->upload_mode, ==, RD_UPLOAD_MODE_FILES);
  g_assert_cmpint (batch->settings.visualize, ==, RD_SETTING_UNSET);
  g_assert_null (batch->uuid);
  g_assert_null (batch->status);
  g_assert_cmpuint (batch->completed_count, ==, 0);
  g_assert_cmpuint (batch->failed_count, ==, 0);
  g_assert_null (batch->error_reason);
  g_assert_cmpuint (batch->total_bytes, ==, 10);
  g_assert_cmpuint (file->running_time, ==, RD_TIME_NONE);
  g_assert_cmpuint (file->duration, ==, RD_TIME_NONE);
  g_assert_null (file->detect_uuid);
}

static void
test_read_unknown_fields_ignored (Fixture * fixture, gconstpointer user_data)
{
  g_autofree gchar *doc = document ("\"future\": {\"x\": [1, 2]}, "
      "\"error\": {\"http_status\": 500, \"reason\": \"boom\", \"retry\": 3},",
      "[{\"name\": \"a.wav\", \"size\": 10, \"media_type\": \"audio\", "
      "\"checksum\": \"abc\"}]");
  g_autoptr (RdBatch) batch = NULL;

  write_raw (fixture, doc);
  batch = read_ok (fixture->dir);

  g_assert_cmpuint (batch->files->len, ==, 1);
  g_assert_cmpuint (batch->error_http_status, ==, 500);
  g_assert_cmpstr (batch->error_reason, ==, "boom");
}

static void
test_read_truncated_refused (Fixture * fixture, gconstpointer user_data)
{
  g_autoptr (RdBatch) batch = full_batch (fixture);
  g_autofree gchar *text = NULL;

  write_ok (batch);
  text = read_raw (fixture);
  text[strlen (text) / 2] = '\0';

  assert_refused (fixture, text, fixture->dir);
}

static void
test_read_empty_refused (Fixture * fixture, gconstpointer user_data)
{
  assert_refused (fixture, "", "not a JSON object");
}

static void
test_read_not_json_refused (Fixture * fixture, gconstpointer user_data)
{
  assert_refused (fixture, "state=closed\n", RD_MANIFEST_NAME);
}

static void
test_read_not_object_refused (Fixture * fixture, gconstpointer user_data)
{
  assert_refused (fixture, "[1, 2, 3]", "not a JSON object");
}

static void
test_read_missing_version_refused (Fixture * fixture, gconstpointer user_data)
{
  assert_refused (fixture, "{\"index\": 3, \"state\": \"closed\", "
      "\"files\": []}", "version is missing");
}

static void
test_read_unsupported_version_refused (Fixture * fixture,
    gconstpointer user_data)
{
  assert_refused (fixture, "{\"version\": 2, \"index\": 3, \"state\": "
      "\"closed\", \"files\": []}", "version 2");
}

static void
test_read_index_not_integer_refused (Fixture * fixture, gconstpointer user_data)
{
  assert_refused (fixture, "{\"version\": 1, \"index\": \"3\", \"state\": "
      "\"closed\", \"files\": []}", "index is not an integer");
}

static void
test_read_index_too_large_refused (Fixture * fixture, gconstpointer user_data)
{
  assert_refused (fixture, "{\"version\": 1, \"index\": 4294967296, "
      "\"state\": \"closed\", \"files\": []}", "index 4294967296");
}

static void
test_read_missing_state_refused (Fixture * fixture, gconstpointer user_data)
{
  assert_refused (fixture, "{\"version\": 1, \"index\": 3, \"files\": []}",
      "state is missing");
}

static void
test_read_unknown_state_refused (Fixture * fixture, gconstpointer user_data)
{
  assert_refused (fixture, "{\"version\": 1, \"index\": 3, \"state\": "
      "\"processing\", \"files\": []}", "state \"processing\"");
}

static void
test_read_unknown_upload_mode_refused (Fixture * fixture,
    gconstpointer user_data)
{
  g_autofree gchar *doc = document ("\"upload_mode\": \"tar\",", ONE_FILE);

  assert_refused (fixture, doc, "upload_mode \"tar\"");
}

static void
test_read_missing_files_refused (Fixture * fixture, gconstpointer user_data)
{
  assert_refused (fixture, "{\"version\": 1, \"index\": 3, \"state\": "
      "\"closed\"}", "files is missing");
}

static void
test_read_files_not_array_refused (Fixture * fixture, gconstpointer user_data)
{
  g_autofree gchar *doc = document ("", "{}");

  assert_refused (fixture, doc, "files is not an array");
}

static void
test_read_file_without_name_refused (Fixture * fixture, gconstpointer user_data)
{
  g_autofree gchar *doc = document ("", "[{\"size\": 1, "
      "\"media_type\": \"audio\"}]");

  assert_refused (fixture, doc, "files[0].name is missing");
}

static void
test_read_file_name_with_slash_refused (Fixture * fixture,
    gconstpointer user_data)
{
  g_autofree gchar *doc = document ("", "[{\"name\": \"../../etc/x.wav\", "
      "\"size\": 1, \"media_type\": \"audio\"}]");

  assert_refused (fixture, doc, "files[0].name \"../../etc/x.wav\"");
}

static void
test_read_file_size_negative_refused (Fixture * fixture,
    gconstpointer user_data)
{
  g_autofree gchar *doc = document ("", "[{\"name\": \"a.wav\", "
      "\"size\": -1, \"media_type\": \"audio\"}]");

  assert_refused (fixture, doc, "files[0].size -1");
}

static void
test_read_file_size_string_refused (Fixture * fixture, gconstpointer user_data)
{
  g_autofree gchar *doc = document ("", "[{\"name\": \"a.wav\", "
      "\"size\": \"10\", \"media_type\": \"audio\"}]");

  assert_refused (fixture, doc, "files[0].size is not an integer");
}

static void
test_read_file_unknown_media_type_refused (Fixture * fixture,
    gconstpointer user_data)
{
  g_autofree gchar *doc = document ("", "[{\"name\": \"a.wav\", "
      "\"size\": 1, \"media_type\": \"text\"}]");

  assert_refused (fixture, doc, "files[0].media_type \"text\"");
}

static void
test_read_file_running_time_float_refused (Fixture * fixture,
    gconstpointer user_data)
{
  g_autofree gchar *doc = document ("", "[{\"name\": \"a.wav\", "
      "\"size\": 1, \"media_type\": \"audio\", \"running_time\": 1.5}]");

  assert_refused (fixture, doc, "files[0].running_time");
}

static void
test_read_total_bytes_mismatch_refused (Fixture * fixture,
    gconstpointer user_data)
{
  g_autofree gchar *doc = document ("\"total_bytes\": 11,", ONE_FILE);

  assert_refused (fixture, doc, "total_bytes 11");
}

static void
test_read_total_files_mismatch_refused (Fixture * fixture,
    gconstpointer user_data)
{
  g_autofree gchar *doc = document ("\"total_files\": 2,", ONE_FILE);

  assert_refused (fixture, doc, "total_files 2");
}

static void
test_read_unknown_setting_refused (Fixture * fixture, gconstpointer user_data)
{
  g_autofree gchar *doc = document ("\"settings\": {\"model_types\": "
      "\"image\"},", ONE_FILE);

  assert_refused (fixture, doc, "model_types");
}

static void
test_read_malformed_setting_refused (Fixture * fixture, gconstpointer user_data)
{
  g_autofree gchar *doc = document ("\"settings\": {\"frame_length\": "
      "\"9\"},", ONE_FILE);

  assert_refused (fixture, doc, "frame_length \"9\"");
}

static void
test_read_setting_not_string_refused (Fixture * fixture,
    gconstpointer user_data)
{
  g_autofree gchar *doc = document ("\"settings\": {\"intelligence\": true},",
      ONE_FILE);

  assert_refused (fixture, doc, "settings.intelligence is not a string");
}

static void
test_read_error_not_object_refused (Fixture * fixture, gconstpointer user_data)
{
  g_autofree gchar *doc = document ("\"error\": \"boom\",", ONE_FILE);

  assert_refused (fixture, doc, "error is neither an object nor null");
}

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("/manifest/path/in-batch-dir", test_path_in_batch_dir);
  ADD ("/manifest/round-trip/every-field", test_round_trip_every_field);
  ADD ("/manifest/round-trip/escaped-strings", test_round_trip_escaped_strings);
  ADD ("/manifest/round-trip/time-none", test_round_trip_time_none);
  ADD ("/manifest/round-trip/unset-fields", test_round_trip_unset_fields);
  ADD ("/manifest/round-trip/error-without-http-status",
      test_round_trip_error_without_status);
  ADD ("/manifest/write/time-none-is-null", test_write_time_none_is_null);
  ADD ("/manifest/write/escapes-strings", test_write_escapes_strings);
  ADD ("/manifest/write/known-fields-only", test_write_known_fields_only);
  ADD ("/manifest/write/settings-as-wire-strings",
      test_write_settings_as_wire_strings);
  ADD ("/manifest/write/pretty-printed", test_write_pretty_printed);
  ADD ("/manifest/write/mode-0600", test_write_mode_0600);
  ADD ("/manifest/write/replaces-with-mode-0600",
      test_write_replaces_with_mode_0600);
  ADD ("/manifest/write/replaces-previous", test_write_replaces_previous);
  ADD ("/manifest/write/leaves-no-temp-files", test_write_leaves_no_temp_files);
  ADD ("/manifest/write/into-missing-dir-fails",
      test_write_into_missing_dir_fails);
  ADD ("/manifest/read/missing-file-is-file-error",
      test_read_missing_file_is_file_error);
  ADD ("/manifest/read/uses-given-dir", test_read_uses_given_dir);
  ADD ("/manifest/read/optional-fields-default",
      test_read_optional_fields_default);
  ADD ("/manifest/read/unknown-fields-ignored",
      test_read_unknown_fields_ignored);
  ADD ("/manifest/read/truncated-refused", test_read_truncated_refused);
  ADD ("/manifest/read/empty-refused", test_read_empty_refused);
  ADD ("/manifest/read/not-json-refused", test_read_not_json_refused);
  ADD ("/manifest/read/not-object-refused", test_read_not_object_refused);
  ADD ("/manifest/read/missing-version-refused",
      test_read_missing_version_refused);
  ADD ("/manifest/read/unsupported-version-refused",
      test_read_unsupported_version_refused);
  ADD ("/manifest/read/index-not-integer-refused",
      test_read_index_not_integer_refused);
  ADD ("/manifest/read/index-too-large-refused",
      test_read_index_too_large_refused);
  ADD ("/manifest/read/missing-state-refused", test_read_missing_state_refused);
  ADD ("/manifest/read/unknown-state-refused", test_read_unknown_state_refused);
  ADD ("/manifest/read/unknown-upload-mode-refused",
      test_read_unknown_upload_mode_refused);
  ADD ("/manifest/read/missing-files-refused", test_read_missing_files_refused);
  ADD ("/manifest/read/files-not-array-refused",
      test_read_files_not_array_refused);
  ADD ("/manifest/read/file-without-name-refused",
      test_read_file_without_name_refused);
  ADD ("/manifest/read/file-name-with-slash-refused",
      test_read_file_name_with_slash_refused);
  ADD ("/manifest/read/file-size-negative-refused",
      test_read_file_size_negative_refused);
  ADD ("/manifest/read/file-size-string-refused",
      test_read_file_size_string_refused);
  ADD ("/manifest/read/file-unknown-media-type-refused",
      test_read_file_unknown_media_type_refused);
  ADD ("/manifest/read/file-running-time-float-refused",
      test_read_file_running_time_float_refused);
  ADD ("/manifest/read/total-bytes-mismatch-refused",
      test_read_total_bytes_mismatch_refused);
  ADD ("/manifest/read/total-files-mismatch-refused",
      test_read_total_files_mismatch_refused);
  ADD ("/manifest/read/unknown-setting-refused",
      test_read_unknown_setting_refused);
  ADD ("/manifest/read/malformed-setting-refused",
      test_read_malformed_setting_refused);
  ADD ("/manifest/read/setting-not-string-refused",
      test_read_setting_not_string_refused);
  ADD ("/manifest/read/error-not-object-refused",
      test_read_error_not_object_refused);

  return g_test_run ();
}
