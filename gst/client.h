/* The API client: one network thread with its own GMainContext and
 * SoupSession that submits closed batches, follows them to a terminal state,
 * fetches each file's verdict, and retries what is safe to retry. The element
 * talks to it only through this header; the client (client*.c) is the only
 * code that speaks HTTP. Callbacks run on the client's thread. */
#pragma once

#include <gst/gst.h>
#include "batch.h"

G_BEGIN_DECLS

typedef struct _RdClient RdClient;
/* A network thread with its GMainContext and SoupSession, which clients
 * may share (client-hub.c). */
typedef struct _RdClientHub RdClientHub;

typedef struct {
  const gchar *api_url;         /* e.g. "https://app.resemble.ai/api/v2" */
  const gchar *token;           /* never logged */
  const gchar *user_agent;      /* "gst-resembledetect/VERSION" */
  guint max_retries;
  guint max_in_flight;          /* batches POSTed and not yet terminal */
  GstClockTime poll_interval;
  GstClockTime poll_max_interval;
  GstClockTime poll_timeout;
  gboolean fetch_results;
  gboolean keep_files;
  /* the callback receiver: "host:port" to listen on, NULL for none; the
   * URL the API calls (NULL: the address listened on) */
  const gchar *callback_listen;
  const gchar *callback_public_url;
  /* the network thread to use (a reference is taken); NULL: its own */
  RdClientHub *hub;
} RdClientConfig;

/* What the client reports. Every batch handed to rd_client_submit() ends in
 * exactly one call of done or error (also when stopped: error with
 * cancelled = TRUE, so the element may choose not to post it). The batch's
 * manifest is written before each callback. */
typedef struct {
  /* the API accepted the batch (202); uuid and detect uuids are set */
  void (*submitted) (const RdBatch * batch, gpointer user_data);
  /* the counts changed while polling */
  void (*status) (const RdBatch * batch, gpointer user_data);
  /* upload progress of a batch, in bytes of the request body */
  void (*progress) (const RdBatch * batch, guint64 sent, guint64 total,
      gpointer user_data);
  /* an upload attempt (started by progress with @sent 0) ended before its
   * whole body was written: it failed (@reason, free of the token; it may
   * be retried, starting again from 0) or the client was stopped */
  void (*upload_failed) (const RdBatch * batch, guint64 sent, guint64 total,
      gboolean cancelled, const gchar * reason, gpointer user_data);
  /* a file's verdict ("resemble-detect-result", with batch-uuid, file,
   * running-time and duration set); @result stays owned by the client */
  void (*result) (const RdBatch * batch, guint file_index,
      const GstStructure * result, gpointer user_data);
  /* terminal: @results holds one GstStructure per fetched verdict */
  void (*done) (const RdBatch * batch, const GPtrArray * results,
      gpointer user_data);
  /* the batch cannot reach a terminal state; @details may be NULL;
   * @http_status 0 for network and local failures */
  void (*error) (const RdBatch * batch, guint http_status,
      const gchar * reason, const GstStructure * details, gboolean cancelled,
      gpointer user_data);
  /* the token was refused (401): every batch will fail the same way */
  void (*unauthorized) (const gchar * reason, gpointer user_data);
  /* no batch is queued or in flight any more */
  void (*idle) (gpointer user_data);
  /* @started: the API stopped answering (@reason); batches wait on disk
   * and are sent when it answers again. Not @started: it answers again
   * after @lasted; @waiting batches resume. */
  void (*outage) (gboolean started, const gchar * reason, guint waiting,
      GstClockTime lasted, gpointer user_data);
} RdClientCallbacks;

/* A network thread for clients to share; started at once. Unref it only
 * once the clients on it are freed, never from one of their callbacks. */
RdClientHub *rd_client_hub_new (const gchar * user_agent, GError ** error);
RdClientHub *rd_client_hub_ref (RdClientHub * hub);
void rd_client_hub_unref (RdClientHub * hub);

RdClient *rd_client_new (const RdClientConfig * config,
    const RdClientCallbacks * callbacks, gpointer user_data);
/* Starts the client on its hub's thread (its own hub's, if it was given
 * none), and its callback receiver. */
gboolean rd_client_start (RdClient * client, GError ** error);
/* Takes ownership of @batch (state closed: POST it; state submitted: poll
 * it). Never blocks: the batch waits in a queue for the network thread. */
void rd_client_submit (RdClient * client, RdBatch * batch);
/* Batches queued or in flight, for holding EOS. */
guint rd_client_get_pending (RdClient * client);
/* Nothing waits for the API any more (the element got EOS): the batches
 * of an outage end at once with their error, manifests kept for a next
 * run, and later failures end batches instead of parking them. Any
 * thread; never blocks. */
void rd_client_drain (RdClient * client);
/* Cancels every request at once, reports every unfinished batch as a
 * cancelled error (manifests describe what happened), joins the thread. */
void rd_client_stop (RdClient * client);
void rd_client_free (RdClient * client);

/* The element reaches the client only through this table, which the client
 * module (libgstresembledetect-client.so, the only code linking libsoup-3.0)
 * exports as rd_client_get_vtable(). A test can load a module of its own
 * with GST_RESEMBLEDETECT_CLIENT_MODULE and drive the element without a
 * server. */
typedef struct {
  RdClient *(*create) (const RdClientConfig * config,
      const RdClientCallbacks * callbacks, gpointer user_data);
  gboolean (*start) (RdClient * client, GError ** error);
  void (*submit) (RdClient * client, RdBatch * batch);
  guint (*get_pending) (RdClient * client);
  void (*stop) (RdClient * client);
  void (*destroy) (RdClient * client);
  /* FALSE only for clients that need no token (a test's fake): the element
   * refuses to start without one otherwise */
  gboolean requires_token;
  /* may be NULL */
  void (*drain) (RdClient * client);
  /* sharing a network thread; both NULL in a module without hubs */
  RdClientHub *(*hub_new) (const gchar * user_agent, GError ** error);
  void (*hub_unref) (RdClientHub * hub);
} RdClientVTable;

#define RD_CLIENT_VTABLE_SYMBOL "rd_client_get_vtable"
typedef const RdClientVTable *(*RdClientGetVTableFunc) (void);

G_END_DECLS
