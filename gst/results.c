/* Reading the Resemble API's JSON answers into RdBatchStatus and
 * GstStructures. The published answers disagree with each other (scores as
 * numbers, numeric strings or percent strings; labels in any case; metrics
 * missing while processing), so every value is read through a tolerant
 * accessor that checks the JSON type first and treats anything unexpected as
 * absent. Nothing the API adds later is an error, and nothing large (data:
 * URIs, visualisation blobs) is copied into what ends up on the bus. */
#include "results.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#define RESULT_NAME "resemble-detect-result"
#define CHILD_NAME "resemble-detect-child"
#define DETAILS_NAME "details"

/* Bounds that keep a hostile or buggy answer from producing a huge message:
 * strings, nested result trees and generic copies of unknown members. */
#define MAX_TEXT_LENGTH 2048
#define MAX_CHILD_DEPTH 4
#define MAX_CHILD_NODES 2000
#define MAX_COPIED_MEMBERS 64
#define MAX_EXCERPT_CHARS 200
#define MAX_MESSAGE_CHARS 1000
#define MAX_ID_LENGTH 128
#define MAX_STATUS_LENGTH 64
#define MAX_LABEL_LENGTH 64

static const gchar *const known_batch_statuses[] = {
  "processing", "completed", "partially_failed", "failed", NULL
};

static const gchar *const known_detect_statuses[] = {
  "processing", "completed", "failed", NULL
};

/* ---- tolerant JSON accessors ---- */

static JsonNode *
member (JsonObject * object, const gchar * name)
{
  if (object == NULL)
    return NULL;
  return json_object_get_member (object, name);
}

static JsonObject *
object_member (JsonObject * object, const gchar * name)
{
  JsonNode *node = member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;
  return json_node_get_object (node);
}

static JsonArray *
array_member (JsonObject * object, const gchar * name)
{
  JsonNode *node = member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return NULL;
  return json_node_get_array (node);
}

static const gchar *
node_string (JsonNode * node)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/* A string member with at least one character, else NULL. */
static const gchar *
string_member (JsonObject * object, const gchar * name)
{
  const gchar *str = node_string (member (object, name));

  if (str == NULL || *str == '\0')
    return NULL;
  return str;
}

/* Ids go into request paths (GET /detect/{uuid}), so only what a dashed
 * UUID or 32 hex digits (or the docs' placeholders) are made of is taken. */
static gboolean
is_id (const gchar * str)
{
  const gchar *p;

  if (str == NULL || *str == '\0')
    return FALSE;
  for (p = str; *p != '\0'; p++) {
    if (p - str >= MAX_ID_LENGTH)
      return FALSE;
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
      return FALSE;
  }
  return TRUE;
}

/* A status is a short word ("partially_failed"); anything else is not one. */
static gboolean
is_status_word (const gchar * str)
{
  const gchar *p;

  if (str == NULL || *str == '\0')
    return FALSE;
  for (p = str; *p != '\0'; p++) {
    if (p - str >= MAX_STATUS_LENGTH)
      return FALSE;
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != ' ')
      return FALSE;
  }
  return TRUE;
}

/* "0.85", " 0.85 ", "90%" (-> 0.9) and "-1"; nothing else. */
static gboolean
parse_number_string (const gchar * str, gboolean allow_percent, gdouble * value)
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

static gboolean
node_double (JsonNode * node, gdouble * value)
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
    return parse_number_string (json_node_get_string (node), TRUE, value);
  return FALSE;
}

static gboolean
double_member (JsonObject * object, const gchar * name, gdouble * value)
{
  return node_double (member (object, name), value);
}

/* An integral number, as a JSON integer, an integral double or a string. */
static gboolean
node_int64 (JsonNode * node, gint64 * value)
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
      || !parse_number_string (json_node_get_string (node), FALSE, &d))
    return FALSE;

  /* 2^63 itself is out of range, hence the strict upper comparison */
  if (!isfinite (d) || d != floor (d) || d < -9223372036854775808.0
      || d >= 9223372036854775808.0)
    return FALSE;
  *value = (gint64) d;
  return TRUE;
}

static gboolean
uint_member (JsonObject * object, const gchar * name, guint * value)
{
  gint64 v;

  if (!node_int64 (member (object, name), &v) || v < 0 || v > G_MAXUINT)
    return FALSE;
  *value = (guint) v;
  return TRUE;
}

static gboolean
node_boolean (JsonNode * node, gboolean * value)
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

static gboolean
is_data_uri (const gchar * str)
{
  while (g_ascii_isspace (*str))
    str++;
  return g_ascii_strncasecmp (str, "data:", 5) == 0;
}

static gboolean
is_http_url (const gchar * str)
{
  const gchar *p;

  if (g_ascii_strncasecmp (str, "http://", 7) != 0
      && g_ascii_strncasecmp (str, "https://", 8) != 0)
    return FALSE;
  for (p = str; *p != '\0'; p++) {
    if (p - str >= RD_RESULTS_MAX_URL_LENGTH - 1)
      return FALSE;
    if (g_ascii_iscntrl (*p) || *p == ' ')
      return FALSE;
  }
  return TRUE;
}

/* At most @max_bytes of @str, cut at a character boundary. */
static gchar *
truncate_utf8 (const gchar * str, gsize max_bytes)
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

/* A string of the API's, never a data: URI, at most MAX_TEXT_LENGTH bytes. */
static void
set_text (GstStructure * s, const gchar * field, const gchar * str)
{
  g_autofree gchar *text = NULL;

  if (str == NULL || is_data_uri (str))
    return;
  text = truncate_utf8 (str, MAX_TEXT_LENGTH);
  gst_structure_set (s, field, G_TYPE_STRING, text, NULL);
}

static void
set_text_member (GstStructure * s, const gchar * field, JsonObject * object,
    const gchar * name)
{
  set_text (s, field, string_member (object, name));
}

static void
set_url_member (GstStructure * s, const gchar * field, JsonObject * object,
    const gchar * name)
{
  const gchar *url = string_member (object, name);

  if (url != NULL && is_http_url (url))
    gst_structure_set (s, field, G_TYPE_STRING, url, NULL);
}

static void
set_double_member (GstStructure * s, const gchar * field, JsonObject * object,
    const gchar * name)
{
  gdouble value;

  if (double_member (object, name, &value))
    gst_structure_set (s, field, G_TYPE_DOUBLE, value, NULL);
}

static void
set_boolean_member (GstStructure * s, const gchar * field,
    JsonObject * object, const gchar * name)
{
  gboolean value;

  if (node_boolean (member (object, name), &value))
    gst_structure_set (s, field, G_TYPE_BOOLEAN, value, NULL);
}

static void
set_int64_member (GstStructure * s, const gchar * field, JsonObject * object,
    const gchar * name)
{
  gint64 value;

  if (node_int64 (member (object, name), &value))
    gst_structure_set (s, field, G_TYPE_INT64, value, NULL);
}

/* The API's member name as a structure field: "estimated_cost_cents" ->
 * "estimated-cost-cents", "certainty (%)" -> "certainty-percent",
 * "perFile" -> "per-file". NULL when nothing usable is left. */
static gchar *
field_name (const gchar * name)
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
static void
copy_scalar_members (JsonObject * object, GstStructure * s,
    const gchar * const *skip)
{
  JsonObjectIter iter;
  const gchar *name;
  JsonNode *node;
  guint copied = 0;

  json_object_iter_init (&iter, object);
  while (copied < MAX_COPIED_MEMBERS
      && json_object_iter_next (&iter, &name, &node)) {
    g_autofree gchar *field = NULL;
    GType type;

    if (!JSON_NODE_HOLDS_VALUE (node))
      continue;
    if (skip != NULL && g_strv_contains (skip, name))
      continue;
    field = field_name (name);
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
      set_text (s, field, json_node_get_string (node));
    } else {
      continue;
    }
    copied++;
  }
}

gchar *
rd_results_normalize_label (const gchar * label)
{
  g_autofree gchar *lower = NULL;
  GString *out;
  gboolean space = FALSE;
  const gchar *p;

  /* a verdict is a short phrase; a blob where one is expected is none */
  if (label == NULL || strlen (label) > MAX_LABEL_LENGTH
      || is_data_uri (label) || !g_utf8_validate (label, -1, NULL))
    return NULL;

  lower = g_utf8_strdown (label, -1);
  out = g_string_new (NULL);
  for (p = lower; *p != '\0'; p++) {
    if (*p == '_' || g_ascii_isspace (*p)) {
      space = out->len > 0;
      continue;
    }
    if (space)
      g_string_append_c (out, ' ');
    space = FALSE;
    g_string_append_c (out, *p);
  }

  if (out->len == 0) {
    g_string_free (out, TRUE);
    return NULL;
  }
  return g_string_free (out, FALSE);
}

/* Known statuses in lowercase; anything else as given (the caller decides
 * what an unknown status means). */
static gchar *
normalize_status (const gchar * status, const gchar * const *known)
{
  guint i;

  for (i = 0; known[i] != NULL; i++) {
    if (g_ascii_strcasecmp (status, known[i]) == 0)
      return g_strdup (known[i]);
  }
  return g_strdup (status);
}

/* A score of the API's in 0..1; anything negative means "none" (-1). */
static gdouble
score_or_none (gdouble score)
{
  return score < 0 ? -1.0 : score;
}

/* ---- the top-level document ---- */

static JsonObject *
load_item (JsonParser * parser, const gchar * body, gssize length,
    const gchar * what, GError ** error)
{
  g_autoptr (GError) json_error = NULL;
  JsonNode *root;
  JsonObject *item;

  if (body == NULL || length == 0 || (length < 0 && *body == '\0')) {
    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "The %s answer is empty, expected a JSON object with an \"item\"",
        what);
    return NULL;
  }
  if (!json_parser_load_from_data (parser, body, length, &json_error)) {
    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "The %s answer is not JSON: %s", what, json_error->message);
    return NULL;
  }

  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "The %s answer is not a JSON object", what);
    return NULL;
  }

  item = object_member (json_node_get_object (root), "item");
  if (item == NULL) {
    const gchar *message =
        string_member (json_node_get_object (root), "message");
    g_autofree gchar *excerpt = message != NULL ?
        truncate_utf8 (message, MAX_EXCERPT_CHARS) : NULL;

    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "The %s answer has no \"item\" object%s%s%s", what,
        excerpt != NULL ? " (message: " : "",
        excerpt != NULL ? excerpt : "", excerpt != NULL ? ")" : "");
    return NULL;
  }
  return item;
}

/* ---- batch status ---- */

void
rd_batch_status_free (RdBatchStatus * status)
{
  if (status == NULL)
    return;
  g_free (status->uuid);
  g_free (status->status);
  g_strfreev (status->detect_uuids);
  g_free (status->created_at);
  g_free (status);
}

/* The detect uuids are in the order of the uploaded files, so one that is
 * not an id cannot be skipped without pairing the others with the wrong
 * files: the answer is refused instead. */
static gchar **
read_detect_uuids (JsonArray * array, GError ** error)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  guint i, n = array != NULL ? json_array_get_length (array) : 0;

  for (i = 0; i < n; i++) {
    const gchar *uuid = node_string (json_array_get_element (array, i));

    if (!is_id (uuid)) {
      g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
          "The batch item's \"detect_uuids\"[%u] is not an id", i);
      return NULL;
    }
    g_strv_builder_add (builder, uuid);
  }
  return g_strv_builder_end (builder);
}

RdBatchStatus *
rd_results_parse_batch (const gchar * body, gssize length, GError ** error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (RdBatchStatus) batch = NULL;
  JsonObject *item;
  const gchar *uuid, *status;
  gchar **detect_uuids;

  item = load_item (parser, body, length, "batch", error);
  if (item == NULL)
    return NULL;

  uuid = string_member (item, "uuid");
  if (!is_id (uuid)) {
    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "The batch item has no \"uuid\" id");
    return NULL;
  }
  status = string_member (item, "status");
  if (!is_status_word (status)) {
    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "The batch item has no \"status\" word");
    return NULL;
  }
  detect_uuids = read_detect_uuids (array_member (item, "detect_uuids"), error);
  if (detect_uuids == NULL)
    return NULL;

  batch = g_new0 (RdBatchStatus, 1);
  batch->uuid = g_strdup (uuid);
  batch->status = normalize_status (status, known_batch_statuses);
  batch->detect_uuids = detect_uuids;
  if (!uint_member (item, "total_files", &batch->total_files))
    batch->total_files = g_strv_length (batch->detect_uuids);
  uint_member (item, "completed_count", &batch->completed_count);
  uint_member (item, "failed_count", &batch->failed_count);
  batch->created_at = g_strdup (string_member (item, "created_at"));

  return g_steal_pointer (&batch);
}

gboolean
rd_results_batch_status_is_terminal (const gchar * status)
{
  if (status == NULL)
    return FALSE;
  return g_ascii_strcasecmp (status, "completed") == 0
      || g_ascii_strcasecmp (status, "partially_failed") == 0
      || g_ascii_strcasecmp (status, "failed") == 0;
}

/* ---- one detect's verdict ---- */

/* Members of a child read with their types; not copied again as given. */
static const gchar *const child_members[] = {
  "type", "conclusion", "label", "score", "certainty", "certainty (%)",
  "timestamp", "children", NULL
};

/* The API's nested results (video: VideoResult -> ImageResult -> Segment;
 * image: pipeline specific) as an array of CHILD_NAME structures, bounded in
 * depth and in total size. FALSE when @node is not an array. */
static gboolean
convert_children (JsonNode * node, guint depth, guint * budget, GValue * out)
{
  JsonArray *array;
  guint i, n;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return FALSE;

  array = json_node_get_array (node);
  n = json_array_get_length (array);
  g_value_init (out, GST_TYPE_ARRAY);

  for (i = 0; i < n && *budget > 0; i++) {
    JsonNode *element = json_array_get_element (array, i);
    JsonObject *object;
    GstStructure *child;
    GValue children = G_VALUE_INIT;
    GValue value = G_VALUE_INIT;
    g_autofree gchar *label = NULL;

    if (!JSON_NODE_HOLDS_OBJECT (element))
      continue;
    object = json_node_get_object (element);
    (*budget)--;

    child = gst_structure_new_empty (CHILD_NAME);
    set_text_member (child, "type", object, "type");
    label = rd_results_normalize_label (string_member (object, "conclusion"));
    if (label == NULL)
      label = rd_results_normalize_label (string_member (object, "label"));
    if (label != NULL)
      gst_structure_set (child, "label", G_TYPE_STRING, label, NULL);
    set_double_member (child, "score", object, "score");
    set_double_member (child, "certainty", object, "certainty");
    if (!gst_structure_has_field (child, "certainty"))
      set_double_member (child, "certainty", object, "certainty (%)");
    set_double_member (child, "timestamp", object, "timestamp");
    if (depth + 1 < MAX_CHILD_DEPTH
        && convert_children (member (object, "children"), depth + 1, budget,
            &children))
      gst_structure_take_value (child, "children", &children);
    copy_scalar_members (object, child, child_members);

    g_value_init (&value, GST_TYPE_STRUCTURE);
    g_value_take_boxed (&value, child);
    gst_value_array_append_and_take_value (out, &value);
  }
  return TRUE;
}

static void
set_children_member (GstStructure * s, JsonObject * object)
{
  GValue children = G_VALUE_INIT;
  guint budget = MAX_CHILD_NODES;

  if (convert_children (member (object, "children"), 0, &budget, &children))
    gst_structure_take_value (s, "children", &children);
}

/* Chunk scores: an array of numbers or numeric strings (one number alone is
 * taken as one chunk). Elements that are not numbers are skipped. */
static gboolean
read_chunk_scores (JsonNode * node, GValue * out, gdouble * mean)
{
  gdouble sum = 0, value;
  guint count = 0;

  if (node == NULL)
    return FALSE;

  g_value_init (out, GST_TYPE_ARRAY);
  if (JSON_NODE_HOLDS_ARRAY (node)) {
    JsonArray *array = json_node_get_array (node);
    guint i, n = json_array_get_length (array);

    for (i = 0; i < n; i++) {
      if (node_double (json_array_get_element (array, i), &value)) {
        GValue v = G_VALUE_INIT;

        g_value_init (&v, G_TYPE_DOUBLE);
        g_value_set_double (&v, value);
        gst_value_array_append_and_take_value (out, &v);
        sum += value;
        count++;
      }
    }
  } else if (node_double (node, &value)) {
    GValue v = G_VALUE_INIT;

    g_value_init (&v, G_TYPE_DOUBLE);
    g_value_set_double (&v, value);
    gst_value_array_append_and_take_value (out, &v);
    sum = value;
    count = 1;
  } else {
    g_value_unset (out);
    return FALSE;
  }

  *mean = count > 0 ? sum / count : -1.0;
  return TRUE;
}

/* metrics = {label, score: [chunks], consistency, aggregated_score, image}.
 * Fields go into @s prefixed with @prefix; the verdict into @label/@score.
 * TRUE when the metrics hold a verdict (a label or a score). */
static gboolean
read_audio_metrics (JsonObject * metrics, GstStructure * s,
    const gchar * prefix, gchar ** label, gdouble * score)
{
  g_autofree gchar *consistency = g_strconcat (prefix, "consistency", NULL);
  g_autofree gchar *aggregated = g_strconcat (prefix, "aggregated-score", NULL);
  g_autofree gchar *chunks = g_strconcat (prefix, "chunk-scores", NULL);
  g_autofree gchar *image = g_strconcat (prefix, "image", NULL);
  GValue chunk_scores = G_VALUE_INIT;
  gdouble value, mean = -1.0;
  gboolean have_score = FALSE;

  if (metrics == NULL)
    return FALSE;

  *label = rd_results_normalize_label (string_member (metrics, "label"));
  set_double_member (s, consistency, metrics, "consistency");
  set_url_member (s, image, metrics, "image");

  if (read_chunk_scores (member (metrics, "score"), &chunk_scores, &mean)) {
    gst_structure_take_value (s, chunks, &chunk_scores);
    have_score = mean >= 0;
  }
  if (double_member (metrics, "aggregated_score", &value)) {
    gst_structure_set (s, aggregated, G_TYPE_DOUBLE, value, NULL);
    *score = score_or_none (value);
    have_score = TRUE;
  } else {
    *score = score_or_none (mean);
  }

  return *label != NULL || have_score;
}

/* image_metrics = {type, label, score, image, children, ifl: {score,
 * heatmap}}. */
static void
read_image_metrics (JsonObject * metrics, GstStructure * s, gchar ** label,
    gdouble * score)
{
  JsonObject *ifl;
  gdouble value;

  if (metrics == NULL)
    return;

  *label = rd_results_normalize_label (string_member (metrics, "label"));
  if (double_member (metrics, "score", &value))
    *score = score_or_none (value);
  set_text_member (s, "image-type", metrics, "type");
  set_url_member (s, "image", metrics, "image");

  ifl = object_member (metrics, "ifl");
  set_double_member (s, "ifl-score", ifl, "score");
  set_url_member (s, "heatmap", ifl, "heatmap");

  set_children_member (s, metrics);
}

/* video_metrics = {label, score, certainty, treeview, children}. The
 * treeview is visualisation data of unbounded size and is not copied. */
static void
read_video_metrics (JsonObject * metrics, GstStructure * s, gchar ** label,
    gdouble * score)
{
  gdouble value;

  if (metrics == NULL)
    return;

  *label = rd_results_normalize_label (string_member (metrics, "label"));
  if (double_member (metrics, "score", &value))
    *score = score_or_none (value);
  else if (double_member (metrics, "certainty", &value))
    *score = score_or_none (value);
  set_double_member (s, "certainty", metrics, "certainty");

  set_children_member (s, metrics);
}

static gboolean
object_is_empty (JsonObject * object)
{
  return object == NULL || json_object_get_size (object) == 0;
}

/* The item's media_type, or the one its metrics imply when it has none (or
 * one this plugin does not know). */
static gchar *
detect_media_type (JsonObject * item)
{
  const gchar *given = string_member (item, "media_type");
  const gchar *const types[] = { "audio", "video", "image" };
  guint i;

  for (i = 0; given != NULL && i < G_N_ELEMENTS (types); i++) {
    if (g_ascii_strcasecmp (given, types[i]) == 0)
      return g_strdup (types[i]);
  }
  if (!object_is_empty (object_member (item, "video_metrics")))
    return g_strdup ("video");
  if (!object_is_empty (object_member (item, "image_metrics")))
    return g_strdup ("image");
  if (!object_is_empty (object_member (item, "metrics")))
    return g_strdup ("audio");
  return NULL;
}

/* A copy of @node without data: URIs and without what is nested deeper
 * than @depth, for turning an object of unknown shape into text. */
static JsonNode *
copy_without_blobs (JsonNode * node, guint depth)
{
  if (JSON_NODE_HOLDS_OBJECT (node)) {
    JsonObject *copy = json_object_new ();
    JsonObjectIter iter;
    const gchar *name;
    JsonNode *child;

    json_object_iter_init (&iter, json_node_get_object (node));
    while (depth > 0 && json_object_iter_next (&iter, &name, &child)) {
      JsonNode *kept = copy_without_blobs (child, depth - 1);

      if (kept != NULL)
        json_object_set_member (copy, name, kept);
    }
    return json_node_init_object (json_node_alloc (), copy);
  }
  if (JSON_NODE_HOLDS_ARRAY (node)) {
    JsonArray *array = json_node_get_array (node);
    JsonArray *copy = json_array_new ();
    guint i, n = json_array_get_length (array);

    for (i = 0; depth > 0 && i < n; i++) {
      JsonNode *kept =
          copy_without_blobs (json_array_get_element (array, i), depth - 1);

      if (kept != NULL)
        json_array_add_element (copy, kept);
    }
    return json_node_init_array (json_node_alloc (), copy);
  }
  if (node_string (node) != NULL && is_data_uri (node_string (node)))
    return NULL;
  return json_node_copy (node);
}

/* intelligence.description is a string or an object; either way a bounded
 * string. */
static void
set_intelligence (GstStructure * s, JsonObject * item)
{
  JsonNode *description =
      member (object_member (item, "intelligence"), "description");
  g_autofree gchar *text = NULL;

  if (description == NULL)
    return;
  if (JSON_NODE_HOLDS_OBJECT (description)
      || JSON_NODE_HOLDS_ARRAY (description)) {
    g_autoptr (JsonNode) stripped =
        copy_without_blobs (description, MAX_CHILD_DEPTH);

    text = json_to_string (stripped, FALSE);
  } else if (node_string (description) != NULL) {
    text = g_strdup (node_string (description));
  }

  if (text != NULL && *text != '\0')
    set_text (s, "intelligence-description", text);
}

static void
set_item_fields (GstStructure * s, JsonObject * item)
{
  JsonObject *tracing;

  set_text_member (s, "error-message", item, "error_message");
  set_text_member (s, "filename", item, "filename");
  set_double_member (s, "media-duration", item, "duration");
  set_boolean_member (s, "zero-retention-mode", item, "zero_retention_mode");
  set_boolean_member (s, "media-redacted", item, "media_redacted");
  set_boolean_member (s, "media-deleted", item, "media_deleted");
  set_boolean_member (s, "emulated", item, "emulated");
  set_url_member (s, "url", item, "url");
  set_url_member (s, "audio-url", item, "audio_url");
  set_text_member (s, "created-at", item, "created_at");
  set_text_member (s, "updated-at", item, "updated_at");
  set_text_member (s, "file-deleted-at", item, "file_deleted_at");

  tracing = object_member (item, "audio_source_tracing");
  set_text_member (s, "source-tracing-label", tracing, "label");
  set_text_member (s, "source-tracing-error", tracing, "error_message");

  set_intelligence (s, item);
}

GstStructure *
rd_results_parse_detect (const gchar * body, gssize length, GError ** error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree gchar *media_type = NULL;
  g_autofree gchar *status = NULL;
  g_autofree gchar *label = NULL;
  gdouble score = -1.0;
  JsonObject *item, *metrics;
  const gchar *uuid, *given_status;
  GstStructure *s;

  item = load_item (parser, body, length, "detect", error);
  if (item == NULL)
    return NULL;

  uuid = string_member (item, "uuid");
  if (!is_id (uuid)) {
    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "The detect item has no \"uuid\" id");
    return NULL;
  }

  given_status = string_member (item, "status");
  status = is_status_word (given_status) ?
      normalize_status (given_status, known_detect_statuses) :
      g_strdup ("unknown");
  media_type = detect_media_type (item);

  s = gst_structure_new (RESULT_NAME, "detect-uuid", G_TYPE_STRING, uuid,
      "status", G_TYPE_STRING, status, NULL);
  if (media_type != NULL)
    gst_structure_set (s, "media-type", G_TYPE_STRING, media_type, NULL);

  metrics = object_member (item, "metrics");
  if (g_strcmp0 (media_type, "image") == 0) {
    read_image_metrics (object_member (item, "image_metrics"), s, &label,
        &score);
  } else if (g_strcmp0 (media_type, "video") == 0) {
    g_autofree gchar *audio_label = NULL;
    gdouble audio_score = -1.0;

    read_video_metrics (object_member (item, "video_metrics"), s, &label,
        &score);
    if (read_audio_metrics (metrics, s, "audio-", &audio_label, &audio_score)) {
      if (audio_label != NULL)
        gst_structure_set (s, "audio-label", G_TYPE_STRING, audio_label, NULL);
      gst_structure_set (s, "audio-score", G_TYPE_DOUBLE, audio_score, NULL);
    }
  } else {
    /* audio, and whatever else carries audio-style metrics */
    read_audio_metrics (metrics, s, "", &label, &score);
  }

  if (label != NULL)
    gst_structure_set (s, "label", G_TYPE_STRING, label, NULL);
  gst_structure_set (s, "score", G_TYPE_DOUBLE, score, NULL);

  set_item_fields (s, item);
  return s;
}

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
    excerpt = printable_text (body, length, MAX_EXCERPT_CHARS,
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
    g_autofree gchar *field = field_name (name);

    if (JSON_NODE_HOLDS_ARRAY (node)) {
      JsonArray *array = json_node_get_array (node);
      guint i, n = json_array_get_length (array);

      for (i = 0; i < n; i++) {
        const gchar *msg = node_string (json_array_get_element (array, i));

        if (msg == NULL || *msg == '\0')
          continue;
        if (joined->len > 0)
          g_string_append (joined, "; ");
        g_string_append (joined, msg);
      }
    } else if (node_string (node) != NULL) {
      g_string_append (joined, node_string (node));
    }

    if (field == NULL || joined->len == 0
        || gst_structure_n_fields (s) >= MAX_COPIED_MEMBERS)
      continue;
    set_text (s, field, joined->str);
    if (line->len > 0)
      g_string_append (line, "; ");
    g_string_append_printf (line, "%s: %s", name, joined->str);
  }

  *summary = line->len > 0 ? printable_text (line->str, -1,
      MAX_MESSAGE_CHARS, FALSE) : NULL;
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
    copy_scalar_members (json_node_get_object (element), estimate, NULL);
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
      && node_int64 (node, &cents))
    gst_structure_set (s, "total-estimated-cost-cents", G_TYPE_INT64, cents,
        NULL);
  else if (node_double (node, &value))
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
  JsonObject *details = object_member (root, "details");
  JsonObject *sources[] = { details, root };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (sources); i++) {
    JsonObject *from = sources[i];
    JsonArray *estimates;

    if (from == NULL)
      continue;
    estimates = array_member (from, "per_file_estimates");
    if (estimates != NULL && !gst_structure_has_field (s, "per-file-estimates")) {
      GValue value = G_VALUE_INIT;

      gst_structure_take_value (s, "per-file-estimates",
          per_file_estimates (estimates, &value));
    }
    if (!gst_structure_has_field (s, "total-estimated-cost-cents"))
      set_cost (s, member (from, "total_estimated_cost_cents"));
    if (!gst_structure_has_field (s, "limit"))
      set_int64_member (s, "limit", from, "limit");
    if (!gst_structure_has_field (s, "used"))
      set_int64_member (s, "used", from, "used");
    if (!gst_structure_has_field (s, "requested"))
      set_int64_member (s, "requested", from, "requested");
  }

  if (details != NULL)
    copy_scalar_members (details, s, known);
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
    if (json_parser_load_from_data (parser, body, length, NULL)) {
      JsonNode *node = json_parser_get_root (parser);

      if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
        root = json_node_get_object (node);
    }
  }

  if (root != NULL) {
    const gchar *message = string_member (root, "message");
    const gchar *error = string_member (root, "error");
    JsonObject *errors = object_member (root, "errors");

    /* some services nest it: "error": {"message": ...} */
    if (error == NULL)
      error = string_member (object_member (root, "error"), "message");
    if (errors != NULL) {
      GValue value = G_VALUE_INIT;

      g_value_init (&value, GST_TYPE_STRUCTURE);
      g_value_take_boxed (&value, read_field_errors (errors, &errors_line));
      gst_structure_take_value (s, "errors", &value);
    }
    read_details (root, s);

    if (message != NULL)
      why = printable_text (message, -1, MAX_MESSAGE_CHARS, FALSE);
    else if (error != NULL)
      why = printable_text (error, -1, MAX_MESSAGE_CHARS, FALSE);
    else if (errors_line != NULL)
      why = g_strdup_printf ("HTTP %u: %s", http_status, errors_line);
    if (message != NULL && error != NULL && g_strcmp0 (message, error) != 0)
      set_text (s, "error", error);
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
