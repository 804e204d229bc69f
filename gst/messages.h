/* The element's bus messages: the only place where their structure names
 * and fields are written (docs/resembledetectsink.md documents them, and a
 * test holds the two together). Builds structures from batches; posts
 * nothing itself, knows no pipeline. */
#pragma once

#include <gst/gst.h>
#include "batch.h"

G_BEGIN_DECLS

#define RD_MESSAGE_BATCH_CLOSED "resemble-detect-batch-closed"
#define RD_MESSAGE_BATCH_SUBMITTED "resemble-detect-batch-submitted"
#define RD_MESSAGE_BATCH_STATUS "resemble-detect-batch-status"
#define RD_MESSAGE_BATCH_DONE "resemble-detect-batch-done"
#define RD_MESSAGE_BATCH_ERROR "resemble-detect-batch-error"
#define RD_MESSAGE_RESULT "resemble-detect-result"
#define RD_MESSAGE_SPOOL_FULL "resemble-detect-spool-full"
/* the details of the late-verdict warning (latency-budget) */
#define RD_MESSAGE_LATENCY "resemble-detect-latency"

GstStructure *rd_messages_batch_closed (const RdBatch * batch);
GstStructure *rd_messages_batch_submitted (const RdBatch * batch);
GstStructure *rd_messages_batch_status (const RdBatch * batch);
/* @results: the batch's resemble-detect-result structures (copied) */
GstStructure *rd_messages_batch_done (const RdBatch * batch,
    const GPtrArray * results);
/* @details may be NULL (an empty details structure); @reason is already
 * free of the token */
GstStructure *rd_messages_batch_error (const RdBatch * batch,
    guint http_status, const gchar * reason, const GstStructure * details,
    gboolean cancelled);
GstStructure *rd_messages_spool_full (guint64 skipped_bytes,
    GstClockTime skipped_from, GstClockTime skipped_to, guint64 spool_bytes);
/* Where a verdict belongs: its batch, its file, and the file's place in the
 * pipeline's running time (NONE when unknown). */
void rd_messages_result_set_file (GstStructure * result,
    const gchar * batch_uuid, const gchar * path, GstClockTime running_time,
    GstClockTime duration);
/* "latency": from the file's close in the spool to its verdict on the bus. */
void rd_messages_result_set_latency (GstStructure * result,
    GstClockTime latency);
/* The details of the warning of a batch whose verdicts came past
 * latency-budget ("resemble-detect-latency"). */
GstStructure *rd_messages_latency_details (const RdBatch * batch,
    GstClockTime latency, GstClockTime budget);
/* A GST_MESSAGE_PROGRESS of @batch's upload (code upload-batch-NNNNNN). */
GstMessage *rd_messages_upload_progress (GstObject * src,
    const RdBatch * batch, guint64 sent, guint64 total);
/* The ERROR (or, @cancelled, CANCELED) progress message that ends an upload
 * attempt before its whole body was written. */
GstMessage *rd_messages_upload_failed (GstObject * src,
    const RdBatch * batch, guint64 sent, guint64 total, gboolean cancelled,
    const gchar * reason);

G_END_DECLS
