/* Reading the Resemble API's JSON answers into RdBatchStatus and
 * GstStructures. The published answers disagree with each other (scores as
 * numbers, numeric strings or percent strings; labels in any case; metrics
 * missing while processing), so every value is read through a tolerant
 * accessor that checks the JSON type first and treats anything unexpected as
 * absent. Nothing the API adds later is an error, and nothing large (data:
 * URIs, visualisation blobs) is copied into what ends up on the bus. */
#include "results.h"
#include "messages.h"

#include <json-glib/json-glib.h>
#include "api-json.h"
#include <math.h>
#include <string.h>

#define CHILD_NAME "resemble-detect-child"

static const gchar *const known_batch_statuses[] = {
  "processing", "completed", "partially_failed", "failed", NULL
};

static const gchar *const known_detect_statuses[] = {
  "processing", "completed", "failed", NULL
};

gchar *
rd_results_normalize_label (const gchar * label)
{
  g_autofree gchar *lower = NULL;
  GString *out;
  gboolean space = FALSE;
  const gchar *p;

  /* a verdict is a short phrase; a blob where one is expected is none */
  if (label == NULL || strlen (label) > RD_JSON_MAX_LABEL_LENGTH
      || rd_json_is_data_uri (label) || !g_utf8_validate (label, -1, NULL))
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

  /* "_data:..." becomes a data: URI only once its "_" is dropped */
  if (out->len == 0 || rd_json_is_data_uri (out->str)) {
    g_string_free (out, TRUE);
    return NULL;
  }
  return g_string_free (out, FALSE);
}

/* ---- the top-level document ---- */

static JsonObject *
load_root (JsonParser * parser, const gchar * body, gssize length,
    const gchar * what, const gchar * expected, GError ** error)
{
  g_autoptr (GError) json_error = NULL;
  JsonNode *root;

  if (body == NULL || length == 0 || (length < 0 && *body == '\0')) {
    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "The %s answer is empty, expected a JSON object with %s", what,
        expected);
    return NULL;
  }
  if (!rd_json_parser_load (parser, body, length, &json_error)) {
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
  return json_node_get_object (root);
}

static JsonObject *
load_item (JsonParser * parser, const gchar * body, gssize length,
    const gchar * what, GError ** error)
{
  JsonObject *root, *item;

  root = load_root (parser, body, length, what, "an \"item\"", error);
  if (root == NULL)
    return NULL;
  item = rd_json_object_member (root, "item");
  if (item == NULL) {
    const gchar *message = rd_json_string_member (root, "message");
    g_autofree gchar *excerpt = message != NULL ?
        rd_json_truncate_utf8 (message, RD_JSON_MAX_EXCERPT_CHARS) : NULL;

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
    const gchar *uuid = rd_json_node_string (json_array_get_element (array, i));

    if (!rd_json_is_id (uuid)) {
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

  uuid = rd_json_string_member (item, "uuid");
  if (!rd_json_is_id (uuid)) {
    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "The batch item has no \"uuid\" id");
    return NULL;
  }
  status = rd_json_string_member (item, "status");
  if (!rd_json_is_status_word (status)) {
    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "The batch item has no \"status\" word");
    return NULL;
  }
  detect_uuids =
      read_detect_uuids (rd_json_array_member (item, "detect_uuids"), error);
  if (detect_uuids == NULL)
    return NULL;

  batch = g_new0 (RdBatchStatus, 1);
  batch->uuid = g_strdup (uuid);
  batch->status = rd_json_normalize_status (status, known_batch_statuses);
  batch->detect_uuids = detect_uuids;
  if (!rd_json_uint_member (item, "total_files", &batch->total_files))
    batch->total_files = g_strv_length (batch->detect_uuids);
  rd_json_uint_member (item, "completed_count", &batch->completed_count);
  rd_json_uint_member (item, "failed_count", &batch->failed_count);
  batch->created_at = g_strdup (rd_json_string_member (item, "created_at"));

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

/* ---- the list of detects ---- */

void
rd_detect_list_free (RdDetectList * list)
{
  guint i;

  if (list == NULL)
    return;
  for (i = 0; i < list->n_items; i++) {
    g_free (list->items[i].uuid);
    g_free (list->items[i].filename);
    g_free (list->items[i].status);
  }
  g_free (list->items);
  g_free (list);
}

/* ISO 8601 with or without a zone (UTC when none) -> microseconds since the
 * epoch, or G_MININT64. */
static gint64
parse_timestamp (const gchar * str)
{
  g_autoptr (GTimeZone) utc = g_time_zone_new_utc ();
  g_autoptr (GDateTime) time = NULL;

  if (str == NULL)
    return G_MININT64;
  time = g_date_time_new_from_iso8601 (str, utc);
  if (time == NULL)
    return G_MININT64;
  return g_date_time_to_unix (time) * G_USEC_PER_SEC +
      g_date_time_get_microsecond (time);
}

RdDetectList *
rd_results_parse_detect_list (const gchar * body, gssize length,
    GError ** error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (RdDetectList) list = NULL;
  JsonObject *root;
  JsonArray *items;
  guint i, n;

  root = load_root (parser, body, length, "list", "\"items\"", error);
  if (root == NULL)
    return NULL;
  items = rd_json_array_member (root, "items");
  if (items == NULL) {
    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "The list answer has no \"items\" array");
    return NULL;
  }

  list = g_new0 (RdDetectList, 1);
  rd_json_uint_member (root, "page", &list->page);
  rd_json_uint_member (root, "num_pages", &list->num_pages);
  rd_json_uint_member (root, "total_count", &list->total_count);
  n = json_array_get_length (items);
  list->items = g_new0 (RdDetectListItem, MAX (n, 1));
  for (i = 0; i < n; i++) {
    JsonNode *node = json_array_get_element (items, i);
    JsonObject *object = JSON_NODE_HOLDS_OBJECT (node) ?
        json_node_get_object (node) : NULL;
    const gchar *uuid = rd_json_string_member (object, "uuid");
    const gchar *status = rd_json_string_member (object, "status");
    RdDetectListItem *item = &list->items[list->n_items];

    /* an item without an id cannot be followed: as if it were not there
     * (counted, for rd_results_detect_list_is_whole()) */
    if (!rd_json_is_id (uuid)) {
      list->n_unreadable++;
      continue;
    }
    item->uuid = g_strdup (uuid);
    item->filename = g_strdup (rd_json_string_member (object, "filename"));
    item->created_us =
        parse_timestamp (rd_json_string_member (object, "created_at"));
    item->status = status ? g_ascii_strdown (status, -1) : NULL;
    list->n_items++;
  }
  return g_steal_pointer (&list);
}

gboolean
rd_results_detect_list_is_whole (const RdDetectList * list, GError ** error)
{
  if (list->n_unreadable == 0)
    return TRUE;
  g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
      "The list answer has %u of its %u items without a \"uuid\" id, so it "
      "cannot show which detects exist", list->n_unreadable,
      list->n_items + list->n_unreadable);
  return FALSE;
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
    rd_json_set_text_member (child, "type", object, "type");
    label =
        rd_results_normalize_label (rd_json_string_member (object,
            "conclusion"));
    if (label == NULL)
      label =
          rd_results_normalize_label (rd_json_string_member (object, "label"));
    if (label != NULL)
      gst_structure_set (child, "label", G_TYPE_STRING, label, NULL);
    rd_json_set_double_member (child, "score", object, "score");
    rd_json_set_double_member (child, "certainty", object, "certainty");
    if (!gst_structure_has_field (child, "certainty"))
      rd_json_set_double_member (child, "certainty", object, "certainty (%)");
    rd_json_set_double_member (child, "timestamp", object, "timestamp");
    if (depth + 1 < RD_JSON_MAX_CHILD_DEPTH
        && convert_children (rd_json_member (object, "children"), depth + 1,
            budget, &children))
      gst_structure_take_value (child, "children", &children);
    rd_json_copy_scalar_members (object, child, child_members);

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
  guint budget = RD_JSON_MAX_CHILD_NODES;

  if (convert_children (rd_json_member (object, "children"), 0, &budget,
          &children))
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
      if (rd_json_node_double (json_array_get_element (array, i), &value)) {
        GValue v = G_VALUE_INIT;

        g_value_init (&v, G_TYPE_DOUBLE);
        g_value_set_double (&v, value);
        gst_value_array_append_and_take_value (out, &v);
        sum += value;
        count++;
      }
    }
  } else if (rd_json_node_double (node, &value)) {
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

  /* chunks near G_MAXDOUBLE add up to infinity: no usable mean */
  *mean = count > 0 && isfinite (sum) ? sum / count : -1.0;
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

  *label =
      rd_results_normalize_label (rd_json_string_member (metrics, "label"));
  rd_json_set_double_member (s, consistency, metrics, "consistency");
  rd_json_set_url_member (s, image, metrics, "image");

  if (read_chunk_scores (rd_json_member (metrics, "score"), &chunk_scores,
          &mean)) {
    gst_structure_take_value (s, chunks, &chunk_scores);
    have_score = mean >= 0;
  }
  if (rd_json_double_member (metrics, "aggregated_score", &value)) {
    gst_structure_set (s, aggregated, G_TYPE_DOUBLE, value, NULL);
    *score = rd_json_score_or_none (value);
    have_score = TRUE;
  } else {
    *score = rd_json_score_or_none (mean);
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

  *label =
      rd_results_normalize_label (rd_json_string_member (metrics, "label"));
  if (rd_json_double_member (metrics, "score", &value))
    *score = rd_json_score_or_none (value);
  rd_json_set_text_member (s, "image-type", metrics, "type");
  rd_json_set_url_member (s, "image", metrics, "image");

  ifl = rd_json_object_member (metrics, "ifl");
  rd_json_set_double_member (s, "ifl-score", ifl, "score");
  rd_json_set_url_member (s, "heatmap", ifl, "heatmap");

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

  *label =
      rd_results_normalize_label (rd_json_string_member (metrics, "label"));
  if (rd_json_double_member (metrics, "score", &value))
    *score = rd_json_score_or_none (value);
  else if (rd_json_double_member (metrics, "certainty", &value))
    *score = rd_json_score_or_none (value);
  rd_json_set_double_member (s, "certainty", metrics, "certainty");

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
  const gchar *given = rd_json_string_member (item, "media_type");
  const gchar *const types[] = { "audio", "video", "image" };
  guint i;

  for (i = 0; given != NULL && i < G_N_ELEMENTS (types); i++) {
    if (g_ascii_strcasecmp (given, types[i]) == 0)
      return g_strdup (types[i]);
  }
  if (!object_is_empty (rd_json_object_member (item, "video_metrics")))
    return g_strdup ("video");
  if (!object_is_empty (rd_json_object_member (item, "image_metrics")))
    return g_strdup ("image");
  if (!object_is_empty (rd_json_object_member (item, "metrics")))
    return g_strdup ("audio");
  return NULL;
}

/* A copy of @node without data: URIs and without what is nested deeper
 * than @depth, for turning an object of unknown shape into text. The new
 * node takes its own reference on the copied object or array. */
static JsonNode *
copy_without_blobs (JsonNode * node, guint depth)
{
  if (JSON_NODE_HOLDS_OBJECT (node)) {
    g_autoptr (JsonObject) copy = json_object_new ();
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
    g_autoptr (JsonArray) copy = json_array_new ();
    guint i, n = json_array_get_length (array);

    for (i = 0; depth > 0 && i < n; i++) {
      JsonNode *kept =
          copy_without_blobs (json_array_get_element (array, i), depth - 1);

      if (kept != NULL)
        json_array_add_element (copy, kept);
    }
    return json_node_init_array (json_node_alloc (), copy);
  }
  if (rd_json_node_string (node) != NULL
      && rd_json_is_data_uri (rd_json_node_string (node)))
    return NULL;
  return json_node_copy (node);
}

/* intelligence.description is a string or an object; either way a bounded
 * string. */
static void
set_intelligence (GstStructure * s, JsonObject * item)
{
  JsonNode *description =
      rd_json_member (rd_json_object_member (item, "intelligence"),
      "description");
  g_autofree gchar *text = NULL;

  if (description == NULL)
    return;
  if (JSON_NODE_HOLDS_OBJECT (description)
      || JSON_NODE_HOLDS_ARRAY (description)) {
    g_autoptr (JsonNode) stripped =
        copy_without_blobs (description, RD_JSON_MAX_CHILD_DEPTH);

    text = json_to_string (stripped, FALSE);
  } else if (rd_json_node_string (description) != NULL) {
    text = g_strdup (rd_json_node_string (description));
  }

  if (text != NULL && *text != '\0')
    rd_json_set_text (s, "intelligence-description", text);
}

static void
set_item_fields (GstStructure * s, JsonObject * item)
{
  JsonObject *tracing;

  rd_json_set_text_member (s, "error-message", item, "error_message");
  rd_json_set_text_member (s, "filename", item, "filename");
  rd_json_set_double_member (s, "media-duration", item, "duration");
  rd_json_set_boolean_member (s, "zero-retention-mode", item,
      "zero_retention_mode");
  rd_json_set_boolean_member (s, "media-redacted", item, "media_redacted");
  rd_json_set_boolean_member (s, "media-deleted", item, "media_deleted");
  rd_json_set_boolean_member (s, "emulated", item, "emulated");
  rd_json_set_url_member (s, "url", item, "url");
  rd_json_set_url_member (s, "audio-url", item, "audio_url");
  rd_json_set_text_member (s, "created-at", item, "created_at");
  rd_json_set_text_member (s, "updated-at", item, "updated_at");
  rd_json_set_text_member (s, "file-deleted-at", item, "file_deleted_at");

  tracing = rd_json_object_member (item, "audio_source_tracing");
  rd_json_set_text_member (s, "source-tracing-label", tracing, "label");
  rd_json_set_text_member (s, "source-tracing-error", tracing, "error_message");

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

  uuid = rd_json_string_member (item, "uuid");
  if (!rd_json_is_id (uuid)) {
    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "The detect item has no \"uuid\" id");
    return NULL;
  }

  given_status = rd_json_string_member (item, "status");
  status = rd_json_is_status_word (given_status) ?
      rd_json_normalize_status (given_status, known_detect_statuses) :
      g_strdup ("unknown");
  media_type = detect_media_type (item);

  s = gst_structure_new (RD_MESSAGE_RESULT, "detect-uuid", G_TYPE_STRING, uuid,
      "status", G_TYPE_STRING, status, NULL);
  if (media_type != NULL)
    gst_structure_set (s, "media-type", G_TYPE_STRING, media_type, NULL);

  metrics = rd_json_object_member (item, "metrics");
  if (g_strcmp0 (media_type, "image") == 0) {
    read_image_metrics (rd_json_object_member (item, "image_metrics"), s,
        &label, &score);
  } else if (g_strcmp0 (media_type, "video") == 0) {
    g_autofree gchar *audio_label = NULL;
    gdouble audio_score = -1.0;

    read_video_metrics (rd_json_object_member (item, "video_metrics"), s,
        &label, &score);
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
