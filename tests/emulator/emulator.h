/* A local stand-in for Resemble's batch deepfake-detection API, for tests,
 * benchmarks and demos: a libsoup3 SoupServer on its own thread that speaks
 * POST /detect/batch, GET /detect/batch/{uuid}, GET /detect/{uuid} and
 * GET /detect (the list of detects) as ../shared/api/ describes them, with
 * deterministic (and visibly emulated) results, callbacks, behaviour knobs
 * and fault injection, every Nth request or at a rate. Also a tiny
 * callback receiver that tests can point callback_url at. See
 * docs/emulator.md. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _RdEmulator RdEmulator;

typedef enum {
  RD_EMULATOR_FAULT_NONE,
  RD_EMULATOR_FAULT_500,
  RD_EMULATOR_FAULT_503,
  RD_EMULATOR_FAULT_429,              /* with Retry-After: 1 */
  RD_EMULATOR_FAULT_DROP_BEFORE_BODY, /* close the connection before reading the body */
  RD_EMULATOR_FAULT_DROP_AFTER_BODY,  /* read the whole body, process it (batch created!), then drop without answering */
  RD_EMULATOR_FAULT_SLOW,             /* answer after a delay (set_slow_delay) */
  RD_EMULATOR_FAULT_MALFORMED_JSON,   /* 200/202 with a body that is not JSON */
  RD_EMULATOR_FAULT_DROP_MID_BODY,    /* shut the socket down once the first body bytes are read, no answer */
} RdEmulatorFault;

/* The API's documented batch limits; the emulator enforces the stricter
 * decimal reading of "500 MB". */
#define RD_EMULATOR_MAX_FILES 50
#define RD_EMULATOR_MAX_TOTAL_BYTES G_GUINT64_CONSTANT (500000000)

RdEmulator *rd_emulator_new (void);
void rd_emulator_free (RdEmulator * emu);       /* stops if running */

/* Knobs: thread-safe, may be changed while running. A knob read when a batch
 * is created (processing time, failures, wallet, limit) applies to the
 * batches created after the change. */
void rd_emulator_set_token (RdEmulator * emu, const gchar * token);    /* default "test-token" */
/* Accepts one more token, as another team's: its batches are invisible to
 * the other tokens (404). */
void rd_emulator_add_token (RdEmulator * emu, const gchar * token);
void rd_emulator_set_processing_time (RdEmulator * emu, guint ms_per_file);     /* default 0 */
void rd_emulator_set_fail_substring (RdEmulator * emu, const gchar * substr);   /* files whose name contains it fail; NULL off */
void rd_emulator_set_fail_rate (RdEmulator * emu, gdouble rate);       /* 0..1, deterministic from content hash */
void rd_emulator_set_wallet (RdEmulator * emu, gint64 balance_cents, guint cost_per_file_cents);      /* balance -1 = unlimited (default) */
void rd_emulator_set_intelligence_limit (RdEmulator * emu, gint limit, gint used);      /* limit -1 = none (default) */
/* Every Nth request whose target starts with @path_prefix (NULL = any
 * route) gets @fault; every_nth 0 = off. The prefix is "[METHOD ]/path" and
 * is matched against the path plus "?query" when the request has one, so
 * "GET /api/v2/detect?" is the list of detects alone. Each fault kind has
 * its own setting and counter, so several can be on at once;
 * RD_EMULATOR_FAULT_NONE turns every fault off, rates included. Requests
 * under /__emulator/ never get faults. */
void rd_emulator_set_fault (RdEmulator * emu, RdEmulatorFault fault, guint every_nth, const gchar * path_prefix);
/* @percent (0..100) of the requests under @path_prefix get @fault, decided
 * by one draw per request shared by every kind in rate mode, so each kind
 * gets its own share; 0 = off. Replaces an every-Nth setting of the kind
 * (and set_fault replaces a rate); every-Nth faults take precedence;
 * RD_EMULATOR_FAULT_NONE turns every fault off. Returns FALSE, changing
 * nothing, when the rates of kinds whose prefixes can match one request
 * would add up to more than 100. */
gboolean rd_emulator_set_fault_rate (RdEmulator * emu, RdEmulatorFault fault, gdouble percent, const gchar * path_prefix);
/* Seeds the draws of the fault rates (default 1), and restarts them. */
void rd_emulator_set_seed (RdEmulator * emu, guint32 seed);
void rd_emulator_set_slow_delay (RdEmulator * emu, guint ms);
void rd_emulator_set_retry_after (RdEmulator * emu, guint seconds);    /* for 429, default 1 */
/* Lowers (or restores) the 500 MB total, so tests can reach that 400 with
 * small files; default RD_EMULATOR_MAX_TOTAL_BYTES. */
void rd_emulator_set_max_total_bytes (RdEmulator * emu, guint64 bytes);
/* Shifts the emulator's wall clock (created_at, updated_at and
 * file_deleted_at of the batches created afterwards) by @offset_ms, as a
 * server whose clock is not the client's; default 0. */
void rd_emulator_set_clock_offset (RdEmulator * emu, gint64 offset_ms);
/* Without it, start() refuses any host that is not a loopback address, and
 * callbacks are only sent to loopback hosts. Default FALSE. */
void rd_emulator_set_allow_non_loopback (RdEmulator * emu, gboolean allow);

/* Runs the server on its own thread with its own GMainContext; port 0 = a
 * free port. */
gboolean rd_emulator_start (RdEmulator * emu, const gchar * host, guint port, GError ** error);
void rd_emulator_stop (RdEmulator * emu);
const gchar *rd_emulator_get_base_url (RdEmulator * emu);      /* "http://127.0.0.1:PORT/api/v2" */
guint rd_emulator_get_port (RdEmulator * emu);
gchar *rd_emulator_get_stats_json (RdEmulator * emu);   /* same JSON as GET /__emulator/stats */

/* "500", "503", "429", "drop-before-body", "drop-after-body", "slow",
 * "malformed-json", "drop-mid-body", "none". */
const gchar *rd_emulator_fault_to_string (RdEmulatorFault fault);
gboolean rd_emulator_fault_from_string (const gchar * name, RdEmulatorFault * fault);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RdEmulator, rd_emulator_free)

/* A callback_url target for tests: a SoupServer on its own thread that
 * answers every POST with a configurable status and keeps the bodies. */
typedef struct _RdEmulatorReceiver RdEmulatorReceiver;

RdEmulatorReceiver *rd_emulator_receiver_new (void);
void rd_emulator_receiver_free (RdEmulatorReceiver * receiver);
/* The status the receiver answers with, default 200. */
void rd_emulator_receiver_set_status (RdEmulatorReceiver * receiver, guint status);
/* Listens on 127.0.0.1, a free port. */
gboolean rd_emulator_receiver_start (RdEmulatorReceiver * receiver, GError ** error);
/* "http://127.0.0.1:PORT/callback" */
const gchar *rd_emulator_receiver_get_url (RdEmulatorReceiver * receiver);
/* Blocks until at least @count POSTs have arrived or @timeout_ms passed;
 * returns whether they arrived. */
gboolean rd_emulator_receiver_wait (RdEmulatorReceiver * receiver, guint count, guint timeout_ms);
guint rd_emulator_receiver_get_count (RdEmulatorReceiver * receiver);
/* The body of the @index-th POST (0-based), NULL if there is none. */
gchar *rd_emulator_receiver_dup_body (RdEmulatorReceiver * receiver, guint index);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RdEmulatorReceiver, rd_emulator_receiver_free)

G_END_DECLS
