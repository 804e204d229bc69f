/* Checks that the plugin refuses to register in a process that has loaded
 * libsoup2 (libsoup3 would abort it). Its own process, so that no earlier
 * registry scan has loaded the plugin already. Exit 77: skipped. */
#include <dlfcn.h>
#include <gst/gst.h>

int
main (int argc, char **argv)
{
  GstElement *sink;

  if (dlopen ("libsoup-2.4.so.1", RTLD_NOW | RTLD_GLOBAL) == NULL) {
    g_print ("SKIP: libsoup2 is not installed\n");
    return 77;
  }
  gst_init (&argc, &argv);
  sink = gst_element_factory_make ("resembledetectsink", NULL);
  if (sink != NULL) {
    g_printerr ("FAIL: resembledetectsink registered beside libsoup2\n");
    return 1;
  }
  g_print ("ok: the plugin refused to register beside libsoup2\n");
  return 0;
}
