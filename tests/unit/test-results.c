/* Unit tests of the API answer readers (gst/results.c): the documented
 * examples, the API's published inconsistencies, error answers, and that no
 * malformed or mistyped document can crash them. */
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "results.h"
#include "api-json.h"

#define EPSILON 1e-9

/* The audio example of detect-results.md, verbatim. */
static const gchar audio_example[] =
    "{\"success\": true, \"item\": {\"uuid\": \"DETECTION_UUID\", "
    "\"media_type\": \"audio\", \"status\": \"completed\",\n"
    " \"metrics\": {\"label\": \"fake\", \"score\": [\"0.9\", \"0.8\", \"0.7\"], "
    "\"consistency\": \"0.85\", \"aggregated_score\": \"0.566\"},\n"
    " \"filename\": \"suspicious.wav\", \"duration\": 8.2, "
    "\"zero_retention_mode\": false,\n"
    " \"created_at\": \"2024-01-15T10:30:00Z\", "
    "\"updated_at\": \"2024-01-15T10:30:05Z\"}}";

/* A video item using every part of the schema, for the mutation tests. */
static const gchar video_example[] =
    "{\"success\": true, \"item\": {\"uuid\": \"0a1b2c3d-4e5f-6789-abcd-ef0123456789\", "
    "\"media_type\": \"video\", \"status\": \"completed\", "
    "\"metrics\": {\"label\": \"Real\", \"score\": [\"0.1\", \"0.2\"], "
    "\"consistency\": \"0.9\", \"aggregated_score\": \"0.15\", "
    "\"image\": \"https://storage.example.com/audio-heatmap.png\"}, "
    "\"image_metrics\": null, "
    "\"video_metrics\": {\"label\": \"Fake\", \"score\": 0.9, \"certainty\": 0.95, "
    "\"treeview\": \"(a very long tree)\", \"children\": [{\"type\": \"VideoResult\", "
    "\"conclusion\": \"Fake\", \"score\": 0.99, \"certainty\": 0.9, "
    "\"certainty (%)\": \"90%\", \"children\": [{\"type\": \"ImageResult\", "
    "\"conclusion\": \"Real\", \"score\": \"0.1\", \"certainty\": 0.95, "
    "\"certainty (%)\": \"95%\", \"timestamp\": 0.23, \"children\": [{\"type\": "
    "\"Segment\", \"conclusion\": \"Real\", \"score\": 0.05}]}]}]}, "
    "\"audio_source_tracing\": {\"label\": \"elevenlabs\", \"error_message\": null}, "
    "\"intelligence\": {\"description\": {\"summary\": \"talking head\"}, "
    "\"created_at\": \"2024-01-15T10:30:04Z\"}, "
    "\"url\": \"https://storage.example.com/clip.mp4\", "
    "\"audio_url\": \"https://storage.example.com/clip.mp4\", "
    "\"filename\": \"clip.mp4\", \"duration\": \"10.0\", "
    "\"zero_retention_mode\": false, \"media_redacted\": false, "
    "\"media_deleted\": false, \"file_deleted_at\": null, \"visualize\": true, "
    "\"extra_params\": {\"frame_length\": 2}, \"emulated\": true, "
    "\"created_at\": \"2024-01-15T10:30:00Z\", "
    "\"updated_at\": \"2024-01-15T10:30:05Z\"}}";

/* The 202 answer of POST /detect/batch in batch-detect.txt. */
static const gchar batch_accepted_example[] =
    "{\"success\": true, \"item\": {\"uuid\": \"BATCH_UUID\", "
    "\"status\": \"processing\", \"total_files\": 3, \"completed_count\": 0, "
    "\"failed_count\": 0, \"created_at\": \"2024-01-15T10:30:00Z\", "
    "\"detect_uuids\": [\"DETECT_UUID_1\", \"DETECT_UUID_2\", "
    "\"DETECT_UUID_3\"]}}";

/* GET /detect/batch/{uuid} (and the callback payload) in batch-detect.txt. */
static const gchar batch_completed_example[] =
    "{\"success\": true, \"item\": {\"uuid\": \"BATCH_UUID\", "
    "\"status\": \"completed\", \"total_files\": 3, \"completed_count\": 3, "
    "\"failed_count\": 0, \"created_at\": \"2024-01-15T10:30:00Z\", "
    "\"detect_uuids\": [\"DETECT_UUID_1\", \"DETECT_UUID_2\", "
    "\"DETECT_UUID_3\"]}}";

static GstStructure *
parse_detect_ok (const gchar * json)
{
  g_autoptr (GError) error = NULL;
  GstStructure *s = rd_results_parse_detect (json, -1, &error);

  g_assert_no_error (error);
  g_assert_nonnull (s);
  g_assert_true (gst_structure_has_name (s, "resemble-detect-result"));
  return s;
}

static void
assert_string_field (const GstStructure * s, const gchar * field,
    const gchar * expected)
{
  const gchar *value = gst_structure_get_string (s, field);

  g_assert_nonnull (value);
  g_assert_cmpstr (value, ==, expected);
}

static void
assert_double_field (const GstStructure * s, const gchar * field,
    gdouble expected)
{
  gdouble value;

  g_assert_true (gst_structure_get_double (s, field, &value));
  g_assert_cmpfloat_with_epsilon (value, expected, EPSILON);
}

static void
assert_boolean_field (const GstStructure * s, const gchar * field,
    gboolean expected)
{
  gboolean value;

  g_assert_true (gst_structure_get_boolean (s, field, &value));
  g_assert_cmpint (value, ==, expected);
}

static void
assert_int64_field (const GstStructure * s, const gchar * field,
    gint64 expected)
{
  gint64 value;

  g_assert_true (gst_structure_get_int64 (s, field, &value));
  g_assert_cmpint (value, ==, expected);
}

static void
assert_double_array (const GstStructure * s, const gchar * field,
    const gdouble * expected, guint n)
{
  const GValue *array = gst_structure_get_value (s, field);
  guint i;

  g_assert_nonnull (array);
  g_assert_true (GST_VALUE_HOLDS_ARRAY (array));
  g_assert_cmpuint (gst_value_array_get_size (array), ==, n);
  for (i = 0; i < n; i++) {
    const GValue *v = gst_value_array_get_value (array, i);

    g_assert_true (G_VALUE_HOLDS_DOUBLE (v));
    g_assert_cmpfloat_with_epsilon (g_value_get_double (v), expected[i],
        EPSILON);
  }
}

static const GstStructure *
array_structure (const GstStructure * s, const gchar * field, guint index)
{
  const GValue *array = gst_structure_get_value (s, field);
  const GValue *v;

  g_assert_nonnull (array);
  g_assert_true (GST_VALUE_HOLDS_ARRAY (array));
  g_assert_cmpuint (index, <, gst_value_array_get_size (array));
  v = gst_value_array_get_value (array, index);
  g_assert_true (GST_VALUE_HOLDS_STRUCTURE (v));
  return gst_value_get_structure (v);
}

static guint
array_size (const GstStructure * s, const gchar * field)
{
  const GValue *array = gst_structure_get_value (s, field);

  g_assert_nonnull (array);
  g_assert_true (GST_VALUE_HOLDS_ARRAY (array));
  return gst_value_array_get_size (array);
}

/* ---- GET /detect/{uuid} ---- */

static void
test_audio_example_gives_verdict_and_metrics (void)
{
  g_autoptr (GstStructure) s = parse_detect_ok (audio_example);
  const gdouble chunks[] = { 0.9, 0.8, 0.7 };

  assert_string_field (s, "detect-uuid", "DETECTION_UUID");
  assert_string_field (s, "media-type", "audio");
  assert_string_field (s, "status", "completed");
  assert_string_field (s, "label", "fake");
  assert_double_field (s, "score", 0.566);
  assert_double_field (s, "aggregated-score", 0.566);
  assert_double_field (s, "consistency", 0.85);
  assert_double_array (s, "chunk-scores", chunks, G_N_ELEMENTS (chunks));
  assert_string_field (s, "filename", "suspicious.wav");
  assert_double_field (s, "media-duration", 8.2);
  assert_boolean_field (s, "zero-retention-mode", FALSE);
  assert_string_field (s, "created-at", "2024-01-15T10:30:00Z");
  g_assert_false (gst_structure_has_field (s, "emulated"));
  g_assert_false (gst_structure_has_field (s, "error-message"));
}

static void
test_image_label_normalised_and_data_uri_dropped (void)
{
  const gchar *json =
      "{\"success\": true, \"item\": {\"uuid\": \"IMAGE_UUID\", "
      "\"media_type\": \"image\", \"status\": \"completed\", \"metrics\": {}, "
      "\"image_metrics\": {\"type\": \"facial\", \"label\": \"Likely fake\", "
      "\"score\": 0.72, \"image\": \"data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==\", "
      "\"children\": [], \"ifl\": {\"score\": \"0.64\", "
      "\"heatmap\": \"data:image/png;base64,AAAAAAAAAAAAAAAA\"}}, "
      "\"url\": \"https://storage.example.com/face.jpg\", \"filename\": \"face.jpg\"}}";
  g_autoptr (GstStructure) s = parse_detect_ok (json);
  g_autofree gchar *text = NULL;

  assert_string_field (s, "media-type", "image");
  assert_string_field (s, "label", "likely fake");
  assert_double_field (s, "score", 0.72);
  assert_string_field (s, "image-type", "facial");
  assert_double_field (s, "ifl-score", 0.64);
  assert_string_field (s, "url", "https://storage.example.com/face.jpg");
  g_assert_false (gst_structure_has_field (s, "heatmap"));
  g_assert_false (gst_structure_has_field (s, "image"));
  g_assert_cmpuint (array_size (s, "children"), ==, 0);

  text = gst_structure_to_string (s);
  g_assert_null (strstr (text, "data:"));
}

static void
test_image_labels_of_every_case_are_lowercase (void)
{
  const gchar *labels[][2] = {
    {"Fake", "fake"}, {"Likely fake", "likely fake"},
    {"Neutral/Uncertain", "neutral/uncertain"}, {"Likely real", "likely real"},
    {"REAL", "real"}, {"  likely_Real ", "likely real"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (labels); i++) {
    g_autofree gchar *json = g_strdup_printf ("{\"item\": {\"uuid\": \"u\", "
        "\"media_type\": \"image\", \"status\": \"completed\", "
        "\"image_metrics\": {\"label\": \"%s\", \"score\": 0.5}}}",
        labels[i][0]);
    g_autoptr (GstStructure) s = parse_detect_ok (json);

    assert_string_field (s, "label", labels[i][1]);
  }
}

static void
test_urls_kept_only_when_short_http (void)
{
  g_autofree gchar *long_url = g_strdup_printf ("https://example.com/%0*d",
      RD_JSON_MAX_URL_LENGTH, 0);
  g_autofree gchar *json = g_strdup_printf ("{\"item\": {\"uuid\": \"u\", "
      "\"media_type\": \"image\", \"status\": \"completed\", "
      "\"image_metrics\": {\"label\": \"Real\", \"score\": 0.1, "
      "\"image\": \"https://example.com/vis.png\", "
      "\"ifl\": {\"score\": 0.2, \"heatmap\": \"%s\"}}, "
      "\"url\": \"ftp://example.com/face.jpg\", "
      "\"audio_url\": \"HTTP://example.com/face.jpg\"}}", long_url);
  g_autoptr (GstStructure) s = parse_detect_ok (json);

  assert_string_field (s, "image", "https://example.com/vis.png");
  assert_string_field (s, "audio-url", "HTTP://example.com/face.jpg");
  g_assert_false (gst_structure_has_field (s, "heatmap"));
  g_assert_false (gst_structure_has_field (s, "url"));
}

static void
test_video_children_and_audio_track (void)
{
  g_autoptr (GstStructure) s = parse_detect_ok (video_example);
  const GstStructure *video_result, *frame, *segment;

  assert_string_field (s, "media-type", "video");
  assert_string_field (s, "label", "fake");
  assert_double_field (s, "score", 0.9);
  assert_double_field (s, "certainty", 0.95);
  g_assert_false (gst_structure_has_field (s, "treeview"));

  g_assert_cmpuint (array_size (s, "children"), ==, 1);
  video_result = array_structure (s, "children", 0);
  assert_string_field (video_result, "type", "VideoResult");
  assert_string_field (video_result, "label", "fake");
  assert_double_field (video_result, "score", 0.99);
  assert_double_field (video_result, "certainty", 0.9);

  frame = array_structure (video_result, "children", 0);
  assert_string_field (frame, "type", "ImageResult");
  assert_string_field (frame, "label", "real");
  assert_double_field (frame, "score", 0.1);
  assert_double_field (frame, "timestamp", 0.23);

  segment = array_structure (frame, "children", 0);
  assert_string_field (segment, "type", "Segment");
  assert_double_field (segment, "score", 0.05);

  assert_string_field (s, "audio-label", "real");
  assert_double_field (s, "audio-score", 0.15);
  assert_double_field (s, "audio-consistency", 0.9);
  assert_string_field (s, "audio-image",
      "https://storage.example.com/audio-heatmap.png");
  assert_string_field (s, "source-tracing-label", "elevenlabs");
  assert_string_field (s, "intelligence-description",
      "{\"summary\":\"talking head\"}");
  assert_double_field (s, "media-duration", 10.0);
  assert_boolean_field (s, "emulated", TRUE);
}

static void
test_video_certainty_percent_used_when_certainty_missing (void)
{
  const gchar *json = "{\"item\": {\"uuid\": \"u\", \"media_type\": \"video\", "
      "\"status\": \"completed\", \"video_metrics\": {\"label\": \"Real\", "
      "\"score\": 0.1, \"certainty\": 0.8, \"children\": [{\"type\": "
      "\"VideoResult\", \"conclusion\": \"Real\", \"score\": 0.1, "
      "\"certainty (%)\": \"80%\", \"children\": []}]}}}";
  g_autoptr (GstStructure) s = parse_detect_ok (json);

  assert_double_field (array_structure (s, "children", 0), "certainty", 0.8);
}

static void
test_video_score_falls_back_to_certainty (void)
{
  const gchar *json = "{\"item\": {\"uuid\": \"u\", \"media_type\": \"video\", "
      "\"status\": \"completed\", \"video_metrics\": {\"label\": \"Fake\", "
      "\"certainty\": \"0.7\", \"children\": []}}}";
  g_autoptr (GstStructure) s = parse_detect_ok (json);

  assert_string_field (s, "label", "fake");
  assert_double_field (s, "score", 0.7);
  g_assert_false (gst_structure_has_field (s, "audio-label"));
  g_assert_false (gst_structure_has_field (s, "audio-score"));
}

static void
test_processing_item_has_no_label_and_no_score (void)
{
  const gchar *json = "{\"success\": true, \"item\": {\"uuid\": \"u\", "
      "\"media_type\": \"audio\", \"status\": \"processing\", "
      "\"metrics\": null, \"image_metrics\": null, \"video_metrics\": null}}";
  g_autoptr (GstStructure) s = parse_detect_ok (json);

  assert_string_field (s, "status", "processing");
  g_assert_false (gst_structure_has_field (s, "label"));
  assert_double_field (s, "score", -1.0);
}

static void
test_failed_item_carries_error_message (void)
{
  const gchar *json = "{\"success\": true, \"item\": {\"uuid\": \"u\", "
      "\"media_type\": \"video\", \"status\": \"failed\", "
      "\"error_message\": \"Unable to decode media\", \"video_metrics\": null}}";
  g_autoptr (GstStructure) s = parse_detect_ok (json);

  assert_string_field (s, "status", "failed");
  assert_string_field (s, "error-message", "Unable to decode media");
  g_assert_false (gst_structure_has_field (s, "label"));
  assert_double_field (s, "score", -1.0);
}

static void
test_numbers_as_strings_percent_and_string_arrays (void)
{
  const gchar *json = "{\"item\": {\"uuid\": \"u\", \"media_type\": \"Audio\", "
      "\"status\": \"Completed\", \"metrics\": {\"label\": \"FAKE\", "
      "\"score\": [\"90%\", \" 0.8 \", 0.7, 1, \"junk\", null], "
      "\"consistency\": \"85%\", \"aggregated_score\": \" 0.5 \"}, "
      "\"duration\": \"8.25\", \"zero_retention_mode\": \"true\"}}";
  g_autoptr (GstStructure) s = parse_detect_ok (json);
  const gdouble chunks[] = { 0.9, 0.8, 0.7, 1.0 };

  assert_string_field (s, "media-type", "audio");
  assert_string_field (s, "status", "completed");
  assert_string_field (s, "label", "fake");
  assert_double_array (s, "chunk-scores", chunks, G_N_ELEMENTS (chunks));
  assert_double_field (s, "consistency", 0.85);
  assert_double_field (s, "score", 0.5);
  assert_double_field (s, "media-duration", 8.25);
  assert_boolean_field (s, "zero-retention-mode", TRUE);
}

static void
test_audio_score_falls_back_to_mean_of_chunks (void)
{
  const gchar *json = "{\"item\": {\"uuid\": \"u\", \"media_type\": \"audio\", "
      "\"status\": \"completed\", \"metrics\": {\"label\": \"real\", "
      "\"score\": [\"0.2\", \"0.4\"], \"consistency\": \"0.9\"}}}";
  g_autoptr (GstStructure) s = parse_detect_ok (json);

  assert_double_field (s, "score", 0.3);
  g_assert_false (gst_structure_has_field (s, "aggregated-score"));
}

static void
test_aggregated_score_minus_one_means_no_score (void)
{
  const gchar *docs[] = {
    "{\"item\": {\"uuid\": \"u\", \"media_type\": \"audio\", \"status\": "
        "\"completed\", \"metrics\": {\"label\": \"real\", \"score\": [], "
        "\"consistency\": \"0\", \"aggregated_score\": -1}}}",
    "{\"item\": {\"uuid\": \"u\", \"media_type\": \"audio\", \"status\": "
        "\"completed\", \"metrics\": {\"label\": \"real\", \"score\": [\"0.4\"], "
        "\"consistency\": \"0\", \"aggregated_score\": \"-1\"}}}",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (docs); i++) {
    g_autoptr (GstStructure) s = parse_detect_ok (docs[i]);

    assert_double_field (s, "score", -1.0);
    assert_double_field (s, "aggregated-score", -1.0);
    assert_string_field (s, "label", "real");
  }
}

static void
test_hex_ids_are_kept_as_given (void)
{
  const gchar *json =
      "{\"item\": {\"uuid\": \"0A1B2C3D4E5F60718293A4B5C6D7E8F9\", "
      "\"media_type\": \"audio\", \"status\": \"completed\", "
      "\"metrics\": {\"label\": \"real\", \"aggregated_score\": 0.1}}}";
  const gchar *batch_json =
      "{\"item\": {\"uuid\": "
      "\"00112233445566778899aabbccddeeff\", \"status\": \"processing\", "
      "\"detect_uuids\": [\"0a1b2c3d4e5f60718293a4b5c6d7e8f9\", "
      "\"0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9\"]}}";
  g_autoptr (GstStructure) s = parse_detect_ok (json);
  g_autoptr (GError) error = NULL;
  g_autoptr (RdBatchStatus) batch =
      rd_results_parse_batch (batch_json, -1, &error);

  assert_string_field (s, "detect-uuid", "0A1B2C3D4E5F60718293A4B5C6D7E8F9");
  g_assert_no_error (error);
  g_assert_cmpstr (batch->uuid, ==, "00112233445566778899aabbccddeeff");
  g_assert_cmpuint (g_strv_length (batch->detect_uuids), ==, 2);
  g_assert_cmpstr (batch->detect_uuids[0], ==,
      "0a1b2c3d4e5f60718293a4b5c6d7e8f9");
  g_assert_cmpstr (batch->detect_uuids[1], ==,
      "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9");
}

static void
test_unknown_fields_are_ignored (void)
{
  const gchar *json = "{\"success\": true, \"meta\": {\"request_id\": 1}, "
      "\"item\": {\"uuid\": \"u\", \"media_type\": \"audio\", "
      "\"status\": \"completed\", \"pipeline\": null, \"use_ood_detector\": true, "
      "\"brand_new\": {\"nested\": [1, 2, {\"x\": null}]}, "
      "\"metrics\": {\"label\": \"fake\", \"aggregated_score\": 0.9, "
      "\"new_metric\": [\"a\"]}, \"extra_params\": {\"frame_length\": 2}}}";
  g_autoptr (GstStructure) s = parse_detect_ok (json);

  assert_string_field (s, "label", "fake");
  assert_double_field (s, "score", 0.9);
  g_assert_false (gst_structure_has_field (s, "brand-new"));
}

static void
test_media_type_inferred_from_metrics (void)
{
  const gchar *json = "{\"item\": {\"uuid\": \"u\", \"status\": \"completed\", "
      "\"metrics\": {}, \"image_metrics\": {\"label\": \"Real\", "
      "\"score\": 0.05, \"children\": []}}}";
  const gchar *unknowable = "{\"item\": {\"uuid\": \"u\", "
      "\"status\": \"processing\"}}";
  g_autoptr (GstStructure) s = parse_detect_ok (json);
  g_autoptr (GstStructure) bare = parse_detect_ok (unknowable);

  assert_string_field (s, "media-type", "image");
  assert_string_field (s, "label", "real");
  g_assert_false (gst_structure_has_field (bare, "media-type"));
  assert_double_field (bare, "score", -1.0);
}

static void
test_detect_without_item_or_uuid_is_format_error (void)
{
  const gchar *docs[] = {
    "", "   ", "not json", "{", "[]", "42", "null", "{}",
    "{\"success\": false, \"message\": \"Detect not found\"}",
    "{\"success\": true, \"item\": \"u\"}",
    "{\"success\": true, \"item\": {\"media_type\": \"audio\"}}",
    "{\"success\": true, \"item\": {\"uuid\": 12}}",
    "{\"success\": true, \"item\": {\"uuid\": \"\"}}",
    "{\"success\": true, \"item\": {\"uuid\": \"../../batch/x\"}}",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (docs); i++) {
    g_autoptr (GError) error = NULL;
    GstStructure *s = rd_results_parse_detect (docs[i], -1, &error);

    g_assert_null (s);
    g_assert_error (error, RD_ERROR, RD_ERROR_FORMAT);
  }
}

static void
test_missing_item_error_names_it (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) uuid_error = NULL;

  g_assert_null (rd_results_parse_detect ("{\"success\": false, "
          "\"message\": \"Detect not found\"}", -1, &error));
  g_assert_nonnull (strstr (error->message, "\"item\""));
  g_assert_nonnull (strstr (error->message, "Detect not found"));

  g_assert_null (rd_results_parse_detect ("{\"item\": {}}", -1, &uuid_error));
  g_assert_nonnull (strstr (uuid_error->message, "\"uuid\""));
}

static void
test_null_body_is_format_error (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) batch_error = NULL;

  g_assert_null (rd_results_parse_detect (NULL, -1, &error));
  g_assert_error (error, RD_ERROR, RD_ERROR_FORMAT);
  g_assert_null (rd_results_parse_batch (NULL, 0, &batch_error));
  g_assert_error (batch_error, RD_ERROR, RD_ERROR_FORMAT);
}

/* Runs every reader on @json (of @length bytes) and checks that each either
 * succeeds with a well-formed value or fails with RD_ERROR_FORMAT. */
static void
parse_everything (const gchar * json, gssize length)
{
  g_autoptr (GError) detect_error = NULL;
  g_autoptr (GError) batch_error = NULL;
  g_autoptr (GstStructure) s = NULL;
  g_autoptr (GstStructure) details = NULL;
  g_autoptr (RdBatchStatus) batch = NULL;
  g_autofree gchar *reason = NULL;

  s = rd_results_parse_detect (json, length, &detect_error);
  if (s != NULL) {
    g_autofree gchar *text = gst_structure_to_string (s);
    gdouble score;

    g_assert_no_error (detect_error);
    g_assert_nonnull (gst_structure_get_string (s, "detect-uuid"));
    g_assert_nonnull (gst_structure_get_string (s, "status"));
    g_assert_true (gst_structure_get_double (s, "score", &score));
    g_assert_true (score == -1.0 || score >= 0.0);
    g_assert_null (strstr (text, "data:"));
  } else {
    g_assert_error (detect_error, RD_ERROR, RD_ERROR_FORMAT);
  }

  batch = rd_results_parse_batch (json, length, &batch_error);
  if (batch != NULL) {
    g_assert_no_error (batch_error);
    g_assert_nonnull (batch->uuid);
    g_assert_nonnull (batch->status);
    g_assert_nonnull (batch->detect_uuids);
  } else {
    g_assert_error (batch_error, RD_ERROR, RD_ERROR_FORMAT);
  }

  rd_results_parse_error (400, json, length, &reason, &details);
  g_assert_nonnull (reason);
  g_assert_cmpstr (reason, !=, "");
  g_assert_nonnull (details);
  g_free (gst_structure_to_string (details));
}

static void
test_wrong_types_do_not_crash (void)
{
  const gchar *docs[] = {
    "{\"item\": []}",
    "{\"item\": null}",
    "{\"item\": {\"uuid\": \"u\", \"media_type\": 3, \"status\": [1]}}",
    "{\"item\": {\"uuid\": \"u\", \"media_type\": \"audio\", \"metrics\": \"fake\"}}",
    "{\"item\": {\"uuid\": \"u\", \"media_type\": \"audio\", \"metrics\": "
        "{\"label\": 1, \"score\": {\"a\": 1}, \"consistency\": [], "
        "\"aggregated_score\": true, \"image\": 5}}}",
    "{\"item\": {\"uuid\": \"u\", \"media_type\": \"audio\", \"metrics\": "
        "{\"score\": [[1], {}, true, \"1e999\", \"nan\", \"%\", \"\"]}}}",
    "{\"item\": {\"uuid\": \"u\", \"media_type\": \"image\", \"image_metrics\": "
        "{\"label\": {}, \"score\": \"x\", \"ifl\": [1], \"children\": \"none\"}}}",
    "{\"item\": {\"uuid\": \"u\", \"media_type\": \"image\", \"image_metrics\": 7}}",
    "{\"item\": {\"uuid\": \"u\", \"media_type\": \"video\", \"video_metrics\": "
        "{\"children\": [1, \"x\", null, [], {\"children\": {\"a\": 1}}, "
        "{\"score\": \"x\", \"timestamp\": [], \"certainty (%)\": \"%%\"}]}}}",
    "{\"item\": {\"uuid\": \"u\", \"media_type\": \"video\", \"video_metrics\": "
        "\"Fake\", \"metrics\": [0.9]}}",
    "{\"item\": {\"uuid\": \"u\", \"duration\": {}, \"zero_retention_mode\": "
        "\"maybe\", \"emulated\": [], \"url\": 1, \"filename\": false, "
        "\"audio_source_tracing\": \"x\", \"intelligence\": [1], "
        "\"error_message\": {}}}",
    "{\"item\": {\"uuid\": \"u\", \"intelligence\": {\"description\": 4}}}",
    "{\"item\": {\"uuid\": \"u\", \"status\": \"processing\", "
        "\"total_files\": \"many\", \"completed_count\": -4, "
        "\"failed_count\": 1e300, \"detect_uuids\": {\"0\": \"a\"}, "
        "\"created_at\": 5}}",
    "{\"item\": {\"uuid\": \"u\", \"status\": \"failed\", "
        "\"detect_uuids\": [null, 1, [\"a\"], \"\", \"ok\"]}}",
    "{\"success\": false, \"message\": 5, \"error\": [], \"errors\": [\"a\"], "
        "\"details\": \"none\"}",
    "{\"success\": false, \"errors\": {\"files\": {\"a\": 1}, \"x\": [1, null], "
        "\"\": [\"empty name\"]}, \"details\": {\"per_file_estimates\": "
        "{\"a\": 1}, \"total_estimated_cost_cents\": {}, \"limit\": \"lots\", "
        "\"used\": 1.5, \"requested\": []}}",
    "{\"success\": false, \"details\": {\"per_file_estimates\": [1, null, "
        "{\"filename\": [], \"nested\": {\"a\": 1}, \"cents\": 1e308}]}}",
    "\"just a string\"",
    "[{\"item\": {\"uuid\": \"u\"}}]",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (docs); i++)
    parse_everything (docs[i], -1);
}

/* Replaces every member of every object of @node, in turn, by each of the
 * wrong-typed values, runs every reader on the document, and restores it. */
static void
mutate_members (JsonNode * root, JsonNode * node, JsonNode ** replacements,
    guint n_replacements, guint * n_documents)
{
  if (JSON_NODE_HOLDS_ARRAY (node)) {
    JsonArray *array = json_node_get_array (node);
    guint i;

    for (i = 0; i < json_array_get_length (array); i++)
      mutate_members (root, json_array_get_element (array, i), replacements,
          n_replacements, n_documents);
  } else if (JSON_NODE_HOLDS_OBJECT (node)) {
    JsonObject *object = json_node_get_object (node);
    GList *names = json_object_get_members (object);
    GList *l;

    for (l = names; l != NULL; l = l->next) {
      g_autofree gchar *name = g_strdup (l->data);
      g_autoptr (JsonNode) original =
          json_node_copy (json_object_get_member (object, name));
      guint i;

      mutate_members (root, json_object_get_member (object, name),
          replacements, n_replacements, n_documents);
      for (i = 0; i < n_replacements; i++) {
        g_autofree gchar *json = NULL;

        json_object_set_member (object, name, json_node_copy (replacements[i]));
        json = json_to_string (root, FALSE);
        parse_everything (json, -1);
        (*n_documents)++;
      }
      json_object_set_member (object, name, json_node_copy (original));
    }
    g_list_free (names);
  }
}

static void
test_every_member_of_every_type_does_not_crash (void)
{
  const gchar *values[] = {
    "\"x\"", "\"\"", "\"data:image/png;base64,AAAA\"", "-1", "0", "1.5e308",
    "true", "null", "[]", "{}", "[\"a\", {}, null, 1]", "{\"a\": [1]}",
  };
  const gchar *bases[] = {
    video_example, audio_example, batch_completed_example,
    "{\"success\": false, \"message\": \"m\", \"errors\": {\"files\": [\"a\"]}, "
        "\"details\": {\"per_file_estimates\": [{\"filename\": \"a.wav\", "
        "\"estimated_cost_cents\": 3}], \"total_estimated_cost_cents\": 3, "
        "\"limit\": 1, \"used\": 1, \"requested\": 2}}",
  };
  JsonNode *replacements[G_N_ELEMENTS (values)];
  guint i, n_documents = 0;

  for (i = 0; i < G_N_ELEMENTS (values); i++)
    replacements[i] = json_from_string (values[i], NULL);

  for (i = 0; i < G_N_ELEMENTS (bases); i++) {
    g_autoptr (JsonNode) root = json_from_string (bases[i], NULL);

    g_assert_nonnull (root);
    mutate_members (root, root, replacements, G_N_ELEMENTS (values),
        &n_documents);
  }
  g_assert_cmpuint (n_documents, >, 500);

  for (i = 0; i < G_N_ELEMENTS (values); i++)
    json_node_unref (replacements[i]);
}

static void
test_truncated_documents_do_not_crash (void)
{
  gsize len = strlen (video_example), i;

  /* explicit lengths: the readers must not read past them */
  for (i = 0; i < len; i++) {
    gchar *copy = g_memdup2 (video_example, i);

    parse_everything (copy, i);
    g_free (copy);
  }
}

static void
test_deep_children_are_bounded (void)
{
  GString *json = g_string_new ("{\"item\": {\"uuid\": \"u\", "
      "\"media_type\": \"video\", \"status\": \"completed\", "
      "\"video_metrics\": {\"label\": \"Fake\", \"score\": 0.9, \"children\": ");
  g_autoptr (GstStructure) s = NULL;
  const GstStructure *child;
  guint i, depth = 0;

  for (i = 0; i < 200; i++)
    g_string_append (json, "[{\"type\": \"VideoResult\", \"score\": 0.5, "
        "\"children\": ");
  g_string_append (json, "[]");
  for (i = 0; i < 200; i++)
    g_string_append (json, "}]");
  g_string_append (json, "}}}");

  s = parse_detect_ok (json->str);
  g_string_free (json, TRUE);

  child = s;
  while (gst_structure_has_field (child, "children")
      && array_size (child, "children") > 0) {
    child = array_structure (child, "children", 0);
    depth++;
  }
  g_assert_cmpuint (depth, >=, 3);
  g_assert_cmpuint (depth, <=, 8);
}

static void
test_label_normalisation (void)
{
  g_autofree gchar *a = rd_results_normalize_label ("  Neutral/Uncertain ");
  g_autofree gchar *b = rd_results_normalize_label ("LIKELY   FAKE");
  g_autofree gchar *c = rd_results_normalize_label (" _ ");

  g_assert_cmpstr (a, ==, "neutral/uncertain");
  g_assert_cmpstr (b, ==, "likely fake");
  g_assert_null (c);
  g_assert_null (rd_results_normalize_label (NULL));
}

/* ---- batch status ---- */

static void
test_batch_accepted_example (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (RdBatchStatus) batch =
      rd_results_parse_batch (batch_accepted_example, -1, &error);
  const gchar *expected[] = {
    "DETECT_UUID_1", "DETECT_UUID_2", "DETECT_UUID_3", NULL
  };

  g_assert_no_error (error);
  g_assert_cmpstr (batch->uuid, ==, "BATCH_UUID");
  g_assert_cmpstr (batch->status, ==, "processing");
  g_assert_cmpuint (batch->total_files, ==, 3);
  g_assert_cmpuint (batch->completed_count, ==, 0);
  g_assert_cmpuint (batch->failed_count, ==, 0);
  g_assert_cmpstr (batch->created_at, ==, "2024-01-15T10:30:00Z");
  g_assert_true (g_strv_equal ((const gchar * const *) batch->detect_uuids,
          expected));
  g_assert_false (rd_results_batch_status_is_terminal (batch->status));
}

static void
test_batch_completed_example (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (RdBatchStatus) batch =
      rd_results_parse_batch (batch_completed_example, -1, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (batch->status, ==, "completed");
  g_assert_cmpuint (batch->total_files, ==, 3);
  g_assert_cmpuint (batch->completed_count, ==, 3);
  g_assert_cmpuint (batch->failed_count, ==, 0);
  g_assert_cmpuint (g_strv_length (batch->detect_uuids), ==, 3);
  g_assert_true (rd_results_batch_status_is_terminal (batch->status));
}

static void
test_batch_counts_as_strings_and_missing_parts (void)
{
  const gchar *json = "{\"item\": {\"uuid\": \"B\", \"status\": "
      "\"PARTIALLY_FAILED\", \"completed_count\": \"1\", "
      "\"failed_count\": 1.0, \"detect_uuids\": [\"a\", \"b\"]}}";
  const gchar *bare = "{\"item\": {\"uuid\": \"B\", \"status\": \"queued\"}}";
  g_autoptr (GError) error = NULL;
  g_autoptr (RdBatchStatus) batch = rd_results_parse_batch (json, -1, &error);
  g_autoptr (RdBatchStatus) minimal = rd_results_parse_batch (bare, -1, NULL);

  g_assert_no_error (error);
  g_assert_cmpstr (batch->status, ==, "partially_failed");
  g_assert_cmpuint (batch->total_files, ==, 2);
  g_assert_cmpuint (batch->completed_count, ==, 1);
  g_assert_cmpuint (batch->failed_count, ==, 1);
  g_assert_null (batch->created_at);

  g_assert_nonnull (minimal);
  g_assert_cmpstr (minimal->status, ==, "queued");
  g_assert_nonnull (minimal->detect_uuids);
  g_assert_null (minimal->detect_uuids[0]);
  g_assert_cmpuint (minimal->total_files, ==, 0);
}

static void
test_batch_without_item_ids_or_status_is_format_error (void)
{
  const gchar *docs[][2] = {
    {"<html>502</html>", "not JSON"},
    {"{\"success\": false, \"message\": \"Batch not found\"}", "\"item\""},
    {"{\"item\": {\"status\": \"completed\"}}", "\"uuid\""},
    {"{\"item\": {\"uuid\": \"B\", \"status\": null}}", "\"status\""},
    {"{\"item\": {\"uuid\": \"../B\", \"status\": \"completed\"}}",
        "\"uuid\""},
    {"{\"item\": {\"uuid\": \"B\", \"status\": \"completed\", "
          "\"detect_uuids\": [\"a\", null, \"c\"]}}", "\"detect_uuids\"[1]"},
    {"{\"item\": {\"uuid\": \"B\", \"status\": \"completed\", "
          "\"detect_uuids\": [\"a\", \"b?x=1\"]}}", "\"detect_uuids\"[1]"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (docs); i++) {
    g_autoptr (GError) error = NULL;

    g_assert_null (rd_results_parse_batch (docs[i][0], -1, &error));
    g_assert_error (error, RD_ERROR, RD_ERROR_FORMAT);
    g_assert_nonnull (strstr (error->message, docs[i][1]));
  }
}

static void
test_batch_terminal_statuses (void)
{
  g_assert_true (rd_results_batch_status_is_terminal ("completed"));
  g_assert_true (rd_results_batch_status_is_terminal ("partially_failed"));
  g_assert_true (rd_results_batch_status_is_terminal ("failed"));
  g_assert_true (rd_results_batch_status_is_terminal ("Completed"));
  g_assert_false (rd_results_batch_status_is_terminal ("processing"));
  g_assert_false (rd_results_batch_status_is_terminal ("queued"));
  g_assert_false (rd_results_batch_status_is_terminal (""));
  g_assert_false (rd_results_batch_status_is_terminal (NULL));
}

/* ---- error answers ---- */

static void
test_error_400_message_and_field_errors (void)
{
  const gchar *json =
      "{\"success\": false, \"message\": \"Validation failed\", "
      "\"errors\": {\"files\": [\"too many files\", \"unsupported type\"], "
      "\"callback_url\": [\"is not a URL\"]}}";
  g_autofree gchar *reason = NULL;
  g_autoptr (GstStructure) details = NULL;
  const GstStructure *errors;

  rd_results_parse_error (400, json, -1, &reason, &details);

  g_assert_cmpstr (reason, ==, "Validation failed");
  g_assert_true (GST_VALUE_HOLDS_STRUCTURE (gst_structure_get_value (details,
              "errors")));
  errors = gst_value_get_structure (gst_structure_get_value (details,
          "errors"));
  assert_string_field (errors, "files", "too many files; unsupported type");
  assert_string_field (errors, "callback-url", "is not a URL");
}

static void
test_error_400_without_message_uses_field_errors (void)
{
  const gchar *json = "{\"success\": false, \"errors\": {\"files\": "
      "[\"batch exceeds 50 files\"]}}";
  g_autofree gchar *reason = NULL;

  rd_results_parse_error (400, json, -1, &reason, NULL);

  g_assert_cmpstr (reason, ==, "HTTP 400: files: batch exceeds 50 files");
}

static void
test_error_with_only_error_string (void)
{
  const gchar *json = "{\"success\": false, \"error\": \"Prefer: wait is not "
      "supported\"}";
  g_autofree gchar *reason = NULL;
  g_autoptr (GstStructure) details = NULL;

  rd_results_parse_error (400, json, -1, &reason, &details);

  g_assert_cmpstr (reason, ==, "Prefer: wait is not supported");
  g_assert_false (gst_structure_has_field (details, "error"));
}

static void
test_error_402_cost_estimates (void)
{
  const gchar *json = "{\"success\": false, \"message\": \"Insufficient wallet "
      "balance\", \"details\": {\"per_file_estimates\": [{\"filename\": "
      "\"clip1.mp3\", \"estimated_cost_cents\": 12, \"duration_seconds\": 10.5}, "
      "{\"filename\": \"clip2.mp4\", \"estimated_cost_cents\": \"30\"}], "
      "\"total_estimated_cost_cents\": 42, \"wallet_balance_cents\": 5}}";
  g_autofree gchar *reason = NULL;
  g_autoptr (GstStructure) details = NULL;
  const GstStructure *first, *second;

  rd_results_parse_error (402, json, -1, &reason, &details);

  g_assert_cmpstr (reason, ==, "Insufficient wallet balance");
  g_assert_true (gst_structure_has_name (details, "details"));
  g_assert_cmpuint (array_size (details, "per-file-estimates"), ==, 2);
  first = array_structure (details, "per-file-estimates", 0);
  assert_string_field (first, "filename", "clip1.mp3");
  assert_int64_field (first, "estimated-cost-cents", 12);
  assert_double_field (first, "duration-seconds", 10.5);
  second = array_structure (details, "per-file-estimates", 1);
  assert_string_field (second, "estimated-cost-cents", "30");
  assert_int64_field (details, "total-estimated-cost-cents", 42);
  assert_int64_field (details, "wallet-balance-cents", 5);
}

static void
test_error_402_fractional_cost_stays_double (void)
{
  const gchar *json = "{\"success\": false, \"message\": \"m\", \"details\": "
      "{\"per_file_estimates\": [], \"total_estimated_cost_cents\": 41.5}}";
  g_autoptr (GstStructure) details = NULL;

  rd_results_parse_error (402, json, -1, NULL, &details);

  assert_double_field (details, "total-estimated-cost-cents", 41.5);
  g_assert_cmpuint (array_size (details, "per-file-estimates"), ==, 0);
}

static void
test_error_403_limit_used_requested (void)
{
  const gchar *json = "{\"success\": false, \"message\": \"Intelligence detect "
      "limit reached\", \"details\": {\"limit\": 100, \"used\": \"98\", "
      "\"requested\": 3.0}}";
  g_autofree gchar *reason = NULL;
  g_autoptr (GstStructure) details = NULL;

  rd_results_parse_error (403, json, -1, &reason, &details);

  g_assert_cmpstr (reason, ==, "Intelligence detect limit reached");
  assert_int64_field (details, "limit", 100);
  assert_int64_field (details, "used", 98);
  assert_int64_field (details, "requested", 3);
}

static void
test_error_401_unauthorized (void)
{
  const gchar *json = "{\"success\": false, \"message\": \"Unauthorized\"}";
  g_autofree gchar *reason = NULL;
  g_autoptr (GstStructure) details = NULL;

  rd_results_parse_error (401, json, -1, &reason, &details);

  g_assert_cmpstr (reason, ==, "Unauthorized");
  g_assert_nonnull (details);
  g_assert_cmpint (gst_structure_n_fields (details), ==, 0);
}

static void
test_error_html_from_proxy (void)
{
  const gchar *html =
      "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
      "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
      "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
  g_autofree gchar *reason = NULL;
  g_autoptr (GstStructure) details = NULL;

  rd_results_parse_error (502, html, -1, &reason, &details);

  g_assert_cmpstr (reason, ==,
      "HTTP 502: 502 Bad Gateway 502 Bad Gateway nginx");
  g_assert_cmpint (gst_structure_n_fields (details), ==, 0);
}

static void
test_error_long_text_is_cut_to_printable_excerpt (void)
{
  GString *body = g_string_new ("Service\x01\tUnavailable\n");
  g_autofree gchar *reason = NULL;
  guint i;

  for (i = 0; i < 1000; i++)
    g_string_append_c (body, 'a' + i % 26);
  g_string_append (body, "\xff\xfe");

  rd_results_parse_error (503, body->str, body->len, &reason, NULL);
  g_string_free (body, TRUE);

  g_assert_true (g_str_has_prefix (reason,
          "HTTP 503: Service Unavailable abc"));
  g_assert_true (g_str_has_suffix (reason, "..."));
  g_assert_cmpuint (g_utf8_strlen (reason, -1), <=, 220);
  g_assert_true (g_utf8_validate (reason, -1, NULL));
}

static void
test_error_empty_body (void)
{
  g_autofree gchar *reason = NULL;
  g_autofree gchar *null_reason = NULL;
  g_autoptr (GstStructure) details = NULL;
  g_autoptr (GstStructure) null_details = NULL;

  rd_results_parse_error (503, "", -1, &reason, &details);
  rd_results_parse_error (500, NULL, 0, &null_reason, &null_details);

  g_assert_cmpstr (reason, ==, "HTTP 503");
  g_assert_cmpint (gst_structure_n_fields (details), ==, 0);
  g_assert_cmpstr (null_reason, ==, "HTTP 500");
  g_assert_nonnull (null_details);
}

static void
test_error_json_without_message (void)
{
  g_autofree gchar *reason = NULL;

  rd_results_parse_error (404, "{\"success\": false}", -1, &reason, NULL);

  g_assert_true (g_str_has_prefix (reason, "HTTP 404"));
}

/* ---- the list of detects ---- */

static void
test_list_reads_items_in_order (void)
{
  static const gchar json[] = "{\"success\":true,\"page\":2,"
      "\"num_pages\":3,\"page_size\":10,\"total_count\":23,\"items\":["
      "{\"uuid\":\"d-2\",\"filename\":\"a-1.wav\",\"status\":\"Completed\","
      "\"created_at\":\"2026-01-15T10:30:00.250Z\"},"
      "{\"uuid\":\"bad id!\",\"filename\":\"x.wav\"},"
      "7,"
      "{\"uuid\":\"d-1\",\"filename\":42,"
      "\"created_at\":\"2026-01-15T11:30:00+01:00\"},"
      "{\"uuid\":\"d-0\",\"created_at\":\"yesterday\"}]}";
  g_autoptr (GError) error = NULL;
  g_autoptr (RdDetectList) list =
      rd_results_parse_detect_list (json, -1, &error);
  gint64 at = G_GINT64_CONSTANT (1768473000) * G_USEC_PER_SEC;  /* 10:30Z */

  g_assert_no_error (error);
  g_assert_cmpuint (list->page, ==, 2);
  g_assert_cmpuint (list->num_pages, ==, 3);
  g_assert_cmpuint (list->total_count, ==, 23);
  /* an item without an id is left out, whatever it is */
  g_assert_cmpuint (list->n_items, ==, 3);
  g_assert_cmpstr (list->items[0].uuid, ==, "d-2");
  g_assert_cmpstr (list->items[0].filename, ==, "a-1.wav");
  g_assert_cmpstr (list->items[0].status, ==, "completed");
  g_assert_cmpint (list->items[0].created_us, ==, at + 250000);
  g_assert_cmpstr (list->items[1].uuid, ==, "d-1");
  g_assert_null (list->items[1].filename);
  g_assert_null (list->items[1].status);
  g_assert_cmpint (list->items[1].created_us, ==, at);
  g_assert_cmpint (list->items[2].created_us, ==, G_MININT64);
}

static void
test_list_without_items_is_refused (void)
{
  static const gchar *const bodies[] = { "", "[]", "{\"success\":true}",
    "{\"items\":{}}", "{\"items\":[", NULL
  };
  guint i;

  for (i = 0; bodies[i]; i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (RdDetectList) list =
        rd_results_parse_detect_list (bodies[i], -1, &error);

    g_assert_null (list);
    g_assert_error (error, RD_ERROR, RD_ERROR_FORMAT);
  }
}

static void
test_list_may_be_empty (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (RdDetectList) list =
      rd_results_parse_detect_list ("{\"items\":[]}", -1, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (list->n_items, ==, 0);
  g_assert_cmpuint (list->num_pages, ==, 0);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/results/detect/audio-example-gives-verdict-and-metrics",
      test_audio_example_gives_verdict_and_metrics);
  g_test_add_func
      ("/results/detect/image-label-normalised-and-data-uri-dropped",
      test_image_label_normalised_and_data_uri_dropped);
  g_test_add_func ("/results/detect/image-labels-of-every-case-are-lowercase",
      test_image_labels_of_every_case_are_lowercase);
  g_test_add_func ("/results/detect/urls-kept-only-when-short-http",
      test_urls_kept_only_when_short_http);
  g_test_add_func ("/results/detect/video-children-and-audio-track",
      test_video_children_and_audio_track);
  g_test_add_func
      ("/results/detect/video-certainty-percent-used-when-certainty-missing",
      test_video_certainty_percent_used_when_certainty_missing);
  g_test_add_func ("/results/detect/video-score-falls-back-to-certainty",
      test_video_score_falls_back_to_certainty);
  g_test_add_func ("/results/detect/processing-item-has-no-label-and-no-score",
      test_processing_item_has_no_label_and_no_score);
  g_test_add_func ("/results/detect/failed-item-carries-error-message",
      test_failed_item_carries_error_message);
  g_test_add_func
      ("/results/detect/numbers-as-strings-percent-and-string-arrays",
      test_numbers_as_strings_percent_and_string_arrays);
  g_test_add_func ("/results/detect/audio-score-falls-back-to-mean-of-chunks",
      test_audio_score_falls_back_to_mean_of_chunks);
  g_test_add_func ("/results/detect/aggregated-score-minus-one-means-no-score",
      test_aggregated_score_minus_one_means_no_score);
  g_test_add_func ("/results/detect/hex-ids-are-kept-as-given",
      test_hex_ids_are_kept_as_given);
  g_test_add_func ("/results/detect/unknown-fields-are-ignored",
      test_unknown_fields_are_ignored);
  g_test_add_func ("/results/detect/media-type-inferred-from-metrics",
      test_media_type_inferred_from_metrics);
  g_test_add_func ("/results/detect/without-item-or-uuid-is-format-error",
      test_detect_without_item_or_uuid_is_format_error);
  g_test_add_func ("/results/detect/missing-item-error-names-it",
      test_missing_item_error_names_it);
  g_test_add_func ("/results/detect/null-body-is-format-error",
      test_null_body_is_format_error);
  g_test_add_func ("/results/robustness/wrong-types-do-not-crash",
      test_wrong_types_do_not_crash);
  g_test_add_func
      ("/results/robustness/every-member-of-every-type-does-not-crash",
      test_every_member_of_every_type_does_not_crash);
  g_test_add_func ("/results/robustness/truncated-documents-do-not-crash",
      test_truncated_documents_do_not_crash);
  g_test_add_func ("/results/robustness/deep-children-are-bounded",
      test_deep_children_are_bounded);
  g_test_add_func ("/results/label-normalisation", test_label_normalisation);
  g_test_add_func ("/results/batch/accepted-example",
      test_batch_accepted_example);
  g_test_add_func ("/results/batch/completed-example",
      test_batch_completed_example);
  g_test_add_func ("/results/batch/counts-as-strings-and-missing-parts",
      test_batch_counts_as_strings_and_missing_parts);
  g_test_add_func ("/results/batch/without-item-ids-or-status-is-format-error",
      test_batch_without_item_ids_or_status_is_format_error);
  g_test_add_func ("/results/batch/terminal-statuses",
      test_batch_terminal_statuses);
  g_test_add_func ("/results/error/400-message-and-field-errors",
      test_error_400_message_and_field_errors);
  g_test_add_func ("/results/error/400-without-message-uses-field-errors",
      test_error_400_without_message_uses_field_errors);
  g_test_add_func ("/results/error/only-error-string",
      test_error_with_only_error_string);
  g_test_add_func ("/results/error/402-cost-estimates",
      test_error_402_cost_estimates);
  g_test_add_func ("/results/error/402-fractional-cost-stays-double",
      test_error_402_fractional_cost_stays_double);
  g_test_add_func ("/results/error/403-limit-used-requested",
      test_error_403_limit_used_requested);
  g_test_add_func ("/results/error/401-unauthorized",
      test_error_401_unauthorized);
  g_test_add_func ("/results/error/html-from-proxy",
      test_error_html_from_proxy);
  g_test_add_func ("/results/error/long-text-is-cut-to-printable-excerpt",
      test_error_long_text_is_cut_to_printable_excerpt);
  g_test_add_func ("/results/error/empty-body", test_error_empty_body);
  g_test_add_func ("/results/list/reads-items-in-order",
      test_list_reads_items_in_order);
  g_test_add_func ("/results/list/without-items-is-refused",
      test_list_without_items_is_refused);
  g_test_add_func ("/results/list/may-be-empty", test_list_may_be_empty);
  g_test_add_func ("/results/error/json-without-message",
      test_error_json_without_message);

  return g_test_run ();
}
