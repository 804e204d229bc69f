/* A network client module without a network, for the element tests: it
 * takes batches on its own thread and, as the real client does, accepts
 * each one (uuids, manifest "submitted", the submitted report) and, unless
 * told to hold them, reports it done at once (manifest "done"; the files
 * are left alone, for the tests to read). Held batches wait for
 * fake_client_finish_all(), so a test can drive EOS without a server.
 * Loaded through GST_RESEMBLEDETECT_CLIENT_MODULE. Anything that needs the
 * real client's behaviour is tested against the emulator instead. */
#include <gmodule.h>
#include "client.h"
#include "manifest.h"

struct _RdClient
{
  RdClientCallbacks callbacks;
  gpointer user_data;
  GThread *thread;
  GAsyncQueue *incoming;        /* RdBatch*, or the client itself to quit */
  GMutex lock;
  GQueue held;
  guint pending;
};

/* test-only state of the module: the client of the element under test */
static GMutex fake_lock;
static RdClient *fake_current;
static gboolean fake_hold;

static void
report_submitted (RdClient * client, RdBatch * batch)
{
  /* a batch resumed from a spool may have been accepted before */
  if (batch->uuid)
    return;
  batch->uuid = g_strdup_printf ("fake-%06u", batch->index);
  for (guint i = 0; i < batch->files->len; i++) {
    RdBatchFile *file = batch->files->pdata[i];
    file->detect_uuid = g_strdup_printf ("fake-%06u-%03u", batch->index, i);
  }
  batch->state = RD_BATCH_STATE_SUBMITTED;
  rd_manifest_write (batch, NULL);
  client->callbacks.submitted (batch, client->user_data);
}

static void
report_done (RdClient * client, RdBatch * batch)
{
  g_autoptr (GPtrArray) results = g_ptr_array_new ();
  guint pending;

  batch->state = RD_BATCH_STATE_DONE;
  batch->status = g_strdup ("completed");
  batch->completed_count = batch->files->len;
  rd_manifest_write (batch, NULL);
  g_mutex_lock (&client->lock);
  pending = --client->pending;
  g_mutex_unlock (&client->lock);
  client->callbacks.done (batch, results, client->user_data);
  rd_batch_free (batch);
  if (pending == 0)
    client->callbacks.idle (client->user_data);
}

static gpointer
fake_thread (gpointer data)
{
  RdClient *client = data;
  gpointer item;

  while ((item = g_async_queue_pop (client->incoming)) != client) {
    gboolean hold;

    report_submitted (client, item);
    g_mutex_lock (&fake_lock);
    hold = fake_hold;
    g_mutex_unlock (&fake_lock);
    if (hold) {
      g_mutex_lock (&client->lock);
      g_queue_push_tail (&client->held, item);
      g_mutex_unlock (&client->lock);
    } else {
      report_done (client, item);
    }
  }
  return NULL;
}

static RdClient *
fake_create (const RdClientConfig * config, const RdClientCallbacks * cb,
    gpointer user_data)
{
  RdClient *client = g_new0 (RdClient, 1);

  client->callbacks = *cb;
  client->user_data = user_data;
  client->incoming = g_async_queue_new ();
  g_mutex_init (&client->lock);
  g_mutex_lock (&fake_lock);
  fake_current = client;
  g_mutex_unlock (&fake_lock);
  return client;
}

static gboolean
fake_start (RdClient * client, GError ** error)
{
  client->thread = g_thread_new ("fake-client", fake_thread, client);
  return TRUE;
}

static void
fake_submit (RdClient * client, RdBatch * batch)
{
  g_mutex_lock (&client->lock);
  client->pending++;
  g_mutex_unlock (&client->lock);
  g_async_queue_push (client->incoming, batch);
}

static guint
fake_get_pending (RdClient * client)
{
  guint pending;

  g_mutex_lock (&client->lock);
  pending = client->pending;
  g_mutex_unlock (&client->lock);
  return pending;
}

static void
fake_stop (RdClient * client)
{
  RdBatch *batch;

  if (client->thread == NULL)
    return;
  g_async_queue_push (client->incoming, client);
  g_thread_join (client->thread);
  client->thread = NULL;
  while ((batch = g_queue_pop_head (&client->held))) {
    g_mutex_lock (&client->lock);
    client->pending--;
    g_mutex_unlock (&client->lock);
    client->callbacks.error (batch, 0, "cancelled", NULL, TRUE,
        client->user_data);
    rd_batch_free (batch);
  }
}

static void
fake_destroy (RdClient * client)
{
  fake_stop (client);
  g_mutex_lock (&fake_lock);
  if (fake_current == client)
    fake_current = NULL;
  g_mutex_unlock (&fake_lock);
  g_async_queue_unref (client->incoming);
  g_mutex_clear (&client->lock);
  g_free (client);
}

static const RdClientVTable fake_vtable = {
  fake_create, fake_start, fake_submit, fake_get_pending, fake_stop,
  fake_destroy,
  /* it sends nothing: the element may run without a token */
  FALSE,
};

G_MODULE_EXPORT const RdClientVTable *
rd_client_get_vtable (void)
{
  return &fake_vtable;
}

/* Batches submitted from now on wait for fake_client_finish_all(). */
G_MODULE_EXPORT void
fake_client_set_hold (gboolean hold)
{
  g_mutex_lock (&fake_lock);
  fake_hold = hold;
  g_mutex_unlock (&fake_lock);
}

/* Batches held by the current client; 0 without a client. */
G_MODULE_EXPORT guint
fake_client_held (void)
{
  guint n = 0;

  g_mutex_lock (&fake_lock);
  if (fake_current) {
    g_mutex_lock (&fake_current->lock);
    n = fake_current->held.length;
    g_mutex_unlock (&fake_current->lock);
  }
  g_mutex_unlock (&fake_lock);
  return n;
}

/* Reports every held batch done, on the caller's thread (the test's). */
G_MODULE_EXPORT void
fake_client_finish_all (void)
{
  RdClient *client;
  RdBatch *batch;

  g_mutex_lock (&fake_lock);
  client = fake_current;
  g_mutex_unlock (&fake_lock);
  if (client == NULL)
    return;
  while (TRUE) {
    g_mutex_lock (&client->lock);
    batch = g_queue_pop_head (&client->held);
    g_mutex_unlock (&client->lock);
    if (batch == NULL)
      break;
    report_done (client, batch);
  }
}
