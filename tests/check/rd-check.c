/* Shared by the element test programs: see rd-check.h. */
#include "rd-check.h"

gboolean
rd_check_have_elements (const gchar * names)
{
  g_auto (GStrv) list = g_strsplit (names, " ", -1);

  for (guint i = 0; list[i]; i++) {
    g_autoptr (GstElementFactory) factory = NULL;

    if (*list[i] == '\0')
      continue;
    factory = gst_element_factory_find (list[i]);
    if (factory == NULL) {
      g_printerr ("skipped: element %s is not installed\n", list[i]);
      return FALSE;
    }
  }
  return TRUE;
}

int
rd_check_main (Suite * suite, const gchar * const *needed)
{
  g_autoptr (GString) missing = g_string_new (NULL);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash,
      g_str_equal, g_free, NULL);
  int failures = gst_check_run_suite (suite, "resembledetect", __FILE__);

  for (guint i = 0; needed && needed[i]; i++) {
    g_auto (GStrv) list = g_strsplit (needed[i], " ", -1);

    for (guint j = 0; list[j]; j++) {
      g_autoptr (GstElementFactory) factory = NULL;

      if (*list[j] == '\0' || !g_hash_table_add (seen, g_strdup (list[j])))
        continue;
      factory = gst_element_factory_find (list[j]);
      if (factory == NULL)
        g_string_append_printf (missing, " %s", list[j]);
    }
  }
  if (failures > 0)
    return 1;
  if (missing->len == 0)
    return 0;
  if (g_getenv ("RD_TESTS_REQUIRE_ALL_ELEMENTS")) {
    g_printerr ("FAIL: tests skipped for want of:%s\n", missing->str);
    return 1;
  }
  g_printerr ("SKIP: tests skipped for want of:%s\n", missing->str);
  return 77;
}
