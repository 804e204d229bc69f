/* Fuzz target of the readers of GET /detect/{uuid}, of the list of detects
 * (GET /detect?page=) and of error answers (rd_results_parse_detect,
 * rd_results_parse_detect_list, rd_results_parse_error): every input goes
 * to all three, with an explicit length as the client passes it (an HTTP body is not
 * NUL-terminated), and what they return must keep the promises of
 * results.h and api-json.h: an id as detect-uuid, a score that is -1 or a
 * finite number >= 0, a non-empty UTF-8 reason, and no string anywhere in
 * the structures that is a data: URI or longer than the bounds. */
#include "fuzz-common.h"
#include "results.h"
#include "api-json.h"
#include "messages.h"

#include <math.h>
#include <string.h>

/* "HTTP 4294967295: " before the API's message, "..." after a cut one. */
#define MAX_REASON_CHARS (RD_JSON_MAX_MESSAGE_CHARS + 32)

static void check_structure (const GstStructure * s);

static void
check_value (const GValue * value)
{
  if (G_VALUE_HOLDS_STRING (value)) {
    const gchar *str = g_value_get_string (value);

    g_assert_nonnull (str);
    g_assert_false (rd_json_is_data_uri (str));
    g_assert_cmpuint (strlen (str), <=, MAX (RD_JSON_MAX_TEXT_LENGTH,
            RD_JSON_MAX_URL_LENGTH));
  } else if (G_VALUE_HOLDS_DOUBLE (value)) {
    g_assert_true (isfinite (g_value_get_double (value)));
  } else if (GST_VALUE_HOLDS_ARRAY (value)) {
    guint i, n = gst_value_array_get_size (value);

    for (i = 0; i < n; i++)
      check_value (gst_value_array_get_value (value, i));
  } else if (GST_VALUE_HOLDS_STRUCTURE (value)) {
    check_structure (gst_value_get_structure (value));
  }
}

static gboolean
check_field (GQuark field, const GValue * value, gpointer user_data)
{
  check_value (value);
  return TRUE;
}

static void
check_structure (const GstStructure * s)
{
  g_autofree gchar *text = NULL;

  gst_structure_foreach (s, check_field, NULL);
  /* what a debug log or an application does with a bus message */
  text = gst_structure_to_string (s);
  g_assert_nonnull (text);
}

static void
check_detect (const gchar * body, gsize size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GstStructure) s = NULL;
  gdouble score;

  s = rd_results_parse_detect (body, size, &error);
  if (s == NULL) {
    g_assert_error (error, RD_ERROR, RD_ERROR_FORMAT);
    return;
  }
  g_assert_no_error (error);
  g_assert_true (gst_structure_has_name (s, RD_MESSAGE_RESULT));
  g_assert_true (rd_json_is_id (gst_structure_get_string (s, "detect-uuid")));
  g_assert_nonnull (gst_structure_get_string (s, "status"));
  g_assert_true (gst_structure_get_double (s, "score", &score));
  g_assert_true (score == -1.0 || score >= 0.0);
  check_structure (s);
}

/* Items of the list carry ids (or are left out), lowercase statuses, and
 * UTF-8 names, as the settling code compares them. */
static void
check_list (const gchar * body, gsize size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (RdDetectList) list =
      rd_results_parse_detect_list (body, size, &error);
  guint i;

  if (list == NULL) {
    g_assert_error (error, RD_ERROR, RD_ERROR_FORMAT);
    return;
  }
  for (i = 0; i < list->n_items; i++) {
    const RdDetectListItem *item = &list->items[i];

    g_assert_true (rd_json_is_id (item->uuid));
    g_assert_true (item->filename == NULL
        || g_utf8_validate (item->filename, -1, NULL));
    if (item->status) {
      g_autofree gchar *lower = g_ascii_strdown (item->status, -1);
      g_assert_cmpstr (item->status, ==, lower);
    }
  }
}

static void
check_error (const gchar * body, gsize size)
{
  g_autofree gchar *reason = NULL;
  g_autoptr (GstStructure) details = NULL;

  rd_results_parse_error (400, body, size, &reason, &details);
  g_assert_nonnull (reason);
  g_assert_cmpstr (reason, !=, "");
  g_assert_true (g_utf8_validate (reason, -1, NULL));
  g_assert_cmpuint (g_utf8_strlen (reason, -1), <=, MAX_REASON_CHARS);
  g_assert_nonnull (details);
  check_structure (details);
}

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  check_detect ((const gchar *) data, size);
  check_list ((const gchar *) data, size);
  check_error ((const gchar *) data, size);
  return 0;
}
