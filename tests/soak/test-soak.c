/* The soak (issue 9): at least 200 batches through two resembledetectsink
 * elements to the API emulator, which gives about 10% of the requests each
 * of seven faults (500, 503, 429, drop-before-body, drop-after-body, slow,
 * malformed-json) on every route, the list of detects included. Every
 * closed batch ends with exactly one terminal message, EOS comes, no file
 * of a batch whose verdicts were not confirmed is deleted, the manifests
 * say what the messages said, and no batch is created twice. Prints the
 * figures. RD_SOAK_SEED, RD_SOAK_FAULT_PERCENT, RD_SOAK_BATCHES and
 * RD_SOAK_IN_FLIGHT change the run. */
#include "rd-check.h"
#include "soak-run.h"

static gchar *token;

GST_START_TEST (test_every_batch_ends_once_and_nothing_is_lost)
{
  SoakConfig config;
  SoakRun *run;

  if (!rd_check_have_elements (SOAK_ELEMENTS))
    return;
  soak_config_from_env (&config, token, "RD_SOAK_BATCHES", 200);
  soak_count_client_log ();
  run = soak_run (&config);
  soak_run_check (run);
  soak_run_free (run);
}

GST_END_TEST;

static Suite *
soak_suite (void)
{
  Suite *s = suite_create ("soak");
  TCase *tc = tcase_create ("under-faults");

  /* meson's bound (tests/soak/meson.build) is the one that counts */
  tcase_set_timeout (tc, 3600);
  tcase_add_test (tc, test_every_batch_ends_once_and_nothing_is_lost);
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  static const gchar *needed[] = { SOAK_ELEMENTS, NULL };
  int status;

  /* before any thread: the audio element reads it from the environment */
  token = soak_make_token ();
  g_setenv ("RESEMBLE_API_TOKEN", token, TRUE);
  gst_check_init (&argc, &argv);
  status = rd_check_main (soak_suite (), needed);
  g_free (token);
  return status;
}
