/* Reading the API's error answers ({"success":false,"message":...,
 * "errors":{...},"details":{...}}, or whatever a proxy sent instead) into a
 * reason and a details structure (see results.h). */
#include "results.h"
#include "api-json.h"

#include <string.h>

#define DETAILS_NAME "details"

/* ---- error answers ---- */

/* Printable text of @str on one line: control characters and runs of white
 * space become one space, HTML tags are left out when @strip_tags, and at
 * most @max_chars characters are kept ("..." marks a cut). */
static gchar *
printable_text (const gchar * str, gssize length, guint max_chars,
    gboolean strip_tags)
{
  g_autofree gchar *valid = g_utf8_make_valid (str, length);
  GString *out = g_string_new (NULL);
  gboolean space = FALSE, in_tag = FALSE;
  guint chars = 0;
  const gchar *p;

  for (p = valid; *p != '\0'; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);

    if (strip_tags && c == '<') {
      in_tag = TRUE;
      space = out->len > 0;
      continue;
    }
    if (in_tag) {
      if (c == '>')
        in_tag = FALSE;
      continue;
    }
    if (g_unichar_isspace (c) || !g_unichar_isprint (c)) {
      space = out->len > 0;
      continue;
    }
    if (chars >= max_chars) {
      g_string_append (out, "...");
      break;
    }
    if (space) {
      g_string_append_c (out, ' ');
      chars++;
    }
    space = FALSE;
    g_string_append_unichar (out, c);
    chars++;
  }
  return g_string_free (out, FALSE);
}

static gboolean
looks_like_markup (const gchar * body, gssize length)
{
  gssize i;

  for (i = 0; length < 0 ? body[i] != '\0' : i < length; i++) {
    if (!g_ascii_isspace (body[i]))
      return body[i] == '<';
  }
  return FALSE;
}

static gchar *
reason_from_text (guint http_status, const gchar * body, gssize length)
{
  g_autofree gchar *excerpt = NULL;

  if (body != NULL && length != 0)
    excerpt = printable_text (body, length, RD_JSON_MAX_EXCERPT_CHARS,
        looks_like_markup (body, length));
  if (excerpt == NULL || *excerpt == '\0')
    return g_strdup_printf ("HTTP %u", http_status);
  return g_strdup_printf ("HTTP %u: %s", http_status, excerpt);
}

/* errors = {field: ["msg", ...] or "msg"} -> a structure of field -> the
 * messages joined with "; ", and the same as one line for a reason. */
static GstStructure *
read_field_errors (JsonObject * errors, gchar ** summary)
{
  GstStructure *s = gst_structure_new_empty ("errors");
  g_autoptr (GString) line = g_string_new (NULL);
  JsonObjectIter iter;
  const gchar *name;
  JsonNode *node;

  json_object_iter_init (&iter, errors);
  while (json_object_iter_next (&iter, &name, &node)) {
    g_autoptr (GString) joined = g_string_new (NULL);
    g_autofree gchar *field = rd_json_field_name (name);

    if (JSON_NODE_HOLDS_ARRAY (node)) {
      JsonArray *array = json_node_get_array (node);
      guint i, n = json_array_get_length (array);

      for (i = 0; i < n; i++) {
        const gchar *msg =
            rd_json_node_string (json_array_get_element (array, i));

        if (msg == NULL || *msg == '\0')
          continue;
        if (joined->len > 0)
          g_string_append (joined, "; ");
        g_string_append (joined, msg);
      }
    } else if (rd_json_node_string (node) != NULL) {
      g_string_append (joined, rd_json_node_string (node));
    }

    if (field == NULL || joined->len == 0
        || gst_structure_n_fields (s) >= RD_JSON_MAX_COPIED_MEMBERS)
      continue;
    rd_json_set_text (s, field, joined->str);
    if (line->len > 0)
      g_string_append (line, "; ");
    g_string_append_printf (line, "%s: %s", name, joined->str);
  }

  *summary = line->len > 0 ? printable_text (line->str, -1,
      RD_JSON_MAX_MESSAGE_CHARS, FALSE) : NULL;
  return s;
}

static GValue *
per_file_estimates (JsonArray * array, GValue * out)
{
  guint i, n = json_array_get_length (array);

  g_value_init (out, GST_TYPE_ARRAY);
  for (i = 0; i < n && i < RD_BATCH_MAX_FILES * 4; i++) {
    JsonNode *element = json_array_get_element (array, i);
    GValue value = G_VALUE_INIT;
    GstStructure *estimate;

    if (!JSON_NODE_HOLDS_OBJECT (element))
      continue;
    estimate = gst_structure_new_empty ("per-file-estimate");
    rd_json_copy_scalar_members (json_node_get_object (element), estimate,
        NULL);
    g_value_init (&value, GST_TYPE_STRUCTURE);
    g_value_take_boxed (&value, estimate);
    gst_value_array_append_and_take_value (out, &value);
  }
  return out;
}

/* The cost as the API gave it: an integer stays int64, a fraction double. */
static void
set_cost (GstStructure * s, JsonNode * node)
{
  gint64 cents;
  gdouble value;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return;
  if (json_node_get_value_type (node) != G_TYPE_DOUBLE
      && rd_json_node_int64 (node, &cents))
    gst_structure_set (s, "total-estimated-cost-cents", G_TYPE_INT64, cents,
        NULL);
  else if (rd_json_node_double (node, &value))
    gst_structure_set (s, "total-estimated-cost-cents", G_TYPE_DOUBLE, value,
        NULL);
}

/* details = {per_file_estimates, total_estimated_cost_cents, limit, used,
 * requested, ...}; the known members are also looked for at the top level,
 * where some answers put them. */
static void
read_details (JsonObject * root, GstStructure * s)
{
  static const gchar *const known[] = {
    "per_file_estimates", "total_estimated_cost_cents", "limit", "used",
    "requested", NULL
  };
  JsonObject *details = rd_json_object_member (root, "details");
  JsonObject *sources[] = { details, root };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (sources); i++) {
    JsonObject *from = sources[i];
    JsonArray *estimates;

    if (from == NULL)
      continue;
    estimates = rd_json_array_member (from, "per_file_estimates");
    if (estimates != NULL && !gst_structure_has_field (s, "per-file-estimates")) {
      GValue value = G_VALUE_INIT;

      gst_structure_take_value (s, "per-file-estimates",
          per_file_estimates (estimates, &value));
    }
    if (!gst_structure_has_field (s, "total-estimated-cost-cents"))
      set_cost (s, rd_json_member (from, "total_estimated_cost_cents"));
    if (!gst_structure_has_field (s, "limit"))
      rd_json_set_int64_member (s, "limit", from, "limit");
    if (!gst_structure_has_field (s, "used"))
      rd_json_set_int64_member (s, "used", from, "used");
    if (!gst_structure_has_field (s, "requested"))
      rd_json_set_int64_member (s, "requested", from, "requested");
  }

  if (details != NULL)
    rd_json_copy_scalar_members (details, s, known);
}

void
rd_results_parse_error (guint http_status, const gchar * body, gssize length,
    gchar ** reason, GstStructure ** details)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GstStructure) s = gst_structure_new_empty (DETAILS_NAME);
  g_autofree gchar *why = NULL;
  g_autofree gchar *errors_line = NULL;
  JsonObject *root = NULL;

  if (body != NULL && length != 0) {
    parser = json_parser_new ();
    if (rd_json_parser_load (parser, body, length, NULL)) {
      JsonNode *node = json_parser_get_root (parser);

      if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
        root = json_node_get_object (node);
    }
  }

  if (root != NULL) {
    const gchar *message = rd_json_string_member (root, "message");
    const gchar *error = rd_json_string_member (root, "error");
    JsonObject *errors = rd_json_object_member (root, "errors");

    /* some services nest it: "error": {"message": ...} */
    if (error == NULL)
      error =
          rd_json_string_member (rd_json_object_member (root, "error"),
          "message");
    if (errors != NULL) {
      GValue value = G_VALUE_INIT;

      g_value_init (&value, GST_TYPE_STRUCTURE);
      g_value_take_boxed (&value, read_field_errors (errors, &errors_line));
      gst_structure_take_value (s, "errors", &value);
    }
    read_details (root, s);

    if (message != NULL)
      why = printable_text (message, -1, RD_JSON_MAX_MESSAGE_CHARS, FALSE);
    else if (error != NULL)
      why = printable_text (error, -1, RD_JSON_MAX_MESSAGE_CHARS, FALSE);
    else if (errors_line != NULL)
      why = g_strdup_printf ("HTTP %u: %s", http_status, errors_line);
    if (message != NULL && error != NULL && g_strcmp0 (message, error) != 0)
      rd_json_set_text (s, "error", error);
  }

  if (why == NULL || *why == '\0') {
    g_free (why);
    why = reason_from_text (http_status, body, length);
  }

  if (reason != NULL)
    *reason = g_steal_pointer (&why);
  if (details != NULL)
    *details = g_steal_pointer (&s);
}
