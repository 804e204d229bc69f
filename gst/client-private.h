/* What the files of the API client share, and nothing else includes (but
 * the client's unit test): the client, its jobs (one per batch) and the
 * answers of its requests, and the functions that cross from one file to
 * the next. The files are layers, and calls only go down:
 *
 *   client.c           the queue and its pump, start and stop, the
 *                      public API and the vtable
 *   client-hub.c       the network thread, its GMainContext and
 *                      SoupSession, shared by clients
 *   client-submit.c    the POST and its answer
 *   client-settle.c    a POST of unknown outcome: the API's list says
 *   client-callback.c  the receiver of the API's callbacks: a hint to
 *                      poll a batch now
 *   client-follow.c    polling, the poll timeout, fetching verdicts
 *   client-outage.c    a batch that gave up for want of the API waits
 *                      (parked) until a probe finds it again
 *   client-job.c       a job's life: new and free, manifests, requests
 *                      and timers, retries, its end, the pending count
 *   client-response.c  reading answers, taking the token out
 *   retry.c            what is retried and after how long (pure)
 *
 * A file calls only the files below it, never one above. Where a lower
 * layer must reach a higher one it goes through a function pointer the
 * higher one set: client->slot_freed (client.c's pump, when a job gives
 * back its slot) and a job's resend (the POST or the poll that
 * rd_job_retry() sends again). Everything here runs on the client's thread
 * unless a comment says otherwise. */
#pragma once

#include <libsoup/soup.h>

#include "client.h"
#include "results.h"
#include "retry.h"

G_BEGIN_DECLS

G_GNUC_INTERNAL GST_DEBUG_CATEGORY_EXTERN (rd_client_debug);
#define GST_CAT_DEFAULT rd_client_debug

typedef enum {
  JOB_QUEUED,
  JOB_POSTING,
  JOB_SETTLING,
  JOB_POLLING,
  JOB_FETCHING,
} JobPhase;

typedef struct _Job Job;

/* Sends a job's POST or poll (again). */
typedef void (*JobSendFunc) (Job * job);

/* Verdicts fetched at once per batch: a batch has at most this many
 * requests in flight (its POST, settling and polls are one at a time,
 * and come before its verdicts). */
#define RD_FETCHES_AT_ONCE 4

/* The one reason of every batch that ends because the client stopped. */
#define CANCELLED_REASON "cancelled: the client was stopped"

/* One file's verdict being fetched. */
typedef struct {
  Job *job;
  guint index;
  guint failures;
  SoupMessage *msg;             /* the GET in flight */
  GSource *timer;               /* waiting to retry, or to look again */
  GstClockTime interval;        /* an adopted batch's detect: next look */
  GstStructure *result;         /* set once known */
} Fetch;

/* A POST of unknown outcome being settled (client-settle.c). */
typedef struct {
  gchar *what;                  /* what made it unknown */
  guint http_status;
  JobSendFunc resubmit;         /* sends the POST again */
  gint64 since_us;              /* wall clock: detects created since */
  guint page;
  guint looks;                  /* complete looks that did not settle it */
  gboolean unordered;           /* the list is not newest first */
  gchar **found;                /* per file: its detect uuid, once found */
} Settle;

struct _Job {
  RdClient *client;
  RdBatch *batch;
  JobPhase phase;
  gboolean in_flight;           /* counted in client->in_flight */
  guint n_requests;             /* requests whose callback has not run */

  /* the POST or poll of this batch */
  SoupMessage *msg;
  GSource *timer;               /* retry or next poll */
  guint failures;               /* consecutive failed attempts */
  JobSendFunc resend;           /* what the retry timer sends again */

  /* upload */
  gboolean body_sent;           /* "wrote-body" fired for this attempt */
  guint64 body_length;
  guint64 body_written;
  gint64 last_progress_us;
  gint64 attempt_started_real_us;       /* wall clock, for settling */
  Settle settle;

  /* found through the list of detects: followed detect by detect, the
   * batch's uuid unknown */
  gboolean adopted;
  /* its POST may have created it: being settled, or waiting to be */
  gboolean ambiguous;

  /* waiting for the API to answer again (client-outage.c) */
  gboolean parked;
  JobSendFunc resume;           /* what job_start() sends when it resumes */

  /* the batch's time budget: poll_timeout from when the client took it */
  gint64 deadline_us;           /* monotonic; G_MAXINT64: none */

  /* polling */
  GstClockTime poll_interval;
  gchar *callback_secret;       /* its path at the callback receiver */
  gboolean callback_hint;       /* a callback came while a request was out */

  /* verdicts */
  Fetch *fetches;               /* one per file */
  guint next_fetch;             /* next file to start fetching */
  guint fetches_active;         /* in flight or waiting to retry */
  guint fetches_done;
  guint next_report;            /* results are reported in file order */
};

struct _RdClientHub {
  gatomicrefcount refcount;
  GMutex lock;                  /* with cond: the thread's start, invokes */
  GCond cond;
  gboolean running;
  gchar *user_agent;
  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;              /* "rd-client" */
  SoupSession *session;         /* its thread only */
};

/* Runs @func on the hub's thread and waits for it. */
G_GNUC_INTERNAL
void rd_client_hub_invoke_sync (RdClientHub * hub, GSourceFunc func,
    gpointer data);
G_GNUC_INTERNAL
void rd_client_debug_init (void);

struct _RdClient {
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

  RdClientHub *hub;             /* given, or its own from the start */
  GMainContext *context;        /* the hub's, from the start */
  GCancellable *cancellable;    /* this client's requests only */

  /* guards the fields below it up to the network-thread-only ones */
  GMutex lock;
  GCond finished_cond;
  GQueue incoming;              /* RdBatch*, submitted, not yet taken */
  gboolean started;
  gboolean stopped;             /* rd_client_stop() was called */
  gboolean finished;            /* stopped, and nothing of it runs any more */
  gboolean wake_scheduled;

  gint pending;                 /* atomic: batches submitted, not finished */

  /* network thread only */
  SoupSession *session;         /* the hub's */
  GQueue waiting;               /* Job*, waiting for a slot */
  GList *active;                /* Job*, started */
  guint in_flight;
  gboolean stopping;
  gboolean unauthorized;
  gchar *unauthorized_reason;
  GSource *pump_source;
  gboolean draining;            /* rd_client_drain(): nothing waits any more */
  GSource *finish_source;       /* stopped: says so once the stack unwinds */
  struct {
    gboolean active;
    gint64 started_us;
    gchar *reason;
    GQueue parked;              /* Job*, in the order they gave up */
    SoupMessage *probe;
    GSource *probe_timer;
    GstClockTime probe_interval;
  } outage;
  /* the callback receiver (client-callback.c) */
  struct {
    gchar *listen;              /* callback-listen; NULL: none */
    gchar *public_url;          /* without a trailing '/' */
    SoupServer *server;         /* NULL: batches are only polled */
    GHashTable *jobs;           /* secret -> Job*, not owned */
    guint accepted;             /* callbacks taken as hints */
    guint refused;
  } receiver;
  /* set by client.c: called when a job gives back its slot in
   * max_in_flight, so that the queue moves on */
  void (*slot_freed) (RdClient * client);
};

typedef struct {
  guint status;                 /* 0 on a transport failure */
  GBytes *body;
  GError *error;
  gchar *retry_after;
} Response;

typedef enum {
  FAIL_RECORD,                  /* state error, written to the manifest */
  FAIL_KEEP_STATE,              /* the manifest stays as it is */
} FailMode;

/* ---- client-submit.c: the upload ---- */

G_GNUC_INTERNAL
void rd_job_post (Job * job);

/* ---- client-settle.c: an upload of unknown outcome ---- */

G_GNUC_INTERNAL
void rd_job_settle (Job * job, guint http_status, const gchar * what,
    JobSendFunc resubmit);

G_GNUC_INTERNAL
void rd_job_settle_again (Job * job);

/* ---- client-callback.c: the API's callbacks ---- */

/* On the hub's thread, as the client starts: binds callback-listen. */
G_GNUC_INTERNAL
gboolean rd_client_receiver_start (RdClient * client, GError ** error);
G_GNUC_INTERNAL
void rd_client_receiver_stop (RdClient * client);
/* Before each POST: the batch's callback_url, with a secret path. */
G_GNUC_INTERNAL
void rd_job_expect_callback (Job * job);
/* A batch an earlier run submitted: its callback may still come here. */
G_GNUC_INTERNAL
void rd_job_resume_callback (Job * job);

/* ---- client-follow.c: polling and verdicts ---- */

G_GNUC_INTERNAL
void rd_job_poll (Job * job);
G_GNUC_INTERNAL
void rd_job_schedule_poll (Job * job, GstClockTime delay);
G_GNUC_INTERNAL
gboolean rd_job_apply_status (Job * job, const RdBatchStatus * status);
G_GNUC_INTERNAL
void rd_job_terminal (Job * job);
G_GNUC_INTERNAL
void rd_job_follow_detects (Job * job);

/* ---- client-outage.c: waiting for the API ---- */

G_GNUC_INTERNAL
gboolean rd_job_park_in_outage (Job * job, const Response * response,
    JobSendFunc resume);
G_GNUC_INTERNAL
void rd_client_outage_release (RdClient * client, gboolean cancelled);

/* ---- client-job.c: a job's life ---- */

G_GNUC_INTERNAL
SoupMessage *rd_client_new_message (RdClient * client, const gchar * method,
    const gchar * path, const gchar * id);
G_GNUC_INTERNAL
GSource *rd_client_add_timer (RdClient * client, GstClockTime delay,
    GSourceFunc func, gpointer data);
G_GNUC_INTERNAL
void rd_client_clear_timer (GSource ** timer);
G_GNUC_INTERNAL
void rd_client_check_quit (RdClient * client);
G_GNUC_INTERNAL
void rd_client_pending_drop (RdClient * client);
G_GNUC_INTERNAL
void rd_client_unauthorized (RdClient * client, Job * job,
    const gchar * reason, const GstStructure * details);

G_GNUC_INTERNAL
Job *rd_job_new (RdClient * client, RdBatch * batch);
G_GNUC_INTERNAL
GstClockTime rd_job_time_left (Job * job);
G_GNUC_INTERNAL
void rd_job_renew_deadline (Job * job);
G_GNUC_INTERNAL
void rd_job_park (Job * job, JobSendFunc resume);
G_GNUC_INTERNAL
void rd_job_fail_kept (Job * job, guint http_status, const gchar * reason);
G_GNUC_INTERNAL
void rd_job_write_manifest (Job * job);
G_GNUC_INTERNAL
void rd_job_fail (Job * job, FailMode mode, guint http_status,
    const gchar * reason, const GstStructure * details, gboolean cancelled);
G_GNUC_INTERNAL
void rd_job_fail_unknown_outcome (Job * job, guint http_status,
    const gchar * what, gboolean cancelled);
G_GNUC_INTERNAL
void rd_job_fail_response (Job * job, FailMode mode,
    const Response * response, gboolean gave_up);
G_GNUC_INTERNAL
void rd_job_unauthorized (Job * job, const Response * response);
G_GNUC_INTERNAL
void rd_job_cancel (Job * job);
G_GNUC_INTERNAL
void rd_job_done (Job * job);
G_GNUC_INTERNAL
gboolean rd_job_retry (Job * job, const Response * response,
    JobSendFunc resend);
G_GNUC_INTERNAL
GstClockTime rd_job_retry_delay (Job * job, guint attempt,
    const Response * response);
G_GNUC_INTERNAL
gchar *rd_job_gave_up_reason (Job * job, const gchar * reason,
    guint failures);

/* ---- client-response.c: answers, with the token taken out ---- */

/* Every request is sent with this (not soup_session_send_and_read_async,
 * which would read a body of any size): its answer is read up to 16 MB,
 * and @callback calls rd_response_read(). */
G_GNUC_INTERNAL
void rd_response_send (RdClient * client, SoupMessage * msg,
    GAsyncReadyCallback callback, gpointer user_data);
G_GNUC_INTERNAL
void rd_response_read (RdClient * client, SoupSession * session,
    GAsyncResult * result, SoupMessage * msg, Response * response);
G_GNUC_INTERNAL
void rd_response_clear (Response * response);
G_GNUC_INTERNAL
const gchar *rd_response_data (const Response * response, gssize * length);
/* A Retry-After value (seconds, or an HTTP date) as a delay from now;
 * GST_CLOCK_TIME_NONE when there is none, or it is neither. */
G_GNUC_INTERNAL
GstClockTime rd_response_parse_retry_after (const gchar * value);
G_GNUC_INTERNAL
gboolean rd_response_cancelled (RdClient * client, const Response * response);
G_GNUC_INTERNAL
void rd_response_parse_error (RdClient * client, const Response * response,
    gchar ** reason, GstStructure ** details);
G_GNUC_INTERNAL
void rd_client_redact_error (RdClient * client, GError * error);

G_END_DECLS
