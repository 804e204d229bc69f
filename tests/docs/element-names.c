/* element-names: prints what resembledetectsink itself defines, one per
 * line, for check-reference.py to hold against docs/resembledetectsink.md:
 *
 *   plugin /path/of/libgstresembledetect.so
 *   property NAME     (only the element's own, not GstBin's or GstObject's)
 *   signal NAME       (likewise)
 *   pad NAME-TEMPLATE
 *
 * It reads the class only: no element is made, nothing is started. */
#include <gst/gst.h>

int
main (int argc, char **argv)
{
  GstElementFactory *factory;
  GstPluginFeature *loaded;
  GObjectClass *klass;
  GParamSpec **specs;
  const GList *templates;
  GstPlugin *plugin;
  guint *ids, n, i;
  GType type;

  gst_init (&argc, &argv);
  factory = gst_element_factory_find ("resembledetectsink");
  if (factory == NULL) {
    g_printerr ("element-names: no resembledetectsink in the registry "
        "(GST_PLUGIN_PATH_1_0=%s)\n", g_getenv ("GST_PLUGIN_PATH_1_0"));
    return 1;
  }
  loaded = gst_plugin_feature_load (GST_PLUGIN_FEATURE (factory));
  if (loaded == NULL) {
    g_printerr ("element-names: the resembledetect plugin cannot be loaded\n");
    gst_object_unref (factory);
    return 1;
  }
  plugin = gst_plugin_feature_get_plugin (loaded);
  g_print ("plugin %s\n", plugin ? gst_plugin_get_filename (plugin) : "");
  g_clear_object (&plugin);

  type = gst_element_factory_get_element_type (GST_ELEMENT_FACTORY (loaded));
  klass = g_type_class_ref (type);
  specs = g_object_class_list_properties (klass, &n);
  for (i = 0; i < n; i++) {
    if (specs[i]->owner_type == type)
      g_print ("property %s\n", g_param_spec_get_name (specs[i]));
  }
  g_free (specs);

  ids = g_signal_list_ids (type, &n);
  for (i = 0; i < n; i++)
    g_print ("signal %s\n", g_signal_name (ids[i]));
  g_free (ids);

  for (templates = gst_element_class_get_pad_template_list (GST_ELEMENT_CLASS
          (klass)); templates; templates = templates->next)
    g_print ("pad %s\n", GST_PAD_TEMPLATE_NAME_TEMPLATE (templates->data));

  g_type_class_unref (klass);
  gst_object_unref (loaded);
  gst_object_unref (factory);
  gst_deinit ();
  return 0;
}
