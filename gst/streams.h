/* The streaming side of resembledetectsink's pads: for each request pad a
 * stream (audio/video: pad -> queue -> a segmenter; image: pad -> a
 * snapshot sink), which pads share a segmenter and when it can be made, the
 * gates where data waits (for its segmenter; in PAUSED, for PLAYING), and
 * the preroll. Adds children and ghost pads to the element it is given;
 * reports up through callbacks and knows nothing of batches, spools or the
 * network. All of it under one lock, the streams lock. */
#pragma once

#include <gst/gst.h>
#include "container.h"
#include "media-file.h"

G_BEGIN_DECLS typedef struct _RdStreams RdStreams;

typedef struct
{
  /* where a file named @basename goes; NULL: stopped */
  gchar *(*location) (const gchar * basename, gpointer user_data);
  /* a segment or snapshot file is complete */
  void (*file_closed) (const RdMediaFile * file, gpointer user_data);
  /* every pad has had data: post ASYNC_DONE now. Called with the streams
   * lock held, as a base sink commits under its preroll lock: the
   * PAUSED->PLAYING that an application starts when it sees the pipeline
   * commit takes the lock too (rd_streams_set_playing), so it cannot
   * overtake the commit (GstBin 1.22 would then lose track of being
   * PLAYING and swallow every EOS). */
  void (*prerolled) (gpointer user_data);
  /* every pad ended before any caps: no child sink exists to post EOS */
  void (*ended_without_sinks) (gpointer user_data);
  /* a pad flushed: the stream goes on (drop an EOS held for it) */
  void (*flushed) (gpointer user_data);
  /* something the element must post as an error */
  void (*error) (const GError * error, const gchar * debug, gpointer user_data);
} RdStreamsCallbacks;

RdStreams *rd_streams_new (GstElement * element,
    const RdStreamsCallbacks * callbacks, gpointer user_data);
void rd_streams_free (RdStreams * streams);

/* What the segmenters made from now on use. */
void rd_streams_configure (RdStreams * streams,
    GstResembleDetectContainer container, GstClockTime segment_duration);

/* A new pad of @templ ("video", "audio_%u" or "image_%u"), added to the
 * element; NULL when it cannot be (a second video pad, a taken name). */
GstPad *rd_streams_request_pad (RdStreams * streams, GstPadTemplate * templ,
    const gchar * name);
void rd_streams_release_pad (RdStreams * streams, GstPad * pad);

/* READY->PAUSED: every pad prerolls anew. TRUE when the element goes to
 * PAUSED asynchronously (@async and it has pads): until the prerolled
 * callback. */
gboolean rd_streams_prepare (RdStreams * streams, gboolean async);
/* Whether the preroll is still pending. */
gboolean rd_streams_prerolling (RdStreams * streams);
/* PAUSED->PLAYING (TRUE) opens the preroll gates; PLAYING->PAUSED closes
 * them for the next data. */
void rd_streams_set_playing (RdStreams * streams, gboolean playing);
/* PAUSED->READY, before the pads stop: every gate opens, a pending preroll
 * ends (TRUE: it was pending, post its ASYNC_DONE). */
gboolean rd_streams_stop (RdStreams * streams);
/* After PAUSED->READY: the next run may bring other caps, so its
 * segmenters are made anew. */
void rd_streams_drop_segmenters (RdStreams * streams);

/* After the element went to PAUSED: a new EOS for each segmenter that had
 * ended, for GstBin's own handler (see rd_segmenter_repeat_eos). */
GList *rd_streams_repeat_eos (RdStreams * streams);

/* Before the element goes to PLAYING: its base and start times for every
 * segmenter (see rd_segmenter_set_times). */
void rd_streams_set_times (RdStreams * streams, GstClockTime base_time,
    GstClockTime start_time);

/* A fragment message of one of the segmenters: TRUE when it was one (it
 * is then consumed). */
gboolean rd_streams_handle_message (RdStreams * streams, GstMessage * message);

/* Whether every pad has had its EOS. */
gboolean rd_streams_finished (RdStreams * streams);

G_END_DECLS
