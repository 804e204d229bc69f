/* Unit tests of the client's retry policy: which failed request is sent
 * again (and which POST has an unknown outcome), how long to wait before
 * the next attempt, and how polling backs off. Pure functions: no server.
 * Reading Retry-After itself is the client's (tests/unit/test-client.c). */

#include "retry.h"

#include <gio/gio.h>

static void
test_classify_table (void)
{
  g_autoptr (GError) refused = g_error_new_literal (G_IO_ERROR,
      G_IO_ERROR_CONNECTION_REFUSED, "refused");
  g_autoptr (GError) closed = g_error_new_literal (G_IO_ERROR,
      G_IO_ERROR_CONNECTION_CLOSED, "closed");
  g_autoptr (GError) resolver = g_error_new_literal (G_RESOLVER_ERROR,
      G_RESOLVER_ERROR_NOT_FOUND, "no such host");
  g_autoptr (GError) tls = g_error_new_literal (G_TLS_ERROR,
      G_TLS_ERROR_BAD_CERTIFICATE, "bad certificate");
  g_autoptr (GError) cancelled = g_error_new_literal (G_IO_ERROR,
      G_IO_ERROR_CANCELLED, "cancelled");
  g_autoptr (GError) changed = g_error_new_literal (G_IO_ERROR,
      G_IO_ERROR_INVALID_DATA, "file changed size");
  static const guint final_4xx[] = { 400, 401, 402, 403, 404, 409, 413, 422 };
  guint i;

  /* GET: any transport failure, 408, 429 and 5xx are retried. */
  g_assert_cmpint (rd_retry_classify (FALSE, 0, refused, FALSE), ==,
      RD_RETRY_YES);
  g_assert_cmpint (rd_retry_classify (FALSE, 0, closed, TRUE), ==,
      RD_RETRY_YES);
  g_assert_cmpint (rd_retry_classify (FALSE, 0, resolver, FALSE), ==,
      RD_RETRY_YES);
  g_assert_cmpint (rd_retry_classify (FALSE, 0, tls, FALSE), ==, RD_RETRY_YES);
  g_assert_cmpint (rd_retry_classify (FALSE, 0, cancelled, FALSE), ==,
      RD_RETRY_NO);
  g_assert_cmpint (rd_retry_classify (FALSE, 408, NULL, TRUE), ==,
      RD_RETRY_YES);
  g_assert_cmpint (rd_retry_classify (FALSE, 429, NULL, TRUE), ==,
      RD_RETRY_YES);
  for (i = 500; i <= 504; i++)
    g_assert_cmpint (rd_retry_classify (FALSE, i, NULL, TRUE), ==,
        RD_RETRY_YES);
  for (i = 0; i < G_N_ELEMENTS (final_4xx); i++)
    g_assert_cmpint (rd_retry_classify (FALSE, final_4xx[i], NULL, TRUE),
        ==, RD_RETRY_NO);
  g_assert_cmpint (rd_retry_classify (FALSE, 200, NULL, TRUE), ==, RD_RETRY_NO);

  /* POST, transport failures: safe only while the body was not all sent. */
  g_assert_cmpint (rd_retry_classify (TRUE, 0, refused, FALSE), ==,
      RD_RETRY_YES);
  g_assert_cmpint (rd_retry_classify (TRUE, 0, resolver, FALSE), ==,
      RD_RETRY_YES);
  g_assert_cmpint (rd_retry_classify (TRUE, 0, tls, FALSE), ==, RD_RETRY_YES);
  g_assert_cmpint (rd_retry_classify (TRUE, 0, closed, FALSE), ==,
      RD_RETRY_YES);
  g_assert_cmpint (rd_retry_classify (TRUE, 0, closed, TRUE), ==,
      RD_RETRY_UNKNOWN_OUTCOME);
  g_assert_cmpint (rd_retry_classify (TRUE, 0, cancelled, FALSE), ==,
      RD_RETRY_NO);
  /* A file of the batch that changed under us: sending again cannot help. */
  g_assert_cmpint (rd_retry_classify (TRUE, 0, changed, FALSE), ==,
      RD_RETRY_NO);

  /* POST, answers: refused before accepting. */
  g_assert_cmpint (rd_retry_classify (TRUE, 429, NULL, TRUE), ==, RD_RETRY_YES);
  g_assert_cmpint (rd_retry_classify (TRUE, 503, NULL, TRUE), ==, RD_RETRY_YES);
  g_assert_cmpint (rd_retry_classify (TRUE, 408, NULL, FALSE), ==,
      RD_RETRY_YES);
  /* 500/502/504 after the body: may have created the batch. */
  g_assert_cmpint (rd_retry_classify (TRUE, 500, NULL, TRUE), ==,
      RD_RETRY_UNKNOWN_OUTCOME);
  g_assert_cmpint (rd_retry_classify (TRUE, 502, NULL, TRUE), ==,
      RD_RETRY_UNKNOWN_OUTCOME);
  g_assert_cmpint (rd_retry_classify (TRUE, 504, NULL, TRUE), ==,
      RD_RETRY_UNKNOWN_OUTCOME);
  /* ... and before it was written whole: nothing created. */
  g_assert_cmpint (rd_retry_classify (TRUE, 500, NULL, FALSE), ==,
      RD_RETRY_YES);
  g_assert_cmpint (rd_retry_classify (TRUE, 502, NULL, FALSE), ==,
      RD_RETRY_YES);
  /* Final answers. */
  for (i = 0; i < G_N_ELEMENTS (final_4xx); i++)
    g_assert_cmpint (rd_retry_classify (TRUE, final_4xx[i], NULL, TRUE), ==,
        RD_RETRY_NO);
  g_assert_cmpint (rd_retry_classify (TRUE, 202, NULL, TRUE), ==, RD_RETRY_NO);
}

static void
test_retry_delay_honours_retry_after (void)
{
  g_assert_cmpuint (rd_retry_delay (1, 7 * GST_SECOND, 0.9), ==,
      7 * GST_SECOND);
  g_assert_cmpuint (rd_retry_delay (5, 2 * GST_SECOND, 0.0), ==,
      2 * GST_SECOND);
  g_assert_cmpuint (rd_retry_delay (1, 0, 0.5), ==, 0);
  /* Absurd values are capped rather than stalling the batch for days. */
  g_assert_cmpuint (rd_retry_delay (1, 999999 * GST_SECOND, 0.5), ==,
      600 * GST_SECOND);
}

static void
test_retry_delay_without_retry_after_is_exponential_with_jitter (void)
{
  guint attempt;

  for (attempt = 1; attempt <= 6; attempt++) {
    GstClockTime base = GST_SECOND << (attempt - 1);

    g_assert_cmpuint (rd_retry_delay (attempt, GST_CLOCK_TIME_NONE, 0.0), ==,
        base / 2);
    g_assert_cmpuint (rd_retry_delay (attempt, GST_CLOCK_TIME_NONE, 0.999), <,
        base);
    g_assert_cmpuint (rd_retry_delay (attempt, GST_CLOCK_TIME_NONE, 0.999), >=,
        base * 99 / 100);
  }
  /* No Retry-After (or one that is neither form): the backoff. */
  g_assert_cmpuint (rd_retry_delay (2, GST_CLOCK_TIME_NONE, 0.0), ==,
      GST_SECOND);
}

static void
test_retry_delay_is_capped_at_60_s (void)
{
  g_assert_cmpuint (rd_retry_delay (7, GST_CLOCK_TIME_NONE, 0.999), <,
      60 * GST_SECOND);
  g_assert_cmpuint (rd_retry_delay (7, GST_CLOCK_TIME_NONE, 0.0), ==,
      30 * GST_SECOND);
  g_assert_cmpuint (rd_retry_delay (1000, GST_CLOCK_TIME_NONE, 0.999), <,
      60 * GST_SECOND);
  g_assert_cmpuint (rd_retry_delay (G_MAXUINT, GST_CLOCK_TIME_NONE, 0.0), ==,
      30 * GST_SECOND);
}

static void
test_poll_interval_backs_off_to_its_cap (void)
{
  GstClockTime max = 30 * GST_SECOND;
  GstClockTime interval = 2 * GST_SECOND;

  g_assert_cmpuint (rd_retry_next_poll_interval (interval, max), ==,
      3 * GST_SECOND);
  g_assert_cmpuint (rd_retry_next_poll_interval (3 * GST_SECOND, max), ==,
      4500 * GST_MSECOND);
  g_assert_cmpuint (rd_retry_next_poll_interval (25 * GST_SECOND, max), ==,
      max);
  g_assert_cmpuint (rd_retry_next_poll_interval (max, max), ==, max);
  g_assert_cmpuint (rd_retry_next_poll_interval (40 * GST_SECOND, max), ==,
      max);
  while (interval < max) {
    GstClockTime next = rd_retry_next_poll_interval (interval, max);

    g_assert_cmpuint (next, >, interval);
    interval = next;
  }
  g_assert_cmpuint (interval, ==, max);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/retry/classify-table", test_classify_table);
  g_test_add_func ("/retry/retry-delay/honours-retry-after",
      test_retry_delay_honours_retry_after);
  g_test_add_func ("/retry/retry-delay/exponential-with-jitter",
      test_retry_delay_without_retry_after_is_exponential_with_jitter);
  g_test_add_func ("/retry/retry-delay/capped-at-60-s",
      test_retry_delay_is_capped_at_60_s);
  g_test_add_func ("/retry/poll-interval/backs-off-to-its-cap",
      test_poll_interval_backs_off_to_its_cap);

  return g_test_run ();
}
