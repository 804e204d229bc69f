/* A segmenter: one splitmuxsink (and the muxer of container.c) that cuts
 * the streams of a group of pads into segment files, and what it knows of
 * each file: its running-time range. The video pad and the audio pads that
 * share its files make one group; an audio pad without video is a group of
 * its own. Knows its splitmuxsink and the queues feeding it, nothing of
 * batches, spools or the network. Thread-safe. */
#pragma once

#include <gst/gst.h>
#include "container.h"
#include "media-file.h"

G_BEGIN_DECLS typedef struct _RdSegmenter RdSegmenter;

typedef struct
{
  GstCaps *caps;
  const gchar *name;            /* the pad's; the leader's prefixes the files */
  RdMediaType media_type;
  GstPad *source;               /* linked to the segmenter's pad for it */
  /* where its input stands already (see rd_segmenter_record_input) */
  gboolean finished;
  GstClockTime last_start;
  GstClockTime last_end;
} RdSegmenterMember;

/* A fragment's path for @basename ("{leader}-NNNNNN.{ext}"), or NULL. */
typedef gchar *(*RdSegmenterLocationFunc) (const gchar * basename,
    gpointer user_data);

/* Makes the splitmuxsink for @members (the leader first: the video pad if
 * there is one) in @bin and links their sources to it; the container is
 * chosen by rd_container_choose. NULL with an error otherwise, and nothing
 * is left in @bin. */
RdSegmenter *rd_segmenter_new (GstBin * bin,
    GstResembleDetectContainer container, GstClockTime duration,
    const RdSegmenterMember * members, guint n,
    RdSegmenterLocationFunc location, gpointer user_data, GError ** error);

/* Starts the splitmuxsink: PLAYING, whatever the element's state (see
 * rd_segmenter_new). Not with locks held. */
void rd_segmenter_start (RdSegmenter * segmenter);

/* The segmenter of the splitmuxsink that posted @message, or NULL. */
RdSegmenter *rd_segmenter_for_message (GstMessage * message);

/* Reads one of its splitmuxsink's fragment messages: TRUE when it was one
 * (it is then consumed); @closed->path is set when a file is complete. */
gboolean rd_segmenter_handle_message (RdSegmenter * segmenter,
    GstMessage * message, RdMediaFile * closed);

/* Where @member's input stands: the running time of its last buffer and
 * of the end of it. splitmuxsink closes the last fragment at the start of
 * its last buffer; the end of the input gives it its whole duration. */
void rd_segmenter_record_input (RdSegmenter * segmenter, guint member,
    GstClockTime last_start, GstClockTime last_end);
/* @member had its EOS (TRUE), or flushed (FALSE: input positions reset). */
void rd_segmenter_set_finished (RdSegmenter * segmenter, guint member,
    gboolean finished);

/* Unlinks @member. When other members remain, returns the segmenter's pad
 * of @member (to end with an EOS, so that their files still close); NULL
 * when it was the last one (@empty then TRUE: drop the segmenter). */
GstPad *rd_segmenter_detach (RdSegmenter * segmenter, guint member,
    gboolean * empty);

/* The fragment being written, NULL between fragments. */
gchar *rd_segmenter_dup_open_location (RdSegmenter * segmenter);

/* Keeps @segmenter alive (a reference on its splitmuxsink). */
RdSegmenter *rd_segmenter_ref (RdSegmenter * segmenter);
void rd_segmenter_unref (RdSegmenter * segmenter);

/* Flushes the splitmuxsink's pads, so that its threads return before it
 * stops (the segmenter is stopped and dropped afterwards: no flush-stop
 * follows). Not with locks held: the flush waits for those threads. */
void rd_segmenter_interrupt (RdSegmenter * segmenter);

/* Stops the splitmuxsink and takes it out of the element, as the sink it is
 * (GstBin then checks whether every remaining sink has ended); @segmenter
 * is gone afterwards. Not with locks held (splitmuxsink's threads post
 * messages, and the element's EOS takes the streams' lock). */
void rd_segmenter_drop (RdSegmenter * segmenter);

/* The same, for a segmenter that another replaces at once (a flush):
 * GstBin does not look at the element's EOS again, which would post one
 * while a stream is under way; the element drops such an EOS, and GstBin
 * forgets with it which sinks had ended. */
void rd_segmenter_drop_for_replacement (RdSegmenter * segmenter);

/* The element's base and start times, for the splitmuxsink and everything
 * in it (a locked child gets none from its bin). */
void rd_segmenter_set_times (RdSegmenter * segmenter, GstClockTime base_time,
    GstClockTime start_time);

/* After the element went to PAUSED (where GstBin forgets which sinks
 * ended): a new EOS of the segmenter's holder if it had ended, for the
 * bin's own handler; NULL otherwise. */
GstMessage *rd_segmenter_repeat_eos (RdSegmenter * segmenter);

G_END_DECLS
