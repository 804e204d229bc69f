/* The token never leaves the request headers (issue 9): a smaller soak
 * (40 batches, the same faults) at GST_DEBUG=*:9 with the log in a file,
 * then every log line, every bus message (its structure; an error's or
 * warning's GError message and debug string), every file in the spool
 * (manifests included) and the emulator's stats are searched for the
 * token. The search must be able to fail: the token did reach the API
 * (the emulator refuses any other with a 401, and batches were done), the
 * log is large, and a canary logged after the run is found in it. */
#include <string.h>
#include <glib/gstdio.h>

#include "rd-check.h"
#include "soak-run.h"

GST_DEBUG_CATEGORY_STATIC (soak_debug);

static gchar *token;
static gchar *log_dir;

/* Occurrences of @needle in @length bytes at @data. */
static guint
hits_in (const gchar * data, gsize length, const gchar * needle)
{
  gsize needle_length = strlen (needle);
  const gchar *at = data, *end = data + length;
  guint hits = 0;

  while ((gsize) (end - at) >= needle_length
      && (at = memchr (at, needle[0], end - at - needle_length + 1))) {
    if (memcmp (at, needle, needle_length) == 0) {
      hits++;
      at += needle_length;
    } else {
      at++;
    }
  }
  return hits;
}

/* The token whole, and its random part alone (in case something escaped
 * or cut its prefix). */
static guint
token_hits_in (const gchar * data, gsize length)
{
  return hits_in (data, length, token)
      + hits_in (data, length, token + strlen ("soak-token-"));
}

static guint
token_hits_in_string (const gchar * text)
{
  return text ? token_hits_in (text, strlen (text)) : 0;
}

/* The first lines of the log that hold the token, the token masked. */
static void
print_lines_with_token (const gchar * data, gsize length)
{
  const gchar *random = token + strlen ("soak-token-");
  const gchar *line = data, *end = data + length;
  guint shown = 0;

  while (line < end && shown < 5) {
    const gchar *next = memchr (line, '\n', end - line);
    gsize line_length = (next ? next : end) - line;

    if (hits_in (line, line_length, random)) {
      g_autofree gchar *text = g_strndup (line, MIN (line_length, 400));
      g_auto (GStrv) parts = g_strsplit (text, random, -1);
      g_autofree gchar *masked = g_strjoinv ("<TOKEN>", parts);

      g_printerr ("the token is in the log: %s\n", masked);
      shown++;
    }
    line = next ? next + 1 : end;
  }
}

typedef struct
{
  guint files;
  guint64 bytes;
  guint hits;
} TreeScan;

static void
scan_tree (const gchar * path, TreeScan * scan)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  fail_unless (dir != NULL, "cannot read %s", path);
  while ((name = g_dir_read_name (dir))) {
    g_autofree gchar *child = g_build_filename (path, name, NULL);
    g_autofree gchar *contents = NULL;
    gsize length;
    guint hits;

    if (g_file_test (child, G_FILE_TEST_IS_DIR)) {
      scan_tree (child, scan);
      continue;
    }
    fail_unless (g_file_get_contents (child, &contents, &length, NULL),
        "cannot read %s", child);
    hits = token_hits_in (contents, length);
    if (hits)
      g_printerr ("the token is in %s\n", child);
    scan->hits += hits;
    scan->files++;
    scan->bytes += length;
  }
}

/* Every message: its structure, and for errors, warnings and infos the
 * GError message and the debug string. */
static guint
scan_messages (GPtrArray * messages)
{
  guint hits = 0;

  for (guint i = 0; i < messages->len; i++) {
    GstMessage *msg = messages->pdata[i];
    const GstStructure *s = gst_message_get_structure (msg);
    g_autofree gchar *text = s ? gst_structure_to_string (s) : NULL;
    g_autoptr (GError) error = NULL;
    g_autofree gchar *debug = NULL;
    guint found;

    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
      gst_message_parse_error (msg, &error, &debug);
    else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING)
      gst_message_parse_warning (msg, &error, &debug);
    else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_INFO)
      gst_message_parse_info (msg, &error, &debug);
    found = token_hits_in_string (text)
        + token_hits_in_string (error ? error->message : NULL)
        + token_hits_in_string (debug);
    if (found)
      g_printerr ("the token is in a %s message: %s\n",
          GST_MESSAGE_TYPE_NAME (msg), text);
    hits += found;
  }
  return hits;
}

GST_START_TEST (test_the_token_is_in_no_log_message_file_or_stats)
{
  const gchar *log_path = g_getenv ("GST_DEBUG_FILE");
  g_autofree gchar *canary = NULL;
  g_autoptr (GMappedFile) log = NULL;
  g_autoptr (GError) error = NULL;
  TreeScan spool = { 0, 0, 0 };
  SoakConfig config;
  SoakRun *run;
  const gchar *data;
  gsize length;
  guint log_hits, log_lines, message_hits, stats_hits, client_lines;

  if (!rd_check_have_elements (SOAK_ELEMENTS))
    return;
  fail_unless (log_path != NULL);
  soak_config_from_env (&config, token, "RD_SOAK_TOKEN_BATCHES", 40);
  soak_count_client_log ();
  run = soak_run (&config);
  soak_run_check (run);

  /* the log is complete up to here: a line written now is in it */
  canary = g_strdup_printf ("soak-canary-%08x%08x", g_random_int (),
      g_random_int ());
  GST_CAT_INFO (soak_debug, "%s", canary);

  log = g_mapped_file_new (log_path, FALSE, &error);
  fail_unless (log != NULL, "%s", error ? error->message : "");
  data = g_mapped_file_get_contents (log);
  length = g_mapped_file_get_length (log);
  log_lines = hits_in (data, length, "\n");
  log_hits = token_hits_in (data, length);
  client_lines = hits_in (data, length, " resembledetect ");
  message_hits = scan_messages (soak_run_get_messages (run));
  scan_tree (soak_run_get_spool (run), &spool);
  stats_hits = token_hits_in_string (soak_run_get_stats (run));

  g_print ("\n| token scan | lines or items | token hits |\n"
      "| --- | --- | --- |\n"
      "| GST_DEBUG=*:9 log (%.1f MB) | %u lines (%u of resembledetect) | %u |\n"
      "| bus messages | %u | %u |\n"
      "| spool files (manifests and media) | %u files, %" G_GUINT64_FORMAT
      " bytes | %u |\n| emulator stats | %zu bytes | %u |\n\n",
      length / 1e6, log_lines, client_lines, log_hits,
      soak_run_get_messages (run)->len, message_hits, spool.files,
      spool.bytes, spool.hits, strlen (soak_run_get_stats (run)), stats_hits);

  /* the search can find what is there */
  fail_unless (hits_in (data, length, canary) == 1, "the canary is not in "
      "the log: the search or the log is broken");
  fail_unless (log_lines > 50000, "only %u log lines at *:9", log_lines);
  fail_unless (client_lines >= 5 * config.batches, "only %u lines of the "
      "resembledetect category", client_lines);
  /* the token was sent: the emulator accepts no other (401), and batches
   * it created were done */
  fail_unless (soak_run_get_done (run) > 0);
  fail_unless (spool.files > 0);

  if (log_hits)
    print_lines_with_token (data, length);
  fail_unless_equals_int (log_hits, 0);
  fail_unless_equals_int (message_hits, 0);
  fail_unless_equals_int (spool.hits, 0);
  fail_unless_equals_int (stats_hits, 0);
  soak_run_free (run);
}

GST_END_TEST;

static Suite *
soak_token_suite (void)
{
  Suite *s = suite_create ("soak-token");
  TCase *tc = tcase_create ("at-full-debug");

  tcase_set_timeout (tc, 3600);
  tcase_add_test (tc, test_the_token_is_in_no_log_message_file_or_stats);
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  static const gchar *needed[] = { SOAK_ELEMENTS, NULL };
  g_autofree gchar *log_path = NULL;
  int status;

  /* before gst_init, which opens the log, and before any thread */
  token = soak_make_token ();
  g_setenv ("RESEMBLE_API_TOKEN", token, TRUE);
  log_dir = g_dir_make_tmp ("rd-soak-log-XXXXXX", NULL);
  g_assert (log_dir != NULL);
  log_path = g_build_filename (log_dir, "gst.log", NULL);
  g_setenv ("GST_DEBUG", "*:9", TRUE);
  g_setenv ("GST_DEBUG_FILE", log_path, TRUE);
  g_setenv ("GST_DEBUG_NO_COLOR", "1", TRUE);
  gst_check_init (&argc, &argv);
  GST_DEBUG_CATEGORY_INIT (soak_debug, "soak", 0, "the soak's canary");
  status = rd_check_main (soak_token_suite (), needed);
  if (status == 0 || g_getenv ("RD_SOAK_KEEP_LOG") == NULL) {
    g_unlink (log_path);
    g_rmdir (log_dir);
  } else {
    g_print ("soak: log kept at %s\n", log_path);
  }
  g_free (log_dir);
  g_free (token);
  return status;
}
