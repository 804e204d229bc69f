/* The soak run shared by the soak test programs: two resembledetectsink
 * elements (JPEG snapshots, WAV segments) send a few hundred batches to
 * the API emulator, which answers about one request in ten with each kind
 * of fault, on every route; then what the bus said, what the spool holds
 * and what the emulator created are checked against each other. */
#pragma once

#include <gst/check/gstcheck.h>

G_BEGIN_DECLS

/* The elements a soak run needs, for rd_check_main(). */
#define SOAK_ELEMENTS "videotestsrc jpegenc audiotestsrc audioconvert " \
  "splitmuxsink wavenc"

typedef struct
{
  const gchar *token;           /* the emulator's; the images element's property */
  guint batches;                /* at least; 4/5 of snapshots, 1/5 of audio */
  guint32 seed;                 /* of the emulator's fault draws */
  gdouble fault_percent;        /* per fault kind, of every request */
  guint in_flight;              /* max-in-flight of each element */
} SoakConfig;

typedef struct _SoakRun SoakRun;

/* The configuration from RD_SOAK_SEED, RD_SOAK_FAULT_PERCENT,
 * RD_SOAK_IN_FLIGHT and @batches_variable (default @default_batches),
 * printed. */
void soak_config_from_env (SoakConfig * config, const gchar * token,
    const gchar * batches_variable, guint default_batches);

/* A token that nothing else contains: "soak-token-" and 32 random hex
 * digits. Put it in RESEMBLE_API_TOKEN before any thread starts: the audio
 * element takes it from there, the images element from its property. */
gchar *soak_make_token (void);

/* Counts the client's log lines (its category at INFO) from here on. With
 * GST_DEBUG unset, the INFO lines are not printed: only warnings and errors
 * reach stderr. With GST_DEBUG set, counts what it lets through. */
void soak_count_client_log (void);

/* Runs the pipeline to EOS against a new emulator. */
SoakRun *soak_run (const SoakConfig * config);
/* Every problem found: terminal messages, files kept, manifests, batches
 * created twice. Prints the figures (one table), then fails the test if
 * anything was lost or inconsistent. */
void soak_run_check (SoakRun * run);
/* Removes the spool (kept, with its path printed, when a check failed). */
void soak_run_free (SoakRun * run);

/* For the token scan. */
GPtrArray *soak_run_get_messages (SoakRun * run);       /* GstMessage* */
const gchar *soak_run_get_spool (SoakRun * run);
const gchar *soak_run_get_stats (SoakRun * run);        /* the emulator's JSON */
guint soak_run_get_done (SoakRun * run);

G_END_DECLS
