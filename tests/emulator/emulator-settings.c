/* The batch endpoint's shared settings, as the emulator reads them from the
 * form fields: booleans, frame_length 1..4, numeric regions, an http(s)
 * callback_url. A malformed value is a 400 that names the field; fields the
 * API does not list are ignored (but still reported in the stats). */
#include "emulator-private.h"

#include <libsoup/soup.h>
#include <math.h>
#include <string.h>

typedef enum
{
  SETTING_BOOLEAN,
  SETTING_FRAME_LENGTH,
  SETTING_SECONDS,
  SETTING_URL,
} SettingKind;

typedef struct
{
  const gchar *name;
  const gchar *canonical;       /* aliases share it, for the duplicate check */
  SettingKind kind;
  gsize offset;
} SettingSpec;

#define SETTING_OFFSET(member) G_STRUCT_OFFSET (RdEmulatorSettings, member)

static const SettingSpec setting_specs[] = {
  {"callback_url", "callback_url", SETTING_URL, SETTING_OFFSET (callback_url)},
  {"intelligence", "intelligence", SETTING_BOOLEAN,
      SETTING_OFFSET (intelligence)},
  {"search_identity", "search_identity", SETTING_BOOLEAN,
      SETTING_OFFSET (search_identity)},
  {"visualize", "visualize", SETTING_BOOLEAN, SETTING_OFFSET (visualize)},
  {"audio_source_tracing_enabled", "audio_source_tracing_enabled",
      SETTING_BOOLEAN, SETTING_OFFSET (audio_source_tracing)},
  /* The single-detect endpoint's spelling. */
  {"audio_source_tracing", "audio_source_tracing_enabled", SETTING_BOOLEAN,
      SETTING_OFFSET (audio_source_tracing)},
  {"use_llm", "use_llm", SETTING_BOOLEAN, SETTING_OFFSET (use_llm)},
  {"zero_retention_mode", "zero_retention_mode", SETTING_BOOLEAN,
      SETTING_OFFSET (zero_retention_mode)},
  /* What older docs call zero retention. */
  {"privacy_mode", "zero_retention_mode", SETTING_BOOLEAN,
      SETTING_OFFSET (zero_retention_mode)},
  {"frame_length", "frame_length", SETTING_FRAME_LENGTH,
      SETTING_OFFSET (frame_length)},
  {"start_region", "start_region", SETTING_SECONDS,
      SETTING_OFFSET (start_region)},
  {"end_region", "end_region", SETTING_SECONDS, SETTING_OFFSET (end_region)},
  {"max_video_secs", "max_video_secs", SETTING_SECONDS,
      SETTING_OFFSET (max_video_secs)},
};

/* *INDENT-OFF* */
static gboolean
field_error (gchar ** bad_field, const gchar * field, GError ** error,
    const gchar * format, ...) G_GNUC_PRINTF (4, 5);
/* *INDENT-ON* */

static gboolean
field_error (gchar ** bad_field, const gchar * field, GError ** error,
    const gchar * format, ...)
{
  va_list args;
  gchar *message;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, RD_UPLOAD_ERROR, RD_UPLOAD_ERROR_INVALID,
      message);
  g_free (message);
  *bad_field = g_strdup (field);
  return FALSE;
}

static gboolean
parse_boolean (const gchar * value, gboolean * out)
{
  if (g_ascii_strcasecmp (value, "true") == 0 || strcmp (value, "1") == 0) {
    *out = TRUE;
    return TRUE;
  }
  if (g_ascii_strcasecmp (value, "false") == 0 || strcmp (value, "0") == 0) {
    *out = FALSE;
    return TRUE;
  }
  return FALSE;
}

static gboolean
parse_seconds (const gchar * value, gdouble * out)
{
  gchar *end = NULL;
  gdouble d;

  if (value[0] == '\0' || g_ascii_isspace (value[0]))
    return FALSE;
  d = g_ascii_strtod (value, &end);
  if (end == value || *end != '\0' || !isfinite (d) || d < 0)
    return FALSE;
  *out = d;
  return TRUE;
}

static gboolean
parse_http_url (const gchar * value)
{
  g_autoptr (GUri) uri = g_uri_parse (value, SOUP_HTTP_URI_FLAGS, NULL);

  return uri != NULL && g_uri_get_host (uri) != NULL
      && g_uri_get_host (uri)[0] != '\0'
      && (g_ascii_strcasecmp (g_uri_get_scheme (uri), "http") == 0
      || g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") == 0);
}

static gboolean
apply_setting (RdEmulatorSettings * settings, const SettingSpec * spec,
    const gchar * value, gchar ** bad_field, GError ** error)
{
  gpointer member = G_STRUCT_MEMBER_P (settings, spec->offset);
  guint64 n;

  switch (spec->kind) {
    case SETTING_BOOLEAN:
      if (!parse_boolean (value, member))
        return field_error (bad_field, spec->name, error,
            "%s must be a boolean (true or false), got '%s'", spec->name,
            value);
      return TRUE;
    case SETTING_FRAME_LENGTH:
      if (!g_ascii_string_to_unsigned (value, 10, 1, 4, &n, NULL))
        return field_error (bad_field, spec->name, error,
            "frame_length must be an integer from 1 to 4, got '%s'", value);
      *(guint *) member = n;
      return TRUE;
    case SETTING_SECONDS:
      if (!parse_seconds (value, member))
        return field_error (bad_field, spec->name, error,
            "%s must be a non-negative number of seconds, got '%s'",
            spec->name, value);
      return TRUE;
    case SETTING_URL:
      /* An empty field is a form's way of not sending one. */
      if (value[0] == '\0')
        return TRUE;
      if (!parse_http_url (value))
        return field_error (bad_field, spec->name, error,
            "callback_url must be an absolute http or https URL");
      g_free (*(gchar **) member);
      *(gchar **) member = g_strdup (value);
      return TRUE;
  }
  return TRUE;
}

gboolean
rd_emulator_settings_parse (RdEmulatorSettings * settings, GPtrArray * fields,
    gchar ** bad_field, GError ** error)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  guint i, j;

  memset (settings, 0, sizeof (*settings));
  settings->visualize = TRUE;
  settings->frame_length = 2;
  settings->start_region = -1;
  settings->end_region = -1;
  settings->max_video_secs = -1;
  *bad_field = NULL;

  for (i = 0; i < fields->len; i++) {
    const RdUploadField *field = g_ptr_array_index (fields, i);

    for (j = 0; j < G_N_ELEMENTS (setting_specs); j++) {
      const SettingSpec *spec = &setting_specs[j];

      if (strcmp (field->name, spec->name) != 0)
        continue;
      if (g_hash_table_contains (seen, spec->canonical))
        return field_error (bad_field, field->name, error,
            "field '%s' was sent more than once", field->name);
      g_hash_table_add (seen, (gpointer) spec->canonical);
      if (!apply_setting (settings, spec, field->value, bad_field, error))
        return FALSE;
    }
  }

  if (settings->max_video_secs == 0)
    return field_error (bad_field, "max_video_secs", error,
        "max_video_secs must be greater than 0");
  if (settings->start_region >= 0 && settings->end_region >= 0
      && settings->end_region <= settings->start_region)
    return field_error (bad_field, "end_region", error,
        "end_region must be greater than start_region");
  return TRUE;
}

void
rd_emulator_settings_clear (RdEmulatorSettings * settings)
{
  g_clear_pointer (&settings->callback_url, g_free);
}
