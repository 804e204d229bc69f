/* The emulator's server: a SoupServer on its own thread and GMainContext,
 * routing the batch API's three endpoints, the list of detects and
 * /__emulator/stats, checking auth before a body is read, spooling upload
 * bodies to disk, creating batches whose detects finish on a clock, POSTing
 * callbacks, and injecting the faults the knobs ask for, every Nth request
 * or drawn at a rate. One mutex guards the knobs and everything
 * the handlers and get_stats_json() share; the SoupServer, the callback
 * session and the pending fault sources belong to the server thread. */
#include "emulator.h"
#include "emulator-private.h"

#include <libsoup/soup.h>
#include <string.h>

#define DEFAULT_TOKEN "test-token"
#define API_PREFIX "/api/v2"
#define EMULATOR_PREFIX "/__emulator/"
/* Room for the multipart framing and the settings around 500 MB of media. */
#define BODY_SLACK (16 * 1024 * 1024)
#define CALLBACK_TIMEOUT_S 10
/* libsoup names no constant for it. */
#define STATUS_TOO_MANY_REQUESTS 429
/* GET /detect: page_size bounds and default, as the OpenAPI gives them. */
#define LIST_MIN_PAGE_SIZE 10
#define LIST_MAX_PAGE_SIZE 1000
#define LIST_DEFAULT_PAGE_SIZE 10
#define DEFAULT_SEED 1

/* A fault kind is off, every Nth request, or a rate: never both. */
typedef struct
{
  guint every_nth;
  gdouble percent;              /* 0..100, 0 when not in rate mode */
  gchar *prefix;                /* "[METHOD ]/path[?query]", NULL for any */
  guint64 counter;
} FaultSetting;

#define N_FAULTS (RD_EMULATOR_FAULT_DROP_MID_BODY + 1)

struct _RdEmulator
{
  GMutex lock;

  /* knobs */
  GPtrArray *token_hashes;      /* SHA-256 hex of each accepted token */
  guint processing_ms;
  gchar *fail_substring;
  gdouble fail_rate;
  gint64 wallet_cents;
  guint cost_per_file_cents;
  gint intelligence_limit;
  gint intelligence_used;
  FaultSetting faults[N_FAULTS];
  GRand *rand;                  /* the fault-rate draws */
  gint64 clock_offset_us;
  guint slow_ms;
  guint retry_after;
  guint64 max_total_bytes;
  gboolean allow_non_loopback;

  /* what happened */
  GPtrArray *batches;           /* RdEmulatorBatch*, in creation order */
  GHashTable *batches_by_key;   /* lookup key -> RdEmulatorBatch* */
  GHashTable *detects_by_key;   /* lookup key -> RdEmulatorDetect* */
  GHashTable *responses;        /* "route\nstatus" -> count */
  guint64 requests_total;
  guint64 bytes_received;
  guint64 files_received;
  guint callbacks_sent;
  guint callbacks_failed;
  guint faults_injected[N_FAULTS];
  guint64 connections_accepted;

  /* the server thread; these fields are set before it starts or by it
   * before start() returns, and read-only afterwards */
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  gchar *host;
  guint requested_port;
  guint port;
  gchar *base_url;
  gchar *media_base;
  GCond start_cond;
  gboolean start_done;
  GError *start_error;

  /* owned by the server thread */
  SoupServer *server;
  SoupSession *session;
  GCancellable *cancellable;
  guint callbacks_in_flight;
  GList *pending_ops;           /* PendingOp*: slow answers, drops */
};

#define EMU_LOCK(emu) g_mutex_lock (&(emu)->lock)
#define EMU_UNLOCK(emu) g_mutex_unlock (&(emu)->lock)

typedef enum
{
  ROUTE_DETECTS,                /* /api/v2/detect */
  ROUTE_BATCHES,                /* /api/v2/detect/batch */
  ROUTE_BATCH,                  /* /api/v2/detect/batch/{uuid} */
  ROUTE_DETECT,                 /* /api/v2/detect/{uuid} */
  ROUTE_API_OTHER,              /* anything else under /api/v2 */
  ROUTE_STATS,                  /* /__emulator/stats */
  ROUTE_MEDIA,                  /* /__emulator/media/... */
  ROUTE_OTHER,
} Route;

static const gchar *const route_patterns[] = {
  API_PREFIX "/detect",
  API_PREFIX "/detect/batch",
  API_PREFIX "/detect/batch/{uuid}",
  API_PREFIX "/detect/{uuid}",
  API_PREFIX "/(unknown)",
  EMULATOR_PREFIX "stats",
  EMULATOR_PREFIX "media",
  "(unknown)",
};

/* The per-request state, attached to the SoupServerMessage. */
typedef struct
{
  RdEmulator *emu;
  Route route;
  gchar *route_label;           /* "POST /api/v2/detect/batch" */
  gchar *id;                    /* the {uuid} of the path */
  RdEmulatorFault fault;
  gboolean answered_early;      /* a response was chosen before the body */
  gboolean dropped_mid_body;    /* the socket was shut down in the body */
  gchar *owner;                 /* the token's hash, once authorised */
  const gchar *auth_scheme;
  gchar *boundary;
  RdUploadSpool *spool;
} Request;

typedef struct
{
  RdEmulator *emu;
  SoupServerMessage *msg;
  GSource *source;
  gboolean drop;                /* else: unpause a slow answer */
} PendingOp;

static const gchar *const fault_names[N_FAULTS] = {
  "none", "500", "503", "429", "drop-before-body", "drop-after-body", "slow",
  "malformed-json", "drop-mid-body",
};

const gchar *
rd_emulator_fault_to_string (RdEmulatorFault fault)
{
  if ((guint) fault >= N_FAULTS)
    return "none";
  return fault_names[fault];
}

gboolean
rd_emulator_fault_from_string (const gchar * name, RdEmulatorFault * fault)
{
  guint i;

  for (i = 0; i < N_FAULTS; i++) {
    if (g_ascii_strcasecmp (name, fault_names[i]) == 0) {
      *fault = i;
      return TRUE;
    }
  }
  return FALSE;
}

/* ---- batches ---- */

/* Dashed UUIDs and 32 hex digits name the same thing. */
static gchar *
lookup_key (const gchar * id)
{
  GString *key = g_string_sized_new (32);

  for (; *id; id++) {
    if (*id != '-')
      g_string_append_c (key, g_ascii_tolower (*id));
  }
  return g_string_free (key, FALSE);
}

static void
detect_free (RdEmulatorDetect * detect)
{
  g_free (detect->uuid);
  g_free (detect->redacted_name);
  g_free (detect->failure);
  g_free (detect);
}

static void
batch_free (RdEmulatorBatch * batch)
{
  if (batch->terminal_source) {
    g_source_destroy (batch->terminal_source);
    g_source_unref (batch->terminal_source);
  }
  g_free (batch->uuid);
  g_free (batch->owner);
  g_free (batch->auth_scheme);
  g_date_time_unref (batch->created_at);
  rd_upload_free (batch->upload);
  rd_emulator_settings_clear (&batch->settings);
  g_ptr_array_unref (batch->detects);
  g_free (batch->user_agent);
  g_free (batch->callback_error);
  g_free (batch);
}

static gdouble
fail_draw (const guint8 * sha256)
{
  /* Independent of the score bytes, so failures do not follow verdicts. */
  guint32 v = ((guint32) sha256[28] << 24) | ((guint32) sha256[29] << 16) |
      ((guint32) sha256[30] << 8) | (guint32) sha256[31];

  return v / 4294967296.0;
}

static gchar *
redacted_name (const gchar * uuid, const gchar * name)
{
  g_autofree gchar *hash =
      g_compute_checksum_for_string (G_CHECKSUM_SHA256, uuid, -1);
  const gchar *dot = strrchr (name, '.');

  hash[32] = '\0';
  return g_strdup_printf ("redacted_%s%s", hash, dot ? dot : "");
}

/* Called with the lock held: the emulator's wall clock, shifted by the
 * offset and cut to the millisecond it is shown with, so that what the list
 * sorts by is what a client reads. */
static GDateTime *
emulator_now (RdEmulator * emu)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();

  return g_date_time_add (now, emu->clock_offset_us -
      g_date_time_get_microsecond (now) % 1000);
}

/* Called with the lock held. */
static RdEmulatorBatch *
batch_new (RdEmulator * emu, RdUpload * upload, RdEmulatorSettings * settings,
    const Request * req, SoupServerMessage * msg)
{
  RdEmulatorBatch *batch = g_new0 (RdEmulatorBatch, 1);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  guint i;

  batch->uuid = g_uuid_string_random ();
  batch->owner = g_strdup (req->owner);
  batch->auth_scheme = g_strdup (req->auth_scheme);
  batch->sequence = emu->batches->len;
  batch->created_at = emulator_now (emu);
  batch->created_us = g_get_monotonic_time ();
  batch->processing_ms = emu->processing_ms;
  batch->upload = upload;
  batch->settings = *settings;
  memset (settings, 0, sizeof (*settings));
  batch->user_agent = g_strdup (soup_message_headers_get_one (headers,
          "User-Agent"));
  batch->prefer_present = soup_message_headers_get_one (headers,
      "Prefer") != NULL;
  batch->body_bytes = rd_upload_spool_get_received (req->spool);
  batch->callback_state = batch->settings.callback_url ?
      RD_EMULATOR_CALLBACK_WAITING : RD_EMULATOR_CALLBACK_NONE;
  batch->detects = g_ptr_array_new_with_free_func ((GDestroyNotify)
      detect_free);

  for (i = 0; i < upload->files->len; i++) {
    const RdUploadFile *file = g_ptr_array_index (upload->files, i);
    RdEmulatorDetect *detect = g_new0 (RdEmulatorDetect, 1);

    detect->uuid = g_uuid_string_random ();
    detect->batch = batch;
    detect->position = i;
    detect->file = file;
    detect->redacted_name = redacted_name (detect->uuid, file->name);
    detect->done_us = batch->created_us +
        (gint64) (i + 1) * batch->processing_ms * 1000;
    if (emu->fail_substring && emu->fail_substring[0]
        && strstr (file->name, emu->fail_substring))
      detect->failure = g_strdup_printf ("Emulated failure: the file name "
          "contains '%s'", emu->fail_substring);
    else if (fail_draw (file->sha256) < emu->fail_rate)
      detect->failure = g_strdup ("Emulated failure: drawn by the fail rate");
    g_ptr_array_add (batch->detects, detect);
    g_hash_table_insert (emu->detects_by_key, lookup_key (detect->uuid),
        detect);
  }
  g_ptr_array_add (emu->batches, batch);
  g_hash_table_insert (emu->batches_by_key, lookup_key (batch->uuid), batch);
  return batch;
}

/* ---- responses ---- */

static void
set_json (SoupServerMessage * msg, guint status, JsonNode * node)
{
  gsize len;
  gchar *text = json_to_string (node, FALSE);

  len = strlen (text);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json",
      SOUP_MEMORY_TAKE, text, len);
  json_node_unref (node);
}

static JsonBuilder *
begin_error (const gchar * message)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "success");
  json_builder_add_boolean_value (b, FALSE);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, message);
  return b;
}

static JsonNode *
end_error (JsonBuilder * b)
{
  JsonNode *node;

  json_builder_end_object (b);
  node = json_builder_get_root (b);
  g_object_unref (b);
  return node;
}

static void
set_error (SoupServerMessage * msg, guint status, const gchar * message)
{
  set_json (msg, status, end_error (begin_error (message)));
}

static void
set_item (SoupServerMessage * msg, guint status, JsonNode * item)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "success");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_set_member_name (b, "item");
  json_builder_add_value (b, item);
  json_builder_end_object (b);
  set_json (msg, status, json_builder_get_root (b));
}

/* Counts an answer in the stats; called before the answer is sent, so a
 * client that has its response always finds it counted. */
static void
record_response (RdEmulator * emu, const Request * req, const gchar * status)
{
  gchar *key = g_strconcat (req->route_label, "\n", status, NULL);
  gpointer count;

  EMU_LOCK (emu);
  count = g_hash_table_lookup (emu->responses, key);
  g_hash_table_replace (emu->responses, key,
      GUINT_TO_POINTER (GPOINTER_TO_UINT (count) + 1));
  EMU_UNLOCK (emu);
}

static void
record_status (RdEmulator * emu, const Request * req, SoupServerMessage * msg)
{
  g_autofree gchar *status = g_strdup_printf ("%u",
      soup_server_message_get_status (msg));

  record_response (emu, req, status);
}

/* ---- slow answers and dropped connections ---- */

static void
pending_op_free (PendingOp * op)
{
  g_object_unref (op->msg);
  g_free (op);
}

static gboolean
pending_op_fire (gpointer user_data)
{
  PendingOp *op = user_data;

  op->emu->pending_ops = g_list_remove (op->emu->pending_ops, op);
  if (op->drop) {
    GIOStream *stream = soup_server_message_steal_connection (op->msg);

    if (stream) {
      g_io_stream_close (stream, NULL, NULL);
      g_object_unref (stream);
    }
  } else {
    soup_server_message_unpause (op->msg);
  }
  return G_SOURCE_REMOVE;
}

/* Pauses @msg and, after @delay_ms, either drops its connection without an
 * answer or lets the answer already set go out. Server thread only. */
static void
defer (RdEmulator * emu, SoupServerMessage * msg, gboolean drop, guint delay_ms)
{
  PendingOp *op = g_new0 (PendingOp, 1);

  op->emu = emu;
  op->msg = g_object_ref (msg);
  op->drop = drop;
  op->source =
      delay_ms ? g_timeout_source_new (delay_ms) : g_idle_source_new ();
  g_source_set_callback (op->source, pending_op_fire, op,
      (GDestroyNotify) pending_op_free);
  soup_server_message_pause (msg);
  emu->pending_ops = g_list_prepend (emu->pending_ops, op);
  g_source_attach (op->source, emu->context);
  g_source_unref (op->source);
}

/* ---- auth ---- */

/* Accepts "Bearer <token>" and the legacy "Token token=<token>" (quoted or
 * not). Returns the token's hash if it is an accepted one. */
static gchar *
authorise (RdEmulator * emu, SoupServerMessage * msg, const gchar ** scheme)
{
  const gchar *header =
      soup_message_headers_get_one (soup_server_message_get_request_headers
      (msg), "Authorization");
  g_autofree gchar *token = NULL;
  gchar *hash;
  guint i;

  if (header == NULL)
    return NULL;
  while (g_ascii_isspace (*header))
    header++;
  if (g_ascii_strncasecmp (header, "Bearer ", 7) == 0) {
    token = g_strstrip (g_strdup (header + 7));
    *scheme = "Bearer";
  } else if (g_ascii_strncasecmp (header, "Token ", 6) == 0) {
    g_autoptr (GHashTable) params = soup_header_parse_param_list (header + 6);
    token = g_strdup (g_hash_table_lookup (params, "token"));
    *scheme = "Token";
  }
  if (token == NULL || token[0] == '\0')
    return NULL;

  hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, token, -1);
  EMU_LOCK (emu);
  for (i = 0; i < emu->token_hashes->len; i++) {
    if (strcmp (g_ptr_array_index (emu->token_hashes, i), hash) == 0) {
      EMU_UNLOCK (emu);
      return hash;
    }
  }
  EMU_UNLOCK (emu);
  g_free (hash);
  return NULL;
}

/* ---- routing ---- */

static Route
classify (const gchar * path, gchar ** id)
{
  g_autofree gchar *trimmed = g_strdup (path);
  gsize len = strlen (trimmed);
  const gchar *rest;

  *id = NULL;
  while (len > 1 && trimmed[len - 1] == '/')
    trimmed[--len] = '\0';

  if (strcmp (trimmed, EMULATOR_PREFIX "stats") == 0)
    return ROUTE_STATS;
  if (g_str_has_prefix (trimmed, EMULATOR_PREFIX "media/"))
    return ROUTE_MEDIA;
  if (strcmp (trimmed, API_PREFIX) != 0
      && !g_str_has_prefix (trimmed, API_PREFIX "/"))
    return ROUTE_OTHER;
  if (strcmp (trimmed, API_PREFIX "/detect") == 0)
    return ROUTE_DETECTS;
  if (strcmp (trimmed, API_PREFIX "/detect/batch") == 0)
    return ROUTE_BATCHES;
  if (g_str_has_prefix (trimmed, API_PREFIX "/detect/batch/")) {
    rest = trimmed + strlen (API_PREFIX "/detect/batch/");
    if (strchr (rest, '/') == NULL) {
      *id = g_strdup (rest);
      return ROUTE_BATCH;
    }
  } else if (g_str_has_prefix (trimmed, API_PREFIX "/detect/")) {
    rest = trimmed + strlen (API_PREFIX "/detect/");
    if (strchr (rest, '/') == NULL) {
      *id = g_strdup (rest);
      return ROUTE_DETECT;
    }
  }
  return ROUTE_API_OTHER;
}

static gboolean
route_is_api (Route route)
{
  return route <= ROUTE_API_OTHER;
}

/* Splits a fault prefix "[METHOD ]/path[?query]": returns the path part
 * and sets @method_len to the length of the method (0 when none). */
static const gchar *
prefix_path (const gchar * prefix, gsize * method_len)
{
  const gchar *space = strchr (prefix, ' ');

  *method_len = 0;
  if (space == NULL || prefix[0] == '/')
    return prefix;
  *method_len = space - prefix;
  return space + 1;
}

/* Whether a request (@target: the path, plus "?query" when it has one)
 * falls under @prefix (NULL: every request). */
static gboolean
prefix_matches (const gchar * prefix, const gchar * method,
    const gchar * target)
{
  const gchar *path;
  gsize method_len;

  if (prefix == NULL)
    return TRUE;
  path = prefix_path (prefix, &method_len);
  if (method_len > 0 && (strlen (method) != method_len
          || g_ascii_strncasecmp (method, prefix, method_len) != 0))
    return FALSE;
  return g_str_has_prefix (target, path);
}

/* The method a fault prefix names, "" when none. */
static gchar *
prefix_method (const gchar * prefix)
{
  gsize method_len = 0;

  if (prefix == NULL)
    return g_strdup ("");
  prefix_path (prefix, &method_len);
  return g_strndup (prefix, method_len);
}

/* The largest sum of rates one request can meet. The prefixes a request
 * falls under are all prefixes of the longest of them, so a request whose
 * target is a rate's own path, sent with each method a prefix names (or
 * with one none names: "", from the prefix-less `none` slot), meets at least
 * what any request meets. */
static gdouble
max_rate_sum (const gdouble * percents, const gchar * const *prefixes)
{
  gdouble max = 0;
  guint target, method, i;

  for (target = 0; target < N_FAULTS; target++) {
    gsize method_len;
    const gchar *path = prefixes[target] ?
        prefix_path (prefixes[target], &method_len) : "";

    if (percents[target] <= 0)
      continue;
    for (method = 0; method < N_FAULTS; method++) {
      g_autofree gchar *name = prefix_method (prefixes[method]);
      gdouble sum = 0;

      for (i = 0; i < N_FAULTS; i++) {
        if (percents[i] > 0 && prefix_matches (prefixes[i], name, path))
          sum += percents[i];
      }
      max = MAX (max, sum);
    }
  }
  return max;
}

/* Called with the lock held: counts the request for every every-Nth fault
 * that covers it and returns the first whose turn it is. */
static RdEmulatorFault
pick_every_nth_fault (RdEmulator * emu, const gchar * method,
    const gchar * target)
{
  RdEmulatorFault chosen = RD_EMULATOR_FAULT_NONE;
  guint i;

  for (i = RD_EMULATOR_FAULT_NONE + 1; i < N_FAULTS; i++) {
    FaultSetting *fault = &emu->faults[i];

    if (fault->every_nth == 0
        || !prefix_matches (fault->prefix, method, target))
      continue;
    fault->counter++;
    if (chosen == RD_EMULATOR_FAULT_NONE
        && fault->counter % fault->every_nth == 0)
      chosen = i;
  }
  return chosen;
}

/* Called with the lock held: one draw in [0, 100) for the request, laid
 * along the rates of the kinds that cover it in table order, so that each
 * kind gets its own share (their sum is kept <= 100). */
static RdEmulatorFault
pick_rate_fault (RdEmulator * emu, const gchar * method, const gchar * target)
{
  gdouble draw = g_rand_double_range (emu->rand, 0, 100);
  gdouble bound = 0;
  guint i;

  for (i = RD_EMULATOR_FAULT_NONE + 1; i < N_FAULTS; i++) {
    const FaultSetting *fault = &emu->faults[i];

    if (fault->percent <= 0 || !prefix_matches (fault->prefix, method, target))
      continue;
    bound += fault->percent;
    if (draw < bound)
      return i;
  }
  return RD_EMULATOR_FAULT_NONE;
}

/* Called with the lock held. Every faultable request draws, whether or not
 * an every-Nth fault takes it, so a seed gives the same faults to the same
 * sequence of requests. */
static RdEmulatorFault
pick_fault (RdEmulator * emu, const gchar * method, const gchar * target)
{
  RdEmulatorFault chosen, drawn;

  if (g_str_has_prefix (target, EMULATOR_PREFIX))
    return RD_EMULATOR_FAULT_NONE;
  chosen = pick_every_nth_fault (emu, method, target);
  drawn = pick_rate_fault (emu, method, target);
  if (chosen == RD_EMULATOR_FAULT_NONE)
    chosen = drawn;
  if (chosen != RD_EMULATOR_FAULT_NONE)
    emu->faults_injected[chosen]++;
  return chosen;
}

static void
request_free (Request * req)
{
  g_free (req->route_label);
  g_free (req->id);
  g_free (req->owner);
  g_free (req->boundary);
  rd_upload_spool_free (req->spool);
  g_free (req);
}

/* The drop-mid-body fault: like a proxy or a server that destroys the
 * socket once body bytes arrive, while the client is still writing. A
 * shutdown, not a close: libsoup still owns the descriptor and sees its
 * next read or write fail. */
static void
drop_mid_body (RdEmulator * emu, Request * req, SoupServerMessage * msg)
{
  GSocket *socket = soup_server_message_get_socket (msg);

  req->dropped_mid_body = TRUE;
  record_response (emu, req, "dropped");
  /* libsoup looks the addresses up lazily and warns once the socket is
   * shut down: look them up while it is whole */
  soup_server_message_get_remote_address (msg);
  soup_server_message_get_local_address (msg);
  if (socket)
    g_socket_shutdown (socket, TRUE, TRUE, NULL);
}

static void
got_chunk (SoupServerMessage * msg, GBytes * chunk, Request * req)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (chunk, &len);

  if (req->dropped_mid_body)
    return;
  if (req->fault == RD_EMULATOR_FAULT_DROP_MID_BODY) {
    drop_mid_body (req->emu, req, msg);
    return;
  }
  rd_upload_spool_write (req->spool, data, len);
  EMU_LOCK (req->emu);
  req->emu->bytes_received += len;
  EMU_UNLOCK (req->emu);
}

/* An answer chosen before the body is read: the connection closes after it,
 * since a client that waited for "100 Continue" never sends the body it
 * declared, and one that did not must not have it read as a request. */
static gboolean
has_body (SoupServerMessage * msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupEncoding encoding = soup_message_headers_get_encoding (headers);

  return encoding == SOUP_ENCODING_CHUNKED
      || (encoding == SOUP_ENCODING_CONTENT_LENGTH
      && soup_message_headers_get_content_length (headers) > 0);
}

static void
answered_early (RdEmulator * emu, Request * req, SoupServerMessage * msg)
{
  req->answered_early = TRUE;
  if (has_body (msg))
    soup_message_headers_replace (soup_server_message_get_response_headers
        (msg), "Connection", "close");
  record_status (emu, req, msg);
}

static void
answer_fault_early (RdEmulator * emu, Request * req, SoupServerMessage * msg)
{
  guint retry_after;

  switch (req->fault) {
    case RD_EMULATOR_FAULT_500:
      set_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR,
          "Internal server error (emulated fault)");
      break;
    case RD_EMULATOR_FAULT_503:
      set_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
          "Service unavailable (emulated fault)");
      break;
    case RD_EMULATOR_FAULT_429:
      EMU_LOCK (emu);
      retry_after = emu->retry_after;
      EMU_UNLOCK (emu);
      set_error (msg, STATUS_TOO_MANY_REQUESTS,
          "Too many requests (emulated fault)");
      {
        g_autofree gchar *value = g_strdup_printf ("%u", retry_after);
        soup_message_headers_replace (soup_server_message_get_response_headers
            (msg), "Retry-After", value);
      }
      break;
    case RD_EMULATOR_FAULT_DROP_MID_BODY:
      /* with a body, it acts in got_chunk; without one, it is a drop */
      if (has_body (msg))
        return;
      /* fall through */
    case RD_EMULATOR_FAULT_DROP_BEFORE_BODY:
      record_response (emu, req, "dropped");
      req->answered_early = TRUE;
      defer (emu, msg, TRUE, 0);
      return;
    default:
      return;
  }
  answered_early (emu, req, msg);
}

/* "Prefer: wait" or "Prefer: wait=10", among other preferences. */
static gboolean
prefers_wait (const gchar * prefer)
{
  GSList *list = soup_header_parse_list (prefer), *l;
  gboolean wait = FALSE;

  for (l = list; l; l = l->next) {
    const gchar *p = l->data;

    if (g_ascii_strncasecmp (p, "wait", 4) == 0
        && (p[4] == '\0' || p[4] == '=' || p[4] == ';' || p[4] == ' '))
      wait = TRUE;
  }
  g_slist_free_full (list, g_free);
  return wait;
}

/* Runs when the headers are in, before any of the body: faults that answer
 * at once, auth, and the upload checks that need no body. */
static void
early_handler (SoupServer * server, SoupServerMessage * msg,
    const gchar * path, GHashTable * query, gpointer user_data)
{
  RdEmulator *emu = user_data;
  Request *req = g_new0 (Request, 1);
  const gchar *method = soup_server_message_get_method (msg);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autoptr (GError) error = NULL;
  GHashTable *params = NULL;
  const gchar *query_text = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autofree gchar *target = query_text ?
      g_strconcat (path, "?", query_text, NULL) : g_strdup (path);
  const gchar *content_type;
  const gchar *prefer;
  goffset length;
  guint64 store_limit;

  req->emu = emu;
  req->route = classify (path, &req->id);
  req->route_label = g_strdup_printf ("%s %s", method,
      route_patterns[req->route]);
  g_object_set_data_full (G_OBJECT (msg), "rd-emulator-request", req,
      (GDestroyNotify) request_free);
  /* Bodies are never accumulated in memory; uploads go to the spool. */
  soup_message_body_set_accumulate (soup_server_message_get_request_body
      (msg), FALSE);

  EMU_LOCK (emu);
  emu->requests_total++;
  req->fault = pick_fault (emu, method, target);
  store_limit = emu->max_total_bytes + BODY_SLACK;
  EMU_UNLOCK (emu);

  answer_fault_early (emu, req, msg);
  if (req->answered_early)
    return;

  if (!route_is_api (req->route))
    return;
  req->owner = authorise (emu, msg, &req->auth_scheme);
  if (req->owner == NULL) {
    soup_message_headers_replace (soup_server_message_get_response_headers
        (msg), "WWW-Authenticate", "Bearer");
    set_error (msg, SOUP_STATUS_UNAUTHORIZED,
        "Unauthorized: missing or invalid API token");
    goto early_answer;
  }

  if (req->route != ROUTE_BATCHES || strcmp (method, SOUP_METHOD_POST) != 0)
    return;

  prefer = soup_message_headers_get_list (headers, "Prefer");
  if (prefer && prefers_wait (prefer)) {
    set_error (msg, SOUP_STATUS_BAD_REQUEST, "Prefer: wait is not "
        "supported: batch detection is asynchronous only");
    goto early_answer;
  }

  content_type = soup_message_headers_get_content_type (headers, &params);
  if (content_type == NULL
      || g_ascii_strcasecmp (content_type, "multipart/form-data") != 0
      || params == NULL || g_hash_table_lookup (params, "boundary") == NULL) {
    if (params)
      g_hash_table_unref (params);
    set_error (msg, SOUP_STATUS_BAD_REQUEST, "the request must be "
        "multipart/form-data with a boundary");
    goto early_answer;
  }
  req->boundary = g_strdup (g_hash_table_lookup (params, "boundary"));
  g_hash_table_unref (params);

  length = soup_message_headers_get_content_length (headers);
  if (soup_message_headers_get_encoding (headers) ==
      SOUP_ENCODING_CONTENT_LENGTH && (guint64) length > store_limit) {
    set_error (msg, SOUP_STATUS_BAD_REQUEST, "batch exceeds the maximum "
        "total upload size (500 MB)");
    goto early_answer;
  }

  req->spool = rd_upload_spool_new (store_limit, &error);
  if (req->spool == NULL) {
    set_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, error->message);
    goto early_answer;
  }
  g_signal_connect (msg, "got-chunk", G_CALLBACK (got_chunk), req);
  return;

early_answer:
  answered_early (emu, req, msg);
}

/* ---- POST /detect/batch ---- */

static void
set_invalid (SoupServerMessage * msg, const gchar * message,
    const gchar * field)
{
  JsonBuilder *b = begin_error (message);

  if (field) {
    json_builder_set_member_name (b, "errors");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, field);
    json_builder_begin_array (b);
    json_builder_add_string_value (b, message);
    json_builder_end_array (b);
    json_builder_end_object (b);
  }
  set_json (msg, SOUP_STATUS_BAD_REQUEST, end_error (b));
}

static void schedule_callback (RdEmulator * emu, RdEmulatorBatch * batch);

/* Called with the lock held: 403 or 402 if the batch may not be created. */
static gboolean
check_account (RdEmulator * emu, SoupServerMessage * msg, RdUpload * upload,
    const RdEmulatorSettings * settings)
{
  guint n = upload->files->len, i;
  JsonBuilder *b;
  gint64 cost = (gint64) n * emu->cost_per_file_cents;

  if (settings->intelligence && emu->intelligence_limit >= 0
      && (gint64) emu->intelligence_used + n > emu->intelligence_limit) {
    g_autofree gchar *message = g_strdup_printf ("Intelligence detect limit "
        "reached: %d of %d used, this batch asks for %u",
        emu->intelligence_used, emu->intelligence_limit, n);

    b = begin_error (message);
    json_builder_set_member_name (b, "details");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "limit");
    json_builder_add_int_value (b, emu->intelligence_limit);
    json_builder_set_member_name (b, "used");
    json_builder_add_int_value (b, emu->intelligence_used);
    json_builder_set_member_name (b, "requested");
    json_builder_add_int_value (b, n);
    json_builder_end_object (b);
    set_json (msg, SOUP_STATUS_FORBIDDEN, end_error (b));
    return FALSE;
  }

  if (emu->wallet_cents >= 0 && cost > emu->wallet_cents) {
    g_autofree gchar *message = g_strdup_printf ("Insufficient wallet "
        "balance: the batch costs %" G_GINT64_FORMAT " cents, the balance is %"
        G_GINT64_FORMAT " cents", cost, emu->wallet_cents);

    b = begin_error (message);
    json_builder_set_member_name (b, "details");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "per_file_estimates");
    json_builder_begin_array (b);
    for (i = 0; i < n; i++) {
      const RdUploadFile *file = g_ptr_array_index (upload->files, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "filename");
      json_builder_add_string_value (b, file->name);
      json_builder_set_member_name (b, "media_type");
      json_builder_add_string_value (b,
          rd_upload_media_type_to_string (file->media_type));
      json_builder_set_member_name (b, "estimated_cost_cents");
      json_builder_add_int_value (b, emu->cost_per_file_cents);
      json_builder_end_object (b);
    }
    json_builder_end_array (b);
    json_builder_set_member_name (b, "total_estimated_cost_cents");
    json_builder_add_int_value (b, cost);
    json_builder_set_member_name (b, "balance_cents");
    json_builder_add_int_value (b, emu->wallet_cents);
    json_builder_end_object (b);
    set_json (msg, SOUP_STATUS_PAYMENT_REQUIRED, end_error (b));
    return FALSE;
  }
  return TRUE;
}

static void
create_batch (RdEmulator * emu, Request * req, SoupServerMessage * msg)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *bad_field = NULL;
  RdEmulatorSettings settings = { 0, };
  RdUploadLimits limits = { RD_EMULATOR_MAX_FILES, 0 };
  RdUpload *upload;
  RdEmulatorBatch *batch;
  JsonNode *item;

  EMU_LOCK (emu);
  limits.max_total_bytes = emu->max_total_bytes;
  EMU_UNLOCK (emu);

  if (rd_upload_spool_overflowed (req->spool)) {
    set_invalid (msg, "batch exceeds the maximum total upload size (500 MB)",
        NULL);
    return;
  }
  upload = rd_upload_parse (req->spool, req->boundary, &limits, &error);
  if (upload == NULL) {
    if (g_error_matches (error, RD_UPLOAD_ERROR, RD_UPLOAD_ERROR_STORAGE))
      set_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, error->message);
    else
      set_invalid (msg, error->message, NULL);
    return;
  }
  if (!rd_emulator_settings_parse (&settings, upload->fields, &bad_field,
          &error)) {
    set_invalid (msg, error->message, bad_field);
    rd_emulator_settings_clear (&settings);
    rd_upload_free (upload);
    return;
  }

  EMU_LOCK (emu);
  if (!check_account (emu, msg, upload, &settings)) {
    EMU_UNLOCK (emu);
    rd_emulator_settings_clear (&settings);
    rd_upload_free (upload);
    return;
  }
  if (emu->wallet_cents >= 0)
    emu->wallet_cents -= (gint64) upload->files->len * emu->cost_per_file_cents;
  if (settings.intelligence)
    emu->intelligence_used += upload->files->len;
  batch = batch_new (emu, upload, &settings, req, msg);
  emu->files_received += upload->files->len;
  if (batch->settings.callback_url)
    schedule_callback (emu, batch);
  /* The create answer is the moment of creation: nothing has finished. */
  item = rd_emulator_batch_to_json (batch, batch->created_us - 1);
  EMU_UNLOCK (emu);

  set_item (msg, SOUP_STATUS_ACCEPTED, item);
}

/* ---- callbacks ---- */

typedef struct
{
  RdEmulator *emu;
  RdEmulatorBatch *batch;
  SoupMessage *msg;
} CallbackSend;

static gboolean
host_is_loopback (const gchar * host)
{
  g_autoptr (GInetAddress) address = NULL;

  if (g_ascii_strcasecmp (host, "localhost") == 0)
    return TRUE;
  address = g_inet_address_new_from_string (host);
  return address && g_inet_address_get_is_loopback (address);
}

static void
callback_sent (GObject * source, GAsyncResult * result, gpointer user_data)
{
  CallbackSend *send = user_data;
  RdEmulator *emu = send->emu;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) body = NULL;

  body = soup_session_send_and_read_finish (SOUP_SESSION (source), result,
      &error);
  EMU_LOCK (emu);
  if (body) {
    send->batch->callback_state = RD_EMULATOR_CALLBACK_SENT;
    send->batch->callback_http_status = soup_message_get_status (send->msg);
    emu->callbacks_sent++;
  } else {
    send->batch->callback_state = RD_EMULATOR_CALLBACK_FAILED;
    send->batch->callback_error = g_strdup (error->message);
    emu->callbacks_failed++;
  }
  EMU_UNLOCK (emu);
  emu->callbacks_in_flight--;
  g_object_unref (send->msg);
  g_free (send);
}

typedef struct
{
  RdEmulator *emu;
  RdEmulatorBatch *batch;
} TerminalWait;

static gboolean
send_callback (gpointer user_data)
{
  TerminalWait *wait = user_data;
  RdEmulator *emu = wait->emu;
  RdEmulatorBatch *batch = wait->batch;
  gint64 now = g_get_monotonic_time ();
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GUri) uri = NULL;
  g_autofree gchar *text = NULL;
  g_autoptr (GBytes) body = NULL;
  CallbackSend *send;

  EMU_LOCK (emu);
  g_clear_pointer (&batch->terminal_source, g_source_unref);
  uri = g_uri_parse (batch->settings.callback_url, SOUP_HTTP_URI_FLAGS, NULL);
  if (!emu->allow_non_loopback && !host_is_loopback (g_uri_get_host (uri))) {
    batch->callback_state = RD_EMULATOR_CALLBACK_SKIPPED;
    batch->callback_error = g_strdup ("not sent: the callback host is not a "
        "loopback address");
    EMU_UNLOCK (emu);
    return G_SOURCE_REMOVE;
  }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "success");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_set_member_name (b, "item");
  json_builder_add_value (b, rd_emulator_batch_to_json (batch, MAX (now,
              rd_emulator_batch_terminal_us (batch))));
  json_builder_end_object (b);
  text = json_to_string (json_builder_get_root (b), FALSE);
  batch->callback_state = RD_EMULATOR_CALLBACK_SENDING;
  EMU_UNLOCK (emu);

  send = g_new0 (CallbackSend, 1);
  send->emu = emu;
  send->batch = batch;
  send->msg = soup_message_new_from_uri (SOUP_METHOD_POST, uri);
  body = g_bytes_new_take (text, strlen (text));
  text = NULL;
  soup_message_set_request_body_from_bytes (send->msg, "application/json",
      body);
  emu->callbacks_in_flight++;
  soup_session_send_and_read_async (emu->session, send->msg,
      G_PRIORITY_DEFAULT, emu->cancellable, callback_sent, send);
  return G_SOURCE_REMOVE;
}

/* Called with the lock held, on the server thread. */
static void
schedule_callback (RdEmulator * emu, RdEmulatorBatch * batch)
{
  gint64 wait_us = rd_emulator_batch_terminal_us (batch) -
      g_get_monotonic_time ();
  TerminalWait *wait = g_new0 (TerminalWait, 1);

  wait->emu = emu;
  wait->batch = batch;
  /* Rounded up, and one more: the timeout must not fire before the last
   * detect is done by the monotonic clock. */
  batch->terminal_source = wait_us > 0 ?
      g_timeout_source_new ((wait_us + 999) / 1000 + 1) : g_idle_source_new ();
  g_source_set_callback (batch->terminal_source, send_callback, wait, g_free);
  g_source_attach (batch->terminal_source, emu->context);
}

/* ---- GET /detect/batch/{uuid}, GET /detect/{uuid}, stats ---- */

static void
get_batch (RdEmulator * emu, Request * req, SoupServerMessage * msg)
{
  g_autofree gchar *key = lookup_key (req->id);
  RdEmulatorBatch *batch;
  JsonNode *item = NULL;

  EMU_LOCK (emu);
  batch = g_hash_table_lookup (emu->batches_by_key, key);
  /* Another team's batch does not exist, as far as this token can tell. */
  if (batch && strcmp (batch->owner, req->owner) == 0)
    item = rd_emulator_batch_to_json (batch, g_get_monotonic_time ());
  EMU_UNLOCK (emu);

  if (item)
    set_item (msg, SOUP_STATUS_OK, item);
  else
    set_error (msg, SOUP_STATUS_NOT_FOUND, "Batch not found");
}

static void
get_detect (RdEmulator * emu, Request * req, SoupServerMessage * msg)
{
  g_autofree gchar *key = lookup_key (req->id);
  RdEmulatorDetect *detect;
  JsonNode *item = NULL;

  EMU_LOCK (emu);
  detect = g_hash_table_lookup (emu->detects_by_key, key);
  if (detect && strcmp (detect->batch->owner, req->owner) == 0)
    item = rd_emulator_detect_to_json (detect, g_get_monotonic_time (),
        emu->media_base);
  EMU_UNLOCK (emu);

  if (item)
    set_item (msg, SOUP_STATUS_OK, item);
  else
    set_error (msg, SOUP_STATUS_NOT_FOUND, "Detect not found");
}

/* ---- GET /detect: the list ---- */

/* An integer query parameter from @min to @max (G_MAXINT64: no upper
 * bound); a 400 naming it and its bounds when it is not one, or when it is
 * @required and missing. */
static gboolean
query_integer (SoupServerMessage * msg, GHashTable * query,
    const gchar * name, gboolean required, gint64 min, gint64 max,
    gint64 * value)
{
  const gchar *text = query ? g_hash_table_lookup (query, name) : NULL;
  g_autofree gchar *bounds = max == G_MAXINT64 ?
      g_strdup_printf ("an integer >= %" G_GINT64_FORMAT, min) :
      g_strdup_printf ("an integer from %" G_GINT64_FORMAT " to %"
      G_GINT64_FORMAT, min, max);
  g_autofree gchar *message = NULL;

  if (text == NULL && !required)
    return TRUE;
  if (text && g_ascii_string_to_signed (text, 10, min, max, value, NULL))
    return TRUE;
  if (text == NULL)
    message = g_strdup_printf ("%s is required: %s", name, bounds);
  else
    message = g_strdup_printf ("%s must be %s, got '%s'", name, bounds, text);
  set_invalid (msg, message, name);
  return FALSE;
}

/* Newest first: created_at descending, then creation order descending
 * (later batches, then later files of a batch). */
static gint
newest_first (gconstpointer a, gconstpointer b)
{
  const RdEmulatorDetect *x = *(RdEmulatorDetect * const *) a;
  const RdEmulatorDetect *y = *(RdEmulatorDetect * const *) b;
  gint order = g_date_time_compare (y->batch->created_at, x->batch->created_at);

  if (order != 0)
    return order;
  if (x->batch->sequence != y->batch->sequence)
    return x->batch->sequence > y->batch->sequence ? -1 : 1;
  return x->position > y->position ? -1 : x->position < y->position;
}

/* Called with the lock held: the detects of @owner's batches, newest
 * first. */
static GPtrArray *
owned_detects (RdEmulator * emu, const gchar * owner)
{
  GPtrArray *detects = g_ptr_array_new ();
  guint i, j;

  for (i = 0; i < emu->batches->len; i++) {
    const RdEmulatorBatch *batch = g_ptr_array_index (emu->batches, i);

    if (strcmp (batch->owner, owner) != 0)
      continue;
    for (j = 0; j < batch->detects->len; j++)
      g_ptr_array_add (detects, g_ptr_array_index (batch->detects, j));
  }
  g_ptr_array_sort (detects, newest_first);
  return detects;
}

/* Called with the lock held: page @page (from 1) of @detects, each item the
 * one GET /detect/{uuid} gives. A page past the last has no items. */
static JsonNode *
detect_page_to_json (RdEmulator * emu, GPtrArray * detects, gint64 page,
    gint64 page_size)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  gint64 total = detects->len;
  gint64 num_pages = (total + page_size - 1) / page_size;
  gint64 now = g_get_monotonic_time ();
  gint64 first = 0, last = 0, i;

  /* compared before multiplying, so that a huge page cannot overflow */
  if (page <= num_pages) {
    first = (page - 1) * page_size;
    last = MIN (total, first + page_size);
  }

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "success");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_set_member_name (b, "page");
  json_builder_add_int_value (b, page);
  json_builder_set_member_name (b, "num_pages");
  json_builder_add_int_value (b, num_pages);
  json_builder_set_member_name (b, "page_size");
  json_builder_add_int_value (b, page_size);
  json_builder_set_member_name (b, "total_count");
  json_builder_add_int_value (b, total);
  json_builder_set_member_name (b, "items");
  json_builder_begin_array (b);
  for (i = first; i < last; i++)
    json_builder_add_value (b, rd_emulator_detect_to_json
        (g_ptr_array_index (detects, i), now, emu->media_base));
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static void
list_detects (RdEmulator * emu, Request * req, SoupServerMessage * msg,
    GHashTable * query)
{
  g_autoptr (GPtrArray) detects = NULL;
  gint64 page = 1, page_size = LIST_DEFAULT_PAGE_SIZE;
  JsonNode *node;

  if (!query_integer (msg, query, "page", TRUE, 1, G_MAXINT64, &page)
      || !query_integer (msg, query, "page_size", FALSE, LIST_MIN_PAGE_SIZE,
          LIST_MAX_PAGE_SIZE, &page_size))
    return;

  EMU_LOCK (emu);
  detects = owned_detects (emu, req->owner);
  node = detect_page_to_json (emu, detects, page, page_size);
  EMU_UNLOCK (emu);
  set_json (msg, SOUP_STATUS_OK, node);
}

static const gchar *
callback_state_to_string (RdEmulatorCallbackState state)
{
  switch (state) {
    case RD_EMULATOR_CALLBACK_NONE:
      return "none";
    case RD_EMULATOR_CALLBACK_WAITING:
      return "waiting";
    case RD_EMULATOR_CALLBACK_SENDING:
      return "sending";
    case RD_EMULATOR_CALLBACK_SENT:
      return "sent";
    case RD_EMULATOR_CALLBACK_FAILED:
      return "failed";
    case RD_EMULATOR_CALLBACK_SKIPPED:
      return "skipped";
  }
  return "none";
}

static void
add_batch_stats (JsonBuilder * b, const RdEmulatorBatch * batch, gint64 now)
{
  g_autofree gchar *created = rd_emulator_format_time (batch->created_at);
  const RdUpload *upload = batch->upload;
  guint completed, failed, i;
  const gchar *status;

  status = rd_emulator_batch_status (batch, now, &completed, &failed);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "uuid");
  json_builder_add_string_value (b, batch->uuid);
  json_builder_set_member_name (b, "created_at");
  json_builder_add_string_value (b, created);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, status);
  json_builder_set_member_name (b, "total_files");
  json_builder_add_int_value (b, batch->detects->len);
  json_builder_set_member_name (b, "completed_count");
  json_builder_add_int_value (b, completed);
  json_builder_set_member_name (b, "failed_count");
  json_builder_add_int_value (b, failed);
  json_builder_set_member_name (b, "processing_ms");
  json_builder_add_int_value (b, batch->processing_ms);
  json_builder_set_member_name (b, "upload_mode");
  json_builder_add_string_value (b, upload->zip ? "zip" : "files");
  if (upload->zip) {
    json_builder_set_member_name (b, "zip");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, upload->zip_name);
    json_builder_set_member_name (b, "size");
    json_builder_add_int_value (b, upload->zip_size);
    json_builder_end_object (b);
  }
  json_builder_set_member_name (b, "body_bytes");
  json_builder_add_int_value (b, batch->body_bytes);
  json_builder_set_member_name (b, "user_agent");
  if (batch->user_agent)
    json_builder_add_string_value (b, batch->user_agent);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "prefer_present");
  json_builder_add_boolean_value (b, batch->prefer_present);
  /* The scheme only: the token itself is never kept. */
  json_builder_set_member_name (b, "authorization_scheme");
  json_builder_add_string_value (b, batch->auth_scheme);

  json_builder_set_member_name (b, "settings");
  json_builder_begin_object (b);
  for (i = 0; i < upload->fields->len; i++) {
    const RdUploadField *field = g_ptr_array_index (upload->fields, i);

    json_builder_set_member_name (b, field->name);
    json_builder_add_string_value (b, field->value);
  }
  json_builder_end_object (b);

  json_builder_set_member_name (b, "files");
  json_builder_begin_array (b);
  for (i = 0; i < batch->detects->len; i++) {
    const RdEmulatorDetect *detect = g_ptr_array_index (batch->detects, i);

    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, detect->file->name);
    json_builder_set_member_name (b, "size");
    json_builder_add_int_value (b, detect->file->size);
    json_builder_set_member_name (b, "sha256");
    json_builder_add_string_value (b, detect->file->sha256_hex);
    json_builder_set_member_name (b, "media_type");
    json_builder_add_string_value (b,
        rd_upload_media_type_to_string (detect->file->media_type));
    json_builder_set_member_name (b, "detect_uuid");
    json_builder_add_string_value (b, detect->uuid);
    json_builder_set_member_name (b, "status");
    json_builder_add_string_value (b, rd_emulator_detect_status (detect, now));
    json_builder_end_object (b);
  }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "detect_uuids");
  json_builder_begin_array (b);
  for (i = 0; i < batch->detects->len; i++) {
    const RdEmulatorDetect *detect = g_ptr_array_index (batch->detects, i);
    json_builder_add_string_value (b, detect->uuid);
  }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "skipped_entries");
  json_builder_begin_array (b);
  for (i = 0; i < upload->skipped->len; i++) {
    const RdUploadSkipped *skipped = g_ptr_array_index (upload->skipped, i);

    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, skipped->name);
    json_builder_set_member_name (b, "reason");
    json_builder_add_string_value (b, skipped->reason);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "callback");
  if (batch->callback_state == RD_EMULATOR_CALLBACK_NONE) {
    json_builder_add_null_value (b);
  } else {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "url");
    json_builder_add_string_value (b, batch->settings.callback_url);
    json_builder_set_member_name (b, "state");
    json_builder_add_string_value (b,
        callback_state_to_string (batch->callback_state));
    json_builder_set_member_name (b, "http_status");
    json_builder_add_int_value (b, batch->callback_http_status);
    json_builder_set_member_name (b, "error");
    if (batch->callback_error)
      json_builder_add_string_value (b, batch->callback_error);
    else
      json_builder_add_null_value (b);
    json_builder_end_object (b);
  }
  json_builder_end_object (b);
}

/* Called with the lock held. */
static JsonNode *
stats_to_json (RdEmulator * emu)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  JsonObject *by_route = json_object_new ();
  JsonNode *by_route_node = json_node_new (JSON_NODE_OBJECT);
  GHashTableIter iter;
  gpointer key, value;
  gint64 now = g_get_monotonic_time ();
  guint i;

  g_hash_table_iter_init (&iter, emu->responses);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    g_auto (GStrv) parts = g_strsplit (key, "\n", 2);
    JsonObject *statuses;

    if (!json_object_has_member (by_route, parts[0]))
      json_object_set_object_member (by_route, parts[0], json_object_new ());
    statuses = json_object_get_object_member (by_route, parts[0]);
    json_object_set_int_member (statuses, parts[1], GPOINTER_TO_UINT (value));
  }
  json_node_take_object (by_route_node, by_route);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "emulator");
  json_builder_add_string_value (b, RD_EMULATOR_NAME " " RD_EMULATOR_VERSION);
  json_builder_set_member_name (b, "requests");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "total");
  json_builder_add_int_value (b, emu->requests_total);
  json_builder_set_member_name (b, "by_route");
  json_builder_add_value (b, by_route_node);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "batches_created");
  json_builder_add_int_value (b, emu->batches->len);
  json_builder_set_member_name (b, "files_received");
  json_builder_add_int_value (b, emu->files_received);
  json_builder_set_member_name (b, "bytes_received");
  json_builder_add_int_value (b, emu->bytes_received);
  json_builder_set_member_name (b, "connections_accepted");
  json_builder_add_int_value (b, emu->connections_accepted);
  json_builder_set_member_name (b, "callbacks_sent");
  json_builder_add_int_value (b, emu->callbacks_sent);
  json_builder_set_member_name (b, "callbacks_failed");
  json_builder_add_int_value (b, emu->callbacks_failed);
  json_builder_set_member_name (b, "faults_injected");
  json_builder_begin_object (b);
  for (i = RD_EMULATOR_FAULT_NONE + 1; i < N_FAULTS; i++) {
    json_builder_set_member_name (b, fault_names[i]);
    json_builder_add_int_value (b, emu->faults_injected[i]);
  }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "wallet");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "balance_cents");
  json_builder_add_int_value (b, emu->wallet_cents);
  json_builder_set_member_name (b, "cost_per_file_cents");
  json_builder_add_int_value (b, emu->cost_per_file_cents);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "intelligence");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "limit");
  json_builder_add_int_value (b, emu->intelligence_limit);
  json_builder_set_member_name (b, "used");
  json_builder_add_int_value (b, emu->intelligence_used);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "batches");
  json_builder_begin_array (b);
  for (i = 0; i < emu->batches->len; i++)
    add_batch_stats (b, g_ptr_array_index (emu->batches, i), now);
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

gchar *
rd_emulator_get_stats_json (RdEmulator * emu)
{
  JsonNode *node;
  gchar *text;

  EMU_LOCK (emu);
  node = stats_to_json (emu);
  EMU_UNLOCK (emu);
  text = json_to_string (node, TRUE);
  json_node_unref (node);
  return text;
}

/* ---- the handler ---- */

static void
set_method_not_allowed (SoupServerMessage * msg, const gchar * allow)
{
  soup_message_headers_replace (soup_server_message_get_response_headers
      (msg), "Allow", allow);
  set_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "Method not allowed");
}

/* Faults that act once the answer is known. */
static void
apply_late_fault (RdEmulator * emu, Request * req, SoupServerMessage * msg)
{
  guint delay_ms;

  switch (req->fault) {
    case RD_EMULATOR_FAULT_DROP_AFTER_BODY:
      record_response (emu, req, "dropped");
      defer (emu, msg, TRUE, 0);
      return;
    case RD_EMULATOR_FAULT_SLOW:
      EMU_LOCK (emu);
      delay_ms = emu->slow_ms;
      EMU_UNLOCK (emu);
      record_status (emu, req, msg);
      defer (emu, msg, FALSE, delay_ms);
      return;
    case RD_EMULATOR_FAULT_MALFORMED_JSON:{
      g_autoptr (GBytes) body =
          soup_message_body_flatten (soup_server_message_get_response_body
          (msg));
      gsize len;
      const gchar *data = g_bytes_get_data (body, &len);

      /* The first half of the real answer: never valid JSON. */
      soup_server_message_set_response (msg, "application/json",
          SOUP_MEMORY_COPY, data, MAX (len / 2, 1));
      record_status (emu, req, msg);
      return;
    }
    default:
      record_status (emu, req, msg);
      return;
  }
}

static gboolean
is_get (const gchar * method)
{
  return strcmp (method, SOUP_METHOD_GET) == 0
      || strcmp (method, SOUP_METHOD_HEAD) == 0;
}

static void
server_handler (SoupServer * server, SoupServerMessage * msg,
    const gchar * path, GHashTable * query, gpointer user_data)
{
  RdEmulator *emu = user_data;
  Request *req = g_object_get_data (G_OBJECT (msg), "rd-emulator-request");
  const gchar *method = soup_server_message_get_method (msg);

  if (req == NULL) {
    set_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "request lost");
    return;
  }
  if (req->dropped_mid_body) {
    /* the whole body came in the chunk that dropped it: never handled */
    set_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "dropped");
    defer (emu, msg, TRUE, 0);
    return;
  }

  switch (req->route) {
    case ROUTE_DETECTS:
      /* POST /detect (a single detect from a URL) is not emulated */
      if (is_get (method))
        list_detects (emu, req, msg, query);
      else
        set_method_not_allowed (msg, "GET, HEAD");
      break;
    case ROUTE_BATCHES:
      if (strcmp (method, SOUP_METHOD_POST) == 0)
        create_batch (emu, req, msg);
      else
        set_method_not_allowed (msg, "POST");
      break;
    case ROUTE_BATCH:
      if (is_get (method))
        get_batch (emu, req, msg);
      else
        set_method_not_allowed (msg, "GET, HEAD");
      break;
    case ROUTE_DETECT:
      if (is_get (method))
        get_detect (emu, req, msg);
      else
        set_method_not_allowed (msg, "GET, HEAD");
      break;
    case ROUTE_STATS:
      if (is_get (method)) {
        JsonNode *node;

        EMU_LOCK (emu);
        node = stats_to_json (emu);
        EMU_UNLOCK (emu);
        set_json (msg, SOUP_STATUS_OK, node);
      } else {
        set_method_not_allowed (msg, "GET, HEAD");
      }
      break;
    case ROUTE_MEDIA:
      set_error (msg, SOUP_STATUS_GONE, "The emulator keeps no media: "
          "nothing was analysed");
      break;
    case ROUTE_API_OTHER:
    case ROUTE_OTHER:
      set_error (msg, SOUP_STATUS_NOT_FOUND, "Not found");
      break;
  }
  apply_late_fault (emu, req, msg);
}

/* ---- the server thread ---- */

static gboolean
signal_started (gpointer user_data)
{
  RdEmulator *emu = user_data;

  EMU_LOCK (emu);
  emu->start_done = TRUE;
  g_cond_broadcast (&emu->start_cond);
  EMU_UNLOCK (emu);
  return G_SOURCE_REMOVE;
}

static gchar *
url_host (GInetAddress * address)
{
  g_autofree gchar *text = g_inet_address_to_string (address);

  if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV6)
    return g_strdup_printf ("[%s]", text);
  return g_steal_pointer (&text);
}

/* Counts the connections the server accepted, told apart by their socket:
 * a socket seen for the first time (marked with qdata) is a new one. Only
 * accepted: libsoup 3.2 does not tell when a client closes a kept-alive
 * connection, so the open ones are for ss(8) to count. */
static void
request_started (SoupServer * server, SoupServerMessage * msg, RdEmulator * emu)
{
  GQuark quark = g_quark_from_static_string ("rd-emulator-connection");
  GSocket *socket = soup_server_message_get_socket (msg);

  if (socket == NULL || g_object_get_qdata (G_OBJECT (socket), quark))
    return;
  g_object_set_qdata (G_OBJECT (socket), quark, GINT_TO_POINTER (1));
  EMU_LOCK (emu);
  emu->connections_accepted++;
  EMU_UNLOCK (emu);
}

static gboolean
server_setup (RdEmulator * emu, GInetAddress * address, GError ** error)
{
  g_autoptr (GSocketAddress) socket_address = NULL;
  g_autofree gchar *host = NULL;
  GSList *uris;

  emu->server = soup_server_new ("server-header",
      RD_EMULATOR_NAME "/" RD_EMULATOR_VERSION, NULL);
  g_signal_connect (emu->server, "request-started",
      G_CALLBACK (request_started), emu);
  soup_server_add_early_handler (emu->server, NULL, early_handler, emu, NULL);
  soup_server_add_handler (emu->server, NULL, server_handler, emu, NULL);
  socket_address = g_inet_socket_address_new (address, emu->requested_port);
  if (!soup_server_listen (emu->server, socket_address, 0, error))
    return FALSE;

  uris = soup_server_get_uris (emu->server);
  emu->port = uris ? g_uri_get_port (uris->data) : 0;
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  host = url_host (address);
  emu->base_url = g_strdup_printf ("http://%s:%u" API_PREFIX, host, emu->port);
  emu->media_base = g_strdup_printf ("http://%s:%u" EMULATOR_PREFIX "media",
      host, emu->port);

  emu->session = soup_session_new_with_options ("timeout", CALLBACK_TIMEOUT_S,
      "user-agent", RD_EMULATOR_NAME "/" RD_EMULATOR_VERSION, NULL);
  emu->cancellable = g_cancellable_new ();
  return TRUE;
}

static void
server_teardown (RdEmulator * emu)
{
  guint i;

  while (emu->pending_ops) {
    PendingOp *op = emu->pending_ops->data;

    emu->pending_ops = g_list_delete_link (emu->pending_ops, emu->pending_ops);
    g_source_destroy (op->source);
  }

  EMU_LOCK (emu);
  for (i = 0; i < emu->batches->len; i++) {
    RdEmulatorBatch *batch = g_ptr_array_index (emu->batches, i);

    if (batch->terminal_source) {
      g_source_destroy (batch->terminal_source);
      g_clear_pointer (&batch->terminal_source, g_source_unref);
    }
    if (batch->callback_state == RD_EMULATOR_CALLBACK_WAITING) {
      batch->callback_state = RD_EMULATOR_CALLBACK_SKIPPED;
      batch->callback_error = g_strdup ("not sent: the emulator stopped "
          "before the batch was terminal");
    }
  }
  EMU_UNLOCK (emu);

  if (emu->cancellable)
    g_cancellable_cancel (emu->cancellable);
  while (emu->callbacks_in_flight > 0)
    g_main_context_iteration (emu->context, TRUE);

  if (emu->server) {
    soup_server_disconnect (emu->server);
    g_clear_object (&emu->server);
  }
  g_clear_object (&emu->session);
  g_clear_object (&emu->cancellable);
  /* Let what the server and the session left behind dispatch and go. */
  while (g_main_context_iteration (emu->context, FALSE));
}

typedef struct
{
  RdEmulator *emu;
  GInetAddress *address;
} ThreadStart;

static gpointer
server_thread (gpointer user_data)
{
  ThreadStart *start = user_data;
  RdEmulator *emu = start->emu;
  GError *error = NULL;

  g_main_context_push_thread_default (emu->context);
  if (server_setup (emu, start->address, &error)) {
    GSource *source = g_idle_source_new ();

    /* Reported from inside the loop, so a stop() right after start()
     * cannot quit the loop before it runs. */
    g_source_set_callback (source, signal_started, emu, NULL);
    g_source_attach (source, emu->context);
    g_source_unref (source);
    g_main_loop_run (emu->loop);
  } else {
    EMU_LOCK (emu);
    emu->start_error = error;
    emu->start_done = TRUE;
    g_cond_broadcast (&emu->start_cond);
    EMU_UNLOCK (emu);
  }
  server_teardown (emu);
  g_main_context_pop_thread_default (emu->context);
  return NULL;
}

static GInetAddress *
parse_host (const gchar * host, GError ** error)
{
  GInetAddress *address;

  if (host == NULL || g_ascii_strcasecmp (host, "localhost") == 0)
    host = "127.0.0.1";
  address = g_inet_address_new_from_string (host);
  if (address == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "'%s' is not an IP address", host);
  return address;
}

gboolean
rd_emulator_start (RdEmulator * emu, const gchar * host, guint port,
    GError ** error)
{
  g_autoptr (GInetAddress) address = NULL;
  ThreadStart start;
  gboolean allow_non_loopback;

  g_return_val_if_fail (emu != NULL, FALSE);
  g_return_val_if_fail (emu->thread == NULL, FALSE);

  address = parse_host (host, error);
  if (address == NULL)
    return FALSE;
  EMU_LOCK (emu);
  allow_non_loopback = emu->allow_non_loopback;
  EMU_UNLOCK (emu);
  if (!allow_non_loopback && !g_inet_address_get_is_loopback (address)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
        "refusing to listen on '%s': not a loopback address", host);
    return FALSE;
  }
  if (port > G_MAXUINT16) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "port %u is out of range", port);
    return FALSE;
  }

  g_clear_pointer (&emu->base_url, g_free);
  g_clear_pointer (&emu->media_base, g_free);
  emu->port = 0;
  emu->requested_port = port;
  emu->context = g_main_context_new ();
  emu->loop = g_main_loop_new (emu->context, FALSE);
  emu->start_done = FALSE;
  emu->start_error = NULL;
  start.emu = emu;
  start.address = address;
  emu->thread = g_thread_new ("rd-emulator", server_thread, &start);

  EMU_LOCK (emu);
  while (!emu->start_done)
    g_cond_wait (&emu->start_cond, &emu->lock);
  EMU_UNLOCK (emu);

  if (emu->start_error) {
    g_propagate_error (error, g_steal_pointer (&emu->start_error));
    rd_emulator_stop (emu);
    return FALSE;
  }
  return TRUE;
}

void
rd_emulator_stop (RdEmulator * emu)
{
  g_return_if_fail (emu != NULL);

  if (emu->thread == NULL)
    return;
  g_main_loop_quit (emu->loop);
  g_thread_join (emu->thread);
  emu->thread = NULL;
  g_clear_pointer (&emu->loop, g_main_loop_unref);
  g_clear_pointer (&emu->context, g_main_context_unref);
}

const gchar *
rd_emulator_get_base_url (RdEmulator * emu)
{
  return emu->base_url;
}

guint
rd_emulator_get_port (RdEmulator * emu)
{
  return emu->port;
}

/* ---- construction and knobs ---- */

static gchar *
token_hash (const gchar * token)
{
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, token, -1);
}

RdEmulator *
rd_emulator_new (void)
{
  RdEmulator *emu = g_new0 (RdEmulator, 1);

  g_mutex_init (&emu->lock);
  g_cond_init (&emu->start_cond);
  emu->token_hashes = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (emu->token_hashes, token_hash (DEFAULT_TOKEN));
  emu->wallet_cents = -1;
  emu->intelligence_limit = -1;
  emu->slow_ms = 1000;
  emu->retry_after = 1;
  emu->max_total_bytes = RD_EMULATOR_MAX_TOTAL_BYTES;
  emu->rand = g_rand_new_with_seed (DEFAULT_SEED);
  emu->batches = g_ptr_array_new_with_free_func ((GDestroyNotify) batch_free);
  emu->batches_by_key = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, NULL);
  emu->detects_by_key = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, NULL);
  emu->responses = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);
  return emu;
}

void
rd_emulator_free (RdEmulator * emu)
{
  guint i;

  if (emu == NULL)
    return;
  rd_emulator_stop (emu);
  g_hash_table_unref (emu->batches_by_key);
  g_hash_table_unref (emu->detects_by_key);
  g_ptr_array_unref (emu->batches);
  g_hash_table_unref (emu->responses);
  g_ptr_array_unref (emu->token_hashes);
  g_free (emu->fail_substring);
  for (i = 0; i < N_FAULTS; i++)
    g_free (emu->faults[i].prefix);
  g_rand_free (emu->rand);
  g_free (emu->base_url);
  g_free (emu->media_base);
  g_cond_clear (&emu->start_cond);
  g_mutex_clear (&emu->lock);
  g_free (emu);
}

void
rd_emulator_set_token (RdEmulator * emu, const gchar * token)
{
  EMU_LOCK (emu);
  g_free (emu->token_hashes->pdata[0]);
  emu->token_hashes->pdata[0] = token_hash (token ? token : DEFAULT_TOKEN);
  EMU_UNLOCK (emu);
}

void
rd_emulator_add_token (RdEmulator * emu, const gchar * token)
{
  g_return_if_fail (token != NULL);

  EMU_LOCK (emu);
  g_ptr_array_add (emu->token_hashes, token_hash (token));
  EMU_UNLOCK (emu);
}

void
rd_emulator_set_processing_time (RdEmulator * emu, guint ms_per_file)
{
  EMU_LOCK (emu);
  emu->processing_ms = ms_per_file;
  EMU_UNLOCK (emu);
}

void
rd_emulator_set_fail_substring (RdEmulator * emu, const gchar * substr)
{
  EMU_LOCK (emu);
  g_free (emu->fail_substring);
  emu->fail_substring = g_strdup (substr);
  EMU_UNLOCK (emu);
}

void
rd_emulator_set_fail_rate (RdEmulator * emu, gdouble rate)
{
  EMU_LOCK (emu);
  emu->fail_rate = CLAMP (rate, 0.0, 1.0);
  EMU_UNLOCK (emu);
}

void
rd_emulator_set_wallet (RdEmulator * emu, gint64 balance_cents,
    guint cost_per_file_cents)
{
  EMU_LOCK (emu);
  emu->wallet_cents = balance_cents < 0 ? -1 : balance_cents;
  emu->cost_per_file_cents = cost_per_file_cents;
  EMU_UNLOCK (emu);
}

void
rd_emulator_set_intelligence_limit (RdEmulator * emu, gint limit, gint used)
{
  EMU_LOCK (emu);
  emu->intelligence_limit = limit < 0 ? -1 : limit;
  emu->intelligence_used = MAX (used, 0);
  EMU_UNLOCK (emu);
}

/* Called with the lock held: one mode replaces the other. */
static void
fault_setting_set (FaultSetting * fault, guint every_nth, gdouble percent,
    const gchar * prefix)
{
  gchar *copy = g_strdup (prefix);

  g_free (fault->prefix);
  fault->prefix = copy;
  fault->every_nth = every_nth;
  fault->percent = percent;
  fault->counter = 0;
}

void
rd_emulator_set_fault (RdEmulator * emu, RdEmulatorFault fault,
    guint every_nth, const gchar * path_prefix)
{
  guint i;

  g_return_if_fail ((guint) fault < N_FAULTS);

  EMU_LOCK (emu);
  for (i = RD_EMULATOR_FAULT_NONE + 1; i < N_FAULTS; i++) {
    if (fault == RD_EMULATOR_FAULT_NONE)
      fault_setting_set (&emu->faults[i], 0, 0, NULL);
    else if (fault == i)
      fault_setting_set (&emu->faults[i], every_nth, 0, path_prefix);
  }
  EMU_UNLOCK (emu);
}

gboolean
rd_emulator_set_fault_rate (RdEmulator * emu, RdEmulatorFault fault,
    gdouble percent, const gchar * path_prefix)
{
  gdouble percents[N_FAULTS];
  const gchar *prefixes[N_FAULTS];
  gboolean fits;
  guint i;

  g_return_val_if_fail ((guint) fault < N_FAULTS, FALSE);
  g_return_val_if_fail (percent >= 0 && percent <= 100, FALSE);

  if (fault == RD_EMULATOR_FAULT_NONE) {
    rd_emulator_set_fault (emu, RD_EMULATOR_FAULT_NONE, 0, NULL);
    return TRUE;
  }
  EMU_LOCK (emu);
  for (i = 0; i < N_FAULTS; i++) {
    percents[i] = emu->faults[i].percent;
    prefixes[i] = emu->faults[i].prefix;
  }
  percents[fault] = percent;
  prefixes[fault] = path_prefix;
  /* the slack forgives rounding, as of three rates of 100.0 / 3 */
  fits = max_rate_sum (percents, prefixes) <= 100 + 1e-9;
  if (fits)
    fault_setting_set (&emu->faults[fault], 0, percent, path_prefix);
  EMU_UNLOCK (emu);
  return fits;
}

void
rd_emulator_set_seed (RdEmulator * emu, guint32 seed)
{
  EMU_LOCK (emu);
  g_rand_set_seed (emu->rand, seed);
  EMU_UNLOCK (emu);
}

void
rd_emulator_set_clock_offset (RdEmulator * emu, gint64 offset_ms)
{
  EMU_LOCK (emu);
  emu->clock_offset_us = offset_ms * 1000;
  EMU_UNLOCK (emu);
}

void
rd_emulator_set_slow_delay (RdEmulator * emu, guint ms)
{
  EMU_LOCK (emu);
  emu->slow_ms = ms;
  EMU_UNLOCK (emu);
}

void
rd_emulator_set_retry_after (RdEmulator * emu, guint seconds)
{
  EMU_LOCK (emu);
  emu->retry_after = seconds;
  EMU_UNLOCK (emu);
}

void
rd_emulator_set_max_total_bytes (RdEmulator * emu, guint64 bytes)
{
  EMU_LOCK (emu);
  emu->max_total_bytes = bytes;
  EMU_UNLOCK (emu);
}

void
rd_emulator_set_allow_non_loopback (RdEmulator * emu, gboolean allow)
{
  EMU_LOCK (emu);
  emu->allow_non_loopback = allow;
  EMU_UNLOCK (emu);
}
