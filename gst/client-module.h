/* Finding the network client: the module libgstresembledetect-client.so.0
 * (the only code that links libsoup-3.0), loaded when an element first
 * starts, never in a process that has libsoup2 (libsoup3 would abort it).
 * Hands out the module's function table (client.h); knows nothing else of
 * the client. */
#pragma once

#include <gst/gst.h>
#include "client.h"

G_BEGIN_DECLS

/* Whether libsoup2 is loaded in this process. */
gboolean rd_client_module_libsoup2_loaded (void);

/* Loads the client module: GST_RESEMBLEDETECT_CLIENT_MODULE if set, else
 * the one beside @plugin_filename (the build tree, or a plugin installed
 * with it), else the one in RD_CLIENT_MODULE_DIR. The module stays loaded
 * for the process's life (it registers types). GST_CORE_ERROR otherwise. */
const RdClientVTable *rd_client_module_load (const gchar * plugin_filename,
    GError ** error);

G_END_DECLS
