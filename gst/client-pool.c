/* See client-pool.h. A hub is keyed by a SHA-256 of api-url and token, so
 * that the token itself is not kept here; the last element to give a hub
 * back ends its thread (outside the pool's lock: that joins it). */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "client-pool.h"

typedef struct
{
  RdClientHub *hub;
  const RdClientVTable *api;
  guint users;
} Entry;

struct _RdClientPool
{
  gatomicrefcount refcount;
  GMutex lock;
  GHashTable *hubs;             /* key -> Entry* */
};

G_DEFINE_BOXED_TYPE (RdClientPool, rd_client_pool, rd_client_pool_ref,
    rd_client_pool_unref);

RdClientPool *
rd_client_pool_new (void)
{
  RdClientPool *pool = g_new0 (RdClientPool, 1);

  g_atomic_ref_count_init (&pool->refcount);
  g_mutex_init (&pool->lock);
  pool->hubs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return pool;
}

RdClientPool *
rd_client_pool_ref (RdClientPool * pool)
{
  g_atomic_ref_count_inc (&pool->refcount);
  return pool;
}

void
rd_client_pool_unref (RdClientPool * pool)
{
  if (pool == NULL || !g_atomic_ref_count_dec (&pool->refcount))
    return;
  /* every element gives its hub back before it lets go of the pool */
  g_warn_if_fail (g_hash_table_size (pool->hubs) == 0);
  g_hash_table_unref (pool->hubs);
  g_mutex_clear (&pool->lock);
  g_free (pool);
}

GstContext *
rd_client_pool_context_new (RdClientPool * pool)
{
  GstContext *context = gst_context_new (RD_CLIENT_POOL_CONTEXT_TYPE, TRUE);

  gst_structure_set (gst_context_writable_structure (context), "pool",
      RD_TYPE_CLIENT_POOL, pool, NULL);
  return context;
}

RdClientPool *
rd_client_pool_from_context (GstContext * context)
{
  RdClientPool *pool = NULL;

  if (!gst_context_has_context_type (context, RD_CLIENT_POOL_CONTEXT_TYPE))
    return NULL;
  gst_structure_get (gst_context_get_structure (context), "pool",
      RD_TYPE_CLIENT_POOL, &pool, NULL);
  return pool;
}

static gchar *
hub_key (const gchar * api_url, const gchar * token)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);

  g_checksum_update (sum, (const guchar *) api_url, strlen (api_url) + 1);
  if (token)
    g_checksum_update (sum, (const guchar *) token, strlen (token));
  return g_strdup (g_checksum_get_string (sum));
}

RdClientHub *
rd_client_pool_acquire (RdClientPool * pool, const RdClientVTable * api,
    const gchar * api_url, const gchar * token, const gchar * user_agent,
    GError ** error)
{
  gchar *key = hub_key (api_url, token);
  Entry *entry;

  g_mutex_lock (&pool->lock);
  entry = g_hash_table_lookup (pool->hubs, key);
  if (entry == NULL) {
    RdClientHub *hub = api->hub_new (user_agent, error);

    if (hub == NULL) {
      g_mutex_unlock (&pool->lock);
      g_free (key);
      return NULL;
    }
    entry = g_new0 (Entry, 1);
    entry->hub = hub;
    entry->api = api;
    g_hash_table_insert (pool->hubs, g_steal_pointer (&key), entry);
  }
  entry->users++;
  g_mutex_unlock (&pool->lock);
  g_free (key);
  return entry->hub;
}

void
rd_client_pool_release (RdClientPool * pool, RdClientHub * hub)
{
  const RdClientVTable *api = NULL;
  GHashTableIter iter;
  gpointer key, value;

  g_mutex_lock (&pool->lock);
  g_hash_table_iter_init (&iter, pool->hubs);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    Entry *entry = value;

    if (entry->hub != hub)
      continue;
    if (--entry->users == 0) {
      api = entry->api;
      g_hash_table_iter_remove (&iter);
    }
    break;
  }
  g_mutex_unlock (&pool->lock);
  if (api)
    api->hub_unref (hub);
}
