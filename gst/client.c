/* The API client: the network thread of resembledetectsink. It takes closed
 * batches from any thread, submits at most max_in_flight of them at a time
 * to POST {api_url}/detect/batch as a multipart body streamed from disk,
 * follows each one by polling GET {api_url}/detect/batch/{uuid} until it is
 * terminal, fetches every file's verdict from GET {api_url}/detect/{uuid},
 * and reports all of it through RdClientCallbacks. See docs/client.md.
 *
 * Threading. rd_client_start() creates a GMainContext and a thread; the
 * thread pushes the context as its thread-default, creates the SoupSession
 * there (libsoup3 wants a session used only from the context it dispatches
 * on) and runs a GMainLoop. Every request, timer and callback lives on that
 * context. rd_client_submit() only appends to a locked queue and attaches an
 * idle source to the client's context, so the streaming thread never waits
 * on the network. rd_client_stop() attaches a high-priority source that
 * cancels the one GCancellable every request shares (on the network thread,
 * because libsoup's cancellation handlers are not thread-safe), reports
 * every unfinished batch as a cancelled error once its request has come
 * back, quits the loop, and joins the thread.
 *
 * Retries. The API has no idempotency key, so a POST is sent again only
 * when the server provably did not take it: a transport error before the
 * whole body was written (a server cannot accept a multipart body it did not
 * receive whole), 408, 429 or 503, or any 5xx answered before the body was
 * sent. The POST carries "Expect: 100-continue" so that a server refusing
 * the request (auth, faults, a dropped connection) does so before the body
 * goes out, which both saves the upload and makes "not sent" provable;
 * without it a small body sits in the socket buffer before the server even
 * looks at the headers. A transport error or a 5xx other than 503 after the
 * whole body was written has an unknown outcome: the batch may exist, and a
 * retry could create a duplicate, so the batch ends in state error saying
 * so. GETs are retried on any transport error, 408, 429 and 5xx. Retries
 * wait for Retry-After when the server gives one (capped at 10 minutes),
 * else 1 s * 2^(attempt-1), capped at 60 s, with jitter.
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
 * errors come before the one unauthorized call. A batch submitted after
 * rd_client_stop() gets its cancelled error at once, on the caller's
 * thread.
 *
 * The token. An API or proxy may echo it in its error text; error answers
 * and transport errors are redacted where they are read, before anything
 * logs, records or reports them. */

#include "client.h"

#include <gmodule.h>
#include <libsoup/soup.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <string.h>

#include "manifest.h"
#include "multipart-stream.h"
#include "results.h"
#include "zip-stream.h"

GST_DEBUG_CATEGORY_STATIC (rd_client_debug);
#define GST_CAT_DEFAULT rd_client_debug

/* Verdicts fetched at once per batch. */
#define RESULT_FETCHES_AT_ONCE 4
/* At most about ten progress callbacks a second, plus the final one. */
#define PROGRESS_INTERVAL_US (100 * G_TIME_SPAN_MILLISECOND)
/* libsoup's I/O timeout and idle connection timeout. */
#define SESSION_TIMEOUT_S 60
#define RETRY_BASE_DELAY (1 * GST_SECOND)
#define RETRY_MAX_DELAY (60 * GST_SECOND)
/* A Retry-After longer than this is taken as this. */
#define RETRY_AFTER_MAX (600 * GST_SECOND)
#define MIN_POLL_INTERVAL (10 * GST_MSECOND)
#define POLL_BACKOFF_NUM 3
#define POLL_BACKOFF_DEN 2

#define CANCELLED_REASON "cancelled: the client was stopped"
/* What the token becomes in any text a server or a library gave us. */
#define REDACTED "[redacted]"
#define NO_TOKEN_REASON "no API token: set api-token or RESEMBLE_API_TOKEN"

#define CLIENT_LOCK(c) g_mutex_lock (&(c)->lock)
#define CLIENT_UNLOCK(c) g_mutex_unlock (&(c)->lock)

typedef enum
{
  JOB_QUEUED,
  JOB_POSTING,
  JOB_POLLING,
  JOB_FETCHING,
} JobPhase;

typedef struct _Job Job;

/* One file's verdict being fetched. */
typedef struct
{
  Job *job;
  guint index;
  guint failures;
  SoupMessage *msg;             /* the GET in flight */
  GSource *timer;               /* waiting to retry */
  GstStructure *result;         /* set once known */
} Fetch;

struct _Job
{
  RdClient *client;
  RdBatch *batch;
  JobPhase phase;
  gboolean in_flight;           /* counted in client->in_flight */
  guint n_requests;             /* requests whose callback has not run */

  /* the POST or poll of this batch */
  SoupMessage *msg;
  GSource *timer;               /* retry or next poll */
  guint failures;               /* consecutive failed attempts */

  /* upload */
  gboolean body_sent;           /* "wrote-body" fired for this attempt */
  guint64 body_length;
  guint64 body_written;
  gint64 last_progress_us;

  /* polling */
  gint64 accepted_us;           /* monotonic; the poll timeout counts from it */
  GstClockTime poll_interval;

  /* verdicts */
  Fetch *fetches;               /* one per file */
  guint next_fetch;             /* next file to start fetching */
  guint fetches_active;         /* in flight or waiting to retry */
  guint fetches_done;
  guint next_report;            /* results are reported in file order */
};

struct _RdClient
{
  /* configuration, read-only after rd_client_new() */
  gchar *api_url;               /* without a trailing '/' */
  gchar *token;
  gchar *user_agent;
  guint max_retries;
  guint max_in_flight;
  GstClockTime poll_interval;
  GstClockTime poll_max_interval;
  GstClockTime poll_timeout;
  gboolean fetch_results;
  gboolean keep_files;
  RdClientCallbacks callbacks;
  gpointer user_data;

  GMainContext *context;
  GMainLoop *loop;
  GCancellable *cancellable;

  /* guards the fields below it up to the network-thread-only ones */
  GMutex lock;
  GQueue incoming;              /* RdBatch*, submitted, not yet taken */
  GThread *thread;
  gboolean stopped;             /* rd_client_stop() was called */
  gboolean wake_scheduled;

  gint pending;                 /* atomic: batches submitted, not finished */

  /* network thread only */
  SoupSession *session;
  GQueue waiting;               /* Job*, waiting for a slot */
  GList *active;                /* Job*, started */
  guint in_flight;
  gboolean stopping;
  gboolean unauthorized;
  gchar *unauthorized_reason;
  GSource *pump_source;
};

typedef struct
{
  guint status;                 /* 0 on a transport failure */
  GBytes *body;
  GError *error;
  gchar *retry_after;
} Response;

static void job_post (Job * job);
static void job_poll (Job * job);
static void job_fetch_more (Job * job);
static void fetch_send (Fetch * fetch);
static void client_schedule_pump (RdClient * client);

/* ---- pure rules ---- */

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
rd_client_classify (gboolean is_post, guint http_status, const GError * error,
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
  if (http_status == SOUP_STATUS_REQUEST_TIMEOUT || http_status == 429
      || http_status == SOUP_STATUS_SERVICE_UNAVAILABLE)
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

GstClockTime
rd_client_retry_delay (guint attempt, const gchar * retry_after, gdouble random)
{
  GstClockTime base;

  if (retry_after != NULL) {
    g_autofree gchar *value = g_strstrip (g_strdup (retry_after));
    guint64 seconds;

    if (value[0] != '\0' && g_ascii_string_to_unsigned (value, 10, 0,
            G_MAXUINT64, &seconds, NULL)) {
      if (seconds > RETRY_AFTER_MAX / GST_SECOND)
        return RETRY_AFTER_MAX;
      return seconds * GST_SECOND;
    } else if (value[0] != '\0') {
      g_autoptr (GDateTime) date = soup_date_time_new_from_http_string (value);

      if (date != NULL) {
        g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
        GTimeSpan diff = g_date_time_difference (date, now);

        if (diff <= 0)
          return 0;
        return MIN ((GstClockTime) diff * GST_USECOND, RETRY_AFTER_MAX);
      }
    }
    /* Neither form: fall back to our own backoff. */
  }

  if (attempt == 0)
    attempt = 1;
  /* 2^6 s is already past the cap. */
  base = RETRY_BASE_DELAY << MIN (attempt - 1, 6);
  base = MIN (base, RETRY_MAX_DELAY);
  random = CLAMP (random, 0.0, 1.0);
  return (GstClockTime) (base * (0.5 + random / 2.0));
}

GstClockTime
rd_client_next_poll_interval (GstClockTime previous, GstClockTime max)
{
  GstClockTime next;

  if (previous >= max)
    return max;
  next = previous / POLL_BACKOFF_DEN * POLL_BACKOFF_NUM
      + previous % POLL_BACKOFF_DEN * POLL_BACKOFF_NUM / POLL_BACKOFF_DEN;
  return MIN (MAX (next, previous), max);
}

/* ---- the token in other people's text ---- */

/* An API or a proxy may echo the request's Authorization header in its
 * error text; whatever the client got from elsewhere passes through here
 * before it is logged, recorded or handed to a callback. */
static gchar *
client_redact (RdClient * client, const gchar * text)
{
  GString *clean;

  if (text == NULL)
    return NULL;
  clean = g_string_new (text);
  if (client->token != NULL && client->token[0] != '\0')
    g_string_replace (clean, client->token, REDACTED, 0);
  return g_string_free (clean, FALSE);
}

/* The same for an answer's raw bytes, which need not be text. */
static GByteArray *
client_redact_bytes (RdClient * client, const gchar * data, gsize length)
{
  GByteArray *clean = g_byte_array_sized_new (length);
  gsize token_length = client->token ? strlen (client->token) : 0;
  gsize i = 0;

  while (i < length) {
    if (token_length > 0 && length - i >= token_length
        && memcmp (data + i, client->token, token_length) == 0) {
      g_byte_array_append (clean, (const guint8 *) REDACTED, strlen (REDACTED));
      i += token_length;
    } else {
      g_byte_array_append (clean, (const guint8 *) data + i, 1);
      i++;
    }
  }
  return clean;
}

static void
client_redact_error (RdClient * client, GError * error)
{
  gchar *clean;

  if (error == NULL)
    return;
  clean = client_redact (client, error->message);
  g_free (error->message);
  error->message = clean;
}

static void client_redact_structure (RdClient * client, GstStructure * s);

/* Strings, and the strings inside structures, arrays and lists. */
static void
client_redact_value (RdClient * client, GValue * value)
{
  GType type = G_VALUE_TYPE (value);

  if (type == G_TYPE_STRING) {
    g_value_take_string (value, client_redact (client,
            g_value_get_string (value)));
  } else if (type == GST_TYPE_STRUCTURE) {
    const GstStructure *s = gst_value_get_structure (value);
    GstStructure *clean;

    if (s == NULL)
      return;
    clean = gst_structure_copy (s);
    client_redact_structure (client, clean);
    g_value_take_boxed (value, clean);
  } else if (type == GST_TYPE_ARRAY || type == GST_TYPE_LIST) {
    gboolean is_array = type == GST_TYPE_ARRAY;
    guint i, n = is_array ? gst_value_array_get_size (value) :
        gst_value_list_get_size (value);
    GValue clean = G_VALUE_INIT;

    g_value_init (&clean, type);
    for (i = 0; i < n; i++) {
      const GValue *from = is_array ? gst_value_array_get_value (value, i) :
          gst_value_list_get_value (value, i);
      GValue element = G_VALUE_INIT;

      g_value_init (&element, G_VALUE_TYPE (from));
      g_value_copy (from, &element);
      client_redact_value (client, &element);
      if (is_array)
        gst_value_array_append_and_take_value (&clean, &element);
      else
        gst_value_list_append_and_take_value (&clean, &element);
    }
    g_value_unset (value);
    g_value_init (value, type);
    g_value_copy (&clean, value);
    g_value_unset (&clean);
  }
}

static gboolean
redact_field (GQuark field, GValue * value, gpointer client)
{
  client_redact_value (client, value);
  return TRUE;
}

static void
client_redact_structure (RdClient * client, GstStructure * s)
{
  gst_structure_map_in_place (s, redact_field, client);
}

/* ---- helpers ---- */

static void
response_clear (Response * response)
{
  g_clear_pointer (&response->body, g_bytes_unref);
  g_clear_error (&response->error);
  g_clear_pointer (&response->retry_after, g_free);
}

/* A transport error's text may quote what a proxy said: redacted here,
 * before anything reads it. */
static void
response_read (RdClient * client, SoupSession * session, GAsyncResult * result,
    SoupMessage * msg, Response * response)
{
  response->body =
      soup_session_send_and_read_finish (session, result, &response->error);
  client_redact_error (client, response->error);
  response->status = response->error ? 0 : soup_message_get_status (msg);
  response->retry_after =
      g_strdup (soup_message_headers_get_one
      (soup_message_get_response_headers (msg), "Retry-After"));
}

static const gchar *
response_data (const Response * response, gssize * length)
{
  gsize size = 0;
  const gchar *data = NULL;

  if (response->body)
    data = g_bytes_get_data (response->body, &size);
  *length = (gssize) size;
  return data ? data : "";
}

static gboolean
response_cancelled (RdClient * client, const Response * response)
{
  return client->stopping
      || g_error_matches (response->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* The one place error answers are read, so the one place the token an
 * API or proxy may echo back is taken out of them. */
static void
response_parse_error (RdClient * client, const Response * response,
    gchar ** reason, GstStructure ** details)
{
  g_autofree gchar *text = NULL;
  g_autoptr (GByteArray) raw = NULL;
  gssize length;
  const gchar *data;

  if (response->status == 0) {
    *reason = g_strdup_printf ("network error: %s", response->error ?
        response->error->message : "no answer");
    *details = NULL;
    return;
  }
  data = response_data (response, &length);
  /* redacted before parsing too: the parser shortens long texts, and a cut
   * inside the token would leave a piece of it that no later pass finds */
  raw = client_redact_bytes (client, data, length);
  rd_results_parse_error (response->status, (const gchar *) raw->data,
      raw->len, &text, details);
  *reason = client_redact (client, text);
  if (*details)
    client_redact_structure (client, *details);
}

static SoupMessage *
client_new_message (RdClient * client, const gchar * method,
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
  return msg;
}

static GSource *
client_add_timer (RdClient * client, GstClockTime delay, GSourceFunc func,
    gpointer data)
{
  GSource *source;
  guint ms = (guint) MIN ((delay + GST_MSECOND - 1) / GST_MSECOND, G_MAXUINT);

  source = g_timeout_source_new (ms);
  g_source_set_callback (source, func, data, NULL);
  g_source_attach (source, client->context);
  return source;
}

static void
clear_timer (GSource ** timer)
{
  if (*timer) {
    g_source_destroy (*timer);
    g_source_unref (*timer);
    *timer = NULL;
  }
}

static void
job_write_manifest (Job * job)
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

static Job *
job_new (RdClient * client, RdBatch * batch)
{
  Job *job = g_new0 (Job, 1);

  job->client = client;
  job->batch = batch;
  job->phase = JOB_QUEUED;
  return job;
}

static void
job_free (Job * job)
{
  guint i;

  g_assert (job->n_requests == 0);
  clear_timer (&job->timer);
  if (job->fetches) {
    for (i = 0; i < job->batch->files->len; i++) {
      clear_timer (&job->fetches[i].timer);
      if (job->fetches[i].result)
        gst_structure_free (job->fetches[i].result);
    }
    g_free (job->fetches);
  }
  rd_batch_free (job->batch);
  g_free (job);
}

/* ---- finishing a batch ---- */

static void
client_check_quit (RdClient * client)
{
  if (client->stopping && client->active == NULL
      && g_queue_is_empty (&client->waiting))
    g_main_loop_quit (client->loop);
}

static void
client_detach_job (RdClient * client, Job * job)
{
  if (job->phase == JOB_QUEUED)
    g_queue_remove (&client->waiting, job);
  else
    client->active = g_list_remove (client->active, job);
  if (job->in_flight) {
    job->in_flight = FALSE;
    client->in_flight--;
    client_schedule_pump (client);
  }
}

/* The pending count drops only after a batch's final callback: the element
 * holds EOS while it is above 0, so the batch's own message must be posted
 * by then. idle follows when the count reaches 0. A hold (an increment
 * without a batch) keeps idle back until a group of callbacks is over. */
static void
client_pending_drop (RdClient * client)
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
  client_pending_drop (client);
  client_check_quit (client);
}

typedef enum
{
  FAIL_RECORD,                  /* state error, written to the manifest */
  FAIL_KEEP_STATE,              /* the manifest stays as it is */
} FailMode;

static void
job_fail (Job * job, FailMode mode, guint http_status, const gchar * reason,
    const GstStructure * details, gboolean cancelled)
{
  RdBatch *batch = job->batch;

  GST_WARNING ("batch %u: %s", batch->index, reason);
  if (mode == FAIL_RECORD) {
    batch->state = RD_BATCH_STATE_ERROR;
    batch->error_http_status = http_status;
    g_free (batch->error_reason);
    batch->error_reason = g_strdup (reason);
    job_write_manifest (job);
  }
  job_finish (job, NULL, http_status, reason, details, cancelled);
}

static void
job_fail_unknown_outcome (Job * job, guint http_status, const gchar * what,
    gboolean cancelled)
{
  g_autofree gchar *reason = g_strdup_printf ("outcome unknown: %s after "
      "the whole upload was sent; the API may have created the batch, and it "
      "was not sent again because a retry could create a duplicate batch",
      what);

  job_fail (job, FAIL_RECORD, http_status, reason, NULL, cancelled);
}

/* Stopped: what the manifest says is what happened (closed: not accepted;
 * submitted: accepted, a next run polls it), except for an upload that was
 * sent whole and never answered. */
static void
job_cancel (Job * job)
{
  if (job->phase == JOB_POSTING && job->body_sent) {
    job_fail_unknown_outcome (job, 0, "the client was stopped", TRUE);
    return;
  }
  job_finish (job, NULL, 0, CANCELLED_REASON, NULL, TRUE);
}

static void
job_done (Job * job)
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
  job_write_manifest (job);
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
static void
client_unauthorized (RdClient * client, Job * job, const gchar * reason,
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
    job_fail (job, FAIL_KEEP_STATE, SOUP_STATUS_UNAUTHORIZED, reason, details,
        FALSE);
  while ((queued = g_queue_peek_head (&client->waiting)))
    job_fail (queued, FAIL_KEEP_STATE, SOUP_STATUS_UNAUTHORIZED,
        client->unauthorized_reason, NULL, FALSE);
  if (first && client->callbacks.unauthorized)
    client->callbacks.unauthorized (client->unauthorized_reason,
        client->user_data);
  client_pending_drop (client);
}

/* ---- upload ---- */

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

/* The last bytes are reported from "wrote-body" only, so that sent ==
 * total always means the whole body was written. */
static void
on_wrote_body_data (SoupMessage * msg, guint chunk_size, Job * job)
{
  job->body_written = MIN (job->body_written + chunk_size, job->body_length);
  if (job->body_written < job->body_length
      && g_get_monotonic_time () - job->last_progress_us >=
      PROGRESS_INTERVAL_US)
    job_report_progress (job);
}

static void
on_wrote_body (SoupMessage * msg, Job * job)
{
  job->body_sent = TRUE;
  job->body_written = job->body_length;
  job_report_progress (job);
}

static gboolean
job_poll_timer (Job * job)
{
  g_clear_pointer (&job->timer, g_source_unref);
  job_poll (job);
  return G_SOURCE_REMOVE;
}

static void
job_schedule_poll (Job * job, GstClockTime delay)
{
  RdClient *client = job->client;

  if (client->poll_timeout != 0 && GST_CLOCK_TIME_IS_VALID
      (client->poll_timeout)) {
    gint64 deadline_us = job->accepted_us +
        (gint64) MIN (client->poll_timeout / GST_USECOND, G_MAXINT64 / 2);
    gint64 left_us = MAX (deadline_us - g_get_monotonic_time (), 0);

    /* One last look at the deadline rather than a timeout in between. */
    delay = MIN (delay, (GstClockTime) left_us * GST_USECOND);
  }
  g_assert (job->timer == NULL);
  job->timer = client_add_timer (client, delay, (GSourceFunc) job_poll_timer,
      job);
}

static gboolean
job_poll_timeout_reached (Job * job)
{
  RdClient *client = job->client;

  if (client->poll_timeout == 0 || !GST_CLOCK_TIME_IS_VALID
      (client->poll_timeout))
    return FALSE;
  return g_get_monotonic_time () - job->accepted_us >=
      (gint64) MIN (client->poll_timeout / GST_USECOND, G_MAXINT64 / 2);
}

static void job_terminal (Job * job);

/* Copies what the API says into the batch; TRUE when status or counts
 * changed. */
static gboolean
job_apply_status (Job * job, const RdBatchStatus * status)
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
job_accepted (Job * job, const Response * response)
{
  RdClient *client = job->client;
  RdBatch *batch = job->batch;
  g_autoptr (GError) error = NULL;
  g_autoptr (RdBatchStatus) status = NULL;
  gssize length;
  const gchar *data = response_data (response, &length);

  status = rd_results_parse_batch (data, length, &error);
  if (status == NULL) {
    g_autofree gchar *what = NULL;

    client_redact_error (client, error);
    what = g_strdup_printf ("the API answered %u with a body that could not "
        "be read (%s)", response->status, error->message);
    job_fail_unknown_outcome (job, response->status, what, FALSE);
    return;
  }

  g_free (batch->uuid);
  batch->uuid = g_strdup (status->uuid);
  job_apply_status (job, status);
  if (g_strv_length (status->detect_uuids) != batch->files->len)
    GST_WARNING ("batch %u: %u files sent, %u detect uuids received; they "
        "are paired by position", batch->index, batch->files->len,
        g_strv_length (status->detect_uuids));
  batch->state = RD_BATCH_STATE_SUBMITTED;
  job->phase = JOB_POLLING;
  job->failures = 0;
  job->accepted_us = g_get_monotonic_time ();
  job->poll_interval = client->poll_interval;
  /* Before anything else: from now on a restart must poll, not POST. */
  job_write_manifest (job);
  GST_INFO ("batch %u accepted as %s", batch->index, batch->uuid);
  if (client->callbacks.submitted)
    client->callbacks.submitted (batch, client->user_data);

  if (client->stopping)
    job_cancel (job);
  else if (rd_results_batch_status_is_terminal (batch->status))
    job_terminal (job);
  else
    job_schedule_poll (job, job->poll_interval);
}

static gboolean
job_retry_timer (Job * job)
{
  g_clear_pointer (&job->timer, g_source_unref);
  if (job->phase == JOB_POSTING)
    job_post (job);
  else
    job_poll (job);
  return G_SOURCE_REMOVE;
}

/* Another attempt of the POST or poll, if any are left. */
static gboolean
job_retry (Job * job, const Response * response)
{
  RdClient *client = job->client;
  GstClockTime delay;

  if (job->failures >= client->max_retries)
    return FALSE;
  job->failures++;
  job->body_sent = FALSE;
  delay = rd_client_retry_delay (job->failures, response->retry_after,
      g_random_double ());
  GST_INFO ("batch %u: attempt %u failed (HTTP %u), retrying in %"
      GST_TIME_FORMAT, job->batch->index, job->failures, response->status,
      GST_TIME_ARGS (delay));
  job->timer = client_add_timer (client, delay, (GSourceFunc) job_retry_timer,
      job);
  return TRUE;
}

static void
job_fail_response (Job * job, FailMode mode, const Response * response,
    gboolean gave_up)
{
  g_autofree gchar *reason = NULL;
  g_autofree gchar *full = NULL;
  g_autoptr (GstStructure) details = NULL;

  response_parse_error (job->client, response, &reason, &details);
  if (gave_up)
    full = g_strdup_printf ("%s (gave up after %u retries)", reason,
        job->failures);
  job_fail (job, mode, response->status, full ? full : reason, details, FALSE);
}

static void
job_unauthorized (Job * job, const Response * response)
{
  g_autofree gchar *reason = NULL;
  g_autoptr (GstStructure) details = NULL;

  response_parse_error (job->client, response, &reason, &details);
  client_unauthorized (job->client, job, reason, details);
}

static void
post_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  Job *job = user_data;
  RdClient *client = job->client;
  Response response = { 0, };
  SoupMessage *msg = job->msg;

  response_read (client, SOUP_SESSION (source), result, msg, &response);
  job->n_requests--;
  g_signal_handlers_disconnect_by_data (msg, job);
  g_clear_object (&job->msg);

  /* Accepted: record it even while stopping, or a next run would send the
   * batch a second time. */
  if (response.error == NULL && SOUP_STATUS_IS_SUCCESSFUL (response.status)) {
    job_accepted (job, &response);
  } else if (response_cancelled (client, &response)) {
    job_cancel (job);
  } else if (response.status == SOUP_STATUS_UNAUTHORIZED) {
    job_unauthorized (job, &response);
  } else {
    switch (rd_client_classify (TRUE, response.status, response.error,
            job->body_sent)) {
      case RD_RETRY_YES:
        /* out of retries, but provably not accepted (an outage, a busy
         * API): the manifest stays closed, so the next start sends it */
        if (!job_retry (job, &response))
          job_fail_response (job, FAIL_KEEP_STATE, &response, TRUE);
        break;
      case RD_RETRY_UNKNOWN_OUTCOME:{
        g_autofree gchar *what = response.status ?
            g_strdup_printf ("HTTP %u", response.status) :
            g_strdup_printf ("network error (%s)", response.error->message);

        job_fail_unknown_outcome (job, response.status, what, FALSE);
        break;
      }
      case RD_RETRY_NO:
        job_fail_response (job, FAIL_RECORD, &response, FALSE);
        break;
    }
  }
  response_clear (&response);
}

static void
job_post (Job * job)
{
  RdClient *client = job->client;
  g_autoptr (GError) error = NULL;
  g_autoptr (RdMultipartStream) body = NULL;

  job->phase = JOB_POSTING;
  body = job_build_body (job, &error);
  if (body == NULL) {
    g_autofree gchar *reason = g_strdup_printf ("cannot read the batch's "
        "files: %s", error->message);

    job_fail (job, FAIL_RECORD, 0, reason, NULL, FALSE);
    return;
  }

  job->msg = client_new_message (client, SOUP_METHOD_POST, "/detect/batch",
      NULL);
  /* A redirect would need the body a second time. */
  soup_message_add_flags (job->msg, SOUP_MESSAGE_NO_REDIRECT);
  soup_message_headers_set_expectations (soup_message_get_request_headers
      (job->msg), SOUP_EXPECTATION_CONTINUE);
  job->body_length = rd_multipart_stream_get_length (body);
  job->body_written = 0;
  job->body_sent = FALSE;
  job->last_progress_us = 0;
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
  soup_session_send_and_read_async (client->session, job->msg,
      G_PRIORITY_DEFAULT, client->cancellable, post_done, job);
}

/* ---- polling ---- */

static void
poll_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  Job *job = user_data;
  RdClient *client = job->client;
  RdBatch *batch = job->batch;
  Response response = { 0, };
  g_autoptr (RdBatchStatus) status = NULL;
  g_autoptr (GError) parse_error = NULL;

  response_read (client, SOUP_SESSION (source), result, job->msg, &response);
  job->n_requests--;
  g_clear_object (&job->msg);

  if (response_cancelled (client, &response)) {
    job_cancel (job);
    goto out;
  }

  if (SOUP_STATUS_IS_SUCCESSFUL (response.status)) {
    gssize length;
    const gchar *data = response_data (&response, &length);

    status = rd_results_parse_batch (data, length, &parse_error);
    if (status == NULL) {
      client_redact_error (client, parse_error);
      /* An unreadable answer to a GET is worth another look. */
      GST_WARNING ("batch %u: unreadable status: %s", batch->index,
          parse_error->message);
      if (!job_retry (job, &response)) {
        g_autofree gchar *reason = g_strdup_printf ("unreadable batch "
            "status from the API: %s (gave up after %u retries)",
            parse_error->message, job->failures);

        /* As for a failed poll: the API has the batch. */
        job_fail (job, FAIL_KEEP_STATE, response.status, reason, NULL, FALSE);
      }
      goto out;
    }

    job->failures = 0;
    if (job_apply_status (job, status)) {
      GST_DEBUG ("batch %u: %s, %u completed, %u failed", batch->index,
          batch->status, batch->completed_count, batch->failed_count);
      job_write_manifest (job);
      if (client->callbacks.status)
        client->callbacks.status (batch, client->user_data);
    }
    if (rd_results_batch_status_is_terminal (batch->status)) {
      job_terminal (job);
    } else if (job_poll_timeout_reached (job)) {
      g_autofree gchar *reason = g_strdup_printf ("poll timeout after %"
          G_GUINT64_FORMAT " s: the batch is still %s",
          client->poll_timeout / GST_SECOND, batch->status);

      job_fail (job, FAIL_RECORD, 0, reason, NULL, FALSE);
    } else {
      job->poll_interval = rd_client_next_poll_interval (job->poll_interval,
          client->poll_max_interval);
      job_schedule_poll (job, job->poll_interval);
    }
    goto out;
  }

  if (response.status == SOUP_STATUS_UNAUTHORIZED) {
    job_unauthorized (job, &response);
    goto out;
  }

  switch (rd_client_classify (FALSE, response.status, response.error, FALSE)) {
    case RD_RETRY_YES:
      /* The API has the batch and may well answer next time: the manifest
       * stays submitted with its uuid, so that a next run polls it again. */
      if (!job_retry (job, &response))
        job_fail_response (job, FAIL_KEEP_STATE, &response, TRUE);
      break;
    default:
      /* 404 among them: the batch is unknown to this token. */
      job_fail_response (job, FAIL_RECORD, &response, FALSE);
      break;
  }

out:
  response_clear (&response);
}

static void
job_poll (Job * job)
{
  RdClient *client = job->client;

  job->phase = JOB_POLLING;
  job->msg = client_new_message (client, SOUP_METHOD_GET, "/detect/batch/",
      job->batch->uuid);
  job->n_requests++;
  soup_session_send_and_read_async (client->session, job->msg,
      G_PRIORITY_DEFAULT, client->cancellable, poll_done, job);
}

/* ---- verdicts ---- */

static void
job_decorate_result (Job * job, guint index, GstStructure * result)
{
  RdBatch *batch = job->batch;
  const RdBatchFile *file = g_ptr_array_index (batch->files, index);
  g_autofree gchar *path = rd_batch_file_path (batch, file);

  gst_structure_set (result,
      "batch-uuid", G_TYPE_STRING, batch->uuid,
      "file", G_TYPE_STRING, path,
      "running-time", G_TYPE_UINT64, file->running_time == RD_TIME_NONE ?
      GST_CLOCK_TIME_NONE : file->running_time,
      "duration", G_TYPE_UINT64, file->duration == RD_TIME_NONE ?
      GST_CLOCK_TIME_NONE : file->duration, NULL);
  if (!gst_structure_has_field (result, "detect-uuid") && file->detect_uuid)
    gst_structure_set (result, "detect-uuid", G_TYPE_STRING,
        file->detect_uuid, NULL);
}

/* A verdict that could not be fetched: the batch is still done. */
static GstStructure *
unknown_result (const gchar * message)
{
  return gst_structure_new ("resemble-detect-result",
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
    if (client->callbacks.result)
      client->callbacks.result (job->batch, job->next_report,
          job->fetches[job->next_report].result, client->user_data);
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

  response_parse_error (fetch->job->client, response, &reason, &details);
  message = gave_up ? g_strdup_printf ("%s (gave up after %u retries)",
      reason, fetch->failures) : g_strdup (reason);
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

  if (fetch->failures >= client->max_retries)
    return FALSE;
  fetch->failures++;
  delay = rd_client_retry_delay (fetch->failures, response->retry_after,
      g_random_double ());
  fetch->timer = client_add_timer (client, delay,
      (GSourceFunc) fetch_retry_timer, fetch);
  return TRUE;
}

static void
fetch_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  Fetch *fetch = user_data;
  Job *job = fetch->job;
  RdClient *client = job->client;
  Response response = { 0, };

  response_read (client, SOUP_SESSION (source), result, fetch->msg, &response);
  job->n_requests--;
  g_clear_object (&fetch->msg);

  if (response_cancelled (client, &response)) {
    job->fetches_active--;
    /* The last request of a stopped batch ends it. */
    if (job->n_requests == 0)
      job_cancel (job);
    goto out;
  }

  if (SOUP_STATUS_IS_SUCCESSFUL (response.status)) {
    gssize length;
    const gchar *data = response_data (&response, &length);
    g_autoptr (GError) error = NULL;
    GstStructure *verdict = rd_results_parse_detect (data, length, &error);

    client_redact_error (client, error);
    if (verdict) {
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

    response_parse_error (client, &response, &reason, &details);
    /* The verdict (and maybe with it the batch) ends first; idle, if it
     * was the last batch, waits for unauthorized. */
    g_atomic_int_inc (&client->pending);
    fetch_fail (fetch, &response, FALSE);
    client_unauthorized (client, NULL, reason, details);
    client_pending_drop (client);
    goto out;
  }

  switch (rd_client_classify (FALSE, response.status, response.error, FALSE)) {
    case RD_RETRY_YES:
      if (!fetch_retry (fetch, &response))
        fetch_fail (fetch, &response, TRUE);
      break;
    default:
      fetch_fail (fetch, &response, FALSE);
      break;
  }

out:
  response_clear (&response);
}

static void
fetch_send (Fetch * fetch)
{
  Job *job = fetch->job;
  RdClient *client = job->client;
  const RdBatchFile *file = g_ptr_array_index (job->batch->files,
      fetch->index);

  fetch->msg = client_new_message (client, SOUP_METHOD_GET, "/detect/",
      file->detect_uuid);
  job->n_requests++;
  soup_session_send_and_read_async (client->session, fetch->msg,
      G_PRIORITY_DEFAULT, client->cancellable, fetch_done, fetch);
}

static void
job_fetch_more (Job * job)
{
  RdBatch *batch = job->batch;

  while (job->fetches_active < RESULT_FETCHES_AT_ONCE
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
  if (job->fetches_done == batch->files->len)
    job_done (job);
}

static void
job_terminal (Job * job)
{
  RdClient *client = job->client;
  guint i;

  if (!client->fetch_results) {
    job_done (job);
    return;
  }
  job->phase = JOB_FETCHING;
  job->fetches = g_new0 (Fetch, job->batch->files->len);
  for (i = 0; i < job->batch->files->len; i++) {
    job->fetches[i].job = job;
    job->fetches[i].index = i;
  }
  job_fetch_more (job);
}

/* ---- the queue ---- */

static void
job_start (Job * job)
{
  RdClient *client = job->client;

  g_queue_remove (&client->waiting, job);
  client->active = g_list_prepend (client->active, job);
  job->in_flight = TRUE;
  client->in_flight++;

  if (job->batch->state == RD_BATCH_STATE_SUBMITTED) {
    /* Resumed: the API has it already; look at once. */
    job->phase = JOB_POLLING;
    job->accepted_us = g_get_monotonic_time ();
    job->poll_interval = client->poll_interval;
    job_poll (job);
  } else {
    job_post (job);
  }
}

static gboolean
client_pump (gpointer user_data)
{
  RdClient *client = user_data;
  guint max = MAX (client->max_in_flight, 1);

  g_clear_pointer (&client->pump_source, g_source_unref);
  while (!client->stopping && client->in_flight < max
      && !g_queue_is_empty (&client->waiting))
    job_start (g_queue_peek_head (&client->waiting));
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

/* A batch arrives on the network thread: what can be refused without a
 * request is refused now, the rest waits for a slot. */
static void
client_accept (RdClient * client, RdBatch * batch)
{
  Job *job = job_new (client, batch);
  g_autoptr (GError) error = NULL;

  g_queue_push_tail (&client->waiting, job);

  if (client->stopping) {
    job_cancel (job);
    return;
  }
  if (client->token == NULL || client->token[0] == '\0') {
    job_fail (job, FAIL_KEEP_STATE, 0, NO_TOKEN_REASON, NULL, FALSE);
    return;
  }
  if (client->unauthorized) {
    job_fail (job, FAIL_KEEP_STATE, SOUP_STATUS_UNAUTHORIZED,
        client->unauthorized_reason, NULL, FALSE);
    return;
  }

  switch (batch->state) {
    case RD_BATCH_STATE_SUBMITTED:
      if (batch->uuid != NULL)
        break;
      /* fall through */
    case RD_BATCH_STATE_OPEN:
    case RD_BATCH_STATE_DONE:
    case RD_BATCH_STATE_ERROR:{
      g_autofree gchar *reason = g_strdup_printf ("a batch in state %s%s "
          "cannot be submitted", rd_batch_state_to_string (batch->state),
          batch->state == RD_BATCH_STATE_SUBMITTED ? " without a uuid" : "");

      job_fail (job, FAIL_KEEP_STATE, 0, reason, NULL, FALSE);
      return;
    }
    case RD_BATCH_STATE_CLOSED:
      if (!rd_batch_validate (batch, &error)
          || !rd_settings_validate (&batch->settings, &error)) {
        job_fail (job, FAIL_RECORD, 0, error->message, NULL, FALSE);
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
  clear_timer (&client->pump_source);
  client_take_incoming (client);

  while ((job = g_queue_peek_head (&client->waiting)))
    job_cancel (job);

  active = g_list_copy (client->active);
  for (l = active; l; l = l->next) {
    guint i;

    job = l->data;
    clear_timer (&job->timer);
    if (job->fetches) {
      for (i = 0; i < job->batch->files->len; i++) {
        if (job->fetches[i].timer) {
          clear_timer (&job->fetches[i].timer);
          job->fetches_active--;
        }
      }
    }
    /* Otherwise the cancelled request's callback ends it. */
    if (job->n_requests == 0)
      job_cancel (job);
  }
  g_list_free (active);
  client_check_quit (client);
  return G_SOURCE_REMOVE;
}

static gpointer
client_thread (gpointer user_data)
{
  RdClient *client = user_data;

  g_main_context_push_thread_default (client->context);
  client->session =
      soup_session_new_with_options ("user-agent", client->user_agent,
      "timeout", SESSION_TIMEOUT_S, "idle-timeout", SESSION_TIMEOUT_S, NULL);
  /* The token goes in our own header; libsoup's auth manager would only
   * act on a 401's WWW-Authenticate: Bearer, which it cannot answer. */
  soup_session_remove_feature_by_type (client->session, SOUP_TYPE_AUTH_MANAGER);
  g_main_loop_run (client->loop);
  soup_session_abort (client->session);
  g_clear_object (&client->session);
  /* Let what the session left behind run down on its own context. */
  while (g_main_context_iteration (client->context, FALSE));
  g_main_context_pop_thread_default (client->context);
  return NULL;
}

/* ---- public ---- */

RdClient *
rd_client_new (const RdClientConfig * config,
    const RdClientCallbacks * callbacks, gpointer user_data)
{
  static gsize debug_initialized = 0;
  RdClient *client;
  gsize len;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (config->api_url != NULL, NULL);

  if (g_once_init_enter (&debug_initialized)) {
    GST_DEBUG_CATEGORY_INIT (rd_client_debug, "resembledetect", 0,
        "Resemble AI deepfake detection");
    g_once_init_leave (&debug_initialized, 1);
  }

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
  if (callbacks)
    client->callbacks = *callbacks;
  client->user_data = user_data;

  client->context = g_main_context_new ();
  client->loop = g_main_loop_new (client->context, FALSE);
  client->cancellable = g_cancellable_new ();
  g_mutex_init (&client->lock);
  g_queue_init (&client->incoming);
  g_queue_init (&client->waiting);
  return client;
}

gboolean
rd_client_start (RdClient * client, GError ** error)
{
  g_autoptr (GUri) uri = NULL;
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
  if (client->thread != NULL || client->stopped) {
    CLIENT_UNLOCK (client);
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
        "the client was started already");
    return FALSE;
  }
  client->thread = g_thread_try_new ("rd-client", client_thread, client, error);
  if (client->thread == NULL) {
    CLIENT_UNLOCK (client);
    return FALSE;
  }
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
  client_pending_drop (client);
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
  if (client->thread)
    client_wake_locked (client);
  CLIENT_UNLOCK (client);
}

guint
rd_client_get_pending (RdClient * client)
{
  g_return_val_if_fail (client != NULL, 0);

  return (guint) g_atomic_int_get (&client->pending);
}

void
rd_client_stop (RdClient * client)
{
  GThread *thread;
  GSource *source;
  RdBatch *batch;

  g_return_if_fail (client != NULL);

  CLIENT_LOCK (client);
  if (client->stopped) {
    CLIENT_UNLOCK (client);
    return;
  }
  if (client->thread == g_thread_self ()) {
    /* It would join itself. */
    CLIENT_UNLOCK (client);
    g_critical ("rd_client_stop() called from a client callback");
    return;
  }
  client->stopped = TRUE;
  thread = g_steal_pointer (&client->thread);
  if (thread == NULL) {
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
  g_thread_join (thread);
}

void
rd_client_free (RdClient * client)
{
  if (client == NULL)
    return;

  rd_client_stop (client);
  g_main_loop_unref (client->loop);
  g_main_context_unref (client->context);
  g_object_unref (client->cancellable);
  g_mutex_clear (&client->lock);
  g_free (client->unauthorized_reason);
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
};

/* The module's entry point: the element loads the module and asks it for
 * this table. */
G_MODULE_EXPORT const RdClientVTable *
rd_client_get_vtable (void)
{
  return &client_vtable;
}
