/* Unit tests of the shared batch settings: which fields are sent, in which
 * order and spelling, what the API would refuse, and that the wire form
 * reads back to the same settings. */

#include "batch.h"
#include "settings.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Every field set, to values whose wire form is known. */
static void
set_all_fields (RdSettings * settings)
{
  rd_settings_init (settings);
  settings->callback_url = g_strdup ("https://example.com/hook?a=1");
  settings->intelligence = TRUE;
  settings->search_identity = FALSE;
  settings->visualize = TRUE;
  settings->audio_source_tracing = FALSE;
  settings->use_llm = TRUE;
  settings->zero_retention_mode = FALSE;
  settings->frame_length = 3;
  settings->start_region = 1.5;
  settings->end_region = 12.25;
  settings->max_video_secs = 60;
}

static void
collect_field (const gchar * name, const gchar * value, gpointer user_data)
{
  g_ptr_array_add (user_data, g_strdup_printf ("%s=%s", name, value));
}

/* The fields foreach reports, as "name=value", NULL-terminated. */
static GStrv
collect_fields (const RdSettings * settings)
{
  GPtrArray *fields = g_ptr_array_new ();

  rd_settings_foreach_field (settings, collect_field, fields);
  g_ptr_array_add (fields, NULL);
  return (GStrv) g_ptr_array_free (fields, FALSE);
}

/* The wire value of one field, or NULL if it is not sent. */
static gchar *
wire_value (const RdSettings * settings, const gchar * name)
{
  g_auto (GStrv) fields = collect_fields (settings);
  g_autofree gchar *prefix = g_strconcat (name, "=", NULL);
  guint i;

  for (i = 0; fields[i] != NULL; i++) {
    if (g_str_has_prefix (fields[i], prefix))
      return g_strdup (fields[i] + strlen (prefix));
  }
  return NULL;
}

static void
assert_invalid (const RdSettings * settings, const gchar * field,
    const gchar * value)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (rd_settings_validate (settings, &error));
  g_assert_error (error, RD_ERROR, RD_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, field));
  g_assert_nonnull (strstr (error->message, value));
}

static void
assert_valid (const RdSettings * settings)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (rd_settings_validate (settings, &error));
  g_assert_no_error (error);
}

static void
test_init_sends_nothing (void)
{
  RdSettings settings;
  g_auto (GStrv) fields = NULL;

  rd_settings_init (&settings);
  fields = collect_fields (&settings);

  g_assert_cmpuint (g_strv_length (fields), ==, 0);
  rd_settings_clear (&settings);
}

static void
test_foreach_order (void)
{
  const gchar *expected[] = {
    "callback_url=https://example.com/hook?a=1",
    "intelligence=true",
    "search_identity=false",
    "visualize=true",
    "audio_source_tracing_enabled=false",
    "frame_length=3",
    "start_region=1.5",
    "end_region=12.25",
    "max_video_secs=60",
    "use_llm=true",
    "zero_retention_mode=false",
    NULL
  };
  RdSettings settings;
  g_auto (GStrv) fields = NULL;

  set_all_fields (&settings);
  fields = collect_fields (&settings);

  g_assert_cmpstrv (fields, expected);
  rd_settings_clear (&settings);
}

static void
test_foreach_only_set (void)
{
  const gchar *expected[] = {
    "visualize=false",
    "end_region=4",
    NULL
  };
  RdSettings settings;
  g_auto (GStrv) fields = NULL;

  rd_settings_init (&settings);
  settings.visualize = FALSE;
  settings.end_region = 4.0;
  fields = collect_fields (&settings);

  g_assert_cmpstrv (fields, expected);
  rd_settings_clear (&settings);
}

static void
test_foreach_empty_callback_url_not_sent (void)
{
  RdSettings settings;
  g_autofree gchar *value = NULL;

  rd_settings_init (&settings);
  settings.callback_url = g_strdup ("");
  value = wire_value (&settings, "callback_url");

  g_assert_null (value);
  rd_settings_clear (&settings);
}

static void
test_foreach_zero_region_is_set (void)
{
  RdSettings settings;
  g_autofree gchar *value = NULL;

  rd_settings_init (&settings);
  settings.start_region = 0.0;
  value = wire_value (&settings, "start_region");

  g_assert_cmpstr (value, ==, "0");
  rd_settings_clear (&settings);
}

static void
test_foreach_double_shortest (void)
{
  RdSettings settings;
  g_autofree gchar *tenth = NULL;
  g_autofree gchar *third = NULL;
  g_autofree gchar *big = NULL;

  rd_settings_init (&settings);
  settings.start_region = 0.1;
  settings.end_region = 1.0 / 3.0;
  settings.max_video_secs = 1e300;
  tenth = wire_value (&settings, "start_region");
  third = wire_value (&settings, "end_region");
  big = wire_value (&settings, "max_video_secs");

  g_assert_cmpstr (tenth, ==, "0.1");
  g_assert_cmpfloat (g_ascii_strtod (third, NULL), ==, 1.0 / 3.0);
  g_assert_cmpstr (big, ==, "1e+300");
  rd_settings_clear (&settings);
}

static const gchar *const comma_locales[] = {
  "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", NULL
};

static void
test_foreach_double_c_locale (void)
{
  g_autofree gchar *saved = g_strdup (setlocale (LC_NUMERIC, NULL));
  const gchar *locale = NULL;
  gchar printed[32];
  RdSettings settings;
  g_autofree gchar *value = NULL;
  g_autoptr (GError) error = NULL;
  guint i;

  for (i = 0; comma_locales[i] != NULL && locale == NULL; i++)
    locale = setlocale (LC_NUMERIC, comma_locales[i]);
  if (locale == NULL) {
    g_test_skip ("no locale with a decimal comma is installed");
    return;
  }
  /* The test only means something if the locale really uses a comma. */
  snprintf (printed, sizeof printed, "%.1f", 2.5);
  g_assert_cmpstr (printed, ==, "2,5");

  rd_settings_init (&settings);
  settings.start_region = 2.5;
  value = wire_value (&settings, "start_region");
  g_assert_cmpstr (value, ==, "2.5");

  settings.start_region = -1.0;
  g_assert_true (rd_settings_set_field (&settings, "start_region", "2.5",
          &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (settings.start_region, ==, 2.5);

  setlocale (LC_NUMERIC, saved);
  rd_settings_clear (&settings);
}

static void
test_foreach_frame_length_decimal (void)
{
  RdSettings settings;
  g_autofree gchar *value = NULL;

  rd_settings_init (&settings);
  settings.frame_length = 4;
  value = wire_value (&settings, "frame_length");

  g_assert_cmpstr (value, ==, "4");
  rd_settings_clear (&settings);
}

static void
test_validate_unset_ok (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  assert_valid (&settings);
  rd_settings_clear (&settings);
}

static void
test_validate_all_set_ok (void)
{
  RdSettings settings;

  set_all_fields (&settings);
  assert_valid (&settings);
  rd_settings_clear (&settings);
}

static void
test_validate_frame_length_bounds_ok (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.frame_length = 1;
  assert_valid (&settings);
  settings.frame_length = 4;
  assert_valid (&settings);
  rd_settings_clear (&settings);
}

static void
test_validate_frame_length_5_refused (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.frame_length = 5;
  assert_invalid (&settings, "frame_length", "5");
  rd_settings_clear (&settings);
}

static void
test_validate_end_before_start_refused (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.start_region = 10.5;
  settings.end_region = 3.0;
  assert_invalid (&settings, "end_region", "3");
  rd_settings_clear (&settings);
}

static void
test_validate_end_equal_start_refused (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.start_region = 7.0;
  settings.end_region = 7.0;
  assert_invalid (&settings, "end_region", "7");
  rd_settings_clear (&settings);
}

static void
test_validate_end_alone_ok (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.end_region = 0.5;
  assert_valid (&settings);
  rd_settings_clear (&settings);
}

static void
test_validate_region_nan_refused (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.start_region = NAN;
  assert_invalid (&settings, "start_region", "nan");
  rd_settings_clear (&settings);
}

static void
test_validate_region_infinite_refused (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.end_region = INFINITY;
  assert_invalid (&settings, "end_region", "inf");
  rd_settings_clear (&settings);
}

static void
test_validate_max_video_secs_zero_refused (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.max_video_secs = 0.0;
  assert_invalid (&settings, "max_video_secs", "0");
  rd_settings_clear (&settings);
}

static void
test_validate_boolean_out_of_range_refused (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.use_llm = 2;
  assert_invalid (&settings, "use_llm", "2");
  rd_settings_clear (&settings);
}

static void
test_validate_callback_http_ok (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.callback_url = g_strdup ("http://127.0.0.1:8080/cb");
  assert_valid (&settings);
  rd_settings_clear (&settings);
}

static void
test_validate_callback_ftp_refused (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.callback_url = g_strdup ("ftp://example.com/cb");
  assert_invalid (&settings, "callback_url", "ftp://example.com/cb");
  rd_settings_clear (&settings);
}

static void
test_validate_callback_relative_refused (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.callback_url = g_strdup ("/hooks/batch");
  assert_invalid (&settings, "callback_url", "/hooks/batch");
  rd_settings_clear (&settings);
}

static void
test_validate_callback_without_host_refused (void)
{
  RdSettings settings;

  rd_settings_init (&settings);
  settings.callback_url = g_strdup ("https:/hooks/batch");
  assert_invalid (&settings, "callback_url", "https:/hooks/batch");
  rd_settings_clear (&settings);
}

static void
set_field_from_wire (const gchar * name, const gchar * value,
    gpointer user_data)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (rd_settings_set_field (user_data, name, value, &error));
  g_assert_no_error (error);
}

static void
test_set_field_round_trip (void)
{
  RdSettings original;
  RdSettings read_back;

  set_all_fields (&original);
  original.start_region = 0.1;
  original.end_region = 1.0 / 3.0;
  rd_settings_init (&read_back);

  rd_settings_foreach_field (&original, set_field_from_wire, &read_back);

  g_assert_cmpstr (read_back.callback_url, ==, original.callback_url);
  g_assert_cmpint (read_back.intelligence, ==, original.intelligence);
  g_assert_cmpint (read_back.search_identity, ==, original.search_identity);
  g_assert_cmpint (read_back.visualize, ==, original.visualize);
  g_assert_cmpint (read_back.audio_source_tracing, ==,
      original.audio_source_tracing);
  g_assert_cmpint (read_back.use_llm, ==, original.use_llm);
  g_assert_cmpint (read_back.zero_retention_mode, ==,
      original.zero_retention_mode);
  g_assert_cmpuint (read_back.frame_length, ==, original.frame_length);
  g_assert_cmpfloat (read_back.start_region, ==, original.start_region);
  g_assert_cmpfloat (read_back.end_region, ==, original.end_region);
  g_assert_cmpfloat (read_back.max_video_secs, ==, original.max_video_secs);
  rd_settings_clear (&original);
  rd_settings_clear (&read_back);
}

static void
assert_set_field_refused (const gchar * name, const gchar * value)
{
  RdSettings settings;
  g_autoptr (GError) error = NULL;

  rd_settings_init (&settings);
  g_assert_false (rd_settings_set_field (&settings, name, value, &error));
  g_assert_error (error, RD_ERROR, RD_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, name));
  rd_settings_clear (&settings);
}

static void
test_set_field_unknown_name_refused (void)
{
  assert_set_field_refused ("api_token", "secret");
}

static void
test_set_field_malformed_boolean_refused (void)
{
  assert_set_field_refused ("intelligence", "yes");
  assert_set_field_refused ("intelligence", "TRUE");
  assert_set_field_refused ("intelligence", "1");
}

static void
test_set_field_malformed_double_refused (void)
{
  assert_set_field_refused ("start_region", "1,5");
  assert_set_field_refused ("start_region", "abc");
  assert_set_field_refused ("start_region", "");
  assert_set_field_refused ("start_region", " 1");
  assert_set_field_refused ("start_region", "2s");
  assert_set_field_refused ("end_region", "nan");
  assert_set_field_refused ("max_video_secs", "inf");
}

static void
test_set_field_negative_double_refused (void)
{
  assert_set_field_refused ("start_region", "-1");
}

static void
test_set_field_frame_length_out_of_range_refused (void)
{
  assert_set_field_refused ("frame_length", "0");
  assert_set_field_refused ("frame_length", "5");
  assert_set_field_refused ("frame_length", "+2");
  assert_set_field_refused ("frame_length", "2.0");
}

static void
test_copy_is_deep (void)
{
  RdSettings original;
  RdSettings copy;

  set_all_fields (&original);
  rd_settings_copy (&copy, &original);
  g_clear_pointer (&original.callback_url, g_free);

  g_assert_cmpstr (copy.callback_url, ==, "https://example.com/hook?a=1");
  g_assert_cmpuint (copy.frame_length, ==, 3);
  g_assert_cmpfloat (copy.end_region, ==, 12.25);
  rd_settings_clear (&original);
  rd_settings_clear (&copy);
}

static void
test_clear_resets_to_unset (void)
{
  RdSettings settings;
  g_auto (GStrv) fields = NULL;

  set_all_fields (&settings);
  rd_settings_clear (&settings);
  fields = collect_fields (&settings);

  g_assert_cmpuint (g_strv_length (fields), ==, 0);
  g_assert_null (settings.callback_url);
}

static void
test_upload_mode_strings (void)
{
  RdUploadMode mode;

  g_assert_cmpstr (rd_upload_mode_to_string (RD_UPLOAD_MODE_FILES), ==,
      "files");
  g_assert_cmpstr (rd_upload_mode_to_string (RD_UPLOAD_MODE_ZIP), ==, "zip");
  g_assert_true (rd_upload_mode_from_string ("zip", &mode));
  g_assert_cmpint (mode, ==, RD_UPLOAD_MODE_ZIP);
  g_assert_true (rd_upload_mode_from_string ("files", &mode));
  g_assert_cmpint (mode, ==, RD_UPLOAD_MODE_FILES);
}

static void
test_upload_mode_unknown_refused (void)
{
  RdUploadMode mode = RD_UPLOAD_MODE_ZIP;

  g_assert_false (rd_upload_mode_from_string ("tar", &mode));
  g_assert_false (rd_upload_mode_from_string (NULL, &mode));
  g_assert_cmpint (mode, ==, RD_UPLOAD_MODE_ZIP);
}

static void
test_listen_address_forms (void)
{
  static const struct
  {
    const gchar *text;
    const gchar *host;
    guint port;
  } good[] = {
    {"127.0.0.1:8090", "127.0.0.1", 8090},
    {"8090", "127.0.0.1", 8090},
    {":0", "127.0.0.1", 0},
    {"localhost:80", "127.0.0.1", 80},
    {"0.0.0.0:65535", "0.0.0.0", 65535},
    {"[::1]:9000", "::1", 9000},
  };
  static const gchar *const bad[] = { "", "host", "127.0.0.1:", ":x",
    "127.0.0.1:65536", "::1:80", "[::1]80", "example.com:80", "1.2.3.4:-1",
    "127.0.0.1:80 ",
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++) {
    g_autofree gchar *host = NULL;
    g_autoptr (GError) error = NULL;
    guint port = 1;

    g_assert_true (rd_listen_address_parse (good[i].text, &host, &port,
            &error));
    g_assert_no_error (error);
    g_assert_cmpstr (host, ==, good[i].host);
    g_assert_cmpuint (port, ==, good[i].port);
  }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;

    g_assert_false (rd_listen_address_parse (bad[i], NULL, NULL, &error));
    g_assert_nonnull (error);
    g_assert_nonnull (strstr (error->message, "callback-listen"));
  }
}

static void
test_public_url_forms (void)
{
  g_assert_true (rd_public_url_validate ("https://example.com/rd", NULL));
  g_assert_true (rd_public_url_validate ("http://127.0.0.1:8090", NULL));
  g_assert_false (rd_public_url_validate ("ftp://example.com/", NULL));
  g_assert_false (rd_public_url_validate ("/relative", NULL));
  g_assert_false (rd_public_url_validate ("https://example.com/?a=b", NULL));
  g_assert_false (rd_public_url_validate ("https://example.com/#x", NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/settings/init/sends-nothing", test_init_sends_nothing);
  g_test_add_func ("/settings/foreach/api-order", test_foreach_order);
  g_test_add_func ("/settings/foreach/only-set", test_foreach_only_set);
  g_test_add_func ("/settings/foreach/empty-callback-url-not-sent",
      test_foreach_empty_callback_url_not_sent);
  g_test_add_func ("/settings/foreach/zero-region-is-sent",
      test_foreach_zero_region_is_set);
  g_test_add_func ("/settings/foreach/double-shortest-round-trip",
      test_foreach_double_shortest);
  g_test_add_func ("/settings/foreach/double-in-c-locale",
      test_foreach_double_c_locale);
  g_test_add_func ("/settings/foreach/frame-length-decimal",
      test_foreach_frame_length_decimal);
  g_test_add_func ("/settings/validate/unset-ok", test_validate_unset_ok);
  g_test_add_func ("/settings/validate/all-set-ok", test_validate_all_set_ok);
  g_test_add_func ("/settings/validate/frame-length-1-and-4-ok",
      test_validate_frame_length_bounds_ok);
  g_test_add_func ("/settings/validate/frame-length-5-refused",
      test_validate_frame_length_5_refused);
  g_test_add_func ("/settings/validate/end-before-start-refused",
      test_validate_end_before_start_refused);
  g_test_add_func ("/settings/validate/end-equal-start-refused",
      test_validate_end_equal_start_refused);
  g_test_add_func ("/settings/validate/end-alone-ok",
      test_validate_end_alone_ok);
  g_test_add_func ("/settings/validate/region-nan-refused",
      test_validate_region_nan_refused);
  g_test_add_func ("/settings/validate/region-infinite-refused",
      test_validate_region_infinite_refused);
  g_test_add_func ("/settings/validate/max-video-secs-zero-refused",
      test_validate_max_video_secs_zero_refused);
  g_test_add_func ("/settings/validate/boolean-out-of-range-refused",
      test_validate_boolean_out_of_range_refused);
  g_test_add_func ("/settings/validate/callback-http-ok",
      test_validate_callback_http_ok);
  g_test_add_func ("/settings/validate/callback-ftp-refused",
      test_validate_callback_ftp_refused);
  g_test_add_func ("/settings/validate/callback-relative-refused",
      test_validate_callback_relative_refused);
  g_test_add_func ("/settings/validate/callback-without-host-refused",
      test_validate_callback_without_host_refused);
  g_test_add_func ("/settings/set-field/round-trip", test_set_field_round_trip);
  g_test_add_func ("/settings/set-field/unknown-name-refused",
      test_set_field_unknown_name_refused);
  g_test_add_func ("/settings/set-field/malformed-boolean-refused",
      test_set_field_malformed_boolean_refused);
  g_test_add_func ("/settings/set-field/malformed-double-refused",
      test_set_field_malformed_double_refused);
  g_test_add_func ("/settings/set-field/negative-double-refused",
      test_set_field_negative_double_refused);
  g_test_add_func ("/settings/set-field/frame-length-out-of-range-refused",
      test_set_field_frame_length_out_of_range_refused);
  g_test_add_func ("/settings/copy/is-deep", test_copy_is_deep);
  g_test_add_func ("/settings/clear/resets-to-unset",
      test_clear_resets_to_unset);
  g_test_add_func ("/settings/upload-mode/strings", test_upload_mode_strings);
  g_test_add_func ("/settings/callback-listen/forms",
      test_listen_address_forms);
  g_test_add_func ("/settings/callback-public-url/forms",
      test_public_url_forms);
  g_test_add_func ("/settings/upload-mode/unknown-refused",
      test_upload_mode_unknown_refused);

  return g_test_run ();
}
