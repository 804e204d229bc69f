/* Fuzz target of the manifest reader (rd_manifest_read), which reads only
 * from a batch directory: each input becomes that directory's manifest.json
 * (a directory made on the first input, for the life of the process, under
 * $TMPDIR; tools/fuzz points it at a tmpfs). A manifest it accepts must be one the writer can reproduce: it
 * is written back with rd_manifest_write and read again, and both reads must
 * agree on every field. A refusal must be RD_ERROR_FORMAT. */
#include "fuzz-common.h"
#include "manifest.h"

#include <glib/gstdio.h>
#include <string.h>

/* The batch directory, for the life of the process. */
static gchar *batch_dir;

static void
remove_batch_dir (void)
{
  g_autofree gchar *path = g_build_filename (batch_dir, RD_MANIFEST_NAME,
      NULL);

  g_remove (path);
  g_rmdir (batch_dir);
  g_clear_pointer (&batch_dir, g_free);
}

static void
append_setting (const gchar * name, const gchar * value, gpointer user_data)
{
  g_string_append_printf (user_data, "%s=%s\n", name, value);
}

static gchar *
settings_text (const RdBatch * batch)
{
  GString *text = g_string_new (NULL);

  rd_settings_foreach_field (&batch->settings, append_setting, text);
  return g_string_free (text, FALSE);
}

static void
assert_same_batch (const RdBatch * a, const RdBatch * b)
{
  g_autofree gchar *a_settings = settings_text (a);
  g_autofree gchar *b_settings = settings_text (b);
  guint i;

  g_assert_cmpuint (a->index, ==, b->index);
  g_assert_cmpstr (a->dir, ==, b->dir);
  g_assert_cmpint (a->state, ==, b->state);
  g_assert_cmpint (a->upload_mode, ==, b->upload_mode);
  g_assert_cmpstr (a_settings, ==, b_settings);
  g_assert_cmpstr (a->uuid, ==, b->uuid);
  g_assert_cmpstr (a->status, ==, b->status);
  g_assert_cmpuint (a->completed_count, ==, b->completed_count);
  g_assert_cmpuint (a->failed_count, ==, b->failed_count);
  g_assert_cmpuint (a->error_http_status, ==, b->error_http_status);
  g_assert_cmpstr (a->error_reason, ==, b->error_reason);
  g_assert_cmpuint (a->total_bytes, ==, b->total_bytes);
  g_assert_cmpuint (a->files->len, ==, b->files->len);
  for (i = 0; i < a->files->len; i++) {
    const RdBatchFile *fa = g_ptr_array_index (a->files, i);
    const RdBatchFile *fb = g_ptr_array_index (b->files, i);

    g_assert_cmpstr (fa->name, ==, fb->name);
    g_assert_cmpuint (fa->size, ==, fb->size);
    g_assert_cmpint (fa->media_type, ==, fb->media_type);
    g_assert_cmpuint (fa->running_time, ==, fb->running_time);
    g_assert_cmpuint (fa->duration, ==, fb->duration);
    g_assert_cmpstr (fa->detect_uuid, ==, fb->detect_uuid);
  }
}

/* What the reader promises of each file: a plain name inside the batch. */
static void
assert_files_inside (const RdBatch * batch)
{
  guint i;

  for (i = 0; i < batch->files->len; i++) {
    const RdBatchFile *file = g_ptr_array_index (batch->files, i);

    g_assert_cmpstr (file->name, !=, "");
    g_assert_cmpstr (file->name, !=, ".");
    g_assert_cmpstr (file->name, !=, "..");
    g_assert_null (strchr (file->name, G_DIR_SEPARATOR));
  }
}

static void
make_batch_dir (void)
{
  g_autoptr (GError) error = NULL;

  batch_dir = g_dir_make_tmp ("rd-fuzz-manifest-XXXXXX", &error);
  g_assert_no_error (error);
  atexit (remove_batch_dir);
}

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  g_autofree gchar *path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (RdBatch) batch = NULL;
  g_autoptr (RdBatch) again = NULL;

  if (batch_dir == NULL)
    make_batch_dir ();
  path = g_build_filename (batch_dir, RD_MANIFEST_NAME, NULL);
  g_file_set_contents_full (path, (const gchar *) data, size,
      G_FILE_SET_CONTENTS_NONE, 0600, &error);
  g_assert_no_error (error);

  batch = rd_manifest_read (batch_dir, &error);
  if (batch == NULL) {
    g_assert_error (error, RD_ERROR, RD_ERROR_FORMAT);
    return 0;
  }
  g_assert_no_error (error);
  assert_files_inside (batch);

  g_assert_true (rd_manifest_write (batch, &error));
  g_assert_no_error (error);
  again = rd_manifest_read (batch_dir, &error);
  g_assert_no_error (error);
  assert_same_batch (batch, again);
  return 0;
}
