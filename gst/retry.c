/* The API client's retry policy: which failures may be sent again (the API
 * has no idempotency key, so a POST only when the server provably did not
 * take it), the delay before the next attempt (Retry-After, else
 * exponential backoff with jitter) and the backoff of polling. Pure
 * functions of their arguments: this file must not know the client, its
 * jobs or any HTTP library (the client reads Retry-After, seconds or an
 * HTTP date, into a duration), so that the unit tests of
 * tests/unit/test-retry.c need neither a server nor libsoup.
 *
 * A POST is sent again only when the server provably did not take it: a
 * transport error before the whole body was written (a server cannot
 * accept a multipart body it did not receive whole), 408, 429 or 503, or
 * any 5xx answered before the body was sent. A transport error or a 5xx
 * other than 503 after the whole body was written has an unknown outcome:
 * the batch may exist, and a retry could create a duplicate. GETs are
 * retried on any transport error, 408, 429 and 5xx. Retries wait for
 * Retry-After when the server gives one (capped at 10 minutes), else 1 s *
 * 2^(attempt-1), capped at 60 s, with jitter. */

#include "retry.h"

#include <gio/gio.h>

#define RETRY_BASE_DELAY (1 * GST_SECOND)
#define RETRY_MAX_DELAY (60 * GST_SECOND)
/* A Retry-After longer than this is taken as this. */
#define RETRY_AFTER_MAX (600 * GST_SECOND)
#define POLL_BACKOFF_NUM 3
#define POLL_BACKOFF_DEN 2

#define HTTP_STATUS_REQUEST_TIMEOUT 408
#define HTTP_STATUS_TOO_MANY_REQUESTS 429
#define HTTP_STATUS_SERVICE_UNAVAILABLE 503

/* Errors that come from reading the files of the body, not from the
 * network: sending again cannot help. */
static gboolean
error_is_local (const GError * error)
{
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)
      || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED)
      || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_IS_DIRECTORY)
      || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

RdRetryDecision
rd_retry_classify (gboolean is_post, guint http_status, const GError * error,
    gboolean body_sent)
{
  if (http_status == 0) {
    if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      return RD_RETRY_NO;
    if (error != NULL && error_is_local (error))
      return RD_RETRY_NO;
    if (!is_post)
      return RD_RETRY_YES;
    /* A server cannot have accepted a multipart body it did not get whole. */
    return body_sent ? RD_RETRY_UNKNOWN_OUTCOME : RD_RETRY_YES;
  }

  /* Refusals that say the request was not processed. */
  if (http_status == HTTP_STATUS_REQUEST_TIMEOUT
      || http_status == HTTP_STATUS_TOO_MANY_REQUESTS
      || http_status == HTTP_STATUS_SERVICE_UNAVAILABLE)
    return RD_RETRY_YES;

  if (http_status >= 500 && http_status < 600) {
    if (!is_post)
      return RD_RETRY_YES;
    /* Answered before the body was sent: nothing can have been created.
     * After it, the server may have created the batch and then failed. */
    return body_sent ? RD_RETRY_UNKNOWN_OUTCOME : RD_RETRY_YES;
  }

  return RD_RETRY_NO;
}

/* ---- delays ---- */

GstClockTime
rd_retry_delay (guint attempt, GstClockTime retry_after, gdouble random)
{
  GstClockTime base;

  if (GST_CLOCK_TIME_IS_VALID (retry_after))
    return MIN (retry_after, RETRY_AFTER_MAX);
  if (attempt == 0)
    attempt = 1;
  /* 2^6 s is already past the cap. */
  base = RETRY_BASE_DELAY << MIN (attempt - 1, 6);
  base = MIN (base, RETRY_MAX_DELAY);
  random = CLAMP (random, 0.0, 1.0);
  return (GstClockTime) (base * (0.5 + random / 2.0));
}

GstClockTime
rd_retry_next_poll_interval (GstClockTime previous, GstClockTime max)
{
  GstClockTime next;

  if (previous >= max)
    return max;
  next = previous / POLL_BACKOFF_DEN * POLL_BACKOFF_NUM
      + previous % POLL_BACKOFF_DEN * POLL_BACKOFF_NUM / POLL_BACKOFF_DEN;
  return MIN (MAX (next, previous), max);
}
