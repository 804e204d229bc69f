/* The upload of the API client: a closed batch becomes one POST
 * {api_url}/detect/batch whose multipart body (the settings, then every
 * file, or one zip of them) is streamed from disk, built afresh for each
 * attempt, with progress reported as it goes out. Its answer decides the
 * batch's next step: accepted (202: the submitted manifest, then
 * client-follow.c polls it), sent again (what retry.c allows), failed, or
 * an outcome nobody knows yet (a POST that may have created the batch),
 * which client-settle.c settles through the API's list of detects. "Sent" is libsoup's "wrote-body" for the attempt: a
 * POST whose body did not go out whole cannot have created a batch, and
 * only one whose whole body went out without a readable answer (or with a
 * 5xx other than 503) is ambiguous. The POST does not carry "Expect:
 * 100-continue": with libsoup 3.2 (Debian 12) a final answer to it before
 * the body (an early 503, 429 or 401) leaves the message half written,
 * and closing its response stream then crashes (soup-client-input-stream.c
 * takes the message's HTTP/1 I/O for its I/O data when the close would
 * block). This file only uploads: below
 * client.c, it hands an accepted batch down to client-follow.c and leaves
 * requests, timers, retries and the end of a batch to client-job.c. It must
 * not poll, fetch verdicts, touch the queue, or call into client.c. */

#include "client-private.h"

#include "multipart-stream.h"
#include "zip-stream.h"

/* At most about ten progress callbacks a second, plus the final one. */
#define PROGRESS_INTERVAL_US (100 * G_TIME_SPAN_MILLISECOND)

/* ---- the body ---- */

static void
add_setting_field (const gchar * name, const gchar * value, gpointer user_data)
{
  rd_multipart_stream_add_field (RD_MULTIPART_STREAM (user_data), name, value);
}

/* A fresh body for each attempt: the streams are read once. */
static RdMultipartStream *
job_build_body (Job * job, GError ** error)
{
  RdBatch *batch = job->batch;
  g_autoptr (RdMultipartStream) body = rd_multipart_stream_new ();
  guint i;

  rd_settings_foreach_field (&batch->settings, add_setting_field, body);

  if (batch->upload_mode == RD_UPLOAD_MODE_ZIP) {
    g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
    g_autofree gchar *dir_name = rd_batch_dir_name (batch->index);
    g_autofree gchar *zip_name = g_strconcat (dir_name, ".zip", NULL);
    goffset zip_length;

    for (i = 0; i < batch->files->len; i++) {
      const RdBatchFile *file = g_ptr_array_index (batch->files, i);
      g_autofree gchar *path = rd_batch_file_path (batch, file);

      if (!rd_zip_stream_add_file (zip, path, file->name, error))
        return NULL;
    }
    zip_length = rd_zip_stream_get_length (zip, error);
    if (zip_length < 0)
      return NULL;
    rd_multipart_stream_add_stream (body, "file", zip_name,
        "application/zip", G_INPUT_STREAM (zip), zip_length);
  } else {
    for (i = 0; i < batch->files->len; i++) {
      const RdBatchFile *file = g_ptr_array_index (batch->files, i);
      g_autofree gchar *path = rd_batch_file_path (batch, file);

      if (!rd_multipart_stream_add_file (body, "files[]", path, file->name,
              rd_batch_content_type (file->name), error))
        return NULL;
    }
  }
  return g_steal_pointer (&body);
}

static void
job_report_progress (Job * job)
{
  RdClient *client = job->client;

  job->last_progress_us = g_get_monotonic_time ();
  if (client->callbacks.progress)
    client->callbacks.progress (job->batch, job->body_written,
        job->body_length, client->user_data);
}

/* The whole body went out: from here on a failure leaves the outcome
 * unknown (the API may have read it all), and sent == total is reported,
 * once. */
static void
job_whole_body_sent (Job * job)
{
  if (job->body_sent)
    return;
  job->body_sent = TRUE;
  job->body_written = job->body_length;
  job_report_progress (job);
}

/* The last chunk counts as the whole body even before "wrote-body": that
 * signal waits for a flush that a lost connection may never finish, while
 * the server may have read every byte. */
static void
on_wrote_body_data (SoupMessage * msg, guint chunk_size, Job * job)
{
  job->body_written = MIN (job->body_written + chunk_size, job->body_length);
  if (job->body_written >= job->body_length)
    job_whole_body_sent (job);
  else if (g_get_monotonic_time () - job->last_progress_us >=
      PROGRESS_INTERVAL_US)
    job_report_progress (job);
}

static void
on_wrote_body (SoupMessage * msg, Job * job)
{
  job_whole_body_sent (job);
}

/* An attempt that ended before its whole body was written gets its end
 * (an error, or stopped) after its start: a retry starts again from 0. */
static void
job_report_upload_failed (Job * job, const Response * response,
    gboolean cancelled)
{
  RdClient *client = job->client;
  g_autofree gchar *reason = NULL;
  g_autoptr (GstStructure) details = NULL;

  if (job->body_sent || client->callbacks.upload_failed == NULL)
    return;
  if (!cancelled)
    rd_response_parse_error (client, response, &reason, &details);
  client->callbacks.upload_failed (job->batch, job->body_written,
      job->body_length, cancelled, reason, client->user_data);
}

/* ---- the answer ---- */

static void
job_accepted (Job * job, const Response * response)
{
  RdClient *client = job->client;
  RdBatch *batch = job->batch;
  g_autoptr (GError) error = NULL;
  g_autoptr (RdBatchStatus) status = NULL;
  gssize length;
  const gchar *data = rd_response_data (response, &length);

  status = rd_results_parse_batch (data, length, &error);
  if (status == NULL) {
    g_autofree gchar *what = NULL;

    rd_client_redact_error (client, error);
    what = g_strdup_printf ("the API answered %u with a body that could not "
        "be read (%s)", response->status, error->message);
    rd_job_settle (job, response->status, what, rd_job_post);
    return;
  }

  g_free (batch->uuid);
  batch->uuid = g_strdup (status->uuid);
  rd_job_apply_status (job, status);
  if (g_strv_length (status->detect_uuids) != batch->files->len)
    GST_WARNING ("batch %u: %u files sent, %u detect uuids received; they "
        "are paired by position", batch->index, batch->files->len,
        g_strv_length (status->detect_uuids));
  batch->state = RD_BATCH_STATE_SUBMITTED;
  batch->upload_started_us = 0;
  job->phase = JOB_POLLING;
  job->failures = 0;
  /* the API works: the next outage's probes start from the shortest */
  client->outage.probe_interval = 0;
  /* with a callback to come, polls are the fallback */
  job->poll_interval = job->callback_secret ? client->poll_max_interval :
      client->poll_interval;
  /* Before anything else: from now on a restart must poll, not POST. */
  rd_job_write_manifest (job);
  GST_INFO ("batch %u accepted as %s", batch->index, batch->uuid);
  if (client->callbacks.submitted)
    client->callbacks.submitted (batch, client->user_data);

  if (client->stopping)
    rd_job_cancel (job);
  else if (rd_results_batch_status_is_terminal (batch->status))
    rd_job_terminal (job);
  else {
    /* a callback that came during the upload: look at once */
    rd_job_schedule_poll (job, job->callback_hint ? 0 : job->poll_interval);
    job->callback_hint = FALSE;
  }
}

static void
post_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  Job *job = user_data;
  RdClient *client = job->client;
  Response response = { 0, };
  SoupMessage *msg = job->msg;

  rd_response_read (client, SOUP_SESSION (source), result, msg, &response);
  job->n_requests--;
  g_signal_handlers_disconnect_by_data (msg, job);
  g_clear_object (&job->msg);

  /* Accepted: record it even while stopping, or a next run would send the
   * batch a second time. */
  if (response.error == NULL && SOUP_STATUS_IS_SUCCESSFUL (response.status)) {
    job_accepted (job, &response);
  } else if (rd_response_cancelled (client, &response)) {
    job_report_upload_failed (job, &response, TRUE);
    rd_job_cancel (job);
  } else if (response.status == SOUP_STATUS_UNAUTHORIZED) {
    job_report_upload_failed (job, &response, FALSE);
    rd_job_unauthorized (job, &response);
  } else {
    job_report_upload_failed (job, &response, FALSE);
    switch (rd_retry_classify (TRUE, response.status, response.error,
            job->body_sent)) {
      case RD_RETRY_YES:
        /* provably not created: a next run need not settle it first */
        job->batch->upload_started_us = 0;
        rd_job_write_manifest (job);
        /* out of retries, but provably not accepted (an outage, a busy
         * API): the manifest stays closed, so the next start sends it */
        if (!rd_job_retry (job, &response, rd_job_post)
            && !rd_job_park_in_outage (job, &response, rd_job_post))
          rd_job_fail_response (job, FAIL_KEEP_STATE, &response, TRUE);
        break;
      case RD_RETRY_UNKNOWN_OUTCOME:{
        g_autofree gchar *what = response.status ?
            g_strdup_printf ("HTTP %u", response.status) :
            g_strdup_printf ("network error (%s)", response.error->message);

        rd_job_settle (job, response.status, what, rd_job_post);
        break;
      }
      case RD_RETRY_NO:
        rd_job_fail_response (job, FAIL_RECORD, &response, FALSE);
        break;
    }
  }
  rd_response_clear (&response);
}

void
rd_job_post (Job * job)
{
  RdClient *client = job->client;
  g_autoptr (GError) error = NULL;
  g_autoptr (RdMultipartStream) body = NULL;

  job->phase = JOB_POSTING;
  rd_job_expect_callback (job);
  body = job_build_body (job, &error);
  if (body == NULL) {
    g_autofree gchar *reason = g_strdup_printf ("cannot read the batch's "
        "files: %s", error->message);

    rd_job_fail (job, FAIL_RECORD, 0, reason, NULL, FALSE);
    return;
  }

  job->msg = rd_client_new_message (client, SOUP_METHOD_POST, "/detect/batch",
      NULL);
  /* A redirect would need the body a second time. */
  soup_message_add_flags (job->msg, SOUP_MESSAGE_NO_REDIRECT);
  job->body_length = rd_multipart_stream_get_length (body);
  job->body_written = 0;
  job->body_sent = FALSE;
  job->last_progress_us = 0;
  job->attempt_started_real_us = g_get_real_time ();
  /* Before any byte: a run killed from now on cannot know whether the API
   * got it all, and the next one settles it first. */
  job->batch->upload_started_us = job->attempt_started_real_us;
  rd_job_write_manifest (job);
  soup_message_set_request_body (job->msg,
      rd_multipart_stream_get_content_type (body), G_INPUT_STREAM (body),
      job->body_length);
  g_signal_connect (job->msg, "wrote-body-data",
      G_CALLBACK (on_wrote_body_data), job);
  g_signal_connect (job->msg, "wrote-body", G_CALLBACK (on_wrote_body), job);

  GST_DEBUG ("batch %u: POST of %" G_GUINT64_FORMAT " bytes (attempt %u)",
      job->batch->index, job->body_length, job->failures + 1);
  /* sent == 0 says an attempt starts (the element maps it to a start),
   * before any byte; it does not delay the first report of bytes. */
  if (client->callbacks.progress)
    client->callbacks.progress (job->batch, 0, job->body_length,
        client->user_data);
  job->n_requests++;
  rd_response_send (client, job->msg, post_done, job);
}
