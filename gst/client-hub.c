/* The network thread that clients share: one thread running one
 * GMainContext, and one SoupSession used only from it. A client made
 * without a hub gets one of its own at its start; the element gives every
 * client of one pipeline with the same api-url and token the same hub
 * (client-pool.c, through a GstContext), so that a hundred channels cost
 * one thread and one pool of connections, bounded by the requests in
 * flight rather than by the channels. Each client keeps its own
 * GCancellable, queue and callbacks: stopping one cancels its requests
 * only. The last reference quits the loop and joins the thread, so it must
 * not be dropped on the hub's own thread. */

#include "client-private.h"

/* libsoup's I/O timeout and idle connection timeout. */
#define SESSION_TIMEOUT_S 60

/* Connections per host: every request the batches in flight can have at
 * once, for several clients (libsoup's default of 2 per host would hold
 * every poll behind two slow uploads). A request past it waits for one. */
#define HUB_CONNS_PER_HOST 64

static gpointer
hub_thread (gpointer user_data)
{
  RdClientHub *hub = user_data;

  g_main_context_push_thread_default (hub->context);
  hub->session = soup_session_new_with_options ("user-agent", hub->user_agent,
      "timeout", SESSION_TIMEOUT_S, "idle-timeout", SESSION_TIMEOUT_S,
      "max-conns-per-host", HUB_CONNS_PER_HOST,
      "max-conns", 2 * HUB_CONNS_PER_HOST, NULL);
  /* The token goes in our own header; libsoup's auth manager would only
   * act on a 401's WWW-Authenticate: Bearer, which it cannot answer. */
  soup_session_remove_feature_by_type (hub->session, SOUP_TYPE_AUTH_MANAGER);
  g_mutex_lock (&hub->lock);
  hub->running = TRUE;
  g_cond_broadcast (&hub->cond);
  g_mutex_unlock (&hub->lock);

  g_main_loop_run (hub->loop);
  soup_session_abort (hub->session);
  g_clear_object (&hub->session);
  /* Let what the session left behind run down on its own context. */
  while (g_main_context_iteration (hub->context, FALSE));
  g_main_context_pop_thread_default (hub->context);
  return NULL;
}

RdClientHub *
rd_client_hub_new (const gchar * user_agent, GError ** error)
{
  RdClientHub *hub = g_new0 (RdClientHub, 1);

  rd_client_debug_init ();
  g_atomic_ref_count_init (&hub->refcount);
  g_mutex_init (&hub->lock);
  g_cond_init (&hub->cond);
  hub->user_agent = g_strdup (user_agent);
  hub->context = g_main_context_new ();
  hub->loop = g_main_loop_new (hub->context, FALSE);
  hub->thread = g_thread_try_new ("rd-client", hub_thread, hub, error);
  if (hub->thread == NULL) {
    g_main_loop_unref (hub->loop);
    g_main_context_unref (hub->context);
    g_mutex_clear (&hub->lock);
    g_cond_clear (&hub->cond);
    g_free (hub->user_agent);
    g_free (hub);
    return NULL;
  }
  /* the session exists before any client sends */
  g_mutex_lock (&hub->lock);
  while (!hub->running)
    g_cond_wait (&hub->cond, &hub->lock);
  g_mutex_unlock (&hub->lock);
  GST_DEBUG ("hub %p: network thread started", hub);
  return hub;
}

RdClientHub *
rd_client_hub_ref (RdClientHub * hub)
{
  g_atomic_ref_count_inc (&hub->refcount);
  return hub;
}

void
rd_client_hub_unref (RdClientHub * hub)
{
  if (hub == NULL || !g_atomic_ref_count_dec (&hub->refcount))
    return;
  g_assert (g_thread_self () != hub->thread);
  g_main_loop_quit (hub->loop);
  g_thread_join (hub->thread);
  GST_DEBUG ("hub %p: network thread ended", hub);
  g_main_loop_unref (hub->loop);
  g_main_context_unref (hub->context);
  g_mutex_clear (&hub->lock);
  g_cond_clear (&hub->cond);
  g_free (hub->user_agent);
  g_free (hub);
}

typedef struct
{
  RdClientHub *hub;
  GSourceFunc func;
  gpointer data;
  gboolean done;
} Invoke;

static gboolean
invoke_run (gpointer user_data)
{
  Invoke *invoke = user_data;

  invoke->func (invoke->data);
  g_mutex_lock (&invoke->hub->lock);
  invoke->done = TRUE;
  g_cond_broadcast (&invoke->hub->cond);
  g_mutex_unlock (&invoke->hub->lock);
  return G_SOURCE_REMOVE;
}

void
rd_client_hub_invoke_sync (RdClientHub * hub, GSourceFunc func, gpointer data)
{
  Invoke invoke = { hub, func, data, FALSE };
  GSource *source;

  if (g_thread_self () == hub->thread) {
    func (data);
    return;
  }
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_HIGH);
  g_source_set_callback (source, invoke_run, &invoke, NULL);
  g_source_attach (source, hub->context);
  g_source_unref (source);
  g_mutex_lock (&hub->lock);
  while (!invoke.done)
    g_cond_wait (&hub->cond, &hub->lock);
  g_mutex_unlock (&hub->lock);
}
