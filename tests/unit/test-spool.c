/* Unit tests of the spool: which batch a file joins, when batches close,
 * what happens past the limits, and what a run finds of an earlier one.
 * Files on a temporary disk, no pipeline. */
#include "spool.h"
#include "manifest.h"
#include "rd-test-utils.h"

#include <glib/gstdio.h>
#include <sys/stat.h>

#define SECOND G_GUINT64_CONSTANT (1000000000)

typedef struct
{
  gchar *location;
  RdSpool *spool;
  RdSettings settings;
  RdSpoolLimits limits;
  RdSpoolReady ready;
} Fixture;

static void
fixture_setup (Fixture * f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *dir = rd_test_make_tmp_dir ("test-spool-XXXXXX");

  f->location = g_build_filename (dir, "spool", NULL);
  g_free (g_steal_pointer (&dir));
  f->spool = rd_spool_new ();
  rd_settings_init (&f->settings);
  f->limits.max_files = 3;
  f->limits.max_batch_bytes = 1000;
  f->limits.max_spool_bytes = 100000;
  f->limits.upload_mode = RD_UPLOAD_MODE_FILES;
  f->limits.settings = &f->settings;
  rd_spool_ready_init (&f->ready);
  g_assert_true (rd_spool_open (f->spool, f->location, &f->ready, &error));
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture * f, gconstpointer data)
{
  g_autofree gchar *parent = g_path_get_dirname (f->location);

  rd_spool_ready_clear (&f->ready);
  rd_spool_free (f->spool);
  rd_settings_clear (&f->settings);
  rd_test_remove_tree (parent);
  g_free (f->location);
}

/* Writes @size bytes into incoming/ and adds them. */
static RdSpoolFileOutcome
add (Fixture * f, const gchar * prefix, gsize size, guint64 start,
    RdSpoolFile * result)
{
  g_autofree gchar *basename = g_strdup_printf ("%s.wav", prefix);
  g_autofree gchar *path = rd_spool_incoming_path (f->spool, basename);
  g_autofree gchar *contents = g_malloc0 (size);
  g_autoptr (GError) error = NULL;
  RdSpoolFile local;
  RdSpoolFile *out = result ? result : &local;

  if (path == NULL)
    path = g_build_filename (f->location, basename, NULL);
  g_assert_true (g_file_set_contents (path, contents, size, NULL));
  g_assert_true (rd_spool_add_file (f->spool, path, prefix, "wav",
          RD_MEDIA_TYPE_AUDIO, start, SECOND, &f->limits,
          &f->ready, out, &error));
  g_assert_no_error (error);
  if (result == NULL) {
    RdSpoolFileOutcome outcome = local.outcome;
    rd_spool_file_clear (&local);
    return outcome;
  }
  return out->outcome;
}

static RdBatch *
read_batch (Fixture * f, guint index)
{
  g_autofree gchar *name = rd_batch_dir_name (index);
  g_autofree gchar *dir = g_build_filename (f->location, name, NULL);
  g_autoptr (GError) error = NULL;
  RdBatch *batch = rd_manifest_read (dir, &error);

  g_assert_no_error (error);
  return batch;
}

static void
test_open_makes_a_private_spool (Fixture * f, gconstpointer data)
{
  g_autofree gchar *incoming = g_build_filename (f->location, "incoming",
      NULL);
  GStatBuf st;

  g_assert_cmpint (g_stat (f->location, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
  g_assert_cmpint (g_stat (incoming, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
  g_assert_cmpuint (rd_spool_get_next_index (f->spool), ==, 1);
  g_assert_cmpuint (f->ready.closed.length + f->ready.resumed.length, ==, 0);
}

static void
test_a_batch_closes_at_max_files (Fixture * f, gconstpointer data)
{
  RdSpoolFile file;
  RdBatch *closed;

  g_assert_cmpint (add (f, "audio_0", 10, 0, &file), ==, RD_SPOOL_FILE_ADDED);
  g_assert_true (file.opened_batch);
  g_assert_cmpuint (file.batch_index, ==, 1);
  g_assert_true (g_str_has_suffix (file.path,
          "batch-000001/audio_0-000001.wav"));
  rd_spool_file_clear (&file);
  add (f, "audio_0", 10, SECOND, NULL);
  g_assert_cmpuint (f->ready.closed.length, ==, 0);
  add (f, "audio_0", 10, 2 * SECOND, NULL);
  g_assert_cmpuint (f->ready.closed.length, ==, 1);
  closed = g_queue_peek_head (&f->ready.closed);
  g_assert_cmpuint (closed->index, ==, 1);
  g_assert_cmpuint (closed->files->len, ==, 3);
  g_assert_cmpint (closed->state, ==, RD_BATCH_STATE_CLOSED);
  /* visualize is always sent */
  g_assert_cmpint (closed->settings.visualize, ==, 1);
  {
    g_autoptr (RdBatch) on_disk = read_batch (f, 1);
    g_assert_cmpint (on_disk->state, ==, RD_BATCH_STATE_CLOSED);
  }
  /* the next file opens batch 2 */
  g_assert_cmpint (add (f, "audio_0", 10, 3 * SECOND, &file),
      ==, RD_SPOOL_FILE_ADDED);
  g_assert_cmpuint (file.batch_index, ==, 2);
  g_assert_true (file.opened_batch);
  rd_spool_file_clear (&file);
}

static void
test_a_file_that_would_pass_max_bytes_closes_the_batch_first (Fixture * f,
    gconstpointer data)
{
  RdSpoolFile file;

  add (f, "audio_0", 600, 0, NULL);
  g_assert_cmpint (add (f, "audio_0", 600, 1, &file), ==, RD_SPOOL_FILE_ADDED);
  g_assert_cmpuint (f->ready.closed.length, ==, 1);
  g_assert_cmpuint (file.batch_index, ==, 2);
  rd_spool_file_clear (&file);
}

static void
test_an_oversize_file_is_kept_apart (Fixture * f, gconstpointer data)
{
  RdSpoolFile file;

  g_assert_cmpint (add (f, "audio_0", 1001, 0, &file), ==,
      RD_SPOOL_FILE_OVERSIZE);
  g_assert_true (g_str_has_suffix (file.path, "oversize/audio_0-000001.wav"));
  g_assert_true (g_file_test (file.path, G_FILE_TEST_EXISTS));
  rd_spool_file_clear (&file);
}

static void
test_a_full_spool_skips_new_files (Fixture * f, gconstpointer data)
{
  RdSpoolFile file;

  f->limits.max_spool_bytes = 250;
  add (f, "audio_0", 100, 0, NULL);
  add (f, "audio_0", 100, SECOND, NULL);
  g_assert_cmpint (add (f, "audio_0", 100, 2 * SECOND, &file),
      ==, RD_SPOOL_FILE_SKIPPED);
  g_assert_false (g_file_test (file.path, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (file.skipped_bytes, ==, 100);
  g_assert_cmpuint (file.skipped_from, ==, 2 * SECOND);
  g_assert_cmpuint (file.skipped_to, ==, 3 * SECOND);
  g_assert_cmpuint (file.spool_bytes, ==, 200);
  rd_spool_file_clear (&file);
  /* the skipped range grows while the spool stays full */
  g_assert_cmpint (add (f, "audio_0", 100, 3 * SECOND, &file),
      ==, RD_SPOOL_FILE_SKIPPED);
  g_assert_cmpuint (file.skipped_bytes, ==, 200);
  g_assert_cmpuint (file.skipped_from, ==, 2 * SECOND);
  rd_spool_file_clear (&file);
  /* released bytes make room again */
  rd_spool_release (f->spool, 200);
  g_assert_cmpint (add (f, "audio_0", 100, 0, NULL), ==, RD_SPOOL_FILE_ADDED);
}

static void
test_close_batch_closes_only_the_named_batch (Fixture * f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  add (f, "image_0", 10, 0, NULL);
  g_assert_true (rd_spool_close_batch (f->spool, 7, &f->limits, &f->ready,
          &error));
  g_assert_cmpuint (f->ready.closed.length, ==, 0);
  g_assert_true (rd_spool_close_batch (f->spool, 1, &f->limits, &f->ready,
          &error));
  g_assert_cmpuint (f->ready.closed.length, ==, 1);
  /* an empty batch never closes */
  g_assert_true (rd_spool_close_batch (f->spool, 0, &f->limits, &f->ready,
          &error));
  g_assert_cmpuint (f->ready.closed.length, ==, 1);
}

static void
test_a_closed_spool_leaves_files_where_they_are (Fixture * f,
    gconstpointer data)
{
  RdSpoolFile file;

  rd_spool_close (f->spool);
  g_assert_null (rd_spool_incoming_path (f->spool, "x.wav"));
  g_assert_cmpint (add (f, "audio_0", 10, 0, &file), ==, RD_SPOOL_FILE_STOPPED);
  g_assert_true (g_file_test (file.path, G_FILE_TEST_EXISTS));
  rd_spool_file_clear (&file);
}

static void
test_files_are_numbered_per_prefix_across_runs (Fixture * f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  RdSpoolFile file;

  add (f, "audio_0", 10, 0, NULL);
  add (f, "image_0", 10, 0, NULL);
  rd_spool_close (f->spool);
  rd_spool_ready_clear (&f->ready);
  rd_spool_ready_init (&f->ready);
  g_assert_true (rd_spool_open (f->spool, f->location, &f->ready, &error));
  add (f, "audio_0", 10, 0, &file);
  g_assert_true (g_str_has_suffix (file.path, "audio_0-000002.wav"));
  rd_spool_file_clear (&file);
}

static void
test_open_resumes_what_an_earlier_run_left (Fixture * f, gconstpointer data)
{
  const RdBatchState states[] = { RD_BATCH_STATE_DONE,
    RD_BATCH_STATE_SUBMITTED, RD_BATCH_STATE_OPEN, RD_BATCH_STATE_CLOSED,
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (RdSpool) other = rd_spool_new ();
  g_autofree gchar *broken = g_build_filename (f->location, "batch-000009",
      NULL);
  g_autoptr (GQueue) all = NULL;
  RdSpoolReady ready;

  for (guint i = 0; i < G_N_ELEMENTS (states); i++) {
    g_autoptr (RdBatch) batch = rd_batch_new (i + 2, f->location);
    g_autofree gchar *path = NULL;

    g_assert_cmpint (g_mkdir_with_parents (batch->dir, 0700), ==, 0);
    rd_batch_add_file (batch, rd_batch_file_new ("a.wav", 5,
            RD_MEDIA_TYPE_AUDIO, 0, 1));
    path = rd_batch_file_path (batch, batch->files->pdata[0]);
    g_assert_true (g_file_set_contents (path, "abcde", 5, NULL));
    batch->state = states[i];
    if (states[i] == RD_BATCH_STATE_SUBMITTED)
      batch->uuid = g_strdup ("0123456789abcdef0123456789abcdef");
    g_assert_true (rd_manifest_write (batch, NULL));
  }
  g_assert_cmpint (g_mkdir_with_parents (broken, 0700), ==, 0);

  rd_spool_ready_init (&ready);
  g_assert_true (rd_spool_open (other, f->location, &ready, &error));
  /* numbering after the highest folder, readable or not */
  g_assert_cmpuint (rd_spool_get_next_index (other), ==, 10);
  /* the three unfinished batches count, the done one does not */
  g_assert_cmpuint (rd_spool_get_bytes (other), ==, 15);
  /* batch 4 was open: closed now */
  g_assert_cmpuint (ready.closed.length, ==, 1);
  g_assert_cmpuint (((RdBatch *) g_queue_peek_head (&ready.closed))->index,
      ==, 4);
  g_assert_cmpuint (ready.resumed.length, ==, 2);
  g_assert_cmpuint (ready.ignored->len, ==, 1);
  all = rd_spool_ready_take_all (&ready);
  g_assert_cmpuint (g_queue_get_length (all), ==, 3);
  g_assert_cmpuint (((RdBatch *) g_queue_peek_nth (all, 0))->index, ==, 3);
  g_assert_cmpuint (((RdBatch *) g_queue_peek_nth (all, 1))->index, ==, 4);
  g_assert_cmpuint (((RdBatch *) g_queue_peek_nth (all, 2))->index, ==, 5);
  g_queue_free_full (g_steal_pointer (&all), (GDestroyNotify) rd_batch_free);
  rd_spool_ready_clear (&ready);
  {
    g_autoptr (RdBatch) four = read_batch (f, 4);
    g_assert_cmpint (four->state, ==, RD_BATCH_STATE_CLOSED);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add ("/spool/" path, Fixture, NULL, \
    fixture_setup, func, fixture_teardown)
  ADD ("open/private", test_open_makes_a_private_spool);
  ADD ("add/closes-at-max-files", test_a_batch_closes_at_max_files);
  ADD ("add/closes-before-max-bytes",
      test_a_file_that_would_pass_max_bytes_closes_the_batch_first);
  ADD ("add/oversize-kept-apart", test_an_oversize_file_is_kept_apart);
  ADD ("add/full-spool-skips", test_a_full_spool_skips_new_files);
  ADD ("add/closed-spool-leaves-files",
      test_a_closed_spool_leaves_files_where_they_are);
  ADD ("add/numbered-per-prefix-across-runs",
      test_files_are_numbered_per_prefix_across_runs);
  ADD ("close/only-the-named-batch",
      test_close_batch_closes_only_the_named_batch);
  ADD ("open/resumes-an-earlier-run",
      test_open_resumes_what_an_earlier_run_left);
  return g_test_run ();
}
