/* Tolerant readers of the API's JSON (see api-json.h). The published
 * answers disagree with each other (scores as numbers, numeric strings or
 * percent strings; labels in any case; metrics missing while processing):
 * what is unexpected is absent, never an error. */
#include "api-json.h"

#include <math.h>
#include <string.h>

/* ---- tolerant JSON accessors ---- */

JsonNode *
rd_json_member (JsonObject * object, const gchar * name)
{
  if (object == NULL)
    return NULL;
  return json_object_get_member (object, name);
}

JsonObject *
rd_json_object_member (JsonObject * object, const gchar * name)
{
  JsonNode *node = rd_json_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;
  return json_node_get_object (node);
}

JsonArray *
rd_json_array_member (JsonObject * object, const gchar * name)
{
  JsonNode *node = rd_json_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return NULL;
  return json_node_get_array (node);
}

const gchar *
rd_json_node_string (JsonNode * node)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/* A string member with at least one character, else NULL. */
const gchar *
rd_json_string_member (JsonObject * object, const gchar * name)
{
  const gchar *str = rd_json_node_string (rd_json_member (object, name));

  if (str == NULL || *str == '\0')
    return NULL;
  return str;
}

/* Ids go into request paths (GET /detect/{uuid}), so only what a dashed
 * UUID or 32 hex digits (or the docs' placeholders) are made of is taken. */
gboolean
rd_json_is_id (const gchar * str)
{
  const gchar *p;

  if (str == NULL || *str == '\0')
    return FALSE;
  for (p = str; *p != '\0'; p++) {
    if (p - str >= RD_JSON_MAX_ID_LENGTH)
      return FALSE;
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
      return FALSE;
  }
  return TRUE;
}

/* A status is a short word ("partially_failed"); anything else is not one. */
gboolean
rd_json_is_status_word (const gchar * str)
{
  const gchar *p;

  if (str == NULL || *str == '\0')
    return FALSE;
  for (p = str; *p != '\0'; p++) {
    if (p - str >= RD_JSON_MAX_STATUS_LENGTH)
      return FALSE;
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != ' ')
      return FALSE;
  }
  return TRUE;
}

/* "0.85", " 0.85 ", "90%" (-> 0.9) and "-1"; nothing else. */
gboolean
rd_json_parse_number_string (const gchar * str, gboolean allow_percent,
    gdouble * value)
{
  g_autofree gchar *copy = g_strstrip (g_strdup (str));
  gsize len = strlen (copy);
  gboolean percent = FALSE;
  gchar *end = NULL;
  gdouble parsed;

  if (allow_percent && len > 0 && copy[len - 1] == '%') {
    percent = TRUE;
    copy[len - 1] = '\0';
    g_strchomp (copy);
  }
  if (*copy == '\0')
    return FALSE;

  parsed = g_ascii_strtod (copy, &end);
  if (end == copy || *end != '\0' || !isfinite (parsed))
    return FALSE;

  *value = percent ? parsed / 100.0 : parsed;
  return TRUE;
}

gboolean
rd_json_node_double (JsonNode * node, gdouble * value)
{
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;

  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64) {
    *value = (gdouble) json_node_get_int (node);
    return TRUE;
  }
  if (type == G_TYPE_DOUBLE) {
    gdouble d = json_node_get_double (node);

    if (!isfinite (d))
      return FALSE;
    *value = d;
    return TRUE;
  }
  if (type == G_TYPE_STRING)
    return rd_json_parse_number_string (json_node_get_string (node), TRUE,
        value);
  return FALSE;
}

gboolean
rd_json_double_member (JsonObject * object, const gchar * name, gdouble * value)
{
  return rd_json_node_double (rd_json_member (object, name), value);
}

/* An integral number, as a JSON integer, an integral double or a string. */
gboolean
rd_json_node_int64 (JsonNode * node, gint64 * value)
{
  GType type;
  gdouble d;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;

  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64) {
    *value = json_node_get_int (node);
    return TRUE;
  }
  if (type == G_TYPE_DOUBLE)
    d = json_node_get_double (node);
  else if (type != G_TYPE_STRING
      || !rd_json_parse_number_string (json_node_get_string (node), FALSE, &d))
    return FALSE;

  /* 2^63 itself is out of range, hence the strict upper comparison */
  if (!isfinite (d) || d != floor (d) || d < -9223372036854775808.0
      || d >= 9223372036854775808.0)
    return FALSE;
  *value = (gint64) d;
  return TRUE;
}

gboolean
rd_json_uint_member (JsonObject * object, const gchar * name, guint * value)
{
  gint64 v;

  if (!rd_json_node_int64 (rd_json_member (object, name), &v) || v < 0
      || v > G_MAXUINT)
    return FALSE;
  *value = (guint) v;
  return TRUE;
}

gboolean
rd_json_node_boolean (JsonNode * node, gboolean * value)
{
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;

  type = json_node_get_value_type (node);
  if (type == G_TYPE_BOOLEAN) {
    *value = json_node_get_boolean (node);
    return TRUE;
  }
  if (type == G_TYPE_INT64) {
    *value = json_node_get_int (node) != 0;
    return TRUE;
  }
  if (type == G_TYPE_STRING) {
    const gchar *str = json_node_get_string (node);

    if (g_ascii_strcasecmp (str, "true") == 0 || g_strcmp0 (str, "1") == 0) {
      *value = TRUE;
      return TRUE;
    }
    if (g_ascii_strcasecmp (str, "false") == 0 || g_strcmp0 (str, "0") == 0) {
      *value = FALSE;
      return TRUE;
    }
  }
  return FALSE;
}

/* ---- values that go into structures ---- */

gboolean
rd_json_is_data_uri (const gchar * str)
{
  while (g_ascii_isspace (*str))
    str++;
  return g_ascii_strncasecmp (str, "data:", 5) == 0;
}

gboolean
rd_json_is_http_url (const gchar * str)
{
  const gchar *p;

  if (g_ascii_strncasecmp (str, "http://", 7) != 0
      && g_ascii_strncasecmp (str, "https://", 8) != 0)
    return FALSE;
  for (p = str; *p != '\0'; p++) {
    if (p - str >= RD_JSON_MAX_URL_LENGTH - 1)
      return FALSE;
    if (g_ascii_iscntrl (*p) || *p == ' ')
      return FALSE;
  }
  return TRUE;
}

/* At most @max_bytes of @str, cut at a character boundary. */
gchar *
rd_json_truncate_utf8 (const gchar * str, gsize max_bytes)
{
  gsize len = strlen (str);
  const gchar *end;

  if (len <= max_bytes)
    return g_strdup (str);
  end = str + max_bytes;
  while (end > str && (*end & 0xC0) == 0x80)
    end--;
  return g_strndup (str, end - str);
}

/* A string of the API's, never a data: URI, at most RD_JSON_MAX_TEXT_LENGTH bytes. */
void
rd_json_set_text (GstStructure * s, const gchar * field, const gchar * str)
{
  g_autofree gchar *text = NULL;

  if (str == NULL || rd_json_is_data_uri (str))
    return;
  text = rd_json_truncate_utf8 (str, RD_JSON_MAX_TEXT_LENGTH);
  gst_structure_set (s, field, G_TYPE_STRING, text, NULL);
}

void
rd_json_set_text_member (GstStructure * s, const gchar * field,
    JsonObject * object, const gchar * name)
{
  rd_json_set_text (s, field, rd_json_string_member (object, name));
}

void
rd_json_set_url_member (GstStructure * s, const gchar * field,
    JsonObject * object, const gchar * name)
{
  const gchar *url = rd_json_string_member (object, name);

  if (url != NULL && rd_json_is_http_url (url))
    gst_structure_set (s, field, G_TYPE_STRING, url, NULL);
}

void
rd_json_set_double_member (GstStructure * s, const gchar * field,
    JsonObject * object, const gchar * name)
{
  gdouble value;

  if (rd_json_double_member (object, name, &value))
    gst_structure_set (s, field, G_TYPE_DOUBLE, value, NULL);
}

void
rd_json_set_boolean_member (GstStructure * s, const gchar * field,
    JsonObject * object, const gchar * name)
{
  gboolean value;

  if (rd_json_node_boolean (rd_json_member (object, name), &value))
    gst_structure_set (s, field, G_TYPE_BOOLEAN, value, NULL);
}

void
rd_json_set_int64_member (GstStructure * s, const gchar * field,
    JsonObject * object, const gchar * name)
{
  gint64 value;

  if (rd_json_node_int64 (rd_json_member (object, name), &value))
    gst_structure_set (s, field, G_TYPE_INT64, value, NULL);
}

/* The API's member name as a structure field: "estimated_cost_cents" ->
 * "estimated-cost-cents", "certainty (%)" -> "certainty-percent",
 * "perFile" -> "per-file". NULL when nothing usable is left. */
gchar *
rd_json_field_name (const gchar * name)
{
  GString *out = g_string_new (NULL);
  gboolean dash = FALSE;
  gboolean after_lower = FALSE;
  const gchar *p;

  for (p = name; *p != '\0'; p++) {
    gchar c = *p;

    if (g_ascii_isalnum (c)) {
      if ((dash || (after_lower && g_ascii_isupper (c))) && out->len > 0)
        g_string_append_c (out, '-');
      dash = FALSE;
      after_lower = g_ascii_islower (c) || g_ascii_isdigit (c);
      g_string_append_c (out, g_ascii_tolower (c));
    } else if (c == '%') {
      if (out->len > 0)
        g_string_append_c (out, '-');
      g_string_append (out, "percent");
      dash = FALSE;
      after_lower = TRUE;
    } else {
      dash = TRUE;
      after_lower = FALSE;
    }
  }

  if (out->len == 0 || !g_ascii_isalpha (out->str[0])) {
    g_string_free (out, TRUE);
    return NULL;
  }
  return g_string_free (out, FALSE);
}

/* Copies the scalar members of @object that @s does not have yet (and that
 * are not in @skip), with dashed names. Nested objects and arrays are left
 * out: their meaning is unknown here and their size unbounded. */
void
rd_json_copy_scalar_members (JsonObject * object, GstStructure * s,
    const gchar * const *skip)
{
  JsonObjectIter iter;
  const gchar *name;
  JsonNode *node;
  guint copied = 0;

  json_object_iter_init (&iter, object);
  while (copied < RD_JSON_MAX_COPIED_MEMBERS
      && json_object_iter_next (&iter, &name, &node)) {
    g_autofree gchar *field = NULL;
    GType type;

    if (!JSON_NODE_HOLDS_VALUE (node))
      continue;
    if (skip != NULL && g_strv_contains (skip, name))
      continue;
    field = rd_json_field_name (name);
    if (field == NULL || gst_structure_has_field (s, field))
      continue;

    type = json_node_get_value_type (node);
    if (type == G_TYPE_INT64) {
      gst_structure_set (s, field, G_TYPE_INT64, json_node_get_int (node),
          NULL);
    } else if (type == G_TYPE_DOUBLE) {
      gdouble d = json_node_get_double (node);

      if (!isfinite (d))
        continue;
      gst_structure_set (s, field, G_TYPE_DOUBLE, d, NULL);
    } else if (type == G_TYPE_BOOLEAN) {
      gst_structure_set (s, field, G_TYPE_BOOLEAN,
          json_node_get_boolean (node), NULL);
    } else if (type == G_TYPE_STRING) {
      rd_json_set_text (s, field, json_node_get_string (node));
    } else {
      continue;
    }
    copied++;
  }
}


/* Known statuses in lowercase; anything else as given (the caller decides
 * what an unknown status means). */
gchar *
rd_json_normalize_status (const gchar * status, const gchar * const *known)
{
  guint i;

  for (i = 0; known[i] != NULL; i++) {
    if (g_ascii_strcasecmp (status, known[i]) == 0)
      return g_strdup (known[i]);
  }
  return g_strdup (status);
}

/* A score of the API's in 0..1; anything negative means "none" (-1). */
gdouble
rd_json_score_or_none (gdouble score)
{
  return score < 0 ? -1.0 : score;
}
