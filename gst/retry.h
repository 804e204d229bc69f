/* The retry policy of the API client: which failed request may be sent
 * again, how long to wait before it, and how polling backs off. Pure rules
 * on plain values (GLib and GStreamer core types): no HTTP library, no
 * client, no clock, so that unit tests need no server. See docs/client.md. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

typedef enum {
  RD_RETRY_NO,                  /* final answer */
  RD_RETRY_YES,                 /* safe to send again */
  RD_RETRY_UNKNOWN_OUTCOME,     /* a POST that may have created a batch */
} RdRetryDecision;

/* @http_status 0: a transport failure (@error set). @body_sent: the whole
 * request body was written before the failure. */
RdRetryDecision rd_retry_classify (gboolean is_post, guint http_status,
    const GError * error, gboolean body_sent);

/* Delay before retry @attempt (1-based): @retry_after when the server gave
 * one (GST_CLOCK_TIME_NONE: it did not; capped at 10 minutes), else
 * exponential backoff from 1 s with jitter, capped at 60 s. @random is in
 * [0, 1). */
GstClockTime rd_retry_delay (guint attempt, GstClockTime retry_after,
    gdouble random);

/* Next poll interval: 1.5x the previous, capped. */
GstClockTime rd_retry_next_poll_interval (GstClockTime previous,
    GstClockTime max);

G_END_DECLS
