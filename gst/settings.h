/* The shared settings of a batch (the API's form fields): what the user set,
 * their validation against the API's documented ranges, and their wire form. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  RD_UPLOAD_MODE_FILES,         /* one repeated "files[]" part per file */
  RD_UPLOAD_MODE_ZIP,           /* one "file" part holding a .zip */
} RdUploadMode;

/* Booleans are tri-state: RD_SETTING_UNSET means "not sent, API default". */
#define RD_SETTING_UNSET (-1)

typedef struct {
  gchar *callback_url;          /* NULL: not sent */
  gint intelligence;            /* -1 unset, 0 false, 1 true */
  gint search_identity;
  gint visualize;
  gint audio_source_tracing;    /* wire name: audio_source_tracing_enabled */
  gint use_llm;
  gint zero_retention_mode;
  guint frame_length;           /* 0 unset, else 1..4 */
  gdouble start_region;         /* < 0: unset */
  gdouble end_region;
  gdouble max_video_secs;
} RdSettings;

void rd_settings_init (RdSettings * settings);
void rd_settings_clear (RdSettings * settings);
void rd_settings_copy (RdSettings * dest, const RdSettings * src);

/* Checks what the API would refuse with a 400 (frame_length 1..4, regions
 * non-negative and ordered, callback URL is http(s)). */
gboolean rd_settings_validate (const RdSettings * settings, GError ** error);

typedef void (*RdSettingsFieldFunc) (const gchar * name, const gchar * value,
    gpointer user_data);

/* Calls @func for every field that is set, with the API's field name and its
 * wire value ("true"/"false", integers, doubles in C locale). */
void rd_settings_foreach_field (const RdSettings * settings,
    RdSettingsFieldFunc func, gpointer user_data);

/* Sets a field from its API name and wire value, as read back from a
 * manifest. Returns FALSE for an unknown name or a malformed value. */
gboolean rd_settings_set_field (RdSettings * settings, const gchar * name,
    const gchar * value, GError ** error);

/* callback-listen: "host:port", "[v6 address]:port", ":port" or "port";
 * the host is an IP address or "localhost", 127.0.0.1 when none is named;
 * port 0 picks a free one. */
gboolean rd_listen_address_parse (const gchar * text, gchar ** host,
    guint * port, GError ** error);

/* callback-public-url: an absolute http(s) URL with a host, no query or
 * fragment (the element appends a path to it). */
gboolean rd_public_url_validate (const gchar * url, GError ** error);

const gchar *rd_upload_mode_to_string (RdUploadMode mode);
gboolean rd_upload_mode_from_string (const gchar * str, RdUploadMode * mode);

G_END_DECLS
