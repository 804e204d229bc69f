/* The configuration of resembledetectsink (see sink-config.h): the
 * properties' specs and documentation, their values, and the refusal of
 * values that cannot work. A refused value never silently becomes a
 * default: the element refuses to start instead (rd_sink_config_check). */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "sink-config.h"
#include "batch.h"

#define DEFAULT_CONTAINER GST_RESEMBLE_DETECT_CONTAINER_AUTO
#define DEFAULT_SEGMENT_DURATION (10 * GST_SECOND)
#define DEFAULT_MAX_FILES 10
#define DEFAULT_MAX_BATCH_BYTES RD_BATCH_MAX_BYTES
#define DEFAULT_BATCH_TIMEOUT 0
#define DEFAULT_UPLOAD_MODE RD_UPLOAD_MODE_FILES
#define DEFAULT_INTELLIGENCE FALSE
#define DEFAULT_SEARCH_IDENTITY FALSE
#define DEFAULT_VISUALIZE TRUE
#define DEFAULT_AUDIO_SOURCE_TRACING FALSE
#define DEFAULT_USE_LLM FALSE
#define DEFAULT_ZERO_RETENTION_MODE FALSE
#define DEFAULT_FRAME_LENGTH 0
#define DEFAULT_REGION -1.0
#define DEFAULT_POLL_INTERVAL (2 * GST_SECOND)
#define DEFAULT_POLL_MAX_INTERVAL (30 * GST_SECOND)
#define DEFAULT_POLL_TIMEOUT (30 * 60 * GST_SECOND)
#define DEFAULT_FETCH_RESULTS TRUE
#define DEFAULT_MAX_RETRIES 5
#define DEFAULT_MAX_IN_FLIGHT 4
#define DEFAULT_WAIT_ON_EOS TRUE
#define DEFAULT_KEEP_FILES FALSE
#define DEFAULT_MAX_SPOOL_BYTES G_GUINT64_CONSTANT (10000000000)
#define DEFAULT_ASYNC TRUE
#define DEFAULT_ON_ERROR GST_RESEMBLE_DETECT_ON_ERROR_WARN

/* The API rejects polling faster than this. */
#define MIN_POLL_INTERVAL GST_SECOND

enum
{
  PROP_0,
  PROP_API_URL,
  PROP_API_TOKEN,
  PROP_LOCATION,
  PROP_CONTAINER,
  PROP_SEGMENT_DURATION,
  PROP_MAX_FILES,
  PROP_MAX_BATCH_BYTES,
  PROP_BATCH_TIMEOUT,
  PROP_UPLOAD_MODE,
  PROP_CALLBACK_URL,
  PROP_INTELLIGENCE,
  PROP_SEARCH_IDENTITY,
  PROP_VISUALIZE,
  PROP_AUDIO_SOURCE_TRACING,
  PROP_USE_LLM,
  PROP_ZERO_RETENTION_MODE,
  PROP_FRAME_LENGTH,
  PROP_START_REGION,
  PROP_END_REGION,
  PROP_MAX_VIDEO_SECS,
  PROP_POLL_INTERVAL,
  PROP_POLL_MAX_INTERVAL,
  PROP_POLL_TIMEOUT,
  PROP_FETCH_RESULTS,
  PROP_MAX_RETRIES,
  PROP_MAX_IN_FLIGHT,
  PROP_WAIT_ON_EOS,
  PROP_KEEP_FILES,
  PROP_MAX_SPOOL_BYTES,
  PROP_ON_ERROR,
  PROP_ASYNC,
  PROP_CALLBACK_LISTEN,
  PROP_CALLBACK_PUBLIC_URL,
  PROP_LATENCY_BUDGET,
  PROP_MAX_OBSERVED_LATENCY,
};

GType
gst_resemble_detect_upload_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {RD_UPLOAD_MODE_FILES, "One repeated files[] part per file", "files"},
    {RD_UPLOAD_MODE_ZIP, "One zip archive holding the batch", "zip"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstResembleDetectUploadMode", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_resemble_detect_on_error_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_RESEMBLE_DETECT_ON_ERROR_WARN, "A failed batch is a warning and a "
          "message; the pipeline goes on (24/7 channels)", "warn"},
    {GST_RESEMBLE_DETECT_ON_ERROR_ERROR, "The first failed batch is an "
          "element error (batch jobs, scripts)", "error"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstResembleDetectOnError", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

static gint *
boolean_setting (RdSinkConfig * config, guint prop_id)
{
  switch (prop_id) {
    case PROP_INTELLIGENCE:
      return &config->settings.intelligence;
    case PROP_SEARCH_IDENTITY:
      return &config->settings.search_identity;
    case PROP_VISUALIZE:
      return &config->settings.visualize;
    case PROP_AUDIO_SOURCE_TRACING:
      return &config->settings.audio_source_tracing;
    case PROP_USE_LLM:
      return &config->settings.use_llm;
    case PROP_ZERO_RETENTION_MODE:
      return &config->settings.zero_retention_mode;
    default:
      return NULL;
  }
}

static gboolean
boolean_setting_default (guint prop_id)
{
  return prop_id == PROP_VISUALIZE ? DEFAULT_VISUALIZE : FALSE;
}

static gdouble *
region_setting (RdSinkConfig * config, guint prop_id)
{
  switch (prop_id) {
    case PROP_START_REGION:
      return &config->settings.start_region;
    case PROP_END_REGION:
      return &config->settings.end_region;
    case PROP_MAX_VIDEO_SECS:
      return &config->settings.max_video_secs;
    default:
      return NULL;
  }
}

/* A value the API would refuse is kept out (the old value stays) with a
 * warning, and remembered: the element then refuses to start, rather than
 * send anything with a setting the user did not mean. Setting an accepted
 * value forgets the refusal. */
static void
refuse_setting (RdSinkConfig * config, GObject * object, GParamSpec * pspec,
    gchar * reason)
{
  g_warning ("%s: refusing %s: %s", GST_IS_OBJECT (object) ?
      GST_OBJECT_NAME (object) : G_OBJECT_TYPE_NAME (object), pspec->name,
      reason);
  g_hash_table_insert (config->refused, g_strdup (pspec->name), reason);
}

/* NULL when @value is an http(s) URL (or NULL), else why not. */
static gchar *
url_refusal (const gchar * value)
{
  g_autoptr (GUri) uri = NULL;
  const gchar *scheme;

  if (value == NULL)
    return NULL;
  uri = g_uri_parse (value, G_URI_FLAGS_NONE, NULL);
  scheme = uri ? g_uri_get_scheme (uri) : NULL;
  if (scheme && (g_ascii_strcasecmp (scheme, "http") == 0
          || g_ascii_strcasecmp (scheme, "https") == 0))
    return NULL;
  return g_strdup_printf ("\"%s\" is not an http(s) URL", value);
}

static gchar *
region_refusal (guint prop_id, gdouble v)
{
  /* -1 unsets; other negative values are not an API value. */
  if (v < 0 && v != -1.0)
    return g_strdup_printf ("%g: must be -1 (unset) or >= 0", v);
  if (prop_id == PROP_MAX_VIDEO_SECS && v == 0)
    return g_strdup ("0: must be -1 (unset) or > 0");
  return NULL;
}

gboolean
rd_sink_config_set (RdSinkConfig * config, GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  gchar *refusal = NULL;

  g_hash_table_remove (config->refused, pspec->name);
  switch (prop_id) {
    case PROP_API_URL:
      refusal = url_refusal (g_value_get_string (value));
      if (refusal == NULL) {
        g_free (config->api_url);
        config->api_url = g_value_dup_string (value);
        if (config->api_url == NULL)
          config->api_url = g_strdup (RD_SINK_DEFAULT_API_URL);
      }
      break;
    case PROP_API_TOKEN:
      g_free (config->api_token);
      config->api_token = g_value_dup_string (value);
      break;
    case PROP_LOCATION:
      g_free (config->location);
      config->location = g_value_dup_string (value);
      break;
    case PROP_CONTAINER:
      config->container = g_value_get_enum (value);
      break;
    case PROP_SEGMENT_DURATION:
      config->segment_duration = g_value_get_uint64 (value);
      break;
    case PROP_MAX_FILES:
      config->max_files = g_value_get_uint (value);
      break;
    case PROP_MAX_BATCH_BYTES:
      config->max_batch_bytes = g_value_get_uint64 (value);
      break;
    case PROP_BATCH_TIMEOUT:
      config->batch_timeout = g_value_get_uint64 (value);
      break;
    case PROP_UPLOAD_MODE:
      config->upload_mode = g_value_get_enum (value);
      break;
    case PROP_CALLBACK_URL:
      refusal = url_refusal (g_value_get_string (value));
      if (refusal == NULL) {
        g_free (config->settings.callback_url);
        config->settings.callback_url = g_value_dup_string (value);
      }
      break;
    case PROP_INTELLIGENCE:
    case PROP_SEARCH_IDENTITY:
    case PROP_VISUALIZE:
    case PROP_AUDIO_SOURCE_TRACING:
    case PROP_USE_LLM:
    case PROP_ZERO_RETENTION_MODE:
      *boolean_setting (config, prop_id) = g_value_get_boolean (value) ? 1 : 0;
      break;
    case PROP_FRAME_LENGTH:
      config->settings.frame_length = g_value_get_uint (value);
      break;
    case PROP_START_REGION:
    case PROP_END_REGION:
    case PROP_MAX_VIDEO_SECS:{
      gdouble v = g_value_get_double (value);

      refusal = region_refusal (prop_id, v);
      if (refusal == NULL)
        *region_setting (config, prop_id) = v;
      break;
    }
    case PROP_POLL_INTERVAL:
      config->poll_interval = g_value_get_uint64 (value);
      break;
    case PROP_POLL_MAX_INTERVAL:
      config->poll_max_interval = g_value_get_uint64 (value);
      break;
    case PROP_POLL_TIMEOUT:
      config->poll_timeout = g_value_get_uint64 (value);
      break;
    case PROP_FETCH_RESULTS:
      config->fetch_results = g_value_get_boolean (value);
      break;
    case PROP_MAX_RETRIES:
      config->max_retries = g_value_get_uint (value);
      break;
    case PROP_MAX_IN_FLIGHT:
      config->max_in_flight = g_value_get_uint (value);
      break;
    case PROP_WAIT_ON_EOS:
      config->wait_on_eos = g_value_get_boolean (value);
      break;
    case PROP_KEEP_FILES:
      config->keep_files = g_value_get_boolean (value);
      break;
    case PROP_MAX_SPOOL_BYTES:
      config->max_spool_bytes = g_value_get_uint64 (value);
      break;
    case PROP_ASYNC:
      config->async = g_value_get_boolean (value);
      break;
    case PROP_CALLBACK_LISTEN:{
      const gchar *listen = g_value_get_string (value);
      g_autoptr (GError) invalid = NULL;

      if (listen && !rd_listen_address_parse (listen, NULL, NULL, &invalid))
        refusal = g_strdup (invalid->message);
      else {
        g_free (config->callback_listen);
        config->callback_listen = g_value_dup_string (value);
      }
      break;
    }
    case PROP_CALLBACK_PUBLIC_URL:{
      const gchar *url = g_value_get_string (value);
      g_autoptr (GError) invalid = NULL;

      if (url && !rd_public_url_validate (url, &invalid))
        refusal = g_strdup (invalid->message);
      else {
        g_free (config->callback_public_url);
        config->callback_public_url = g_value_dup_string (value);
      }
      break;
    }
    case PROP_LATENCY_BUDGET:
      config->latency_budget = g_value_get_uint64 (value);
      break;
    case PROP_ON_ERROR:
      config->on_error = g_value_get_enum (value);
      break;
    default:
      return FALSE;
  }
  if (refusal)
    refuse_setting (config, object, pspec, refusal);
  return TRUE;
}

gboolean
rd_sink_config_get (const RdSinkConfig * config, guint prop_id, GValue * value)
{
  RdSinkConfig *c = (RdSinkConfig *) config;

  switch (prop_id) {
    case PROP_API_URL:
      g_value_set_string (value, c->api_url);
      break;
    case PROP_LOCATION:
      g_value_set_string (value, c->location);
      break;
    case PROP_CONTAINER:
      g_value_set_enum (value, c->container);
      break;
    case PROP_SEGMENT_DURATION:
      g_value_set_uint64 (value, c->segment_duration);
      break;
    case PROP_MAX_FILES:
      g_value_set_uint (value, c->max_files);
      break;
    case PROP_MAX_BATCH_BYTES:
      g_value_set_uint64 (value, c->max_batch_bytes);
      break;
    case PROP_BATCH_TIMEOUT:
      g_value_set_uint64 (value, c->batch_timeout);
      break;
    case PROP_UPLOAD_MODE:
      g_value_set_enum (value, c->upload_mode);
      break;
    case PROP_CALLBACK_URL:
      g_value_set_string (value, config->settings.callback_url);
      break;
    case PROP_INTELLIGENCE:
    case PROP_SEARCH_IDENTITY:
    case PROP_VISUALIZE:
    case PROP_AUDIO_SOURCE_TRACING:
    case PROP_USE_LLM:
    case PROP_ZERO_RETENTION_MODE:{
      gint v = *boolean_setting (c, prop_id);
      g_value_set_boolean (value, v == RD_SETTING_UNSET ?
          boolean_setting_default (prop_id) : v);
      break;
    }
    case PROP_FRAME_LENGTH:
      g_value_set_uint (value, config->settings.frame_length);
      break;
    case PROP_START_REGION:
    case PROP_END_REGION:
    case PROP_MAX_VIDEO_SECS:{
      gdouble v = *region_setting (c, prop_id);
      g_value_set_double (value, v < 0 ? DEFAULT_REGION : v);
      break;
    }
    case PROP_POLL_INTERVAL:
      g_value_set_uint64 (value, c->poll_interval);
      break;
    case PROP_POLL_MAX_INTERVAL:
      g_value_set_uint64 (value, c->poll_max_interval);
      break;
    case PROP_POLL_TIMEOUT:
      g_value_set_uint64 (value, c->poll_timeout);
      break;
    case PROP_FETCH_RESULTS:
      g_value_set_boolean (value, c->fetch_results);
      break;
    case PROP_MAX_RETRIES:
      g_value_set_uint (value, c->max_retries);
      break;
    case PROP_MAX_IN_FLIGHT:
      g_value_set_uint (value, c->max_in_flight);
      break;
    case PROP_WAIT_ON_EOS:
      g_value_set_boolean (value, c->wait_on_eos);
      break;
    case PROP_KEEP_FILES:
      g_value_set_boolean (value, c->keep_files);
      break;
    case PROP_MAX_SPOOL_BYTES:
      g_value_set_uint64 (value, c->max_spool_bytes);
      break;
    case PROP_ASYNC:
      g_value_set_boolean (value, c->async);
      break;
    case PROP_CALLBACK_LISTEN:
      g_value_set_string (value, c->callback_listen);
      break;
    case PROP_CALLBACK_PUBLIC_URL:
      g_value_set_string (value, c->callback_public_url);
      break;
    case PROP_LATENCY_BUDGET:
      g_value_set_uint64 (value, c->latency_budget);
      break;
    case PROP_MAX_OBSERVED_LATENCY:
      g_value_set_uint64 (value, c->max_observed_latency);
      break;
    case PROP_ON_ERROR:
      g_value_set_enum (value, c->on_error);
      break;
    default:
      return FALSE;
  }
  return TRUE;
}

#define PARAM_FLAGS (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)
#define PARAM_READY (PARAM_FLAGS | GST_PARAM_MUTABLE_READY)

static void
install_boolean_setting (GObjectClass * gobject_class, guint prop_id,
    const gchar * name, const gchar * blurb, gboolean def)
{
  g_object_class_install_property (gobject_class, prop_id,
      g_param_spec_boolean (name, name, blurb, def, PARAM_FLAGS));
}

static void
install_region_setting (GObjectClass * gobject_class, guint prop_id,
    const gchar * name, const gchar * blurb)
{
  g_object_class_install_property (gobject_class, prop_id,
      g_param_spec_double (name, name, blurb, -1.0, G_MAXDOUBLE,
          DEFAULT_REGION, PARAM_FLAGS));
}

void
rd_sink_config_install_properties (GObjectClass * gobject_class)
{
  /**
   * GstResembleDetectSink:api-url:
   *
   * Base URL of the API; `{api-url}/detect/batch` is where batches go.
   */
  g_object_class_install_property (gobject_class, PROP_API_URL,
      g_param_spec_string ("api-url", "API URL",
          "Base URL of the Resemble API (http or https); the default is the "
          "production service", RD_SINK_DEFAULT_API_URL, PARAM_READY));
  /**
   * GstResembleDetectSink:api-token:
   *
   * Bearer token. Write-only: it is never printed, logged or readable back.
   * When unset, the RESEMBLE_API_TOKEN environment variable is used.
   */
  g_object_class_install_property (gobject_class, PROP_API_TOKEN,
      g_param_spec_string ("api-token", "API token",
          "Bearer token of the API (write-only; default: the "
          "RESEMBLE_API_TOKEN environment variable)", NULL,
          G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  /**
   * GstResembleDetectSink:location:
   *
   * The spool directory. Unset, it is
   * `{user cache dir}/gst-resembledetect/{program}/{pipeline}/.../{element}`
   * (each name with bytes other than letters, digits, `-`, `_` and a `.`
   * not first written as `%XX`): the same on every run of the same
   * pipeline, so that a restart finishes what the last run left. The
   * element locks it (`{location}/.lock`) when it starts (READY to PAUSED)
   * until it stops; another element or process on it fails to start with
   * `GST_RESOURCE_ERROR_BUSY`.
   */
  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "Spool directory for segment files and manifests, locked while "
          "the element runs (default: {user cache dir}/gst-resembledetect/"
          "{program}/{pipeline}/.../{element}, the same after a restart; "
          "two processes running the same pipeline with default names "
          "would share it, and the second fails to start)", NULL, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_CONTAINER,
      g_param_spec_enum ("container", "Container",
          "Container of audio/video segments; auto picks from the caps",
          GST_TYPE_RESEMBLE_DETECT_CONTAINER, DEFAULT_CONTAINER, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_SEGMENT_DURATION,
      g_param_spec_uint64 ("segment-duration", "Segment duration",
          "Length of each audio/video segment (ns)", GST_MSECOND,
          G_MAXUINT64 - 1, DEFAULT_SEGMENT_DURATION, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_MAX_FILES,
      g_param_spec_uint ("max-files", "Max files",
          "Files per batch (the API takes at most 50)", 1, RD_BATCH_MAX_FILES,
          DEFAULT_MAX_FILES, PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_MAX_BATCH_BYTES,
      g_param_spec_uint64 ("max-batch-bytes", "Max batch bytes",
          "Bytes per batch (the API takes at most 500 MB = 500000000 bytes)",
          1, RD_BATCH_MAX_BYTES, DEFAULT_MAX_BATCH_BYTES, PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_BATCH_TIMEOUT,
      g_param_spec_uint64 ("batch-timeout", "Batch timeout",
          "Close a non-empty batch this long after its first file (ns, 0 = "
          "off)", 0, G_MAXUINT64 - 1, DEFAULT_BATCH_TIMEOUT, PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_UPLOAD_MODE,
      g_param_spec_enum ("upload-mode", "Upload mode",
          "How a batch is uploaded: repeated files[] parts or one zip",
          GST_TYPE_RESEMBLE_DETECT_UPLOAD_MODE, DEFAULT_UPLOAD_MODE,
          PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_CALLBACK_URL,
      g_param_spec_string ("callback-url", "Callback URL",
          "URL the API calls when a batch is terminal (callback_url)", NULL,
          PARAM_FLAGS));
  install_boolean_setting (gobject_class, PROP_INTELLIGENCE, "intelligence",
      "Run multimodal intelligence analysis on every file (intelligence)",
      DEFAULT_INTELLIGENCE);
  install_boolean_setting (gobject_class, PROP_SEARCH_IDENTITY,
      "search-identity", "Search the team's saved identities, audio and "
      "video (search_identity)", DEFAULT_SEARCH_IDENTITY);
  install_boolean_setting (gobject_class, PROP_VISUALIZE, "visualize",
      "Generate visualization artifacts (visualize)", DEFAULT_VISUALIZE);
  install_boolean_setting (gobject_class, PROP_AUDIO_SOURCE_TRACING,
      "audio-source-tracing", "Audio source tracing on audio files "
      "(audio_source_tracing_enabled)", DEFAULT_AUDIO_SOURCE_TRACING);
  install_boolean_setting (gobject_class, PROP_USE_LLM, "use-llm",
      "LLM-assisted video analysis (use_llm)", DEFAULT_USE_LLM);
  install_boolean_setting (gobject_class, PROP_ZERO_RETENTION_MODE,
      "zero-retention-mode", "Zero Retention Mode for every file "
      "(zero_retention_mode)", DEFAULT_ZERO_RETENTION_MODE);
  g_object_class_install_property (gobject_class, PROP_FRAME_LENGTH,
      g_param_spec_uint ("frame-length", "Frame length",
          "Window size in seconds, audio and video (frame_length; 0 = unset)",
          0, 4, DEFAULT_FRAME_LENGTH, PARAM_FLAGS));
  install_region_setting (gobject_class, PROP_START_REGION, "start-region",
      "Start of the analysed region in seconds (start_region; -1 = unset)");
  install_region_setting (gobject_class, PROP_END_REGION, "end-region",
      "End of the analysed region in seconds (end_region; -1 = unset)");
  install_region_setting (gobject_class, PROP_MAX_VIDEO_SECS,
      "max-video-secs", "Cap of the processed video duration in seconds "
      "(max_video_secs; -1 = unset)");
  g_object_class_install_property (gobject_class, PROP_POLL_INTERVAL,
      g_param_spec_uint64 ("poll-interval", "Poll interval",
          "First interval between batch status polls (ns, at least 1 s)",
          MIN_POLL_INTERVAL, G_MAXUINT64 - 1, DEFAULT_POLL_INTERVAL,
          PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_POLL_MAX_INTERVAL,
      g_param_spec_uint64 ("poll-max-interval", "Poll max interval",
          "Longest interval between polls, reached by backing off (ns)",
          MIN_POLL_INTERVAL, G_MAXUINT64 - 1, DEFAULT_POLL_MAX_INTERVAL,
          PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_POLL_TIMEOUT,
      g_param_spec_uint64 ("poll-timeout", "Poll timeout",
          "Every batch ends within this long of its closing, retries, "
          "backoffs and polling included; EOS is held no longer (ns)",
          GST_SECOND, G_MAXUINT64 - 1, DEFAULT_POLL_TIMEOUT, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_FETCH_RESULTS,
      g_param_spec_boolean ("fetch-results", "Fetch results",
          "Fetch every file's verdict once its batch is terminal",
          DEFAULT_FETCH_RESULTS, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_MAX_RETRIES,
      g_param_spec_uint ("max-retries", "Max retries",
          "Retries of a failed request (network, 5xx, 429)", 0, 100,
          DEFAULT_MAX_RETRIES, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_MAX_IN_FLIGHT,
      g_param_spec_uint ("max-in-flight", "Max in flight",
          "Batches submitted and not yet terminal", 1, 64,
          DEFAULT_MAX_IN_FLIGHT, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_WAIT_ON_EOS,
      g_param_spec_boolean ("wait-on-eos", "Wait on EOS",
          "Hold EOS until every batch is terminal or has failed",
          DEFAULT_WAIT_ON_EOS, PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_KEEP_FILES,
      g_param_spec_boolean ("keep-files", "Keep files",
          "Keep segment files after their batch is terminal",
          DEFAULT_KEEP_FILES, PARAM_READY));
  g_object_class_install_property (gobject_class, PROP_MAX_SPOOL_BYTES,
      g_param_spec_uint64 ("max-spool-bytes", "Max spool bytes",
          "Spool ceiling: past it new files are skipped with a message",
          1, G_MAXUINT64, DEFAULT_MAX_SPOOL_BYTES, PARAM_FLAGS));
  /**
   * GstResembleDetectSink:on-error:
   *
   * What a batch that cannot reach a terminal state (the API refused it or
   * could not be reached within the retries) does: `warn` posts a warning
   * and the batch-error message, and the pipeline goes on (24/7 channels;
   * the batch stays on disk); `error` makes the first such batch an element
   * error, so that a script sees it in its exit status (batch jobs).
   */
  g_object_class_install_property (gobject_class, PROP_ON_ERROR,
      g_param_spec_enum ("on-error", "On error",
          "What a failed batch does: warn (the pipeline goes on) or error "
          "(the first one is an element error)",
          GST_TYPE_RESEMBLE_DETECT_ON_ERROR, DEFAULT_ON_ERROR, PARAM_FLAGS));
  /**
   * GstResembleDetectSink:async:
   *
   * Like a base sink's: go to PAUSED asynchronously, once every pad has had
   * data. Set it to FALSE to add the element to a pipeline that is already
   * playing without the pipeline going back to PAUSED meanwhile.
   */
  g_object_class_install_property (gobject_class, PROP_ASYNC,
      g_param_spec_boolean ("async", "Async",
          "Go to PAUSED asynchronously, once every pad has had data "
          "(preroll), as sinks do", DEFAULT_ASYNC, PARAM_FLAGS));

  /**
   * GstResembleDetectSink:callback-listen:
   *
   * "host:port" of an embedded receiver for the API's batch callbacks, run
   * on the element's network thread: 127.0.0.1 unless another address is
   * named, port 0 for any free one. Each batch is sent a callback_url of
   * callback-public-url plus a secret path; a callback is only a hint,
   * confirmed by one GET of the batch, and polling goes on at
   * poll-max-interval. Replaces callback-url.
   */
  g_object_class_install_property (gobject_class, PROP_CALLBACK_LISTEN,
      g_param_spec_string ("callback-listen", "Callback listen address",
          "host:port of an embedded receiver for the API's callbacks "
          "(loopback unless another address is named; NULL: off)", NULL,
          PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_CALLBACK_PUBLIC_URL,
      g_param_spec_string ("callback-public-url", "Callback public URL",
          "URL the API calls to reach callback-listen (e.g. behind a reverse "
          "proxy); a secret per-batch path is appended (NULL: the address "
          "listened on)", NULL, PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_LATENCY_BUDGET,
      g_param_spec_uint64 ("latency-budget", "Latency budget",
          "Post a warning naming the batch when a verdict comes later than "
          "this after its file was closed (ns, 0 = off)", 0, G_MAXUINT64, 0,
          PARAM_FLAGS));
  g_object_class_install_property (gobject_class, PROP_MAX_OBSERVED_LATENCY,
      g_param_spec_uint64 ("max-observed-latency", "Maximum observed latency",
          "Longest time from a file's close to its verdict on the bus (ns)",
          0, G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS
          | GST_PARAM_MUTABLE_PLAYING));

}

void
rd_sink_config_init (RdSinkConfig * config)
{
  memset (config, 0, sizeof (*config));
  config->api_url = g_strdup (RD_SINK_DEFAULT_API_URL);
  config->container = DEFAULT_CONTAINER;
  config->segment_duration = DEFAULT_SEGMENT_DURATION;
  config->max_files = DEFAULT_MAX_FILES;
  config->max_batch_bytes = DEFAULT_MAX_BATCH_BYTES;
  config->batch_timeout = DEFAULT_BATCH_TIMEOUT;
  config->upload_mode = DEFAULT_UPLOAD_MODE;
  rd_settings_init (&config->settings);
  config->poll_interval = DEFAULT_POLL_INTERVAL;
  config->poll_max_interval = DEFAULT_POLL_MAX_INTERVAL;
  config->poll_timeout = DEFAULT_POLL_TIMEOUT;
  config->fetch_results = DEFAULT_FETCH_RESULTS;
  config->max_retries = DEFAULT_MAX_RETRIES;
  config->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
  config->wait_on_eos = DEFAULT_WAIT_ON_EOS;
  config->keep_files = DEFAULT_KEEP_FILES;
  config->max_spool_bytes = DEFAULT_MAX_SPOOL_BYTES;
  config->on_error = DEFAULT_ON_ERROR;
  config->async = DEFAULT_ASYNC;
  config->refused = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
}

void
rd_sink_config_clear (RdSinkConfig * config)
{
  g_clear_pointer (&config->api_url, g_free);
  if (config->api_token)
    memset (config->api_token, 0, strlen (config->api_token));
  g_clear_pointer (&config->api_token, g_free);
  g_clear_pointer (&config->location, g_free);
  g_clear_pointer (&config->callback_listen, g_free);
  g_clear_pointer (&config->callback_public_url, g_free);
  rd_settings_clear (&config->settings);
  g_clear_pointer (&config->refused, g_hash_table_unref);
}

void
rd_sink_config_copy (RdSinkConfig * dest, const RdSinkConfig * src)
{
  *dest = *src;
  dest->api_url = g_strdup (src->api_url);
  dest->api_token = g_strdup (src->api_token);
  dest->location = g_strdup (src->location);
  dest->callback_listen = g_strdup (src->callback_listen);
  dest->callback_public_url = g_strdup (src->callback_public_url);
  rd_settings_init (&dest->settings);
  rd_settings_copy (&dest->settings, &src->settings);
  dest->refused = NULL;
}

gchar *
rd_sink_config_dup_token (const RdSinkConfig * config)
{
  const gchar *env = g_getenv ("RESEMBLE_API_TOKEN");

  if (config->api_token && *config->api_token)
    return g_strdup (config->api_token);
  return env && *env ? g_strdup (env) : NULL;
}

gboolean
rd_sink_config_check (const RdSinkConfig * config, gboolean token_required,
    GError ** error)
{
  g_autoptr (GString) refused = g_string_new (NULL);
  g_autoptr (GError) invalid = NULL;
  g_autofree gchar *token = NULL;
  GHashTableIter iter;
  gpointer name, reason;

  g_hash_table_iter_init (&iter, config->refused);
  while (g_hash_table_iter_next (&iter, &name, &reason))
    g_string_append_printf (refused, "%s%s (%s)", refused->len ? "; " : "",
        (const gchar *) name, (const gchar *) reason);
  if (refused->len > 0) {
    g_set_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS,
        "Refused setting: %s.", refused->str);
    return FALSE;
  }
  if (!rd_settings_validate (&config->settings, &invalid)) {
    g_set_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS,
        "%s.", invalid->message);
    return FALSE;
  }
  token = rd_sink_config_dup_token (config);
  if (token)
    memset (token, 0, strlen (token));
  else if (token_required) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED,
        "No API token: set the api-token property or the "
        "RESEMBLE_API_TOKEN environment variable.");
    return FALSE;
  }
  return TRUE;
}
