/* The emulator's answers for a batch and for each detect, in the documented
 * shapes (../shared/api/detect-results.md, DetectAudioMetrics,
 * DetectImageMetrics, DetectVideoMetrics), computed from the file's SHA-256
 * alone so that tests can predict them. Nothing is analysed: every item
 * says "emulated": true and extra_params.emulator names the emulator. */
#include "emulator-private.h"

#include <string.h>

/* A 1x1 transparent PNG: the inline `data:` heatmap the real service may
 * send, small enough to show in tests. */
#define TINY_PNG_DATA_URI "data:image/png;base64," \
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

gchar *
rd_emulator_format_time (GDateTime * time)
{
  g_autoptr (GDateTime) utc = g_date_time_to_utc (time);
  g_autofree gchar *seconds = g_date_time_format (utc, "%Y-%m-%dT%H:%M:%S");

  return g_strdup_printf ("%s.%03dZ", seconds,
      g_date_time_get_microsecond (utc) / 1000);
}

const gchar *
rd_emulator_detect_status (const RdEmulatorDetect * detect, gint64 now_us)
{
  if (now_us < detect->done_us)
    return "processing";
  return detect->failure ? "failed" : "completed";
}

const gchar *
rd_emulator_batch_status (const RdEmulatorBatch * batch, gint64 now_us,
    guint * completed, guint * failed)
{
  guint n_completed = 0, n_failed = 0, i;

  for (i = 0; i < batch->detects->len; i++) {
    const RdEmulatorDetect *detect = g_ptr_array_index (batch->detects, i);

    if (now_us < detect->done_us)
      continue;
    if (detect->failure)
      n_failed++;
    else
      n_completed++;
  }
  if (completed)
    *completed = n_completed;
  if (failed)
    *failed = n_failed;
  if (n_completed + n_failed < batch->detects->len)
    return "processing";
  if (n_failed == 0)
    return "completed";
  if (n_completed == 0)
    return "failed";
  return "partially_failed";
}

gint64
rd_emulator_batch_terminal_us (const RdEmulatorBatch * batch)
{
  gint64 last = batch->created_us;
  guint i;

  for (i = 0; i < batch->detects->len; i++) {
    const RdEmulatorDetect *detect = g_ptr_array_index (batch->detects, i);
    last = MAX (last, detect->done_us);
  }
  return last;
}

gboolean
rd_emulator_batch_is_terminal (const RdEmulatorBatch * batch, gint64 now_us)
{
  return now_us >= rd_emulator_batch_terminal_us (batch);
}

JsonNode *
rd_emulator_batch_to_json (const RdEmulatorBatch * batch, gint64 now_us)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree gchar *created = rd_emulator_format_time (batch->created_at);
  guint completed, failed, i;
  const gchar *status;

  status = rd_emulator_batch_status (batch, now_us, &completed, &failed);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "uuid");
  json_builder_add_string_value (b, batch->uuid);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, status);
  json_builder_set_member_name (b, "total_files");
  json_builder_add_int_value (b, batch->detects->len);
  json_builder_set_member_name (b, "completed_count");
  json_builder_add_int_value (b, completed);
  json_builder_set_member_name (b, "failed_count");
  json_builder_add_int_value (b, failed);
  json_builder_set_member_name (b, "created_at");
  json_builder_add_string_value (b, created);
  json_builder_set_member_name (b, "detect_uuids");
  json_builder_begin_array (b);
  for (i = 0; i < batch->detects->len; i++) {
    const RdEmulatorDetect *detect = g_ptr_array_index (batch->detects, i);
    json_builder_add_string_value (b, detect->uuid);
  }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "emulated");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/* The verdict every shape is built from: the first four bytes of the
 * content's SHA-256 as a fraction of 2^32. */
static gdouble
content_score (const guint8 * sha256)
{
  guint32 v = ((guint32) sha256[0] << 24) | ((guint32) sha256[1] << 16) |
      ((guint32) sha256[2] << 8) | (guint32) sha256[3];

  return v / 4294967296.0;
}

static guint
chunk_count (const guint8 * sha256)
{
  return 1 + sha256[4] % 6;
}

static gchar *
format_number (const gchar * format, gdouble value)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  return g_strdup (g_ascii_formatd (buf, sizeof (buf), format, value));
}

static gdouble
certainty_of (gdouble score)
{
  return 0.5 + ABS (score - 0.5);
}

static const gchar *
image_label (gdouble score)
{
  /* The image labels, binned so that "fake" still means score >= 0.5. */
  if (score >= 0.75)
    return "Fake";
  if (score >= 0.5)
    return "Likely fake";
  if (score >= 0.25)
    return "Likely real";
  return "Real";
}

static gchar *
media_url (const RdEmulatorDetect * detect, const gchar * media_base,
    const gchar * leaf)
{
  g_autofree gchar *escaped = g_uri_escape_string (leaf, NULL, FALSE);

  return g_strdup_printf ("%s/%s/%s", media_base, detect->uuid, escaped);
}

/* DetectAudioMetrics, with the published string-typed numbers: `score` is
 * an array of numeric strings, `consistency` and `aggregated_score` are
 * strings. */
static void
add_audio_metrics (JsonBuilder * b, const RdEmulatorDetect * detect,
    const gchar * media_base)
{
  const guint8 *h = detect->file->sha256;
  gdouble score = content_score (h);
  guint i, n = chunk_count (h);
  gchar *text;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "label");
  json_builder_add_string_value (b, score >= 0.5 ? "fake" : "real");
  json_builder_set_member_name (b, "score");
  json_builder_begin_array (b);
  for (i = 0; i < n; i++) {
    gdouble chunk = CLAMP (score + (h[5 + i] - 127.5) / 1000.0, 0.0, 1.0);
    text = format_number ("%.3f", chunk);
    json_builder_add_string_value (b, text);
    g_free (text);
  }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "consistency");
  text = format_number ("%.2f", 0.5 + h[12] / 510.0);
  json_builder_add_string_value (b, text);
  g_free (text);
  json_builder_set_member_name (b, "aggregated_score");
  text = format_number ("%.4f", score);
  json_builder_add_string_value (b, text);
  g_free (text);
  if (detect->batch->settings.visualize) {
    json_builder_set_member_name (b, "image");
    text = media_url (detect, media_base, "audio-heatmap.png");
    json_builder_add_string_value (b, text);
    g_free (text);
  }
  json_builder_end_object (b);
}

static void
add_image_metrics (JsonBuilder * b, const RdEmulatorDetect * detect,
    const gchar * media_base)
{
  gdouble score = content_score (detect->file->sha256);
  gchar *url;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "image");
  json_builder_set_member_name (b, "label");
  json_builder_add_string_value (b, image_label (score));
  json_builder_set_member_name (b, "score");
  json_builder_add_double_value (b, score);
  json_builder_set_member_name (b, "image");
  if (detect->batch->settings.visualize) {
    url = media_url (detect, media_base, "image-heatmap.png");
    json_builder_add_string_value (b, url);
    g_free (url);
  } else {
    json_builder_add_null_value (b);
  }
  json_builder_set_member_name (b, "children");
  json_builder_begin_array (b);
  json_builder_end_array (b);
  if (detect->batch->settings.visualize) {
    json_builder_set_member_name (b, "ifl");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "score");
    json_builder_add_double_value (b, score);
    json_builder_set_member_name (b, "heatmap");
    json_builder_add_string_value (b, TINY_PNG_DATA_URI);
    json_builder_end_object (b);
  }
  json_builder_end_object (b);
}

static void
add_video_node (JsonBuilder * b, const gchar * type, gdouble score,
    gdouble timestamp)
{
  gdouble certainty = certainty_of (score);
  g_autofree gchar *number = format_number ("%.1f", certainty * 100);
  g_autofree gchar *percent = g_strconcat (number, "%", NULL);

  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  json_builder_set_member_name (b, "conclusion");
  json_builder_add_string_value (b, score >= 0.5 ? "Fake" : "Real");
  json_builder_set_member_name (b, "score");
  json_builder_add_double_value (b, score);
  json_builder_set_member_name (b, "certainty");
  json_builder_add_double_value (b, certainty);
  json_builder_set_member_name (b, "certainty (%)");
  json_builder_add_string_value (b, percent);
  if (timestamp >= 0) {
    json_builder_set_member_name (b, "timestamp");
    json_builder_add_double_value (b, timestamp);
  }
}

static void
add_video_metrics (JsonBuilder * b, const RdEmulatorDetect * detect)
{
  const guint8 *h = detect->file->sha256;
  gdouble score = content_score (h);
  guint frame_length = detect->batch->settings.frame_length;
  guint i, n_frames = chunk_count (h);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "label");
  json_builder_add_string_value (b, score >= 0.5 ? "Fake" : "Real");
  json_builder_set_member_name (b, "score");
  json_builder_add_double_value (b, score);
  json_builder_set_member_name (b, "certainty");
  json_builder_add_double_value (b, certainty_of (score));
  json_builder_set_member_name (b, "children");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  add_video_node (b, "VideoResult", score, -1);
  json_builder_set_member_name (b, "children");
  json_builder_begin_array (b);
  for (i = 0; i < n_frames; i++) {
    gdouble frame = CLAMP (score + (h[5 + i] - 127.5) / 1000.0, 0.0, 1.0);

    json_builder_begin_object (b);
    add_video_node (b, "ImageResult", frame, i * frame_length + 0.25);
    json_builder_set_member_name (b, "children");
    json_builder_begin_array (b);
    json_builder_begin_object (b);
    add_video_node (b, "Segment", frame, -1);
    json_builder_end_object (b);
    json_builder_end_array (b);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_end_object (b);
}

static void
add_string_or_null (JsonBuilder * b, const gchar * name, const gchar * value)
{
  json_builder_set_member_name (b, name);
  if (value)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

JsonNode *
rd_emulator_detect_to_json (const RdEmulatorDetect * detect, gint64 now_us,
    const gchar * media_base)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const RdEmulatorBatch *batch = detect->batch;
  const RdEmulatorSettings *settings = &batch->settings;
  const RdUploadFile *file = detect->file;
  const gchar *status = rd_emulator_detect_status (detect, now_us);
  gboolean done = strcmp (status, "processing") != 0;
  gboolean completed = strcmp (status, "completed") == 0;
  gboolean zero_retention = settings->zero_retention_mode;
  gdouble score = content_score (file->sha256);
  g_autoptr (GDateTime) done_at = g_date_time_add (batch->created_at,
      detect->done_us - batch->created_us);
  g_autofree gchar *created = rd_emulator_format_time (batch->created_at);
  g_autofree gchar *updated = rd_emulator_format_time (done ?
      done_at : batch->created_at);
  g_autofree gchar *url = NULL;

  if (!zero_retention)
    url = media_url (detect, media_base, file->name);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "uuid");
  json_builder_add_string_value (b, detect->uuid);
  json_builder_set_member_name (b, "media_type");
  json_builder_add_string_value (b,
      rd_upload_media_type_to_string (file->media_type));
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, status);
  add_string_or_null (b, "error_message", done ? detect->failure : NULL);

  json_builder_set_member_name (b, "metrics");
  if (!completed) {
    json_builder_add_null_value (b);
  } else if (file->media_type == RD_UPLOAD_MEDIA_IMAGE) {
    json_builder_begin_object (b);
    json_builder_end_object (b);
  } else {
    add_audio_metrics (b, detect, media_base);
  }
  json_builder_set_member_name (b, "image_metrics");
  if (completed && file->media_type == RD_UPLOAD_MEDIA_IMAGE)
    add_image_metrics (b, detect, media_base);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "video_metrics");
  if (completed && file->media_type == RD_UPLOAD_MEDIA_VIDEO)
    add_video_metrics (b, detect);
  else
    json_builder_add_null_value (b);

  json_builder_set_member_name (b, "audio_source_tracing");
  if (completed && file->media_type == RD_UPLOAD_MEDIA_AUDIO
      && settings->audio_source_tracing && score >= 0.5) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "label");
    json_builder_add_string_value (b, "emulated_source");
    json_builder_set_member_name (b, "error_message");
    json_builder_add_null_value (b);
    json_builder_end_object (b);
  } else {
    json_builder_add_null_value (b);
  }

  json_builder_set_member_name (b, "intelligence");
  if (completed && settings->intelligence) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "description");
    json_builder_add_string_value (b, "Emulated intelligence report: "
        "resemble-detect-emulator analysed nothing.");
    json_builder_set_member_name (b, "created_at");
    json_builder_add_string_value (b, updated);
    json_builder_set_member_name (b, "detect_uuid");
    json_builder_add_string_value (b, detect->uuid);
    json_builder_end_object (b);
  } else {
    json_builder_add_null_value (b);
  }

  add_string_or_null (b, "url", url);
  add_string_or_null (b, "audio_url", url);
  json_builder_set_member_name (b, "filename");
  json_builder_add_string_value (b, zero_retention ?
      detect->redacted_name : file->name);
  json_builder_set_member_name (b, "duration");
  if (file->media_type == RD_UPLOAD_MEDIA_IMAGE)
    json_builder_add_null_value (b);
  else
    json_builder_add_double_value (b,
        (gdouble) chunk_count (file->sha256) * settings->frame_length);
  json_builder_set_member_name (b, "zero_retention_mode");
  json_builder_add_boolean_value (b, zero_retention);
  json_builder_set_member_name (b, "media_redacted");
  json_builder_add_boolean_value (b, zero_retention);
  json_builder_set_member_name (b, "media_deleted");
  json_builder_add_boolean_value (b, zero_retention && done);
  add_string_or_null (b, "file_deleted_at", zero_retention
      && done ? updated : NULL);
  json_builder_set_member_name (b, "visualize");
  json_builder_add_boolean_value (b, settings->visualize);
  json_builder_set_member_name (b, "audio_source_tracing_enabled");
  json_builder_add_boolean_value (b, settings->audio_source_tracing);

  json_builder_set_member_name (b, "extra_params");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "emulator");
  json_builder_add_string_value (b, RD_EMULATOR_NAME " " RD_EMULATOR_VERSION);
  json_builder_set_member_name (b, "batch_uuid");
  json_builder_add_string_value (b, batch->uuid);
  json_builder_set_member_name (b, "content_sha256");
  json_builder_add_string_value (b, file->sha256_hex);
  json_builder_set_member_name (b, "score");
  json_builder_add_double_value (b, score);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "emulated");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_set_member_name (b, "created_at");
  json_builder_add_string_value (b, created);
  json_builder_set_member_name (b, "updated_at");
  json_builder_add_string_value (b, updated);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}
