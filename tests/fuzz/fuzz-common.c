/* The set-up every fuzz target shares (see fuzz-common.h). */
#include "fuzz-common.h"

/* gst_init() without the plugin registry: the readers need GStreamer's
 * types (GstStructure, arrays), none of its plugins, and loading or scanning
 * the registry would bring the system's plugins into the process: a slower
 * start, and their allocations counted as this program's. */
int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  g_setenv ("GST_REGISTRY_DISABLE", "yes", TRUE);
  gst_init (NULL, NULL);
  return 0;
}
