/* Reading the Resemble API's JSON answers: a batch's status, one file's
 * verdict (GET /detect/{uuid}) as a "resemble-detect-result" GstStructure, and
 * an error answer as a reason plus details. The API's published answers are
 * inconsistent (numbers as strings, percent strings, labels in any case), so
 * every reader here is tolerant of types and ignores what it does not know;
 * only a document without its "item" is refused. */
#pragma once

#include <glib.h>
#include <gst/gst.h>
#include "batch.h"

G_BEGIN_DECLS

typedef struct {
  gchar *uuid;
  /* "processing" | "completed" | "partially_failed" | "failed" | other as
   * given */
  gchar *status;
  guint total_files;
  guint completed_count;
  guint failed_count;
  gchar **detect_uuids;         /* NULL-terminated, never NULL (empty array) */
  gchar *created_at;            /* may be NULL */
} RdBatchStatus;

void rd_batch_status_free (RdBatchStatus * status);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RdBatchStatus, rd_batch_status_free)

/* {"success":true,"item":{...}} of POST /detect/batch (202), GET
 * /detect/batch/{uuid}, and the callback payload. The item needs a "uuid" and
 * a "status"; known statuses are lowercased, others kept as given. Ids are
 * taken as given (dashed UUIDs, 32 hex digits) but must be made of letters,
 * digits, '-' and '_' since they go into request paths. Counts that are
 * missing or not numbers are 0 (total_files: the number of detect uuids).
 * RD_ERROR_FORMAT when the document is not JSON or lacks the item, its uuid
 * or its status, or when a detect uuid is not an id (they pair with the
 * files by position, so none can be skipped). @length is -1 for a
 * NUL-terminated @body. */
RdBatchStatus *rd_results_parse_batch (const gchar * body, gssize length,
    GError ** error);

/* One detect of GET /detect?page=&page_size= ("List all detects"). */
typedef struct {
  gchar *uuid;                  /* an id */
  gchar *filename;              /* as uploaded (tokenized with zero
                                 * retention); may be NULL */
  gint64 created_us;            /* since the epoch, UTC; G_MININT64 unknown */
  gchar *status;                /* lowercase; may be NULL */
} RdDetectListItem;

typedef struct {
  guint page;                   /* 0 when the API does not say */
  guint num_pages;
  guint total_count;
  RdDetectListItem *items;      /* in the API's order */
  guint n_items;
  guint n_unreadable;           /* items left out: no "uuid" id */
} RdDetectList;

void rd_detect_list_free (RdDetectList * list);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RdDetectList, rd_detect_list_free)

/* {"success":true,"page":..,"num_pages":..,"total_count":..,"items":[..]}
 * of the list of detects. Items without a "uuid" id are left out; a
 * missing or unreadable filename, created_at or status is NULL/G_MININT64.
 * RD_ERROR_FORMAT when the document is not JSON or has no "items" array. */
RdDetectList *rd_results_parse_detect_list (const gchar * body,
    gssize length, GError ** error);
/* FALSE (RD_ERROR_FORMAT) when items of @list were left out: such a list
 * cannot prove that a detect is not there, since any of them may be it. */
gboolean rd_results_detect_list_is_whole (const RdDetectList * list,
    GError ** error);

/* TRUE for "completed", "partially_failed" and "failed", in any case. */
gboolean rd_results_batch_status_is_terminal (const gchar * status);

/* {"success":true,"item":{...}} of GET /detect/{uuid} -> a GstStructure named
 * "resemble-detect-result":
 *   detect-uuid (string), media-type (string: audio|video|image, inferred
 *   from the metrics present when the item does not say; absent when it
 *   cannot be known), status (string, lowercase when known, "unknown" when
 *   the item has none), label (string, lowercase, absent when
 *   there is no verdict), score (double, -1 when the API has none),
 *   error-message (string) when the item carries one,
 *   audio: consistency, aggregated-score (double), chunk-scores (array of
 *   double); image: image-type, ifl-score, heatmap; video: certainty,
 *   children (array of "resemble-detect-child" structures: type, label,
 *   score, certainty, timestamp, children), audio-label, audio-score,
 *   audio-consistency, audio-chunk-scores for the audio track;
 *   and as present: filename, media-duration (double s), zero-retention-mode,
 *   media-redacted, media-deleted, emulated (bool), url, audio-url, image,
 *   heatmap (http(s) only), source-tracing-label, intelligence-description,
 *   created-at, updated-at (string).
 * The score is audio: aggregated_score (else the mean of the chunk scores);
 * image: image_metrics.score; video: video_metrics.score (else certainty).
 * RD_ERROR_FORMAT when the document is not JSON or lacks the item or its
 * uuid (an id as for batches). */
GstStructure *rd_results_parse_detect (const gchar * body, gssize length,
    GError ** error);

/* An error answer ({"success":false,"message":...,"errors":{...},
 * "error":...,"details":{...}}, or not JSON at all) -> a human @reason (the
 * API's own message; else "HTTP <status>" and the first ~200 printable
 * characters of the body) and a "details" structure holding, as present:
 * per-file-estimates (array of structures, the API's fields with dashed
 * names), total-estimated-cost-cents (int64 or double as given), limit, used,
 * requested (int64), errors (structure: field -> messages joined with "; "),
 * error (string, when the API gave both "message" and "error"), and any other
 * scalar of the API's "details". Both out arguments are always set when
 * non-NULL; @details may be an empty structure. */
void rd_results_parse_error (guint http_status, const gchar * body,
    gssize length, gchar ** reason, GstStructure ** details);

/* "Likely Fake" -> "likely fake": lowercase, trimmed, underscores and runs
 * of white space as one space. NULL when nothing is left. */
gchar *rd_results_normalize_label (const gchar * label);

G_END_DECLS
