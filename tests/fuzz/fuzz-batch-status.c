/* Fuzz target of the reader of a batch's status (rd_results_parse_batch:
 * the 202 of POST /detect/batch, GET /detect/batch/{uuid} and the callback
 * payload), with an explicit length as the client passes it. A status it
 * returns must keep the promises of results.h: the batch uuid and every
 * detect uuid are ids (they go into request paths), the status is a word,
 * and the detect uuids are an array, never NULL. */
#include "fuzz-common.h"
#include "results.h"
#include "api-json.h"

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (RdBatchStatus) status = NULL;
  guint i;

  status = rd_results_parse_batch ((const gchar *) data, size, &error);
  if (status == NULL) {
    g_assert_error (error, RD_ERROR, RD_ERROR_FORMAT);
    return 0;
  }

  g_assert_no_error (error);
  g_assert_true (rd_json_is_id (status->uuid));
  g_assert_true (rd_json_is_status_word (status->status));
  g_assert_nonnull (status->detect_uuids);
  for (i = 0; status->detect_uuids[i] != NULL; i++)
    g_assert_true (rd_json_is_id (status->detect_uuids[i]));
  if (status->created_at != NULL)
    g_assert_cmpstr (status->created_at, !=, "");
  rd_results_batch_status_is_terminal (status->status);
  return 0;
}
