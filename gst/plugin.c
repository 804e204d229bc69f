/* gst-resembledetect: registers the resembledetect plugin and its one element,
 * resembledetectsink. Nothing else lives here. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>
#include "resembledetectsink.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  return GST_ELEMENT_REGISTER (resembledetectsink, plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, resembledetect,
    "Submits a pipeline's media to the Resemble AI deepfake detection API "
    "and posts the verdicts on the bus",
    plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
