/* The spool directory (see spool.h). Every call takes the spool's lock
 * for its disk work (renames, manifest writes): callers run on streaming
 * threads, the clock thread and the application's, never on the network
 * thread, which only calls rd_spool_release. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "spool.h"
#include "manifest.h"

struct _RdSpool
{
  GMutex lock;
  gchar *location;              /* NULL while closed */
  gchar *incoming;
  int lock_fd;                  /* {location}/.lock, flock()ed; -1 closed */
  gchar run_id[9];              /* 8 hex digits, new at each open */
  RdBatch *open_batch;
  guint next_index;
  guint64 bytes;                /* of files not yet confirmed done */
  guint64 skipped_bytes;        /* since the spool filled; 0 when not full */
  guint64 skipped_from;
  guint64 skipped_to;
  GHashTable *counters;         /* file name prefix -> last number used */
};

void
rd_spool_ready_init (RdSpoolReady * ready)
{
  g_queue_init (&ready->closed);
  g_queue_init (&ready->resumed);
  ready->ignored = g_ptr_array_new_with_free_func (g_free);
}

void
rd_spool_ready_clear (RdSpoolReady * ready)
{
  g_queue_clear_full (&ready->closed, (GDestroyNotify) rd_batch_free);
  g_queue_clear_full (&ready->resumed, (GDestroyNotify) rd_batch_free);
  g_clear_pointer (&ready->ignored, g_ptr_array_unref);
}

static gint
compare_index (gconstpointer a, gconstpointer b, gpointer data)
{
  guint index_a = ((const RdBatch *) a)->index;
  guint index_b = ((const RdBatch *) b)->index;

  return index_a < index_b ? -1 : index_a > index_b;
}

GQueue *
rd_spool_ready_take_all (RdSpoolReady * ready)
{
  GQueue *all = g_queue_new ();
  RdBatch *batch;

  while ((batch = g_queue_pop_head (&ready->closed)))
    g_queue_insert_sorted (all, batch, compare_index, NULL);
  while ((batch = g_queue_pop_head (&ready->resumed)))
    g_queue_insert_sorted (all, batch, compare_index, NULL);
  return all;
}

void
rd_spool_file_clear (RdSpoolFile * file)
{
  g_clear_pointer (&file->path, g_free);
}

RdSpool *
rd_spool_new (void)
{
  RdSpool *spool = g_new0 (RdSpool, 1);

  g_mutex_init (&spool->lock);
  spool->lock_fd = -1;
  spool->next_index = 1;
  spool->counters = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);
  return spool;
}

void
rd_spool_free (RdSpool * spool)
{
  if (spool->lock_fd >= 0)
    close (spool->lock_fd);
  g_free (spool->location);
  g_free (spool->incoming);
  g_clear_pointer (&spool->open_batch, rd_batch_free);
  g_hash_table_unref (spool->counters);
  g_mutex_clear (&spool->lock);
  g_free (spool);
}

/* The settings a batch is sent with: those the user set, and visualize
 * always (the API's default is true, but what is sent is what was meant). */
static void
batch_take_settings (RdBatch * batch, const RdSpoolLimits * limits)
{
  rd_settings_clear (&batch->settings);
  rd_settings_copy (&batch->settings, limits->settings);
  batch->upload_mode = limits->upload_mode;
  if (batch->settings.visualize == RD_SETTING_UNSET)
    batch->settings.visualize = TRUE;
}

static gboolean
make_private_dir (const gchar * path, GError ** error)
{
  if (g_mkdir_with_parents (path, 0700) < 0) {
    int err = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err),
        "Could not create \"%s\": %s", path, g_strerror (err));
    return FALSE;
  }
  return TRUE;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar * const *) a, *(const gchar * const *) b);
}

static gboolean
batch_has_file (const RdBatch * batch, const gchar * name)
{
  for (guint i = 0; i < batch->files->len; i++) {
    if (g_str_equal (((RdBatchFile *) batch->files->pdata[i])->name, name))
      return TRUE;
  }
  return FALSE;
}

/* A file is moved into the open batch before the manifest that lists it
 * is written: a process killed in between left it in the folder, unlisted.
 * It is complete (only complete files are moved), so it joins the batch,
 * its running time unknown. */
static void
adopt_unlisted_files (RdBatch * batch)
{
  g_autoptr (GDir) dir = g_dir_open (batch->dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const gchar *entry;

  while (dir && (entry = g_dir_read_name (dir))) {
    if (entry[0] != '.' && rd_batch_extension_allowed (entry)
        && !batch_has_file (batch, entry))
      g_ptr_array_add (names, g_strdup (entry));
  }
  /* names of one run sort in the order they were numbered */
  g_ptr_array_sort (names, compare_strings);
  for (guint i = 0; i < names->len; i++) {
    const gchar *name = names->pdata[i];
    const gchar *type = rd_batch_content_type (name);
    g_autofree gchar *path = g_build_filename (batch->dir, name, NULL);
    RdMediaType media_type = RD_MEDIA_TYPE_IMAGE;
    GStatBuf st;

    if (g_stat (path, &st) < 0 || !S_ISREG (st.st_mode) || st.st_size == 0)
      continue;
    if (g_str_has_prefix (type, "audio/"))
      media_type = RD_MEDIA_TYPE_AUDIO;
    else if (g_str_has_prefix (type, "video/"))
      media_type = RD_MEDIA_TYPE_VIDEO;
    rd_batch_add_file (batch, rd_batch_file_new (name, st.st_size,
            media_type, RD_TIME_NONE, RD_TIME_NONE));
  }
}

/* A batch whose manifest cannot be read (damaged, truncated, edited) goes
 * to {location}/quarantine/, files and all, out of the way of the others
 * and of the numbering; "path: why" for the warning either way. */
static gchar *
quarantine_locked (RdSpool * spool, const gchar * path, const gchar * name,
    const GError * why)
{
  g_autofree gchar *dir = g_build_filename (spool->location, "quarantine",
      NULL);
  g_autofree gchar *dest = g_build_filename (dir, name, NULL);

  if (g_mkdir_with_parents (dir, 0700) != 0 || g_file_test (dest,
          G_FILE_TEST_EXISTS) || g_rename (path, dest) != 0)
    return g_strdup_printf ("%s (left where it is): %s", path, why->message);
  return g_strdup_printf ("%s (moved to %s): %s", path, dest, why->message);
}

/* What an earlier run left: see rd_spool_open. */
static void
scan_locked (RdSpool * spool, RdSpoolReady * ready)
{
  g_autoptr (GDir) dir = g_dir_open (spool->location, 0, NULL);
  g_autofree gchar *quarantine = g_build_filename (spool->location,
      "quarantine", NULL);
  g_autoptr (GDir) set_aside = g_dir_open (quarantine, 0, NULL);
  const gchar *entry;
  guint index;

  spool->next_index = 1;
  spool->bytes = 0;
  /* numbering goes on after the quarantined batches too */
  while (set_aside && (entry = g_dir_read_name (set_aside)))
    if (rd_batch_parse_dir_name (entry, &index))
      spool->next_index = MAX (spool->next_index, index + 1);
  while (dir && (entry = g_dir_read_name (dir))) {
    g_autofree gchar *path = NULL;
    g_autoptr (RdBatch) batch = NULL;
    g_autoptr (GError) error = NULL;

    if (!rd_batch_parse_dir_name (entry, &index))
      continue;
    spool->next_index = MAX (spool->next_index, index + 1);
    path = g_build_filename (spool->location, entry, NULL);
    batch = rd_manifest_read (path, &error);
    /* opened by a process killed before its first manifest: empty */
    if (batch == NULL && g_error_matches (error, G_FILE_ERROR,
            G_FILE_ERROR_NOENT) && g_rmdir (path) == 0)
      continue;
    if (batch == NULL) {
      g_ptr_array_add (ready->ignored, quarantine_locked (spool, path, entry,
              error));
      continue;
    }
    if (batch->state == RD_BATCH_STATE_OPEN)
      adopt_unlisted_files (batch);
    /* opened by a process killed before it moved a file in */
    if (batch->state == RD_BATCH_STATE_OPEN && batch->files->len == 0) {
      g_autofree gchar *manifest = rd_manifest_path (batch);

      if (g_unlink (manifest) == 0)
        g_rmdir (path);
      continue;
    }
    if (batch->state != RD_BATCH_STATE_DONE)
      spool->bytes += batch->total_bytes;
    if (batch->state == RD_BATCH_STATE_OPEN && batch->files->len > 0) {
      batch->state = RD_BATCH_STATE_CLOSED;
      if (!rd_manifest_write (batch, &error)) {
        g_ptr_array_add (ready->ignored, g_strdup (error->message));
        continue;
      }
      g_queue_insert_sorted (&ready->closed, g_steal_pointer (&batch),
          compare_index, NULL);
    } else if (batch->state == RD_BATCH_STATE_CLOSED
        || batch->state == RD_BATCH_STATE_SUBMITTED) {
      g_queue_insert_sorted (&ready->resumed, g_steal_pointer (&batch),
          compare_index, NULL);
    }
  }
}

/* The pid its owner wrote into the lock file, or 0. */
static gint64
read_owner_pid (int fd)
{
  gchar buf[32];
  gssize n = pread (fd, buf, sizeof (buf) - 1, 0);
  gint64 pid;

  if (n <= 0)
    return 0;
  buf[n] = '\0';
  pid = g_ascii_strtoll (buf, NULL, 10);
  return pid > 0 ? pid : 0;
}

/* {location}/.lock, held with flock() for the run: flock belongs to the
 * open file description, so a second process, and a second open of the
 * same spool in this process, is refused, and the kernel drops the lock
 * of a process that dies, even by SIGKILL. The file stays on disk:
 * unlinking it would let a third process lock a new file while the old
 * one is still held. Its content, the owner's pid, only names the owner
 * in the error. */
static int
lock_location (const gchar * location, GError ** error)
{
  g_autofree gchar *path = g_build_filename (location, ".lock", NULL);
  g_autofree gchar *pid = NULL;
  int fd = g_open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  int err;

  if (fd < 0) {
    err = errno;
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err),
        "Could not open the lock file \"%s\": %s", path, g_strerror (err));
    return -1;
  }
  while (flock (fd, LOCK_EX | LOCK_NB) < 0) {
    gint64 owner;

    err = errno;
    if (err == EINTR)
      continue;
    if (err != EWOULDBLOCK) {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err),
          "Could not lock \"%s\": %s", path, g_strerror (err));
    } else if ((owner = read_owner_pid (fd)) == (gint64) getpid ()) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY,
          "spool \"%s\" is in use by another element of this process "
          "(pid %" G_GINT64_FORMAT ")", location, owner);
    } else if (owner > 0) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY,
          "spool \"%s\" is in use by another process (pid %"
          G_GINT64_FORMAT ")", location, owner);
    } else {
      /* locked, its pid not written yet */
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY,
          "spool \"%s\" is in use by another process", location);
    }
    close (fd);
    return -1;
  }
  /* without it, a refused process only cannot name us */
  pid = g_strdup_printf ("%d\n", (int) getpid ());
  if (ftruncate (fd, 0) < 0
      || pwrite (fd, pid, strlen (pid), 0) != (gssize) strlen (pid))
    g_debug ("Could not write the pid into \"%s\": %s", path,
        g_strerror (errno));
  if (fchmod (fd, 0600) < 0)
    g_debug ("Could not chmod \"%s\": %s", path, g_strerror (errno));
  return fd;
}

/* 8 hex digits from a generator seeded from /dev/urandom for this open
 * only: two processes forked from one parent (and so sharing GLib's global
 * generator state) still choose different ids. */
static void
choose_run_id (gchar run_id[9])
{
  g_autoptr (GRand) rand = g_rand_new ();

  g_snprintf (run_id, 9, "%08x", g_rand_int (rand));
}

gboolean
rd_spool_open (RdSpool * spool, const gchar * location, RdSpoolReady * ready,
    GError ** error)
{
  g_autofree gchar *incoming = g_build_filename (location, "incoming", NULL);
  int lock_fd;

  rd_spool_close (spool);
  /* the folder must exist to hold the lock; nothing in it is read or
   * written before the lock is ours */
  if (!make_private_dir (location, error))
    return FALSE;
  lock_fd = lock_location (location, error);
  if (lock_fd < 0)
    return FALSE;
  g_chmod (location, 0700);
  if (!make_private_dir (incoming, error)) {
    close (lock_fd);
    return FALSE;
  }

  g_mutex_lock (&spool->lock);
  spool->lock_fd = lock_fd;
  choose_run_id (spool->run_id);
  g_hash_table_remove_all (spool->counters);
  spool->location = g_strdup (location);
  spool->incoming = g_steal_pointer (&incoming);
  spool->skipped_bytes = 0;
  scan_locked (spool, ready);
  g_mutex_unlock (&spool->lock);
  return TRUE;
}

void
rd_spool_close (RdSpool * spool)
{
  g_mutex_lock (&spool->lock);
  g_clear_pointer (&spool->location, g_free);
  g_clear_pointer (&spool->incoming, g_free);
  g_clear_pointer (&spool->open_batch, rd_batch_free);
  if (spool->lock_fd >= 0) {
    close (spool->lock_fd);
    spool->lock_fd = -1;
  }
  g_mutex_unlock (&spool->lock);
}

gchar *
rd_spool_incoming_path (RdSpool * spool, const gchar * basename)
{
  gchar *path = NULL;

  g_mutex_lock (&spool->lock);
  if (spool->incoming)
    path = g_build_filename (spool->incoming, basename, NULL);
  g_mutex_unlock (&spool->lock);
  return path;
}

/* "{prefix}-{runid}-NNNNNN.{extension}": numbered per prefix (pad) for
 * the run, whatever segmenter wrote the file; the run id keeps a later run
 * of this spool, and other spools on the same account, from reusing a
 * name, so that a name can find its file among the API's detects. */
static gchar *
next_file_name_locked (RdSpool * spool, const gchar * prefix,
    const gchar * extension)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (spool->counters,
          prefix)) + 1;

  g_hash_table_insert (spool->counters, g_strdup (prefix),
      GUINT_TO_POINTER (n));
  return g_strdup_printf ("%s-%s-%06u.%s", prefix, spool->run_id, n, extension);
}

static gboolean
close_batch_locked (RdSpool * spool, const RdSpoolLimits * limits,
    RdSpoolReady * ready, GError ** error)
{
  g_autoptr (RdBatch) batch = NULL;

  if (spool->open_batch == NULL || spool->open_batch->files->len == 0)
    return TRUE;
  batch = g_steal_pointer (&spool->open_batch);
  batch->state = RD_BATCH_STATE_CLOSED;
  batch_take_settings (batch, limits);
  if (!rd_manifest_write (batch, error))
    return FALSE;
  g_queue_push_tail (&ready->closed, g_steal_pointer (&batch));
  return TRUE;
}

static gboolean
ensure_open_batch_locked (RdSpool * spool, const RdSpoolLimits * limits,
    GError ** error)
{
  RdBatch *batch;

  if (spool->open_batch)
    return TRUE;
  batch = rd_batch_new (spool->next_index, spool->location);
  if (!make_private_dir (batch->dir, error)) {
    rd_batch_free (batch);
    return FALSE;
  }
  batch_take_settings (batch, limits);
  /* before any file is moved in: a folder with files always has a
   * manifest, with the settings they are to be sent with */
  if (!rd_manifest_write (batch, error)) {
    rd_batch_free (batch);
    return FALSE;
  }
  spool->next_index++;
  spool->open_batch = batch;
  return TRUE;
}

/* Outside every batch: kept on disk and never submitted. */
static void
move_oversize_locked (RdSpool * spool, const gchar * incoming_path,
    const gchar * name, RdSpoolFile * result)
{
  g_autofree gchar *dir = g_build_filename (spool->location, "oversize",
      NULL);
  g_autofree gchar *dest = g_build_filename (dir, name, NULL);

  result->outcome = RD_SPOOL_FILE_OVERSIZE;
  g_mkdir_with_parents (dir, 0700);
  result->path = g_strdup (g_rename (incoming_path, dest) == 0 ? dest :
      incoming_path);
}

/* During an outage the spool fills: new files are dropped (nothing unsent
 * is), and the range they covered is kept for the message. */
static void
skip_locked (RdSpool * spool, const gchar * incoming_path,
    guint64 running_time, guint64 duration, RdSpoolFile * result)
{
  guint64 end = running_time;

  if (running_time != RD_TIME_NONE && duration != RD_TIME_NONE)
    end = running_time + duration;
  if (spool->skipped_bytes == 0)
    spool->skipped_from = running_time;
  spool->skipped_to = end;
  spool->skipped_bytes += result->size;
  g_unlink (incoming_path);
  result->outcome = RD_SPOOL_FILE_SKIPPED;
  result->path = g_strdup (incoming_path);
  result->skipped_bytes = spool->skipped_bytes;
  result->skipped_from = spool->skipped_from;
  result->skipped_to = spool->skipped_to;
  result->spool_bytes = spool->bytes;
}

gboolean
rd_spool_add_file (RdSpool * spool, const gchar * incoming_path,
    const gchar * prefix, const gchar * extension, RdMediaType media_type,
    guint64 running_time, guint64 duration, const RdSpoolLimits * limits,
    RdSpoolReady * ready, RdSpoolFile * result, GError ** error)
{
  g_autofree gchar *name = NULL;
  g_autofree gchar *dest = NULL;
  RdBatch *batch;
  GStatBuf st;
  gboolean ok = FALSE;

  memset (result, 0, sizeof (*result));
  if (g_stat (incoming_path, &st) < 0) {
    int err = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err),
        "File \"%s\" disappeared before it could be batched: %s",
        incoming_path, g_strerror (err));
    return FALSE;
  }
  g_chmod (incoming_path, 0600);
  result->size = st.st_size;

  g_mutex_lock (&spool->lock);
  if (spool->location == NULL) {
    result->outcome = RD_SPOOL_FILE_STOPPED;
    result->path = g_strdup (incoming_path);
    ok = TRUE;
    goto out;
  }
  name = next_file_name_locked (spool, prefix, extension);
  if (result->size > limits->max_batch_bytes) {
    move_oversize_locked (spool, incoming_path, name, result);
    ok = TRUE;
    goto out;
  }
  if (spool->bytes + result->size > limits->max_spool_bytes) {
    skip_locked (spool, incoming_path, running_time, duration, result);
    ok = TRUE;
    goto out;
  }
  spool->skipped_bytes = 0;

  if (spool->open_batch && rd_batch_check_fit (spool->open_batch,
          result->size, limits->max_files,
          limits->max_batch_bytes) == RD_BATCH_FIT_CLOSE_FIRST
      && !close_batch_locked (spool, limits, ready, error))
    goto out;
  if (!ensure_open_batch_locked (spool, limits, error))
    goto out;
  batch = spool->open_batch;
  dest = g_build_filename (batch->dir, name, NULL);
  if (g_rename (incoming_path, dest) < 0) {
    int err = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err),
        "Could not move \"%s\" to \"%s\": %s", incoming_path, dest,
        g_strerror (err));
    goto out;
  }
  rd_batch_add_file (batch, rd_batch_file_new (name, result->size,
          media_type, running_time, duration));
  ((RdBatchFile *) g_ptr_array_index (batch->files,
          batch->files->len - 1))->closed_us = g_get_monotonic_time ();
  spool->bytes += result->size;
  result->outcome = RD_SPOOL_FILE_ADDED;
  result->path = g_steal_pointer (&dest);
  result->batch_index = batch->index;
  result->opened_batch = batch->files->len == 1;

  if (rd_batch_is_full (batch, limits->max_files))
    ok = close_batch_locked (spool, limits, ready, error);
  else
    ok = rd_manifest_write (batch, error);

out:
  g_mutex_unlock (&spool->lock);
  return ok;
}

gboolean
rd_spool_close_batch (RdSpool * spool, guint index,
    const RdSpoolLimits * limits, RdSpoolReady * ready, GError ** error)
{
  gboolean ok = TRUE;

  g_mutex_lock (&spool->lock);
  if (spool->open_batch && (index == 0 || spool->open_batch->index == index))
    ok = close_batch_locked (spool, limits, ready, error);
  g_mutex_unlock (&spool->lock);
  return ok;
}

void
rd_spool_release (RdSpool * spool, guint64 bytes)
{
  g_mutex_lock (&spool->lock);
  spool->bytes -= MIN (spool->bytes, bytes);
  g_mutex_unlock (&spool->lock);
}

gchar *
rd_spool_dup_location (RdSpool * spool)
{
  gchar *location;

  g_mutex_lock (&spool->lock);
  location = g_strdup (spool->location);
  g_mutex_unlock (&spool->lock);
  return location;
}

gchar *
rd_spool_dup_run_id (RdSpool * spool)
{
  gchar *run_id = NULL;

  g_mutex_lock (&spool->lock);
  if (spool->location)
    run_id = g_strdup (spool->run_id);
  g_mutex_unlock (&spool->lock);
  return run_id;
}

guint
rd_spool_get_next_index (RdSpool * spool)
{
  guint index;

  g_mutex_lock (&spool->lock);
  index = spool->next_index;
  g_mutex_unlock (&spool->lock);
  return index;
}

guint64
rd_spool_get_bytes (RdSpool * spool)
{
  guint64 bytes;

  g_mutex_lock (&spool->lock);
  bytes = spool->bytes;
  g_mutex_unlock (&spool->lock);
  return bytes;
}
