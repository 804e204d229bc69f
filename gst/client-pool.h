/* The network threads that the elements of a pipeline share: one hub (the
 * client's thread, GMainContext and SoupSession) per api-url and token,
 * handed from element to element as a GstContext of type
 * RD_CLIENT_POOL_CONTEXT_TYPE, the way GStreamer elements share a display
 * or a device. An application with several pipelines may set the same
 * context on each. Knows the client only through its function table. */
#pragma once

#include <gst/gst.h>
#include "client.h"

G_BEGIN_DECLS

#define RD_CLIENT_POOL_CONTEXT_TYPE "gst.resembledetect.ClientPool"

typedef struct _RdClientPool RdClientPool;

GType rd_client_pool_get_type (void);
#define RD_TYPE_CLIENT_POOL (rd_client_pool_get_type ())

RdClientPool *rd_client_pool_new (void);
RdClientPool *rd_client_pool_ref (RdClientPool * pool);
void rd_client_pool_unref (RdClientPool * pool);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RdClientPool, rd_client_pool_unref)

/* A persistent context holding @pool. */
GstContext *rd_client_pool_context_new (RdClientPool * pool);
/* The pool of a context of our type (a reference), or NULL. */
RdClientPool *rd_client_pool_from_context (GstContext * context);

/* The hub for @api_url and @token, made with @api on first use; NULL with
 * @error if it cannot start. Give it back with rd_client_pool_release()
 * once the client on it is freed. */
RdClientHub *rd_client_pool_acquire (RdClientPool * pool,
    const RdClientVTable * api, const gchar * api_url, const gchar * token,
    const gchar * user_agent, GError ** error);
void rd_client_pool_release (RdClientPool * pool, RdClientHub * hub);

G_END_DECLS
