/* A callback_url target for tests: a SoupServer on 127.0.0.1 with its own
 * thread and GMainContext that keeps every POST body it receives and lets
 * a test block, with a deadline, until the Nth one has arrived. */
#include "emulator.h"

#include <libsoup/soup.h>

struct _RdEmulatorReceiver
{
  GMutex lock;
  GCond cond;
  GPtrArray *bodies;            /* GBytes*, in arrival order */
  guint status;

  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  gboolean start_done;
  GError *start_error;
  gchar *url;
  SoupServer *server;           /* server thread only */
};

static void
receiver_handler (SoupServer * server, SoupServerMessage * msg,
    const gchar * path, GHashTable * query, gpointer user_data)
{
  RdEmulatorReceiver *receiver = user_data;
  SoupMessageBody *request_body;
  GBytes *body;
  guint status;

  if (g_strcmp0 (soup_server_message_get_method (msg), SOUP_METHOD_POST) != 0) {
    soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
    return;
  }
  request_body = soup_server_message_get_request_body (msg);
  body = soup_message_body_flatten (request_body);

  g_mutex_lock (&receiver->lock);
  g_ptr_array_add (receiver->bodies, body);
  status = receiver->status;
  g_cond_broadcast (&receiver->cond);
  g_mutex_unlock (&receiver->lock);

  soup_server_message_set_status (msg, status, NULL);
}

static gboolean
receiver_started (gpointer user_data)
{
  RdEmulatorReceiver *receiver = user_data;

  g_mutex_lock (&receiver->lock);
  receiver->start_done = TRUE;
  g_cond_broadcast (&receiver->cond);
  g_mutex_unlock (&receiver->lock);
  return G_SOURCE_REMOVE;
}

static gpointer
receiver_thread (gpointer user_data)
{
  RdEmulatorReceiver *receiver = user_data;
  g_autoptr (GInetAddress) loopback =
      g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  GError *error = NULL;

  g_main_context_push_thread_default (receiver->context);
  receiver->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (receiver->server, NULL, receiver_handler,
      receiver, NULL);
  if (soup_server_listen (receiver->server, address, 0, &error)) {
    GSList *uris = soup_server_get_uris (receiver->server);
    GSource *source = g_idle_source_new ();

    receiver->url = g_strdup_printf ("http://127.0.0.1:%d/callback",
        g_uri_get_port (uris->data));
    g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
    g_source_set_callback (source, receiver_started, receiver, NULL);
    g_source_attach (source, receiver->context);
    g_source_unref (source);
    g_main_loop_run (receiver->loop);
  } else {
    g_mutex_lock (&receiver->lock);
    receiver->start_error = error;
    receiver->start_done = TRUE;
    g_cond_broadcast (&receiver->cond);
    g_mutex_unlock (&receiver->lock);
  }
  soup_server_disconnect (receiver->server);
  g_clear_object (&receiver->server);
  while (g_main_context_iteration (receiver->context, FALSE));
  g_main_context_pop_thread_default (receiver->context);
  return NULL;
}

RdEmulatorReceiver *
rd_emulator_receiver_new (void)
{
  RdEmulatorReceiver *receiver = g_new0 (RdEmulatorReceiver, 1);

  g_mutex_init (&receiver->lock);
  g_cond_init (&receiver->cond);
  receiver->bodies = g_ptr_array_new_with_free_func ((GDestroyNotify)
      g_bytes_unref);
  receiver->status = SOUP_STATUS_OK;
  return receiver;
}

static void
receiver_stop (RdEmulatorReceiver * receiver)
{
  if (receiver->thread == NULL)
    return;
  g_main_loop_quit (receiver->loop);
  g_thread_join (receiver->thread);
  receiver->thread = NULL;
  g_clear_pointer (&receiver->loop, g_main_loop_unref);
  g_clear_pointer (&receiver->context, g_main_context_unref);
}

void
rd_emulator_receiver_free (RdEmulatorReceiver * receiver)
{
  if (receiver == NULL)
    return;
  receiver_stop (receiver);
  g_ptr_array_unref (receiver->bodies);
  g_free (receiver->url);
  g_cond_clear (&receiver->cond);
  g_mutex_clear (&receiver->lock);
  g_free (receiver);
}

void
rd_emulator_receiver_set_status (RdEmulatorReceiver * receiver, guint status)
{
  g_mutex_lock (&receiver->lock);
  receiver->status = status;
  g_mutex_unlock (&receiver->lock);
}

gboolean
rd_emulator_receiver_start (RdEmulatorReceiver * receiver, GError ** error)
{
  g_return_val_if_fail (receiver->thread == NULL, FALSE);

  receiver->context = g_main_context_new ();
  receiver->loop = g_main_loop_new (receiver->context, FALSE);
  receiver->start_done = FALSE;
  receiver->thread = g_thread_new ("rd-emulator-receiver", receiver_thread,
      receiver);

  g_mutex_lock (&receiver->lock);
  while (!receiver->start_done)
    g_cond_wait (&receiver->cond, &receiver->lock);
  g_mutex_unlock (&receiver->lock);

  if (receiver->start_error) {
    g_propagate_error (error, g_steal_pointer (&receiver->start_error));
    receiver_stop (receiver);
    return FALSE;
  }
  return TRUE;
}

const gchar *
rd_emulator_receiver_get_url (RdEmulatorReceiver * receiver)
{
  return receiver->url;
}

gboolean
rd_emulator_receiver_wait (RdEmulatorReceiver * receiver, guint count,
    guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () +
      (gint64) timeout_ms * G_TIME_SPAN_MILLISECOND;
  gboolean arrived;

  g_mutex_lock (&receiver->lock);
  while (receiver->bodies->len < count) {
    if (!g_cond_wait_until (&receiver->cond, &receiver->lock, deadline))
      break;
  }
  arrived = receiver->bodies->len >= count;
  g_mutex_unlock (&receiver->lock);
  return arrived;
}

guint
rd_emulator_receiver_get_count (RdEmulatorReceiver * receiver)
{
  guint count;

  g_mutex_lock (&receiver->lock);
  count = receiver->bodies->len;
  g_mutex_unlock (&receiver->lock);
  return count;
}

gchar *
rd_emulator_receiver_dup_body (RdEmulatorReceiver * receiver, guint index)
{
  gchar *text = NULL;

  g_mutex_lock (&receiver->lock);
  if (index < receiver->bodies->len) {
    gsize len;
    const gchar *data = g_bytes_get_data (g_ptr_array_index
        (receiver->bodies, index), &len);
    text = g_strndup (data, len);
  }
  g_mutex_unlock (&receiver->lock);
  return text;
}
