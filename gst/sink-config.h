/* The configuration of resembledetectsink: every property, its spec and
 * default, its value, and what is refused. The element keeps one
 * RdSinkConfig under its object lock and reads copies of it; this module
 * knows no pipeline, no batch and no network. */
#pragma once

#include <gst/gst.h>
#include "container.h"
#include "settings.h"

G_BEGIN_DECLS

#define RD_SINK_DEFAULT_API_URL "https://app.resemble.ai/api/v2"

/* What a batch that cannot reach a terminal state does to the pipeline. */
typedef enum
{
  GST_RESEMBLE_DETECT_ON_ERROR_WARN,
  GST_RESEMBLE_DETECT_ON_ERROR_ERROR,
} GstResembleDetectOnError;

#define GST_TYPE_RESEMBLE_DETECT_UPLOAD_MODE (gst_resemble_detect_upload_mode_get_type ())
GType gst_resemble_detect_upload_mode_get_type (void);
#define GST_TYPE_RESEMBLE_DETECT_ON_ERROR (gst_resemble_detect_on_error_get_type ())
GType gst_resemble_detect_on_error_get_type (void);

typedef struct
{
  gchar *api_url;
  gchar *api_token;             /* write-only; never logged */
  gchar *location;              /* NULL: the default location */
  GstResembleDetectContainer container;
  GstClockTime segment_duration;
  guint max_files;
  guint64 max_batch_bytes;
  GstClockTime batch_timeout;
  RdUploadMode upload_mode;
  RdSettings settings;          /* the batch's shared settings */
  GstClockTime poll_interval;
  GstClockTime poll_max_interval;
  GstClockTime poll_timeout;
  gboolean fetch_results;
  guint max_retries;
  guint max_in_flight;
  gboolean wait_on_eos;
  gboolean keep_files;
  guint64 max_spool_bytes;
  GstResembleDetectOnError on_error;
  gboolean async;
  gchar *callback_listen;       /* NULL: no callback receiver */
  gchar *callback_public_url;
  GstClockTime latency_budget;  /* 0: off */
  GstClockTime max_observed_latency;    /* read-only: the element's measure */
  GHashTable *refused;          /* property name -> why its value was refused */
} RdSinkConfig;

/* Installs every property of the element (ids from 1) on @klass. */
void rd_sink_config_install_properties (GObjectClass * klass);

void rd_sink_config_init (RdSinkConfig * config);
void rd_sink_config_clear (RdSinkConfig * config);
/* A copy to read without the lock (the refusals are not copied). */
void rd_sink_config_copy (RdSinkConfig * dest, const RdSinkConfig * src);

/* The property @prop_id of @object (for the warnings) set from @value. A
 * value the API would refuse is kept out with a warning and remembered
 * until a valid one replaces it. FALSE for an unknown id. */
gboolean rd_sink_config_set (RdSinkConfig * config, GObject * object,
    guint prop_id, const GValue * value, GParamSpec * pspec);
gboolean rd_sink_config_get (const RdSinkConfig * config, guint prop_id,
    GValue * value);

/* Whether the element may start with @config: no refused value, settings
 * the API would take together, a token (unless @token_required is FALSE).
 * The error is a GST_LIBRARY_ERROR_SETTINGS or
 * GST_RESOURCE_ERROR_NOT_AUTHORIZED. */
gboolean rd_sink_config_check (const RdSinkConfig * config,
    gboolean token_required, GError ** error);

/* The token: the property, else RESEMBLE_API_TOKEN; NULL if neither.
 * Zero it before freeing. */
gchar *rd_sink_config_dup_token (const RdSinkConfig * config);

G_END_DECLS
