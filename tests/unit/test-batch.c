/* Unit tests of the batch rules: when a file joins a batch and when the
 * batch must be closed first, what the API would refuse, the extension
 * allow-list and content types, and the batch directory names. */

#include "batch.h"

#include <string.h>

#define MB G_GUINT64_CONSTANT (1000000)
#define SECOND_NS G_GUINT64_CONSTANT (1000000000)

/* A batch in "/spool" holding @n_files audio files of @size bytes each. */
static RdBatch *
batch_with_files (guint n_files, guint64 size)
{
  RdBatch *batch = rd_batch_new (1, "/spool");
  guint i;

  for (i = 0; i < n_files; i++) {
    g_autofree gchar *name = g_strdup_printf ("audio_0-%06u.wav", i);

    rd_batch_add_file (batch, rd_batch_file_new (name, size,
            RD_MEDIA_TYPE_AUDIO, i * SECOND_NS, SECOND_NS));
  }
  return batch;
}

static void
assert_validate_fails (const RdBatch * batch, gint code, const gchar * needle)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (rd_batch_validate (batch, &error));
  g_assert_error (error, RD_ERROR, code);
  g_assert_nonnull (strstr (error->message, needle));
}

static void
test_new_sets_dir_and_defaults (void)
{
  g_autoptr (RdBatch) batch = rd_batch_new (3, "/spool");

  g_assert_cmpuint (batch->index, ==, 3);
  g_assert_cmpstr (batch->dir, ==, "/spool/batch-000003");
  g_assert_cmpint (batch->state, ==, RD_BATCH_STATE_OPEN);
  g_assert_cmpuint (batch->files->len, ==, 0);
  g_assert_cmpuint (batch->total_bytes, ==, 0);
  g_assert_cmpint (batch->upload_mode, ==, RD_UPLOAD_MODE_FILES);
  g_assert_cmpint (batch->settings.intelligence, ==, RD_SETTING_UNSET);
  g_assert_null (batch->uuid);
  g_assert_null (batch->status);
  g_assert_null (batch->error_reason);
}

static void
test_free_accepts_null (void)
{
  rd_batch_free (NULL);
  rd_batch_file_free (NULL);
}

static void
test_dir_name_six_digits (void)
{
  g_autofree gchar *small = rd_batch_dir_name (7);
  g_autofree gchar *large = rd_batch_dir_name (1234567);

  g_assert_cmpstr (small, ==, "batch-000007");
  g_assert_cmpstr (large, ==, "batch-1234567");
}

static void
test_dir_name_round_trip (void)
{
  const guint indexes[] = { 0, 1, 42, 999999, 1000000, G_MAXUINT };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (indexes); i++) {
    g_autofree gchar *name = rd_batch_dir_name (indexes[i]);
    guint parsed = 0;

    g_assert_true (rd_batch_parse_dir_name (name, &parsed));
    g_assert_cmpuint (parsed, ==, indexes[i]);
  }
}

static void
test_dir_name_others_refused (void)
{
  const gchar *names[] = {
    "", "batch-", "batch-7", "batch-0000007", "batch-00000a", "batch--00001",
    "batch-+00001", "batch- 00001", "Batch-000001", "batch-000001x",
    "batch-000001/", "batch-99999999999", "xbatch-000001", "manifest.json",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (names); i++) {
    guint parsed = 12345;

    g_assert_false (rd_batch_parse_dir_name (names[i], &parsed));
    g_assert_cmpuint (parsed, ==, 12345);
  }
  g_assert_false (rd_batch_parse_dir_name (NULL, &i));
}

static void
test_add_file_keeps_total (void)
{
  g_autoptr (RdBatch) batch = rd_batch_new (0, "/spool");

  rd_batch_add_file (batch, rd_batch_file_new ("a.wav", 100,
          RD_MEDIA_TYPE_AUDIO, RD_TIME_NONE, RD_TIME_NONE));
  rd_batch_add_file (batch, rd_batch_file_new ("b.jpg", 23,
          RD_MEDIA_TYPE_IMAGE, RD_TIME_NONE, RD_TIME_NONE));

  g_assert_cmpuint (batch->files->len, ==, 2);
  g_assert_cmpuint (batch->total_bytes, ==, 123);
}

static void
test_file_path_is_in_dir (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (1, 10);
  g_autofree gchar *path =
      rd_batch_file_path (batch, g_ptr_array_index (batch->files, 0));

  g_assert_cmpstr (path, ==, "/spool/batch-000001/audio_0-000000.wav");
}

static void
test_dup_paths_full_paths (void)
{
  const gchar *expected[] = {
    "/spool/batch-000001/audio_0-000000.wav",
    "/spool/batch-000001/audio_0-000001.wav",
    NULL
  };
  g_autoptr (RdBatch) batch = batch_with_files (2, 10);
  g_auto (GStrv) paths = rd_batch_dup_paths (batch);

  g_assert_cmpstrv (paths, expected);
}

static void
test_dup_paths_empty_batch (void)
{
  g_autoptr (RdBatch) batch = rd_batch_new (0, "/spool");
  g_auto (GStrv) paths = rd_batch_dup_paths (batch);

  g_assert_nonnull (paths);
  g_assert_null (paths[0]);
}

static void
test_fit_empty_takes_file_of_max_bytes (void)
{
  g_autoptr (RdBatch) batch = rd_batch_new (0, "/spool");

  g_assert_cmpint (rd_batch_check_fit (batch, 100, 10, 100), ==,
      RD_BATCH_FIT_OK);
}

static void
test_fit_empty_never_takes_oversize (void)
{
  g_autoptr (RdBatch) batch = rd_batch_new (0, "/spool");

  g_assert_cmpint (rd_batch_check_fit (batch, 101, 10, 100), ==,
      RD_BATCH_FIT_NEVER);
}

static void
test_fit_nonempty_never_takes_oversize (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (1, 10);

  g_assert_cmpint (rd_batch_check_fit (batch, 101, 10, 100), ==,
      RD_BATCH_FIT_NEVER);
}

static void
test_fit_ok_below_max_files (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (9, 1);

  g_assert_cmpint (rd_batch_check_fit (batch, 1, 10, 100), ==, RD_BATCH_FIT_OK);
}

static void
test_fit_closes_at_max_files (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (10, 1);

  g_assert_cmpint (rd_batch_check_fit (batch, 1, 10, 100), ==,
      RD_BATCH_FIT_CLOSE_FIRST);
}

static void
test_fit_ok_at_exactly_max_bytes (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (3, 20);

  g_assert_cmpint (rd_batch_check_fit (batch, 40, 10, 100), ==,
      RD_BATCH_FIT_OK);
}

static void
test_fit_closes_one_byte_over (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (3, 20);

  g_assert_cmpint (rd_batch_check_fit (batch, 41, 10, 100), ==,
      RD_BATCH_FIT_CLOSE_FIRST);
}

static void
test_fit_huge_sizes_do_not_wrap (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (1, G_MAXUINT64 - 10);

  g_assert_cmpint (rd_batch_check_fit (batch, 20, 10, G_MAXUINT64), ==,
      RD_BATCH_FIT_CLOSE_FIRST);
}

static void
test_fit_at_api_limits (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (49, 10 * MB);

  g_assert_cmpint (rd_batch_check_fit (batch, 10 * MB, RD_BATCH_MAX_FILES,
          RD_BATCH_MAX_BYTES), ==, RD_BATCH_FIT_OK);
  rd_batch_add_file (batch, rd_batch_file_new ("last.wav", 10 * MB,
          RD_MEDIA_TYPE_AUDIO, RD_TIME_NONE, RD_TIME_NONE));
  g_assert_cmpint (rd_batch_check_fit (batch, 1, RD_BATCH_MAX_FILES,
          RD_BATCH_MAX_BYTES), ==, RD_BATCH_FIT_CLOSE_FIRST);
}

static void
test_full_at_max_files (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (10, 1);

  g_assert_true (rd_batch_is_full (batch, 10));
}

static void
test_full_not_below_max_files (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (9, 1);

  g_assert_false (rd_batch_is_full (batch, 10));
}

static void
test_validate_one_file_ok (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (1, 1);
  g_autoptr (GError) error = NULL;

  g_assert_true (rd_batch_validate (batch, &error));
  g_assert_no_error (error);
}

static void
test_validate_no_files_refused (void)
{
  g_autoptr (RdBatch) batch = rd_batch_new (0, "/spool");

  assert_validate_fails (batch, RD_ERROR_INVALID, "no files");
}

static void
test_validate_50_files_ok (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (RD_BATCH_MAX_FILES, 1);

  g_assert_true (rd_batch_validate (batch, NULL));
}

static void
test_validate_51_files_refused (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (RD_BATCH_MAX_FILES + 1, 1);

  assert_validate_fails (batch, RD_ERROR_INVALID, "51 files");
}

static void
test_validate_exactly_500mb_ok (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (2, 250 * MB);

  g_assert_true (rd_batch_validate (batch, NULL));
}

static void
test_validate_over_500mb_refused (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (2, 250 * MB);

  rd_batch_add_file (batch, rd_batch_file_new ("one-more.jpg", 1,
          RD_MEDIA_TYPE_IMAGE, RD_TIME_NONE, RD_TIME_NONE));

  assert_validate_fails (batch, RD_ERROR_TOO_LARGE, "500000001 bytes");
}

static void
test_validate_bad_extension_refused (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (1, 1);

  rd_batch_add_file (batch, rd_batch_file_new ("notes.txt", 5,
          RD_MEDIA_TYPE_AUDIO, RD_TIME_NONE, RD_TIME_NONE));

  assert_validate_fails (batch, RD_ERROR_INVALID, "notes.txt");
}

static void
test_validate_empty_file_refused (void)
{
  g_autoptr (RdBatch) batch = batch_with_files (1, 1);

  rd_batch_add_file (batch, rd_batch_file_new ("silence.wav", 0,
          RD_MEDIA_TYPE_AUDIO, RD_TIME_NONE, RD_TIME_NONE));

  assert_validate_fails (batch, RD_ERROR_INVALID, "silence.wav");
}

static const gchar *const api_extensions[] = {
  ".wav", ".mp3", ".m4a", ".ogg", ".aac", ".flac", ".mp4", ".mov", ".avi",
  ".mkv", ".webm", ".jpg", ".jpeg", ".png", ".gif", ".webp",
};

static void
test_extension_api_list_allowed (void)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (api_extensions); i++) {
    g_autofree gchar *name = g_strconcat ("segment", api_extensions[i], NULL);

    g_assert_true (rd_batch_extension_allowed (name));
  }
}

static void
test_extension_case_insensitive (void)
{
  g_assert_true (rd_batch_extension_allowed ("CLIP.WAV"));
  g_assert_true (rd_batch_extension_allowed ("photo.JpEg"));
  g_assert_true (rd_batch_extension_allowed ("movie.Mkv"));
}

static void
test_extension_others_refused (void)
{
  const gchar *names[] = {
    "notes.txt", "batch.zip", "clip.opus", "clip.wav.txt", "wav", "noext",
    "", "clip.", "dir.wav/file", "clip.wave",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (names); i++)
    g_assert_false (rd_batch_extension_allowed (names[i]));
  g_assert_false (rd_batch_extension_allowed (NULL));
}

static void
test_extension_last_one_counts (void)
{
  g_assert_true (rd_batch_extension_allowed ("clip.txt.wav"));
  g_assert_true (rd_batch_extension_allowed ("/spool/batch-000001/a.mp4"));
}

static void
test_content_type_per_extension (void)
{
  const gchar *const expected[][2] = {
    {"a.wav", "audio/wav"}, {"a.mp3", "audio/mpeg"}, {"a.m4a", "audio/mp4"},
    {"a.ogg", "audio/ogg"}, {"a.aac", "audio/aac"}, {"a.flac", "audio/flac"},
    {"a.mp4", "video/mp4"}, {"a.mov", "video/quicktime"},
    {"a.avi", "video/x-msvideo"}, {"a.mkv", "video/x-matroska"},
    {"a.webm", "video/webm"}, {"a.jpg", "image/jpeg"},
    {"a.jpeg", "image/jpeg"}, {"a.png", "image/png"}, {"a.gif", "image/gif"},
    {"a.webp", "image/webp"},
  };
  guint i;

  g_assert_cmpuint (G_N_ELEMENTS (expected), ==, G_N_ELEMENTS (api_extensions));
  for (i = 0; i < G_N_ELEMENTS (expected); i++)
    g_assert_cmpstr (rd_batch_content_type (expected[i][0]), ==,
        expected[i][1]);
}

static void
test_content_type_case_insensitive (void)
{
  g_assert_cmpstr (rd_batch_content_type ("SONG.MP3"), ==, "audio/mpeg");
}

static void
test_content_type_unknown (void)
{
  g_assert_cmpstr (rd_batch_content_type ("notes.txt"), ==,
      "application/octet-stream");
  g_assert_cmpstr (rd_batch_content_type ("noext"), ==,
      "application/octet-stream");
}

static void
test_state_strings_round_trip (void)
{
  const gchar *names[] = { "open", "closed", "submitted", "done", "error" };
  const RdBatchState states[] = {
    RD_BATCH_STATE_OPEN, RD_BATCH_STATE_CLOSED, RD_BATCH_STATE_SUBMITTED,
    RD_BATCH_STATE_DONE, RD_BATCH_STATE_ERROR,
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (states); i++) {
    RdBatchState parsed;

    g_assert_cmpstr (rd_batch_state_to_string (states[i]), ==, names[i]);
    g_assert_true (rd_batch_state_from_string (names[i], &parsed));
    g_assert_cmpint (parsed, ==, states[i]);
  }
}

static void
test_state_unknown_refused (void)
{
  RdBatchState state = RD_BATCH_STATE_DONE;

  g_assert_false (rd_batch_state_from_string ("processing", &state));
  g_assert_false (rd_batch_state_from_string ("Open", &state));
  g_assert_false (rd_batch_state_from_string (NULL, &state));
  g_assert_cmpint (state, ==, RD_BATCH_STATE_DONE);
}

static void
test_media_type_strings_round_trip (void)
{
  const gchar *names[] = { "audio", "video", "image" };
  const RdMediaType types[] = {
    RD_MEDIA_TYPE_AUDIO, RD_MEDIA_TYPE_VIDEO, RD_MEDIA_TYPE_IMAGE,
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (types); i++) {
    RdMediaType parsed;

    g_assert_cmpstr (rd_media_type_to_string (types[i]), ==, names[i]);
    g_assert_true (rd_media_type_from_string (names[i], &parsed));
    g_assert_cmpint (parsed, ==, types[i]);
  }
}

static void
test_media_type_unknown_refused (void)
{
  RdMediaType type = RD_MEDIA_TYPE_IMAGE;

  g_assert_false (rd_media_type_from_string ("text", &type));
  g_assert_cmpint (type, ==, RD_MEDIA_TYPE_IMAGE);
}

static void
test_error_quark_name (void)
{
  g_assert_cmpstr (g_quark_to_string (RD_ERROR), ==, "rd-error-quark");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/batch/new/sets-dir-and-defaults",
      test_new_sets_dir_and_defaults);
  g_test_add_func ("/batch/free/accepts-null", test_free_accepts_null);
  g_test_add_func ("/batch/dir-name/six-digits", test_dir_name_six_digits);
  g_test_add_func ("/batch/dir-name/round-trip", test_dir_name_round_trip);
  g_test_add_func ("/batch/dir-name/others-refused",
      test_dir_name_others_refused);
  g_test_add_func ("/batch/add-file/keeps-total", test_add_file_keeps_total);
  g_test_add_func ("/batch/file-path/is-in-dir", test_file_path_is_in_dir);
  g_test_add_func ("/batch/dup-paths/full-paths", test_dup_paths_full_paths);
  g_test_add_func ("/batch/dup-paths/empty-batch", test_dup_paths_empty_batch);
  g_test_add_func ("/batch/fit/empty-takes-file-of-max-bytes",
      test_fit_empty_takes_file_of_max_bytes);
  g_test_add_func ("/batch/fit/empty-never-takes-oversize",
      test_fit_empty_never_takes_oversize);
  g_test_add_func ("/batch/fit/nonempty-never-takes-oversize",
      test_fit_nonempty_never_takes_oversize);
  g_test_add_func ("/batch/fit/ok-below-max-files",
      test_fit_ok_below_max_files);
  g_test_add_func ("/batch/fit/closes-at-max-files",
      test_fit_closes_at_max_files);
  g_test_add_func ("/batch/fit/ok-at-exactly-max-bytes",
      test_fit_ok_at_exactly_max_bytes);
  g_test_add_func ("/batch/fit/closes-one-byte-over",
      test_fit_closes_one_byte_over);
  g_test_add_func ("/batch/fit/huge-sizes-do-not-wrap",
      test_fit_huge_sizes_do_not_wrap);
  g_test_add_func ("/batch/fit/at-api-limits", test_fit_at_api_limits);
  g_test_add_func ("/batch/full/at-max-files", test_full_at_max_files);
  g_test_add_func ("/batch/full/not-below-max-files",
      test_full_not_below_max_files);
  g_test_add_func ("/batch/validate/one-file-ok", test_validate_one_file_ok);
  g_test_add_func ("/batch/validate/no-files-refused",
      test_validate_no_files_refused);
  g_test_add_func ("/batch/validate/50-files-ok", test_validate_50_files_ok);
  g_test_add_func ("/batch/validate/51-files-refused",
      test_validate_51_files_refused);
  g_test_add_func ("/batch/validate/exactly-500mb-ok",
      test_validate_exactly_500mb_ok);
  g_test_add_func ("/batch/validate/over-500mb-refused",
      test_validate_over_500mb_refused);
  g_test_add_func ("/batch/validate/bad-extension-refused",
      test_validate_bad_extension_refused);
  g_test_add_func ("/batch/validate/empty-file-refused",
      test_validate_empty_file_refused);
  g_test_add_func ("/batch/extension/api-list-allowed",
      test_extension_api_list_allowed);
  g_test_add_func ("/batch/extension/case-insensitive",
      test_extension_case_insensitive);
  g_test_add_func ("/batch/extension/others-refused",
      test_extension_others_refused);
  g_test_add_func ("/batch/extension/last-one-counts",
      test_extension_last_one_counts);
  g_test_add_func ("/batch/content-type/per-extension",
      test_content_type_per_extension);
  g_test_add_func ("/batch/content-type/case-insensitive",
      test_content_type_case_insensitive);
  g_test_add_func ("/batch/content-type/unknown-is-octet-stream",
      test_content_type_unknown);
  g_test_add_func ("/batch/state/strings-round-trip",
      test_state_strings_round_trip);
  g_test_add_func ("/batch/state/unknown-refused", test_state_unknown_refused);
  g_test_add_func ("/batch/media-type/strings-round-trip",
      test_media_type_strings_round_trip);
  g_test_add_func ("/batch/media-type/unknown-refused",
      test_media_type_unknown_refused);
  g_test_add_func ("/batch/error/quark-name", test_error_quark_name);

  return g_test_run ();
}
