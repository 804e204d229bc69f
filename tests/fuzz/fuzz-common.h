/* What the fuzz targets of tests/fuzz/ share, with each other and with
 * replay.c, which runs their saved inputs as an ordinary unit test: the
 * entry points libFuzzer calls. */
#pragma once

#include <gst/gst.h>
#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

/* libFuzzer (or replay.c) calls the first once, then the second for every
 * input. fuzz-common.c defines the first, each fuzz-*.c the second. */
int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

G_END_DECLS
