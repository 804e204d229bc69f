/* Small file helpers shared by the unit and element tests. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A new private directory under the temp dir; @tmpl ends in XXXXXX. */
gchar *rd_test_make_tmp_dir (const gchar * tmpl);
/* Removes @path and everything below it. */
void rd_test_remove_tree (const gchar * path);
/* Writes @contents into @dir/@name and returns the path. */
gchar *rd_test_write_file (const gchar * dir, const gchar * name,
    const gchar * contents, gssize length);

G_END_DECLS
