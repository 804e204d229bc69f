/* The spool directory (see spool.h). Every call takes the spool's lock
 * for its disk work (renames, manifest writes): callers run on streaming
 * threads, the clock thread and the application's, never on the network
 * thread, which only calls rd_spool_release. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>

#include "spool.h"
#include "manifest.h"

struct _RdSpool
{
  GMutex lock;
  gchar *location;              /* NULL while closed */
  gchar *incoming;
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
  spool->next_index = 1;
  spool->counters = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);
  return spool;
}

void
rd_spool_free (RdSpool * spool)
{
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

/* What an earlier run left: see rd_spool_open. */
static void
scan_locked (RdSpool * spool, RdSpoolReady * ready)
{
  g_autoptr (GDir) dir = g_dir_open (spool->location, 0, NULL);
  const gchar *entry;

  spool->next_index = 1;
  spool->bytes = 0;
  while (dir && (entry = g_dir_read_name (dir))) {
    g_autofree gchar *path = NULL;
    g_autoptr (RdBatch) batch = NULL;
    g_autoptr (GError) error = NULL;
    guint index;

    if (!rd_batch_parse_dir_name (entry, &index))
      continue;
    spool->next_index = MAX (spool->next_index, index + 1);
    path = g_build_filename (spool->location, entry, NULL);
    batch = rd_manifest_read (path, &error);
    if (batch == NULL) {
      g_ptr_array_add (ready->ignored, g_strdup_printf ("%s: %s", path,
              error->message));
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

gboolean
rd_spool_open (RdSpool * spool, const gchar * location, RdSpoolReady * ready,
    GError ** error)
{
  g_autofree gchar *incoming = g_build_filename (location, "incoming", NULL);

  if (!make_private_dir (incoming, error))
    return FALSE;
  g_chmod (location, 0700);

  g_mutex_lock (&spool->lock);
  g_free (spool->location);
  spool->location = g_strdup (location);
  g_free (spool->incoming);
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

/* "{prefix}-NNNNNN.{extension}": numbered per prefix (pad) for the
 * spool's life, whatever segmenter or run wrote the file. */
static gchar *
next_file_name_locked (RdSpool * spool, const gchar * prefix,
    const gchar * extension)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (spool->counters,
          prefix)) + 1;

  g_hash_table_insert (spool->counters, g_strdup (prefix),
      GUINT_TO_POINTER (n));
  return g_strdup_printf ("%s-%06u.%s", prefix, n, extension);
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
  name = next_file_name_locked (spool, prefix, extension);
  if (spool->location == NULL) {
    result->outcome = RD_SPOOL_FILE_STOPPED;
    result->path = g_strdup (incoming_path);
    ok = TRUE;
    goto out;
  }
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
