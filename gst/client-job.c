/* A batch's life, shared by every stage of the API client: a job is
 * created, its manifest written, its requests built (with the token in
 * their Authorization header) and timed, a failed POST or poll sent again
 * when retry.c allows, and it ends in exactly one way (done, failed, failed
 * with an unknown outcome, cancelled, or refused with a 401), after which
 * its files are deleted, the pending count drops and its slot in
 * max_in_flight is given back. The layers above (client.c, client-submit.c,
 * client-follow.c) call down into this file; it calls only
 * client-response.c and retry.c. It must not start a request of its own,
 * nor call the queue: when a job gives back its slot it calls
 * client->slot_freed, which client.c set, and a retry sends again through
 * the function the stage that asked for it handed over.
 *
 * Manifests. Each state is written before its callback: submitted (with the
 * uuid and detect uuids) before the submitted callback and before any poll,
 * done before done, error before error. A batch that never reached the API
 * because the token is missing or was refused (401) keeps its manifest as
 * it was (closed or submitted), so that a next run with a valid token picks
 * it up; so does a cancelled one, except that a POST cancelled after its
 * whole body was sent is recorded as an error with an unknown outcome, and
 * so does an accepted batch whose polls kept failing transiently (the API
 * has it: a next run polls it again).
 *
 * Order of a batch's end. Verdicts are fetched at most four at a time and
 * reported in file order, each as soon as it and the ones before it are
 * known; then the done manifest is written, the files the API confirmed
 * (with a detect uuid) are deleted (unless keep_files), done is called,
 * and only then does the pending count drop, with idle following if it
 * reached 0: the element holds EOS on that count. On a 401 the batches'
 * errors come before the one unauthorized call. */

#include "client-private.h"

#include <glib/gstdio.h>
#include <errno.h>
#include <string.h>

#include "manifest.h"

/* ---- requests and timers ---- */

SoupMessage *
rd_client_new_message (RdClient * client, const gchar * method,
    const gchar * path, const gchar * id)
{
  g_autofree gchar *escaped = NULL;
  g_autofree gchar *url = NULL;
  g_autofree gchar *auth = NULL;
  SoupMessageHeaders *headers;
  SoupMessage *msg;

  if (id != NULL)
    escaped = g_uri_escape_string (id, NULL, FALSE);
  url = g_strconcat (client->api_url, path, escaped, NULL);
  msg = soup_message_new (method, url);
  /* The URL was checked in rd_client_start() and the id is escaped. */
  g_assert (msg != NULL);

  headers = soup_message_get_request_headers (msg);
  auth = g_strconcat ("Bearer ", client->token, NULL);
  soup_message_headers_replace (headers, "Authorization", auth);
  memset (auth, 0, strlen (auth));
  soup_message_headers_replace (headers, "Accept", "application/json");
  /* The token goes to api-url's host only, and only its answers count. A
   * libsoup before 3.6.5 without the fix of CVE-2025-46421 (Debian 12
   * backported it in 3.2.3-0+deb12u1; 3.2.2-2 lacks it) keeps the
   * Authorization header on a redirect to another host, and one with it
   * would still take the other host's answer: no redirect is followed,
   * and client-response.c reports where it pointed. */
  soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT);

  /* libsoup 3.2 (Debian 12) crashes when it restarts a request. An
   * idempotent request whose first attempt fails at once on a reused
   * connection (the server closed it as the request arrived) is restarted
   * on another connection within the same main-loop iteration; the first
   * attempt's error, whose GTask return was deferred to an idle, then
   * arrives while the restarted attempt runs, and run_until_read_done()
   * (soup-session.c) takes it for the restarted attempt's: it finishes the
   * message, the queue item is freed, and the restarted attempt's own
   * deferred return then reads the freed item (use-after-free, found with
   * ASan on a debug build of libsoup 3.2.3 and the emulator's drop faults).
   * libsoup only restarts a request that was the first on a reused
   * connection, so a GET (the only idempotent method sent) always opens
   * its own connection: its failure comes to us, and retry.c decides.
   * POSTs are never restarted by libsoup and keep reusing connections. */
  if (strcmp (method, SOUP_METHOD_POST) != 0)
    soup_message_add_flags (msg, SOUP_MESSAGE_NEW_CONNECTION);
  return msg;
}

GSource *
rd_client_add_timer (RdClient * client, GstClockTime delay, GSourceFunc func,
    gpointer data)
{
  GSource *source;
  guint ms = (guint) MIN ((delay + GST_MSECOND - 1) / GST_MSECOND, G_MAXUINT);

  source = g_timeout_source_new (ms);
  g_source_set_callback (source, func, data, NULL);
  g_source_attach (source, client->context);
  return source;
}

void
rd_client_clear_timer (GSource ** timer)
{
  if (*timer) {
    g_source_destroy (*timer);
    g_source_unref (*timer);
    *timer = NULL;
  }
}

/* ---- jobs ---- */

/* The budget starts (again: a batch resumed after an outage) now. */
void
rd_job_renew_deadline (Job * job)
{
  RdClient *client = job->client;

  job->deadline_us = G_MAXINT64;
  if (client->poll_timeout != 0 && GST_CLOCK_TIME_IS_VALID
      (client->poll_timeout))
    job->deadline_us = g_get_monotonic_time () +
        (gint64) MIN (client->poll_timeout / GST_USECOND, G_MAXINT64 / 4);
}

/* What is left of the batch's budget (poll_timeout, counted from when the
 * client took the batch, so that every batch ends within it, waiting for a
 * slot, uploading, backing off, polling and fetching included);
 * GST_CLOCK_TIME_NONE when there is no bound. */
GstClockTime
rd_job_time_left (Job * job)
{
  gint64 now = g_get_monotonic_time ();

  if (job->deadline_us == G_MAXINT64)
    return GST_CLOCK_TIME_NONE;
  return now >= job->deadline_us ? 0 :
      (GstClockTime) (job->deadline_us - now) * GST_USECOND;
}

void
rd_job_write_manifest (Job * job)
{
  g_autoptr (GError) error = NULL;

  if (!rd_manifest_write (job->batch, &error))
    GST_WARNING ("batch %u: could not write its manifest: %s",
        job->batch->index, error->message);
}

/* Only files the API confirmed (it gave them a detect uuid): the outcome
 * of any other file is unknown, so it stays for inspection or a resend. */
static void
job_delete_files (Job * job)
{
  guint i;

  for (i = 0; i < job->batch->files->len; i++) {
    const RdBatchFile *file = g_ptr_array_index (job->batch->files, i);
    g_autofree gchar *path = NULL;

    if (file->detect_uuid == NULL) {
      GST_INFO ("batch %u: keeping %s, which the API gave no detect uuid",
          job->batch->index, file->name);
      continue;
    }
    path = rd_batch_file_path (job->batch, file);
    if (g_unlink (path) != 0 && errno != ENOENT)
      GST_WARNING ("batch %u: could not delete %s: %s", job->batch->index,
          path, g_strerror (errno));
  }
}

Job *
rd_job_new (RdClient * client, RdBatch * batch)
{
  Job *job = g_new0 (Job, 1);

  job->client = client;
  job->batch = batch;
  job->phase = JOB_QUEUED;
  rd_job_renew_deadline (job);
  return job;
}

static void
job_free (Job * job)
{
  guint i;

  g_assert (job->n_requests == 0);
  rd_client_clear_timer (&job->timer);
  if (job->callback_secret) {
    g_hash_table_remove (job->client->receiver.jobs, job->callback_secret);
    g_free (job->callback_secret);
  }
  g_free (job->settle.what);
  if (job->settle.found) {
    for (i = 0; i < job->batch->files->len; i++)
      g_free (job->settle.found[i]);
    g_free (job->settle.found);
  }
  if (job->fetches) {
    for (i = 0; i < job->batch->files->len; i++) {
      rd_client_clear_timer (&job->fetches[i].timer);
      if (job->fetches[i].result)
        gst_structure_free (job->fetches[i].result);
    }
    g_free (job->fetches);
  }
  rd_batch_free (job->batch);
  g_free (job);
}

/* ---- finishing a batch ---- */

static gboolean
client_finished (gpointer user_data)
{
  RdClient *client = user_data;

  g_clear_pointer (&client->finish_source, g_source_unref);
  g_mutex_lock (&client->lock);
  client->finished = TRUE;
  g_cond_broadcast (&client->finished_cond);
  g_mutex_unlock (&client->lock);
  return G_SOURCE_REMOVE;
}

/* While stopping, the client is finished with its last job. */
void
rd_client_check_quit (RdClient * client)
{
  if (client->stopping && client->active == NULL
      && g_queue_is_empty (&client->waiting)
      && g_queue_is_empty (&client->outage.parked)
      && client->outage.probe == NULL && client->finish_source == NULL) {
    /* from an idle of its own: nothing of the client is on the stack when
     * rd_client_stop() returns and the client may be freed */
    client->finish_source = g_idle_source_new ();
    g_source_set_priority (client->finish_source, G_PRIORITY_LOW);
    g_source_set_callback (client->finish_source, client_finished, client,
        NULL);
    g_source_attach (client->finish_source, client->context);
  }
}

/* A job that leaves its slot tells the queue through slot_freed, which
 * client.c set: the queue is above this file. */
static void
client_detach_job (RdClient * client, Job * job)
{
  if (job->parked)
    g_queue_remove (&client->outage.parked, job);
  else if (job->phase == JOB_QUEUED)
    g_queue_remove (&client->waiting, job);
  else
    client->active = g_list_remove (client->active, job);
  job->parked = FALSE;
  if (job->in_flight) {
    job->in_flight = FALSE;
    client->in_flight--;
    client->slot_freed (client);
  }
}

/* Out of the active batches and its slot, into client-outage.c's hands
 * (which queues it): @resume sends it again when the API answers. */
void
rd_job_park (Job * job, JobSendFunc resume)
{
  client_detach_job (job->client, job);
  job->parked = TRUE;
  job->resume = resume;
}

/* The pending count drops only after a batch's final callback: the element
 * holds EOS while it is above 0, so the batch's own message must be posted
 * by then. idle follows when the count reaches 0. A hold (an increment
 * without a batch) keeps idle back until a group of callbacks is over. */
void
rd_client_pending_drop (RdClient * client)
{
  if (g_atomic_int_dec_and_test (&client->pending) && client->callbacks.idle)
    client->callbacks.idle (client->user_data);
}

/* The one final callback of a batch, every way a batch ends. */
static void
job_finish (Job * job, const GPtrArray * results, guint http_status,
    const gchar * reason, const GstStructure * details, gboolean cancelled)
{
  RdClient *client = job->client;
  const RdClientCallbacks *cb = &client->callbacks;

  client_detach_job (client, job);
  if (results != NULL) {
    if (cb->done)
      cb->done (job->batch, results, client->user_data);
  } else if (cb->error) {
    cb->error (job->batch, http_status, reason, details, cancelled,
        client->user_data);
  }
  job_free (job);
  rd_client_pending_drop (client);
  rd_client_check_quit (client);
}

void
rd_job_fail (Job * job, FailMode mode, guint http_status, const gchar * reason,
    const GstStructure * details, gboolean cancelled)
{
  RdBatch *batch = job->batch;

  GST_WARNING ("batch %u: %s", batch->index, reason);
  if (mode == FAIL_RECORD) {
    batch->state = RD_BATCH_STATE_ERROR;
    batch->error_http_status = http_status;
    g_free (batch->error_reason);
    batch->error_reason = g_strdup (reason);
    rd_job_write_manifest (job);
  }
  job_finish (job, NULL, http_status, reason, details, cancelled);
}

void
rd_job_fail_unknown_outcome (Job * job, guint http_status, const gchar * what,
    gboolean cancelled)
{
  g_autofree gchar *reason = g_strdup_printf ("outcome unknown: %s after "
      "the whole upload was sent; the API may have created the batch, and it "
      "was not sent again because a retry could create a duplicate batch",
      what);

  rd_job_fail (job, FAIL_RECORD, http_status, reason, NULL, cancelled);
}

/* Stopped: what the manifest says is what happened (closed: not accepted;
 * submitted: accepted, a next run polls it), except for an upload that was
 * sent whole and never answered. */
void
rd_job_cancel (Job * job)
{
  if ((job->phase == JOB_POSTING && job->body_sent) || job->ambiguous) {
    rd_job_fail_unknown_outcome (job, 0, "the client was stopped", TRUE);
    return;
  }
  job_finish (job, NULL, 0, CANCELLED_REASON, NULL, TRUE);
}

/* Ends a batch that is not finished but must not wait (the client drains):
 * its manifest stays as it is (closed or submitted, for a next run),
 * except for a POST of unknown outcome, which is recorded so. */
void
rd_job_fail_kept (Job * job, guint http_status, const gchar * reason)
{
  if (job->ambiguous)
    rd_job_fail_unknown_outcome (job, http_status, reason, FALSE);
  else
    rd_job_fail (job, FAIL_KEEP_STATE, http_status, reason, NULL, FALSE);
}

void
rd_job_done (Job * job)
{
  RdClient *client = job->client;
  RdBatch *batch = job->batch;
  g_autoptr (GPtrArray) results =
      g_ptr_array_new_with_free_func ((GDestroyNotify) gst_structure_free);
  guint i;

  if (job->fetches) {
    for (i = 0; i < batch->files->len; i++)
      g_ptr_array_add (results, g_steal_pointer (&job->fetches[i].result));
  }
  batch->state = RD_BATCH_STATE_DONE;
  rd_job_write_manifest (job);
  /* Only after the done manifest: a crash in between leaves files that a
   * next run knows are finished, never a manifest without its files. */
  if (!client->keep_files)
    job_delete_files (job);
  GST_INFO ("batch %u (%s): %s, %u completed, %u failed", batch->index,
      batch->uuid, batch->status, batch->completed_count, batch->failed_count);
  job_finish (job, results, 0, NULL, NULL, FALSE);
}

/* 401: the token is wrong for every batch. Batches that did not reach the
 * API keep their manifests, so a next run with a valid token sends them.
 * The batches' errors come first and unauthorized (once) last: the element
 * turns unauthorized into an element error, which ends the pipeline before
 * anything after it could be posted; idle, which lets the element post
 * EOS, comes after both. */
void
rd_client_unauthorized (RdClient * client, Job * job, const gchar * reason,
    const GstStructure * details)
{
  gboolean first = !client->unauthorized;
  Job *queued;

  g_atomic_int_inc (&client->pending);
  if (first) {
    client->unauthorized = TRUE;
    client->unauthorized_reason = g_strdup (reason);
  }
  if (job)
    rd_job_fail (job, FAIL_KEEP_STATE, SOUP_STATUS_UNAUTHORIZED, reason,
        details, FALSE);
  while ((queued = g_queue_peek_head (&client->waiting)))
    rd_job_fail (queued, FAIL_KEEP_STATE, SOUP_STATUS_UNAUTHORIZED,
        client->unauthorized_reason, NULL, FALSE);
  if (first && client->callbacks.unauthorized)
    client->callbacks.unauthorized (client->unauthorized_reason,
        client->user_data);
  rd_client_pending_drop (client);
}

/* ---- retries and failed answers ---- */

/* Backoff (or Retry-After) for retry @attempt, cut to what is left of the
 * budget: the last attempt is made at the deadline, not after it. */
GstClockTime
rd_job_retry_delay (Job * job, guint attempt, const Response * response)
{
  GstClockTime delay = rd_retry_delay (attempt,
      rd_response_parse_retry_after (response->retry_after),
      g_random_double ());
  GstClockTime left = rd_job_time_left (job);

  return GST_CLOCK_TIME_IS_VALID (left) ? MIN (delay, left) : delay;
}

/* Why a request is not sent again: its retries, or the batch's time. */
gchar *
rd_job_gave_up_reason (Job * job, const gchar * reason, guint failures)
{
  RdClient *client = job->client;

  if (rd_job_time_left (job) == 0)
    return g_strdup_printf ("%s (gave up at the poll-timeout of %"
        G_GUINT64_FORMAT " s, after %u retries)", reason,
        client->poll_timeout / GST_SECOND, failures);
  return g_strdup_printf ("%s (gave up after %u retries)", reason, failures);
}

static gboolean
job_retry_timer (Job * job)
{
  g_clear_pointer (&job->timer, g_source_unref);
  job->resend (job);
  return G_SOURCE_REMOVE;
}

/* Another attempt of the POST or poll, if any are left: @resend, handed
 * over by the stage whose request failed, sends it again. */
gboolean
rd_job_retry (Job * job, const Response * response, JobSendFunc resend)
{
  RdClient *client = job->client;
  GstClockTime delay;

  if (job->failures >= client->max_retries || rd_job_time_left (job) == 0)
    return FALSE;
  job->failures++;
  job->body_sent = FALSE;
  job->resend = resend;
  delay = rd_job_retry_delay (job, job->failures, response);
  GST_INFO ("batch %u: attempt %u failed (HTTP %u), retrying in %"
      GST_TIME_FORMAT, job->batch->index, job->failures, response->status,
      GST_TIME_ARGS (delay));
  job->timer =
      rd_client_add_timer (client, delay, (GSourceFunc) job_retry_timer, job);
  return TRUE;
}

void
rd_job_fail_response (Job * job, FailMode mode, const Response * response,
    gboolean gave_up)
{
  g_autofree gchar *reason = NULL;
  g_autofree gchar *full = NULL;
  g_autoptr (GstStructure) details = NULL;

  rd_response_parse_error (job->client, response, &reason, &details);
  if (gave_up)
    full = rd_job_gave_up_reason (job, reason, job->failures);
  rd_job_fail (job, mode, response->status, full ? full : reason, details,
      FALSE);
}

void
rd_job_unauthorized (Job * job, const Response * response)
{
  g_autofree gchar *reason = NULL;
  g_autoptr (GstStructure) details = NULL;

  rd_response_parse_error (job->client, response, &reason, &details);
  rd_client_unauthorized (job->client, job, reason, details);
}
