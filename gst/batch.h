/* Which file goes in which batch: a batch's files, its state, and the API's
 * limits (50 files, 500 MB, the allowed extensions). Plain GLib, no GStreamer. */
#pragma once

#include <glib.h>
#include "errors.h"
#include "settings.h"

G_BEGIN_DECLS

#define RD_BATCH_MAX_FILES 50
#define RD_BATCH_MAX_BYTES G_GUINT64_CONSTANT (500000000)
#define RD_TIME_NONE G_MAXUINT64

typedef enum {
  RD_MEDIA_TYPE_AUDIO,
  RD_MEDIA_TYPE_VIDEO,
  RD_MEDIA_TYPE_IMAGE,
} RdMediaType;

typedef enum {
  RD_BATCH_STATE_OPEN,
  RD_BATCH_STATE_CLOSED,
  RD_BATCH_STATE_SUBMITTED,
  RD_BATCH_STATE_DONE,
  RD_BATCH_STATE_ERROR,
} RdBatchState;

typedef struct {
  gchar *name;                  /* basename inside the batch directory */
  guint64 size;
  RdMediaType media_type;
  guint64 running_time;         /* ns in the pipeline, RD_TIME_NONE if unknown */
  guint64 duration;             /* ns, RD_TIME_NONE if unknown */
  gchar *detect_uuid;           /* NULL until the API accepted the batch */
  /* monotonic us when it joined its batch in this run, where its verdict's
   * latency starts; 0 for an earlier run's file (not in the manifest) */
  gint64 closed_us;
} RdBatchFile;

typedef struct {
  guint index;
  gchar *dir;                   /* {location}/batch-NNNNNN */
  RdBatchState state;
  GPtrArray *files;             /* RdBatchFile*, owned, in submission order */
  guint64 total_bytes;
  RdUploadMode upload_mode;
  RdSettings settings;
  gchar *uuid;                  /* the API's batch uuid, NULL until submitted */
  gchar *status;                /* the API's last batch status, or NULL */
  guint completed_count;
  guint failed_count;
  guint error_http_status;      /* state ERROR: 0 for network/local failures */
  gchar *error_reason;          /* state ERROR: why */
  /* state CLOSED: when its last upload attempt began (wall clock, us since
   * the epoch; 0: never). The API may have created it since: a next run
   * settles it (client-settle.c) before sending it again. */
  gint64 upload_started_us;
} RdBatch;

typedef enum {
  RD_BATCH_FIT_OK,              /* add it to this batch */
  RD_BATCH_FIT_CLOSE_FIRST,     /* close this batch, the file starts the next */
  RD_BATCH_FIT_NEVER,           /* larger than max_bytes on its own */
} RdBatchFit;

RdBatchFile *rd_batch_file_new (const gchar * name, guint64 size,
    RdMediaType media_type, guint64 running_time, guint64 duration);
void rd_batch_file_free (RdBatchFile * file);

RdBatch *rd_batch_new (guint index, const gchar * location);
void rd_batch_free (RdBatch * batch);

/* "batch-NNNNNN" */
gchar *rd_batch_dir_name (guint index);
/* Parses "batch-NNNNNN", FALSE for anything else. */
gboolean rd_batch_parse_dir_name (const gchar * name, guint * index);

/* Takes ownership of @file. */
void rd_batch_add_file (RdBatch * batch, RdBatchFile * file);
gchar *rd_batch_file_path (const RdBatch * batch, const RdBatchFile * file);
/* NULL-terminated array of full paths, for messages. */
gchar **rd_batch_dup_paths (const RdBatch * batch);

RdBatchFit rd_batch_check_fit (const RdBatch * batch, guint64 file_size,
    guint max_files, guint64 max_bytes);
gboolean rd_batch_is_full (const RdBatch * batch, guint max_files);

/* What the API would refuse with a 400: no files, more than 50, more than
 * 500 MB, an extension outside the allowed list, an empty file. */
gboolean rd_batch_validate (const RdBatch * batch, GError ** error);

/* ".wav" ".mp3" ... as the API lists them, case-insensitive. */
gboolean rd_batch_extension_allowed (const gchar * filename);
/* MIME type from the extension, "application/octet-stream" if unknown. */
const gchar *rd_batch_content_type (const gchar * filename);

const gchar *rd_batch_state_to_string (RdBatchState state);
gboolean rd_batch_state_from_string (const gchar * str, RdBatchState * state);
const gchar *rd_media_type_to_string (RdMediaType type);
gboolean rd_media_type_from_string (const gchar * str, RdMediaType * type);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RdBatch, rd_batch_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RdBatchFile, rd_batch_file_free)

G_END_DECLS
