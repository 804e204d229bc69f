/* Runs saved inputs of one fuzz target through its entry points, as an
 * ordinary unit test built by any compiler: every file of the directories
 * given as arguments (its seed corpus, and the regressions: inputs that once
 * crashed it), and every file given itself, is a test case of its own. A
 * missing directory is skipped (a target may have no regressions yet), but
 * at least one input must run. */
#include "fuzz-common.h"

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar * const *) a, *(const gchar * const *) b);
}

static void
replay_file (gconstpointer user_data)
{
  const gchar *path = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *contents = NULL;
  g_autofree guint8 *data = NULL;
  gsize length;

  g_assert_true (g_file_get_contents (path, &contents, &length, &error));
  g_assert_no_error (error);
  /* An exact-size copy: g_file_get_contents() adds a NUL that would hide a
   * read past the end from AddressSanitizer. */
  data = g_memdup2 (contents, length);
  LLVMFuzzerTestOneInput (data != NULL ? data : (const guint8 *) "", length);
}

static void
add_input (const gchar * kind, const gchar * path)
{
  g_autofree gchar *name = g_path_get_basename (path);
  g_autofree gchar *test_path = g_strdup_printf ("/%s/%s/%s", RD_FUZZ_TARGET,
      kind, name);

  g_test_add_data_func_full (test_path, g_strdup (path), replay_file, g_free);
}

/* Adds a test case /{target}/{corpus|regressions}/{file} per file of
 * @dir, in name order. */
static guint
add_directory (const gchar * dir)
{
  g_autoptr (GDir) handle = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *parent = g_path_get_dirname (dir);
  g_autofree gchar *kind = g_path_get_basename (parent);
  const gchar *name;
  guint i;

  if (handle == NULL)
    return 0;
  while ((name = g_dir_read_name (handle)) != NULL)
    g_ptr_array_add (names, g_build_filename (dir, name, NULL));
  g_ptr_array_sort (names, compare_names);

  for (i = 0; i < names->len; i++)
    add_input (kind, g_ptr_array_index (names, i));
  return names->len;
}

int
main (int argc, char **argv)
{
  guint n_inputs = 0;
  gint i;

  g_test_init (&argc, &argv, NULL);
  LLVMFuzzerInitialize (&argc, &argv);

  for (i = 1; i < argc; i++) {
    if (g_file_test (argv[i], G_FILE_TEST_IS_REGULAR)) {
      add_input ("input", argv[i]);
      n_inputs++;
    } else {
      n_inputs += add_directory (argv[i]);
    }
  }
  if (n_inputs == 0) {
    g_printerr ("replay: no inputs in the paths given\n");
    return 1;
  }
  return g_test_run ();
}
