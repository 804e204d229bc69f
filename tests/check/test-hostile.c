/* Element tests of resembledetectsink on a hostile disk: a spool that
 * cannot be created or written, and one that fills up (ENOSPC) while
 * snapshots or manifests are being written. Each must end in a clear
 * error on the bus, never a crash, and must lose no file: what could not
 * be recorded stays on disk, and a next run on the same spool sends what
 * it can, each file once. The failures come from fail-io.c, which makes
 * chosen file system calls of this process fail; the API is the emulator,
 * in this process too. */
#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <gst/check/gstcheck.h>

#include "emulator.h"
#include "fail-io.h"
#include "rd-check.h"
#include "rd-test-utils.h"

#define TOKEN "hostile-token-81c2"
#define SNAPSHOTS "videotestsrc num-buffers=%u ! " \
  "video/x-raw,width=64,height=48,framerate=5/1 ! jpegenc name=enc"

static RdEmulator *emulator;
static gchar *tmp;
static gchar *spool;

/* what sabotage() makes fail, and from when */
static guint sabotage_at;       /* the buffer (from 1), 0 at EOS */
static guint sabotage_buffers;  /* seen so far */
static guint sabotage_skip;     /* calls that still go through */
static RdFailIoMode sabotage_mode;
static gchar *sabotage_path;
static int sabotage_errno;

static void
setup (void)
{
  g_autoptr (GError) error = NULL;

  emulator = rd_emulator_new ();
  rd_emulator_set_token (emulator, TOKEN);
  rd_emulator_set_processing_time (emulator, 0);
  fail_unless (rd_emulator_start (emulator, "127.0.0.1", 0, &error), "%s",
      error ? error->message : "");
  tmp = rd_test_make_tmp_dir ("rd-hostile-XXXXXX");
  spool = g_build_filename (tmp, "spool", NULL);
}

static void
teardown (void)
{
  rd_fail_io_set (RD_FAIL_IO_OFF, NULL, 0, 0);
  g_clear_pointer (&sabotage_path, g_free);
  rd_emulator_free (emulator);
  emulator = NULL;
  rd_test_remove_tree (tmp);
  g_clear_pointer (&tmp, g_free);
  g_clear_pointer (&spool, g_free);
}

/* ---- running a pipeline ---- */

typedef struct
{
  GPtrArray *messages;          /* the bus's errors, warnings, elements */
  GstMessage *error;            /* the first error */
  gboolean eos;
} Run;

static void
run_clear (Run * run)
{
  g_clear_pointer (&run->messages, g_ptr_array_unref);
  gst_clear_message (&run->error);
}

/* Called in the streaming thread on what jpegenc sends to the sink. */
typedef GstPadProbeReturn (*Saboteur) (GstPad * pad, GstPadProbeInfo * info,
    gpointer data);

/* @snapshots JPEG buffers into a sink on @location, until EOS or an
 * error; @saboteur, if any, sees them first. */
static void
run_pipeline (Run * run, const gchar * location, guint snapshots,
    const gchar * props, Saboteur saboteur)
{
  g_autofree gchar *source = g_strdup_printf (SNAPSHOTS, snapshots);
  g_autofree gchar *desc = g_strdup_printf ("%s ! resembledetectsink "
      "api-url=%s api-token=" TOKEN " location=%s poll-interval=1000000000 "
      "%s", source, rd_emulator_get_base_url (emulator),
      location, props ? props : "");
  g_autoptr (GError) error = NULL;
  g_autoptr (GstBus) bus = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);

  fail_unless (pipeline != NULL && error == NULL, "%s: %s", desc,
      error ? error->message : "");
  if (saboteur) {
    GstElement *enc = gst_bin_get_by_name (GST_BIN (pipeline), "enc");
    GstPad *pad = gst_element_get_static_pad (enc, "src");

    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER |
        GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, saboteur, NULL, NULL);
    gst_object_unref (pad);
    gst_object_unref (enc);
  }
  bus = gst_element_get_bus (pipeline);
  run->messages = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_message_unref);
  run->error = NULL;
  run->eos = FALSE;

  /* a start that fails posts its error before it returns */
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  while (!run->eos && run->error == NULL) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_WARNING |
        GST_MESSAGE_ELEMENT);

    fail_unless (msg != NULL, "the pipeline did not end within 60 s");
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS)
      run->eos = TRUE;
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
      run->error = gst_message_ref (msg);
    g_ptr_array_add (run->messages, msg);
  }
  fail_unless (gst_element_set_state (pipeline, GST_STATE_NULL) ==
      GST_STATE_CHANGE_SUCCESS);
  gst_object_unref (pipeline);
}

/* Fails unless @run ended in an error of @code whose text or debug has
 * @needle. */
static void
assert_error (const Run * run, GstResourceError code, const gchar * needle)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *debug = NULL;
  g_autofree gchar *all = NULL;

  fail_unless (run->error != NULL, "no error was posted");
  gst_message_parse_error (run->error, &error, &debug);
  all = g_strconcat (error->message, " / ", debug ? debug : "", NULL);
  GST_INFO ("error: %s", all);
  fail_unless (error->domain == GST_RESOURCE_ERROR && error->code == (gint)
      code, "error %s %d: %s", g_quark_to_string (error->domain), error->code,
      all);
  fail_unless (strstr (all, needle) != NULL, "\"%s\" is not in \"%s\"",
      needle, all);
}

static guint
count_named (const Run * run, const gchar * name)
{
  guint n = 0;

  for (guint i = 0; i < run->messages->len; i++) {
    const GstStructure *s = gst_message_get_structure (run->messages->pdata[i]);

    n += s != NULL && gst_structure_has_name (s, name);
  }
  return n;
}

/* ---- the files ---- */

/* The names of the images under @dir, into @names; with @incoming, those
 * of {spool}/incoming too, where a file is while it is written. */
static void
collect_images (const gchar * dir, gboolean incoming, GHashTable * names)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const gchar *name;

  while (d && (name = g_dir_read_name (d))) {
    g_autofree gchar *path = g_build_filename (dir, name, NULL);

    if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
      if (incoming || !g_str_equal (name, "incoming"))
        collect_images (path, incoming, names);
    } else if (g_str_has_suffix (name, ".jpg")) {
      g_hash_table_add (names, g_strdup (name));
    }
  }
}

static GHashTable *
images_on_disk (gboolean incoming)
{
  GHashTable *names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);

  collect_images (spool, incoming, names);
  return names;
}

/* Every file name the emulator received, counted. */
static GHashTable *
images_received (void)
{
  g_autofree gchar *json = rd_emulator_get_stats_json (emulator);
  g_autoptr (JsonNode) root = json_from_string (json, NULL);
  GHashTable *names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);
  JsonArray *batches;

  fail_unless (root != NULL);
  batches = json_object_get_array_member (json_node_get_object (root),
      "batches");
  for (guint i = 0; i < json_array_get_length (batches); i++) {
    JsonArray *files = json_object_get_array_member
        (json_array_get_object_element (batches, i), "files");

    for (guint j = 0; j < json_array_get_length (files); j++) {
      const gchar *name = json_object_get_string_member
          (json_array_get_object_element (files, j), "name");
      guint seen = GPOINTER_TO_UINT (g_hash_table_lookup (names, name));

      g_hash_table_insert (names, g_strdup (name), GUINT_TO_POINTER (seen + 1));
    }
  }
  return names;
}

/* After a next run: each of @before (the images a failed run left) was
 * sent once, or is still on disk; none was sent twice. Returns how many
 * were sent. */
static guint
assert_none_lost (GHashTable * before)
{
  g_autoptr (GHashTable) received = images_received ();
  g_autoptr (GHashTable) after = images_on_disk (TRUE);
  GHashTableIter iter;
  gpointer name, times;
  guint sent = 0;

  g_hash_table_iter_init (&iter, received);
  while (g_hash_table_iter_next (&iter, &name, &times))
    fail_unless (GPOINTER_TO_UINT (times) == 1, "%s was sent %u times",
        (const gchar *) name, GPOINTER_TO_UINT (times));
  g_hash_table_iter_init (&iter, before);
  while (g_hash_table_iter_next (&iter, &name, NULL)) {
    gboolean was_sent = g_hash_table_contains (received, name);

    fail_unless (was_sent || g_hash_table_contains (after, name),
        "%s is lost: neither sent nor on disk", (const gchar *) name);
    sent += was_sent;
  }
  return sent;
}

/* ---- a spool that cannot be written ---- */

GST_START_TEST (test_a_spool_behind_a_file_stops_the_element_at_start)
{
  g_autofree gchar *in_the_way = g_build_filename (tmp, "a-file", NULL);
  g_autofree gchar *location = g_build_filename (in_the_way, "spool", NULL);
  Run run;

  if (!rd_check_have_elements ("videotestsrc jpegenc"))
    return;
  fail_unless (g_file_set_contents (in_the_way, "x", 1, NULL));
  run_pipeline (&run, location, 3, NULL, NULL);
  assert_error (&run, GST_RESOURCE_ERROR_OPEN_WRITE, "Not a directory");
  assert_error (&run, GST_RESOURCE_ERROR_OPEN_WRITE, location);
  run_clear (&run);
}

GST_END_TEST;

/* Root is never refused a directory: the refusals are made up. A spool
 * that cannot be created, and one that exists but is read-only. */
static const struct
{
  int err;
  gboolean exists;
  const gchar *text;
} start_failures[] = {
  {EACCES, FALSE, "Permission denied"},
  {EROFS, TRUE, "Read-only file system"},
};

GST_START_TEST (test_a_spool_that_cannot_be_written_stops_the_element)
{
  Run run;

  if (!rd_check_have_elements ("videotestsrc jpegenc"))
    return;
  if (start_failures[__i__].exists)
    fail_unless (g_mkdir_with_parents (spool, 0700) == 0);
  rd_fail_io_set (RD_FAIL_IO_CREATE, spool, start_failures[__i__].err, 0);
  run_pipeline (&run, spool, 3, NULL, NULL);
  fail_unless (rd_fail_io_get_failures () > 0);
  assert_error (&run, GST_RESOURCE_ERROR_OPEN_WRITE,
      start_failures[__i__].text);
  assert_error (&run, GST_RESOURCE_ERROR_OPEN_WRITE, spool);
  fail_unless_equals_int (count_named (&run, "resemble-detect-batch-closed"),
      0);
  run_clear (&run);
}

GST_END_TEST;

/* ---- a spool that fills up, or turns read-only, while running ---- */

static GstPadProbeReturn
sabotage (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  gboolean now;

  if (info->type & GST_PAD_PROBE_TYPE_BUFFER)
    now = ++sabotage_buffers == sabotage_at;
  else
    now = sabotage_at == 0
        && GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_EOS;
  if (now)
    rd_fail_io_set (sabotage_mode, sabotage_path, sabotage_errno,
        sabotage_skip);
  return GST_PAD_PROBE_OK;
}

static void
sabotage_from (guint at, RdFailIoMode mode, const gchar * path_part, int err)
{
  sabotage_at = at;
  sabotage_buffers = 0;
  sabotage_skip = 0;
  sabotage_mode = mode;
  g_free (sabotage_path);
  sabotage_path = g_strdup (path_part);
  sabotage_errno = err;
}

/* A next run on the same spool, the disk well again. */
static void
run_again (void)
{
  Run run;

  rd_fail_io_set (RD_FAIL_IO_OFF, NULL, 0, 0);
  run_pipeline (&run, spool, 1, NULL, NULL);
  fail_unless (run.error == NULL);
  for (guint i = 0; i < run.messages->len; i++) {
    const GstStructure *s = gst_message_get_structure (run.messages->pdata[i]);

    g_autofree gchar *text = s ? gst_structure_to_string (s) : NULL;

    fail_if (s && gst_structure_has_name (s, "resemble-detect-batch-error"),
        "%s", text);
  }
  run_clear (&run);
}

/* The third snapshot finds the disk full (ENOSPC on its writes) or
 * read-only (EROFS on its creation). */
static const struct
{
  RdFailIoMode mode;
  int err;
  GstResourceError code;
  const gchar *text;
} snapshot_failures[] = {
  {RD_FAIL_IO_WRITE, ENOSPC, GST_RESOURCE_ERROR_NO_SPACE_LEFT,
      "No space left on device"},
  {RD_FAIL_IO_CREATE, EROFS, GST_RESOURCE_ERROR_WRITE,
      "Read-only file system"},
};

GST_START_TEST (test_a_snapshot_that_cannot_be_written_keeps_the_others)
{
  g_autofree gchar *incoming = g_build_filename (spool, "incoming", NULL);
  g_autoptr (GHashTable) before = NULL;
  Run run;

  if (!rd_check_have_elements ("videotestsrc jpegenc"))
    return;
  sabotage_from (3, snapshot_failures[__i__].mode, incoming,
      snapshot_failures[__i__].err);
  run_pipeline (&run, spool, 6, NULL, sabotage);
  fail_unless (rd_fail_io_get_failures () > 0);
  assert_error (&run, snapshot_failures[__i__].code,
      snapshot_failures[__i__].text);
  assert_error (&run, snapshot_failures[__i__].code, "Could not write");
  run_clear (&run);

  /* the one in incoming/ is the snapshot that could not be written */
  before = images_on_disk (FALSE);
  fail_unless (g_hash_table_size (before) >= 2);
  run_again ();
  /* the two written before, at least, reach the API */
  fail_unless (assert_none_lost (before) >= 2);
}

GST_END_TEST;

/* A manifest that cannot be written (ENOSPC): from the first file (its
 * batch gets no manifest, and the file stays in incoming/), from the
 * third (the batch's manifest does not list it), or when the batch closes
 * at EOS (the manifest still says open). */
static const struct
{
  guint at;
  const gchar *text;
  guint in_batches;             /* files in batch folders after the run */
} manifest_failures[] = {
  {1, "Could not add a file to the batch", 0},
  {3, "Could not add a file to the batch", 3},
  {0, "Could not write the manifest of a batch", 4},
};

GST_START_TEST (test_a_manifest_that_cannot_be_written_loses_no_file)
{
  g_autoptr (GHashTable) before = NULL;
  g_autoptr (GHashTable) all = NULL;
  Run run;

  if (!rd_check_have_elements ("videotestsrc jpegenc"))
    return;
  sabotage_from (manifest_failures[__i__].at, RD_FAIL_IO_WRITE,
      "manifest.json", ENOSPC);
  run_pipeline (&run, spool, 4, NULL, sabotage);
  fail_unless (rd_fail_io_get_failures () > 0);
  assert_error (&run, manifest_failures[__i__].at == 0 ?
      GST_RESOURCE_ERROR_NO_SPACE_LEFT : GST_RESOURCE_ERROR_WRITE,
      manifest_failures[__i__].text);
  assert_error (&run, manifest_failures[__i__].at == 0 ?
      GST_RESOURCE_ERROR_NO_SPACE_LEFT : GST_RESOURCE_ERROR_WRITE,
      "No space left on device");
  run_clear (&run);

  /* nothing was deleted: every snapshot is in a batch folder, or the one
   * that met the full disk first is still in incoming/ */
  before = images_on_disk (FALSE);
  all = images_on_disk (TRUE);
  fail_unless (g_hash_table_size (before) >=
      manifest_failures[__i__].in_batches, "%u files in batch folders",
      g_hash_table_size (before));
  fail_unless (g_hash_table_size (all) >= 1);
  run_again ();
  /* a next run sends every one of the batch folders' files, once (what
   * incoming/ holds is not taken up by a next run: docs/reliability.md) */
  fail_unless_equals_int (assert_none_lost (before),
      g_hash_table_size (before));
}

GST_END_TEST;

/* The names of the files of every batch-closed message of @run. */
static GHashTable *
images_closed (const Run * run)
{
  GHashTable *names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);

  for (guint i = 0; i < run->messages->len; i++) {
    const GstStructure *s = gst_message_get_structure (run->messages->pdata[i]);
    const GValue *files;

    if (s == NULL || !gst_structure_has_name (s,
            "resemble-detect-batch-closed"))
      continue;
    files = gst_structure_get_value (s, "files");
    for (guint j = 0; j < gst_value_array_get_size (files); j++)
      g_hash_table_add (names, g_path_get_basename (g_value_get_string
              (gst_value_array_get_value (files, j))));
  }
  return names;
}

/* The client's own manifests (submitted, done) cannot be written: the
 * batch still ends, and only files the API received are deleted. */
GST_START_TEST (test_manifests_the_client_cannot_write_delete_no_unsent_file)
{
  g_autoptr (GHashTable) closed = NULL;
  Run run;

  if (!rd_check_have_elements ("videotestsrc jpegenc"))
    return;
  /* from EOS on, once the batch's closed manifest is written */
  sabotage_from (0, RD_FAIL_IO_WRITE, "manifest.json", ENOSPC);
  sabotage_skip = 1;
  run_pipeline (&run, spool, 3, NULL, sabotage);
  fail_unless (rd_fail_io_get_failures () > 0);
  fail_unless (run.error == NULL);
  fail_unless_equals_int (count_named (&run, "resemble-detect-batch-done"), 1);
  fail_unless_equals_int (count_named (&run, "resemble-detect-result"), 3);
  closed = images_closed (&run);
  fail_unless_equals_int (g_hash_table_size (closed), 3);
  run_clear (&run);
  fail_unless_equals_int (assert_none_lost (closed), 3);
}

GST_END_TEST;

static Suite *
hostile_suite (void)
{
  Suite *s = suite_create ("resembledetectsink-hostile");
  TCase *tc = tcase_create ("disk");

  tcase_add_checked_fixture (tc, setup, teardown);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_a_spool_behind_a_file_stops_the_element_at_start);
  tcase_add_loop_test (tc,
      test_a_spool_that_cannot_be_written_stops_the_element, 0,
      G_N_ELEMENTS (start_failures));
  tcase_add_loop_test (tc,
      test_a_snapshot_that_cannot_be_written_keeps_the_others, 0,
      G_N_ELEMENTS (snapshot_failures));
  tcase_add_loop_test (tc, test_a_manifest_that_cannot_be_written_loses_no_file,
      0, G_N_ELEMENTS (manifest_failures));
  tcase_add_test (tc,
      test_manifests_the_client_cannot_write_delete_no_unsent_file);
  return s;
}

int
main (int argc, char **argv)
{
  static const gchar *const needed[] = { "videotestsrc jpegenc", NULL };

  gst_check_init (&argc, &argv);
  return rd_check_main (hostile_suite (), needed);
}
