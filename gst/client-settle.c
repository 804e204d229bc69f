/* Settling an upload whose outcome is unknown: its whole body went out and
 * no readable answer came back (the connection was lost, a 5xx other than
 * 503, an unreadable 202), so the API may or may not have created the
 * batch, and it has no idempotency key. The API's list of detects (GET
 * {api_url}/detect?page=&page_size=, newest first) says which: file names
 * are unique to a spool's run (spool.c), so the batch's files among the
 * detects created since the attempt began (less a margin for the two
 * clocks) are its own.
 *
 * - Every file found: the batch is adopted. Its uuid stays unknown (the
 *   list does not give it), its detect uuids are recorded (state submitted
 *   in the manifest, so a next run follows them too), and client-follow.c
 *   follows each detect to its verdict.
 * - None found, twice, a grace period apart, with the list read back to the
 *   attempt's start: the batch was not created; it is sent again, as a
 *   retry of the POST (its retries and its time budget).
 * - Anything else (some found, a list that cannot be read back far enough,
 *   zero retention mode, which tokenizes file names, a list the API
 *   refuses): the outcome stays unknown and the batch ends in an error,
 *   never sent twice.
 *
 * It sits between client-submit.c, which hands it an ambiguous batch and
 * the function that sends the POST again, and client-follow.c, to which it
 * hands an adopted batch; requests, timers, retries and endings are
 * client-job.c's. */

#include "client-private.h"

/* Items per page of the list (the API allows 10..1000). */
#define SETTLE_PAGE_SIZE 100
/* Pages read at most for one look: 5000 detects created in the window. */
#define SETTLE_MAX_PAGES 50
/* How far the API's clock may be behind ours. */
#define SETTLE_CLOCK_MARGIN_US (10 * G_TIME_SPAN_MINUTE)
/* Between two looks: time for a batch being created to show. */
#define SETTLE_GRACE (2 * GST_SECOND)
/* Looks that found only some of the files before giving up. */
#define SETTLE_MAX_LOOKS 3

static void settle_send (Job * job);

static void
settle_fail (Job * job, const gchar * why)
{
  g_autofree gchar *what = g_strdup_printf ("%s (not settled: %s)",
      job->settle.what, why);

  rd_job_fail_unknown_outcome (job, job->settle.http_status, what, FALSE);
}

static void
settle_clear_found (Job * job)
{
  guint i;

  for (i = 0; i < job->batch->files->len; i++)
    g_clear_pointer (&job->settle.found[i], g_free);
}

static gboolean
settle_look_timer (Job * job)
{
  g_clear_pointer (&job->timer, g_source_unref);
  settle_clear_found (job);
  job->settle.page = 1;
  settle_send (job);
  return G_SOURCE_REMOVE;
}

/* Another look at the list, a grace period from now (within the budget). */
static void
settle_look_again (Job * job)
{
  GstClockTime left = rd_job_time_left (job);

  job->settle.looks++;
  GST_INFO ("batch %u: settling, look %u in %" GST_TIME_FORMAT,
      job->batch->index, job->settle.looks + 1, GST_TIME_ARGS (SETTLE_GRACE));
  job->timer = rd_client_add_timer (job->client,
      GST_CLOCK_TIME_IS_VALID (left) ? MIN (SETTLE_GRACE, left) : SETTLE_GRACE,
      (GSourceFunc) settle_look_timer, job);
}

static void
settle_adopt (Job * job)
{
  RdClient *client = job->client;
  RdBatch *batch = job->batch;
  guint i;

  for (i = 0; i < batch->files->len; i++) {
    RdBatchFile *file = g_ptr_array_index (batch->files, i);

    g_free (file->detect_uuid);
    file->detect_uuid = g_steal_pointer (&job->settle.found[i]);
  }
  GST_INFO ("batch %u: the API created it (%s): following its %u detects",
      batch->index, job->settle.what, batch->files->len);
  g_free (batch->status);
  batch->status = g_strdup ("processing");
  batch->state = RD_BATCH_STATE_SUBMITTED;
  batch->upload_started_us = 0;
  job->ambiguous = FALSE;
  job->failures = 0;
  /* From now on a restart follows the detects, never POSTs. */
  rd_job_write_manifest (job);
  if (client->callbacks.submitted)
    client->callbacks.submitted (batch, client->user_data);
  if (client->stopping)
    rd_job_cancel (job);
  else
    rd_job_follow_detects (job);
}

/* None of the files was created: the POST is sent again, as its retry. */
static void
settle_resubmit (Job * job)
{
  Response none = { 0, };

  GST_INFO ("batch %u: the API's list shows none of its files: sending it "
      "again", job->batch->index);
  job->phase = JOB_POSTING;
  job->ambiguous = FALSE;
  if (!rd_job_retry (job, &none, job->settle.resubmit)) {
    g_autofree gchar *why = g_strdup_printf ("%s; the API did not create "
        "it (none of its files is in its list)", job->settle.what);
    g_autofree gchar *reason = rd_job_gave_up_reason (job, why,
        job->failures);

    /* provably not accepted: stays closed for a next run */
    rd_job_fail (job, FAIL_KEEP_STATE, job->settle.http_status, reason, NULL,
        FALSE);
  }
}

/* Reads one page: TRUE when the look is complete (every file found, or
 * the list read back to the attempt's start). */
static gboolean
settle_read_page (Job * job, const RdDetectList * list, gboolean * proven)
{
  RdBatch *batch = job->batch;
  gboolean older_seen = FALSE;
  gint64 previous_us = G_MAXINT64;
  guint i, j;

  for (i = 0; i < list->n_items; i++) {
    const RdDetectListItem *item = &list->items[i];

    /* newest first, as the API lists them; if not, no early end */
    if (item->created_us != G_MININT64) {
      if (item->created_us > previous_us)
        job->settle.unordered = TRUE;
      previous_us = item->created_us;
      if (item->created_us < job->settle.since_us) {
        older_seen = TRUE;
        continue;
      }
    }
    if (item->filename == NULL)
      continue;
    for (j = 0; j < batch->files->len; j++) {
      const RdBatchFile *file = g_ptr_array_index (batch->files, j);

      if (job->settle.found[j] == NULL
          && g_strcmp0 (item->filename, file->name) == 0)
        job->settle.found[j] = g_strdup (item->uuid);
    }
  }
  *proven = (older_seen && !job->settle.unordered)
      || list->n_items == 0 || (list->num_pages != 0
      && list->page >= list->num_pages);
  return *proven;
}

static void
settle_answer (Job * job, const RdDetectList * list)
{
  RdBatch *batch = job->batch;
  gboolean proven = FALSE;
  guint i, found = 0;

  job->failures = 0;
  settle_read_page (job, list, &proven);
  for (i = 0; i < batch->files->len; i++)
    found += job->settle.found[i] != NULL;

  if (found == batch->files->len) {
    settle_adopt (job);
  } else if (!proven && job->settle.page < SETTLE_MAX_PAGES) {
    job->settle.page++;
    settle_send (job);
  } else if (!proven) {
    settle_fail (job, "the API's list is too long to read back to the "
        "upload");
  } else if (found == 0 && job->settle.looks > 0) {
    settle_resubmit (job);
  } else if (rd_job_time_left (job) == 0) {
    settle_fail (job, "the poll-timeout was reached while looking");
  } else if (found == 0 || job->settle.looks + 1 < SETTLE_MAX_LOOKS) {
    settle_look_again (job);
  } else {
    g_autofree gchar *why = g_strdup_printf ("the API's list shows %u of "
        "its %u files", found, batch->files->len);

    settle_fail (job, why);
  }
}

static void
settle_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  Job *job = user_data;
  RdClient *client = job->client;
  Response response = { 0, };

  rd_response_read (client, SOUP_SESSION (source), result, job->msg, &response);
  job->n_requests--;
  g_clear_object (&job->msg);

  if (rd_response_cancelled (client, &response)) {
    rd_job_cancel (job);
  } else if (response.status == SOUP_STATUS_UNAUTHORIZED) {
    rd_job_unauthorized (job, &response);
  } else if (SOUP_STATUS_IS_SUCCESSFUL (response.status)) {
    gssize length;
    const gchar *data = rd_response_data (&response, &length);
    g_autoptr (GError) error = NULL;
    g_autoptr (RdDetectList) list =
        rd_results_parse_detect_list (data, length, &error);

    /* an item left out may be one of the batch's files: "none found"
     * would then be wrong, and the batch sent twice */
    if (list != NULL && !rd_results_detect_list_is_whole (list, &error))
      g_clear_pointer (&list, rd_detect_list_free);
    if (list != NULL) {
      settle_answer (job, list);
    } else {
      rd_client_redact_error (client, error);
      GST_WARNING ("batch %u: unreadable list of detects: %s",
          job->batch->index, error->message);
      if (!rd_job_retry (job, &response, settle_send))
        settle_fail (job, error->message);
    }
  } else if (rd_retry_classify (FALSE, response.status, response.error,
          FALSE) != RD_RETRY_YES || (!rd_job_retry (job, &response,
              settle_send) && !rd_job_park_in_outage (job, &response,
              rd_job_settle_again))) {
    g_autofree gchar *reason = NULL;
    g_autoptr (GstStructure) details = NULL;

    rd_response_parse_error (client, &response, &reason, &details);
    settle_fail (job, reason);
  }
  rd_response_clear (&response);
}

static void
settle_send (Job * job)
{
  RdClient *client = job->client;
  g_autofree gchar *path = g_strdup_printf ("/detect?page=%u&page_size=%u",
      job->settle.page, SETTLE_PAGE_SIZE);

  job->msg = rd_client_new_message (client, SOUP_METHOD_GET, path, NULL);
  job->n_requests++;
  rd_response_send (client, job->msg, settle_done, job);
}

void
rd_job_settle (Job * job, guint http_status, const gchar * what,
    JobSendFunc resubmit)
{
  RdBatch *batch = job->batch;

  if (batch->settings.zero_retention_mode > 0) {
    g_autofree gchar *full = g_strdup_printf ("%s (not settled: zero "
        "retention mode tokenizes file names in the API's list)", what);

    rd_job_fail_unknown_outcome (job, http_status, full, FALSE);
    return;
  }
  GST_INFO ("batch %u: outcome unknown (%s): looking for its files among "
      "the API's detects", batch->index, what);
  job->phase = JOB_SETTLING;
  job->ambiguous = TRUE;
  g_free (job->settle.what);
  job->settle.what = g_strdup (what);
  job->settle.http_status = http_status;
  job->settle.resubmit = resubmit;
  job->settle.since_us = job->attempt_started_real_us - SETTLE_CLOCK_MARGIN_US;
  job->settle.page = 1;
  job->settle.looks = 0;
  job->settle.unordered = FALSE;
  if (job->settle.found == NULL)
    job->settle.found = g_new0 (gchar *, batch->files->len);
  settle_clear_found (job);
  settle_send (job);
}

/* Settling again from the first page, for a batch that waited out an
 * outage while it was being settled. */
void
rd_job_settle_again (Job * job)
{
  g_autofree gchar *what = g_strdup (job->settle.what);

  rd_job_settle (job, job->settle.http_status, what, job->settle.resubmit);
}
