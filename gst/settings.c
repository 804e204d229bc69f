/* The shared settings of a batch: the form fields every submission carries
 * next to its files. The wire form is also what manifest.json stores, so a
 * batch resubmitted after a restart sends exactly what was sent the first
 * time; that is why doubles are printed in the C locale with the shortest
 * text that reads back to the same value. */

#include "settings.h"
#include "errors.h"

#include <gio/gio.h>
#include <math.h>
#include <string.h>

/* Wire names, in the order the API documents them (and foreach reports). */
#define FIELD_CALLBACK_URL "callback_url"
#define FIELD_INTELLIGENCE "intelligence"
#define FIELD_SEARCH_IDENTITY "search_identity"
#define FIELD_VISUALIZE "visualize"
#define FIELD_AUDIO_SOURCE_TRACING "audio_source_tracing_enabled"
#define FIELD_FRAME_LENGTH "frame_length"
#define FIELD_START_REGION "start_region"
#define FIELD_END_REGION "end_region"
#define FIELD_MAX_VIDEO_SECS "max_video_secs"
#define FIELD_USE_LLM "use_llm"
#define FIELD_ZERO_RETENTION_MODE "zero_retention_mode"

#define FRAME_LENGTH_MIN 1
#define FRAME_LENGTH_MAX 4

/* Negative means unset; NaN counts as set so that validation refuses it
 * rather than silently dropping it. */
static gboolean
double_is_set (gdouble value)
{
  return !(value < 0.0);
}

static gboolean
callback_url_is_set (const gchar * url)
{
  return url != NULL && *url != '\0';
}

void
rd_settings_init (RdSettings * settings)
{
  g_return_if_fail (settings != NULL);

  settings->callback_url = NULL;
  settings->intelligence = RD_SETTING_UNSET;
  settings->search_identity = RD_SETTING_UNSET;
  settings->visualize = RD_SETTING_UNSET;
  settings->audio_source_tracing = RD_SETTING_UNSET;
  settings->use_llm = RD_SETTING_UNSET;
  settings->zero_retention_mode = RD_SETTING_UNSET;
  settings->frame_length = 0;
  settings->start_region = -1.0;
  settings->end_region = -1.0;
  settings->max_video_secs = -1.0;
}

void
rd_settings_clear (RdSettings * settings)
{
  g_return_if_fail (settings != NULL);

  g_free (settings->callback_url);
  rd_settings_init (settings);
}

void
rd_settings_copy (RdSettings * dest, const RdSettings * src)
{
  gchar *callback_url;

  g_return_if_fail (dest != NULL);
  g_return_if_fail (src != NULL);

  /* Duplicated before the struct copy so that dest == src works. */
  callback_url = g_strdup (src->callback_url);
  *dest = *src;
  dest->callback_url = callback_url;
}

/* g_ascii_dtostr always prints 17 significant digits (0.1 becomes
 * 0.10000000000000001); take the fewest digits that still read back to the
 * same double, so the wire carries what the user typed. */
static const gchar *
format_double (gchar * buf, gsize size, gdouble value)
{
  static const gchar *const formats[] = { "%.15g", "%.16g", "%.17g" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (formats); i++) {
    g_ascii_formatd (buf, size, formats[i], value);
    if (g_ascii_strtod (buf, NULL) == value)
      break;
  }
  return buf;
}

static gboolean
validate_callback_url (const gchar * url, GError ** error)
{
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GError) parse_error = NULL;
  const gchar *scheme;
  const gchar *host;

  uri = g_uri_parse (url, G_URI_FLAGS_NONE, &parse_error);
  if (uri == NULL) {
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
        FIELD_CALLBACK_URL " \"%s\" is not an absolute URI: %s", url,
        parse_error->message);
    return FALSE;
  }

  scheme = g_uri_get_scheme (uri);
  if (g_ascii_strcasecmp (scheme, "http") != 0
      && g_ascii_strcasecmp (scheme, "https") != 0) {
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
        FIELD_CALLBACK_URL " \"%s\" is not an http or https URL", url);
    return FALSE;
  }

  host = g_uri_get_host (uri);
  if (host == NULL || *host == '\0') {
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
        FIELD_CALLBACK_URL " \"%s\" has no host", url);
    return FALSE;
  }

  return TRUE;
}

static gboolean
validate_boolean (const gchar * name, gint value, GError ** error)
{
  if (value == RD_SETTING_UNSET || value == 0 || value == 1)
    return TRUE;

  g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
      "%s %d is not a boolean (-1 unset, 0 or 1)", name, value);
  return FALSE;
}

static gboolean
validate_region (const gchar * name, gdouble value, GError ** error)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!double_is_set (value) || isfinite (value))
    return TRUE;

  g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
      "%s %s is not a finite number of seconds >= 0", name,
      format_double (buf, sizeof buf, value));
  return FALSE;
}

gboolean
rd_settings_validate (const RdSettings * settings, GError ** error)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];
  gchar buf2[G_ASCII_DTOSTR_BUF_SIZE];

  g_return_val_if_fail (settings != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (callback_url_is_set (settings->callback_url)
      && !validate_callback_url (settings->callback_url, error))
    return FALSE;

  if (!validate_boolean (FIELD_INTELLIGENCE, settings->intelligence, error)
      || !validate_boolean (FIELD_SEARCH_IDENTITY, settings->search_identity,
          error)
      || !validate_boolean (FIELD_VISUALIZE, settings->visualize, error)
      || !validate_boolean (FIELD_AUDIO_SOURCE_TRACING,
          settings->audio_source_tracing, error)
      || !validate_boolean (FIELD_USE_LLM, settings->use_llm, error)
      || !validate_boolean (FIELD_ZERO_RETENTION_MODE,
          settings->zero_retention_mode, error))
    return FALSE;

  if (settings->frame_length != 0
      && (settings->frame_length < FRAME_LENGTH_MIN
          || settings->frame_length > FRAME_LENGTH_MAX)) {
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
        FIELD_FRAME_LENGTH " %u is outside %d..%d", settings->frame_length,
        FRAME_LENGTH_MIN, FRAME_LENGTH_MAX);
    return FALSE;
  }

  if (!validate_region (FIELD_START_REGION, settings->start_region, error)
      || !validate_region (FIELD_END_REGION, settings->end_region, error))
    return FALSE;

  if (double_is_set (settings->start_region)
      && double_is_set (settings->end_region)
      && !(settings->end_region > settings->start_region)) {
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
        FIELD_END_REGION " %s is not after " FIELD_START_REGION " %s",
        format_double (buf, sizeof buf, settings->end_region),
        format_double (buf2, sizeof buf2, settings->start_region));
    return FALSE;
  }

  if (double_is_set (settings->max_video_secs)
      && !(settings->max_video_secs > 0.0
          && isfinite (settings->max_video_secs))) {
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
        FIELD_MAX_VIDEO_SECS " %s is not a finite number of seconds > 0",
        format_double (buf, sizeof buf, settings->max_video_secs));
    return FALSE;
  }

  return TRUE;
}

static void
emit_boolean (const gchar * name, gint value, RdSettingsFieldFunc func,
    gpointer user_data)
{
  if (value == RD_SETTING_UNSET)
    return;
  func (name, value ? "true" : "false", user_data);
}

static void
emit_double (const gchar * name, gdouble value, RdSettingsFieldFunc func,
    gpointer user_data)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!double_is_set (value))
    return;
  func (name, format_double (buf, sizeof buf, value), user_data);
}

void
rd_settings_foreach_field (const RdSettings * settings,
    RdSettingsFieldFunc func, gpointer user_data)
{
  g_return_if_fail (settings != NULL);
  g_return_if_fail (func != NULL);

  if (callback_url_is_set (settings->callback_url))
    func (FIELD_CALLBACK_URL, settings->callback_url, user_data);
  emit_boolean (FIELD_INTELLIGENCE, settings->intelligence, func, user_data);
  emit_boolean (FIELD_SEARCH_IDENTITY, settings->search_identity, func,
      user_data);
  emit_boolean (FIELD_VISUALIZE, settings->visualize, func, user_data);
  emit_boolean (FIELD_AUDIO_SOURCE_TRACING, settings->audio_source_tracing,
      func, user_data);
  if (settings->frame_length != 0) {
    gchar buf[16];

    g_snprintf (buf, sizeof buf, "%u", settings->frame_length);
    func (FIELD_FRAME_LENGTH, buf, user_data);
  }
  emit_double (FIELD_START_REGION, settings->start_region, func, user_data);
  emit_double (FIELD_END_REGION, settings->end_region, func, user_data);
  emit_double (FIELD_MAX_VIDEO_SECS, settings->max_video_secs, func, user_data);
  emit_boolean (FIELD_USE_LLM, settings->use_llm, func, user_data);
  emit_boolean (FIELD_ZERO_RETENTION_MODE, settings->zero_retention_mode,
      func, user_data);
}

static gboolean
parse_boolean (const gchar * name, const gchar * value, gint * out,
    GError ** error)
{
  if (g_strcmp0 (value, "true") == 0) {
    *out = 1;
    return TRUE;
  }
  if (g_strcmp0 (value, "false") == 0) {
    *out = 0;
    return TRUE;
  }
  g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
      "%s \"%s\" is not \"true\" or \"false\"", name, value);
  return FALSE;
}

/* Only values that read back as "set" are accepted: a negative number would
 * otherwise turn into "unset" without a word. */
static gboolean
parse_double (const gchar * name, const gchar * value, gdouble * out,
    GError ** error)
{
  gchar *end = NULL;
  gdouble parsed;

  parsed = g_ascii_strtod (value, &end);
  if (*value == '\0' || g_ascii_isspace (*value) || end == NULL || *end != '\0'
      || !isfinite (parsed) || parsed < 0.0) {
    g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
        "%s \"%s\" is not a finite number >= 0", name, value);
    return FALSE;
  }
  /* "-0" would otherwise be written back as "-0". */
  *out = parsed == 0.0 ? 0.0 : parsed;
  return TRUE;
}

gboolean
rd_settings_set_field (RdSettings * settings, const gchar * name,
    const gchar * value, GError ** error)
{
  g_return_val_if_fail (settings != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (value != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (strcmp (name, FIELD_CALLBACK_URL) == 0) {
    g_free (settings->callback_url);
    settings->callback_url = *value != '\0' ? g_strdup (value) : NULL;
    return TRUE;
  }
  if (strcmp (name, FIELD_INTELLIGENCE) == 0)
    return parse_boolean (name, value, &settings->intelligence, error);
  if (strcmp (name, FIELD_SEARCH_IDENTITY) == 0)
    return parse_boolean (name, value, &settings->search_identity, error);
  if (strcmp (name, FIELD_VISUALIZE) == 0)
    return parse_boolean (name, value, &settings->visualize, error);
  if (strcmp (name, FIELD_AUDIO_SOURCE_TRACING) == 0)
    return parse_boolean (name, value, &settings->audio_source_tracing, error);
  if (strcmp (name, FIELD_USE_LLM) == 0)
    return parse_boolean (name, value, &settings->use_llm, error);
  if (strcmp (name, FIELD_ZERO_RETENTION_MODE) == 0)
    return parse_boolean (name, value, &settings->zero_retention_mode, error);
  if (strcmp (name, FIELD_FRAME_LENGTH) == 0) {
    guint64 parsed;

    if (!g_ascii_string_to_unsigned (value, 10, FRAME_LENGTH_MIN,
            FRAME_LENGTH_MAX, &parsed, NULL)) {
      g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
          "%s \"%s\" is not an integer in %d..%d", name, value,
          FRAME_LENGTH_MIN, FRAME_LENGTH_MAX);
      return FALSE;
    }
    settings->frame_length = (guint) parsed;
    return TRUE;
  }
  if (strcmp (name, FIELD_START_REGION) == 0)
    return parse_double (name, value, &settings->start_region, error);
  if (strcmp (name, FIELD_END_REGION) == 0)
    return parse_double (name, value, &settings->end_region, error);
  if (strcmp (name, FIELD_MAX_VIDEO_SECS) == 0)
    return parse_double (name, value, &settings->max_video_secs, error);

  g_set_error (error, RD_ERROR, RD_ERROR_FORMAT,
      "unknown setting \"%s\"", name);
  return FALSE;
}

const gchar *
rd_upload_mode_to_string (RdUploadMode mode)
{
  switch (mode) {
    case RD_UPLOAD_MODE_FILES:
      return "files";
    case RD_UPLOAD_MODE_ZIP:
      return "zip";
  }
  g_return_val_if_reached (NULL);
}

gboolean
rd_upload_mode_from_string (const gchar * str, RdUploadMode * mode)
{
  g_return_val_if_fail (mode != NULL, FALSE);

  if (g_strcmp0 (str, "files") == 0)
    *mode = RD_UPLOAD_MODE_FILES;
  else if (g_strcmp0 (str, "zip") == 0)
    *mode = RD_UPLOAD_MODE_ZIP;
  else
    return FALSE;
  return TRUE;
}

gboolean
rd_listen_address_parse (const gchar * text, gchar ** host, guint * port,
    GError ** error)
{
  g_autofree gchar *name = NULL;
  g_autoptr (GInetAddress) address = NULL;
  const gchar *port_text = text, *colon;
  gchar *end = NULL;
  guint64 value;

  if (text == NULL || *text == '\0')
    goto invalid;
  if (text[0] == '[') {
    const gchar *close = strchr (text, ']');

    if (close == NULL || close[1] != ':')
      goto invalid;
    name = g_strndup (text + 1, close - text - 1);
    port_text = close + 2;
  } else if ((colon = strrchr (text, ':'))) {
    if (strchr (text, ':') != colon)
      goto invalid;             /* a bare IPv6 address needs brackets */
    name = g_strndup (text, colon - text);
    port_text = colon + 1;
  }
  if (name == NULL || *name == '\0') {
    g_free (name);
    name = g_strdup ("127.0.0.1");
  } else if (g_ascii_strcasecmp (name, "localhost") == 0) {
    g_free (name);
    name = g_strdup ("127.0.0.1");
  }
  address = g_inet_address_new_from_string (name);
  if (address == NULL) {
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID, "callback-listen \"%s\": "
        "\"%s\" is not an IP address", text, name);
    return FALSE;
  }
  if (!g_ascii_isdigit (*port_text))
    goto invalid;
  value = g_ascii_strtoull (port_text, &end, 10);
  if (*end != '\0' || value > 65535)
    goto invalid;
  if (host)
    *host = g_steal_pointer (&name);
  if (port)
    *port = (guint) value;
  return TRUE;

invalid:
  g_set_error (error, RD_ERROR, RD_ERROR_INVALID, "callback-listen \"%s\" is "
      "not host:port (for example 127.0.0.1:8090, [::1]:8090 or 8090)",
      text ? text : "");
  return FALSE;
}

gboolean
rd_public_url_validate (const gchar * url, GError ** error)
{
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  const gchar *scheme = uri ? g_uri_get_scheme (uri) : NULL;

  if (uri == NULL || (g_ascii_strcasecmp (scheme, "http") != 0
          && g_ascii_strcasecmp (scheme, "https") != 0)
      || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0'
      || g_uri_get_query (uri) || g_uri_get_fragment (uri)) {
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID, "callback-public-url "
        "\"%s\" is not an absolute http(s) URL without query or fragment", url);
    return FALSE;
  }
  return TRUE;
}
