/* Unit tests of the spool: which batch a file joins, when batches close,
 * what happens past the limits, what a run finds of an earlier one (killed
 * ones too), the names it gives files, and its lock against a second user
 * (another RdSpool, a forked process). Files on a temporary disk, no
 * pipeline. */
#include "spool.h"
#include "manifest.h"
#include "rd-test-utils.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

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

/* "{prefix}-{the spool's run id}-{number}.wav" */
static gchar *
name_in_run (RdSpool * spool, const gchar * prefix, guint number)
{
  g_autofree gchar *run_id = rd_spool_dup_run_id (spool);

  g_assert_nonnull (run_id);
  return g_strdup_printf ("%s-%s-%06u.wav", prefix, run_id, number);
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

  g_autofree gchar *first = name_in_run (f->spool, "audio_0", 1);
  g_autofree gchar *first_path = g_build_filename (f->location,
      "batch-000001", first, NULL);

  g_assert_cmpint (add (f, "audio_0", 10, 0, &file), ==, RD_SPOOL_FILE_ADDED);
  g_assert_true (file.opened_batch);
  g_assert_cmpuint (file.batch_index, ==, 1);
  g_assert_cmpstr (file.path, ==, first_path);
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
  g_autofree gchar *name = name_in_run (f->spool, "audio_0", 1);
  g_autofree gchar *expected = g_build_filename (f->location, "oversize",
      name, NULL);
  RdSpoolFile file;

  g_assert_cmpint (add (f, "audio_0", 1001, 0, &file), ==,
      RD_SPOOL_FILE_OVERSIZE);
  g_assert_cmpstr (file.path, ==, expected);
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

/* A restarted run must not reuse a name: the API's detects are found by
 * their file names. */
static void
test_file_names_are_unique_across_runs (Fixture * f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *first_run = rd_spool_dup_run_id (f->spool);
  g_autofree gchar *second_run = NULL;
  g_autofree gchar *expected = NULL;
  RdSpoolFile first, second;

  g_assert_cmpuint (strlen (first_run), ==, 8);
  for (guint i = 0; i < 8; i++)
    g_assert_true (g_ascii_isxdigit (first_run[i])
        && !g_ascii_isupper (first_run[i]));
  add (f, "audio_0", 10, 0, &first);
  add (f, "image_0", 10, 0, NULL);
  rd_spool_close (f->spool);
  g_assert_null (rd_spool_dup_run_id (f->spool));
  rd_spool_ready_clear (&f->ready);
  rd_spool_ready_init (&f->ready);
  g_assert_true (rd_spool_open (f->spool, f->location, &f->ready, &error));
  second_run = rd_spool_dup_run_id (f->spool);
  /* 32 random bits: equal once in 4 billion runs */
  g_assert_cmpstr (first_run, !=, second_run);
  add (f, "audio_0", 10, 0, &second);
  /* numbered from 1 again within the new run */
  expected = g_strdup_printf ("audio_0-%s-000001.wav", second_run);
  g_assert_true (g_str_has_suffix (second.path, expected));
  g_assert_cmpstr (strrchr (first.path, '/'), !=, strrchr (second.path, '/'));
  rd_spool_file_clear (&first);
  rd_spool_file_clear (&second);
}

/* A kill between moving a file into the open batch and writing the
 * manifest that lists it leaves the file unlisted: the next run sends it
 * with its batch. */
static void
test_a_file_moved_in_before_its_manifest_joins_its_batch (Fixture * f,
    gconstpointer data)
{
  g_autoptr (RdSpool) next = rd_spool_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *dir = g_build_filename (f->location, "batch-000001",
      NULL);
  g_autofree gchar *unlisted = name_in_run (f->spool, "audio_0", 2);
  g_autofree gchar *unlisted_path = g_build_filename (dir, unlisted, NULL);
  g_autofree gchar *hidden = g_build_filename (dir, ".x.wav", NULL);
  g_autofree gchar *other = g_build_filename (dir, "notes.txt", NULL);
  RdSpoolReady ready;
  RdBatch *batch;
  RdBatchFile *file;

  add (f, "audio_0", 10, 0, NULL);
  rd_spool_close (f->spool);
  g_assert_true (g_file_set_contents (unlisted_path, "0123456", 7, NULL));
  g_assert_true (g_file_set_contents (hidden, "x", 1, NULL));
  g_assert_true (g_file_set_contents (other, "x", 1, NULL));

  rd_spool_ready_init (&ready);
  g_assert_true (rd_spool_open (next, f->location, &ready, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (ready.closed.length, ==, 1);
  batch = g_queue_peek_head (&ready.closed);
  g_assert_cmpuint (batch->files->len, ==, 2);
  file = batch->files->pdata[1];
  g_assert_cmpstr (file->name, ==, unlisted);
  g_assert_cmpuint (file->size, ==, 7);
  g_assert_cmpint (file->media_type, ==, RD_MEDIA_TYPE_AUDIO);
  g_assert_cmpuint (file->running_time, ==, RD_TIME_NONE);
  g_assert_cmpuint (rd_spool_get_bytes (next), ==, 17);
  {
    g_autoptr (RdBatch) on_disk = read_batch (f, 1);
    g_assert_cmpint (on_disk->state, ==, RD_BATCH_STATE_CLOSED);
    g_assert_cmpuint (on_disk->files->len, ==, 2);
  }
  rd_spool_ready_clear (&ready);
}

/* A batch folder is made, then its manifest written, then a file moved
 * in: a kill before the file leaves an empty batch, which goes. */
static void
test_an_empty_batch_of_a_killed_run_is_removed (Fixture * f, gconstpointer data)
{
  g_autoptr (RdBatch) empty = rd_batch_new (4, f->location);
  g_autoptr (RdSpool) next = rd_spool_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *bare = g_build_filename (f->location, "batch-000005",
      NULL);
  RdSpoolReady ready;

  rd_spool_close (f->spool);
  g_assert_cmpint (g_mkdir_with_parents (empty->dir, 0700), ==, 0);
  g_assert_true (rd_manifest_write (empty, NULL));
  g_assert_cmpint (g_mkdir_with_parents (bare, 0700), ==, 0);

  rd_spool_ready_init (&ready);
  g_assert_true (rd_spool_open (next, f->location, &ready, &error));
  g_assert_cmpuint (ready.closed.length + ready.resumed.length, ==, 0);
  g_assert_cmpuint (ready.ignored->len, ==, 0);
  g_assert_false (g_file_test (empty->dir, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (bare, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (rd_spool_get_next_index (next), ==, 6);
  rd_spool_ready_clear (&ready);
}

/* ---- the lock ----------------------------------------------------------- */

static void
assert_busy_naming (const GError * error, const gchar * location, pid_t pid)
{
  g_autofree gchar *pid_text = g_strdup_printf ("(pid %d)", (int) pid);

  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, location));
  g_assert_nonnull (strstr (error->message, pid_text));
}

static void
test_a_second_spool_on_the_same_folder_is_refused (Fixture * f,
    gconstpointer data)
{
  g_autoptr (RdSpool) other = rd_spool_new ();
  g_autoptr (GError) error = NULL;
  RdSpoolReady ready;

  rd_spool_ready_init (&ready);
  g_assert_false (rd_spool_open (other, f->location, &ready, &error));
  assert_busy_naming (error, f->location, getpid ());
  g_assert_nonnull (strstr (error->message, "this process"));
  g_assert_null (rd_spool_dup_location (other));
  g_assert_null (rd_spool_incoming_path (other, "x.wav"));
  g_clear_error (&error);

  /* released by close */
  rd_spool_close (f->spool);
  g_assert_true (rd_spool_open (other, f->location, &ready, &error));
  g_assert_no_error (error);
  /* and now the first one is refused */
  g_assert_false (rd_spool_open (f->spool, f->location, &f->ready, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BUSY);
  g_clear_error (&error);

  /* released by free */
  g_clear_pointer (&other, rd_spool_free);
  g_assert_true (rd_spool_open (f->spool, f->location, &f->ready, &error));
  g_assert_no_error (error);
  rd_spool_ready_clear (&ready);
}

/* A refused open reads and writes nothing: what an earlier run left open
 * stays open for the owner to close. */
static void
test_a_refused_open_touches_nothing (Fixture * f, gconstpointer data)
{
  g_autoptr (RdBatch) left = rd_batch_new (5, f->location);
  g_autoptr (RdSpool) other = rd_spool_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (RdBatch) reread = NULL;
  g_autofree gchar *path = NULL;
  RdSpoolReady ready;

  g_assert_cmpint (g_mkdir_with_parents (left->dir, 0700), ==, 0);
  rd_batch_add_file (left, rd_batch_file_new ("a.wav", 5, RD_MEDIA_TYPE_AUDIO,
          0, 1));
  path = rd_batch_file_path (left, left->files->pdata[0]);
  g_assert_true (g_file_set_contents (path, "abcde", 5, NULL));
  g_assert_true (rd_manifest_write (left, NULL));

  rd_spool_ready_init (&ready);
  g_assert_false (rd_spool_open (other, f->location, &ready, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BUSY);
  g_assert_cmpuint (ready.closed.length + ready.resumed.length, ==, 0);
  g_assert_cmpuint (ready.ignored->len, ==, 0);
  reread = read_batch (f, 5);
  g_assert_cmpint (reread->state, ==, RD_BATCH_STATE_OPEN);
  rd_spool_ready_clear (&ready);
}

static void
test_the_lock_file_is_private_and_names_its_owner (Fixture * f,
    gconstpointer data)
{
  g_autofree gchar *path = g_build_filename (f->location, ".lock", NULL);
  g_autofree gchar *contents = NULL;
  g_autofree gchar *expected = g_strdup_printf ("%d\n", (int) getpid ());
  GStatBuf st;

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, expected);
  /* the file stays once the lock is released: see lock_location */
  rd_spool_close (f->spool);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
}

/* Forks a process that opens @location: exit status 0 when it was refused
 * as busy naming @owner, 1 when it opened it, 2 otherwise. */
static int
open_in_a_child (const gchar * location, pid_t owner)
{
  pid_t pid = fork ();
  int status;

  g_assert_cmpint (pid, >=, 0);
  if (pid == 0) {
    RdSpool *spool = rd_spool_new ();
    GError *error = NULL;
    g_autofree gchar *pid_text = g_strdup_printf ("(pid %d)", (int) owner);
    RdSpoolReady ready;
    int code;

    rd_spool_ready_init (&ready);
    if (rd_spool_open (spool, location, &ready, &error))
      code = 1;
    else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BUSY)
        && strstr (error->message, pid_text)
        && strstr (error->message, "another process"))
      code = 0;
    else
      code = 2;
    _exit (code);
  }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status));
  return WEXITSTATUS (status);
}

/* flock belongs to the open file description: a forked process that opens
 * the spool itself is refused, whatever it inherited. */
static void
test_another_process_is_refused_until_the_owner_closes (Fixture * f,
    gconstpointer data)
{
  g_assert_cmpint (open_in_a_child (f->location, getpid ()), ==, 0);
  rd_spool_close (f->spool);
  g_assert_cmpint (open_in_a_child (f->location, 0), ==, 1);
}

/* The kernel drops the lock of a process killed with SIGKILL: a restart
 * after kill -9 finds its spool free. */
static void
test_the_lock_of_a_killed_owner_is_released (Fixture * f, gconstpointer data)
{
  g_autoptr (RdSpool) other = rd_spool_new ();
  g_autoptr (GError) error = NULL;
  RdSpoolReady ready;
  int ready_pipe[2], status;
  char byte;
  pid_t pid;

  rd_spool_close (f->spool);
  g_assert_cmpint (pipe (ready_pipe), ==, 0);
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0) {
    RdSpool *spool = rd_spool_new ();
    RdSpoolReady child_ready;

    close (ready_pipe[0]);
    rd_spool_ready_init (&child_ready);
    if (!rd_spool_open (spool, f->location, &child_ready, NULL))
      _exit (1);
    if (write (ready_pipe[1], "x", 1) != 1)
      _exit (1);
    /* held until killed */
    while (TRUE)
      pause ();
  }
  close (ready_pipe[1]);
  g_assert_cmpint (read (ready_pipe[0], &byte, 1), ==, 1);
  close (ready_pipe[0]);

  rd_spool_ready_init (&ready);
  g_assert_false (rd_spool_open (other, f->location, &ready, &error));
  assert_busy_naming (error, f->location, pid);
  g_assert_null (strstr (error->message, "this process"));
  g_clear_error (&error);

  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFSIGNALED (status));
  g_assert_true (rd_spool_open (other, f->location, &ready, &error));
  g_assert_no_error (error);
  rd_spool_ready_clear (&ready);
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

  /* the fixture's spool would hold the lock */
  rd_spool_close (f->spool);
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
  {
    g_autofree gchar *manifest = g_build_filename (broken, "manifest.json",
        NULL);
    g_autofree gchar *file = g_build_filename (broken, "b.wav", NULL);

    g_assert_true (g_file_set_contents (manifest, "{\"index\":9,\"sta",
            -1, NULL));
    g_assert_true (g_file_set_contents (file, "abcde", 5, NULL));
  }

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
  /* the batch whose manifest is truncated is set aside, files and all,
   * and named */
  g_assert_cmpuint (ready.ignored->len, ==, 1);
  g_assert_nonnull (strstr (ready.ignored->pdata[0], "batch-000009"));
  g_assert_nonnull (strstr (ready.ignored->pdata[0], "quarantine"));
  g_assert_false (g_file_test (broken, G_FILE_TEST_EXISTS));
  {
    g_autofree gchar *kept = g_build_filename (f->location, "quarantine",
        "batch-000009", "b.wav", NULL);
    g_assert_true (g_file_test (kept, G_FILE_TEST_IS_REGULAR));
  }
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

  /* the next run: nothing to set aside, and the numbering still goes on
   * after the quarantined batch */
  rd_spool_close (other);
  rd_spool_ready_init (&ready);
  g_assert_true (rd_spool_open (other, f->location, &ready, &error));
  g_assert_cmpuint (ready.ignored->len, ==, 0);
  g_assert_cmpuint (rd_spool_get_next_index (other), ==, 10);
  rd_spool_ready_clear (&ready);
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
  ADD ("add/names-unique-across-runs", test_file_names_are_unique_across_runs);
  ADD ("close/only-the-named-batch",
      test_close_batch_closes_only_the_named_batch);
  ADD ("open/resumes-an-earlier-run",
      test_open_resumes_what_an_earlier_run_left);
  ADD ("open/adopts-a-file-moved-in-before-its-manifest",
      test_a_file_moved_in_before_its_manifest_joins_its_batch);
  ADD ("open/removes-an-empty-batch-of-a-killed-run",
      test_an_empty_batch_of_a_killed_run_is_removed);
  ADD ("lock/second-spool-refused",
      test_a_second_spool_on_the_same_folder_is_refused);
  ADD ("lock/refused-open-touches-nothing",
      test_a_refused_open_touches_nothing);
  ADD ("lock/file-private-names-owner",
      test_the_lock_file_is_private_and_names_its_owner);
  ADD ("lock/other-process-refused",
      test_another_process_is_refused_until_the_owner_closes);
  ADD ("lock/killed-owner-released",
      test_the_lock_of_a_killed_owner_is_released);
  return g_test_run ();
}
