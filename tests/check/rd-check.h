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

/* Prints the state, pending state and sink flag of @element and of every
 * element inside it, to stderr: what a test that timed out waiting for
 * EOS shows, so that a hang seen once can be read. */
void rd_check_dump_states (GstElement * element);

/* The message contract of the element reference: for every "### `name`"
 * section under "## Messages" of @doc_path, its field table. */
typedef struct _RdCheckContract RdCheckContract;

RdCheckContract *rd_check_contract_read (const gchar * doc_path);
void rd_check_contract_free (RdCheckContract * contract);
/* Names of the documented structures, owned by @contract: g_free() the
 * array only. */
const gchar **rd_check_contract_names (RdCheckContract * contract);
/* Fails unless @s is a documented structure with every documented field
 * (but the optional ones) of the documented type, and no other field
 * (resemble-detect-result may carry the API's metrics besides; progress
 * GstMessageProgress GStreamer's own fields). */
void rd_check_contract_assert (RdCheckContract * contract,
    const GstStructure * s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RdCheckContract, rd_check_contract_free)

G_END_DECLS
