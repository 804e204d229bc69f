/* Tolerant readers of the API's JSON (see api-json.h). The published
 * answers disagree with each other (scores as numbers, numeric strings or
 * percent strings; labels in any case; metrics missing while processing):
 * what is unexpected is absent, never an error. */
#include "api-json.h"

#include <math.h>
#include <string.h>

/* ---- documents ---- */

static const gchar *
skip_white_space (const gchar * p, const gchar * end)
{
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

/* Four hex digits at @p (before @end) into @value. */
static gboolean
read_hex4 (const gchar * p, const gchar * end, gunichar * value)
{
  guint i;

  *value = 0;
  if (end - p < 4)
    return FALSE;
  for (i = 0; i < 4; i++) {
    if (!g_ascii_isxdigit (p[i]))
      return FALSE;
    *value = (*value << 4) | g_ascii_xdigit_value (p[i]);
  }
  return TRUE;
}

/* Past the string whose opening quote is at @p, or NULL. A \u escape of a
 * UTF-16 surrogate must be one half of a pair, the high one first. */
static const gchar *
scan_string (const gchar * p, const gchar * end)
{
  gunichar unit, low;

  for (p++; p < end; p++) {
    if (*p == '"')
      return p + 1;
    if ((guchar) * p < 0x20)
      return NULL;
    if (*p != '\\')
      continue;
    if (++p == end)
      return NULL;
    if (*p != 'u') {
      if (*p == '\0' || strchr ("\"\\/bfnrt", *p) == NULL)
        return NULL;
      continue;
    }
    if (!read_hex4 (p + 1, end, &unit) || (unit >= 0xdc00 && unit <= 0xdfff))
      return NULL;
    p += 4;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      if (end - p < 3 || p[1] != '\\' || p[2] != 'u'
          || !read_hex4 (p + 3, end, &low) || low < 0xdc00 || low > 0xdfff)
        return NULL;
      p += 6;
    }
  }
  return NULL;
}

static const gchar *
scan_digits (const gchar * p, const gchar * end)
{
  if (p == end || !g_ascii_isdigit (*p))
    return NULL;
  while (p < end && g_ascii_isdigit (*p))
    p++;
  return p;
}

static const gchar *
scan_number (const gchar * p, const gchar * end)
{
  if (*p == '-')
    p++;
  if (p < end && *p == '0')
    p++;
  else if ((p = scan_digits (p, end)) == NULL)
    return NULL;
  if (p < end && *p == '.' && (p = scan_digits (p + 1, end)) == NULL)
    return NULL;
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      p++;
    p = scan_digits (p, end);
  }
  return p;
}

/* Past the string, number, true, false or null at @p, or NULL. */
static const gchar *
scan_scalar (const gchar * p, const gchar * end)
{
  const gchar *const words[] = { "true", "false", "null" };
  guint i;

  if (*p == '"')
    return scan_string (p, end);
  if (*p == '-' || g_ascii_isdigit (*p))
    return scan_number (p, end);
  for (i = 0; i < G_N_ELEMENTS (words); i++) {
    gsize n = strlen (words[i]);

    if ((gsize) (end - p) >= n && memcmp (p, words[i], n) == 0)
      return p + n;
  }
  return NULL;
}

static gboolean
check_plain_json (const gchar * data, gsize length, GError ** error)
{
  enum
  {
    VALUE, VALUE_OR_CLOSE, KEY, KEY_OR_CLOSE, COLON, COMMA_OR_CLOSE, END
  } want = VALUE;
  const gchar *p = data, *end = data + length, *at;
  gboolean in_object[RD_JSON_MAX_DEPTH];
  guint depth = 0;

  /* json-glib skips a UTF-8 byte order mark */
  if (length >= 3 && memcmp (p, "\xef\xbb\xbf", 3) == 0)
    p += 3;
  if (skip_white_space (p, end) == end)
    return TRUE;

  while ((p = skip_white_space (p, end)) < end) {
    gchar close = depth > 0 && in_object[depth - 1] ? '}' : ']';

    at = p;
    if ((want == VALUE_OR_CLOSE && *p == ']')
        || (want == KEY_OR_CLOSE && *p == '}')
        || (want == COMMA_OR_CLOSE && *p == close)) {
      p++;
      depth--;
      want = depth > 0 ? COMMA_OR_CLOSE : END;
    } else if (want == COMMA_OR_CLOSE && *p == ',') {
      p++;
      want = in_object[depth - 1] ? KEY : VALUE;
    } else if ((want == KEY || want == KEY_OR_CLOSE) && *p == '"') {
      p = scan_string (p, end);
      want = COLON;
    } else if (want == COLON && *p == ':') {
      p++;
      want = VALUE;
    } else if ((want == VALUE || want == VALUE_OR_CLOSE)
        && (*p == '{' || *p == '[')) {
      if (depth == RD_JSON_MAX_DEPTH) {
        g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
            "nested deeper than %d levels", RD_JSON_MAX_DEPTH);
        return FALSE;
      }
      in_object[depth++] = *p == '{';
      want = *p == '{' ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
      p++;
    } else if (want == VALUE || want == VALUE_OR_CLOSE) {
      p = scan_scalar (p, end);
      want = depth > 0 ? COMMA_OR_CLOSE : END;
    } else {
      p = NULL;
    }
    if (p == NULL) {
      g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
          "not one value in plain JSON (at byte %" G_GSIZE_FORMAT ")",
          (gsize) (at - data));
      return FALSE;
    }
  }
  if (want != END) {
    g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
        "the document ends within its value");
    return FALSE;
  }
  return TRUE;
}

gboolean
rd_json_parser_load (JsonParser * parser, const gchar * data, gssize length,
    GError ** error)
{
  if (!check_plain_json (data, length < 0 ? strlen (data) : (gsize) length,
          error))
    return FALSE;
  return json_parser_load_from_data (parser, data, length, error);
}

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
