/* resemble-detect-emulator: the emulator library as a program, for running
 * the API stand-in by hand, in demos and in benchmarks. Prints the base URL
 * as its first line on stdout and serves until SIGINT or SIGTERM. */
#include "emulator.h"

#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct
{
  gchar *host;
  gint port;
  gchar *token;
  gint processing_ms;
  gchar *fail_substring;
  gdouble fail_rate;
  gint64 wallet_cents;
  gint cost_per_file_cents;
  gint intelligence_limit;
  gint intelligence_used;
  gchar **faults;
  gint64 seed;
  gint slow_ms;
  gint retry_after;
  gint64 max_total_bytes;
  gboolean allow_non_loopback;
  gint exit_after_ms;
} Options;

static gboolean
quit_loop (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

/* "P%" with P a number from 0 to 100. */
static gboolean
parse_percent (const gchar * text, gdouble * percent)
{
  g_autofree gchar *number = g_strndup (text, strlen (text) - 1);
  gchar *end;

  if (!g_ascii_isdigit (number[0]))
    return FALSE;
  *percent = g_ascii_strtod (number, &end);
  return *end == '\0' && *percent >= 0 && *percent <= 100;
}

/* NAME:P%[:PATH]: a share of the requests. */
static gboolean
apply_fault_rate (RdEmulator * emu, RdEmulatorFault fault, gchar ** parts,
    const gchar * spec, GError ** error)
{
  gdouble percent;

  if (!parse_percent (parts[1], &percent)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--fault=%s: expected NAME:P%%[:PATH] with P a number from 0 to 100",
        spec);
    return FALSE;
  }
  if (!rd_emulator_set_fault_rate (emu, fault, percent, parts[2])) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--fault=%s: the rates of faults whose paths overlap would add up "
        "to more than 100%%", spec);
    return FALSE;
  }
  return TRUE;
}

/* NAME:N[:PATH] or NAME:P%[:PATH], PATH optionally led by a method:
 * "POST /api/v2/detect/batch" */
static gboolean
apply_fault (RdEmulator * emu, const gchar * spec, GError ** error)
{
  g_auto (GStrv) parts = g_strsplit (spec, ":", 3);
  RdEmulatorFault fault;
  guint64 every_nth;

  if (parts[0] == NULL || !rd_emulator_fault_from_string (parts[0], &fault)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--fault=%s: unknown fault (500, 503, 429, drop-before-body, "
        "drop-mid-body, drop-after-body, slow, malformed-json)", spec);
    return FALSE;
  }
  if (parts[1] && g_str_has_suffix (parts[1], "%"))
    return apply_fault_rate (emu, fault, parts, spec, error);
  if (parts[1] == NULL
      || !g_ascii_string_to_unsigned (parts[1], 10, 0, G_MAXUINT, &every_nth,
          NULL)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--fault=%s: expected NAME:N[:PATH] with N a whole number, or "
        "NAME:P%%[:PATH]", spec);
    return FALSE;
  }
  rd_emulator_set_fault (emu, fault, every_nth, parts[2]);
  return TRUE;
}

int
main (int argc, char **argv)
{
  Options o = { 0, };
  GOptionEntry entries[] = {
    {"host", 0, 0, G_OPTION_ARG_STRING, &o.host,
        "Address to listen on (default 127.0.0.1)", "ADDRESS"},
    {"port", 0, 0, G_OPTION_ARG_INT, &o.port,
        "Port to listen on, 0 for a free one (default 0)", "PORT"},
    {"token", 0, 0, G_OPTION_ARG_STRING, &o.token,
        "The API token to accept (default test-token)", "TOKEN"},
    {"processing-ms", 0, 0, G_OPTION_ARG_INT, &o.processing_ms,
        "Processing time per file (default 0)", "MS"},
    {"fail-substring", 0, 0, G_OPTION_ARG_STRING, &o.fail_substring,
        "Files whose name contains it fail", "TEXT"},
    {"fail-rate", 0, 0, G_OPTION_ARG_DOUBLE, &o.fail_rate,
        "Share of files that fail, 0..1, drawn from the content hash", "RATE"},
    {"wallet-cents", 0, 0, G_OPTION_ARG_INT64, &o.wallet_cents,
        "Wallet balance, -1 for unlimited (default)", "CENTS"},
    {"cost-per-file-cents", 0, 0, G_OPTION_ARG_INT, &o.cost_per_file_cents,
        "Cost of each file against the wallet", "CENTS"},
    {"intelligence-limit", 0, 0, G_OPTION_ARG_INT, &o.intelligence_limit,
        "Intelligence detects allowed, -1 for no limit (default)", "N"},
    {"intelligence-used", 0, 0, G_OPTION_ARG_INT, &o.intelligence_used,
        "Intelligence detects already used", "N"},
    {"fault", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.faults,
        "Inject a fault every Nth request, or into P percent of them "
          "(under PATH); repeatable", "NAME:N[:PATH]|NAME:P%[:PATH]"},
    {"seed", 0, 0, G_OPTION_ARG_INT64, &o.seed,
        "Seed of the fault-rate draws (default 1)", "N"},
    {"slow-ms", 0, 0, G_OPTION_ARG_INT, &o.slow_ms,
        "Delay of the slow fault (default 1000)", "MS"},
    {"retry-after", 0, 0, G_OPTION_ARG_INT, &o.retry_after,
        "Retry-After of the 429 fault (default 1)", "SECONDS"},
    {"max-total-bytes", 0, 0, G_OPTION_ARG_INT64, &o.max_total_bytes,
        "Lower the 500 MB batch limit (for demos)", "BYTES"},
    {"allow-non-loopback", 0, 0, G_OPTION_ARG_NONE, &o.allow_non_loopback,
        "Allow a non-loopback --host and callback hosts", NULL},
    {"exit-after-ms", 0, 0, G_OPTION_ARG_INT, &o.exit_after_ms,
        "Exit after this long (for scripted checks)", "MS"},
    {NULL}
  };
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (RdEmulator) emu = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  gint i;

  o.wallet_cents = -1;
  o.intelligence_limit = -1;
  o.slow_ms = 1000;
  o.retry_after = 1;
  o.seed = 1;
  context = g_option_context_new ("- a local stand-in for Resemble's batch "
      "detection API");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    goto fail;
  if (o.port < 0 || o.port > 65535 || o.processing_ms < 0 || o.slow_ms < 0
      || o.retry_after < 0 || o.cost_per_file_cents < 0 || o.exit_after_ms < 0
      || o.max_total_bytes < 0 || o.fail_rate < 0 || o.fail_rate > 1
      || o.seed < 0 || o.seed > G_MAXUINT32) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "a value is out of range (see --help)");
    goto fail;
  }

  emu = rd_emulator_new ();
  if (o.token)
    rd_emulator_set_token (emu, o.token);
  rd_emulator_set_processing_time (emu, o.processing_ms);
  rd_emulator_set_fail_substring (emu, o.fail_substring);
  rd_emulator_set_fail_rate (emu, o.fail_rate);
  rd_emulator_set_wallet (emu, o.wallet_cents, o.cost_per_file_cents);
  rd_emulator_set_intelligence_limit (emu, o.intelligence_limit,
      o.intelligence_used);
  rd_emulator_set_slow_delay (emu, o.slow_ms);
  rd_emulator_set_retry_after (emu, o.retry_after);
  if (o.max_total_bytes > 0)
    rd_emulator_set_max_total_bytes (emu, o.max_total_bytes);
  rd_emulator_set_allow_non_loopback (emu, o.allow_non_loopback);
  rd_emulator_set_seed (emu, o.seed);
  for (i = 0; o.faults && o.faults[i]; i++) {
    if (!apply_fault (emu, o.faults[i], &error))
      goto fail;
  }

  if (!rd_emulator_start (emu, o.host ? o.host : "127.0.0.1", o.port, &error))
    goto fail;
  printf ("%s\n", rd_emulator_get_base_url (emu));
  fflush (stdout);

  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, quit_loop, loop);
  g_unix_signal_add (SIGTERM, quit_loop, loop);
  if (o.exit_after_ms > 0)
    g_timeout_add (o.exit_after_ms, quit_loop, loop);
  g_main_loop_run (loop);

  rd_emulator_stop (emu);
  g_free (o.host);
  g_free (o.token);
  g_free (o.fail_substring);
  g_strfreev (o.faults);
  return EXIT_SUCCESS;

fail:
  g_printerr ("resemble-detect-emulator: %s\n", error->message);
  g_free (o.host);
  g_free (o.token);
  g_free (o.fail_substring);
  g_strfreev (o.faults);
  return EXIT_FAILURE;
}
