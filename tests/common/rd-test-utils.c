/* Small file helpers shared by the unit and element tests. */
#include "rd-test-utils.h"

#include <glib/gstdio.h>

gchar *
rd_test_make_tmp_dir (const gchar * tmpl)
{
  g_autoptr (GError) error = NULL;
  gchar *dir = g_dir_make_tmp (tmpl, &error);

  if (dir == NULL)
    g_error ("cannot make a temporary directory: %s", error->message);
  return dir;
}

void
rd_test_remove_tree (const gchar * path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  while (dir && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree gchar *child = g_build_filename (path, name, NULL);

    if (g_file_test (child, G_FILE_TEST_IS_DIR)
        && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
      rd_test_remove_tree (child);
    else
      g_unlink (child);
  }
  g_rmdir (path);
}

gchar *
rd_test_write_file (const gchar * dir, const gchar * name,
    const gchar * contents, gssize length)
{
  gchar *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;

  if (!g_file_set_contents (path, contents, length, &error))
    g_error ("cannot write %s: %s", path, error->message);
  return path;
}
