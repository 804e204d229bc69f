/* The streaming side of the element's pads (see streams.h).
 *
 * Nothing waits on a streaming thread for another pad: when the element has
 * more than one pad, the caps and data of an audio/video pad go into a
 * queue, and the queue's output waits at the stream's gate until its
 * segmenter is linked. The one pad of an element that has no other goes
 * straight into its segmenter (splitmuxsink has a queue of its own per
 * input), with its gate on the pad, as an image pad's: a second thread
 * hop per buffer was most of the element's cost over splitmuxsink alone.
 * The choice is made at each stream's first caps. A group member whose
 * queue fills while the group waits, when the thread that fills it also
 * feeds a member without caps (one demuxer thread feeding several pads),
 * ends the wait: the segmenter is made without that member, which later
 * gets one of its own (a running muxer takes no new pads).
 *
 * Like every sink, the element prerolls: it goes to PAUSED asynchronously
 * and commits once every pad has had data (or EOS, or GAP), and in PAUSED
 * that data waits at the gates until PLAYING: the queue's output of an
 * audio/video pad, the pad itself for snapshots. The child sinks cannot do
 * it for us: the splitmuxsinks come later, with the caps. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <glib/gstdio.h>
#include <gst/video/video.h>

#include "streams.h"
#include "segmenter.h"
#include "snapshot.h"

GST_DEBUG_CATEGORY_EXTERN (gst_resemble_detect_sink_debug);
#define GST_CAT_DEFAULT gst_resemble_detect_sink_debug

/* The segmenter of the video pad and the audio pads that share its files:
 * made once every member has caps (or has ended without, or the wait was
 * given up). */
typedef enum
{
  GROUP_STATE_NONE,
  GROUP_STATE_READY,
  GROUP_STATE_FAILED,
} GroupState;

typedef struct
{
  RdStreams *streams;           /* not a reference: it owns us */
  GstPad *pad;                  /* our ghost pad (owned by the element) */
  gchar *name;                  /* the pad's name, prefix of its files */
  RdMediaType media_type;

  /* audio/video: pad -> queue -> segmenter, or with no other pad at its
   * first caps, pad -> segmenter (NULL queue); its streaming thread and a
   * locked read elsewhere */
  GstElement *queue;
  RdSegmenter *segmenter;       /* shared by the members of a group */
  guint member;                 /* our index in the segmenter */
  GstCaps *caps;                /* the first caps, until detached */
  gboolean solo;                /* has a segmenter of its own */
  gboolean failed;              /* its segmenter could not be made */
  gboolean linked;              /* its segmenter runs: the gate may open */
  GstSegment segment;           /* its streaming thread only */
  GstClockTime last_start;      /* running time of the last buffer */
  GstClockTime last_end;        /* running time where the input ended */
  GstClockTime key_request;     /* video: running time of the next cut */
  guint key_requests;           /* video: requests sent upstream */

  /* image: pad -> snapshot sink */
  GstElement *appsink;

  gboolean finished;            /* EOS, possibly before any caps */
  gboolean flushing;            /* between FLUSH_START and FLUSH_STOP */
  gboolean released;            /* its pad is being released */
  gboolean prerolled;           /* data (or EOS, GAP) came since PAUSED */
  gpointer feeder;              /* GThread that last pushed into the pad */
} Stream;

struct _RdStreams
{
  GstElement *element;          /* not a reference: it owns us */
  RdStreamsCallbacks callbacks;
  gpointer user_data;

  GMutex lock;
  GCond cond;                   /* wakes the gates */
  GList *streams;
  gboolean have_video;
  guint next_audio_pad;
  guint next_image_pad;
  GroupState group_state;
  gboolean group_gave_up;       /* a member's queue filled while waiting */
  gboolean flushing;            /* going to READY: every gate opens */
  gboolean need_preroll;        /* PAUSED: data waits at the gates */
  gboolean async_pending;       /* our ASYNC_START awaits its ASYNC_DONE */
  GstResembleDetectContainer container;
  GstClockTime segment_duration;
};

#define LOCK(s) g_mutex_lock (&(s)->lock)
#define UNLOCK(s) g_mutex_unlock (&(s)->lock)
#define WAIT(s) g_cond_wait (&(s)->cond, &(s)->lock)
#define BROADCAST(s) g_cond_broadcast (&(s)->cond)

RdStreams *
rd_streams_new (GstElement * element, const RdStreamsCallbacks * callbacks,
    gpointer user_data)
{
  RdStreams *streams = g_new0 (RdStreams, 1);

  streams->element = element;
  streams->callbacks = *callbacks;
  streams->user_data = user_data;
  g_mutex_init (&streams->lock);
  g_cond_init (&streams->cond);
  return streams;
}

void
rd_streams_free (RdStreams * streams)
{
  g_mutex_clear (&streams->lock);
  g_cond_clear (&streams->cond);
  g_free (streams);
}

void
rd_streams_configure (RdStreams * streams,
    GstResembleDetectContainer container, GstClockTime segment_duration)
{
  LOCK (streams);
  streams->container = container;
  streams->segment_duration = segment_duration;
  UNLOCK (streams);
}

/* ---- segmenters ---------------------------------------------------------- */

static gboolean
is_group_member (RdStreams * streams, Stream * stream)
{
  return stream->appsink == NULL && !stream->solo && (streams->have_video
      || stream->media_type == RD_MEDIA_TYPE_VIDEO);
}

static gchar *
segment_location (const gchar * basename, gpointer user_data)
{
  RdStreams *streams = user_data;

  return streams->callbacks.location (basename, streams->user_data);
}

/* Makes the segmenter of @members (the leader first). Called with the
 * lock; the members are linked to it, not yet started. */
static RdSegmenter *
segmenter_create_locked (RdStreams * streams, GPtrArray * members,
    GError ** error)
{
  g_autofree RdSegmenterMember *info = g_new0 (RdSegmenterMember,
      members->len);
  RdSegmenter *segmenter;

  for (guint i = 0; i < members->len; i++) {
    Stream *member = members->pdata[i];

    info[i].caps = member->caps;
    info[i].name = member->name;
    info[i].media_type = member->media_type;
    info[i].source = member->queue ?
        gst_element_get_static_pad (member->queue, "src") :
        GST_PAD_CAST (gst_proxy_pad_get_internal (GST_PROXY_PAD (member->pad)));
    info[i].finished = member->finished;
    info[i].last_start = member->last_start;
    info[i].last_end = member->last_end;
  }
  segmenter = rd_segmenter_new (GST_BIN_CAST (streams->element),
      streams->container, streams->segment_duration, info, members->len,
      segment_location, streams, error);
  for (guint i = 0; i < members->len; i++) {
    Stream *member = members->pdata[i];

    gst_object_unref (info[i].source);
    member->segmenter = segmenter;
    member->member = i;
  }
  return segmenter;
}

/* Makes every segmenter that can be made now: one of its own for each
 * stream with caps outside the group (audio without video, or a member
 * late for the group), and the group's once it is complete. Returns them,
 * for the caller to start outside the lock. On failure the streams
 * concerned are marked failed (their gates drop their data). */
static GList *
segmenters_create_locked (RdStreams * streams, GError ** error)
{
  g_autoptr (GPtrArray) members = g_ptr_array_new ();
  GList *created = NULL;
  RdSegmenter *segmenter;
  gboolean complete = TRUE;

  if (streams->flushing)
    return NULL;
  for (GList * l = streams->streams; l; l = l->next) {
    Stream *s = l->data;

    if (s->appsink || s->segmenter || s->caps == NULL || s->released
        || s->failed)
      continue;
    if (is_group_member (streams, s)
        && streams->group_state == GROUP_STATE_NONE)
      continue;
    s->solo = TRUE;
    g_ptr_array_set_size (members, 0);
    g_ptr_array_add (members, s);
    segmenter = segmenter_create_locked (streams, members, error);
    if (segmenter == NULL) {
      s->failed = TRUE;
      return created;
    }
    created = g_list_prepend (created, segmenter);
  }

  if (streams->group_state != GROUP_STATE_NONE)
    return created;
  g_ptr_array_set_size (members, 0);
  for (GList * l = streams->streams; l; l = l->next) {
    Stream *s = l->data;

    if (!is_group_member (streams, s) || s->released)
      continue;
    if (s->caps == NULL)
      complete &= s->finished;
    else if (s->media_type == RD_MEDIA_TYPE_VIDEO)
      g_ptr_array_insert (members, 0, s);
    else
      g_ptr_array_add (members, s);
  }
  if (members->len == 0 || !(complete || streams->group_gave_up))
    return created;
  segmenter = segmenter_create_locked (streams, members, error);
  streams->group_state = segmenter ? GROUP_STATE_READY : GROUP_STATE_FAILED;
  if (segmenter == NULL) {
    for (guint i = 0; i < members->len; i++)
      ((Stream *) members->pdata[i])->failed = TRUE;
    return created;
  }
  return g_list_prepend (created, segmenter);
}

/* Makes what segmenters can be made, starts them, and opens the gates of
 * their streams. Any thread; never waits for other streams. */
static void
segmenters_update (RdStreams * streams)
{
  g_autoptr (GError) error = NULL;
  GList *created;

  LOCK (streams);
  created = segmenters_create_locked (streams, &error);
  UNLOCK (streams);

  for (GList * l = created; l; l = l->next)
    rd_segmenter_start (l->data);

  LOCK (streams);
  for (GList * l = streams->streams; l; l = l->next) {
    Stream *s = l->data;
    if (s->segmenter && g_list_find (created, s->segmenter))
      s->linked = TRUE;
  }
  BROADCAST (streams);
  UNLOCK (streams);
  g_list_free (created);

  if (error)
    streams->callbacks.error (error, "the pad's segment files cannot be "
        "written", streams->user_data);
}

/* The first caps of @stream: its segmenter is made now if it can be.
 * FALSE when the caps cannot be segmented (refused container). */
static gboolean
stream_set_caps (RdStreams * streams, Stream * stream, GstCaps * caps)
{
  gboolean ok;

  LOCK (streams);
  if (stream->segmenter || stream->caps) {
    UNLOCK (streams);
    return TRUE;
  }
  gst_caps_replace (&stream->caps, caps);
  UNLOCK (streams);

  segmenters_update (streams);

  LOCK (streams);
  ok = !stream->failed;
  UNLOCK (streams);
  return ok;
}

/* Unlinks @stream from its segmenter. Returns the segmenter when no other
 * stream feeds it (the caller drops it, without the lock: splitmuxsink's
 * threads post messages); when others still do, @eos_pad is the
 * segmenter's pad of @stream, which the caller ends with an EOS so that the
 * others' files still close. Called with the lock. */
static RdSegmenter *
stream_detach_locked (Stream * stream, GstPad ** eos_pad)
{
  RdSegmenter *segmenter = stream->segmenter;
  GstPad *pad;
  gboolean empty;

  gst_clear_caps (&stream->caps);
  stream->finished = FALSE;
  stream->solo = FALSE;
  stream->linked = FALSE;
  stream->segmenter = NULL;
  if (segmenter == NULL)
    return NULL;
  pad = rd_segmenter_detach (segmenter, stream->member, &empty);
  if (eos_pad)
    *eos_pad = pad;
  else
    gst_clear_object (&pad);
  return empty ? segmenter : NULL;
}

/* A member's queue is full while the group waits for another member's
 * caps. When this very thread also feeds that member, it cannot bring the
 * caps while it waits here: the segmenter is made without them. Other
 * threads just wait, as they would on any full queue. */
static void
queue_overrun_cb (GstElement * queue, gpointer user_data)
{
  Stream *stream = user_data;
  RdStreams *streams = stream->streams;
  GThread *thread = g_thread_self ();
  gboolean give_up = FALSE;

  LOCK (streams);
  if (!stream->linked && stream->caps && is_group_member (streams, stream)
      && streams->group_state == GROUP_STATE_NONE && !streams->group_gave_up) {
    for (GList * l = streams->streams; l; l = l->next) {
      Stream *s = l->data;
      if (is_group_member (streams, s) && s->caps == NULL && !s->finished
          && g_atomic_pointer_get (&s->feeder) == thread)
        give_up = TRUE;
    }
  }
  streams->group_gave_up |= give_up;
  UNLOCK (streams);
  if (give_up) {
    GST_WARNING_OBJECT (streams->element, "pad %s: queue full, and the thread "
        "that fills it also feeds a pad without caps: segmenting without "
        "that pad", stream->name);
    segmenters_update (streams);
  }
}

/* ---- preroll and gates --------------------------------------------------- */

/* The preroll is complete when every pad has had data: calls the prerolled
 * callback (see streams.h for why under the lock). Called with the lock. */
static void
preroll_check_locked (RdStreams * streams)
{
  if (!streams->async_pending)
    return;
  for (GList * l = streams->streams; l; l = l->next) {
    Stream *s = l->data;
    if (!s->prerolled && !s->released)
      return;
  }
  streams->async_pending = FALSE;
  GST_DEBUG_OBJECT (streams->element, "prerolled");
  streams->callbacks.prerolled (streams->user_data);
}

static gboolean
gate_closed_locked (RdStreams * streams, Stream * stream, gboolean is_data)
{
  if (streams->flushing || stream->flushing || stream->released
      || stream->failed)
    return FALSE;
  /* a segmenter is on its way once the stream has caps */
  if (stream->appsink == NULL && !stream->linked)
    return stream->caps != NULL;
  return is_data && streams->need_preroll;
}

/* Waits while the gate is closed; FALSE when the data must be dropped. */
static gboolean
gate_wait_locked (RdStreams * streams, Stream * stream, gboolean is_data)
{
  while (gate_closed_locked (streams, stream, is_data))
    WAIT (streams);
  return !(streams->flushing || stream->flushing || stream->released
      || stream->failed);
}

/* On the output of an audio/video pad's queue (the queue's thread). */
static GstPadProbeReturn
segment_gate_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Stream *stream = user_data;
  RdStreams *streams = stream->streams;
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
  LOCK (streams);
  pass = gate_wait_locked (streams, stream, is_data);
  UNLOCK (streams);
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
  if (!GST_CLOCK_TIME_IS_VALID (start_rt) || !GST_CLOCK_TIME_IS_VALID (end)
      || (GST_CLOCK_TIME_IS_VALID (stream->last_end)
          && end <= stream->last_end))
    return;
  stream->last_start = start_rt;
  stream->last_end = end;
  if (stream->segmenter)
    rd_segmenter_record_input (stream->segmenter, stream->member, start_rt,
        end);
}

/* A video pad asks its encoder for the keyframes that start segments
 * itself, on its input, where splitmuxsink would ask on the queue's output:
 * the queue lets the encoder run up to a second ahead (and in PAUSED it
 * fills before the first buffer reaches splitmuxsink), so a request made
 * there arrives after the frame it names was encoded, and the segment runs
 * long. The first buffer asks for a keyframe one segment later; each
 * keyframe at or past that time (where splitmuxsink cuts) asks for the
 * next. Returns the request to push upstream, or NULL. Streaming thread. */
static GstEvent *
stream_key_request (RdStreams * streams, Stream * stream, GstBuffer * buffer)
{
  GstClockTime pts = GST_BUFFER_PTS (buffer), rt;

  if (stream->media_type != RD_MEDIA_TYPE_VIDEO
      || stream->segment.format != GST_FORMAT_TIME
      || !GST_CLOCK_TIME_IS_VALID (pts))
    return NULL;
  rt = gst_segment_to_running_time (&stream->segment, GST_FORMAT_TIME, pts);
  if (!GST_CLOCK_TIME_IS_VALID (rt))
    return NULL;
  if (GST_CLOCK_TIME_IS_VALID (stream->key_request)
      && (rt < stream->key_request
          || GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT)))
    return NULL;
  stream->key_request = rt + streams->segment_duration;
  GST_DEBUG_OBJECT (stream->pad, "asking upstream for a keyframe at %"
      GST_TIME_FORMAT, GST_TIME_ARGS (stream->key_request));
  return gst_video_event_new_upstream_force_key_unit (stream->key_request,
      TRUE, ++stream->key_requests);
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

static void
stream_set_finished_locked (Stream * stream, gboolean finished)
{
  stream->finished = finished;
  if (!finished)
    stream->last_start = stream->last_end = GST_CLOCK_TIME_NONE;
  if (stream->segmenter)
    rd_segmenter_set_finished (stream->segmenter, stream->member, finished);
}

/* What every pad notes of its input, on upstream's thread: the preroll,
 * the input's end (@type EOS), the time of each buffer and the keyframes
 * to ask for, and the gates that wait on the pad itself (an image pad's,
 * a segmented pad's without a queue). @buffer is NULL for an event, or
 * the last buffer of a list. FALSE when the data must be dropped. */
static gboolean
stream_input (Stream * stream, GstPad * pad, GstEventType type,
    GstBuffer * buffer, gboolean is_data)
{
  RdStreams *streams = stream->streams;
  GstEvent *key_request = NULL;
  gboolean pass = TRUE;

  LOCK (streams);
  if (type == GST_EVENT_EOS)
    stream_set_finished_locked (stream, TRUE);
  if (stream->appsink == NULL && buffer) {
    stream_record_input_locked (stream, buffer);
    key_request = stream_key_request (streams, stream, buffer);
  }
  if (G_UNLIKELY (!stream->prerolled)) {
    stream->prerolled = TRUE;
    preroll_check_locked (streams);
  }
  if ((stream->appsink || stream->queue == NULL) && is_data)
    pass = gate_wait_locked (streams, stream, TRUE);
  UNLOCK (streams);
  if (key_request)
    gst_pad_push_event (pad, key_request);
  return pass;
}

/* Which thread feeds the pad (see queue_overrun_cb). */
static inline void
stream_note_feeder (Stream * stream)
{
  GThread *self = g_thread_self ();

  if (g_atomic_pointer_get (&stream->feeder) != self)
    g_atomic_pointer_set (&stream->feeder, self);
}

/* An image pad's data and events (a pad probe: its ghost pad's target is
 * the appsink from the start). */
static GstPadProbeReturn
stream_input_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Stream *stream = user_data;
  GstBuffer *buffer = NULL;
  GstEventType type = GST_EVENT_UNKNOWN;

  stream_note_feeder (stream);
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    type = GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info));
    if (type != GST_EVENT_GAP && type != GST_EVENT_EOS)
      return GST_PAD_PROBE_OK;
  } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST (info);
    guint n = gst_buffer_list_length (list);

    if (n > 0)
      buffer = gst_buffer_list_get (list, n - 1);
  } else {
    buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  }
  if (stream_input (stream, pad, type, buffer, type == GST_EVENT_UNKNOWN))
    return GST_PAD_PROBE_OK;
  if (type == GST_EVENT_UNKNOWN)
    GST_PAD_PROBE_INFO_FLOW_RETURN (info) = GST_FLOW_FLUSHING;
  return GST_PAD_PROBE_DROP;
}

/* An audio/video pad's data: its chain functions, which then do what the
 * ghost pad's own do. No pad probe on these pads: a probe costs every
 * buffer a walk of the pad's hook list. */
static GstFlowReturn
segment_pad_chain (GstPad * pad, GstObject * parent, GstBuffer * buffer)
{
  Stream *stream = gst_pad_get_element_private (pad);

  stream_note_feeder (stream);
  if (is_header_in_caps (pad, buffer)) {
    gst_buffer_unref (buffer);
    return GST_FLOW_OK;
  }
  if (!stream_input (stream, pad, GST_EVENT_UNKNOWN, buffer, TRUE)) {
    gst_buffer_unref (buffer);
    return GST_FLOW_FLUSHING;
  }
  return gst_proxy_pad_chain_default (pad, parent, buffer);
}

static GstFlowReturn
segment_pad_chain_list (GstPad * pad, GstObject * parent, GstBufferList * list)
{
  Stream *stream = gst_pad_get_element_private (pad);
  guint n = gst_buffer_list_length (list);

  stream_note_feeder (stream);
  if (!stream_input (stream, pad, GST_EVENT_UNKNOWN,
          n > 0 ? gst_buffer_list_get (list, n - 1) : NULL, TRUE)) {
    gst_buffer_list_unref (list);
    return GST_FLOW_FLUSHING;
  }
  return gst_proxy_pad_chain_list_default (pad, parent, list);
}

/* ---- flushes and events -------------------------------------------------- */

static void
stream_set_flushing (RdStreams * streams, Stream * stream, gboolean flushing)
{
  LOCK (streams);
  stream->flushing = flushing;
  if (!flushing)
    stream_set_finished_locked (stream, FALSE);
  BROADCAST (streams);
  UNLOCK (streams);
}

static GstPadProbeReturn
image_pad_flush_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Stream *stream = user_data;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP)
    stream->streams->callbacks.flushed (stream->streams->user_data);
  stream_set_flushing (stream->streams, stream,
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
stream_restart_segmenter (RdStreams * streams, Stream * stream)
{
  g_autoptr (GstCaps) caps = NULL;
  g_autofree gchar *incomplete = NULL;
  RdSegmenter *drop = NULL;

  LOCK (streams);
  if (stream->solo && stream->segmenter && stream->caps && !streams->flushing) {
    incomplete = rd_segmenter_dup_open_location (stream->segmenter);
    caps = gst_caps_ref (stream->caps);
    drop = stream_detach_locked (stream, NULL);
    stream->caps = gst_caps_ref (caps);
    stream->solo = TRUE;
  }
  UNLOCK (streams);

  if (drop == NULL)
    return;
  rd_segmenter_drop_for_replacement (drop);
  if (incomplete)
    g_unlink (incomplete);
  GST_DEBUG_OBJECT (streams->element, "pad %s: new segmenter after a flush",
      stream->name);
  segmenters_update (streams);
}

/* Until its segmenter or queue is linked, an audio/video pad has nothing
 * behind it to ask: its template says what it takes. */
static gboolean
segment_pad_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  g_autoptr (GstPad) internal = GST_PAD_CAST (gst_proxy_pad_get_internal
      (GST_PROXY_PAD (pad)));

  if (gst_pad_is_linked (internal))
    return gst_pad_query_default (pad, parent, query);
  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_CAPS:{
      GstCaps *filter, *caps = gst_pad_get_pad_template_caps (pad);

      gst_query_parse_caps (query, &filter);
      if (filter) {
        GstCaps *both = gst_caps_intersect_full (filter, caps,
            GST_CAPS_INTERSECT_FIRST);

        gst_caps_unref (caps);
        caps = both;
      }
      gst_query_set_caps_result (query, caps);
      gst_caps_unref (caps);
      return TRUE;
    }
    case GST_QUERY_ACCEPT_CAPS:{
      GstCaps *caps, *templ = gst_pad_get_pad_template_caps (pad);

      gst_query_parse_accept_caps (query, &caps);
      gst_query_set_accept_caps_result (query,
          gst_caps_can_intersect (caps, templ));
      gst_caps_unref (templ);
      return TRUE;
    }
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}

/* Before the first caps of an audio/video stream (its streaming thread,
 * before any data): with other pads in the element, its data goes through
 * a queue of its own, so that one upstream thread feeding several pads
 * never waits at one pad's gate for another pad; alone, it goes straight
 * to its segmenter. A queue, once there, stays until the pad goes. */
static void
stream_attach_input (RdStreams * streams, Stream * stream)
{
  g_autoptr (GstPad) internal = NULL;
  g_autoptr (GstPad) queue_sink = NULL;
  g_autoptr (GstPad) queue_src = NULL;
  GstElement *queue;
  gboolean alone;

  LOCK (streams);
  alone = streams->streams->next == NULL;
  if (stream->queue || stream->caps || alone) {
    UNLOCK (streams);
    return;
  }
  UNLOCK (streams);

  queue = gst_element_factory_make ("queue", NULL);
  queue_sink = gst_element_get_static_pad (queue, "sink");
  queue_src = gst_element_get_static_pad (queue, "src");
  gst_pad_add_probe (queue_src, GST_PAD_PROBE_TYPE_BUFFER |
      GST_PAD_PROBE_TYPE_BUFFER_LIST | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      segment_gate_probe, stream, NULL);
  g_signal_connect (queue, "overrun", G_CALLBACK (queue_overrun_cb), stream);
  gst_bin_add (GST_BIN_CAST (streams->element), queue);
  internal = GST_PAD_CAST (gst_proxy_pad_get_internal (GST_PROXY_PAD
          (stream->pad)));
  gst_pad_link (internal, queue_sink);
  gst_element_sync_state_with_parent (queue);
  LOCK (streams);
  stream->queue = queue;
  UNLOCK (streams);
  GST_DEBUG_OBJECT (streams->element, "pad %s: through a queue (the element "
      "has other pads)", stream->name);
}

static gboolean
segment_pad_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  Stream *stream = gst_pad_get_element_private (pad);
  RdStreams *streams = stream->streams;

  /* a flush comes from whichever thread seeks */
  if (GST_EVENT_TYPE (event) != GST_EVENT_FLUSH_START
      && GST_EVENT_TYPE (event) != GST_EVENT_FLUSH_STOP)
    stream_note_feeder (stream);
  if (GST_EVENT_TYPE (event) == GST_EVENT_GAP
      || GST_EVENT_TYPE (event) == GST_EVENT_EOS)
    stream_input (stream, pad, GST_EVENT_TYPE (event), NULL, FALSE);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;

      gst_event_parse_caps (event, &caps);
      stream_attach_input (streams, stream);
      if (!stream_set_caps (streams, stream, caps)) {
        gst_event_unref (event);
        return FALSE;
      }
      break;
    }
    case GST_EVENT_EOS:{
      gboolean no_sink = TRUE;

      LOCK (streams);
      for (GList * l = streams->streams; l; l = l->next) {
        Stream *s = l->data;
        /* with caps and no failure, a segmenter is on its way */
        if (!s->finished || s->segmenter || s->appsink || (s->caps
                && !s->failed))
          no_sink = FALSE;
      }
      UNLOCK (streams);
      /* no child sink exists to post EOS: every stream ended before caps */
      if (no_sink) {
        gst_event_unref (event);
        streams->callbacks.ended_without_sinks (streams->user_data);
        return TRUE;
      }
      /* a stream that ends before its caps must not hold up the others */
      segmenters_update (streams);
      break;
    }
    case GST_EVENT_FLUSH_START:
      stream_set_flushing (streams, stream, TRUE);
      break;
    case GST_EVENT_FLUSH_STOP:
      stream->key_request = GST_CLOCK_TIME_NONE;
      streams->callbacks.flushed (streams->user_data);
      stream_restart_segmenter (streams, stream);
      stream_set_flushing (streams, stream, FALSE);
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
  g_free (stream);
}

static gchar *
snapshot_location (const gchar * basename, gpointer user_data)
{
  RdStreams *streams = user_data;

  return streams->callbacks.location (basename, streams->user_data);
}

static void
snapshot_closed (const RdMediaFile * file, gpointer user_data)
{
  RdStreams *streams = user_data;

  streams->callbacks.file_closed (file, streams->user_data);
}

static void
snapshot_error (const GError * error, const gchar * debug, gpointer user_data)
{
  RdStreams *streams = user_data;

  streams->callbacks.error (error, debug, streams->user_data);
}

static const RdSnapshotCallbacks snapshot_callbacks = {
  snapshot_location, snapshot_closed, snapshot_error,
};

/* The stream's name and media type for a pad of @templ; FALSE when taken. */
static gboolean
stream_name_locked (RdStreams * streams, Stream * stream,
    const gchar * templ_name, const gchar * req_name)
{
  gboolean is_audio = g_str_equal (templ_name, "audio_%u");
  guint *next = is_audio ? &streams->next_audio_pad : &streams->next_image_pad;
  guint number;

  if (g_str_equal (templ_name, "video")) {
    if (streams->have_video)
      return FALSE;
    streams->have_video = TRUE;
    stream->media_type = RD_MEDIA_TYPE_VIDEO;
    stream->name = g_strdup ("video");
    return TRUE;
  }
  if (req_name && sscanf (req_name, is_audio ? "audio_%u" : "image_%u",
          &number) == 1) {
    for (GList * l = streams->streams; l; l = l->next) {
      if (g_str_equal (((Stream *) l->data)->name, req_name))
        return FALSE;
    }
    *next = MAX (*next, number + 1);
  } else {
    number = (*next)++;
  }
  stream->media_type = is_audio ? RD_MEDIA_TYPE_AUDIO : RD_MEDIA_TYPE_IMAGE;
  stream->name = g_strdup_printf (is_audio ? "audio_%u" : "image_%u", number);
  return TRUE;
}

GstPad *
rd_streams_request_pad (RdStreams * streams, GstPadTemplate * templ,
    const gchar * req_name)
{
  g_autoptr (GstPad) target = NULL;
  Stream *stream = g_new0 (Stream, 1);
  GstElement *child;
  GstPad *pad;

  stream->streams = streams;
  LOCK (streams);
  if (!stream_name_locked (streams, stream,
          GST_PAD_TEMPLATE_NAME_TEMPLATE (templ), req_name)) {
    UNLOCK (streams);
    GST_WARNING_OBJECT (streams->element, "pad %s is taken (one video pad at "
        "most)", req_name ? req_name : GST_PAD_TEMPLATE_NAME_TEMPLATE (templ));
    g_free (stream);
    return NULL;
  }
  if (stream->media_type == RD_MEDIA_TYPE_IMAGE) {
    child = rd_snapshot_sink_new (stream->name, &snapshot_callbacks, streams);
    stream->appsink = child;
  } else {
    /* a queue, or the segmenter, comes with the first caps */
    child = NULL;
  }
  if (child) {
    gst_bin_add (GST_BIN_CAST (streams->element), child);
    target = gst_element_get_static_pad (child, "sink");
    pad = gst_ghost_pad_new_from_template (stream->name, target, templ);
  } else {
    pad = gst_ghost_pad_new_no_target_from_template (stream->name, templ);
    gst_pad_set_query_function (pad, segment_pad_query);
  }
  gst_pad_set_element_private (pad, stream);
  if (stream->appsink) {
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER |
        GST_PAD_PROBE_TYPE_BUFFER_LIST | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
        stream_input_probe, stream, NULL);
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_EVENT_FLUSH,
        image_pad_flush_probe, stream, NULL);
  } else {
    gst_pad_set_chain_function (pad, segment_pad_chain);
    gst_pad_set_chain_list_function (pad, segment_pad_chain_list);
    gst_pad_set_event_function (pad, segment_pad_event);
  }
  gst_segment_init (&stream->segment, GST_FORMAT_UNDEFINED);
  stream->last_start = stream->last_end = GST_CLOCK_TIME_NONE;
  stream->key_request = GST_CLOCK_TIME_NONE;
  stream->pad = pad;
  streams->streams = g_list_append (streams->streams, stream);
  UNLOCK (streams);

  if (child)
    gst_element_sync_state_with_parent (child);
  gst_pad_set_active (pad, TRUE);
  gst_element_add_pad (streams->element, pad);
  return pad;
}

void
rd_streams_release_pad (RdStreams * streams, GstPad * pad)
{
  Stream *stream = gst_pad_get_element_private (pad);
  GstPad *eos_pad = NULL;
  RdSegmenter *drop;
  GstElement *child;

  /* a streaming thread waiting at the stream's gate must leave before the
   * pad can be deactivated */
  LOCK (streams);
  stream->released = TRUE;
  BROADCAST (streams);
  UNLOCK (streams);
  gst_pad_set_active (pad, FALSE);

  LOCK (streams);
  streams->streams = g_list_remove (streams->streams, stream);
  if (stream->media_type == RD_MEDIA_TYPE_VIDEO)
    streams->have_video = FALSE;
  drop = stream_detach_locked (stream, &eos_pad);
  /* the others no longer wait for it */
  BROADCAST (streams);
  UNLOCK (streams);

  if (eos_pad) {
    gst_pad_send_event (eos_pad, gst_event_new_eos ());
    gst_object_unref (eos_pad);
  }
  if (drop)
    rd_segmenter_drop (drop);
  child = stream->queue ? stream->queue : stream->appsink;
  if (child) {
    gst_element_set_state (child, GST_STATE_NULL);
    gst_bin_remove (GST_BIN_CAST (streams->element), child);
  }
  gst_element_remove_pad (streams->element, pad);
  stream_free (stream);
  segmenters_update (streams);
  /* the preroll may have waited for this pad only */
  LOCK (streams);
  preroll_check_locked (streams);
  UNLOCK (streams);
}

/* ---- state changes and messages ------------------------------------------ */

gboolean
rd_streams_prepare (RdStreams * streams, gboolean async)
{
  gboolean pending;

  LOCK (streams);
  streams->flushing = FALSE;
  streams->need_preroll = TRUE;
  streams->group_state = GROUP_STATE_NONE;
  streams->group_gave_up = FALSE;
  for (GList * l = streams->streams; l; l = l->next) {
    Stream *s = l->data;
    s->prerolled = FALSE;
    s->failed = FALSE;
  }
  streams->async_pending = async && streams->streams != NULL;
  pending = streams->async_pending;
  UNLOCK (streams);
  return pending;
}

gboolean
rd_streams_prerolling (RdStreams * streams)
{
  gboolean pending;

  LOCK (streams);
  pending = streams->async_pending;
  UNLOCK (streams);
  return pending;
}

void
rd_streams_set_playing (RdStreams * streams, gboolean playing)
{
  LOCK (streams);
  streams->need_preroll = !playing;
  BROADCAST (streams);
  UNLOCK (streams);
}

/* The segmenters, each once, with a reference. */
static GList *
streams_ref_segmenters (RdStreams * streams)
{
  GList *segmenters = NULL;

  LOCK (streams);
  for (GList * l = streams->streams; l; l = l->next) {
    Stream *s = l->data;
    if (s->segmenter && !g_list_find (segmenters, s->segmenter))
      segmenters = g_list_prepend (segmenters, rd_segmenter_ref (s->segmenter));
  }
  UNLOCK (streams);
  return segmenters;
}

gboolean
rd_streams_stop (RdStreams * streams)
{
  GList *segmenters = NULL;
  gboolean pending;

  LOCK (streams);
  streams->flushing = TRUE;
  streams->need_preroll = FALSE;
  pending = streams->async_pending;
  streams->async_pending = FALSE;
  BROADCAST (streams);
  UNLOCK (streams);
  segmenters = streams_ref_segmenters (streams);
  /* before our bin stops them (see rd_segmenter_interrupt) */
  for (GList * l = segmenters; l; l = l->next)
    rd_segmenter_interrupt (l->data);
  g_list_free_full (segmenters, (GDestroyNotify) rd_segmenter_unref);
  return pending;
}

GList *
rd_streams_repeat_eos (RdStreams * streams)
{
  GList *segmenters = streams_ref_segmenters (streams), *messages = NULL;

  for (GList * l = segmenters; l; l = l->next) {
    GstMessage *eos = rd_segmenter_repeat_eos (l->data);
    if (eos)
      messages = g_list_prepend (messages, eos);
  }
  g_list_free_full (segmenters, (GDestroyNotify) rd_segmenter_unref);
  return messages;
}

void
rd_streams_set_times (RdStreams * streams, GstClockTime base_time,
    GstClockTime start_time)
{
  GList *segmenters = streams_ref_segmenters (streams);

  for (GList * l = segmenters; l; l = l->next)
    rd_segmenter_set_times (l->data, base_time, start_time);
  g_list_free_full (segmenters, (GDestroyNotify) rd_segmenter_unref);
}

void
rd_streams_drop_segmenters (RdStreams * streams)
{
  GList *drops = NULL;

  LOCK (streams);
  for (GList * l = streams->streams; l; l = l->next) {
    RdSegmenter *drop = stream_detach_locked (l->data, NULL);
    if (drop)
      drops = g_list_prepend (drops, drop);
  }
  streams->group_state = GROUP_STATE_NONE;
  UNLOCK (streams);
  g_list_free_full (drops, (GDestroyNotify) rd_segmenter_drop);
}

gboolean
rd_streams_handle_message (RdStreams * streams, GstMessage * message)
{
  RdSegmenter *segmenter = rd_segmenter_for_message (message);
  RdMediaFile file;

  if (segmenter == NULL
      || !rd_segmenter_handle_message (segmenter, message, &file))
    return FALSE;
  if (file.path) {
    streams->callbacks.file_closed (&file, streams->user_data);
    g_free (file.path);
  }
  return TRUE;
}

gboolean
rd_streams_finished (RdStreams * streams)
{
  gboolean finished = TRUE;

  LOCK (streams);
  for (GList * l = streams->streams; l; l = l->next)
    finished &= ((Stream *) l->data)->finished;
  UNLOCK (streams);
  return finished;
}
