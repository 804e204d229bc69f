/* What the emulator remembers about a batch and its detects, shared by the
 * server (emulator.c), the shared-settings parser (emulator-settings.c) and
 * the result builder (emulator-results.c). Internal to the emulator. */
#pragma once

#include <json-glib/json-glib.h>
#include "emulator-upload.h"

G_BEGIN_DECLS

#define RD_EMULATOR_NAME "resemble-detect-emulator"
#define RD_EMULATOR_VERSION "0.1.0"

/* The batch's shared settings as the emulator applies them: API defaults
 * for what was not sent. */
typedef struct {
  gchar *callback_url;          /* NULL: none */
  gboolean intelligence;
  gboolean search_identity;
  gboolean visualize;
  gboolean audio_source_tracing;
  gboolean use_llm;
  gboolean zero_retention_mode;
  guint frame_length;
  gdouble start_region;         /* < 0: not sent */
  gdouble end_region;
  gdouble max_video_secs;
} RdEmulatorSettings;

/* Parses and checks the non-file fields (RdUploadField*). On failure
 * *bad_field names the field, and @error (RD_UPLOAD_ERROR_INVALID) says
 * what is wrong with it. */
gboolean rd_emulator_settings_parse (RdEmulatorSettings * settings,
    GPtrArray * fields, gchar ** bad_field, GError ** error);
void rd_emulator_settings_clear (RdEmulatorSettings * settings);

typedef enum {
  RD_EMULATOR_CALLBACK_NONE,    /* no callback_url */
  RD_EMULATOR_CALLBACK_WAITING, /* the batch is not terminal yet */
  RD_EMULATOR_CALLBACK_SENDING,
  RD_EMULATOR_CALLBACK_SENT,    /* the receiver answered (any status) */
  RD_EMULATOR_CALLBACK_FAILED,  /* no answer: refused, timed out, ... */
  RD_EMULATOR_CALLBACK_SKIPPED, /* not a loopback host, or the emulator stopped */
} RdEmulatorCallbackState;

typedef struct _RdEmulatorBatch RdEmulatorBatch;

typedef struct {
  gchar *uuid;
  RdEmulatorBatch *batch;       /* the owner */
  guint position;
  const RdUploadFile *file;     /* owned by the batch's upload */
  gchar *redacted_name;         /* what zero retention shows instead */
  gchar *failure;               /* the error message when it fails, else NULL */
  gint64 done_us;               /* monotonic time it turns terminal */
} RdEmulatorDetect;

struct _RdEmulatorBatch {
  gchar *uuid;
  gchar *owner;                 /* SHA-256 of the token that created it */
  gchar *auth_scheme;           /* "Bearer" or "Token", never the value */
  guint sequence;               /* its place in creation order */
  GDateTime *created_at;        /* to the millisecond, as shown */
  gint64 created_us;            /* monotonic */
  guint processing_ms;
  RdUpload *upload;
  RdEmulatorSettings settings;
  GPtrArray *detects;           /* RdEmulatorDetect*, in upload order */
  gchar *user_agent;
  gboolean prefer_present;
  guint64 body_bytes;

  RdEmulatorCallbackState callback_state;
  guint callback_http_status;
  gchar *callback_error;
  GSource *terminal_source;     /* fires when the last detect is done */
};

const gchar *rd_emulator_detect_status (const RdEmulatorDetect * detect,
    gint64 now_us);
const gchar *rd_emulator_batch_status (const RdEmulatorBatch * batch,
    gint64 now_us, guint * completed, guint * failed);
gboolean rd_emulator_batch_is_terminal (const RdEmulatorBatch * batch,
    gint64 now_us);
gint64 rd_emulator_batch_terminal_us (const RdEmulatorBatch * batch);

/* The documented `item` objects. @media_base is where `url` points (never
 * served: the emulator keeps no media). */
JsonNode *rd_emulator_batch_to_json (const RdEmulatorBatch * batch,
    gint64 now_us);
JsonNode *rd_emulator_detect_to_json (const RdEmulatorDetect * detect,
    gint64 now_us, const gchar * media_base);

/* "2024-01-15T10:30:00.123Z" */
gchar *rd_emulator_format_time (GDateTime * time);

G_END_DECLS
