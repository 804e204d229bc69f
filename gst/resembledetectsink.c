/* resembledetectsink: a bin that turns a pipeline's audio/video segments and
 * image snapshots into batch folders in a spool directory, ready for the
 * Resemble AI batch detection API. Segments are cut by splitmuxsink children
 * (one per audio/video pad, each behind its own queue); snapshots arrive
 * through appsink children. Every closed file is moved into the open batch,
 * whose manifest is rewritten atomically; the batch closes on its limits, on
 * its timeout, on submit-now and at EOS.
 *
 * This is the only file that knows GStreamer pipelines. */

/**
 * SECTION:element-resembledetectsink
 * @title: resembledetectsink
 *
 * Accumulates encoded audio/video segments and image snapshots from a pipeline,
 * writes them as batch files in a spool directory (`location`), and closes a
 * batch when it reaches `max-files` or `max-batch-bytes`, when `batch-timeout`
 * expires, on the `submit-now` action signal, and at EOS.
 *
 * Audio and video are cut into files of `segment-duration` by splitmuxsink
 * (keyframe-aligned, complete headers in every file). `container=auto` picks
 * the container from the caps: raw audio -> .wav, MP3 -> .mp3, AAC -> .m4a,
 * Opus/Vorbis -> .webm, FLAC -> .mkv, H.264/H.265 -> .mp4,
 * VP8/VP9/AV1 -> .webm. `ogg` and `flac` containers are refused: with
 * GStreamer 1.22 oggmux does not link inside splitmuxsink and flac files
 * cannot be split cleanly (use auto, which writes FLAC into .mkv).
 *
 * Each buffer on an `image_%u` pad is one snapshot file (.jpg .png .gif .webp).
 *
 * ## Messages
 *
 * `resemble-detect-batch-closed`: a batch is complete on disk and queued.
 * - `index` (guint): the batch number (the NNNNNN of `batch-NNNNNN`)
 * - `files` (GstValueArray of strings): full paths of the batch's files
 * - `total-files` (guint), `total-bytes` (guint64)
 * - `manifest` (string): path of the batch's manifest.json
 *
 * `resemble-detect-spool-full`: a new file was skipped because the spool
 * holds `max-spool-bytes` already.
 * - `skipped-bytes` (guint64): bytes skipped since the spool filled
 * - `skipped-from`, `skipped-to` (guint64, ns): running-time range skipped
 * - `spool-bytes` (guint64): bytes held in the spool
 *
 * A file larger than `max-batch-bytes` on its own is never submitted: it is
 * moved to `{location}/oversize/` and a warning message names it.
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

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gmodule.h>

#include "resembledetectsink.h"
#include "batch.h"
#include "manifest.h"
#include "settings.h"
#include "client.h"
#include "container.h"

GST_DEBUG_CATEGORY_STATIC (gst_resemble_detect_sink_debug);
#define GST_CAT_DEFAULT gst_resemble_detect_sink_debug

#define GST_TYPE_RESEMBLE_DETECT_UPLOAD_MODE (gst_resemble_detect_upload_mode_get_type ())
static GType gst_resemble_detect_upload_mode_get_type (void);

/* What a batch that cannot reach a terminal state does to the pipeline. */
typedef enum
{
  GST_RESEMBLE_DETECT_ON_ERROR_WARN,
  GST_RESEMBLE_DETECT_ON_ERROR_ERROR,
} GstResembleDetectOnError;

#define GST_TYPE_RESEMBLE_DETECT_ON_ERROR (gst_resemble_detect_on_error_get_type ())
static GType gst_resemble_detect_on_error_get_type (void);

#define DEFAULT_API_URL "https://app.resemble.ai/api/v2"
#define DEFAULT_CONTAINER GST_RESEMBLE_DETECT_CONTAINER_AUTO
#define DEFAULT_SEGMENT_DURATION (10 * GST_SECOND)
#define DEFAULT_MAX_FILES 10
#define DEFAULT_MAX_BATCH_BYTES RD_BATCH_MAX_BYTES
#define DEFAULT_BATCH_TIMEOUT 0
#define DEFAULT_UPLOAD_MODE RD_UPLOAD_MODE_FILES
#define DEFAULT_INTELLIGENCE FALSE
#define DEFAULT_SEARCH_IDENTITY FALSE
#define DEFAULT_VISUALIZE TRUE
#define DEFAULT_AUDIO_SOURCE_TRACING FALSE
#define DEFAULT_USE_LLM FALSE
#define DEFAULT_ZERO_RETENTION_MODE FALSE
#define DEFAULT_FRAME_LENGTH 0
#define DEFAULT_REGION -1.0
#define DEFAULT_POLL_INTERVAL (2 * GST_SECOND)
#define DEFAULT_POLL_MAX_INTERVAL (30 * GST_SECOND)
#define DEFAULT_POLL_TIMEOUT (30 * 60 * GST_SECOND)
#define DEFAULT_FETCH_RESULTS TRUE
#define DEFAULT_MAX_RETRIES 5
#define DEFAULT_MAX_IN_FLIGHT 4
#define DEFAULT_WAIT_ON_EOS TRUE
#define DEFAULT_KEEP_FILES FALSE
#define DEFAULT_MAX_SPOOL_BYTES G_GUINT64_CONSTANT (10000000000)
#define DEFAULT_ASYNC TRUE
#define DEFAULT_ON_ERROR GST_RESEMBLE_DETECT_ON_ERROR_WARN

/* The API rejects polling faster than this. */
#define MIN_POLL_INTERVAL GST_SECOND

enum
{
  PROP_0,
  PROP_API_URL,
  PROP_API_TOKEN,
  PROP_LOCATION,
  PROP_CONTAINER,
  PROP_SEGMENT_DURATION,
  PROP_MAX_FILES,
  PROP_MAX_BATCH_BYTES,
  PROP_BATCH_TIMEOUT,
  PROP_UPLOAD_MODE,
  PROP_CALLBACK_URL,
  PROP_INTELLIGENCE,
  PROP_SEARCH_IDENTITY,
  PROP_VISUALIZE,
  PROP_AUDIO_SOURCE_TRACING,
  PROP_USE_LLM,
  PROP_ZERO_RETENTION_MODE,
  PROP_FRAME_LENGTH,
  PROP_START_REGION,
  PROP_END_REGION,
  PROP_MAX_VIDEO_SECS,
  PROP_POLL_INTERVAL,
  PROP_POLL_MAX_INTERVAL,
  PROP_POLL_TIMEOUT,
  PROP_FETCH_RESULTS,
  PROP_MAX_RETRIES,
  PROP_MAX_IN_FLIGHT,
  PROP_WAIT_ON_EOS,
  PROP_KEEP_FILES,
  PROP_MAX_SPOOL_BYTES,
  PROP_ON_ERROR,
  PROP_ASYNC,
};

enum
{
  SIGNAL_SUBMIT_NOW,
  LAST_SIGNAL,
};

static guint gst_resemble_detect_sink_signals[LAST_SIGNAL];

/* The segmenter of the video pad and the audio pads that share its files:
 * made once every member has caps (or has ended without, or the wait was
 * given up because a member's queue filled). */
typedef enum
{
  GROUP_STATE_NONE,
  GROUP_STATE_READY,
  GROUP_STATE_FAILED,
} GroupState;

/* One per request pad. */
typedef struct
{
  GstResembleDetectSink *sink;  /* not a reference: the sink owns us */
  GstPad *pad;                  /* our ghost pad (owned by the element) */
  gchar *name;                  /* the pad's name, prefix of its files */
  RdMediaType media_type;

  /* audio/video: pad -> queue -> splitmuxsink (created from the caps); the
   * queue's output waits until the splitmuxsink is linked (gate) */
  GstElement *queue;
  GstElement *splitmux;         /* shared by the streams of a segmenter */
  GstPad *splitmux_pad;
  GstCaps *caps;                /* the first caps, until detached */
  gboolean solo;                /* has a segmenter of its own */
  gboolean failed;              /* its segmenter could not be made */
  gboolean finished;            /* EOS, possibly before any caps */
  gboolean flushing;            /* between FLUSH_START and FLUSH_STOP */
  gboolean released;            /* its pad is being released */
  gboolean linked;              /* its segmenter runs: the gate may open */
  gboolean prerolled;           /* data (or EOS, GAP) came since PAUSED */
  gpointer feeder;              /* GThread that last pushed into the pad */
  gchar *extension;             /* image: of the last snapshot */
  GstSegment segment;           /* streaming thread only */
  GstClockTime last_start;      /* running time of the last buffer */
  GstClockTime last_end;        /* running time where the input ended */

  /* image: pad -> appsink */
  GstElement *appsink;
} Stream;

/* What names a splitmuxsink's files, owned by the splitmuxsink (qdata):
 * it outlives any of the streams feeding it. */
typedef struct
{
  GstResembleDetectSink *sink;
  gchar *name;                  /* the leader pad's name: files' prefix */
  gchar *extension;
  RdMediaType media_type;
  GstClockTime fragment_start;
  gchar *open_location;         /* the fragment being written */
} Segmenter;

static GQuark segmenter_quark;

static void
segmenter_free (gpointer data)
{
  Segmenter *segmenter = data;

  g_free (segmenter->name);
  g_free (segmenter->extension);
  g_free (segmenter->open_location);
  g_free (segmenter);
}

struct _GstResembleDetectSink
{
  GstBin parent;

  /* properties, under the object lock */
  gchar *api_url;
  gchar *api_token;
  gchar *location;
  GstResembleDetectContainer container;
  GstClockTime segment_duration;
  guint max_files;
  guint64 max_batch_bytes;
  GstClockTime batch_timeout;
  RdUploadMode upload_mode;
  RdSettings settings;
  GstClockTime poll_interval;
  GstClockTime poll_max_interval;
  GstClockTime poll_timeout;
  gboolean fetch_results;
  guint max_retries;
  guint max_in_flight;
  gboolean wait_on_eos;
  gboolean keep_files;
  guint64 max_spool_bytes;
  GstResembleDetectOnError on_error;
  gboolean async;
  GHashTable *refused;          /* property name -> why its value was refused */
  gboolean error_posted;        /* on-error=error: the first one was */

  /* streams, under streams_lock; streams_cond wakes the gates */
  GMutex streams_lock;
  GCond streams_cond;
  GList *streams;
  GroupState group_state;       /* of the video segmenter */
  gboolean group_gave_up;       /* a member's queue filled while waiting */
  gboolean flushing;            /* going to READY: every gate opens */
  gboolean need_preroll;        /* PAUSED: data waits at the gates */
  gboolean async_pending;       /* our ASYNC_START awaits its ASYNC_DONE */
  gboolean have_video;
  guint next_audio_pad;
  guint next_image_pad;

  /* the spool and the open batch, under batch_lock */
  GMutex batch_lock;
  gchar *spool_dir;             /* resolved location of this run */
  gchar *incoming_dir;
  RdBatch *open_batch;
  guint next_batch_index;
  GstClockID timeout_id;
  guint64 spool_bytes;
  guint64 skipped_bytes;
  GstClockTime skipped_from;
  GstClockTime skipped_to;
  GHashTable *file_counters;    /* file name prefix -> last number used */

  /* the network thread, and EOS held for it, under client_lock */
  GMutex client_lock;
  GModule *client_module;       /* loaded on the first start */
  const RdClientVTable *client_api;
  RdClient *client;
  GstMessage *held_eos;
};

#define BATCH_LOCK(s) g_mutex_lock (&(s)->batch_lock)
#define BATCH_UNLOCK(s) g_mutex_unlock (&(s)->batch_lock)
#define STREAMS_LOCK(s) g_mutex_lock (&(s)->streams_lock)
#define STREAMS_UNLOCK(s) g_mutex_unlock (&(s)->streams_lock)
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

static void gst_resemble_detect_sink_dispose (GObject * object);
static void gst_resemble_detect_sink_finalize (GObject * object);
static void gst_resemble_detect_sink_set_property (GObject * object,
    guint prop_id, const GValue * value, GParamSpec * pspec);
static void gst_resemble_detect_sink_get_property (GObject * object,
    guint prop_id, GValue * value, GParamSpec * pspec);
static GstPad *gst_resemble_detect_sink_request_new_pad (GstElement * element,
    GstPadTemplate * templ, const gchar * name, const GstCaps * caps);
static void gst_resemble_detect_sink_release_pad (GstElement * element,
    GstPad * pad);
static GstStateChangeReturn gst_resemble_detect_sink_change_state (GstElement *
    element, GstStateChange transition);
static gboolean gst_resemble_detect_sink_post_message (GstElement * element,
    GstMessage * message);
static void gst_resemble_detect_sink_handle_message (GstBin * bin,
    GstMessage * message);
static void gst_resemble_detect_sink_submit_now (GstResembleDetectSink * self);

static GType
gst_resemble_detect_upload_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {RD_UPLOAD_MODE_FILES, "One repeated files[] part per file", "files"},
    {RD_UPLOAD_MODE_ZIP, "One zip archive holding the batch", "zip"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstResembleDetectUploadMode", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

static GType
gst_resemble_detect_on_error_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_RESEMBLE_DETECT_ON_ERROR_WARN, "A failed batch is a warning and a "
          "message; the pipeline goes on (24/7 channels)", "warn"},
    {GST_RESEMBLE_DETECT_ON_ERROR_ERROR, "The first failed batch is an "
          "element error (batch jobs, scripts)", "error"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstResembleDetectOnError", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

static const gchar *
extension_for_image_caps (const GstCaps * caps)
{
  const GstStructure *s = gst_caps_get_structure (caps, 0);

  if (gst_structure_has_name (s, "image/jpeg"))
    return "jpg";
  if (gst_structure_has_name (s, "image/png"))
    return "png";
  if (gst_structure_has_name (s, "image/gif"))
    return "gif";
  if (gst_structure_has_name (s, "image/webp"))
    return "webp";
  return NULL;
}

/* RESOURCE errors are chosen from errno, as multifilesink does. */
static void
post_write_error (GstResembleDetectSink * self, const gchar * path, int err,
    const gchar * what)
{
  if (err == ENOSPC) {
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
        ("No space left to write \"%s\".", path), ("%s: %s", what,
            g_strerror (err)));
  } else {
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
        ("Could not write \"%s\".", path), ("%s: %s", what, g_strerror (err)));
  }
}

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

static GstStructure *
batch_closed_structure (const RdBatch * batch)
{
  g_autofree gchar *manifest = rd_manifest_path (batch);
  GstStructure *s = gst_structure_new ("resemble-detect-batch-closed",
      "index", G_TYPE_UINT, batch->index,
      "total-files", G_TYPE_UINT, batch->files->len,
      "total-bytes", G_TYPE_UINT64, batch->total_bytes,
      "manifest", G_TYPE_STRING, manifest, NULL);

  set_files (s, batch);
  return s;
}

static void client_error (const RdBatch * batch, guint http_status,
    const gchar * reason, const GstStructure * details, gboolean cancelled,
    gpointer user_data);

/* Messages and batches for the client are gathered under the batch lock
 * and handed on after it is released, messages first: a batch's closed
 * message always precedes what the client says about it. */
typedef struct
{
  GQueue messages;
  GQueue batches;
} Outbox;

#define OUTBOX_INIT { G_QUEUE_INIT, G_QUEUE_INIT }

static void
outbox_flush (GstResembleDetectSink * self, Outbox * outbox)
{
  GstMessage *msg;
  RdBatch *batch;

  while ((msg = g_queue_pop_head (&outbox->messages)))
    gst_element_post_message (GST_ELEMENT_CAST (self), msg);
  while ((batch = g_queue_pop_head (&outbox->batches))) {
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

/* The settings a batch is sent with: those the user set, and visualize
 * always (the API's default is true, but what is sent is what was meant). */
static void
batch_take_settings (GstResembleDetectSink * self, RdBatch * batch)
{
  rd_settings_clear (&batch->settings);
  GST_OBJECT_LOCK (self);
  rd_settings_copy (&batch->settings, &self->settings);
  batch->upload_mode = self->upload_mode;
  GST_OBJECT_UNLOCK (self);
  if (batch->settings.visualize == RD_SETTING_UNSET)
    batch->settings.visualize = DEFAULT_VISUALIZE;
}

static void
unschedule_timeout_locked (GstResembleDetectSink * self)
{
  if (self->timeout_id) {
    gst_clock_id_unschedule (self->timeout_id);
    gst_clock_id_unref (self->timeout_id);
    self->timeout_id = NULL;
  }
}

/* Closes the open batch if it has files: state closed, manifest rewritten,
 * a batch-closed message queued. */
static void
close_batch_locked (GstResembleDetectSink * self, Outbox * outbox)
{
  g_autoptr (RdBatch) batch = NULL;
  g_autoptr (GError) error = NULL;

  unschedule_timeout_locked (self);
  if (self->open_batch == NULL || self->open_batch->files->len == 0)
    return;

  batch = g_steal_pointer (&self->open_batch);
  batch->state = RD_BATCH_STATE_CLOSED;
  batch_take_settings (self, batch);
  if (!rd_manifest_write (batch, &error)) {
    g_autoptr (GError) gst_error = g_error_new (GST_RESOURCE_ERROR,
        g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOSPC) ?
        GST_RESOURCE_ERROR_NO_SPACE_LEFT : GST_RESOURCE_ERROR_WRITE,
        "Could not write the manifest of batch %u: %s", batch->index,
        error->message);
    g_queue_push_tail (&outbox->messages,
        gst_message_new_error (GST_OBJECT_CAST (self), gst_error,
            "the batch's files are on disk, its manifest is not"));
    return;
  }
  GST_INFO_OBJECT (self, "closed batch %u: %u files, %" G_GUINT64_FORMAT
      " bytes", batch->index, batch->files->len, batch->total_bytes);
  g_queue_push_tail (&outbox->messages,
      gst_message_new_element (GST_OBJECT_CAST (self),
          batch_closed_structure (batch)));
  g_queue_push_tail (&outbox->batches, g_steal_pointer (&batch));
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
  GstResembleDetectSink *self = data->self;
  Outbox outbox = OUTBOX_INIT;

  BATCH_LOCK (self);
  /* The batch may have closed for another reason since this was scheduled. */
  if (self->timeout_id == id && self->open_batch
      && self->open_batch->index == data->index) {
    GST_DEBUG_OBJECT (self, "batch-timeout expired for batch %u", data->index);
    close_batch_locked (self, &outbox);
  }
  BATCH_UNLOCK (self);
  outbox_flush (self, &outbox);
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
schedule_timeout_locked (GstResembleDetectSink * self, GstClockTime timeout)
{
  g_autoptr (GstClock) clock = gst_system_clock_obtain ();
  TimeoutData *data = g_new0 (TimeoutData, 1);

  data->self = gst_object_ref (self);
  data->index = self->open_batch->index;
  self->timeout_id = gst_clock_new_single_shot_id (clock,
      gst_clock_get_time (clock) + timeout);
  gst_clock_id_wait_async (self->timeout_id, batch_timeout_cb, data,
      timeout_data_free);
}

static gboolean
ensure_open_batch_locked (GstResembleDetectSink * self, GError ** error)
{
  RdBatch *batch;

  if (self->open_batch)
    return TRUE;
  batch = rd_batch_new (self->next_batch_index, self->spool_dir);
  if (g_mkdir_with_parents (batch->dir, 0700) < 0) {
    int err = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err),
        "Could not create \"%s\": %s", batch->dir, g_strerror (err));
    rd_batch_free (batch);
    return FALSE;
  }
  batch_take_settings (self, batch);
  self->next_batch_index++;
  self->open_batch = batch;
  return TRUE;
}

/* "{prefix}-NNNNNN.{extension}": numbered per prefix (pad) for the
 * element's life, whatever segmenter or run wrote the file. */
static gchar *
next_file_name_locked (GstResembleDetectSink * self, const gchar * prefix,
    const gchar * extension)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (self->file_counters,
          prefix)) + 1;

  g_hash_table_insert (self->file_counters, g_strdup (prefix),
      GUINT_TO_POINTER (n));
  return g_strdup_printf ("%s-%06u.%s", prefix, n, extension);
}

/* A file in the incoming directory is complete: find its batch, move it
 * there, rewrite the manifest. Called on streaming threads (disk only). */
static void
gst_resemble_detect_sink_add_file (GstResembleDetectSink * self,
    const gchar * prefix, const gchar * extension, RdMediaType media_type,
    const gchar * incoming_path, GstClockTime running_time,
    GstClockTime duration)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *name = NULL;
  g_autofree gchar *dest = NULL;
  Outbox outbox = OUTBOX_INIT;
  RdBatchFile *file;
  GStatBuf st;
  guint max_files;
  guint64 max_bytes, max_spool;
  GstClockTime batch_timeout;

  if (g_stat (incoming_path, &st) < 0) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Segment file \"%s\" disappeared before it could be batched.",
            incoming_path), ("%s", g_strerror (errno)));
    return;
  }
  g_chmod (incoming_path, 0600);

  GST_OBJECT_LOCK (self);
  max_files = self->max_files;
  max_bytes = self->max_batch_bytes;
  max_spool = self->max_spool_bytes;
  batch_timeout = self->batch_timeout;
  GST_OBJECT_UNLOCK (self);

  BATCH_LOCK (self);
  name = next_file_name_locked (self, prefix, extension);
  if (self->spool_dir == NULL) {
    /* Stopped meanwhile: leave the file where it is. */
    BATCH_UNLOCK (self);
    return;
  }

  if ((guint64) st.st_size > max_bytes) {
    g_autofree gchar *dir = g_build_filename (self->spool_dir, "oversize",
        NULL);
    dest = g_build_filename (dir, name, NULL);
    g_mkdir_with_parents (dir, 0700);
    if (g_rename (incoming_path, dest) < 0)
      g_free (g_steal_pointer (&dest));
    BATCH_UNLOCK (self);
    GST_ELEMENT_WARNING_WITH_DETAILS (self, RESOURCE, TOO_LAZY,
        ("File \"%s\" (%" G_GUINT64_FORMAT " bytes) is larger than "
            "max-batch-bytes (%" G_GUINT64_FORMAT ") and will not be "
            "submitted; it stays on disk.", dest ? dest : incoming_path,
            (guint64) st.st_size, max_bytes), (NULL),
        ("file", G_TYPE_STRING, dest ? dest : incoming_path,
            "size", G_TYPE_UINT64, (guint64) st.st_size, NULL));
    return;
  }

  if (self->spool_bytes + st.st_size > max_spool) {
    GstClockTime end = running_time;
    if (GST_CLOCK_TIME_IS_VALID (running_time)
        && GST_CLOCK_TIME_IS_VALID (duration))
      end = running_time + duration;
    if (self->skipped_bytes == 0)
      self->skipped_from = running_time;
    self->skipped_to = end;
    self->skipped_bytes += st.st_size;
    g_unlink (incoming_path);
    g_queue_push_tail (&outbox.messages,
        gst_message_new_element (GST_OBJECT_CAST (self),
            gst_structure_new ("resemble-detect-spool-full",
                "skipped-bytes", G_TYPE_UINT64, self->skipped_bytes,
                "skipped-from", G_TYPE_UINT64, self->skipped_from,
                "skipped-to", G_TYPE_UINT64, self->skipped_to,
                "spool-bytes", G_TYPE_UINT64, self->spool_bytes, NULL)));
    BATCH_UNLOCK (self);
    GST_WARNING_OBJECT (self, "spool full (%" G_GUINT64_FORMAT " bytes): "
        "skipped %s", self->spool_bytes, incoming_path);
    outbox_flush (self, &outbox);
    return;
  }
  self->skipped_bytes = 0;

  if (self->open_batch && rd_batch_check_fit (self->open_batch, st.st_size,
          max_files, max_bytes) == RD_BATCH_FIT_CLOSE_FIRST)
    close_batch_locked (self, &outbox);

  if (!ensure_open_batch_locked (self, &error))
    goto failed;

  dest = g_build_filename (self->open_batch->dir, name, NULL);
  if (g_rename (incoming_path, dest) < 0) {
    int err = errno;
    g_set_error (&error, G_FILE_ERROR, g_file_error_from_errno (err),
        "Could not move \"%s\" to \"%s\": %s", incoming_path, dest,
        g_strerror (err));
    goto failed;
  }
  file = rd_batch_file_new (name, st.st_size, media_type,
      GST_CLOCK_TIME_IS_VALID (running_time) ? running_time : RD_TIME_NONE,
      GST_CLOCK_TIME_IS_VALID (duration) ? duration : RD_TIME_NONE);
  rd_batch_add_file (self->open_batch, file);
  self->spool_bytes += st.st_size;
  GST_DEBUG_OBJECT (self, "added %s (%" G_GUINT64_FORMAT " bytes, %"
      GST_TIME_FORMAT " + %" GST_TIME_FORMAT ") to batch %u", dest,
      (guint64) st.st_size, GST_TIME_ARGS (running_time),
      GST_TIME_ARGS (duration), self->open_batch->index);

  if (rd_batch_is_full (self->open_batch, max_files)) {
    close_batch_locked (self, &outbox);
  } else {
    if (!rd_manifest_write (self->open_batch, &error))
      goto failed;
    if (batch_timeout > 0 && self->open_batch->files->len == 1)
      schedule_timeout_locked (self, batch_timeout);
  }
  BATCH_UNLOCK (self);
  outbox_flush (self, &outbox);
  return;

failed:
  BATCH_UNLOCK (self);
  outbox_flush (self, &outbox);
  GST_ELEMENT_ERROR (self, RESOURCE, WRITE, ("Could not add a file to the "
          "batch."), ("%s", error->message));
}

/* ---- image pads ---------------------------------------------------------- */

static GstFlowReturn
image_new_sample (GstAppSink * appsink, gpointer user_data)
{
  Stream *stream = user_data;
  GstResembleDetectSink *self = stream->sink;
  g_autoptr (GstSample) sample = gst_app_sink_pull_sample (appsink);
  g_autofree gchar *path = NULL;
  g_autofree gchar *basename = NULL;
  g_autoptr (GError) error = NULL;
  GstBuffer *buffer;
  GstCaps *caps;
  const GstSegment *segment;
  const gchar *ext;
  GstMapInfo map;
  GstClockTime running_time = GST_CLOCK_TIME_NONE;
  gboolean ok;

  if (sample == NULL)
    return GST_FLOW_EOS;
  buffer = gst_sample_get_buffer (sample);
  caps = gst_sample_get_caps (sample);
  segment = gst_sample_get_segment (sample);
  ext = caps ? extension_for_image_caps (caps) : NULL;
  if (buffer == NULL || ext == NULL) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Snapshot without image caps."),
        ("caps: %" GST_PTR_FORMAT, caps));
    return GST_FLOW_ERROR;
  }
  g_free (stream->extension);
  stream->extension = g_strdup (ext);

  if (segment && segment->format == GST_FORMAT_TIME
      && GST_BUFFER_PTS_IS_VALID (buffer))
    running_time = gst_segment_to_running_time (segment, GST_FORMAT_TIME,
        GST_BUFFER_PTS (buffer));

  basename = g_strdup_printf ("%s.%s", stream->name, ext);
  BATCH_LOCK (self);
  if (self->incoming_dir)
    path = g_build_filename (self->incoming_dir, basename, NULL);
  BATCH_UNLOCK (self);
  if (path == NULL)
    return GST_FLOW_FLUSHING;

  if (!gst_buffer_map (buffer, &map, GST_MAP_READ))
    return GST_FLOW_ERROR;
  ok = g_file_set_contents_full (path, (const gchar *) map.data, map.size,
      G_FILE_SET_CONTENTS_NONE, 0600, &error);
  gst_buffer_unmap (buffer, &map);
  if (!ok) {
    post_write_error (self, path, error->code == G_FILE_ERROR_NOSPC ? ENOSPC :
        EIO, error->message);
    return GST_FLOW_ERROR;
  }

  gst_resemble_detect_sink_add_file (self, stream->name, stream->extension,
      RD_MEDIA_TYPE_IMAGE, path, running_time, GST_BUFFER_DURATION (buffer));
  return GST_FLOW_OK;
}

/* ---- audio/video pads ---------------------------------------------------- */

static gchar *
format_location_cb (GstElement * splitmux, guint fragment_id,
    GstSample * first_sample, gpointer user_data)
{
  Segmenter *segmenter = user_data;
  GstResembleDetectSink *self = segmenter->sink;
  g_autofree gchar *basename = g_strdup_printf ("%s-%06u.%s", segmenter->name,
      fragment_id, segmenter->extension);
  gchar *path;

  BATCH_LOCK (self);
  path = g_build_filename (self->incoming_dir, basename, NULL);
  BATCH_UNLOCK (self);
  return path;
}

/* A segmenter is one splitmuxsink and the streams feeding it: the video
 * pad with every audio pad (one muxer, audio and video in the same files,
 * as splitmuxsink does), or an audio pad on its own when there is no video.
 * Its muxer depends on the caps, so it is made once its streams have caps.
 * Nothing waits for that on a streaming thread: the caps go into each
 * stream's queue, and the queue's output waits at the stream's gate until
 * the segmenter is linked. A member whose queue fills while the others have
 * no caps yet (one upstream thread feeding several pads) ends the wait: the
 * segmenter is made with the members that have caps, the late ones get
 * segmenters of their own (a running muxer takes no new pads). */

static gboolean
is_group_member (GstResembleDetectSink * self, Stream * stream)
{
  return stream->queue && !stream->solo && (self->have_video
      || stream->media_type == RD_MEDIA_TYPE_VIDEO);
}

/* Makes the splitmuxsink for @members (leader first: the video stream if
 * any) and links their queues to it. Called with the streams lock. */
static GstElement *
segmenter_create_locked (GstResembleDetectSink * self, GPtrArray * members,
    GError ** error)
{
  Stream *leader = members->pdata[0];
  g_autofree GstCaps **caps = g_new0 (GstCaps *, members->len);
  g_autofree const gchar **names = g_new0 (const gchar *, members->len);
  GstResembleDetectContainer container;
  GstElement *splitmux, *muxer;
  GstClockTime segment_duration;
  Segmenter *segmenter;

  for (guint i = 0; i < members->len; i++) {
    caps[i] = ((Stream *) members->pdata[i])->caps;
    names[i] = ((Stream *) members->pdata[i])->name;
  }
  GST_OBJECT_LOCK (self);
  container = self->container;
  segment_duration = self->segment_duration;
  GST_OBJECT_UNLOCK (self);

  if (!rd_container_choose (container, members->len, caps, names, &container,
          error))
    return NULL;
  splitmux = gst_element_factory_make ("splitmuxsink", NULL);
  if (splitmux == NULL) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
        "splitmuxsink is missing (gst-plugins-good).");
    return NULL;
  }
  muxer = rd_container_make_muxer (container, error);
  if (muxer == NULL) {
    gst_object_unref (gst_object_ref_sink (splitmux));
    return NULL;
  }

  segmenter = g_new0 (Segmenter, 1);
  segmenter->sink = self;
  segmenter->name = g_strdup (leader->name);
  segmenter->extension = g_strdup (rd_container_extension (container));
  segmenter->media_type = leader->media_type;
  segmenter->fragment_start = GST_CLOCK_TIME_NONE;
  g_object_set_qdata_full (G_OBJECT (splitmux), segmenter_quark, segmenter,
      segmenter_free);

  /* Our own preroll stands for the segmenter's (see the gates): a
   * splitmuxsink made while the pipeline plays must not make it lose its
   * state. Keyframe requests keep video segments close to the duration. */
  g_object_set (splitmux, "muxer", muxer, "max-size-time", segment_duration,
      "send-keyframe-requests", leader->media_type == RD_MEDIA_TYPE_VIDEO,
      "async-handling", TRUE, NULL);
  g_signal_connect (splitmux, "format-location-full",
      G_CALLBACK (format_location_cb), segmenter);
  gst_bin_add (GST_BIN_CAST (self), splitmux);

  for (guint i = 0; i < members->len; i++) {
    Stream *member = members->pdata[i];
    g_autoptr (GstPad) queue_src = gst_element_get_static_pad (member->queue,
        "src");

    member->splitmux = splitmux;
    member->splitmux_pad = gst_element_request_pad_simple (splitmux,
        member->media_type == RD_MEDIA_TYPE_VIDEO ? "video" : "audio_%u");
    if (member->splitmux_pad == NULL
        || gst_pad_link (queue_src, member->splitmux_pad) != GST_PAD_LINK_OK) {
      /* the next teardown removes what was made */
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "Could not link pad %s to splitmuxsink.", member->name);
      return NULL;
    }
  }
  GST_INFO_OBJECT (self, "%s segments of %" GST_TIME_FORMAT " for %u "
      "pad(s), led by %s", segmenter->extension,
      GST_TIME_ARGS (segment_duration), members->len, leader->name);
  return splitmux;
}

/* Makes every segmenter that can be made now: one of its own for each
 * stream with caps outside the group (audio without video, or a member
 * late for the group), and the group's once it is complete. Returns the new
 * splitmuxsinks, whose state the caller syncs outside the lock. On failure
 * the streams concerned are marked failed (their gates drop their data). */
static GList *
segmenters_create_locked (GstResembleDetectSink * self, GError ** error)
{
  g_autoptr (GPtrArray) members = g_ptr_array_new ();
  GList *created = NULL;
  GstElement *splitmux;
  gboolean complete = TRUE;

  if (self->flushing)
    return NULL;
  for (GList * l = self->streams; l; l = l->next) {
    Stream *s = l->data;

    if (s->queue == NULL || s->splitmux || s->caps == NULL || s->released
        || s->failed)
      continue;
    if (is_group_member (self, s) && self->group_state == GROUP_STATE_NONE)
      continue;
    s->solo = TRUE;
    g_ptr_array_set_size (members, 0);
    g_ptr_array_add (members, s);
    splitmux = segmenter_create_locked (self, members, error);
    if (splitmux == NULL) {
      s->failed = TRUE;
      return created;
    }
    created = g_list_prepend (created, splitmux);
  }

  if (self->group_state != GROUP_STATE_NONE)
    return created;
  g_ptr_array_set_size (members, 0);
  for (GList * l = self->streams; l; l = l->next) {
    Stream *s = l->data;

    if (!is_group_member (self, s) || s->released)
      continue;
    if (s->caps == NULL)
      complete &= s->finished;
    else if (s->media_type == RD_MEDIA_TYPE_VIDEO)
      g_ptr_array_insert (members, 0, s);
    else
      g_ptr_array_add (members, s);
  }
  if (members->len == 0 || !(complete || self->group_gave_up))
    return created;
  splitmux = segmenter_create_locked (self, members, error);
  self->group_state = splitmux ? GROUP_STATE_READY : GROUP_STATE_FAILED;
  if (splitmux == NULL) {
    for (guint i = 0; i < members->len; i++)
      ((Stream *) members->pdata[i])->failed = TRUE;
    return created;
  }
  return g_list_prepend (created, splitmux);
}

/* Makes what segmenters can be made, starts them, and opens the gates of
 * their streams. Any thread; never waits for other streams. */
static void
segmenters_update (GstResembleDetectSink * self)
{
  g_autoptr (GError) error = NULL;
  GList *created;

  STREAMS_LOCK (self);
  created = segmenters_create_locked (self, &error);
  STREAMS_UNLOCK (self);

  for (GList * l = created; l; l = l->next)
    gst_element_sync_state_with_parent (l->data);

  STREAMS_LOCK (self);
  for (GList * l = self->streams; l; l = l->next) {
    Stream *s = l->data;
    if (s->splitmux && g_list_find (created, s->splitmux))
      s->linked = TRUE;
  }
  g_cond_broadcast (&self->streams_cond);
  STREAMS_UNLOCK (self);
  g_list_free (created);

  if (error) {
    gst_element_message_full (GST_ELEMENT_CAST (self), GST_MESSAGE_ERROR,
        error->domain, error->code, g_strdup (error->message),
        g_strdup ("the pad's segment files cannot be written"), __FILE__,
        GST_FUNCTION, __LINE__);
  }
}

/* The first caps of @stream: its segmenter is made now if it can be.
 * FALSE when the caps cannot be segmented (refused container). */
static gboolean
stream_set_caps (GstResembleDetectSink * self, Stream * stream, GstCaps * caps)
{
  gboolean ok;

  STREAMS_LOCK (self);
  if (stream->splitmux || stream->caps) {
    STREAMS_UNLOCK (self);
    return TRUE;
  }
  gst_caps_replace (&stream->caps, caps);
  STREAMS_UNLOCK (self);

  segmenters_update (self);

  STREAMS_LOCK (self);
  ok = !stream->failed;
  STREAMS_UNLOCK (self);
  return ok;
}

/* Unlinks @stream from its segmenter. Returns the segmenter when no other
 * stream feeds it (the caller sets it to NULL and removes it, without the
 * streams lock: splitmuxsink's threads post messages that take it); when
 * others still do, @eos_pad is the segmenter's pad of @stream, which the
 * caller ends with an EOS so that the others' files still close. Called
 * with the streams lock. */
static GstElement *
stream_detach_locked (GstResembleDetectSink * self, Stream * stream,
    GstPad ** eos_pad)
{
  GstElement *splitmux = stream->splitmux;
  GstPad *splitmux_pad = stream->splitmux_pad;

  gst_clear_caps (&stream->caps);
  stream->finished = FALSE;
  stream->solo = FALSE;
  stream->linked = FALSE;
  stream->splitmux = NULL;
  stream->splitmux_pad = NULL;
  if (splitmux == NULL) {
    gst_clear_object (&splitmux_pad);
    return NULL;
  }
  if (splitmux_pad) {
    g_autoptr (GstPad) queue_src = gst_element_get_static_pad (stream->queue,
        "src");
    gst_pad_unlink (queue_src, splitmux_pad);
  }
  for (GList * l = self->streams; l; l = l->next) {
    if (l->data != stream && ((Stream *) l->data)->splitmux == splitmux) {
      if (eos_pad)
        *eos_pad = splitmux_pad;
      else
        gst_clear_object (&splitmux_pad);
      return NULL;
    }
  }
  gst_clear_object (&splitmux_pad);
  /* splitmuxsink drops its muxer when it stops and its release_pad then
   * fails: removing it releases its pads with it */
  return gst_object_ref (splitmux);
}

static void
segmenter_drop (GstResembleDetectSink * self, GstElement * splitmux)
{
  gst_element_set_state (splitmux, GST_STATE_NULL);
  gst_bin_remove (GST_BIN_CAST (self), splitmux);
  gst_object_unref (splitmux);
}

/* A member's queue is full while the group waits for another member's
 * caps. When this very thread also feeds that member, it cannot bring the
 * caps while it waits here: the segmenter is made without them. Other
 * threads just wait, as they would on any full queue. */
static void
queue_overrun_cb (GstElement * queue, gpointer user_data)
{
  Stream *stream = user_data;
  GstResembleDetectSink *self = stream->sink;
  GThread *thread = g_thread_self ();
  gboolean give_up = FALSE;

  STREAMS_LOCK (self);
  if (!stream->linked && stream->caps && is_group_member (self, stream)
      && self->group_state == GROUP_STATE_NONE && !self->group_gave_up) {
    for (GList * l = self->streams; l; l = l->next) {
      Stream *s = l->data;
      if (is_group_member (self, s) && s->caps == NULL && !s->finished
          && g_atomic_pointer_get (&s->feeder) == thread)
        give_up = TRUE;
    }
  }
  self->group_gave_up |= give_up;
  STREAMS_UNLOCK (self);
  if (give_up) {
    GST_WARNING_OBJECT (self, "pad %s: queue full, and the thread that fills "
        "it also feeds a pad without caps: segmenting without that pad",
        stream->name);
    segmenters_update (self);
  }
}

/* ---- preroll ------------------------------------------------------------- */

/* Like every sink, the element prerolls: it goes to PAUSED asynchronously
 * and commits once every pad has had data (or EOS, or GAP), and in PAUSED
 * that data waits at the gates until PLAYING: the queue's output of an
 * audio/video pad, the pad itself for snapshots. The child sinks cannot do
 * it for us, since the splitmuxsinks come later, with the caps. */

static void
gst_resemble_detect_sink_async_start (GstResembleDetectSink * self)
{
  GST_BIN_CLASS (parent_class)->handle_message (GST_BIN_CAST (self),
      gst_message_new_async_start (GST_OBJECT_CAST (self)));
}

static void
gst_resemble_detect_sink_async_done (GstResembleDetectSink * self)
{
  GST_DEBUG_OBJECT (self, "prerolled");
  GST_BIN_CLASS (parent_class)->handle_message (GST_BIN_CAST (self),
      gst_message_new_async_done (GST_OBJECT_CAST (self), GST_CLOCK_TIME_NONE));
}

/* TRUE when the preroll is complete now: the caller posts ASYNC_DONE,
 * without the lock. */
static gboolean
preroll_check_locked (GstResembleDetectSink * self)
{
  if (!self->async_pending)
    return FALSE;
  for (GList * l = self->streams; l; l = l->next) {
    Stream *s = l->data;
    if (!s->prerolled && !s->released)
      return FALSE;
  }
  self->async_pending = FALSE;
  return TRUE;
}

static gboolean
gate_closed_locked (GstResembleDetectSink * self, Stream * stream,
    gboolean is_data)
{
  if (self->flushing || stream->flushing || stream->released || stream->failed)
    return FALSE;
  /* a segmenter is on its way once the stream has caps */
  if (stream->queue && !stream->linked)
    return stream->caps != NULL;
  return is_data && self->need_preroll;
}

/* Waits while the gate is closed; FALSE when the data must be dropped. */
static gboolean
gate_wait_locked (GstResembleDetectSink * self, Stream * stream,
    gboolean is_data)
{
  while (gate_closed_locked (self, stream, is_data))
    g_cond_wait (&self->streams_cond, &self->streams_lock);
  return !(self->flushing || stream->flushing || stream->released
      || stream->failed);
}

/* On the output of an audio/video pad's queue (the queue's thread). */
static GstPadProbeReturn
segment_gate_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Stream *stream = user_data;
  GstResembleDetectSink *self = stream->sink;
  gboolean is_data = (info->type & (GST_PAD_PROBE_TYPE_BUFFER |
          GST_PAD_PROBE_TYPE_BUFFER_LIST)) != 0;
  gboolean pass;

  if (!is_data) {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

    /* sticky events stay on the pad until it is linked; EOS must reach
     * the segmenter */
    if (GST_EVENT_IS_STICKY (event) && GST_EVENT_TYPE (event) != GST_EVENT_EOS)
      return GST_PAD_PROBE_OK;
  }
  STREAMS_LOCK (self);
  pass = gate_wait_locked (self, stream, is_data);
  STREAMS_UNLOCK (self);
  if (pass)
    return GST_PAD_PROBE_OK;
  if (is_data)
    GST_PAD_PROBE_INFO_FLOW_RETURN (info) = GST_FLOW_FLUSHING;
  return GST_PAD_PROBE_DROP;
}

/* splitmuxsink closes the last fragment at the start of its last buffer:
 * the end of the input, kept here, gives that fragment its full duration. */
static void
stream_record_input_locked (Stream * stream, GstBuffer * buffer)
{
  GstClockTime start, end, start_rt;

  if (stream->segment.format != GST_FORMAT_TIME)
    return;
  start = GST_BUFFER_PTS_IS_VALID (buffer) ? GST_BUFFER_PTS (buffer) :
      GST_BUFFER_DTS (buffer);
  if (!GST_CLOCK_TIME_IS_VALID (start))
    return;
  start_rt = gst_segment_to_running_time (&stream->segment, GST_FORMAT_TIME,
      start);
  if (GST_BUFFER_DURATION_IS_VALID (buffer))
    start += GST_BUFFER_DURATION (buffer);
  end = gst_segment_to_running_time (&stream->segment, GST_FORMAT_TIME, start);
  if (GST_CLOCK_TIME_IS_VALID (start_rt) && GST_CLOCK_TIME_IS_VALID (end)
      && (!GST_CLOCK_TIME_IS_VALID (stream->last_end)
          || end > stream->last_end)) {
    stream->last_start = start_rt;
    stream->last_end = end;
  }
}

/* Vorbis and FLAC encoders send their headers as untimestamped buffers and
 * in the caps (streamheader); splitmuxsink refuses buffers without time
 * ("Queued GOP time is negative"), and every muxer writes the headers from
 * the caps into each file. */
static gboolean
is_header_in_caps (GstPad * pad, GstBuffer * buffer)
{
  g_autoptr (GstCaps) caps = NULL;

  if (!GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_HEADER)
      || GST_BUFFER_PTS_IS_VALID (buffer) || GST_BUFFER_DTS_IS_VALID (buffer))
    return FALSE;
  caps = gst_pad_get_current_caps (pad);
  return caps && gst_structure_has_field (gst_caps_get_structure (caps, 0),
      "streamheader");
}

/* On every pad, upstream's thread: preroll accounting, the input's end,
 * and the gate of snapshots. */
static GstPadProbeReturn
stream_input_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Stream *stream = user_data;
  GstResembleDetectSink *self = stream->sink;
  GstBuffer *buffer = NULL;
  gboolean is_data = TRUE, prerolled, pass = TRUE;

  g_atomic_pointer_set (&stream->feeder, g_thread_self ());
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEventType type = GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info));

    if (type != GST_EVENT_GAP && type != GST_EVENT_EOS)
      return GST_PAD_PROBE_OK;
    is_data = FALSE;
    if (type == GST_EVENT_EOS) {
      STREAMS_LOCK (self);
      stream->finished = TRUE;
      STREAMS_UNLOCK (self);
    }
  } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST (info);
    guint n = gst_buffer_list_length (list);

    if (n > 0)
      buffer = gst_buffer_list_get (list, n - 1);
  } else {
    buffer = GST_PAD_PROBE_INFO_BUFFER (info);
    if (stream->queue && is_header_in_caps (pad, buffer))
      return GST_PAD_PROBE_DROP;
  }

  STREAMS_LOCK (self);
  if (stream->queue && buffer)
    stream_record_input_locked (stream, buffer);
  prerolled = !stream->prerolled;
  stream->prerolled = TRUE;
  /* Posted under the lock, as a base sink commits under its preroll lock:
   * the PAUSED->PLAYING that the application starts when it sees the
   * pipeline commit takes this lock too, so it cannot overtake the commit.
   * (GstBin 1.22 otherwise loses track of having reached PLAYING, and then
   * swallows every EOS.) */
  if (prerolled && preroll_check_locked (self))
    gst_resemble_detect_sink_async_done (self);
  STREAMS_UNLOCK (self);

  if (stream->appsink && is_data) {
    STREAMS_LOCK (self);
    pass = gate_wait_locked (self, stream, TRUE);
    STREAMS_UNLOCK (self);
  }
  if (pass)
    return GST_PAD_PROBE_OK;
  GST_PAD_PROBE_INFO_FLOW_RETURN (info) = GST_FLOW_FLUSHING;
  return GST_PAD_PROBE_DROP;
}

/* A flush ends the EOS that may be held: the stream goes on. */
static void
drop_held_eos (GstResembleDetectSink * self)
{
  GstMessage *eos;

  CLIENT_LOCK (self);
  eos = g_steal_pointer (&self->held_eos);
  CLIENT_UNLOCK (self);
  if (eos) {
    GST_DEBUG_OBJECT (self, "flushed: the held EOS is dropped");
    gst_message_unref (eos);
  }
}

static void
stream_set_flushing (GstResembleDetectSink * self, Stream * stream,
    gboolean flushing)
{
  STREAMS_LOCK (self);
  stream->flushing = flushing;
  if (!flushing) {
    stream->finished = FALSE;
    stream->last_start = stream->last_end = GST_CLOCK_TIME_NONE;
  }
  g_cond_broadcast (&self->streams_cond);
  STREAMS_UNLOCK (self);
}

static GstPadProbeReturn
image_pad_flush_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Stream *stream = user_data;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP)
    drop_held_eos (stream->sink);
  stream_set_flushing (stream->sink, stream,
      GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_START);
  return GST_PAD_PROBE_OK;
}

/* splitmuxsink cannot go back in time ("Timestamping error on input
 * streams" after a flushing seek backwards): a stream with a segmenter of
 * its own gets a new one while it is flushing, before the FLUSH_STOP goes
 * on, so that nothing reaches the old one. The fragment the old one was
 * writing is incomplete and is removed; closed ones are in their batches.
 * A shared (audio+video) segmenter is kept: see the docs. */
static void
stream_restart_segmenter (GstResembleDetectSink * self, Stream * stream)
{
  g_autoptr (GstCaps) caps = NULL;
  g_autofree gchar *incomplete = NULL;
  GstElement *drop = NULL;

  STREAMS_LOCK (self);
  if (stream->solo && stream->splitmux && stream->caps && !self->flushing) {
    Segmenter *old = g_object_get_qdata (G_OBJECT (stream->splitmux),
        segmenter_quark);

    incomplete = old ? g_strdup (old->open_location) : NULL;
    caps = gst_caps_ref (stream->caps);
    drop = stream_detach_locked (self, stream, NULL);
    stream->caps = gst_caps_ref (caps);
    stream->solo = TRUE;
  }
  STREAMS_UNLOCK (self);

  if (drop == NULL)
    return;
  segmenter_drop (self, drop);
  if (incomplete)
    g_unlink (incomplete);
  GST_DEBUG_OBJECT (self, "pad %s: new segmenter after a flush", stream->name);
  segmenters_update (self);
}

static gboolean
segment_pad_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (parent);
  Stream *stream = gst_pad_get_element_private (pad);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;

      gst_event_parse_caps (event, &caps);
      if (!stream_set_caps (self, stream, caps)) {
        gst_event_unref (event);
        return FALSE;
      }
      break;
    }
    case GST_EVENT_EOS:{
      gboolean no_sink = TRUE;

      STREAMS_LOCK (self);
      stream->finished = TRUE;
      for (GList * l = self->streams; l; l = l->next) {
        Stream *s = l->data;
        /* with caps and no failure, a segmenter is on its way */
        if (!s->finished || s->splitmux || s->appsink || (s->caps
                && !s->failed))
          no_sink = FALSE;
      }
      STREAMS_UNLOCK (self);
      /* no child sink exists to post EOS: every stream ended before caps */
      if (no_sink) {
        gst_event_unref (event);
        gst_element_post_message (GST_ELEMENT_CAST (self),
            gst_message_new_eos (GST_OBJECT_CAST (self)));
        return TRUE;
      }
      /* a stream that ends before its caps must not hold up the others */
      segmenters_update (self);
      break;
    }
    case GST_EVENT_FLUSH_START:
      stream_set_flushing (self, stream, TRUE);
      break;
    case GST_EVENT_FLUSH_STOP:
      drop_held_eos (self);
      stream_restart_segmenter (self, stream);
      stream_set_flushing (self, stream, FALSE);
      break;
    case GST_EVENT_SEGMENT:
      gst_event_copy_segment (event, &stream->segment);
      break;
    default:
      break;
  }
  return gst_pad_event_default (pad, parent, event);
}

/* ---- pads ---------------------------------------------------------------- */

static void
stream_free (Stream * stream)
{
  gst_clear_caps (&stream->caps);
  g_free (stream->name);
  g_free (stream->extension);
  g_free (stream);
}

static GstPad *
gst_resemble_detect_sink_request_new_pad (GstElement * element,
    GstPadTemplate * templ, const gchar * req_name, const GstCaps * caps)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (element);
  GstElementClass *klass = GST_ELEMENT_GET_CLASS (element);
  const gchar *templ_name = GST_PAD_TEMPLATE_NAME_TEMPLATE (templ);
  g_autoptr (GstPad) target = NULL;
  Stream *stream;
  GstElement *child;
  GstPad *pad;
  guint number;

  stream = g_new0 (Stream, 1);
  stream->sink = self;

  STREAMS_LOCK (self);
  if (templ == gst_element_class_get_pad_template (klass, "video")) {
    if (self->have_video) {
      STREAMS_UNLOCK (self);
      GST_WARNING_OBJECT (self, "only one video pad is supported");
      g_free (stream);
      return NULL;
    }
    self->have_video = TRUE;
    stream->media_type = RD_MEDIA_TYPE_VIDEO;
    stream->name = g_strdup ("video");
  } else {
    gboolean is_audio = g_str_equal (templ_name, "audio_%u");
    guint *next = is_audio ? &self->next_audio_pad : &self->next_image_pad;

    if (req_name && sscanf (req_name, is_audio ? "audio_%u" : "image_%u",
            &number) == 1) {
      for (GList * l = self->streams; l; l = l->next) {
        if (g_str_equal (((Stream *) l->data)->name, req_name)) {
          STREAMS_UNLOCK (self);
          GST_WARNING_OBJECT (self, "pad %s exists already", req_name);
          g_free (stream);
          return NULL;
        }
      }
      *next = MAX (*next, number + 1);
    } else {
      number = (*next)++;
    }
    stream->media_type = is_audio ? RD_MEDIA_TYPE_AUDIO : RD_MEDIA_TYPE_IMAGE;
    stream->name = g_strdup_printf (is_audio ? "audio_%u" : "image_%u", number);
  }

  if (stream->media_type == RD_MEDIA_TYPE_IMAGE) {
    GstAppSinkCallbacks callbacks = { NULL, NULL, image_new_sample };

    /* Snapshots are written as they come, no clock; the element's own
     * preroll stands for the appsink's. */
    child = gst_element_factory_make ("appsink", NULL);
    g_object_set (child, "sync", FALSE, "async", FALSE, "max-buffers", 1,
        "emit-signals", FALSE, NULL);
    gst_app_sink_set_callbacks (GST_APP_SINK (child), &callbacks, stream, NULL);
    stream->appsink = child;
  } else {
    g_autoptr (GstPad) queue_src = NULL;

    /* Each pad gets its own queue, so that one upstream thread feeding
     * several pads cannot deadlock splitmuxsink, nor a pad that waits for
     * its segmenter. */
    child = gst_element_factory_make ("queue", NULL);
    stream->queue = child;
    queue_src = gst_element_get_static_pad (child, "src");
    gst_pad_add_probe (queue_src, GST_PAD_PROBE_TYPE_BUFFER |
        GST_PAD_PROBE_TYPE_BUFFER_LIST | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
        segment_gate_probe, stream, NULL);
    g_signal_connect (child, "overrun", G_CALLBACK (queue_overrun_cb), stream);
  }
  gst_bin_add (GST_BIN_CAST (self), child);
  target = gst_element_get_static_pad (child, "sink");
  pad = gst_ghost_pad_new_from_template (stream->name, target, templ);
  gst_pad_set_element_private (pad, stream);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER |
      GST_PAD_PROBE_TYPE_BUFFER_LIST | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      stream_input_probe, stream, NULL);
  if (stream->appsink)
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_EVENT_FLUSH,
        image_pad_flush_probe, stream, NULL);
  else
    gst_pad_set_event_function (pad, segment_pad_event);
  gst_segment_init (&stream->segment, GST_FORMAT_UNDEFINED);
  stream->last_start = stream->last_end = GST_CLOCK_TIME_NONE;
  stream->pad = pad;
  self->streams = g_list_append (self->streams, stream);
  STREAMS_UNLOCK (self);

  gst_element_sync_state_with_parent (child);
  gst_pad_set_active (pad, TRUE);
  gst_element_add_pad (element, pad);
  return pad;
}

static void
gst_resemble_detect_sink_release_pad (GstElement * element, GstPad * pad)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (element);
  Stream *stream = gst_pad_get_element_private (pad);
  GstElement *drop, *child;
  GstPad *eos_pad = NULL;

  /* a streaming thread waiting at the stream's gate must leave before the
   * pad can be deactivated */
  STREAMS_LOCK (self);
  stream->released = TRUE;
  g_cond_broadcast (&self->streams_cond);
  STREAMS_UNLOCK (self);
  gst_pad_set_active (pad, FALSE);

  STREAMS_LOCK (self);
  self->streams = g_list_remove (self->streams, stream);
  if (stream->media_type == RD_MEDIA_TYPE_VIDEO)
    self->have_video = FALSE;
  drop = stream_detach_locked (self, stream, &eos_pad);
  /* the others no longer wait for it */
  g_cond_broadcast (&self->streams_cond);
  STREAMS_UNLOCK (self);

  if (eos_pad) {
    gst_pad_send_event (eos_pad, gst_event_new_eos ());
    gst_object_unref (eos_pad);
  }
  if (drop)
    segmenter_drop (self, drop);
  child = stream->queue ? stream->queue : stream->appsink;
  gst_element_set_state (child, GST_STATE_NULL);
  gst_bin_remove (GST_BIN_CAST (self), child);
  gst_element_remove_pad (element, pad);
  stream_free (stream);
  segmenters_update (self);
  /* the preroll may have waited for this pad only (see stream_input_probe
   * for why under the lock) */
  STREAMS_LOCK (self);
  if (preroll_check_locked (self))
    gst_resemble_detect_sink_async_done (self);
  STREAMS_UNLOCK (self);
}

static Stream *
stream_for_splitmux_locked (GstResembleDetectSink * self, GstObject * src)
{
  Stream *found = NULL;

  /* the segmenter's leader names its files: video before audio */
  for (GList * l = self->streams; l; l = l->next) {
    Stream *stream = l->data;
    if (stream->splitmux && GST_OBJECT_CAST (stream->splitmux) == src
        && (found == NULL || stream->media_type == RD_MEDIA_TYPE_VIDEO))
      found = stream;
  }
  return found;
}

/* The end of a fragment: where splitmuxsink says, except for the last one
 * (its streams have ended and it closed at the start of @leader's last
 * buffer), which lasts until the end of its input. */
static GstClockTime
fragment_end_locked (GstResembleDetectSink * self, Stream * leader,
    GstClockTime closed_at)
{
  GstClockTime end = closed_at;

  if (!GST_CLOCK_TIME_IS_VALID (closed_at)
      || !GST_CLOCK_TIME_IS_VALID (leader->last_start)
      || closed_at < leader->last_start)
    return closed_at;
  for (GList * l = self->streams; l; l = l->next) {
    Stream *s = l->data;
    if (s->splitmux != leader->splitmux)
      continue;
    if (!s->finished)
      return closed_at;
    if (GST_CLOCK_TIME_IS_VALID (s->last_end) && s->last_end > end)
      end = s->last_end;
  }
  return end;
}

/* splitmuxsink's fragment messages give each segment's running-time range;
 * a closed fragment is a complete file that can join a batch. */
static void
gst_resemble_detect_sink_handle_message (GstBin * bin, GstMessage * message)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (bin);
  const GstStructure *s = gst_message_get_structure (message);

  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ELEMENT && s
      && (gst_structure_has_name (s, "splitmuxsink-fragment-opened")
          || gst_structure_has_name (s, "splitmuxsink-fragment-closed"))) {
    gboolean closed = gst_structure_has_name (s,
        "splitmuxsink-fragment-closed");
    const gchar *location = gst_structure_get_string (s, "location");
    GstClockTime running_time = GST_CLOCK_TIME_NONE;
    GstClockTime start = GST_CLOCK_TIME_NONE;
    Segmenter *segmenter = g_object_get_qdata (G_OBJECT (GST_MESSAGE_SRC
            (message)), segmenter_quark);
    Stream *leader;

    gst_structure_get_uint64 (s, "running-time", &running_time);
    STREAMS_LOCK (self);
    if (segmenter) {
      start = segmenter->fragment_start;
      segmenter->fragment_start = closed ? GST_CLOCK_TIME_NONE : running_time;
      g_free (segmenter->open_location);
      segmenter->open_location = closed ? NULL : g_strdup (location);
      leader = stream_for_splitmux_locked (self, GST_MESSAGE_SRC (message));
      if (closed && leader)
        running_time = fragment_end_locked (self, leader, running_time);
    }
    STREAMS_UNLOCK (self);

    if (closed && segmenter && location) {
      GstClockTime duration = GST_CLOCK_TIME_NONE;
      if (GST_CLOCK_TIME_IS_VALID (start) && running_time >= start)
        duration = running_time - start;
      gst_resemble_detect_sink_add_file (self, segmenter->name,
          segmenter->extension, segmenter->media_type, location, start,
          duration);
    }
    /* splitmuxsink's own messages are internal business. */
    gst_message_unref (message);
    return;
  }
  GST_BIN_CLASS (parent_class)->handle_message (bin, message);
}

/* Whether every pad has had its EOS. GstBin also posts EOS when it has no
 * child sink at all, which is the case while the first segmenter waits for
 * the caps of a pad: that EOS is not ours. */
static gboolean
streams_finished (GstResembleDetectSink * self)
{
  gboolean finished = TRUE;

  STREAMS_LOCK (self);
  for (GList * l = self->streams; l; l = l->next)
    finished &= ((Stream *) l->data)->finished;
  STREAMS_UNLOCK (self);
  return finished;
}

/* The bin posts its EOS once every child sink is EOS: every file is then
 * closed, and the open batch can close before EOS reaches the application. */
static gboolean
gst_resemble_detect_sink_post_message (GstElement * element,
    GstMessage * message)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (element);

  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_EOS
      && GST_MESSAGE_SRC (message) == GST_OBJECT_CAST (element)) {
    Outbox outbox = OUTBOX_INIT;
    gboolean wait_on_eos;

    if (!streams_finished (self)) {
      GST_DEBUG_OBJECT (self, "EOS of no child sink: dropped");
      gst_message_unref (message);
      return TRUE;
    }
    BATCH_LOCK (self);
    close_batch_locked (self, &outbox);
    BATCH_UNLOCK (self);
    outbox_flush (self, &outbox);

    GST_OBJECT_LOCK (self);
    wait_on_eos = self->wait_on_eos;
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

static void
gst_resemble_detect_sink_submit_now (GstResembleDetectSink * self)
{
  Outbox outbox = OUTBOX_INIT;

  GST_DEBUG_OBJECT (self, "submit-now");
  BATCH_LOCK (self);
  close_batch_locked (self, &outbox);
  BATCH_UNLOCK (self);
  outbox_flush (self, &outbox);
}

/* ---- the client's reports, on its thread --------------------------------- */

static void
post_element_message (GstResembleDetectSink * self, GstStructure * s)
{
  gst_element_post_message (GST_ELEMENT_CAST (self),
      gst_message_new_element (GST_OBJECT_CAST (self), s));
}

static void
client_submitted (const RdBatch * batch, gpointer user_data)
{
  GstResembleDetectSink *self = user_data;
  GstStructure *s = gst_structure_new ("resemble-detect-batch-submitted",
      "index", G_TYPE_UINT, batch->index,
      "uuid", G_TYPE_STRING, batch->uuid,
      "total-files", G_TYPE_UINT, batch->files->len,
      "total-bytes", G_TYPE_UINT64, batch->total_bytes, NULL);

  set_detect_uuids (s, batch);
  set_files (s, batch);
  GST_INFO_OBJECT (self, "batch %u accepted as %s", batch->index, batch->uuid);
  post_element_message (self, s);
}

static void
client_status (const RdBatch * batch, gpointer user_data)
{
  GstResembleDetectSink *self = user_data;

  post_element_message (self,
      gst_structure_new ("resemble-detect-batch-status",
          "index", G_TYPE_UINT, batch->index,
          "uuid", G_TYPE_STRING, batch->uuid,
          "status", G_TYPE_STRING, batch->status ? batch->status : "",
          "completed-count", G_TYPE_UINT, batch->completed_count,
          "failed-count", G_TYPE_UINT, batch->failed_count, NULL));
}

static void
client_progress (const RdBatch * batch, guint64 sent, guint64 total,
    gpointer user_data)
{
  GstResembleDetectSink *self = user_data;
  g_autofree gchar *code = g_strdup_printf ("upload-batch-%06u", batch->index);
  g_autofree gchar *text = NULL;
  GstProgressType type = GST_PROGRESS_TYPE_CONTINUE;
  GstMessage *msg;

  if (sent == 0)
    type = GST_PROGRESS_TYPE_START;
  else if (sent >= total)
    type = GST_PROGRESS_TYPE_COMPLETE;
  text = g_strdup_printf ("Uploading batch %u: %" G_GUINT64_FORMAT " of %"
      G_GUINT64_FORMAT " bytes", batch->index, sent, total);
  msg = gst_message_new_progress (GST_OBJECT_CAST (self), type, code, text);
  gst_structure_set ((GstStructure *) gst_message_get_structure (msg),
      "index", G_TYPE_UINT, batch->index,
      "sent-bytes", G_TYPE_UINT64, sent,
      "total-bytes", G_TYPE_UINT64, total, NULL);
  gst_element_post_message (GST_ELEMENT_CAST (self), msg);
}

static void
client_result (const RdBatch * batch, guint file_index,
    const GstStructure * result, gpointer user_data)
{
  GstResembleDetectSink *self = user_data;

  post_element_message (self, gst_structure_copy (result));
}

static void
client_done (const RdBatch * batch, const GPtrArray * results,
    gpointer user_data)
{
  GstResembleDetectSink *self = user_data;
  g_auto (GValue) array = G_VALUE_INIT;
  GstStructure *s = gst_structure_new ("resemble-detect-batch-done",
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
  GST_INFO_OBJECT (self, "batch %u (%s) done: %s", batch->index, batch->uuid,
      batch->status);
  BATCH_LOCK (self);
  self->spool_bytes -= MIN (self->spool_bytes, batch->total_bytes);
  BATCH_UNLOCK (self);
  post_element_message (self, s);
}

static void
client_error (const RdBatch * batch, guint http_status, const gchar * reason,
    const GstStructure * details, gboolean cancelled, gpointer user_data)
{
  GstResembleDetectSink *self = user_data;
  g_autofree gchar *manifest = rd_manifest_path (batch);
  gboolean as_error;
  GstStructure *s;

  /* the client has redacted the token from @reason and @details */
  s = gst_structure_new ("resemble-detect-batch-error",
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
  post_element_message (self, s);
  if (cancelled)
    return;

  GST_OBJECT_LOCK (self);
  as_error = self->on_error == GST_RESEMBLE_DETECT_ON_ERROR_ERROR
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
  GstResembleDetectSink *self = user_data;

  GST_ELEMENT_ERROR_WITH_DETAILS (self, RESOURCE, NOT_AUTHORIZED,
      ("The API refused the token: %s", reason),
      ("every batch stays on disk; set a valid api-token or "
          "RESEMBLE_API_TOKEN"), ("http-status-code", G_TYPE_UINT, 401, NULL));
}

/* The last batch ended: release an EOS held for it. */
static void
client_idle (gpointer user_data)
{
  GstResembleDetectSink *self = user_data;
  GstMessage *eos;

  CLIENT_LOCK (self);
  eos = g_steal_pointer (&self->held_eos);
  CLIENT_UNLOCK (self);
  if (eos) {
    GST_INFO_OBJECT (self, "every batch ended: releasing EOS");
    GST_ELEMENT_CLASS (parent_class)->post_message (GST_ELEMENT_CAST (self),
        eos);
  }
}

static const RdClientCallbacks client_callbacks = {
  client_submitted,
  client_status,
  client_progress,
  client_result,
  client_done,
  client_error,
  client_unauthorized,
  client_idle,
};

/**
 * gst_resemble_detect_sink_libsoup2_loaded:
 *
 * libsoup3 aborts the process when it is loaded beside libsoup2: the
 * client module must not be loaded then.
 */
gboolean
gst_resemble_detect_sink_libsoup2_loaded (void)
{
  void *handle = dlopen ("libsoup-2.4.so.1", RTLD_LAZY | RTLD_NOLOAD);

  if (handle == NULL)
    return FALSE;
  dlclose (handle);
  return TRUE;
}

#define CLIENT_MODULE_NAME "libgstresembledetect-client.so.0"

/* The client module is looked for beside the plugin (the build tree, or a
 * plugin installed with it), then where meson installs it. */
static gboolean
gst_resemble_detect_sink_load_client (GstResembleDetectSink * self,
    GError ** error)
{
  GstElementFactory *factory = gst_element_get_factory (GST_ELEMENT (self));
  g_autoptr (GstPlugin) plugin = NULL;
  g_autoptr (GPtrArray) candidates = g_ptr_array_new_with_free_func (g_free);
  const gchar *env = g_getenv ("GST_RESEMBLEDETECT_CLIENT_MODULE");
  RdClientGetVTableFunc get_vtable = NULL;
  GModule *module = NULL;

  if (self->client_api)
    return TRUE;
  if (gst_resemble_detect_sink_libsoup2_loaded ()) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_FAILED,
        "libsoup2 is loaded in this process: the network client needs "
        "libsoup3, which cannot run beside it");
    return FALSE;
  }
  if (env && *env)
    g_ptr_array_add (candidates, g_strdup (env));
  if (factory)
    plugin = gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (factory));
  if (plugin && gst_plugin_get_filename (plugin)) {
    g_autofree gchar *dir = g_path_get_dirname (gst_plugin_get_filename
        (plugin));
    g_ptr_array_add (candidates, g_build_filename (dir, CLIENT_MODULE_NAME,
            NULL));
  }
  g_ptr_array_add (candidates, g_build_filename (RD_CLIENT_MODULE_DIR,
          CLIENT_MODULE_NAME, NULL));

  for (guint i = 0; i < candidates->len && module == NULL; i++) {
    const gchar *path = candidates->pdata[i];
    if (!g_file_test (path, G_FILE_TEST_EXISTS))
      continue;
    module = g_module_open (path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
    if (module == NULL)
      GST_WARNING_OBJECT (self, "%s: %s", path, g_module_error ());
  }
  if (module == NULL) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
        "the network client module %s was not found next to the plugin "
        "nor in %s", CLIENT_MODULE_NAME, RD_CLIENT_MODULE_DIR);
    return FALSE;
  }
  if (!g_module_symbol (module, RD_CLIENT_VTABLE_SYMBOL,
          (gpointer *) & get_vtable) || get_vtable == NULL
      || get_vtable () == NULL) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
        "%s is not a network client module", g_module_name (module));
    g_module_close (module);
    return FALSE;
  }
  /* it registers GTypes: it can never be unloaded */
  g_module_make_resident (module);
  GST_INFO_OBJECT (self, "network client from %s", g_module_name (module));
  self->client_module = module;
  self->client_api = get_vtable ();
  return TRUE;
}

static RdClient *
gst_resemble_detect_sink_make_client (GstResembleDetectSink * self)
{
  g_autofree gchar *user_agent = g_strdup_printf ("gst-resembledetect/%s",
      VERSION);
  g_autofree gchar *api_url = NULL;
  g_autofree gchar *token = NULL;
  RdClientConfig config = { 0, };
  RdClient *client;

  GST_OBJECT_LOCK (self);
  api_url = g_strdup (self->api_url);
  token = g_strdup (self->api_token ? self->api_token :
      g_getenv ("RESEMBLE_API_TOKEN"));
  config.max_retries = self->max_retries;
  config.max_in_flight = self->max_in_flight;
  config.poll_interval = self->poll_interval;
  config.poll_max_interval = MAX (self->poll_max_interval, self->poll_interval);
  config.poll_timeout = self->poll_timeout;
  config.fetch_results = self->fetch_results;
  config.keep_files = self->keep_files;
  GST_OBJECT_UNLOCK (self);
  config.api_url = api_url;
  config.token = token;
  config.user_agent = user_agent;

  client = self->client_api->create (&config, &client_callbacks, self);
  if (token)
    memset (token, 0, strlen (token));
  return client;
}

/* ---- spool --------------------------------------------------------------- */

static gchar *
default_location (GstResembleDetectSink * self)
{
  g_autofree gchar *name = gst_object_get_name (GST_OBJECT_CAST (self));
  g_autofree gchar *leaf = g_strdup_printf ("%s-%d-%s",
      g_get_prgname ()? g_get_prgname () : "gst", (int) getpid (), name);

  g_strdelimit (leaf, "/\\ ", '_');
  return g_build_filename (g_get_user_cache_dir (), "gst-resembledetect",
      leaf, NULL);
}

static gint
compare_batch_index (gconstpointer a, gconstpointer b)
{
  const RdBatch *batch_a = *(RdBatch **) a;
  const RdBatch *batch_b = *(RdBatch **) b;

  return batch_a->index < batch_b->index ? -1 : batch_a->index > batch_b->index;
}

/* Scans an existing spool: batch numbering continues after the highest
 * batch, unfinished batches count towards the spool's size and are finished
 * in index order (closed ones submitted, submitted ones polled), and a batch
 * left open by a previous run is closed (its files are complete). */
static void
scan_spool_locked (GstResembleDetectSink * self, Outbox * outbox)
{
  g_autoptr (GDir) dir = g_dir_open (self->spool_dir, 0, NULL);
  g_autoptr (GPtrArray) unfinished = g_ptr_array_new ();
  const gchar *entry;

  self->next_batch_index = 1;
  self->spool_bytes = 0;
  if (dir == NULL)
    return;
  while ((entry = g_dir_read_name (dir))) {
    g_autofree gchar *path = NULL;
    g_autoptr (RdBatch) batch = NULL;
    g_autoptr (GError) error = NULL;
    guint index;

    if (!rd_batch_parse_dir_name (entry, &index))
      continue;
    self->next_batch_index = MAX (self->next_batch_index, index + 1);
    path = g_build_filename (self->spool_dir, entry, NULL);
    batch = rd_manifest_read (path, &error);
    if (batch == NULL) {
      GST_WARNING_OBJECT (self, "ignoring %s: %s", path, error->message);
      continue;
    }
    if (batch->state != RD_BATCH_STATE_DONE)
      self->spool_bytes += batch->total_bytes;
    if (batch->state == RD_BATCH_STATE_OPEN && batch->files->len > 0) {
      batch->state = RD_BATCH_STATE_CLOSED;
      if (!rd_manifest_write (batch, &error)) {
        GST_WARNING_OBJECT (self, "%s", error->message);
        continue;
      }
      g_queue_push_tail (&outbox->messages,
          gst_message_new_element (GST_OBJECT_CAST (self),
              batch_closed_structure (batch)));
    }
    if (batch->state == RD_BATCH_STATE_CLOSED
        || batch->state == RD_BATCH_STATE_SUBMITTED) {
      GST_INFO_OBJECT (self, "resuming %s batch %u",
          rd_batch_state_to_string (batch->state), batch->index);
      g_ptr_array_add (unfinished, g_steal_pointer (&batch));
    }
  }
  g_ptr_array_sort (unfinished, compare_batch_index);
  for (guint i = 0; i < unfinished->len; i++)
    g_queue_push_tail (&outbox->batches, unfinished->pdata[i]);
}

/* A setting that cannot work stops the element before anything is
 * written or sent: a refused property value, settings the API would refuse
 * together, no token. */
static gboolean
gst_resemble_detect_sink_check_settings (GstResembleDetectSink * self)
{
  g_autoptr (GString) refused = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  RdSettings settings;
  GHashTableIter iter;
  gpointer name, reason;
  gboolean have_token, valid;

  rd_settings_init (&settings);
  GST_OBJECT_LOCK (self);
  g_hash_table_iter_init (&iter, self->refused);
  while (g_hash_table_iter_next (&iter, &name, &reason))
    g_string_append_printf (refused, "%s%s (%s)", refused->len ? "; " : "",
        (const gchar *) name, (const gchar *) reason);
  rd_settings_copy (&settings, &self->settings);
  have_token = (self->api_token && *self->api_token)
      || (g_getenv ("RESEMBLE_API_TOKEN") && *g_getenv ("RESEMBLE_API_TOKEN"));
  GST_OBJECT_UNLOCK (self);
  valid = rd_settings_validate (&settings, &error);
  rd_settings_clear (&settings);

  if (refused->len > 0) {
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS,
        ("Refused setting: %s.", refused->str),
        ("the element does not start with a value it refused"));
    return FALSE;
  }
  if (!valid) {
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, ("%s.", error->message),
        ("the API would refuse every batch"));
    return FALSE;
  }
  if (!have_token && self->client_api->requires_token) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED,
        ("No API token: set the api-token property or the "
            "RESEMBLE_API_TOKEN environment variable."), (NULL));
    return FALSE;
  }
  return TRUE;
}

static gboolean
gst_resemble_detect_sink_start (GstResembleDetectSink * self)
{
  g_autofree gchar *location = NULL;
  g_autofree gchar *incoming = NULL;
  g_autoptr (GError) error = NULL;
  Outbox outbox = OUTBOX_INIT;
  RdClient *client;

  if (!gst_resemble_detect_sink_load_client (self, &error)) {
    GST_ELEMENT_ERROR (self, CORE, MISSING_PLUGIN,
        ("The network client cannot be loaded: %s.", error->message), (NULL));
    return FALSE;
  }
  if (!gst_resemble_detect_sink_check_settings (self))
    return FALSE;

  GST_OBJECT_LOCK (self);
  location = g_strdup (self->location);
  self->error_posted = FALSE;
  GST_OBJECT_UNLOCK (self);
  if (location == NULL)
    location = default_location (self);

  incoming = g_build_filename (location, "incoming", NULL);
  if (g_mkdir_with_parents (incoming, 0700) < 0) {
    int err = errno;
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
        ("Could not create the spool directory \"%s\".", location),
        ("%s", g_strerror (err)));
    return FALSE;
  }
  g_chmod (location, 0700);

  client = gst_resemble_detect_sink_make_client (self);
  if (!self->client_api->start (client, &error)) {
    self->client_api->destroy (client);
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
        ("Could not start the network thread."), ("%s", error->message));
    return FALSE;
  }
  CLIENT_LOCK (self);
  self->client = client;
  CLIENT_UNLOCK (self);

  BATCH_LOCK (self);
  self->spool_dir = g_steal_pointer (&location);
  self->incoming_dir = g_steal_pointer (&incoming);
  self->skipped_bytes = 0;
  scan_spool_locked (self, &outbox);
  GST_INFO_OBJECT (self, "spool %s, next batch %u, %" G_GUINT64_FORMAT
      " bytes pending", self->spool_dir, self->next_batch_index,
      self->spool_bytes);
  BATCH_UNLOCK (self);
  outbox_flush (self, &outbox);
  return TRUE;
}

static void
gst_resemble_detect_sink_stop (GstResembleDetectSink * self)
{
  Outbox outbox = OUTBOX_INIT;
  RdClient *client;

  /* Files of the open batch are complete: close it. The client reports it
   * (and every unfinished batch) as cancelled; its manifest says closed or
   * submitted, and the next run on this spool finishes it. */
  BATCH_LOCK (self);
  close_batch_locked (self, &outbox);
  unschedule_timeout_locked (self);
  BATCH_UNLOCK (self);
  outbox_flush (self, &outbox);

  CLIENT_LOCK (self);
  client = g_steal_pointer (&self->client);
  gst_clear_message (&self->held_eos);
  CLIENT_UNLOCK (self);
  if (client) {
    self->client_api->stop (client);
    self->client_api->destroy (client);
  }

  BATCH_LOCK (self);
  g_clear_pointer (&self->spool_dir, g_free);
  g_clear_pointer (&self->incoming_dir, g_free);
  BATCH_UNLOCK (self);
}

/* Streams preroll again from READY; TRUE when the element goes to PAUSED
 * asynchronously. */
static gboolean
streams_reset_for_paused (GstResembleDetectSink * self)
{
  gboolean async;

  GST_OBJECT_LOCK (self);
  async = self->async;
  GST_OBJECT_UNLOCK (self);

  STREAMS_LOCK (self);
  self->flushing = FALSE;
  self->need_preroll = TRUE;
  self->group_state = GROUP_STATE_NONE;
  self->group_gave_up = FALSE;
  for (GList * l = self->streams; l; l = l->next) {
    Stream *s = l->data;
    s->prerolled = FALSE;
    s->failed = FALSE;
  }
  self->async_pending = async && self->streams != NULL;
  async = self->async_pending;
  STREAMS_UNLOCK (self);
  return async;
}

/* Opens every gate and ends a pending preroll: the pads are about to stop. */
static void
streams_stop (GstResembleDetectSink * self)
{
  gboolean async_pending;

  STREAMS_LOCK (self);
  self->flushing = TRUE;
  self->need_preroll = FALSE;
  async_pending = self->async_pending;
  self->async_pending = FALSE;
  g_cond_broadcast (&self->streams_cond);
  STREAMS_UNLOCK (self);
  if (async_pending)
    gst_resemble_detect_sink_async_done (self);
}

/* The next run may bring other caps: its splitmuxsinks are made anew from
 * its first caps. */
static void
streams_drop_segmenters (GstResembleDetectSink * self)
{
  GList *drops = NULL;

  STREAMS_LOCK (self);
  for (GList * l = self->streams; l; l = l->next) {
    GstElement *drop = stream_detach_locked (self, l->data, NULL);
    if (drop)
      drops = g_list_prepend (drops, drop);
  }
  self->group_state = GROUP_STATE_NONE;
  STREAMS_UNLOCK (self);
  for (GList * l = drops; l; l = l->next)
    segmenter_drop (self, l->data);
  g_list_free (drops);
}

static void
streams_set_need_preroll (GstResembleDetectSink * self, gboolean need)
{
  STREAMS_LOCK (self);
  self->need_preroll = need;
  g_cond_broadcast (&self->streams_cond);
  STREAMS_UNLOCK (self);
}

static GstStateChangeReturn
gst_resemble_detect_sink_change_state (GstElement * element,
    GstStateChange transition)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (element);
  GstStateChangeReturn ret;
  gboolean async = FALSE;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!gst_resemble_detect_sink_start (self))
        return GST_STATE_CHANGE_FAILURE;
      async = streams_reset_for_paused (self);
      if (async)
        gst_resemble_detect_sink_async_start (self);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_PLAYING:
      streams_set_need_preroll (self, FALSE);
      break;
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
      streams_set_need_preroll (self, TRUE);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      streams_stop (self);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    /* undo the start: no network thread may outlive a failed start */
    if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
      streams_stop (self);
      gst_resemble_detect_sink_stop (self);
    }
    return ret;
  }

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      /* committed already when every pad prerolled during the change */
      STREAMS_LOCK (self);
      if (self->async_pending && ret == GST_STATE_CHANGE_SUCCESS)
        ret = GST_STATE_CHANGE_ASYNC;
      STREAMS_UNLOCK (self);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      gst_resemble_detect_sink_stop (self);
      streams_drop_segmenters (self);
      GST_OBJECT_FLAG_SET (self, GST_ELEMENT_FLAG_SINK);
      break;
    default:
      break;
  }
  return ret;
}

/* ---- properties ---------------------------------------------------------- */

static gint *
boolean_setting (GstResembleDetectSink * self, guint prop_id)
{
  switch (prop_id) {
    case PROP_INTELLIGENCE:
      return &self->settings.intelligence;
    case PROP_SEARCH_IDENTITY:
      return &self->settings.search_identity;
    case PROP_VISUALIZE:
      return &self->settings.visualize;
    case PROP_AUDIO_SOURCE_TRACING:
      return &self->settings.audio_source_tracing;
    case PROP_USE_LLM:
      return &self->settings.use_llm;
    case PROP_ZERO_RETENTION_MODE:
      return &self->settings.zero_retention_mode;
    default:
      return NULL;
  }
}

static gboolean
boolean_setting_default (guint prop_id)
{
  return prop_id == PROP_VISUALIZE ? DEFAULT_VISUALIZE : FALSE;
}

static gdouble *
region_setting (GstResembleDetectSink * self, guint prop_id)
{
  switch (prop_id) {
    case PROP_START_REGION:
      return &self->settings.start_region;
    case PROP_END_REGION:
      return &self->settings.end_region;
    case PROP_MAX_VIDEO_SECS:
      return &self->settings.max_video_secs;
    default:
      return NULL;
  }
}

/* A value the API would refuse is kept out (the old value stays) with a
 * warning, and remembered: the element then refuses to start, rather than
 * send anything with a setting the user did not mean. Setting an accepted
 * value forgets the refusal. Called with the object lock. */
static void
refuse_setting_locked (GstResembleDetectSink * self, GParamSpec * pspec,
    gchar * reason)
{
  g_warning ("%s: refusing %s: %s", GST_OBJECT_NAME (self), pspec->name,
      reason);
  g_hash_table_insert (self->refused, g_strdup (pspec->name), reason);
}

/* NULL when @value is an http(s) URL (or NULL), else why not. */
static gchar *
url_refusal (const gchar * value)
{
  g_autoptr (GUri) uri = NULL;
  const gchar *scheme;

  if (value == NULL)
    return NULL;
  uri = g_uri_parse (value, G_URI_FLAGS_NONE, NULL);
  scheme = uri ? g_uri_get_scheme (uri) : NULL;
  if (scheme && (g_ascii_strcasecmp (scheme, "http") == 0
          || g_ascii_strcasecmp (scheme, "https") == 0))
    return NULL;
  return g_strdup_printf ("\"%s\" is not an http(s) URL", value);
}

static gchar *
region_refusal (guint prop_id, gdouble v)
{
  /* -1 unsets; other negative values are not an API value. */
  if (v < 0 && v != -1.0)
    return g_strdup_printf ("%g: must be -1 (unset) or >= 0", v);
  if (prop_id == PROP_MAX_VIDEO_SECS && v == 0)
    return g_strdup ("0: must be -1 (unset) or > 0");
  return NULL;
}

static void
gst_resemble_detect_sink_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (object);

  gchar *refusal = NULL;

  GST_OBJECT_LOCK (self);
  g_hash_table_remove (self->refused, pspec->name);
  switch (prop_id) {
    case PROP_API_URL:
      refusal = url_refusal (g_value_get_string (value));
      if (refusal == NULL) {
        g_free (self->api_url);
        self->api_url = g_value_dup_string (value);
        if (self->api_url == NULL)
          self->api_url = g_strdup (DEFAULT_API_URL);
      }
      break;
    case PROP_API_TOKEN:
      g_free (self->api_token);
      self->api_token = g_value_dup_string (value);
      break;
    case PROP_LOCATION:
      g_free (self->location);
      self->location = g_value_dup_string (value);
      break;
    case PROP_CONTAINER:
      self->container = g_value_get_enum (value);
      break;
    case PROP_SEGMENT_DURATION:
      self->segment_duration = g_value_get_uint64 (value);
      break;
    case PROP_MAX_FILES:
      self->max_files = g_value_get_uint (value);
      break;
    case PROP_MAX_BATCH_BYTES:
      self->max_batch_bytes = g_value_get_uint64 (value);
      break;
    case PROP_BATCH_TIMEOUT:
      self->batch_timeout = g_value_get_uint64 (value);
      break;
    case PROP_UPLOAD_MODE:
      self->upload_mode = g_value_get_enum (value);
      break;
    case PROP_CALLBACK_URL:
      refusal = url_refusal (g_value_get_string (value));
      if (refusal == NULL) {
        g_free (self->settings.callback_url);
        self->settings.callback_url = g_value_dup_string (value);
      }
      break;
    case PROP_INTELLIGENCE:
    case PROP_SEARCH_IDENTITY:
    case PROP_VISUALIZE:
    case PROP_AUDIO_SOURCE_TRACING:
    case PROP_USE_LLM:
    case PROP_ZERO_RETENTION_MODE:
      *boolean_setting (self, prop_id) = g_value_get_boolean (value) ? 1 : 0;
      break;
    case PROP_FRAME_LENGTH:
      self->settings.frame_length = g_value_get_uint (value);
      break;
    case PROP_START_REGION:
    case PROP_END_REGION:
    case PROP_MAX_VIDEO_SECS:{
      gdouble v = g_value_get_double (value);

      refusal = region_refusal (prop_id, v);
      if (refusal == NULL)
        *region_setting (self, prop_id) = v;
      break;
    }
    case PROP_POLL_INTERVAL:
      self->poll_interval = g_value_get_uint64 (value);
      break;
    case PROP_POLL_MAX_INTERVAL:
      self->poll_max_interval = g_value_get_uint64 (value);
      break;
    case PROP_POLL_TIMEOUT:
      self->poll_timeout = g_value_get_uint64 (value);
      break;
    case PROP_FETCH_RESULTS:
      self->fetch_results = g_value_get_boolean (value);
      break;
    case PROP_MAX_RETRIES:
      self->max_retries = g_value_get_uint (value);
      break;
    case PROP_MAX_IN_FLIGHT:
      self->max_in_flight = g_value_get_uint (value);
      break;
    case PROP_WAIT_ON_EOS:
      self->wait_on_eos = g_value_get_boolean (value);
      break;
    case PROP_KEEP_FILES:
      self->keep_files = g_value_get_boolean (value);
      break;
    case PROP_MAX_SPOOL_BYTES:
      self->max_spool_bytes = g_value_get_uint64 (value);
      break;
    case PROP_ASYNC:
      self->async = g_value_get_boolean (value);
      break;
    case PROP_ON_ERROR:
      self->on_error = g_value_get_enum (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  if (refusal)
    refuse_setting_locked (self, pspec, refusal);
  GST_OBJECT_UNLOCK (self);
}

static void
gst_resemble_detect_sink_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstResembleDetectSink *self = GST_RESEMBLE_DETECT_SINK (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_API_URL:
      g_value_set_string (value, self->api_url);
      break;
    case PROP_LOCATION:
      g_value_set_string (value, self->location);
      break;
    case PROP_CONTAINER:
      g_value_set_enum (value, self->container);
      break;
    case PROP_SEGMENT_DURATION:
      g_value_set_uint64 (value, self->segment_duration);
      break;
    case PROP_MAX_FILES:
      g_value_set_uint (value, self->max_files);
      break;
    case PROP_MAX_BATCH_BYTES:
      g_value_set_uint64 (value, self->max_batch_bytes);
      break;
    case PROP_BATCH_TIMEOUT:
      g_value_set_uint64 (value, self->batch_timeout);
      break;
    case PROP_UPLOAD_MODE:
      g_value_set_enum (value, self->upload_mode);
      break;
    case PROP_CALLBACK_URL:
      g_value_set_string (value, self->settings.callback_url);
      break;
    case PROP_INTELLIGENCE:
    case PROP_SEARCH_IDENTITY:
    case PROP_VISUALIZE:
    case PROP_AUDIO_SOURCE_TRACING:
    case PROP_USE_LLM:
    case PROP_ZERO_RETENTION_MODE:{
      gint v = *boolean_setting (self, prop_id);
      g_value_set_boolean (value, v == RD_SETTING_UNSET ?
          boolean_setting_default (prop_id) : v);
      break;
    }
    case PROP_FRAME_LENGTH:
      g_value_set_uint (value, self->settings.frame_length);
      break;
    case PROP_START_REGION:
    case PROP_END_REGION:
    case PROP_MAX_VIDEO_SECS:{
      gdouble v = *region_setting (self, prop_id);
      g_value_set_double (value, v < 0 ? DEFAULT_REGION : v);
      break;
    }
    case PROP_POLL_INTERVAL:
      g_value_set_uint64 (value, self->poll_interval);
      break;
    case PROP_POLL_MAX_INTERVAL:
      g_value_set_uint64 (value, self->poll_max_interval);
      break;
    case PROP_POLL_TIMEOUT:
      g_value_set_uint64 (value, self->poll_timeout);
      break;
    case PROP_FETCH_RESULTS:
      g_value_set_boolean (value, self->fetch_results);
      break;
    case PROP_MAX_RETRIES:
      g_value_set_uint (value, self->max_retries);
      break;
    case PROP_MAX_IN_FLIGHT:
      g_value_set_uint (value, self->max_in_flight);
      break;
    case PROP_WAIT_ON_EOS:
      g_value_set_boolean (value, self->wait_on_eos);
      break;
    case PROP_KEEP_FILES:
      g_value_set_boolean (value, self->keep_files);
      break;
    case PROP_MAX_SPOOL_BYTES:
      g_value_set_uint64 (value, self->max_spool_bytes);
      break;
    case PROP_ASYNC:
      g_value_set_boolean (value, self->async);
      break;
    case PROP_ON_ERROR:
      g_value_set_enum (value, self->on_error);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- class --------------------------------------------------------------- */

#define PARAM_FLAGS (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)
#define PARAM_READY (PARAM_FLAGS | GST_PARAM_MUTABLE_READY)

static void
install_boolean_setting (GObjectClass * gobject_class, guint prop_id,
    const gchar * name, const gchar * blurb, gboolean def)
{
  g_object_class_install_property (gobject_class, prop_id,
      g_param_spec_boolean (name, name, blurb, def, PARAM_FLAGS));
}

static void
install_region_setting (GObjectClass * gobject_class, guint prop_id,
    const gchar * name, const gchar * blurb)
{
  g_object_class_install_property (gobject_class, prop_id,
      g_param_spec_double (name, name, blurb, -1.0, G_MAXDOUBLE,
          DEFAULT_REGION, PARAM_FLAGS));
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

  /**
   * GstResembleDetectSink:api-url:
   *
   * Base URL of the API; `{api-url}/detect/batch` is where batches go.
   */
  g_object_class_install_property (gobject_class, PROP_API_URL,
      g_param_spec_string ("api-url", "API URL",
          "Base URL of the Resemble API (http or https); the default is the "
          "production service", DEFAULT_API_URL, PARAM_READY));
  /**
   * GstResembleDetectSink:api-token:
   *
   * Bearer token. Write-only: it is never printed, logged or readable back.
   * When unset, the RESEMBLE_API_TOKEN environment variable is used.
   */
  g_object_class_install_property (gobject_class, PROP_API_TOKEN,
      g_param_spec_string ("api-token", "API token",
          "Bearer token of the API (write-only; default: the "
          "RESEMBLE_API_TOKEN environment variable)", NULL,
          G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "Spool directory for segment files and manifests (default: a "
          "folder per element under the user cache directory)", NULL,
          PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_CONTAINER,
      g_param_spec_enum ("container", "Container",
          "Container of audio/video segments; auto picks from the caps",
          GST_TYPE_RESEMBLE_DETECT_CONTAINER, DEFAULT_CONTAINER, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_SEGMENT_DURATION,
      g_param_spec_uint64 ("segment-duration", "Segment duration",
          "Length of each audio/video segment (ns)", GST_MSECOND,
          G_MAXUINT64 - 1, DEFAULT_SEGMENT_DURATION, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_MAX_FILES,
      g_param_spec_uint ("max-files", "Max files",
          "Files per batch (the API takes at most 50)", 1, RD_BATCH_MAX_FILES,
          DEFAULT_MAX_FILES, PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_MAX_BATCH_BYTES,
      g_param_spec_uint64 ("max-batch-bytes", "Max batch bytes",
          "Bytes per batch (the API takes at most 500 MB = 500000000 bytes)",
          1, RD_BATCH_MAX_BYTES, DEFAULT_MAX_BATCH_BYTES, PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_BATCH_TIMEOUT,
      g_param_spec_uint64 ("batch-timeout", "Batch timeout",
          "Close a non-empty batch this long after its first file (ns, 0 = "
          "off)", 0, G_MAXUINT64 - 1, DEFAULT_BATCH_TIMEOUT, PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_UPLOAD_MODE,
      g_param_spec_enum ("upload-mode", "Upload mode",
          "How a batch is uploaded: repeated files[] parts or one zip",
          GST_TYPE_RESEMBLE_DETECT_UPLOAD_MODE, DEFAULT_UPLOAD_MODE,
          PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_CALLBACK_URL,
      g_param_spec_string ("callback-url", "Callback URL",
          "URL the API calls when a batch is terminal (callback_url)", NULL,
          PARAM_FLAGS));
  install_boolean_setting (gobject_class, PROP_INTELLIGENCE, "intelligence",
      "Run multimodal intelligence analysis on every file (intelligence)",
      DEFAULT_INTELLIGENCE);
  install_boolean_setting (gobject_class, PROP_SEARCH_IDENTITY,
      "search-identity", "Search the team's saved identities, audio and "
      "video (search_identity)", DEFAULT_SEARCH_IDENTITY);
  install_boolean_setting (gobject_class, PROP_VISUALIZE, "visualize",
      "Generate visualization artifacts (visualize)", DEFAULT_VISUALIZE);
  install_boolean_setting (gobject_class, PROP_AUDIO_SOURCE_TRACING,
      "audio-source-tracing", "Audio source tracing on audio files "
      "(audio_source_tracing_enabled)", DEFAULT_AUDIO_SOURCE_TRACING);
  install_boolean_setting (gobject_class, PROP_USE_LLM, "use-llm",
      "LLM-assisted video analysis (use_llm)", DEFAULT_USE_LLM);
  install_boolean_setting (gobject_class, PROP_ZERO_RETENTION_MODE,
      "zero-retention-mode", "Zero Retention Mode for every file "
      "(zero_retention_mode)", DEFAULT_ZERO_RETENTION_MODE);
  g_object_class_install_property (gobject_class, PROP_FRAME_LENGTH,
      g_param_spec_uint ("frame-length", "Frame length",
          "Window size in seconds, audio and video (frame_length; 0 = unset)",
          0, 4, DEFAULT_FRAME_LENGTH, PARAM_FLAGS));
  install_region_setting (gobject_class, PROP_START_REGION, "start-region",
      "Start of the analysed region in seconds (start_region; -1 = unset)");
  install_region_setting (gobject_class, PROP_END_REGION, "end-region",
      "End of the analysed region in seconds (end_region; -1 = unset)");
  install_region_setting (gobject_class, PROP_MAX_VIDEO_SECS,
      "max-video-secs", "Cap of the processed video duration in seconds "
      "(max_video_secs; -1 = unset)");
  g_object_class_install_property (gobject_class, PROP_POLL_INTERVAL,
      g_param_spec_uint64 ("poll-interval", "Poll interval",
          "First interval between batch status polls (ns, at least 1 s)",
          MIN_POLL_INTERVAL, G_MAXUINT64 - 1, DEFAULT_POLL_INTERVAL,
          PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_POLL_MAX_INTERVAL,
      g_param_spec_uint64 ("poll-max-interval", "Poll max interval",
          "Longest interval between polls, reached by backing off (ns)",
          MIN_POLL_INTERVAL, G_MAXUINT64 - 1, DEFAULT_POLL_MAX_INTERVAL,
          PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_POLL_TIMEOUT,
      g_param_spec_uint64 ("poll-timeout", "Poll timeout",
          "Give up on a batch not terminal after this long (ns)",
          GST_SECOND, G_MAXUINT64 - 1, DEFAULT_POLL_TIMEOUT, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_FETCH_RESULTS,
      g_param_spec_boolean ("fetch-results", "Fetch results",
          "Fetch every file's verdict once its batch is terminal",
          DEFAULT_FETCH_RESULTS, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_MAX_RETRIES,
      g_param_spec_uint ("max-retries", "Max retries",
          "Retries of a failed request (network, 5xx, 429)", 0, 100,
          DEFAULT_MAX_RETRIES, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_MAX_IN_FLIGHT,
      g_param_spec_uint ("max-in-flight", "Max in flight",
          "Batches submitted and not yet terminal", 1, 64,
          DEFAULT_MAX_IN_FLIGHT, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_WAIT_ON_EOS,
      g_param_spec_boolean ("wait-on-eos", "Wait on EOS",
          "Hold EOS until every batch is terminal or has failed",
          DEFAULT_WAIT_ON_EOS, PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_KEEP_FILES,
      g_param_spec_boolean ("keep-files", "Keep files",
          "Keep segment files after their batch is terminal",
          DEFAULT_KEEP_FILES, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_MAX_SPOOL_BYTES,
      g_param_spec_uint64 ("max-spool-bytes", "Max spool bytes",
          "Spool ceiling: past it new files are skipped with a message",
          1, G_MAXUINT64, DEFAULT_MAX_SPOOL_BYTES, PARAM_FLAGS));
  /**
   * GstResembleDetectSink:on-error:
   *
   * What a batch that cannot reach a terminal state (the API refused it or
   * could not be reached within the retries) does: `warn` posts a warning
   * and the batch-error message, and the pipeline goes on (24/7 channels;
   * the batch stays on disk); `error` makes the first such batch an element
   * error, so that a script sees it in its exit status (batch jobs).
   */
  g_object_class_install_property (gobject_class, PROP_ON_ERROR,
      g_param_spec_enum ("on-error", "On error",
          "What a failed batch does: warn (the pipeline goes on) or error "
          "(the first one is an element error)",
          GST_TYPE_RESEMBLE_DETECT_ON_ERROR, DEFAULT_ON_ERROR, PARAM_FLAGS));
  /**
   * GstResembleDetectSink:async:
   *
   * Like a base sink's: go to PAUSED asynchronously, once every pad has had
   * data. Set it to FALSE to add the element to a pipeline that is already
   * playing without the pipeline going back to PAUSED meanwhile.
   */
  g_object_class_install_property (gobject_class, PROP_ASYNC,
      g_param_spec_boolean ("async", "Async",
          "Go to PAUSED asynchronously, once every pad has had data "
          "(preroll), as sinks do", DEFAULT_ASYNC, PARAM_FLAGS));

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
      "production service " DEFAULT_API_URL ", with the token of api-token "
      "or RESEMBLE_API_TOKEN). Posts element messages: "
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
  segmenter_quark = g_quark_from_static_string ("resembledetect-segmenter");
  GST_DEBUG_CATEGORY_INIT (gst_resemble_detect_sink_debug, "resembledetect", 0,
      "Resemble AI deepfake detection sink");
}

static void
gst_resemble_detect_sink_init (GstResembleDetectSink * self)
{
  g_mutex_init (&self->streams_lock);
  g_cond_init (&self->streams_cond);
  g_mutex_init (&self->batch_lock);
  g_mutex_init (&self->client_lock);
  self->file_counters = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, NULL);
  self->api_url = g_strdup (DEFAULT_API_URL);
  self->container = DEFAULT_CONTAINER;
  self->segment_duration = DEFAULT_SEGMENT_DURATION;
  self->max_files = DEFAULT_MAX_FILES;
  self->max_batch_bytes = DEFAULT_MAX_BATCH_BYTES;
  self->batch_timeout = DEFAULT_BATCH_TIMEOUT;
  self->upload_mode = DEFAULT_UPLOAD_MODE;
  rd_settings_init (&self->settings);
  self->poll_interval = DEFAULT_POLL_INTERVAL;
  self->poll_max_interval = DEFAULT_POLL_MAX_INTERVAL;
  self->poll_timeout = DEFAULT_POLL_TIMEOUT;
  self->fetch_results = DEFAULT_FETCH_RESULTS;
  self->max_retries = DEFAULT_MAX_RETRIES;
  self->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
  self->wait_on_eos = DEFAULT_WAIT_ON_EOS;
  self->keep_files = DEFAULT_KEEP_FILES;
  self->max_spool_bytes = DEFAULT_MAX_SPOOL_BYTES;
  self->async = DEFAULT_ASYNC;
  self->on_error = DEFAULT_ON_ERROR;
  self->refused = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
  self->next_batch_index = 1;
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

  g_free (self->api_url);
  if (self->api_token)
    memset (self->api_token, 0, strlen (self->api_token));
  g_free (self->api_token);
  g_free (self->location);
  rd_settings_clear (&self->settings);
  g_clear_pointer (&self->open_batch, rd_batch_free);
  g_free (self->spool_dir);
  g_free (self->incoming_dir);
  g_mutex_clear (&self->streams_lock);
  g_cond_clear (&self->streams_cond);
  g_mutex_clear (&self->batch_lock);
  g_mutex_clear (&self->client_lock);
  g_hash_table_unref (self->file_counters);
  g_hash_table_unref (self->refused);
  if (self->client_module)
    g_module_close (self->client_module);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}
