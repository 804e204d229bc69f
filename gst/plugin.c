/* gst-resembledetect: registers the resembledetect plugin and its one element,
 * resembledetectsink. Nothing else lives here. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>
#include "resembledetectsink.h"
#include "client-module.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  /* the element's network client links libsoup3, which aborts a process
   * that has libsoup2 loaded: better no element than a crash later */
  if (rd_client_module_libsoup2_loaded ()) {
    GST_ERROR ("resembledetect: libsoup2 is loaded in this process and the "
        "plugin needs libsoup3, which cannot run beside it; not registering "
        "resembledetectsink");
    return FALSE;
  }
  return GST_ELEMENT_REGISTER (resembledetectsink, plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, resembledetect,
    "Submits a pipeline's media to the Resemble AI deepfake detection API "
    "and posts the verdicts on the bus",
    plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
