/* Loading the network client module (see client-module.h). */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dlfcn.h>
#include <gmodule.h>

#include "client-module.h"

GST_DEBUG_CATEGORY_EXTERN (gst_resemble_detect_sink_debug);
#define GST_CAT_DEFAULT gst_resemble_detect_sink_debug

#define CLIENT_MODULE_NAME "libgstresembledetect-client.so.0"

gboolean
rd_client_module_libsoup2_loaded (void)
{
  void *handle = dlopen ("libsoup-2.4.so.1", RTLD_LAZY | RTLD_NOLOAD);

  if (handle == NULL)
    return FALSE;
  dlclose (handle);
  return TRUE;
}

const RdClientVTable *
rd_client_module_load (const gchar * plugin_filename, GError ** error)
{
  g_autoptr (GPtrArray) candidates = g_ptr_array_new_with_free_func (g_free);
  const gchar *env = g_getenv ("GST_RESEMBLEDETECT_CLIENT_MODULE");
  RdClientGetVTableFunc get_vtable = NULL;
  GModule *module = NULL;

  if (rd_client_module_libsoup2_loaded ()) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_FAILED,
        "libsoup2 is loaded in this process: the network client needs "
        "libsoup3, which cannot run beside it");
    return NULL;
  }
  if (env && *env)
    g_ptr_array_add (candidates, g_strdup (env));
  if (plugin_filename) {
    g_autofree gchar *dir = g_path_get_dirname (plugin_filename);
    g_ptr_array_add (candidates, g_build_filename (dir, CLIENT_MODULE_NAME,
            NULL));
  }
  g_ptr_array_add (candidates, g_build_filename (RD_CLIENT_MODULE_DIR,
          CLIENT_MODULE_NAME, NULL));

  for (guint i = 0; i < candidates->len && module == NULL; i++) {
    const gchar *path = candidates->pdata[i];
    if (!g_file_test (path, G_FILE_TEST_EXISTS))
      continue;
    module = g_module_open (path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
    if (module == NULL)
      GST_WARNING ("%s: %s", path, g_module_error ());
  }
  if (module == NULL) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
        "the network client module %s was not found next to the plugin "
        "nor in %s", CLIENT_MODULE_NAME, RD_CLIENT_MODULE_DIR);
    return NULL;
  }
  if (!g_module_symbol (module, RD_CLIENT_VTABLE_SYMBOL,
          (gpointer *) & get_vtable) || get_vtable == NULL
      || get_vtable () == NULL) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
        "%s is not a network client module", g_module_name (module));
    g_module_close (module);
    return NULL;
  }
  /* it registers GTypes: it can never be unloaded */
  g_module_make_resident (module);
  GST_INFO ("network client from %s", g_module_name (module));
  return get_vtable ();
}
