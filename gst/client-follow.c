/* Following a batch the API accepted: polling GET
 * {api_url}/detect/batch/{uuid} with a growing interval until the batch is
 * terminal or the poll timeout (counted from its acceptance) is reached,
 * then fetching every file's verdict from GET {api_url}/detect/{uuid}, at
 * most four at a time, each retried on its own, and reporting them in file
 * order. A verdict that cannot be fetched is reported as unknown: the batch
 * is still done. It sits below client.c and client-submit.c, which hand it
 * a batch to follow, and leaves requests, timers, retries and the end of a
 * batch (done, failed, cancelled, refused) to client-job.c. It must not
 * upload, touch the queue, or call into the files above it. */

#include "client-private.h"
#include "messages.h"


static void job_fetch_more (Job * job);
static void fetch_send (Fetch * fetch);

/* ---- polling ---- */

static gboolean
job_poll_timer (Job * job)
{
  g_clear_pointer (&job->timer, g_source_unref);
  rd_job_poll (job);
  return G_SOURCE_REMOVE;
}

void
rd_job_schedule_poll (Job * job, GstClockTime delay)
{
  RdClient *client = job->client;
  GstClockTime left = rd_job_time_left (job);

  /* One last look at the deadline rather than a timeout in between. */
  if (GST_CLOCK_TIME_IS_VALID (left))
    delay = MIN (delay, left);
  g_assert (job->timer == NULL);
  job->timer = rd_client_add_timer (client, delay, (GSourceFunc) job_poll_timer,
      job);
}

/* Copies what the API says into the batch; TRUE when status or counts
 * changed. */
gboolean
rd_job_apply_status (Job * job, const RdBatchStatus * status)
{
  RdBatch *batch = job->batch;
  gboolean changed;
  guint n_uuids = g_strv_length (status->detect_uuids);
  guint i;

  changed = g_strcmp0 (batch->status, status->status) != 0
      || batch->completed_count != status->completed_count
      || batch->failed_count != status->failed_count;
  g_free (batch->status);
  batch->status = g_strdup (status->status);
  batch->completed_count = status->completed_count;
  batch->failed_count = status->failed_count;

  for (i = 0; i < MIN (n_uuids, batch->files->len); i++) {
    RdBatchFile *file = g_ptr_array_index (batch->files, i);

    if (file->detect_uuid == NULL)
      file->detect_uuid = g_strdup (status->detect_uuids[i]);
  }
  return changed;
}

static void
poll_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  Job *job = user_data;
  RdClient *client = job->client;
  RdBatch *batch = job->batch;
  Response response = { 0, };
  g_autoptr (RdBatchStatus) status = NULL;
  g_autoptr (GError) parse_error = NULL;

  rd_response_read (client, SOUP_SESSION (source), result, job->msg, &response);
  job->n_requests--;
  g_clear_object (&job->msg);

  if (rd_response_cancelled (client, &response)) {
    rd_job_cancel (job);
    goto out;
  }

  if (SOUP_STATUS_IS_SUCCESSFUL (response.status)) {
    gssize length;
    const gchar *data = rd_response_data (&response, &length);

    status = rd_results_parse_batch (data, length, &parse_error);
    if (status == NULL) {
      rd_client_redact_error (client, parse_error);
      /* An unreadable answer to a GET is worth another look. */
      GST_WARNING ("batch %u: unreadable status: %s", batch->index,
          parse_error->message);
      if (!rd_job_retry (job, &response, rd_job_poll)) {
        g_autofree gchar *what = g_strdup_printf ("unreadable batch "
            "status from the API: %s", parse_error->message);
        g_autofree gchar *reason = rd_job_gave_up_reason (job, what,
            job->failures);

        /* As for a failed poll: the API has the batch. */
        rd_job_fail (job, FAIL_KEEP_STATE, response.status, reason, NULL,
            FALSE);
      }
      goto out;
    }

    job->failures = 0;
    client->outage.probe_interval = 0;
    if (rd_job_apply_status (job, status)) {
      GST_DEBUG ("batch %u: %s, %u completed, %u failed", batch->index,
          batch->status, batch->completed_count, batch->failed_count);
      rd_job_write_manifest (job);
      if (client->callbacks.status)
        client->callbacks.status (batch, client->user_data);
    }
    if (rd_results_batch_status_is_terminal (batch->status)) {
      rd_job_terminal (job);
    } else if (rd_job_time_left (job) == 0) {
      g_autofree gchar *reason = g_strdup_printf ("poll timeout after %"
          G_GUINT64_FORMAT " s: the batch is still %s",
          client->poll_timeout / GST_SECOND, batch->status);

      rd_job_fail (job, FAIL_RECORD, 0, reason, NULL, FALSE);
    } else {
      job->poll_interval = rd_retry_next_poll_interval (job->poll_interval,
          client->poll_max_interval);
      /* a callback came while this poll was out: one more look */
      rd_job_schedule_poll (job, job->callback_hint ? 0 : job->poll_interval);
      job->callback_hint = FALSE;
    }
    goto out;
  }

  if (response.status == SOUP_STATUS_UNAUTHORIZED) {
    rd_job_unauthorized (job, &response);
    goto out;
  }

  switch (rd_retry_classify (FALSE, response.status, response.error, FALSE)) {
    case RD_RETRY_YES:
      /* The API has the batch and may well answer next time: the manifest
       * stays submitted with its uuid, so that a next run polls it again. */
      if (!rd_job_retry (job, &response, rd_job_poll)
          && !rd_job_park_in_outage (job, &response, rd_job_poll))
        rd_job_fail_response (job, FAIL_KEEP_STATE, &response, TRUE);
      break;
    default:
      /* 404 among them: the batch is unknown to this token. */
      rd_job_fail_response (job, FAIL_RECORD, &response, FALSE);
      break;
  }

out:
  rd_response_clear (&response);
}

void
rd_job_poll (Job * job)
{
  RdClient *client = job->client;

  job->phase = JOB_POLLING;
  job->msg = rd_client_new_message (client, SOUP_METHOD_GET, "/detect/batch/",
      job->batch->uuid);
  job->n_requests++;
  rd_response_send (client, job->msg, poll_done, job);
}

/* ---- verdicts ---- */

static void
job_decorate_result (Job * job, guint index, GstStructure * result)
{
  RdBatch *batch = job->batch;
  const RdBatchFile *file = g_ptr_array_index (batch->files, index);
  g_autofree gchar *path = rd_batch_file_path (batch, file);

  /* RD_TIME_NONE is GST_CLOCK_TIME_NONE */
  rd_messages_result_set_file (result, batch->uuid, path, file->running_time,
      file->duration);
  if (!gst_structure_has_field (result, "detect-uuid") && file->detect_uuid)
    gst_structure_set (result, "detect-uuid", G_TYPE_STRING,
        file->detect_uuid, NULL);
}

/* A verdict that could not be fetched: the batch is still done. */
static GstStructure *
unknown_result (const gchar * message)
{
  return gst_structure_new (RD_MESSAGE_RESULT,
      "status", G_TYPE_STRING, "unknown",
      "score", G_TYPE_DOUBLE, -1.0,
      "error-message", G_TYPE_STRING, message, NULL);
}

/* Results are reported in file order, each as soon as it and every one
 * before it are known. */
static void
job_report_results (Job * job)
{
  RdClient *client = job->client;

  while (job->next_report < job->batch->files->len
      && job->fetches[job->next_report].result != NULL) {
    /* an adopted batch fetches its verdicts to know its end, and reports
     * them only when asked to */
    if (client->callbacks.result && client->fetch_results) {
      GstStructure *result = job->fetches[job->next_report].result;
      const RdBatchFile *file = g_ptr_array_index (job->batch->files,
          job->next_report);

      /* from its file's close to its verdict on the bus, which the
       * callback posts now */
      if (file->closed_us > 0)
        rd_messages_result_set_latency (result,
            (g_get_monotonic_time () - file->closed_us) * GST_USECOND);
      client->callbacks.result (job->batch, job->next_report, result,
          client->user_data);
    }
    job->next_report++;
  }
}

static void
fetch_finish (Fetch * fetch, GstStructure * result)
{
  Job *job = fetch->job;

  job_decorate_result (job, fetch->index, result);
  fetch->result = result;
  job->fetches_active--;
  job->fetches_done++;
  job_fetch_more (job);
}

static void
fetch_fail (Fetch * fetch, const Response * response, gboolean gave_up)
{
  g_autofree gchar *reason = NULL;
  g_autofree gchar *message = NULL;
  g_autoptr (GstStructure) details = NULL;

  rd_response_parse_error (fetch->job->client, response, &reason, &details);
  message = gave_up ? rd_job_gave_up_reason (fetch->job, reason,
      fetch->failures) : g_strdup (reason);
  GST_WARNING ("batch %u: no verdict for file %u: %s",
      fetch->job->batch->index, fetch->index, message);
  fetch_finish (fetch, unknown_result (message));
}

static gboolean
fetch_retry_timer (Fetch * fetch)
{
  g_clear_pointer (&fetch->timer, g_source_unref);
  fetch_send (fetch);
  return G_SOURCE_REMOVE;
}

static gboolean
fetch_retry (Fetch * fetch, const Response * response)
{
  RdClient *client = fetch->job->client;
  GstClockTime delay;

  if (fetch->failures >= client->max_retries
      || rd_job_time_left (fetch->job) == 0)
    return FALSE;
  fetch->failures++;
  delay = rd_job_retry_delay (fetch->job, fetch->failures, response);
  fetch->timer = rd_client_add_timer (client, delay,
      (GSourceFunc) fetch_retry_timer, fetch);
  return TRUE;
}

/* ---- an adopted batch: its detects followed one by one ---- */

static gboolean
detect_is_final (const GstStructure * verdict)
{
  const gchar *status = gst_structure_get_string (verdict, "status");

  return g_strcmp0 (status, "completed") == 0
      || g_strcmp0 (status, "failed") == 0;
}

/* A detect still processing is looked at again, backing off as polls do,
 * until the batch's budget runs out. */
static void
fetch_look_again (Fetch * fetch)
{
  Job *job = fetch->job;
  RdClient *client = job->client;
  GstClockTime left = rd_job_time_left (job);

  if (left == 0) {
    g_autofree gchar *message = g_strdup_printf ("still processing at the "
        "poll-timeout of %" G_GUINT64_FORMAT " s",
        client->poll_timeout / GST_SECOND);

    fetch_finish (fetch, unknown_result (message));
    return;
  }
  fetch->failures = 0;
  fetch->interval = fetch->interval == 0 ? client->poll_interval :
      rd_retry_next_poll_interval (fetch->interval, client->poll_max_interval);
  fetch->timer = rd_client_add_timer (client, GST_CLOCK_TIME_IS_VALID (left) ?
      MIN (fetch->interval, left) : fetch->interval,
      (GSourceFunc) fetch_retry_timer, fetch);
}

/* The batch's status and counts from its detects' verdicts. */
static void
job_count_detects (Job * job)
{
  RdBatch *batch = job->batch;
  guint i, completed = 0;

  for (i = 0; i < batch->files->len; i++) {
    const gchar *status = gst_structure_get_string (job->fetches[i].result,
        "status");

    completed += g_strcmp0 (status, "completed") == 0;
  }
  batch->completed_count = completed;
  batch->failed_count = batch->files->len - completed;
  g_free (batch->status);
  batch->status = g_strdup (completed == batch->files->len ? "completed" :
      completed == 0 ? "failed" : "partially_failed");
}

static void
fetch_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  Fetch *fetch = user_data;
  Job *job = fetch->job;
  RdClient *client = job->client;
  Response response = { 0, };

  rd_response_read (client, SOUP_SESSION (source), result, fetch->msg,
      &response);
  job->n_requests--;
  g_clear_object (&fetch->msg);

  if (rd_response_cancelled (client, &response)) {
    job->fetches_active--;
    /* The last request of a stopped batch ends it. */
    if (job->n_requests == 0)
      rd_job_cancel (job);
    goto out;
  }

  if (SOUP_STATUS_IS_SUCCESSFUL (response.status)) {
    gssize length;
    const gchar *data = rd_response_data (&response, &length);
    g_autoptr (GError) error = NULL;
    GstStructure *verdict = rd_results_parse_detect (data, length, &error);

    rd_client_redact_error (client, error);
    if (verdict && job->adopted && !detect_is_final (verdict)) {
      gst_structure_free (verdict);
      fetch_look_again (fetch);
    } else if (verdict) {
      fetch_finish (fetch, verdict);
    } else if (!fetch_retry (fetch, &response)) {
      g_autofree gchar *message = g_strdup_printf ("unreadable verdict from "
          "the API: %s", error->message);

      fetch_finish (fetch, unknown_result (message));
    }
    goto out;
  }

  if (response.status == SOUP_STATUS_UNAUTHORIZED) {
    g_autofree gchar *reason = NULL;
    g_autoptr (GstStructure) details = NULL;

    rd_response_parse_error (client, &response, &reason, &details);
    /* The verdict (and maybe with it the batch) ends first; idle, if it
     * was the last batch, waits for unauthorized. */
    g_atomic_int_inc (&client->pending);
    fetch_fail (fetch, &response, FALSE);
    rd_client_unauthorized (client, NULL, reason, details);
    rd_client_pending_drop (client);
    goto out;
  }

  switch (rd_retry_classify (FALSE, response.status, response.error, FALSE)) {
    case RD_RETRY_YES:
      if (!fetch_retry (fetch, &response))
        fetch_fail (fetch, &response, TRUE);
      break;
    default:
      fetch_fail (fetch, &response, FALSE);
      break;
  }

out:
  rd_response_clear (&response);
}

static void
fetch_send (Fetch * fetch)
{
  Job *job = fetch->job;
  RdClient *client = job->client;
  const RdBatchFile *file = g_ptr_array_index (job->batch->files,
      fetch->index);

  fetch->msg = rd_client_new_message (client, SOUP_METHOD_GET, "/detect/",
      file->detect_uuid);
  job->n_requests++;
  rd_response_send (client, fetch->msg, fetch_done, fetch);
}

static void
job_fetch_more (Job * job)
{
  RdBatch *batch = job->batch;

  while (job->fetches_active < RD_FETCHES_AT_ONCE
      && job->next_fetch < batch->files->len) {
    Fetch *fetch = &job->fetches[job->next_fetch++];
    const RdBatchFile *file = g_ptr_array_index (batch->files, fetch->index);

    if (file->detect_uuid == NULL) {
      GstStructure *result = unknown_result ("the API gave no detect uuid "
          "for this file");

      job_decorate_result (job, fetch->index, result);
      fetch->result = result;
      job->fetches_done++;
      continue;
    }
    job->fetches_active++;
    fetch_send (fetch);
  }
  job_report_results (job);
  if (job->fetches_done == batch->files->len) {
    if (job->adopted)
      job_count_detects (job);
    rd_job_done (job);
  }
}

static void
job_fetch_all (Job * job)
{
  guint i;

  job->phase = JOB_FETCHING;
  job->fetches = g_new0 (Fetch, job->batch->files->len);
  for (i = 0; i < job->batch->files->len; i++) {
    job->fetches[i].job = job;
    job->fetches[i].index = i;
  }
  job_fetch_more (job);
}

void
rd_job_terminal (Job * job)
{
  if (!job->client->fetch_results) {
    rd_job_done (job);
    return;
  }
  job_fetch_all (job);
}

/* A batch whose uuid is unknown (adopted by client-settle.c, or resumed
 * so): each detect is looked at until it is final; its verdict, then the
 * batch's counts, follow. */
void
rd_job_follow_detects (Job * job)
{
  job->adopted = TRUE;
  job_fetch_all (job);
}
