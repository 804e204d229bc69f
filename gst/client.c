/* The API client: the network thread of resembledetectsink. It takes closed
 * batches from any thread, submits at most max_in_flight of them at a time
 * to POST {api_url}/detect/batch as a multipart body streamed from disk,
 * follows each one by polling GET {api_url}/detect/batch/{uuid} until it is
 * terminal, fetches every file's verdict from GET {api_url}/detect/{uuid},
 * and reports all of it through RdClientCallbacks. See docs/client.md. This
 * file is the top of the client: the thread, its GMainContext, the queue of
 * batches and its pump, the public API and the module's vtable. It hands a
 * batch down to client-submit.c (the upload) or, resumed, to
 * client-follow.c (polling), and leaves a batch's life (requests, timers,
 * retries, manifests, its end) to client-job.c, which tells the queue that
 * a slot is free through client->slot_freed. Nothing below calls into this
 * file; it must not build the upload, follow a batch, read answers, or end
 * a batch but through client-job.c.
 *
 * Threading. The client runs on a hub (client-hub.c): a thread with its
 * GMainContext and SoupSession (libsoup3 wants a session used only from
 * the context it dispatches on), given to it or its own, made by
 * rd_client_start(). Every request, timer and callback lives on that
 * context; several clients may share it. rd_client_submit() only appends to a locked queue and attaches an
 * idle source to the client's context, so the streaming thread never waits
 * on the network. rd_client_stop() attaches a high-priority source that
 * cancels the one GCancellable every request shares (on the network thread,
 * because libsoup's cancellation handlers are not thread-safe), reports
 * every unfinished batch as a cancelled error once its request has come
 * back, and waits until nothing of the client runs there any more (the
 * hub's thread goes on for its other clients). A batch submitted after
 * rd_client_stop() gets its cancelled error at once, on the caller's
 * thread. */

#include "client-private.h"

#include <gmodule.h>
#include <string.h>

GST_DEBUG_CATEGORY (rd_client_debug);

#define MIN_POLL_INTERVAL (10 * GST_MSECOND)

#define NO_TOKEN_REASON "no API token: set api-token or RESEMBLE_API_TOKEN"

#define CLIENT_LOCK(c) g_mutex_lock (&(c)->lock)
#define CLIENT_UNLOCK(c) g_mutex_unlock (&(c)->lock)

/* ---- the queue ---- */

static void
job_start (Job * job)
{
  RdClient *client = job->client;

  g_queue_remove (&client->waiting, job);
  client->active = g_list_prepend (client->active, job);
  job->in_flight = TRUE;
  client->in_flight++;

  if (job->resume) {
    /* back from an outage: where it stopped */
    JobSendFunc resume = g_steal_pointer (&job->resume);

    resume (job);
  } else if (job->batch->state == RD_BATCH_STATE_SUBMITTED
      && job->batch->uuid == NULL) {
    /* Resumed after an earlier run settled it: follow its detects. */
    rd_job_follow_detects (job);
  } else if (job->batch->state == RD_BATCH_STATE_CLOSED
      && job->batch->upload_started_us > 0
      && job->batch->settings.zero_retention_mode <= 0) {
    /* An earlier run stopped while uploading it: the API may have it. */
    job->attempt_started_real_us = job->batch->upload_started_us;
    rd_job_settle (job, 0, "an earlier run stopped during its upload",
        rd_job_post);
  } else if (job->batch->state == RD_BATCH_STATE_SUBMITTED) {
    /* Resumed: the API has it already; look at once. */
    job->phase = JOB_POLLING;
    rd_job_resume_callback (job);
    job->poll_interval = job->callback_secret ? client->poll_max_interval :
        client->poll_interval;
    rd_job_poll (job);
  } else {
    rd_job_post (job);
  }
}

static gboolean
client_pump (gpointer user_data)
{
  RdClient *client = user_data;
  guint max = MAX (client->max_in_flight, 1);

  g_clear_pointer (&client->pump_source, g_source_unref);
  /* in an outage batches wait for the probe (client-outage.c) */
  while (!client->stopping && !client->outage.active
      && client->in_flight < max && !g_queue_is_empty (&client->waiting)) {
    Job *job = g_queue_peek_head (&client->waiting);

    /* Its time went by in the queue: it was never sent (or, resumed, the
     * API has it), so its manifest stays for a next run. */
    if (rd_job_time_left (job) == 0) {
      g_autofree gchar *reason = g_strdup_printf ("poll timeout after %"
          G_GUINT64_FORMAT " s: the batch waited for a slot all that time",
          client->poll_timeout / GST_SECOND);

      rd_job_fail (job, FAIL_KEEP_STATE, 0, reason, NULL, FALSE);
      continue;
    }
    job_start (job);
  }
  return G_SOURCE_REMOVE;
}

/* Starting batches from an idle source keeps one batch's final callback
 * from running inside another's. */
static void
client_schedule_pump (RdClient * client)
{
  if (client->pump_source || client->stopping)
    return;
  client->pump_source = g_idle_source_new ();
  g_source_set_callback (client->pump_source, client_pump, client, NULL);
  g_source_attach (client->pump_source, client->context);
}

/* Settled by an earlier run without learning its uuid (client-settle.c). */
static gboolean
batch_has_every_detect_uuid (const RdBatch * batch)
{
  guint i;

  for (i = 0; i < batch->files->len; i++) {
    const RdBatchFile *file = g_ptr_array_index (batch->files, i);

    if (file->detect_uuid == NULL)
      return FALSE;
  }
  return batch->files->len > 0;
}

/* A batch arrives on the network thread: what can be refused without a
 * request is refused now, the rest waits for a slot. */
static void
client_accept (RdClient * client, RdBatch * batch)
{
  Job *job = rd_job_new (client, batch);
  g_autoptr (GError) error = NULL;

  g_queue_push_tail (&client->waiting, job);

  if (client->stopping) {
    rd_job_cancel (job);
    return;
  }
  if (client->token == NULL || client->token[0] == '\0') {
    rd_job_fail (job, FAIL_KEEP_STATE, 0, NO_TOKEN_REASON, NULL, FALSE);
    return;
  }
  if (client->unauthorized) {
    rd_job_fail (job, FAIL_KEEP_STATE, SOUP_STATUS_UNAUTHORIZED,
        client->unauthorized_reason, NULL, FALSE);
    return;
  }

  switch (batch->state) {
    case RD_BATCH_STATE_SUBMITTED:
      if (batch->uuid != NULL || batch_has_every_detect_uuid (batch))
        break;
      /* fall through */
    case RD_BATCH_STATE_OPEN:
    case RD_BATCH_STATE_DONE:
    case RD_BATCH_STATE_ERROR:{
      g_autofree gchar *reason = g_strdup_printf ("a batch in state %s%s "
          "cannot be submitted", rd_batch_state_to_string (batch->state),
          batch->state == RD_BATCH_STATE_SUBMITTED ? " without a uuid" : "");

      rd_job_fail (job, FAIL_KEEP_STATE, 0, reason, NULL, FALSE);
      return;
    }
    case RD_BATCH_STATE_CLOSED:
      if (!rd_batch_validate (batch, &error)
          || !rd_settings_validate (&batch->settings, &error)) {
        rd_job_fail (job, FAIL_RECORD, 0, error->message, NULL, FALSE);
        return;
      }
      break;
  }
  client_schedule_pump (client);
}

static gboolean
client_take_incoming (gpointer user_data)
{
  RdClient *client = user_data;
  GQueue incoming = G_QUEUE_INIT;
  RdBatch *batch;

  CLIENT_LOCK (client);
  incoming = client->incoming;
  g_queue_init (&client->incoming);
  client->wake_scheduled = FALSE;
  CLIENT_UNLOCK (client);

  while ((batch = g_queue_pop_head (&incoming)))
    client_accept (client, batch);
  return G_SOURCE_REMOVE;
}

/* With the lock held. */
static void
client_wake_locked (RdClient * client)
{
  GSource *source;

  if (client->wake_scheduled)
    return;
  client->wake_scheduled = TRUE;
  source = g_idle_source_new ();
  g_source_set_callback (source, client_take_incoming, client, NULL);
  g_source_attach (source, client->context);
  g_source_unref (source);
}

static gboolean
client_shutdown (gpointer user_data)
{
  RdClient *client = user_data;
  GList *active, *l;
  Job *job;

  client->stopping = TRUE;
  g_cancellable_cancel (client->cancellable);
  rd_client_clear_timer (&client->pump_source);
  client_take_incoming (client);
  rd_client_receiver_stop (client);

  while ((job = g_queue_peek_head (&client->waiting)))
    rd_job_cancel (job);
  rd_client_outage_release (client, TRUE);

  active = g_list_copy (client->active);
  for (l = active; l; l = l->next) {
    guint i;

    job = l->data;
    rd_client_clear_timer (&job->timer);
    if (job->fetches) {
      for (i = 0; i < job->batch->files->len; i++) {
        if (job->fetches[i].timer) {
          rd_client_clear_timer (&job->fetches[i].timer);
          job->fetches_active--;
        }
      }
    }
    /* Otherwise the cancelled request's callback ends it. */
    if (job->n_requests == 0)
      rd_job_cancel (job);
  }
  g_list_free (active);
  rd_client_check_quit (client);
  return G_SOURCE_REMOVE;
}

/* ---- public ---- */

void
rd_client_debug_init (void)
{
  static gsize initialized = 0;

  if (g_once_init_enter (&initialized)) {
    GST_DEBUG_CATEGORY_INIT (rd_client_debug, "resembledetect", 0,
        "Resemble AI deepfake detection");
    g_once_init_leave (&initialized, 1);
  }
}

RdClient *
rd_client_new (const RdClientConfig * config,
    const RdClientCallbacks * callbacks, gpointer user_data)
{
  RdClient *client;
  gsize len;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (config->api_url != NULL, NULL);

  rd_client_debug_init ();
  client = g_new0 (RdClient, 1);
  client->api_url = g_strdup (config->api_url);
  len = strlen (client->api_url);
  while (len > 0 && client->api_url[len - 1] == '/')
    client->api_url[--len] = '\0';
  client->token = g_strdup (config->token);
  client->user_agent = g_strdup (config->user_agent);
  client->max_retries = config->max_retries;
  client->max_in_flight = config->max_in_flight;
  /* The element enforces 1 s; this only keeps a zero from spinning. */
  client->poll_interval = MAX (config->poll_interval, MIN_POLL_INTERVAL);
  client->poll_max_interval = MAX (config->poll_max_interval,
      client->poll_interval);
  client->poll_timeout = config->poll_timeout;
  client->fetch_results = config->fetch_results;
  client->keep_files = config->keep_files;
  client->receiver.listen = g_strdup (config->callback_listen);
  client->receiver.public_url = g_strdup (config->callback_public_url);
  if (client->receiver.public_url) {
    len = strlen (client->receiver.public_url);
    while (len > 0 && client->receiver.public_url[len - 1] == '/')
      client->receiver.public_url[--len] = '\0';
  }
  client->receiver.jobs = g_hash_table_new (g_str_hash, g_str_equal);
  if (callbacks)
    client->callbacks = *callbacks;
  client->user_data = user_data;

  if (config->hub)
    client->hub = rd_client_hub_ref (config->hub);
  client->cancellable = g_cancellable_new ();
  g_mutex_init (&client->lock);
  g_cond_init (&client->finished_cond);
  g_queue_init (&client->incoming);
  g_queue_init (&client->waiting);
  g_queue_init (&client->outage.parked);
  client->slot_freed = client_schedule_pump;
  return client;
}

typedef struct
{
  RdClient *client;
  GError **error;
  gboolean ok;
} ReceiverStart;

static gboolean
receiver_start_on_hub (gpointer data)
{
  ReceiverStart *start = data;

  start->ok = rd_client_receiver_start (start->client, start->error);
  return G_SOURCE_REMOVE;
}

gboolean
rd_client_start (RdClient * client, GError ** error)
{
  g_autoptr (GUri) uri = NULL;
  ReceiverStart receiver = { client, error, FALSE };
  const gchar *scheme;

  g_return_val_if_fail (client != NULL, FALSE);

  uri = g_uri_parse (client->api_url, SOUP_HTTP_URI_FLAGS, NULL);
  scheme = uri ? g_uri_get_scheme (uri) : NULL;
  if (uri == NULL || (g_ascii_strcasecmp (scheme, "http") != 0
          && g_ascii_strcasecmp (scheme, "https") != 0)
      || g_uri_get_host (uri) == NULL || g_uri_get_host (uri)[0] == '\0') {
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
        "api-url \"%s\" is not an http(s) URL", client->api_url);
    return FALSE;
  }

  CLIENT_LOCK (client);
  if (client->started || client->stopped || client->session) {
    CLIENT_UNLOCK (client);
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
        "the client was started already");
    return FALSE;
  }
  if (client->hub == NULL)
    client->hub = rd_client_hub_new (client->user_agent, error);
  if (client->hub == NULL) {
    CLIENT_UNLOCK (client);
    return FALSE;
  }
  client->context = client->hub->context;
  client->session = client->hub->session;
  CLIENT_UNLOCK (client);

  /* the receiver's sources belong on the hub's context: made there */
  rd_client_hub_invoke_sync (client->hub, receiver_start_on_hub, &receiver);
  if (!receiver.ok)
    return FALSE;

  CLIENT_LOCK (client);
  client->started = TRUE;
  if (!g_queue_is_empty (&client->incoming))
    client_wake_locked (client);
  CLIENT_UNLOCK (client);
  return TRUE;
}

/* A batch that will never reach the network thread (not started, or
 * stopped): its cancelled error comes from the caller's thread. */
static void
client_cancel_now (RdClient * client, RdBatch * batch)
{
  if (client->callbacks.error)
    client->callbacks.error (batch, 0, CANCELLED_REASON, NULL, TRUE,
        client->user_data);
  rd_batch_free (batch);
  rd_client_pending_drop (client);
}

void
rd_client_submit (RdClient * client, RdBatch * batch)
{
  g_return_if_fail (client != NULL);
  g_return_if_fail (batch != NULL);

  g_atomic_int_inc (&client->pending);
  CLIENT_LOCK (client);
  if (client->stopped) {
    CLIENT_UNLOCK (client);
    client_cancel_now (client, batch);
    return;
  }
  g_queue_push_tail (&client->incoming, batch);
  if (client->started)
    client_wake_locked (client);
  CLIENT_UNLOCK (client);
}

guint
rd_client_get_pending (RdClient * client)
{
  g_return_val_if_fail (client != NULL, 0);

  return (guint) g_atomic_int_get (&client->pending);
}

static gboolean
client_drain (gpointer user_data)
{
  RdClient *client = user_data;

  client->draining = TRUE;
  client_take_incoming (client);
  rd_client_outage_release (client, FALSE);
  client_schedule_pump (client);
  return G_SOURCE_REMOVE;
}

void
rd_client_drain (RdClient * client)
{
  GSource *source;

  g_return_if_fail (client != NULL);

  CLIENT_LOCK (client);
  if (!client->started || client->stopped) {
    CLIENT_UNLOCK (client);
    return;
  }
  source = g_idle_source_new ();
  g_source_set_callback (source, client_drain, client, NULL);
  g_source_attach (source, client->context);
  g_source_unref (source);
  CLIENT_UNLOCK (client);
}

void
rd_client_stop (RdClient * client)
{
  GSource *source;
  RdBatch *batch;

  g_return_if_fail (client != NULL);

  CLIENT_LOCK (client);
  if (client->stopped) {
    CLIENT_UNLOCK (client);
    return;
  }
  if (client->started && client->hub->thread == g_thread_self ()) {
    /* It would wait for itself. */
    CLIENT_UNLOCK (client);
    g_critical ("rd_client_stop() called from a client callback");
    return;
  }
  client->stopped = TRUE;
  if (!client->started) {
    GQueue never_started = client->incoming;

    g_queue_init (&client->incoming);
    CLIENT_UNLOCK (client);
    while ((batch = g_queue_pop_head (&never_started)))
      client_cancel_now (client, batch);
    return;
  }
  CLIENT_UNLOCK (client);

  /* Cancelling happens on the network thread, ahead of anything else. */
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_HIGH);
  g_source_set_callback (source, client_shutdown, client, NULL);
  g_source_attach (source, client->context);
  g_source_unref (source);

  CLIENT_LOCK (client);
  while (!client->finished)
    g_cond_wait (&client->finished_cond, &client->lock);
  CLIENT_UNLOCK (client);
}

void
rd_client_free (RdClient * client)
{
  if (client == NULL)
    return;

  rd_client_stop (client);
  rd_client_hub_unref (client->hub);
  g_object_unref (client->cancellable);
  g_mutex_clear (&client->lock);
  g_cond_clear (&client->finished_cond);
  g_free (client->unauthorized_reason);
  g_free (client->outage.reason);
  g_hash_table_unref (client->receiver.jobs);
  g_free (client->receiver.listen);
  g_free (client->receiver.public_url);
  g_free (client->api_url);
  if (client->token)
    memset (client->token, 0, strlen (client->token));
  g_free (client->token);
  g_free (client->user_agent);
  g_free (client);
}

static const RdClientVTable client_vtable = {
  rd_client_new,
  rd_client_start,
  rd_client_submit,
  rd_client_get_pending,
  rd_client_stop,
  rd_client_free,
  TRUE,
  rd_client_drain,
  rd_client_hub_new,
  rd_client_hub_unref,
};

/* The module's entry point: the element loads the module and asks it for
 * this table. */
G_MODULE_EXPORT const RdClientVTable *
rd_client_get_vtable (void)
{
  return &client_vtable;
}
