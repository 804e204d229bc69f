/* The element's bus message structures (see messages.h). Fields that
 * messages have in common have the same names and types everywhere, which
 * is easier to keep when one file writes them all. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "messages.h"
#include "manifest.h"

static void
set_string_array (GstStructure * s, const gchar * field, gchar ** strings,
    guint n)
{
  g_auto (GValue) array = G_VALUE_INIT;

  gst_value_array_init (&array, n);
  for (guint i = 0; i < n; i++) {
    GValue v = G_VALUE_INIT;
    g_value_init (&v, G_TYPE_STRING);
    g_value_set_string (&v, strings[i] ? strings[i] : "");
    gst_value_array_append_and_take_value (&array, &v);
  }
  gst_structure_set_value (s, field, &array);
}

static void
set_detect_uuids (GstStructure * s, const RdBatch * batch)
{
  g_autofree gchar **uuids = g_new0 (gchar *, batch->files->len + 1);

  for (guint i = 0; i < batch->files->len; i++)
    uuids[i] = ((RdBatchFile *) batch->files->pdata[i])->detect_uuid;
  set_string_array (s, "detect-uuids", uuids, batch->files->len);
}

static void
set_files (GstStructure * s, const RdBatch * batch)
{
  g_auto (GStrv) paths = rd_batch_dup_paths (batch);

  set_string_array (s, "files", paths, batch->files->len);
}

GstStructure *
rd_messages_batch_closed (const RdBatch * batch)
{
  g_autofree gchar *manifest = rd_manifest_path (batch);
  GstStructure *s = gst_structure_new (RD_MESSAGE_BATCH_CLOSED,
      "index", G_TYPE_UINT, batch->index,
      "total-files", G_TYPE_UINT, batch->files->len,
      "total-bytes", G_TYPE_UINT64, batch->total_bytes,
      "manifest", G_TYPE_STRING, manifest, NULL);

  set_files (s, batch);
  return s;
}

GstStructure *
rd_messages_batch_submitted (const RdBatch * batch)
{
  GstStructure *s = gst_structure_new (RD_MESSAGE_BATCH_SUBMITTED,
      "index", G_TYPE_UINT, batch->index,
      "uuid", G_TYPE_STRING, batch->uuid,
      "total-files", G_TYPE_UINT, batch->files->len,
      "total-bytes", G_TYPE_UINT64, batch->total_bytes, NULL);

  set_detect_uuids (s, batch);
  set_files (s, batch);
  return s;
}

GstStructure *
rd_messages_batch_status (const RdBatch * batch)
{
  return gst_structure_new (RD_MESSAGE_BATCH_STATUS,
      "index", G_TYPE_UINT, batch->index,
      "uuid", G_TYPE_STRING, batch->uuid,
      "status", G_TYPE_STRING, batch->status ? batch->status : "",
      "completed-count", G_TYPE_UINT, batch->completed_count,
      "failed-count", G_TYPE_UINT, batch->failed_count, NULL);
}

GstStructure *
rd_messages_batch_done (const RdBatch * batch, const GPtrArray * results)
{
  g_auto (GValue) array = G_VALUE_INIT;
  GstStructure *s = gst_structure_new (RD_MESSAGE_BATCH_DONE,
      "index", G_TYPE_UINT, batch->index,
      "uuid", G_TYPE_STRING, batch->uuid,
      "status", G_TYPE_STRING, batch->status ? batch->status : "",
      "total-files", G_TYPE_UINT, batch->files->len,
      "completed-count", G_TYPE_UINT, batch->completed_count,
      "failed-count", G_TYPE_UINT, batch->failed_count, NULL);

  set_detect_uuids (s, batch);
  gst_value_array_init (&array, results->len);
  for (guint i = 0; i < results->len; i++) {
    GValue v = G_VALUE_INIT;
    g_value_init (&v, GST_TYPE_STRUCTURE);
    g_value_set_boxed (&v, results->pdata[i]);
    gst_value_array_append_and_take_value (&array, &v);
  }
  gst_structure_set_value (s, "results", &array);
  return s;
}

GstStructure *
rd_messages_batch_error (const RdBatch * batch, guint http_status,
    const gchar * reason, const GstStructure * details, gboolean cancelled)
{
  g_autofree gchar *manifest = rd_manifest_path (batch);
  GstStructure *s = gst_structure_new (RD_MESSAGE_BATCH_ERROR,
      "index", G_TYPE_UINT, batch->index,
      "http-status", G_TYPE_UINT, http_status,
      "reason", G_TYPE_STRING, reason,
      "cancelled", G_TYPE_BOOLEAN, cancelled,
      "total-files", G_TYPE_UINT, batch->files->len,
      "total-bytes", G_TYPE_UINT64, batch->total_bytes,
      "manifest", G_TYPE_STRING, manifest, NULL);

  if (batch->uuid)
    gst_structure_set (s, "uuid", G_TYPE_STRING, batch->uuid, NULL);
  if (details) {
    gst_structure_set (s, "details", GST_TYPE_STRUCTURE, details, NULL);
  } else {
    g_autoptr (GstStructure) empty = gst_structure_new_empty ("details");
    gst_structure_set (s, "details", GST_TYPE_STRUCTURE, empty, NULL);
  }
  set_files (s, batch);
  return s;
}

GstStructure *
rd_messages_spool_full (guint64 skipped_bytes, GstClockTime skipped_from,
    GstClockTime skipped_to, guint64 spool_bytes)
{
  return gst_structure_new (RD_MESSAGE_SPOOL_FULL,
      "skipped-bytes", G_TYPE_UINT64, skipped_bytes,
      "skipped-from", G_TYPE_UINT64, skipped_from,
      "skipped-to", G_TYPE_UINT64, skipped_to,
      "spool-bytes", G_TYPE_UINT64, spool_bytes, NULL);
}

void
rd_messages_result_set_file (GstStructure * result, const gchar * batch_uuid,
    const gchar * path, GstClockTime running_time, GstClockTime duration)
{
  gst_structure_set (result,
      "batch-uuid", G_TYPE_STRING, batch_uuid,
      "file", G_TYPE_STRING, path,
      "running-time", G_TYPE_UINT64, running_time,
      "duration", G_TYPE_UINT64, duration, NULL);
}

void
rd_messages_result_set_latency (GstStructure * result, GstClockTime latency)
{
  gst_structure_set (result, "latency", G_TYPE_UINT64, latency, NULL);
}

GstStructure *
rd_messages_latency_details (const RdBatch * batch, GstClockTime latency,
    GstClockTime budget)
{
  return gst_structure_new (RD_MESSAGE_LATENCY,
      "index", G_TYPE_UINT, batch->index,
      "uuid", G_TYPE_STRING, batch->uuid,
      "latency", G_TYPE_UINT64, latency,
      "latency-budget", G_TYPE_UINT64, budget, NULL);
}

static GstMessage *
upload_message (GstObject * src, const RdBatch * batch, GstProgressType type,
    guint64 sent, guint64 total, const gchar * text)
{
  g_autofree gchar *code = g_strdup_printf ("upload-batch-%06u", batch->index);
  GstMessage *msg = gst_message_new_progress (src, type, code, text);

  gst_structure_set ((GstStructure *) gst_message_get_structure (msg),
      "index", G_TYPE_UINT, batch->index,
      "sent-bytes", G_TYPE_UINT64, sent,
      "total-bytes", G_TYPE_UINT64, total, NULL);
  return msg;
}

GstMessage *
rd_messages_upload_progress (GstObject * src, const RdBatch * batch,
    guint64 sent, guint64 total)
{
  g_autofree gchar *text = g_strdup_printf ("Uploading batch %u: %"
      G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes", batch->index, sent,
      total);
  GstProgressType type = GST_PROGRESS_TYPE_CONTINUE;

  if (sent == 0)
    type = GST_PROGRESS_TYPE_START;
  else if (sent >= total)
    type = GST_PROGRESS_TYPE_COMPLETE;
  return upload_message (src, batch, type, sent, total, text);
}

GstMessage *
rd_messages_upload_failed (GstObject * src, const RdBatch * batch,
    guint64 sent, guint64 total, gboolean cancelled, const gchar * reason)
{
  g_autofree gchar *text = cancelled ?
      g_strdup_printf ("Upload of batch %u stopped at %" G_GUINT64_FORMAT
      " of %" G_GUINT64_FORMAT " bytes", batch->index, sent, total) :
      g_strdup_printf ("Upload of batch %u failed at %" G_GUINT64_FORMAT
      " of %" G_GUINT64_FORMAT " bytes: %s", batch->index, sent, total,
      reason);

  return upload_message (src, batch, cancelled ? GST_PROGRESS_TYPE_CANCELED :
      GST_PROGRESS_TYPE_ERROR, sent, total, text);
}
