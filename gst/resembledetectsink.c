/* resembledetectsink: the bin. It has the pads, the properties and the
 * state changes, and wires its rooms together along the data flow: the
 * pads' streams (streams.c: segmenters, snapshots, preroll) hand complete
 * files to the spool (spool.c: batches on disk), whose closed batches go to
 * the network client (client.h, a module of its own) after their
 * batch-closed message; what the client reports becomes bus messages
 * (messages.c). EOS is held until every batch has ended. */

/**
 * SECTION:element-resembledetectsink
 * @title: resembledetectsink
 *
 * Accumulates encoded audio/video segments and image snapshots from a
 * pipeline, writes them as batch files in a spool directory (`location`),
 * submits each batch to the Resemble AI batch deepfake detection API
 * (`api-url`, by default the production service), follows it to a terminal
 * state and posts every file's verdict on the bus.
 *
 * A batch closes when it reaches `max-files` or `max-batch-bytes`, when
 * `batch-timeout` expires, on the `submit-now` action signal, and at EOS.
 * Audio and video are cut into files of `segment-duration` by splitmuxsink
 * (keyframe-aligned, complete headers in every file); `container=auto`
 * writes audio as .wav, .mp3, .m4a, .ogg or .flac and video as .mp4 or
 * .webm (.mkv when the video's container cannot hold the audio). Each
 * buffer on an `image_%u` pad is one snapshot file (.jpg .png .gif .webp).
 * The element prerolls like a sink: PAUSED commits once every pad has had
 * data.
 *
 * ## Messages
 *
 * Every closed batch ends in exactly one `resemble-detect-batch-done` or
 * `resemble-detect-batch-error`. Their fields, with types, are documented
 * in docs/resembledetectsink.md.
 *
 * - `resemble-detect-batch-closed`: `index`, `files`, `total-files`,
 *   `total-bytes`, `manifest`
 * - `resemble-detect-batch-submitted`: `index`, `uuid`, `detect-uuids`,
 *   `files`, `total-files`, `total-bytes`
 * - `resemble-detect-batch-status`: `index`, `uuid`, `status`,
 *   `completed-count`, `failed-count` (when they change)
 * - `resemble-detect-result` (also inside `results`): `batch-uuid`,
 *   `detect-uuid`, `file`, `media-type`, `status`, `label`, `score`,
 *   `running-time`, `duration`, and the API's metrics
 * - `resemble-detect-batch-done`: `index`, `uuid`, `status`, `total-files`,
 *   `completed-count`, `failed-count`, `detect-uuids`, `results`
 * - `resemble-detect-batch-error`: `index`, `uuid`, `http-status`,
 *   `reason`, `details`, `cancelled`, `files`, `total-files`,
 *   `total-bytes`, `manifest`
 * - `resemble-detect-spool-full`: `skipped-bytes`, `skipped-from`,
 *   `skipped-to`, `spool-bytes`
 * - upload progress: GST_MESSAGE_PROGRESS `upload-batch-NNNNNN` with
 *   `index`, `sent-bytes`, `total-bytes`: START, CONTINUE, then COMPLETE,
 *   ERROR or CANCELED for each attempt
 *
 * A file larger than `max-batch-bytes` on its own is never submitted: it is
 * moved to `{location}/oversize/` and a warning message names it.
 *
 * ## Spool and restarts
 *
 * The default `location` is
 * `{user cache dir}/gst-resembledetect/{program}/{pipeline}/.../{element}`,
 * made of the program's name and the names from the top-level pipeline down
 * to the element, so that a restarted process (even after `kill -9`)
 * finishes what the previous one left. The spool is locked (`flock` on
 * `{location}/.lock`) while the element runs: a second element or process
 * on it fails to start with `GST_RESOURCE_ERROR_BUSY`, touching nothing.
 * Files are named `{pad}-{run}-NNNNNN.{ext}`, `{run}` being 8 hex digits
 * chosen at each start, so that no run reuses an earlier run's names.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -e audiotestsrc num-buffers=500 ! audioconvert ! \
 *     resembledetectsink location=/tmp/spool segment-duration=2000000000
 * gst-launch-1.0 -e videotestsrc num-buffers=30 ! jpegenc ! \
 *     resembledetectsink location=/tmp/spool max-files=10
 * ]|
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gio/gio.h>

#include "resembledetectsink.h"
#include "client-module.h"
#include "client-pool.h"
#include "messages.h"
#include "sink-config.h"
#include "spool.h"
#include "streams.h"

GST_DEBUG_CATEGORY (gst_resemble_detect_sink_debug);
#define GST_CAT_DEFAULT gst_resemble_detect_sink_debug

enum
{
  SIGNAL_SUBMIT_NOW,
  LAST_SIGNAL,
};

static guint gst_resemble_detect_sink_signals[LAST_SIGNAL];

struct _GstResembleDetectSink
{
  GstBin parent;

  /* under the object lock */
  RdSinkConfig config;
  GstClockID timeout_id;        /* batch-timeout of the open batch */
  guint timeout_index;          /* its batch */
  gboolean error_posted;        /* on-error=error: the first one was */
  GHashTable *late_batches;     /* indexes warned of past latency-budget */
  RdClientPool *pool;           /* the pipeline's network threads (context) */

  RdStreams *streams;           /* locks itself */
  RdSpool *spool;               /* locks itself */

  /* the network client, and EOS held for it, under client_lock */
  GMutex client_lock;
  const RdClientVTable *client_api;     /* loaded on the first start */
  RdClient *client;
  RdClientHub *hub;             /* the client's, from the pool */
  GstMessage *held_eos;
};

#define CLIENT_LOCK(s) g_mutex_lock (&(s)->client_lock)
#define CLIENT_UNLOCK(s) g_mutex_unlock (&(s)->client_lock)

#define VIDEO_CAPS \
  "video/x-h264, stream-format = (string) { avc, avc3 }, alignment = (string) au; " \
  "video/x-h265, stream-format = (string) { hvc1, hev1 }, alignment = (string) au; " \
  "video/x-vp8; video/x-vp9; video/x-av1"
#define AUDIO_CAPS \
  "audio/x-raw, format = (string) { U8, S16LE, S24LE, S32LE, F32LE, F64LE }, " \
  "layout = (string) interleaved; " \
  "audio/mpeg, mpegversion = (int) 1, layer = (int) 3; " \
  "audio/mpeg, mpegversion = (int) { 2, 4 }, stream-format = (string) raw; " \
  "audio/x-opus; audio/x-vorbis; audio/x-flac"
#define IMAGE_CAPS "image/jpeg; image/png; image/gif; image/webp"

static GstStaticPadTemplate video_template =
GST_STATIC_PAD_TEMPLATE ("video", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS (VIDEO_CAPS));
static GstStaticPadTemplate audio_template =
GST_STATIC_PAD_TEMPLATE ("audio_%u", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS (AUDIO_CAPS));
static GstStaticPadTemplate image_template =
GST_STATIC_PAD_TEMPLATE ("image_%u", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS (IMAGE_CAPS));

#define gst_resemble_detect_sink_parent_class parent_class
G_DEFINE_TYPE (GstResembleDetectSink, gst_resemble_detect_sink, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE (resembledetectsink, "resembledetectsink",
    GST_RANK_NONE, GST_TYPE_RESEMBLE_DETECT_SINK);

static void client_error (const RdBatch * batch, guint http_status,
    const gchar * reason, const GstStructure * details, gboolean cancelled,
    gpointer user_data);

static void
post_element_message (GstResembleDetectSink * self, GstStructure * s)
{
  gst_element_post_message (GST_ELEMENT_CAST (self),
      gst_message_new_element (GST_OBJECT_CAST (self), s));
}

static void
post_error (GstResembleDetectSink * self, const GError * error,
    const gchar * debug)
{
  gst_element_message_full (GST_ELEMENT_CAST (self), GST_MESSAGE_ERROR,
      error->domain, error->code, g_strdup (error->message), g_strdup (debug),
      __FILE__, GST_FUNCTION, __LINE__);
}

/* ---- batches: from the spool to the client ------------------------------- */

/* The limits and settings of batches closing now; clear with
 * limits_clear. */
static void
limits_take (GstResembleDetectSink * self, RdSpoolLimits * limits,
    RdSettings * settings)
{
  rd_settings_init (settings);
  GST_OBJECT_LOCK (self);
  limits->max_files = self->config.max_files;
  limits->max_batch_bytes = self->config.max_batch_bytes;
  limits->max_spool_bytes = self->config.max_spool_bytes;
  limits->upload_mode = self->config.upload_mode;
  rd_settings_copy (settings, &self->config.settings);
  GST_OBJECT_UNLOCK (self);
  limits->settings = settings;
}

static void
unschedule_timeout (GstResembleDetectSink * self, guint index)
{
  GstClockID id = NULL;

  GST_OBJECT_LOCK (self);
  if (self->timeout_id && (index == 0 || self->timeout_index == index))
    id = g_steal_pointer (&self->timeout_id);
  GST_OBJECT_UNLOCK (self);
  if (id) {
    gst_clock_id_unschedule (id);
    gst_clock_id_unref (id);
  }
}

/* Announces the batches the spool closed (batch-closed), then hands them
 * and the resumed ones to the client, in index order: a batch's closed
 * message always precedes what the client says of it. */
static void
batches_ready (GstResembleDetectSink * self, RdSpoolReady * ready)
{
  g_autoptr (GQueue) all = NULL;
  RdBatch *batch;

  for (guint i = 0; i < ready->ignored->len; i++)
    GST_ELEMENT_WARNING (self, RESOURCE, READ, ("A batch of the spool "
            "cannot be used, and its files are kept: %s",
            (const gchar *) ready->ignored->pdata[i]), (NULL));
  for (GList * l = ready->closed.head; l; l = l->next) {
    batch = l->data;
    unschedule_timeout (self, batch->index);
    GST_INFO_OBJECT (self, "closed batch %u: %u files, %" G_GUINT64_FORMAT
        " bytes", batch->index, batch->files->len, batch->total_bytes);
    post_element_message (self, rd_messages_batch_closed (batch));
  }
  all = rd_spool_ready_take_all (ready);
  while ((batch = g_queue_pop_head (all))) {
    RdClient *client;

    /* Under the lock, so that stop cannot free the client meanwhile. The
     * client never reports synchronously from submit while it is set here:
     * stop takes it out of self->client before stopping it. */
    CLIENT_LOCK (self);
    client = self->client;
    if (client)
      self->client_api->submit (client, batch);
    CLIENT_UNLOCK (self);
    /* Without a client (stopping), the batch stays closed on disk for the
     * next run, and ends here as cancelled. */
    if (client == NULL) {
      client_error (batch, 0, "cancelled: the element stopped before the "
          "batch was submitted; the next start submits it", NULL, TRUE, self);
      rd_batch_free (batch);
    }
  }
}

static void
close_batch (GstResembleDetectSink * self, guint index)
{
  g_autoptr (GError) error = NULL;
  RdSpoolLimits limits;
  RdSettings settings;
  RdSpoolReady ready;

  limits_take (self, &limits, &settings);
  rd_spool_ready_init (&ready);
  if (!rd_spool_close_batch (self->spool, index, &limits, &ready, &error)) {
    g_autoptr (GError) write = g_error_new (GST_RESOURCE_ERROR,
        g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOSPC) ?
        GST_RESOURCE_ERROR_NO_SPACE_LEFT : GST_RESOURCE_ERROR_WRITE,
        "Could not write the manifest of a batch: %s", error->message);
    post_error (self, write, "the batch's files are on disk, its manifest "
        "is not");
  }
  batches_ready (self, &ready);
  rd_spool_ready_clear (&ready);
  rd_settings_clear (&settings);
}

typedef struct
{
  GstResembleDetectSink *self;
  guint index;
} TimeoutData;

static gboolean
batch_timeout_cb (GstClock * clock, GstClockTime time, GstClockID id,
    gpointer user_data)
{
  TimeoutData *data = user_data;

  /* a no-op if the batch closed for another reason meanwhile */
  GST_DEBUG_OBJECT (data->self, "batch-timeout expired for batch %u",
      data->index);
  close_batch (data->self, data->index);
  return TRUE;
}

static void
timeout_data_free (gpointer user_data)
{
  TimeoutData *data = user_data;

  gst_object_unref (data->self);
  g_free (data);
}

static void
schedule_timeout (GstResembleDetectSink * self, guint index,
    GstClockTime timeout)
{
  g_autoptr (GstClock) clock = gst_system_clock_obtain ();
  TimeoutData *data = g_new0 (TimeoutData, 1);
  GstClockID id = gst_clock_new_single_shot_id (clock,
      gst_clock_get_time (clock) + timeout);

  unschedule_timeout (self, 0);
  data->self = gst_object_ref (self);
  data->index = index;
  GST_OBJECT_LOCK (self);
  self->timeout_id = gst_clock_id_ref (id);
  self->timeout_index = index;
  GST_OBJECT_UNLOCK (self);
  gst_clock_id_wait_async (id, batch_timeout_cb, data, timeout_data_free);
  gst_clock_id_unref (id);
}

static gint
batch_has_index (gconstpointer batch, gconstpointer index)
{
  return ((const RdBatch *) batch)->index == *(const guint *) index ? 0 : 1;
}

/* A segment or snapshot file is complete: into its batch (disk only; any
 * streaming thread). */
static void
add_file (GstResembleDetectSink * self, const RdMediaFile * media)
{
  g_autoptr (GError) error = NULL;
  GstClockTime batch_timeout;
  RdSpoolLimits limits;
  RdSettings settings;
  RdSpoolReady ready;
  RdSpoolFile file;
  gboolean added;

  GST_OBJECT_LOCK (self);
  batch_timeout = self->config.batch_timeout;
  GST_OBJECT_UNLOCK (self);
  limits_take (self, &limits, &settings);
  rd_spool_ready_init (&ready);
  added = rd_spool_add_file (self->spool, media->path, media->prefix,
      media->extension, media->media_type, media->start, media->duration,
      &limits, &ready, &file, &error);
  rd_settings_clear (&settings);

  if (!added && g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ, ("%s", error->message), (NULL));
  } else if (!added) {
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE, ("Could not add a file to the "
            "batch."), ("%s", error->message));
  } else if (file.outcome == RD_SPOOL_FILE_ADDED) {
    GST_DEBUG_OBJECT (self, "added %s (%" G_GUINT64_FORMAT " bytes, %"
        GST_TIME_FORMAT " + %" GST_TIME_FORMAT ") to batch %u", file.path,
        file.size, GST_TIME_ARGS (media->start),
        GST_TIME_ARGS (media->duration), file.batch_index);
    /* the batch's first file starts its timeout, unless it closed at once */
    if (file.opened_batch && batch_timeout > 0
        && !g_queue_find_custom (&ready.closed, &file.batch_index,
            batch_has_index))
      schedule_timeout (self, file.batch_index, batch_timeout);
  } else if (file.outcome == RD_SPOOL_FILE_OVERSIZE) {
    GST_ELEMENT_WARNING_WITH_DETAILS (self, RESOURCE, TOO_LAZY,
        ("File \"%s\" (%" G_GUINT64_FORMAT " bytes) is larger than "
            "max-batch-bytes (%" G_GUINT64_FORMAT ") and will not be "
            "submitted; it stays on disk.", file.path, file.size,
            limits.max_batch_bytes), (NULL),
        ("file", G_TYPE_STRING, file.path, "size", G_TYPE_UINT64, file.size,
            NULL));
  } else if (file.outcome == RD_SPOOL_FILE_SKIPPED) {
    GST_WARNING_OBJECT (self, "spool full (%" G_GUINT64_FORMAT " bytes): "
        "skipped %s", file.spool_bytes, file.path);
    post_element_message (self, rd_messages_spool_full (file.skipped_bytes,
            file.skipped_from, file.skipped_to, file.spool_bytes));
  }
  batches_ready (self, &ready);
  rd_spool_ready_clear (&ready);
  rd_spool_file_clear (&file);
}

static void
gst_resemble_detect_sink_submit_now (GstResembleDetectSink * self)
{
  GST_DEBUG_OBJECT (self, "submit-now");
  close_batch (self, 0);
}

/* ---- the pads' reports, on streaming threads ----------------------------- */

static gchar *
streams_location (const gchar * basename, gpointer user_data)
{
  GstResembleDetectSink *self = user_data;

  return rd_spool_incoming_path (self->spool, basename);
}

static void
streams_file_closed (const RdMediaFile * file, gpointer user_data)
{
  add_file (user_data, file);
}

static void
streams_prerolled (gpointer user_data)
{
  GST_BIN_CLASS (parent_class)->handle_message (GST_BIN_CAST (user_data),
      gst_message_new_async_done (GST_OBJECT_CAST (user_data),
          GST_CLOCK_TIME_NONE));
}

static void
streams_ended_without_sinks (gpointer user_data)
{
  gst_element_post_message (GST_ELEMENT_CAST (user_data),
      gst_message_new_eos (GST_OBJECT_CAST (user_data)));
}

static GstMessage *
take_held_eos (GstResembleDetectSink * self)
{
  GstMessage *eos;

  CLIENT_LOCK (self);
  eos = g_steal_pointer (&self->held_eos);
  CLIENT_UNLOCK (self);
  return eos;
}

/* A flush ends the EOS that may be held: the stream goes on. */
static void
streams_flushed (gpointer user_data)
{
  GstResembleDetectSink *self = user_data;
  GstMessage *eos = take_held_eos (self);

  if (eos) {
    GST_DEBUG_OBJECT (self, "flushed: the held EOS is dropped");
    gst_message_unref (eos);
  }
}

static void
streams_error (const GError * error, const gchar * debug, gpointer user_data)
{
  post_error (user_data, error, debug);
}

static const RdStreamsCallbacks streams_callbacks = {
  streams_location,
  streams_file_closed,
  streams_prerolled,
  streams_ended_without_sinks,
  streams_flushed,
  streams_error,
};

static GstPad *
gst_resemble_detect_sink_request_new_pad (GstElement * element,
    GstPadTemplate * templ, const gchar * name, const GstCaps * caps)
{
  return rd_streams_request_pad (GST_RESEMBLE_DETECT_SINK (element)->streams,
      templ, name);
}

static void
gst_resemble_detect_sink_release_pad (GstElement * element, GstPad * pad)
{
  rd_streams_release_pad (GST_RESEMBLE_DETECT_SINK (element)->streams, pad);
}

/* splitmuxsink's fragment messages are internal business: they give each
 * segment file its running-time range. */
static void
gst_resemble_detect_sink_handle_message (GstBin * bin, GstMessage * message)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (bin);

  if (rd_streams_handle_message (self->streams, message)) {
    gst_message_unref (message);
    return;
  }
  GST_BIN_CLASS (parent_class)->handle_message (bin, message);
}

/* The bin posts its EOS once every child sink is EOS: every file is then
 * closed, and the open batch can close before EOS reaches the application.
 * GstBin also posts EOS when it has no child sink at all, which is the case
 * while the first segmenter waits for a pad's caps: that EOS is not ours. */
static gboolean
gst_resemble_detect_sink_post_message (GstElement * element,
    GstMessage * message)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (element);

  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_EOS
      && GST_MESSAGE_SRC (message) == GST_OBJECT_CAST (element)) {
    gboolean wait_on_eos;

    if (!rd_streams_finished (self->streams)) {
      GST_DEBUG_OBJECT (self, "EOS of no child sink: dropped");
      gst_message_unref (message);
      return TRUE;
    }
    close_batch (self, 0);

    GST_OBJECT_LOCK (self);
    wait_on_eos = self->config.wait_on_eos;
    GST_OBJECT_UNLOCK (self);
    /* Held until the client's idle report, which checks under the same
     * lock: no batch can end unseen between the check and the hold. */
    CLIENT_LOCK (self);
    if (wait_on_eos && self->client
        && self->client_api->get_pending (self->client)) {
      GST_INFO_OBJECT (self, "holding EOS until %u batches end",
          self->client_api->get_pending (self->client));
      gst_message_replace (&self->held_eos, message);
      gst_message_unref (message);
      /* batches waiting out an outage would hold EOS for as long as the
       * API does not answer: they end now, kept for a next run */
      if (self->client_api->drain)
        self->client_api->drain (self->client);
      CLIENT_UNLOCK (self);
      return TRUE;
    }
    CLIENT_UNLOCK (self);
  }
  return GST_ELEMENT_CLASS (parent_class)->post_message (element, message);
}

/* Seeks and other upstream events go straight up our pads, as a sink's
 * would: through splitmuxsink they would reach whichever file sink happens
 * to exist between two fragments, or none. */
static gboolean
gst_resemble_detect_sink_send_event (GstElement * element, GstEvent * event)
{
  gboolean handled = FALSE;
  GList *pads = NULL;

  if (!GST_EVENT_IS_UPSTREAM (event))
    return GST_ELEMENT_CLASS (parent_class)->send_event (element, event);

  GST_OBJECT_LOCK (element);
  for (GList * l = element->sinkpads; l; l = l->next)
    pads = g_list_prepend (pads, gst_object_ref (l->data));
  GST_OBJECT_UNLOCK (element);
  for (GList * l = pads; l; l = l->next)
    handled |= gst_pad_push_event (l->data, gst_event_ref (event));
  g_list_free_full (pads, gst_object_unref);
  gst_event_unref (event);
  return handled;
}

/* ---- the client's reports, on its thread --------------------------------- */

static void
client_submitted (const RdBatch * batch, gpointer user_data)
{
  GST_INFO_OBJECT (user_data, "batch %u accepted as %s", batch->index,
      batch->uuid);
  post_element_message (user_data, rd_messages_batch_submitted (batch));
}

static void
client_status (const RdBatch * batch, gpointer user_data)
{
  post_element_message (user_data, rd_messages_batch_status (batch));
}

static void
client_progress (const RdBatch * batch, guint64 sent, guint64 total,
    gpointer user_data)
{
  gst_element_post_message (GST_ELEMENT_CAST (user_data),
      rd_messages_upload_progress (GST_OBJECT_CAST (user_data), batch, sent,
          total));
}

static void
client_upload_failed (const RdBatch * batch, guint64 sent, guint64 total,
    gboolean cancelled, const gchar * reason, gpointer user_data)
{
  gst_element_post_message (GST_ELEMENT_CAST (user_data),
      rd_messages_upload_failed (GST_OBJECT_CAST (user_data), batch, sent,
          total, cancelled, reason));
}

/* The verdict's latency (the client measured it as it reported it):
 * max-observed-latency, and latency-budget's warning, once per batch. */
static void
observe_latency (GstResembleDetectSink * self, const RdBatch * batch,
    const GstStructure * result)
{
  GstClockTime latency, budget;
  gboolean longest, late = FALSE;

  if (!gst_structure_get_uint64 (result, "latency", &latency))
    return;
  GST_OBJECT_LOCK (self);
  longest = latency > self->config.max_observed_latency;
  if (longest)
    self->config.max_observed_latency = latency;
  budget = self->config.latency_budget;
  if (budget > 0 && latency > budget)
    late = g_hash_table_add (self->late_batches,
        GUINT_TO_POINTER (batch->index));
  GST_OBJECT_UNLOCK (self);

  if (longest)
    g_object_notify (G_OBJECT (self), "max-observed-latency");
  if (late) {
    const gchar *file = gst_structure_get_string (result, "file");

    gst_element_message_full_with_details (GST_ELEMENT_CAST (self),
        GST_MESSAGE_WARNING, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ,
        g_strdup_printf ("Verdicts of batch %u came %.1f s after their file "
            "was closed, past latency-budget (%.1f s)", batch->index,
            (gdouble) latency / GST_SECOND, (gdouble) budget / GST_SECOND),
        g_strdup_printf ("first late file: %s", file ? file : "?"),
        __FILE__, GST_FUNCTION, __LINE__,
        rd_messages_latency_details (batch, latency, budget));
  }
}

static void
forget_latency (GstResembleDetectSink * self, const RdBatch * batch)
{
  GST_OBJECT_LOCK (self);
  g_hash_table_remove (self->late_batches, GUINT_TO_POINTER (batch->index));
  GST_OBJECT_UNLOCK (self);
}

static void
client_result (const RdBatch * batch, guint file_index,
    const GstStructure * result, gpointer user_data)
{
  post_element_message (user_data, gst_structure_copy (result));
  observe_latency (user_data, batch, result);
}

static void
client_done (const RdBatch * batch, const GPtrArray * results,
    gpointer user_data)
{
  GstResembleDetectSink *self = user_data;

  GST_INFO_OBJECT (self, "batch %u (%s) done: %s", batch->index, batch->uuid,
      batch->status);
  rd_spool_release (self->spool, batch->total_bytes);
  post_element_message (self, rd_messages_batch_done (batch, results));
  forget_latency (self, batch);
}

/* The batch's message first, then the warning, or with on-error=error the
 * first such failure as an element error. */
static void
client_error (const RdBatch * batch, guint http_status, const gchar * reason,
    const GstStructure * details, gboolean cancelled, gpointer user_data)
{
  GstResembleDetectSink *self = user_data;
  gboolean as_error;

  /* the client has redacted the token from @reason and @details */
  post_element_message (self, rd_messages_batch_error (batch, http_status,
          reason, details, cancelled));
  forget_latency (self, batch);
  if (cancelled)
    return;

  GST_OBJECT_LOCK (self);
  as_error = self->config.on_error == GST_RESEMBLE_DETECT_ON_ERROR_ERROR
      && !self->error_posted;
  self->error_posted |= as_error;
  GST_OBJECT_UNLOCK (self);
  if (as_error) {
    GST_ELEMENT_ERROR_WITH_DETAILS (self, RESOURCE, WRITE,
        ("Batch %u failed: %s", batch->index, reason),
        ("files and manifest kept in %s (on-error=error)", batch->dir),
        ("http-status-code", G_TYPE_UINT, http_status,
            "batch-index", G_TYPE_UINT, batch->index, NULL));
  } else {
    GST_ELEMENT_WARNING_WITH_DETAILS (self, RESOURCE, WRITE,
        ("Batch %u failed: %s", batch->index, reason),
        ("files and manifest kept in %s", batch->dir),
        ("http-status-code", G_TYPE_UINT, http_status,
            "batch-index", G_TYPE_UINT, batch->index, NULL));
  }
}

static void
client_unauthorized (const gchar * reason, gpointer user_data)
{
  GST_ELEMENT_ERROR_WITH_DETAILS (user_data, RESOURCE, NOT_AUTHORIZED,
      ("The API refused the token: %s", reason),
      ("every batch stays on disk; set a valid api-token or "
          "RESEMBLE_API_TOKEN"), ("http-status-code", G_TYPE_UINT, 401, NULL));
}

/* The last batch ended: release an EOS held for it. */
static void
client_idle (gpointer user_data)
{
  GstResembleDetectSink *self = user_data;
  GstMessage *eos = take_held_eos (self);

  if (eos) {
    GST_INFO_OBJECT (self, "every batch ended: releasing EOS");
    GST_ELEMENT_CLASS (parent_class)->post_message (GST_ELEMENT_CAST (self),
        eos);
  }
}

/* A warning when the API stops answering, an info message when it answers
 * again: batches wait on disk in between. */
static void
client_outage (gboolean started, const gchar * reason, guint waiting,
    GstClockTime lasted, gpointer user_data)
{
  if (started) {
    GST_ELEMENT_WARNING (user_data, RESOURCE, READ,
        ("The detection API does not answer: %s", reason),
        ("batches wait on disk and are sent when it answers again"));
  } else {
    GST_ELEMENT_INFO (user_data, RESOURCE, READ,
        ("The detection API answers again after %" G_GUINT64_FORMAT " s",
            lasted / GST_SECOND), ("%u batches that waited resume", waiting));
  }
}

static const RdClientCallbacks client_callbacks = {
  client_submitted,
  client_status,
  client_progress,
  client_upload_failed,
  client_result,
  client_done,
  client_error,
  client_unauthorized,
  client_idle,
  client_outage,
};

/* ---- start and stop ------------------------------------------------------ */

static const RdClientVTable *
load_client (GstResembleDetectSink * self, GError ** error)
{
  GstElementFactory *factory = gst_element_get_factory (GST_ELEMENT (self));
  g_autoptr (GstPlugin) plugin = NULL;

  if (self->client_api)
    return self->client_api;
  if (factory)
    plugin = gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (factory));
  self->client_api = rd_client_module_load (plugin ?
      gst_plugin_get_filename (plugin) : NULL, error);
  return self->client_api;
}

static void
gst_resemble_detect_sink_set_context (GstElement * element,
    GstContext * context)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (element);
  RdClientPool *pool = rd_client_pool_from_context (context);

  if (pool) {
    GST_OBJECT_LOCK (self);
    /* a client made meanwhile keeps the hub of the pool it came from */
    if (self->pool == NULL)
      self->pool = g_steal_pointer (&pool);
    GST_OBJECT_UNLOCK (self);
    g_clear_pointer (&pool, rd_client_pool_unref);
  }
  GST_ELEMENT_CLASS (parent_class)->set_context (element, context);
}

/* The pipeline's pool of network threads: set on us already, or given by
 * the bin or the application when we ask (need-context, answered in the
 * posting thread), or a new one that we announce (have-context), which the
 * bins pass to every element. A client module without hubs shares none. */
static RdClientPool *
ensure_pool (GstResembleDetectSink * self)
{
  RdClientPool *pool;
  GstContext *context;

  if (self->client_api->hub_new == NULL)
    return NULL;
  GST_OBJECT_LOCK (self);
  pool = self->pool ? rd_client_pool_ref (self->pool) : NULL;
  GST_OBJECT_UNLOCK (self);
  if (pool)
    return pool;

  gst_element_post_message (GST_ELEMENT_CAST (self),
      gst_message_new_need_context (GST_OBJECT_CAST (self),
          RD_CLIENT_POOL_CONTEXT_TYPE));
  GST_OBJECT_LOCK (self);
  pool = self->pool ? rd_client_pool_ref (self->pool) : NULL;
  GST_OBJECT_UNLOCK (self);
  if (pool)
    return pool;

  pool = rd_client_pool_new ();
  context = rd_client_pool_context_new (pool);
  gst_element_set_context (GST_ELEMENT_CAST (self), context);
  GST_DEBUG_OBJECT (self, "sharing a new pool of network threads");
  gst_element_post_message (GST_ELEMENT_CAST (self),
      gst_message_new_have_context (GST_OBJECT_CAST (self), context));
  return pool;
}

static RdClient *
make_client (GstResembleDetectSink * self, const RdSinkConfig * config,
    GError ** error)
{
  g_autofree gchar *user_agent = g_strdup_printf ("gst-resembledetect/%s",
      VERSION);
  g_autofree gchar *token = rd_sink_config_dup_token (config);
  g_autoptr (RdClientPool) pool = ensure_pool (self);
  RdClientConfig client_config = { 0, };
  RdClient *client;

  if (pool) {
    self->hub = rd_client_pool_acquire (pool, self->client_api,
        config->api_url, token, user_agent, error);
    if (self->hub == NULL) {
      if (token)
        memset (token, 0, strlen (token));
      return NULL;
    }
  }
  client_config.hub = self->hub;

  client_config.api_url = config->api_url;
  client_config.token = token;
  client_config.user_agent = user_agent;
  client_config.max_retries = config->max_retries;
  client_config.max_in_flight = config->max_in_flight;
  client_config.poll_interval = config->poll_interval;
  client_config.poll_max_interval = MAX (config->poll_max_interval,
      config->poll_interval);
  client_config.poll_timeout = config->poll_timeout;
  client_config.fetch_results = config->fetch_results;
  client_config.keep_files = config->keep_files;
  client_config.callback_listen = config->callback_listen;
  client_config.callback_public_url = config->callback_public_url;
  if (config->callback_listen && config->settings.callback_url)
    GST_WARNING_OBJECT (self, "callback-listen is set: callback-url is not "
        "sent, the API calls the receiver instead");
  client = self->client_api->create (&client_config, &client_callbacks, self);
  if (token)
    memset (token, 0, strlen (token));
  return client;
}

/* After the client on it was freed. */
static void
release_hub (GstResembleDetectSink * self)
{
  RdClientPool *pool;

  if (self->hub == NULL)
    return;
  GST_OBJECT_LOCK (self);
  pool = rd_client_pool_ref (self->pool);
  GST_OBJECT_UNLOCK (self);
  rd_client_pool_release (pool, g_steal_pointer (&self->hub));
  rd_client_pool_unref (pool);
}

/* One path component: a name as it is, but for bytes other than letters,
 * digits, '-', '_' and a '.' that does not start it, written as %XX, so
 * that no name is "..", hidden, or has a '/', and two different paths
 * of names never meet in one folder. */
static void
append_escaped_name (GString * path, const gchar * name)
{
  if (*name == '\0') {
    g_string_append_c (path, '%');
    return;
  }
  for (const gchar * p = name; *p; p++) {
    guchar c = *p;

    if (g_ascii_isalnum (c) || c == '-' || c == '_' || (c == '.' && p != name))
      g_string_append_c (path, c);
    else
      g_string_append_printf (path, "%%%02X", c);
  }
}

/* {user cache dir}/gst-resembledetect/{program}/{top-level bin}/.../{element}:
 * the same on every run of the same pipeline description, so that a
 * restarted process finds what the killed one left. Two processes running
 * the same description with default names share it, and the spool's lock
 * makes the second one fail to start (see the docs). */
static gchar *
default_location (GstResembleDetectSink * self)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GstObject) object = gst_object_ref (GST_OBJECT_CAST (self));
  GString *path = g_string_new (g_get_user_cache_dir ());
  const gchar *program = g_get_prgname ();

  while (object) {
    GstObject *parent = gst_object_get_parent (object);

    g_ptr_array_add (names, gst_object_get_name (object));
    gst_object_unref (object);
    object = parent;
  }
  g_string_append (path, G_DIR_SEPARATOR_S "gst-resembledetect"
      G_DIR_SEPARATOR_S);
  append_escaped_name (path, program ? program : "gst");
  for (guint i = names->len; i > 0; i--) {
    g_string_append_c (path, G_DIR_SEPARATOR);
    append_escaped_name (path, names->pdata[i - 1]);
  }
  return g_string_free (path, FALSE);
}

static gboolean
gst_resemble_detect_sink_start (GstResembleDetectSink * self)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *location = NULL;
  RdSinkConfig config;
  RdSpoolReady ready;
  RdClient *client;

  if (!load_client (self, &error)) {
    GST_ELEMENT_ERROR (self, CORE, MISSING_PLUGIN,
        ("The network client cannot be loaded: %s.", error->message), (NULL));
    return FALSE;
  }
  GST_OBJECT_LOCK (self);
  if (!rd_sink_config_check (&self->config,
          self->client_api->requires_token, &error)) {
    GST_OBJECT_UNLOCK (self);
    post_error (self, error, "a setting that cannot work: nothing is written "
        "or sent");
    return FALSE;
  }
  rd_sink_config_copy (&config, &self->config);
  self->error_posted = FALSE;
  self->config.max_observed_latency = 0;
  g_hash_table_remove_all (self->late_batches);
  GST_OBJECT_UNLOCK (self);
  rd_streams_configure (self->streams, config.container,
      config.segment_duration);
  location = config.location ? g_strdup (config.location) :
      default_location (self);

  rd_spool_ready_init (&ready);
  if (!rd_spool_open (self->spool, location, &ready, &error)) {
    if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BUSY))
      GST_ELEMENT_ERROR (self, RESOURCE, BUSY, ("The %s: nothing is "
              "written or sent. Give each element a location of its own.",
              error->message), ("%s", config.location ? "location is set "
              "to a spool that another element uses" : "the default "
              "location: two processes running the same pipeline with "
              "default names share it"));
    else
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
          ("Could not create the spool directory \"%s\".", location),
          ("%s", error->message));
    goto failed;
  }
  client = make_client (self, &config, &error);
  if (client == NULL || !self->client_api->start (client, &error)) {
    if (client)
      self->client_api->destroy (client);
    release_hub (self);
    rd_spool_close (self->spool);
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
        ("Could not start the API client: %s", error->message), (NULL));
    goto failed;
  }
  CLIENT_LOCK (self);
  self->client = client;
  CLIENT_UNLOCK (self);
  {
    g_autofree gchar *run_id = rd_spool_dup_run_id (self->spool);

    GST_INFO_OBJECT (self, "spool %s, run %s, next batch %u, %"
        G_GUINT64_FORMAT " bytes pending", location, run_id,
        rd_spool_get_next_index (self->spool),
        rd_spool_get_bytes (self->spool));
  }
  batches_ready (self, &ready);
  rd_spool_ready_clear (&ready);
  rd_sink_config_clear (&config);
  return TRUE;

failed:
  rd_spool_ready_clear (&ready);
  rd_sink_config_clear (&config);
  return FALSE;
}

static void
gst_resemble_detect_sink_stop (GstResembleDetectSink * self)
{
  RdClient *client;

  /* Files of the open batch are complete: close it. The client reports it
   * (and every unfinished batch) as cancelled; its manifest says closed or
   * submitted, and the next run on this spool finishes it. */
  close_batch (self, 0);
  unschedule_timeout (self, 0);

  CLIENT_LOCK (self);
  client = g_steal_pointer (&self->client);
  gst_clear_message (&self->held_eos);
  CLIENT_UNLOCK (self);
  if (client) {
    self->client_api->stop (client);
    self->client_api->destroy (client);
  }
  release_hub (self);
  rd_spool_close (self->spool);
}

static GstStateChangeReturn
gst_resemble_detect_sink_change_state (GstElement * element,
    GstStateChange transition)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (element);
  GstStateChangeReturn ret;
  gboolean async;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!gst_resemble_detect_sink_start (self))
        return GST_STATE_CHANGE_FAILURE;
      GST_OBJECT_LOCK (self);
      async = self->config.async;
      GST_OBJECT_UNLOCK (self);
      /* preroll: ASYNC until every pad has had data (decodebin does the
       * same for its own async state) */
      if (rd_streams_prepare (self->streams, async))
        GST_BIN_CLASS (parent_class)->handle_message (GST_BIN_CAST (self),
            gst_message_new_async_start (GST_OBJECT_CAST (self)));
      break;
    case GST_STATE_CHANGE_PAUSED_TO_PLAYING:
      rd_streams_set_times (self->streams, gst_element_get_base_time (element),
          gst_element_get_start_time (element));
      rd_streams_set_playing (self->streams, TRUE);
      break;
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
      rd_streams_set_playing (self->streams, FALSE);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      if (rd_streams_stop (self->streams))
        streams_prerolled (self);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    /* undo the start: no network thread may outlive a failed start */
    if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
      if (rd_streams_stop (self->streams))
        streams_prerolled (self);
      gst_resemble_detect_sink_stop (self);
    }
    return ret;
  }

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      /* committed already when every pad prerolled during the change */
      if (ret == GST_STATE_CHANGE_SUCCESS
          && rd_streams_prerolling (self->streams))
        ret = GST_STATE_CHANGE_ASYNC;
      break;
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:{
      GList *repeated = rd_streams_repeat_eos (self->streams);

      /* GstBin forgot which of its sinks ended */
      for (GList * l = repeated; l; l = l->next)
        GST_BIN_CLASS (parent_class)->handle_message (GST_BIN_CAST (self),
            l->data);
      g_list_free (repeated);
      break;
    }
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      gst_resemble_detect_sink_stop (self);
      rd_streams_drop_segmenters (self->streams);
      GST_OBJECT_FLAG_SET (self, GST_ELEMENT_FLAG_SINK);
      break;
    default:
      break;
  }
  return ret;
}

/* ---- class --------------------------------------------------------------- */

static void
gst_resemble_detect_sink_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (object);
  gboolean known;

  GST_OBJECT_LOCK (self);
  known = rd_sink_config_set (&self->config, object, prop_id, value, pspec);
  GST_OBJECT_UNLOCK (self);
  if (!known)
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
gst_resemble_detect_sink_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (object);
  gboolean known;

  GST_OBJECT_LOCK (self);
  known = rd_sink_config_get (&self->config, prop_id, value);
  GST_OBJECT_UNLOCK (self);
  if (!known)
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
gst_resemble_detect_sink_init (GstResembleDetectSink * self)
{
  rd_sink_config_init (&self->config);
  self->late_batches = g_hash_table_new (NULL, NULL);
  g_mutex_init (&self->client_lock);
  self->streams = rd_streams_new (GST_ELEMENT_CAST (self), &streams_callbacks,
      self);
  self->spool = rd_spool_new ();
  /* A sink even before its splitmuxsinks exist (they come with the caps),
   * so that the pipeline waits for our EOS. */
  GST_OBJECT_FLAG_SET (self, GST_ELEMENT_FLAG_SINK);
}

/* Request pads are released while their children still exist: GstBin's
 * dispose would drop the children before GstElement's releases the pads. */
static void
gst_resemble_detect_sink_dispose (GObject * object)
{
  GstElement *element = GST_ELEMENT_CAST (object);

  while (element->sinkpads)
    gst_element_release_request_pad (element, element->sinkpads->data);
  G_OBJECT_CLASS (parent_class)->dispose (object);
}

static void
gst_resemble_detect_sink_finalize (GObject * object)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (object);

  rd_sink_config_clear (&self->config);
  g_hash_table_unref (self->late_batches);
  g_clear_pointer (&self->pool, rd_client_pool_unref);
  rd_streams_free (self->streams);
  rd_spool_free (self->spool);
  g_mutex_clear (&self->client_lock);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_resemble_detect_sink_class_init (GstResembleDetectSinkClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBinClass *bin_class = GST_BIN_CLASS (klass);

  gobject_class->set_property = gst_resemble_detect_sink_set_property;
  gobject_class->get_property = gst_resemble_detect_sink_get_property;
  gobject_class->dispose = gst_resemble_detect_sink_dispose;
  gobject_class->finalize = gst_resemble_detect_sink_finalize;
  rd_sink_config_install_properties (gobject_class);

  /**
   * GstResembleDetectSink::submit-now:
   *
   * Action signal: close the open batch (if it has files) and submit it.
   */
  gst_resemble_detect_sink_signals[SIGNAL_SUBMIT_NOW] =
      g_signal_new_class_handler ("submit-now", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_resemble_detect_sink_submit_now), NULL, NULL, NULL,
      G_TYPE_NONE, 0);

  gst_element_class_add_static_pad_template (element_class, &video_template);
  gst_element_class_add_static_pad_template (element_class, &audio_template);
  gst_element_class_add_static_pad_template (element_class, &image_template);
  gst_element_class_set_static_metadata (element_class,
      "Resemble AI deepfake detection sink", "Sink/Network",
      "Cuts audio/video into segments and collects image snapshots, "
      "groups them into batches in a spool directory and submits each batch "
      "to the Resemble AI deepfake detection API (api-url; by default the "
      "production service " RD_SINK_DEFAULT_API_URL ", with the token of "
      "api-token or RESEMBLE_API_TOKEN). Posts element messages: "
      "resemble-detect-batch-closed, resemble-detect-batch-submitted, "
      "resemble-detect-batch-status, resemble-detect-result (one per file: "
      "label, score, running-time, duration), resemble-detect-batch-done or "
      "resemble-detect-batch-error (exactly one per closed batch) and "
      "resemble-detect-spool-full; upload progress as progress messages",
      "gst-resembledetect developers");

  element_class->request_new_pad =
      GST_DEBUG_FUNCPTR (gst_resemble_detect_sink_request_new_pad);
  element_class->release_pad =
      GST_DEBUG_FUNCPTR (gst_resemble_detect_sink_release_pad);
  element_class->set_context =
      GST_DEBUG_FUNCPTR (gst_resemble_detect_sink_set_context);
  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_resemble_detect_sink_change_state);
  element_class->post_message =
      GST_DEBUG_FUNCPTR (gst_resemble_detect_sink_post_message);
  element_class->send_event =
      GST_DEBUG_FUNCPTR (gst_resemble_detect_sink_send_event);
  bin_class->handle_message =
      GST_DEBUG_FUNCPTR (gst_resemble_detect_sink_handle_message);

  gst_type_mark_as_plugin_api (GST_TYPE_RESEMBLE_DETECT_CONTAINER, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_RESEMBLE_DETECT_UPLOAD_MODE, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_RESEMBLE_DETECT_ON_ERROR, 0);
  GST_DEBUG_CATEGORY_INIT (gst_resemble_detect_sink_debug, "resembledetect", 0,
      "Resemble AI deepfake detection sink");
}
