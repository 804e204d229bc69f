/* Outages within one run. A batch whose request failed for want of the API
 * (no connection, a timeout, 429, 502, 503 or 504) until its retries or its
 * time budget ran out is parked rather than ended: it keeps its files and
 * manifest on disk (where the spool still counts its bytes against
 * max-spool-bytes), gives back its slot, and waits. The first parked batch
 * starts an outage: the client says so once (the element posts a warning),
 * stops starting batches, and probes the API with one small request (GET
 * {api_url}/detect?page=1&page_size=10) at a backoff from poll_interval up
 * to poll_max_interval. The first answer that is not one of those failures
 * ends the outage (the element posts an info message): the parked batches
 * go back to the head of the queue in their order, each with its retries
 * and its budget renewed, and go on where they stopped (its POST, its
 * settling, or its polls).
 *
 * When the element drains (EOS) nothing waits any more: the parked and
 * queued batches of an outage end at once with their error, manifests as
 * they were, so that EOS is not held by an API that does not answer; a
 * next run finishes them.
 *
 * It sits below the stages (client-submit.c, client-settle.c,
 * client-follow.c), which hand it a request that gave up, and above
 * client-job.c; it reaches the queue only through client->slot_freed. */

#include "client-private.h"

#define PROBE_PATH "/detect?page=1&page_size=10"

static void probe_send (RdClient * client);

/* The API did not answer, as opposed to answering no. */
static gboolean
response_is_outage (const Response * response)
{
  switch (response->status) {
    case 0:
      return response->error != NULL
          && !g_error_matches (response->error, G_IO_ERROR,
          G_IO_ERROR_CANCELLED);
    case 429:                  /* Too Many Requests */
    case SOUP_STATUS_BAD_GATEWAY:
    case SOUP_STATUS_SERVICE_UNAVAILABLE:
    case SOUP_STATUS_GATEWAY_TIMEOUT:
      return TRUE;
    default:
      return FALSE;
  }
}

static gboolean
probe_timer (gpointer user_data)
{
  RdClient *client = user_data;

  g_clear_pointer (&client->outage.probe_timer, g_source_unref);
  probe_send (client);
  return G_SOURCE_REMOVE;
}

static void
probe_schedule (RdClient * client)
{
  client->outage.probe_interval = client->outage.probe_interval == 0 ?
      client->poll_interval :
      rd_retry_next_poll_interval (client->outage.probe_interval,
      client->poll_max_interval);
  client->outage.probe_timer = rd_client_add_timer (client,
      client->outage.probe_interval, probe_timer, client);
}

static void
outage_end (RdClient * client)
{
  gint64 lasted_us = g_get_monotonic_time () - client->outage.started_us;
  guint waiting = g_queue_get_length (&client->outage.parked);
  Job *job;

  GST_INFO ("the API answers again after %" G_GINT64_FORMAT " s: %u "
      "batches resume", lasted_us / G_USEC_PER_SEC, waiting);
  client->outage.active = FALSE;
  g_clear_pointer (&client->outage.reason, g_free);
  /* in the order they were parked, ahead of the batches queued since */
  while ((job = g_queue_pop_tail (&client->outage.parked))) {
    job->parked = FALSE;
    job->phase = JOB_QUEUED;
    g_queue_push_head (&client->waiting, job);
  }
  for (GList * l = client->waiting.head; l; l = l->next) {
    job = l->data;
    job->failures = 0;
    rd_job_renew_deadline (job);
  }
  if (client->callbacks.outage)
    client->callbacks.outage (FALSE, NULL, waiting, lasted_us * GST_USECOND,
        client->user_data);
  client->slot_freed (client);
}

static void
probe_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  RdClient *client = user_data;
  Response response = { 0, };

  rd_response_read (client, SOUP_SESSION (source), result,
      client->outage.probe, &response);
  g_clear_object (&client->outage.probe);

  if (rd_response_cancelled (client, &response) || !client->outage.active) {
    rd_client_check_quit (client);
  } else if (response_is_outage (&response)) {
    GST_DEBUG ("probe: the API still does not answer (HTTP %u)",
        response.status);
    probe_schedule (client);
  } else {
    outage_end (client);
  }
  rd_response_clear (&response);
}

static void
probe_send (RdClient * client)
{
  client->outage.probe = rd_client_new_message (client, SOUP_METHOD_GET,
      PROBE_PATH, NULL);
  rd_response_send (client, client->outage.probe, probe_done, client);
}

static void
outage_start (RdClient * client, const gchar * reason)
{
  client->outage.active = TRUE;
  client->outage.started_us = g_get_monotonic_time ();
  client->outage.reason = g_strdup (reason);
  GST_WARNING ("the API does not answer (%s): batches wait on disk", reason);
  if (client->callbacks.outage)
    client->callbacks.outage (TRUE, reason, 1, 0, client->user_data);
  probe_schedule (client);
}

/* TRUE when @job was parked; otherwise the caller ends it. */
gboolean
rd_job_park_in_outage (Job * job, const Response * response, JobSendFunc resume)
{
  RdClient *client = job->client;
  g_autofree gchar *reason = NULL;
  g_autoptr (GstStructure) details = NULL;

  if (client->draining || client->stopping || !response_is_outage (response))
    return FALSE;
  rd_response_parse_error (client, response, &reason, &details);
  GST_INFO ("batch %u: parked until the API answers again (%s)",
      job->batch->index, reason);
  rd_client_clear_timer (&job->timer);
  rd_job_park (job, resume);
  g_queue_push_tail (&client->outage.parked, job);
  if (!client->outage.active)
    outage_start (client, reason);
  return TRUE;
}

/* Draining, or stopping: nothing waits for the API any more. */
void
rd_client_outage_release (RdClient * client, gboolean cancelled)
{
  Job *job;

  rd_client_clear_timer (&client->outage.probe_timer);
  while ((job = g_queue_peek_head (&client->outage.parked))) {
    if (cancelled) {
      rd_job_cancel (job);
    } else {
      g_autofree gchar *reason = g_strdup_printf ("the API does not "
          "answer (%s); kept for a next run", client->outage.reason);

      rd_job_fail_kept (job, 0, reason);
    }
  }
  if (!cancelled && client->outage.active) {
    while ((job = g_queue_peek_head (&client->waiting))) {
      g_autofree gchar *reason = g_strdup_printf ("the API does not "
          "answer (%s); not sent, kept for a next run",
          client->outage.reason);

      rd_job_fail_kept (job, 0, reason);
    }
  }
  /* what comes after a drain is tried, and ends, as usual */
  client->outage.active = FALSE;
  client->outage.probe_interval = 0;
  g_clear_pointer (&client->outage.reason, g_free);
}
