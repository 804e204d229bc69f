/* What the element test programs share: missing elements are a skip that
 * meson sees (exit status 77), never a pass, and in CI a failure. */
#pragma once

#include <gst/check/gstcheck.h>

G_BEGIN_DECLS

/* Whether every element in the space-separated @names is installed. A
 * test that needs a missing one returns early; the program's exit status
 * says it was skipped (rd_check_main). */
gboolean rd_check_have_elements (const gchar * names);

/* Runs @suite. Exit status: 1 when a test failed; else, when an element
 * that one of @needed (space-separated lists, NULL-terminated) names is
 * missing, 77 (meson's SKIP), or 1 with RD_TESTS_REQUIRE_ALL_ELEMENTS set
 * (CI, where every plugin is installed); else 0. */
int rd_check_main (Suite * suite, const gchar * const *needed);

G_END_DECLS
