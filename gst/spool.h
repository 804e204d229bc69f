/* The spool directory of one element: where closed files go, which batch
 * they join (within the limits of batch.h), the batch numbering, the bytes
 * it holds, and what an earlier run left unfinished. Plain GLib and the
 * disk: it posts nothing, submits nothing and knows no pipeline; callers
 * announce the batches it closes and hand them to the client. Thread-safe.
 *
 * Layout: {location}/.lock is flock()ed by the one RdSpool that has it
 * open (and holds its process's pid); {location}/incoming/ holds files
 * being written; {location}/batch-NNNNNN/ a batch's files and
 * manifest.json; {location}/oversize/ files larger than a whole batch. */
#pragma once

#include <glib.h>
#include "batch.h"

G_BEGIN_DECLS

typedef struct _RdSpool RdSpool;

/* What a batch may hold, and the settings it is sent with (copied into
 * each batch when it opens and when it closes). */
typedef struct
{
  guint max_files;
  guint64 max_batch_bytes;
  guint64 max_spool_bytes;
  RdUploadMode upload_mode;
  const RdSettings *settings;
} RdSpoolLimits;

/* Batches for the client, each in index order, owned. */
typedef struct
{
  GQueue closed;                /* closed just now: announce, then submit */
  GQueue resumed;               /* left closed or submitted by an earlier run */
  /* "dir (where it is now): why" of batch folders whose manifest cannot
   * be read (moved to {location}/quarantine/) or rewritten */
  GPtrArray *ignored;
} RdSpoolReady;

void rd_spool_ready_init (RdSpoolReady * ready);
void rd_spool_ready_clear (RdSpoolReady * ready);
/* Every batch of @ready (closed and resumed), in index order, emptied out
 * of it: the order to submit them in. */
GQueue *rd_spool_ready_take_all (RdSpoolReady * ready);

typedef enum
{
  RD_SPOOL_FILE_ADDED,          /* in the open batch */
  RD_SPOOL_FILE_OVERSIZE,       /* larger than max-batch-bytes: in oversize/ */
  RD_SPOOL_FILE_SKIPPED,        /* the spool is full: deleted */
  RD_SPOOL_FILE_STOPPED,        /* the spool is closed: left where it was */
} RdSpoolFileOutcome;

typedef struct
{
  RdSpoolFileOutcome outcome;
  gchar *path;                  /* where the file is now */
  guint64 size;
  guint batch_index;            /* ADDED: its batch */
  gboolean opened_batch;        /* ADDED: its batch was opened for it */
  /* SKIPPED: what was skipped since the spool filled, and what it holds */
  guint64 skipped_bytes;
  guint64 skipped_from;         /* ns of running time, RD_TIME_NONE unknown */
  guint64 skipped_to;
  guint64 spool_bytes;
} RdSpoolFile;

void rd_spool_file_clear (RdSpoolFile * file);

RdSpool *rd_spool_new (void);
void rd_spool_free (RdSpool * spool);

/* Opens @location for a run (ending the spool's current run, if any):
 * creates it (mode 0700), locks it, creates incoming/, chooses the run id,
 * then reads what an earlier run left: numbering goes on after its highest
 * batch, its unfinished batches count towards the spool's bytes, a batch it
 * left open is closed (its files are complete). A spool that another
 * RdSpool has open, in this process or another, is refused with
 * G_IO_ERROR_BUSY (naming the owner's pid), nothing in it touched. */
gboolean rd_spool_open (RdSpool * spool, const gchar * location,
    RdSpoolReady * ready, GError ** error);
/* Ends the run and releases the lock: files that complete afterwards stay
 * where they are. */
void rd_spool_close (RdSpool * spool);

/* {location}/incoming/@basename, or NULL when the spool is closed. */
gchar *rd_spool_incoming_path (RdSpool * spool, const gchar * basename);

/* Takes the complete file @incoming_path into the open batch as
 * "{prefix}-{runid}-NNNNNN.{extension}" (numbered per prefix for the run),
 * closing batches into @ready->closed on the limits. FALSE (and the file
 * stays where it is) when the disk refused. */
gboolean rd_spool_add_file (RdSpool * spool, const gchar * incoming_path,
    const gchar * prefix, const gchar * extension, RdMediaType media_type,
    guint64 running_time, guint64 duration, const RdSpoolLimits * limits,
    RdSpoolReady * ready, RdSpoolFile * result, GError ** error);

/* Closes the open batch into @ready->closed if it has files (and, for an
 * @index other than 0, if it is that batch). FALSE when its manifest could
 * not be written (its files stay on disk). */
gboolean rd_spool_close_batch (RdSpool * spool, guint index,
    const RdSpoolLimits * limits, RdSpoolReady * ready, GError ** error);

/* A batch's files left the spool (done, not kept). */
void rd_spool_release (RdSpool * spool, guint64 bytes);

/* For logs and tests: where, the next batch number, the bytes held, the
 * run. */
gchar *rd_spool_dup_location (RdSpool * spool);
guint rd_spool_get_next_index (RdSpool * spool);
/* The run's id (8 hex digits, in every file name of the run), or NULL when
 * the spool is closed. */
gchar *rd_spool_dup_run_id (RdSpool * spool);
guint64 rd_spool_get_bytes (RdSpool * spool);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RdSpool, rd_spool_free)

G_END_DECLS
