/* A disk that fills up or cannot be written, on demand (see fail-io.h).
 * The functions below are the program's own open(), write(), ...: the
 * dynamic linker binds every library's calls to the executable's
 * definitions first (the program is linked with -rdynamic), so GLib's
 * g_file_set_contents(), g_mkdir_with_parents() and g_rename(), which the
 * spool and the snapshot sinks write with, come here. Each call passes on
 * to the next definition (libc's, or a sanitizer's) unless it is to fail.
 * Nothing here may allocate or log: it runs inside every write of the
 * process. */
/* open() and open64() are both defined below: the headers must not make
 * the one the other. */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include "fail-io.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Descriptors tracked; others are never made to fail. */
#define MAX_FDS 65536

typedef int (*OpenFunc) (const char *path, int flags, ...);

static OpenFunc next_open;
static ssize_t (*next_write) (int fd, const void *buf, size_t count);
static int (*next_close) (int fd);
static int (*next_mkdir) (const char *path, mode_t mode);
static int (*next_rename) (const char *from, const char *to);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* under the lock */
static RdFailIoMode mode;
static char path_part[4096];
static int fail_errno;
static unsigned skip;
/* atomic: per descriptor, the errno its writes fail with, or 0 */
static int failing_fds[MAX_FDS];
static unsigned failures;

static void
resolve (void)
{
  next_open = (OpenFunc) dlsym (RTLD_NEXT, "open");
  next_write = dlsym (RTLD_NEXT, "write");
  next_close = dlsym (RTLD_NEXT, "close");
  next_mkdir = dlsym (RTLD_NEXT, "mkdir");
  next_rename = dlsym (RTLD_NEXT, "rename");
}

/* Libraries may call in before the program's constructors run. */
#define RESOLVE(f) do { if ((f) == NULL) resolve (); } while (0)

static void fail_io_init (void) __attribute__((constructor));

static void
fail_io_init (void)
{
  resolve ();
}

void
rd_fail_io_set (RdFailIoMode new_mode, const gchar * new_part, int err,
    guint new_skip)
{
  pthread_mutex_lock (&lock);
  mode = new_mode;
  g_strlcpy (path_part, new_part ? new_part : "", sizeof (path_part));
  fail_errno = err;
  skip = new_skip;
  pthread_mutex_unlock (&lock);
}

guint
rd_fail_io_get_failures (void)
{
  return __atomic_load_n (&failures, __ATOMIC_SEQ_CST);
}

/* Whether this call on @path, in @wanted mode, is to fail: its errno. */
static int
call_fails (const char *path, RdFailIoMode wanted)
{
  int err = 0;

  if (path == NULL)
    return 0;
  pthread_mutex_lock (&lock);
  if (mode == wanted && path_part[0] != '\0' && strstr (path, path_part)) {
    if (skip > 0)
      skip--;
    else
      err = fail_errno;
  }
  pthread_mutex_unlock (&lock);
  if (err != 0 && wanted == RD_FAIL_IO_CREATE)
    __atomic_add_fetch (&failures, 1, __ATOMIC_SEQ_CST);
  return err;
}

static mode_t
open_mode (int flags, va_list args)
{
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ?
      (mode_t) va_arg (args, int) : 0;
}

/* open() and open64() are one function in a 64-bit libc: one here too. */
int
open (const char *path, int flags, ...)
{
  gboolean for_writing = (flags & (O_WRONLY | O_RDWR | O_CREAT)) != 0;
  int err = for_writing ? call_fails (path, RD_FAIL_IO_CREATE) : 0;
  va_list args;
  mode_t file_mode;
  int fd;

  RESOLVE (next_open);
  va_start (args, flags);
  file_mode = open_mode (flags, args);
  va_end (args);
  if (err != 0) {
    errno = err;
    return -1;
  }
  fd = next_open (path, flags, file_mode);
  if (fd >= 0 && fd < MAX_FDS && for_writing
      && (err = call_fails (path, RD_FAIL_IO_WRITE)) != 0)
    __atomic_store_n (&failing_fds[fd], err, __ATOMIC_SEQ_CST);
  return fd;
}

int open64 (const char *path, int flags, ...) __attribute__((alias ("open")));

ssize_t
write (int fd, const void *buf, size_t count)
{
  int err = fd >= 0 && fd < MAX_FDS ?
      __atomic_load_n (&failing_fds[fd], __ATOMIC_SEQ_CST) : 0;

  RESOLVE (next_write);
  if (err != 0) {
    __atomic_add_fetch (&failures, 1, __ATOMIC_SEQ_CST);
    errno = err;
    return -1;
  }
  return next_write (fd, buf, count);
}

int
close (int fd)
{
  RESOLVE (next_close);
  if (fd >= 0 && fd < MAX_FDS)
    __atomic_store_n (&failing_fds[fd], 0, __ATOMIC_SEQ_CST);
  return next_close (fd);
}

int
mkdir (const char *path, mode_t dir_mode)
{
  int err = call_fails (path, RD_FAIL_IO_CREATE);

  RESOLVE (next_mkdir);
  if (err != 0) {
    errno = err;
    return -1;
  }
  return next_mkdir (path, dir_mode);
}

int
rename (const char *from, const char *to)
{
  int err = call_fails (to, RD_FAIL_IO_CREATE);

  RESOLVE (next_rename);
  if (err != 0) {
    errno = err;
    return -1;
  }
  return next_rename (from, to);
}
