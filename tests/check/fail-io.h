/* A disk that fills up or cannot be written, on demand, for the element
 * tests of tests/check/test-hostile.c: fail-io.c, linked into the test
 * program, defines open(), write(), mkdir(), rename() and close() of its
 * own, which every library of the process calls before libc's (and before
 * a sanitizer's interceptors), and fails those that touch a chosen path. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  RD_FAIL_IO_OFF,
  /* a disk that fills up: files open, but write() to them fails */
  RD_FAIL_IO_WRITE,
  /* a place that cannot be written: open() for writing, mkdir() and
   * rename() onto it fail */
  RD_FAIL_IO_CREATE,
} RdFailIoMode;

/* From now on, calls on paths that contain @path_part fail with @err
 * (ENOSPC, EACCES, EROFS, ...) in @mode, once @skip such calls (opens,
 * mkdirs, renames) have gone through. RD_FAIL_IO_OFF ends it; files
 * already open to fail go on failing until closed. */
void rd_fail_io_set (RdFailIoMode mode, const gchar * path_part, int err,
    guint skip);
/* Calls failed so far. */
guint rd_fail_io_get_failures (void);

G_END_DECLS
