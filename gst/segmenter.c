/* A segmenter (see segmenter.h): one splitmuxsink and the running-time
 * ranges of the files it closes. The RdSegmenter lives as long as its
 * splitmuxsink (it is that object's data): a fragment message in flight
 * keeps both alive. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "segmenter.h"

GST_DEBUG_CATEGORY_EXTERN (gst_resemble_detect_sink_debug);
#define GST_CAT_DEFAULT gst_resemble_detect_sink_debug

#define SEGMENTER_QUARK (g_quark_from_static_string ("resembledetect-segmenter"))

typedef struct
{
  gchar *name;
  RdMediaType media_type;
  GstPad *source;               /* owned; NULL once detached */
  GstPad *pad;                  /* the splitmuxsink's, owned */
  gboolean finished;
  GstClockTime last_start;
  GstClockTime last_end;
} Member;

struct _RdSegmenter
{
  GMutex lock;
  GstElement *splitmux;         /* not a reference: it owns us */
  GstElement *holder;           /* the splitmuxsink's bin, in @bin */
  GstBin *bin;
  gchar *extension;
  GArray *members;              /* Member, the leader first */
  RdSegmenterLocationFunc location;
  gpointer user_data;
  GstClockTime fragment_start;
  gchar *open_location;         /* the fragment being written */
  gboolean ended;               /* the holder posted EOS */
};

static void
member_clear (Member * member)
{
  g_free (member->name);
  gst_clear_object (&member->source);
  gst_clear_object (&member->pad);
}

static void
segmenter_free (gpointer data)
{
  RdSegmenter *segmenter = data;

  g_array_unref (segmenter->members);
  g_free (segmenter->extension);
  g_free (segmenter->open_location);
  g_mutex_clear (&segmenter->lock);
  g_free (segmenter);
}

static gchar *
format_location_cb (GstElement * splitmux, guint fragment_id,
    GstSample * first_sample, gpointer user_data)
{
  RdSegmenter *segmenter = user_data;
  Member *leader = &g_array_index (segmenter->members, Member, 0);
  g_autofree gchar *basename = g_strdup_printf ("%s-%06u.%s", leader->name,
      fragment_id, segmenter->extension);

  return segmenter->location (basename, segmenter->user_data);
}

/* Stops the splitmuxsink and takes its holder out of the element; frees
 * @segmenter (the splitmuxsink's last reference goes with the holder).
 * @recheck_eos: the holder leaves the element as the sink it is, so that
 * GstBin looks again at whether every remaining sink has ended (a released
 * pad may have been the last one that had not). Not while the streams'
 * lock is held: the element's EOS is posted from there and takes it. */
static void
segmenter_remove (RdSegmenter * segmenter, gboolean recheck_eos)
{
  GstElement *splitmux = gst_object_ref (segmenter->splitmux);
  GstElement *holder = segmenter->holder;
  GstBin *bin = segmenter->bin;
  GList *links = NULL;          /* source, pad, source, pad, ... */

  /* the holder's last messages (its state changes) must not find us: we
   * may be gone before them */
  g_object_set_qdata (G_OBJECT (holder), SEGMENTER_QUARK, NULL);
  rd_segmenter_interrupt (segmenter);
  gst_element_set_state (splitmux, GST_STATE_NULL);
  /* splitmuxsink drops its muxer when it stops and its release_pad then
   * fails, so its pads are not released but unlinked; now, not when the
   * holder goes (a message on the bus can keep it) */
  g_mutex_lock (&segmenter->lock);
  for (guint i = 0; i < segmenter->members->len; i++) {
    Member *member = &g_array_index (segmenter->members, Member, i);
    if (member->source && member->pad)
      links = g_list_prepend (g_list_prepend (links,
              gst_object_ref (member->pad)), gst_object_ref (member->source));
  }
  g_mutex_unlock (&segmenter->lock);
  for (GList * l = links; l; l = l->next->next)
    gst_pad_unlink (l->data, l->next->data);
  g_list_free_full (links, gst_object_unref);
  /* no longer PLAYING, the holder posts no EOS of its own when it loses
   * its only sink */
  gst_element_set_state (holder, GST_STATE_NULL);
  if (!recheck_eos)
    gst_bin_remove (GST_BIN_CAST (holder), splitmux);
  gst_object_unref (splitmux);
  gst_bin_remove (bin, holder);
}

/* Undoes a rd_segmenter_new that failed half way (under the streams'
 * lock). */
static void
segmenter_abandon (RdSegmenter * segmenter)
{
  segmenter_remove (segmenter, FALSE);
}

RdSegmenter *
rd_segmenter_new (GstBin * bin, GstResembleDetectContainer container,
    GstClockTime duration, const RdSegmenterMember * members, guint n,
    RdSegmenterLocationFunc location, gpointer user_data, GError ** error)
{
  g_autofree GstCaps **caps = g_new0 (GstCaps *, n);
  g_autofree const gchar **names = g_new0 (const gchar *, n);
  RdSegmenter *segmenter;
  GstElement *splitmux, *muxer;

  for (guint i = 0; i < n; i++) {
    caps[i] = members[i].caps;
    names[i] = members[i].name;
  }
  if (!rd_container_choose (container, n, caps, names, &container, error))
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

  segmenter = g_new0 (RdSegmenter, 1);
  g_mutex_init (&segmenter->lock);
  segmenter->splitmux = splitmux;
  segmenter->bin = bin;
  segmenter->extension = g_strdup (rd_container_extension (container));
  segmenter->members = g_array_sized_new (FALSE, TRUE, sizeof (Member), n);
  g_array_set_clear_func (segmenter->members, (GDestroyNotify) member_clear);
  segmenter->location = location;
  segmenter->user_data = user_data;
  segmenter->fragment_start = GST_CLOCK_TIME_NONE;
  g_object_set_qdata_full (G_OBJECT (splitmux), SEGMENTER_QUARK, segmenter,
      segmenter_free);

  /* The element's own preroll stands for the segmenter's (streams.c), so
   * the splitmuxsink is kept out of the element's state changes. It goes
   * to PAUSED asynchronously, until its first fragment opens; as a child
   * of the element, even a locked one, it would make each state change of
   * the element asynchronous while it waits for the data that the element
   * holds at its gates in PAUSED, and a bin that is not toplevel leaves
   * such a change half done, in PAUSED, for its parent to continue: a
   * segmenter made while the pipeline changes state (a flushing seek right
   * after PLAYING) could leave the element in PAUSED, where GstBin posts
   * no EOS. So it lives in a locked holder bin that went to PLAYING empty
   * (its state change never waits for anything); it is started and
   * stopped by rd_segmenter_start() and rd_segmenter_drop(), its file sink
   * neither syncs nor prerolls, and its async-handling keeps its own
   * ASYNC_START to itself. Its EOS and messages still go up through the
   * holder. What the element's bin did for it as a child, the element
   * now does: its base times (rd_segmenter_set_times), its EOS again
   * after a pause (rd_segmenter_repeat_eos), and leaving as a sink when
   * it is dropped (segmenter_remove). The video pad asks for the
   * keyframes that keep video segments close to the duration itself,
   * before its queue (streams.c). */
  g_object_set (splitmux, "muxer", muxer, "max-size-time", duration,
      "async-handling", TRUE, NULL);
  g_signal_connect (splitmux, "format-location-full",
      G_CALLBACK (format_location_cb), segmenter);
  segmenter->holder = gst_bin_new (NULL);
  gst_bin_add (GST_BIN_CAST (segmenter->holder), splitmux);
  gst_element_set_locked_state (splitmux, TRUE);
  gst_element_set_locked_state (segmenter->holder, TRUE);
  gst_element_set_state (segmenter->holder, GST_STATE_PLAYING);
  /* its messages (EOS) name the segmenter too; no reference */
  g_object_set_qdata (G_OBJECT (segmenter->holder), SEGMENTER_QUARK, segmenter);
  gst_bin_add (bin, segmenter->holder);

  for (guint i = 0; i < n; i++) {
    Member member = { 0, };

    member.name = g_strdup (members[i].name);
    member.media_type = members[i].media_type;
    member.source = gst_object_ref (members[i].source);
    member.finished = members[i].finished;
    member.last_start = members[i].last_start;
    member.last_end = members[i].last_end;
    member.pad = gst_element_request_pad_simple (splitmux,
        member.media_type == RD_MEDIA_TYPE_VIDEO ? "video" : "audio_%u");
    g_array_append_val (segmenter->members, member);
    /* across the holder: no ghost pad, so no extra hop per buffer */
    if (member.pad == NULL || gst_pad_link_full (member.source, member.pad,
            GST_PAD_LINK_CHECK_CAPS) != GST_PAD_LINK_OK) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "Could not link pad %s to splitmuxsink.", member.name);
      segmenter_abandon (segmenter);
      return NULL;
    }
  }
  GST_INFO_OBJECT (bin, "%s segments of %" GST_TIME_FORMAT " for %u pad(s), "
      "led by %s", segmenter->extension, GST_TIME_ARGS (duration), n,
      members[0].name);
  return segmenter;
}

/* A bin gives its base and start times to the children whose state it
 * changes: not to a locked one, so the splitmuxsink's muxer (a
 * GstAggregator, whose live deadlines are in running time) gets them from
 * here. */
void
rd_segmenter_set_times (RdSegmenter * segmenter, GstClockTime base_time,
    GstClockTime start_time)
{
  GstIterator *it =
      gst_bin_iterate_recurse (GST_BIN_CAST (segmenter->splitmux));
  GValue item = G_VALUE_INIT;
  gboolean done = FALSE;

  gst_element_set_base_time (segmenter->splitmux, base_time);
  gst_element_set_start_time (segmenter->splitmux, start_time);
  while (!done) {
    switch (gst_iterator_next (it, &item)) {
      case GST_ITERATOR_OK:
        gst_element_set_base_time (g_value_get_object (&item), base_time);
        gst_element_set_start_time (g_value_get_object (&item), start_time);
        g_value_reset (&item);
        break;
      case GST_ITERATOR_RESYNC:
        gst_iterator_resync (it);
        break;
      default:
        done = TRUE;
        break;
    }
  }
  g_value_unset (&item);
  gst_iterator_free (it);
}

void
rd_segmenter_start (RdSegmenter * segmenter)
{
  GstElement *element = GST_ELEMENT_CAST (segmenter->bin);

  gst_element_set_base_time (segmenter->splitmux,
      gst_element_get_base_time (element));
  gst_element_set_start_time (segmenter->splitmux,
      gst_element_get_start_time (element));
  /* a failure is posted as an error by the child that failed */
  if (gst_element_set_state (segmenter->splitmux, GST_STATE_PLAYING)
      == GST_STATE_CHANGE_FAILURE)
    GST_WARNING_OBJECT (segmenter->splitmux, "could not start");
}

RdSegmenter *
rd_segmenter_for_message (GstMessage * message)
{
  GstObject *src = GST_MESSAGE_SRC (message);

  return src ? g_object_get_qdata (G_OBJECT (src), SEGMENTER_QUARK) : NULL;
}

/* The end of a fragment: where splitmuxsink says, except for the last one
 * (every member has ended and it closed at the start of the leader's last
 * buffer), which lasts until the end of its input. */
static GstClockTime
fragment_end_locked (RdSegmenter * segmenter, GstClockTime closed_at)
{
  GstClockTime end = closed_at;
  Member *leader = NULL;

  for (guint i = 0; i < segmenter->members->len && leader == NULL; i++) {
    Member *member = &g_array_index (segmenter->members, Member, i);
    if (member->source)
      leader = member;
  }
  if (leader == NULL || !GST_CLOCK_TIME_IS_VALID (closed_at)
      || !GST_CLOCK_TIME_IS_VALID (leader->last_start)
      || closed_at < leader->last_start)
    return closed_at;
  for (guint i = 0; i < segmenter->members->len; i++) {
    Member *member = &g_array_index (segmenter->members, Member, i);
    if (member->source == NULL)
      continue;
    if (!member->finished)
      return closed_at;
    if (GST_CLOCK_TIME_IS_VALID (member->last_end) && member->last_end > end)
      end = member->last_end;
  }
  return end;
}

gboolean
rd_segmenter_handle_message (RdSegmenter * segmenter, GstMessage * message,
    RdMediaFile * closed_file)
{
  const GstStructure *s = gst_message_get_structure (message);
  GstClockTime running_time = GST_CLOCK_TIME_NONE;
  GstClockTime start;
  const gchar *location;
  gboolean closed;
  Member *leader;

  memset (closed_file, 0, sizeof (*closed_file));
  /* noted, and left to GstBin, which counts the sinks that ended */
  if (GST_MESSAGE_SRC (message) == GST_OBJECT_CAST (segmenter->holder)) {
    if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_EOS) {
      g_mutex_lock (&segmenter->lock);
      segmenter->ended = TRUE;
      g_mutex_unlock (&segmenter->lock);
    }
    return FALSE;
  }
  if (GST_MESSAGE_TYPE (message) != GST_MESSAGE_ELEMENT || s == NULL
      || GST_MESSAGE_SRC (message) != GST_OBJECT_CAST (segmenter->splitmux))
    return FALSE;
  closed = gst_structure_has_name (s, "splitmuxsink-fragment-closed");
  if (!closed && !gst_structure_has_name (s, "splitmuxsink-fragment-opened"))
    return FALSE;

  location = gst_structure_get_string (s, "location");
  gst_structure_get_uint64 (s, "running-time", &running_time);
  g_mutex_lock (&segmenter->lock);
  start = segmenter->fragment_start;
  segmenter->fragment_start = closed ? GST_CLOCK_TIME_NONE : running_time;
  g_free (segmenter->open_location);
  segmenter->open_location = closed ? NULL : g_strdup (location);
  if (closed)
    running_time = fragment_end_locked (segmenter, running_time);
  g_mutex_unlock (&segmenter->lock);

  if (closed && location) {
    leader = &g_array_index (segmenter->members, Member, 0);
    closed_file->path = g_strdup (location);
    closed_file->prefix = leader->name;
    closed_file->extension = segmenter->extension;
    closed_file->media_type = leader->media_type;
    closed_file->start = start;
    closed_file->duration = GST_CLOCK_TIME_NONE;
    if (GST_CLOCK_TIME_IS_VALID (start) && running_time >= start)
      closed_file->duration = running_time - start;
  }
  return TRUE;
}

void
rd_segmenter_record_input (RdSegmenter * segmenter, guint member_index,
    GstClockTime last_start, GstClockTime last_end)
{
  Member *member;

  g_mutex_lock (&segmenter->lock);
  member = &g_array_index (segmenter->members, Member, member_index);
  if (!GST_CLOCK_TIME_IS_VALID (member->last_end)
      || last_end > member->last_end) {
    member->last_start = last_start;
    member->last_end = last_end;
  }
  g_mutex_unlock (&segmenter->lock);
}

void
rd_segmenter_set_finished (RdSegmenter * segmenter, guint member_index,
    gboolean finished)
{
  Member *member;

  g_mutex_lock (&segmenter->lock);
  member = &g_array_index (segmenter->members, Member, member_index);
  member->finished = finished;
  if (!finished) {
    member->last_start = member->last_end = GST_CLOCK_TIME_NONE;
    /* data again (after a flush): its holder's EOS is no longer true */
    segmenter->ended = FALSE;
  }
  g_mutex_unlock (&segmenter->lock);
}

GstPad *
rd_segmenter_detach (RdSegmenter * segmenter, guint member_index,
    gboolean * empty)
{
  Member *member;
  GstPad *pad = NULL;
  gboolean others = FALSE;

  g_mutex_lock (&segmenter->lock);
  member = &g_array_index (segmenter->members, Member, member_index);
  if (member->source) {
    gst_pad_unlink (member->source, member->pad);
    gst_clear_object (&member->source);
  }
  for (guint i = 0; i < segmenter->members->len; i++)
    others |= g_array_index (segmenter->members, Member, i).source != NULL;
  if (others)
    pad = gst_object_ref (member->pad);
  g_mutex_unlock (&segmenter->lock);
  *empty = !others;
  return pad;
}

gchar *
rd_segmenter_dup_open_location (RdSegmenter * segmenter)
{
  gchar *location;

  g_mutex_lock (&segmenter->lock);
  location = g_strdup (segmenter->open_location);
  g_mutex_unlock (&segmenter->lock);
  return location;
}

RdSegmenter *
rd_segmenter_ref (RdSegmenter * segmenter)
{
  gst_object_ref (segmenter->splitmux);
  return segmenter;
}

void
rd_segmenter_unref (RdSegmenter * segmenter)
{
  gst_object_unref (segmenter->splitmux);
}

static void
send_flush_start (const GValue * item, gpointer user_data)
{
  gst_pad_send_event (g_value_get_object (item), gst_event_new_flush_start ());
}

/* splitmuxsink (1.22, and its code today) can lose its own stop: set to
 * READY while its output thread posts the ASYNC_DONE of its first fragment,
 * that thread afterwards puts back the state that waits for the next GOP
 * and waits with its queue's stream lock held, so the queue never
 * deactivates and the state change never returns. A flush-start into its
 * pads before the stop makes that thread return wherever it is. */
void
rd_segmenter_interrupt (RdSegmenter * segmenter)
{
  GstIterator *it = gst_element_iterate_sink_pads (segmenter->splitmux);

  while (gst_iterator_foreach (it, send_flush_start, NULL)
      == GST_ITERATOR_RESYNC)
    gst_iterator_resync (it);
  gst_iterator_free (it);
}

/* GstBin forgets which sinks ended whenever it goes to PAUSED, and a sink
 * says it again on its way back to PLAYING; the locked holder changes no
 * state, so the element says it for it. */
GstMessage *
rd_segmenter_repeat_eos (RdSegmenter * segmenter)
{
  gboolean ended;

  g_mutex_lock (&segmenter->lock);
  ended = segmenter->ended;
  g_mutex_unlock (&segmenter->lock);
  return ended ? gst_message_new_eos (GST_OBJECT_CAST (segmenter->holder)) :
      NULL;
}

void
rd_segmenter_drop (RdSegmenter * segmenter)
{
  segmenter_remove (segmenter, TRUE);
}

void
rd_segmenter_drop_for_replacement (RdSegmenter * segmenter)
{
  segmenter_remove (segmenter, FALSE);
}
