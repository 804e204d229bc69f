/* bench-upload: how fast the API client (gst/client.c, driven through
 * rd_client_submit like the element drives it) uploads a batch, and how much
 * memory that costs, against curl sending the same multipart body to the same
 * API emulator in the same run. The emulator is a separate process (the
 * resemble-detect-emulator program, on 127.0.0.1 only), and the client runs
 * in a child process of its own (this program started again with
 * --run-client), so each peak RSS belongs to one side only. For each batch
 * size and upload mode (files, zip) it prints the throughput to the last body
 * byte written and to the 202, CPU time and peak RSS, their ratios
 * client/curl, and the client's RSS growth during the upload, which must stay
 * flat as the batch grows because the body is streamed from disk. Numbers are
 * ratios to the baseline of the same run, never thresholds: this is not a
 * test. */

#define _GNU_SOURCE             /* sched_setaffinity */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "batch.h"
#include "client.h"
#include "zip-stream.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef RD_EMULATOR_PROGRAM
#define RD_EMULATOR_PROGRAM "resemble-detect-emulator"
#endif

#define BENCH_TOKEN "bench-token"
#define TIME_PROGRAM "/usr/bin/time"
#define FILES_PER_BATCH 20

/* ---- the client side (child process) ---------------------------------- */

typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean finished;
  gboolean ok;
  gint64 start_us;
  gint64 body_written_us;
  gint64 accepted_us;
  guint64 body_bytes;
} ClientRun;

static void
client_progress (const RdBatch * batch, guint64 sent, guint64 total,
    gpointer user_data)
{
  ClientRun *run = user_data;

  if (sent == total) {
    g_mutex_lock (&run->lock);
    run->body_written_us = g_get_monotonic_time ();
    run->body_bytes = total;
    g_mutex_unlock (&run->lock);
  }
}

static void
client_submitted (const RdBatch * batch, gpointer user_data)
{
  ClientRun *run = user_data;

  g_mutex_lock (&run->lock);
  run->accepted_us = g_get_monotonic_time ();
  g_mutex_unlock (&run->lock);
}

static void
client_finish (ClientRun * run, gboolean ok)
{
  g_mutex_lock (&run->lock);
  run->finished = TRUE;
  run->ok = ok;
  g_cond_broadcast (&run->cond);
  g_mutex_unlock (&run->lock);
}

static void
client_done (const RdBatch * batch, const GPtrArray * results,
    gpointer user_data)
{
  client_finish (user_data, TRUE);
}

static void
client_error (const RdBatch * batch, guint http_status, const gchar * reason,
    const GstStructure * details, gboolean cancelled, gpointer user_data)
{
  g_printerr ("client: batch error %u: %s\n", http_status, reason);
  client_finish (user_data, FALSE);
}

static const RdClientCallbacks client_callbacks = {
  .submitted = client_submitted,
  .progress = client_progress,
  .done = client_done,
  .error = client_error,
};

/* VmHWM (peak RSS) of process @pid (0: this one), in kB, or -1. */
static glong
read_vm_hwm_kb (GPid pid)
{
  g_autofree gchar *path = pid ? g_strdup_printf ("/proc/%d/status", pid) :
      g_strdup ("/proc/self/status");
  g_autofree gchar *status = NULL;
  const gchar *line;

  if (!g_file_get_contents (path, &status, NULL, NULL))
    return -1;
  line = strstr (status, "VmHWM:");
  if (line == NULL)
    return -1;
  return strtol (line + strlen ("VmHWM:"), NULL, 10);
}

static gdouble
cpu_seconds (const struct rusage *usage)
{
  return usage->ru_utime.tv_sec + usage->ru_stime.tv_sec +
      (usage->ru_utime.tv_usec + usage->ru_stime.tv_usec) / 1e6;
}

static gdouble
self_cpu_seconds (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return cpu_seconds (&usage);
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar * const *) a, *(const gchar * const *) b);
}

/* Rebuilds the batch the parent wrote in {location}/batch-000000 (every
 * regular file but the manifest, in name order) in state closed. */
static RdBatch *
load_batch (const gchar * location, RdUploadMode mode, GError ** error)
{
  g_autoptr (RdBatch) batch = rd_batch_new (0, location);
  g_autoptr (GDir) dir = g_dir_open (batch->dir, 0, error);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const gchar *name;
  guint i;

  if (dir == NULL)
    return NULL;
  while ((name = g_dir_read_name (dir)) != NULL) {
    if (rd_batch_extension_allowed (name))
      g_ptr_array_add (names, g_strdup (name));
  }
  g_ptr_array_sort (names, compare_names);
  for (i = 0; i < names->len; i++) {
    const gchar *file_name = g_ptr_array_index (names, i);
    g_autofree gchar *path = g_build_filename (batch->dir, file_name, NULL);
    GStatBuf st;

    if (g_stat (path, &st) != 0) {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
          "%s: %s", path, g_strerror (errno));
      return NULL;
    }
    rd_batch_add_file (batch, rd_batch_file_new (file_name, st.st_size,
            RD_MEDIA_TYPE_AUDIO, RD_TIME_NONE, RD_TIME_NONE));
  }
  batch->state = RD_BATCH_STATE_CLOSED;
  batch->upload_mode = mode;
  return g_steal_pointer (&batch);
}

/* Child mode: one upload through rd_client_submit, then one line on stdout:
 * ok body-bytes body-seconds accepted-seconds cpu-seconds hwm-before-kB
 * hwm-after-kB. */
static int
run_client (const gchar * url, const gchar * location, RdUploadMode mode,
    gboolean fetch_results)
{
  RdClientConfig config = {
    .api_url = url,
    .token = BENCH_TOKEN,
    .user_agent = "gst-resembledetect-bench/" VERSION,
    .max_retries = 0,
    .max_in_flight = 1,
    .poll_interval = 10 * GST_MSECOND,
    .poll_max_interval = 10 * GST_MSECOND,
    .poll_timeout = 120 * GST_SECOND,
    .fetch_results = fetch_results,
    /* The same files are uploaded again by the next run. */
    .keep_files = TRUE,
  };
  g_autoptr (GError) error = NULL;
  ClientRun run = { 0 };
  RdClient *client;
  RdBatch *batch;
  glong hwm_before, hwm_after;
  gdouble cpu_before, cpu_after;

  gst_init (NULL, NULL);
  batch = load_batch (location, mode, &error);
  if (batch == NULL) {
    g_printerr ("client: %s\n", error->message);
    return 1;
  }
  g_mutex_init (&run.lock);
  g_cond_init (&run.cond);
  client = rd_client_new (&config, &client_callbacks, &run);
  if (!rd_client_start (client, &error)) {
    g_printerr ("client: %s\n", error->message);
    rd_batch_free (batch);
    rd_client_free (client);
    return 1;
  }

  hwm_before = read_vm_hwm_kb (0);
  cpu_before = self_cpu_seconds ();
  run.start_us = g_get_monotonic_time ();
  rd_client_submit (client, batch);

  g_mutex_lock (&run.lock);
  while (!run.finished)
    g_cond_wait (&run.cond, &run.lock);
  g_mutex_unlock (&run.lock);
  cpu_after = self_cpu_seconds ();
  hwm_after = read_vm_hwm_kb (0);

  rd_client_stop (client);
  rd_client_free (client);

  g_print ("%d %" G_GUINT64_FORMAT " %.6f %.6f %.6f %ld %ld\n",
      run.ok && run.accepted_us > 0, run.body_bytes,
      (run.body_written_us - run.start_us) / 1e6,
      (run.accepted_us - run.start_us) / 1e6, cpu_after - cpu_before,
      hwm_before, hwm_after);
  g_mutex_clear (&run.lock);
  g_cond_clear (&run.cond);
  return run.ok ? 0 : 1;
}

/* ---- processes ---------------------------------------------------------- */

typedef struct
{
  gboolean ok;
  gchar *out;                   /* its stdout */
  gdouble wall_seconds;
  gdouble cpu_seconds;
  glong peak_rss_kb;
} Process;

static void
process_clear (Process * process)
{
  g_clear_pointer (&process->out, g_free);
}

/* Runs in the forked child before exec: user_data is the CPU number + 1,
 * 0 for no pinning. */
static void
pin_to_cpu (gpointer user_data)
{
  gint cpu = GPOINTER_TO_INT (user_data) - 1;
  cpu_set_t set;

  if (cpu < 0)
    return;
  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  sched_setaffinity (0, sizeof (set), &set);
}

/* Runs @argv to its end on @cpu (-1: anywhere), collecting its stdout and
 * its own rusage. */
static gboolean
run_process (gchar ** argv, gint cpu, Process * process)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) out = g_string_new (NULL);
  struct rusage usage;
  gchar buffer[4096];
  gint64 start = g_get_monotonic_time ();
  GPid pid;
  gint out_fd;
  gssize n;
  int status;

  memset (process, 0, sizeof (*process));
  if (!g_spawn_async_with_pipes (NULL, argv, NULL,
          G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH, pin_to_cpu,
          GINT_TO_POINTER (cpu + 1), &pid, NULL, &out_fd, NULL, &error)) {
    g_printerr ("%s: %s\n", argv[0], error->message);
    return FALSE;
  }
  while ((n = read (out_fd, buffer, sizeof (buffer))) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break;
    g_string_append_len (out, buffer, n);
  }
  close (out_fd);
  while (wait4 (pid, &status, 0, &usage) < 0 && errno == EINTR);
  g_spawn_close_pid (pid);

  process->wall_seconds = (g_get_monotonic_time () - start) / 1e6;
  process->cpu_seconds = cpu_seconds (&usage);
  process->peak_rss_kb = usage.ru_maxrss;
  process->out = g_string_free (g_steal_pointer (&out), FALSE);
  process->ok = WIFEXITED (status) && WEXITSTATUS (status) == 0;
  return process->ok;
}

typedef struct
{
  GPid pid;
  gchar *url;
} Emulator;

/* Starts the emulator program on 127.0.0.1 and reads its URL, the first line
 * of its stdout. */
static gboolean
emulator_start (Emulator * emulator, const gchar * program,
    const gchar * tmp_dir, gint cpu)
{
  const gchar *argv[] = { program, "--host", "127.0.0.1", "--port", "0",
    "--token", BENCH_TOKEN, "--processing-ms", "0", NULL
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) line = g_string_new (NULL);
  g_auto (GStrv) envp = g_get_environ ();
  gint out_fd;
  gchar c;
  gssize n;

  /* Where it spools upload bodies. */
  if (tmp_dir != NULL)
    envp = g_environ_setenv (envp, "TMPDIR", tmp_dir, TRUE);
  if (!g_spawn_async_with_pipes (NULL, (gchar **) argv, envp,
          G_SPAWN_DO_NOT_REAP_CHILD, pin_to_cpu, GINT_TO_POINTER (cpu + 1),
          &emulator->pid, NULL, &out_fd, NULL, &error)) {
    g_printerr ("%s: %s\n", program, error->message);
    return FALSE;
  }
  while ((n = read (out_fd, &c, 1)) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || c == '\n')
      break;
    g_string_append_c (line, c);
  }
  /* Nothing else is printed on stdout. */
  close (out_fd);
  if (!g_str_has_prefix (line->str, "http://127.0.0.1:")) {
    g_printerr ("%s did not print its URL (got \"%s\")\n", program, line->str);
    kill (emulator->pid, SIGTERM);
    waitpid (emulator->pid, NULL, 0);
    g_spawn_close_pid (emulator->pid);
    return FALSE;
  }
  emulator->url = g_string_free (g_steal_pointer (&line), FALSE);
  return TRUE;
}

/* Stops it; returns its peak RSS in kB. */
static glong
emulator_stop (Emulator * emulator)
{
  /* Read before it exits; wait4's ru_maxrss would also count this
   * process's pages from before the emulator's exec. */
  glong peak_kb = read_vm_hwm_kb (emulator->pid);

  kill (emulator->pid, SIGTERM);
  while (waitpid (emulator->pid, NULL, 0) < 0 && errno == EINTR);
  g_spawn_close_pid (emulator->pid);
  g_clear_pointer (&emulator->url, g_free);
  return peak_kb;
}

/* ---- the workload ------------------------------------------------------- */

static gboolean
write_random_file (const gchar * path, gsize size, guint64 seed)
{
  const gsize block = 1024 * 1024;
  g_autofree guint64 *buffer = g_malloc (block);
  guint64 state = seed * 0x9e3779b97f4a7c15u + 1;
  gsize written = 0;
  int fd;

  fd = g_open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return FALSE;
  while (written < size) {
    gsize n = MIN (block, size - written);
    gsize i;

    /* xorshift: incompressible, like the media it stands for. */
    for (i = 0; i < block / sizeof (guint64); i++) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      buffer[i] = state;
    }
    if (write (fd, buffer, n) != (gssize) n) {
      close (fd);
      return FALSE;
    }
    written += n;
  }
  /* No writeback of these during the measurements. */
  if (fsync (fd) != 0) {
    close (fd);
    return FALSE;
  }
  return close (fd) == 0;
}

typedef struct
{
  gchar *label;
  gchar *location;              /* the batch is {location}/batch-000000 */
  GPtrArray *paths;             /* its files */
  gchar *zip_path;              /* the same files as the client's zip */
  guint64 total_bytes;
} Workload;

static void
workload_free (Workload * work)
{
  guint i;

  for (i = 0; i < work->paths->len; i++)
    g_unlink (g_ptr_array_index (work->paths, i));
  g_ptr_array_unref (work->paths);
  if (work->zip_path)
    g_unlink (work->zip_path);
  g_free (work->zip_path);
  /* The client leaves its manifest in the batch directory. */
  {
    g_autofree gchar *batch_dir = g_build_filename (work->location,
        "batch-000000", NULL);
    g_autofree gchar *manifest = g_build_filename (batch_dir, "manifest.json",
        NULL);

    g_unlink (manifest);
    g_rmdir (batch_dir);
  }
  g_rmdir (work->location);
  g_free (work->location);
  g_free (work->label);
  g_free (work);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Workload, workload_free);

/* Writes the zip the client would send (RdZipStream, entries named as the
 * files) to disk, so that curl can upload exactly the same bytes. */
static gboolean
write_zip (Workload * work, GError ** error)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autofree gchar *batch_dir = g_build_filename (work->location,
      "batch-000000", NULL);
  g_autofree guint8 *buffer = g_malloc (RD_ZIP_STREAM_CHUNK_SIZE);
  gssize n;
  guint i;
  int fd;

  for (i = 0; i < work->paths->len; i++) {
    if (!rd_zip_stream_add_file (zip, g_ptr_array_index (work->paths, i),
            NULL, error))
      return FALSE;
  }
  /* Beside the batch directory, named as the client names its zip part. */
  work->zip_path = g_strconcat (batch_dir, ".zip", NULL);
  fd = g_open (work->zip_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    goto failed;
  while ((n = g_input_stream_read (G_INPUT_STREAM (zip), buffer,
              RD_ZIP_STREAM_CHUNK_SIZE, NULL, error)) > 0) {
    if (write (fd, buffer, n) != n)
      goto failed;
  }
  if (n < 0) {
    close (fd);
    return FALSE;
  }
  /* No writeback of it during the measurements. */
  if (fsync (fd) != 0 || close (fd) != 0) {
    fd = -1;
    goto failed;
  }
  return TRUE;

failed:
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
      "cannot write %s: %s", work->zip_path, g_strerror (errno));
  if (fd >= 0)
    close (fd);
  return FALSE;
}

static Workload *
workload_new (const gchar * root, const gchar * label, guint n_files,
    guint64 total_bytes, GError ** error)
{
  g_autoptr (Workload) work = g_new0 (Workload, 1);
  g_autofree gchar *batch_dir = NULL;
  guint64 file_size = total_bytes / n_files;
  guint i;

  work->label = g_strdup (label);
  work->location = g_build_filename (root, label, NULL);
  work->paths = g_ptr_array_new_with_free_func (g_free);
  batch_dir = g_build_filename (work->location, "batch-000000", NULL);
  if (g_mkdir_with_parents (batch_dir, 0700) != 0) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
        "%s: %s", batch_dir, g_strerror (errno));
    return NULL;
  }
  for (i = 0; i < n_files; i++) {
    g_autofree gchar *name = g_strdup_printf ("segment-%06u.wav", i);
    gchar *path = g_build_filename (batch_dir, name, NULL);

    g_ptr_array_add (work->paths, path);
    if (!write_random_file (path, file_size, i + 1)) {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
          "cannot write %s: %s", path, g_strerror (errno));
      return NULL;
    }
    work->total_bytes += file_size;
  }
  if (!write_zip (work, error))
    return NULL;
  return g_steal_pointer (&work);
}

/* ---- one measurement ---------------------------------------------------- */

typedef enum
{
  SIDE_CURL,
  SIDE_CLIENT,
} Side;

typedef struct
{
  gboolean ok;
  guint64 body_bytes;
  gdouble seconds;              /* start of the request to the 202 */
  gdouble body_seconds;         /* to the last body byte written (client) */
  gdouble cpu_seconds;
  glong peak_rss_kb;            /* of the whole process */
  glong rss_growth_kb;          /* client: VmHWM after - before submit */
} Sample;

/* "14:05:25.421449 * We are ...": seconds since midnight. */
static gboolean
parse_trace_time (const gchar * line, gdouble * seconds)
{
  guint hours, minutes;
  gdouble secs;

  if (strlen (line) < 15 || line[2] != ':' || line[5] != ':' || line[8] != '.')
    return FALSE;
  hours = g_ascii_strtoull (line, NULL, 10);
  minutes = g_ascii_strtoull (line + 3, NULL, 10);
  secs = g_ascii_strtod (line + 6, NULL);
  *seconds = hours * 3600.0 + minutes * 60.0 + secs;
  return TRUE;
}

static Sample
measure_curl (const gchar * url, const Workload * work, RdUploadMode mode,
    const gchar * rss_path, gint cpu)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) lines = NULL;
  Process process;
  Sample sample = { 0 };
  gdouble start = -1, uploaded = -1;
  guint i;

  /* wait4's ru_maxrss of a child we fork also counts this process's pages
   * from before its exec; curl forked by time(1) has only its own. */
  if (rss_path != NULL) {
    g_ptr_array_add (argv, g_strdup (TIME_PROGRAM));
    g_ptr_array_add (argv, g_strdup ("-f"));
    g_ptr_array_add (argv, g_strdup ("%M"));
    g_ptr_array_add (argv, g_strdup ("-o"));
    g_ptr_array_add (argv, g_strdup (rss_path));
  }
  g_ptr_array_add (argv, g_strdup ("curl"));
  g_ptr_array_add (argv, g_strdup ("-sS"));
  /* Its verbose lines, timed, say when the body was written. */
  g_ptr_array_add (argv, g_strdup ("-v"));
  g_ptr_array_add (argv, g_strdup ("--trace-time"));
  g_ptr_array_add (argv, g_strdup ("--stderr"));
  g_ptr_array_add (argv, g_strdup ("-"));
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup ("/dev/null"));
  g_ptr_array_add (argv, g_strdup ("-w"));
  g_ptr_array_add (argv, g_strdup ("\nresult %{http_code} %{size_upload} "
          "%{time_total}\n"));
  g_ptr_array_add (argv, g_strdup ("-H"));
  g_ptr_array_add (argv, g_strdup ("Authorization: Bearer " BENCH_TOKEN));
  if (mode == RD_UPLOAD_MODE_ZIP) {
    g_ptr_array_add (argv, g_strdup ("-F"));
    g_ptr_array_add (argv, g_strdup_printf ("file=@%s;type=application/zip",
            work->zip_path));
  } else {
    for (i = 0; i < work->paths->len; i++) {
      const gchar *path = g_ptr_array_index (work->paths, i);

      g_ptr_array_add (argv, g_strdup ("-F"));
      g_ptr_array_add (argv, g_strdup_printf ("files[]=@%s;type=%s", path,
              rd_batch_content_type (path)));
    }
  }
  g_ptr_array_add (argv, g_strconcat (url, "/detect/batch", NULL));
  g_ptr_array_add (argv, NULL);

  if (!run_process ((gchar **) argv->pdata, cpu, &process)) {
    process_clear (&process);
    return sample;
  }
  lines = g_strsplit (process.out, "\n", -1);
  for (i = 0; lines[i] != NULL; i++) {
    const gchar *line = lines[i];
    gdouble at;

    if (g_str_has_prefix (line, "result ")) {
      g_auto (GStrv) fields = g_strsplit (line, " ", -1);

      if (g_strv_length (fields) == 4 && g_str_equal (fields[1], "202")) {
        sample.ok = TRUE;
        sample.body_bytes = g_ascii_strtoull (fields[2], NULL, 10);
        sample.seconds = g_ascii_strtod (fields[3], NULL);
      }
    } else if (parse_trace_time (line, &at)) {
      if (start < 0)
        start = at;
      if (strstr (line, "We are completely uploaded") != NULL)
        uploaded = at;
    }
  }
  if (!sample.ok)
    g_printerr ("curl: %s\n", process.out);
  /* From its first verbose line (connecting), as the client's is measured
   * from rd_client_submit. */
  sample.body_seconds = start >= 0 && uploaded >= start ? uploaded - start : -1;
  sample.cpu_seconds = process.cpu_seconds;
  sample.peak_rss_kb = process.peak_rss_kb;
  if (rss_path != NULL) {
    g_autofree gchar *text = NULL;

    if (g_file_get_contents (rss_path, &text, NULL, NULL))
      sample.peak_rss_kb = strtol (text, NULL, 10);
  }
  sample.rss_growth_kb = -1;
  process_clear (&process);
  return sample;
}

static Sample
measure_client (const gchar * self_exe, const gchar * url,
    const Workload * work, RdUploadMode mode, gboolean fetch_results, gint cpu)
{
  const gchar *argv[] = { self_exe, "--run-client", url, "--location",
    work->location, "--mode", mode == RD_UPLOAD_MODE_ZIP ? "zip" : "files",
    fetch_results ? "--fetch-results" : NULL, NULL
  };
  g_auto (GStrv) fields = NULL;
  Process process;
  Sample sample = { 0 };

  if (!run_process ((gchar **) argv, cpu, &process)) {
    process_clear (&process);
    return sample;
  }
  fields = g_strsplit (g_strchomp (process.out), " ", -1);
  if (g_strv_length (fields) == 7 && g_str_equal (fields[0], "1")) {
    sample.ok = TRUE;
    sample.body_bytes = g_ascii_strtoull (fields[1], NULL, 10);
    sample.body_seconds = g_ascii_strtod (fields[2], NULL);
    sample.seconds = g_ascii_strtod (fields[3], NULL);
    /* Only the upload: gst_init and the process are not the client's. */
    sample.cpu_seconds = g_ascii_strtod (fields[4], NULL);
    sample.rss_growth_kb = strtol (fields[6], NULL, 10) -
        strtol (fields[5], NULL, 10);
    /* Its own VmHWM: wait4's would count this process's pages from before
     * the child's exec. */
    sample.peak_rss_kb = strtol (fields[6], NULL, 10);
  }
  process_clear (&process);
  return sample;
}

/* ---- medians and the report -------------------------------------------- */

static gint
compare_doubles (gconstpointer a, gconstpointer b)
{
  gdouble x = *(const gdouble *) a, y = *(const gdouble *) b;

  return (x > y) - (x < y);
}

/* Sorts @values. */
static gdouble
median (gdouble * values, guint n)
{
  qsort (values, n, sizeof (gdouble), compare_doubles);
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

typedef struct
{
  gboolean ok;
  guint64 body_bytes;
  gdouble seconds;
  gdouble body_seconds;
  gdouble cpu_seconds;
  gdouble peak_rss_kb;
  gdouble rss_growth_kb;
} Summary;

static Summary
summarize (const Sample * samples, guint n)
{
  g_autofree gdouble *values = g_new (gdouble, n);
  Summary summary = { TRUE, 0 };
  guint i;

  for (i = 0; i < n; i++) {
    summary.ok &= samples[i].ok;
    summary.body_bytes = samples[i].body_bytes;
  }
  if (!summary.ok)
    return summary;
  for (i = 0; i < n; i++)
    values[i] = samples[i].seconds;
  summary.seconds = median (values, n);
  for (i = 0; i < n; i++)
    values[i] = samples[i].body_seconds;
  summary.body_seconds = median (values, n);
  for (i = 0; i < n; i++)
    values[i] = samples[i].cpu_seconds;
  summary.cpu_seconds = median (values, n);
  for (i = 0; i < n; i++)
    values[i] = samples[i].peak_rss_kb;
  summary.peak_rss_kb = median (values, n);
  for (i = 0; i < n; i++)
    values[i] = samples[i].rss_growth_kb;
  summary.rss_growth_kb = median (values, n);
  return summary;
}

static gdouble
mb_per_s (guint64 bytes, gdouble seconds)
{
  return seconds > 0 ? bytes / 1e6 / seconds : -1;
}

static gdouble
ratio (gdouble value, gdouble baseline)
{
  return value >= 0 && baseline > 0 ? value / baseline : -1;
}

/* "-" for what was not measured. */
static gchar *
format_value (const gchar * format, gdouble value)
{
  return value >= 0 ? g_strdup_printf (format, value) : g_strdup ("-");
}

static void
print_row (const gchar * name, const Summary * row, const Summary * baseline)
{
  gdouble body_speed = mb_per_s (row->body_bytes, row->body_seconds);
  gdouble speed = mb_per_s (row->body_bytes, row->seconds);
  g_autofree gchar *body_seconds = format_value ("%.3f", row->body_seconds);
  g_autofree gchar *body_speed_text = format_value ("%.0f", body_speed);
  g_autofree gchar *growth = format_value ("%.1f", row->rss_growth_kb / 1024);
  g_autofree gchar *body_ratio = format_value ("%.2f", ratio (body_speed,
          mb_per_s (baseline->body_bytes, baseline->body_seconds)));

  if (!row->ok || !baseline->ok) {
    g_print ("  %-13s FAILED\n", name);
    return;
  }
  g_print ("  %-13s %7.1f %7s %7s %7.3f %7.0f %6.3f %7.1f %7s %6s %6.2f "
      "%6.2f %6.2f\n", name, row->body_bytes / 1e6, body_seconds,
      body_speed_text, row->seconds, speed, row->cpu_seconds,
      row->peak_rss_kb / 1024, growth, body_ratio,
      ratio (speed, mb_per_s (baseline->body_bytes, baseline->seconds)),
      ratio (row->cpu_seconds, baseline->cpu_seconds),
      ratio (row->peak_rss_kb, baseline->peak_rss_kb));
}

typedef struct
{
  Summary curl_files, client_files, curl_zip, client_zip;
} Results;

/* --summary: one line per side, for bench/run. */
static FILE *summary_file;

static void
write_summary (const gchar * label, const gchar * side, const Summary * row)
{
  if (summary_file == NULL)
    return;
  fprintf (summary_file, "%s|%s|%d|%" G_GUINT64_FORMAT "|%.6f|%.6f|%.6f|"
      "%.0f|%.0f\n", label, side, row->ok, row->body_bytes,
      row->body_seconds, row->seconds, row->cpu_seconds, row->peak_rss_kb,
      row->rss_growth_kb);
  fflush (summary_file);
}

static Results
bench_workload (const gchar * self_exe, const gchar * url,
    const Workload * work, guint repeat, gboolean fetch_results,
    const gchar * rss_path, gint cpu)
{
  g_autofree Sample *curl_files = g_new0 (Sample, repeat);
  g_autofree Sample *client_files = g_new0 (Sample, repeat);
  g_autofree Sample *curl_zip = g_new0 (Sample, repeat);
  g_autofree Sample *client_zip = g_new0 (Sample, repeat);
  Results results;
  guint i;

  /* Interleaved, so that a slow moment of the machine hits every side. */
  for (i = 0; i < repeat; i++) {
    curl_files[i] = measure_curl (url, work, RD_UPLOAD_MODE_FILES, rss_path,
        cpu);
    client_files[i] = measure_client (self_exe, url, work,
        RD_UPLOAD_MODE_FILES, fetch_results, cpu);
    curl_zip[i] = measure_curl (url, work, RD_UPLOAD_MODE_ZIP, rss_path, cpu);
    client_zip[i] = measure_client (self_exe, url, work, RD_UPLOAD_MODE_ZIP,
        fetch_results, cpu);
  }
  results.curl_files = summarize (curl_files, repeat);
  results.client_files = summarize (client_files, repeat);
  results.curl_zip = summarize (curl_zip, repeat);
  results.client_zip = summarize (client_zip, repeat);

  g_print ("\nbatch %s: %u files, %.1f MB of files\n", work->label,
      work->paths->len, work->total_bytes / 1e6);
  g_print ("  %-13s %7s %7s %7s %7s %7s %6s %7s %7s %6s %6s %6s %6s\n",
      "", "body", "body", "body", "202", "202", "CPU", "peak", "grow",
      "body", "202", "CPU", "RSS");
  g_print ("  %-13s %7s %7s %7s %7s %7s %6s %7s %7s %6s %6s %6s %6s\n",
      "side", "MB", "s", "MB/s", "s", "MB/s", "s", "MB", "MB", "speed",
      "speed", "", "");
  write_summary (work->label, "curl files", &results.curl_files);
  write_summary (work->label, "client files", &results.client_files);
  write_summary (work->label, "curl zip", &results.curl_zip);
  write_summary (work->label, "client zip", &results.client_zip);
  print_row ("curl files", &results.curl_files, &results.curl_files);
  print_row ("client files", &results.client_files, &results.curl_files);
  print_row ("curl zip", &results.curl_zip, &results.curl_zip);
  print_row ("client zip", &results.client_zip, &results.curl_zip);
  if (results.client_files.ok && results.client_zip.ok)
    g_print ("  client zip/files: body speed %.2f, 202 speed %.2f, CPU %.2f, "
        "peak RSS %.2f\n",
        ratio (mb_per_s (results.client_zip.body_bytes,
                results.client_zip.body_seconds),
            mb_per_s (results.client_files.body_bytes,
                results.client_files.body_seconds)),
        ratio (mb_per_s (results.client_zip.body_bytes,
                results.client_zip.seconds),
            mb_per_s (results.client_files.body_bytes,
                results.client_files.seconds)),
        results.client_zip.cpu_seconds /
        MAX (results.client_files.cpu_seconds, 1e-9),
        results.client_zip.peak_rss_kb /
        MAX (results.client_files.peak_rss_kb, 1));
  return results;
}

typedef struct
{
  gdouble batch_mb;
  gdouble files_mb;             /* client RSS growth, files mode */
  gdouble zip_mb;
} Growth;

int
main (int argc, char **argv)
{
  gint n_files = FILES_PER_BATCH;
  gint total_mb = 200;
  gint repeat = 3;
  gboolean large = FALSE;
  gboolean fetch_results = FALSE;
  gboolean no_pin = FALSE;
  g_autofree gchar *emulator_option = NULL;
  g_autofree gchar *dir_option = NULL;
  g_autofree gchar *spool_option = NULL;
  g_autofree gchar *summary_option = NULL;
  g_autofree gchar *client_url = NULL;
  g_autofree gchar *client_location = NULL;
  g_autofree gchar *client_mode = NULL;
  GOptionEntry entries[] = {
    {"files", 'n', 0, G_OPTION_ARG_INT, &n_files,
        "Files per batch (20)", "N"},
    {"total-mb", 's', 0, G_OPTION_ARG_INT, &total_mb,
        "Size of the main batch in MB; a batch a tenth of it is also run "
          "(200)", "MB"},
    {"repeat", 'r', 0, G_OPTION_ARG_INT, &repeat,
        "Runs of each side; medians are printed (3)", "N"},
    {"large", 'l', 0, G_OPTION_ARG_NONE, &large,
          "Also run a 499 MB batch (its zip is just under the 500 MB limit)",
        NULL},
    {"fetch-results", 0, 0, G_OPTION_ARG_NONE, &fetch_results,
        "The client also fetches every verdict (after the 202, so only "
          "its memory is affected)", NULL},
    {"emulator", 'e', 0, G_OPTION_ARG_FILENAME, &emulator_option,
        "The resemble-detect-emulator program (the build dir's, or "
          "$RD_EMULATOR_PROGRAM)", "PATH"},
    {"dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir_option,
        "Where to create the files (a new temporary directory)", "DIR"},
    {"no-pin", 'P', 0, G_OPTION_ARG_NONE, &no_pin,
          "Do not pin curl and the client to CPU 0 and the emulator to CPU 1",
        NULL},
    {"emulator-tmpdir", 0, 0, G_OPTION_ARG_FILENAME, &spool_option,
        "TMPDIR of the emulator, where it spools upload bodies (/dev/shm, "
          "so that no disk writeback slows the uploads down)", "DIR"},
    {"summary", 0, 0, G_OPTION_ARG_FILENAME, &summary_option,
          "Also append one line per side and batch to this file: "
          "batch|side|ok|body-bytes|body-s|202-s|cpu-s|peak-kB|growth-kB",
        "FILE"},
    {"run-client", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &client_url,
        "Child mode: upload one batch to this API URL", "URL"},
    {"location", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME,
        &client_location, "Child mode: the batch's spool directory", "DIR"},
    {"mode", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &client_mode,
        "Child mode: files or zip", "MODE"},
    {NULL}
  };
  g_autoptr (GOptionContext) options =
      g_option_context_new ("- API client upload speed and memory vs curl");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) workloads =
      g_ptr_array_new_with_free_func ((GDestroyNotify) workload_free);
  g_autofree gchar *self_exe = NULL;
  g_autofree gchar *root = NULL;
  const gchar *emulator_program;
  Emulator emulator = { 0 };
  gint sender_cpu = -1, emulator_cpu = -1;
  g_autofree gchar *rss_path = NULL;
  Growth growth[3] = { 0 };
  gboolean ok = TRUE;
  glong emulator_rss_kb;
  guint i;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }

  if (client_url != NULL) {
    RdUploadMode mode;

    if (client_location == NULL || client_mode == NULL
        || !rd_upload_mode_from_string (client_mode, &mode)) {
      g_printerr ("--run-client needs --location and --mode files|zip\n");
      return 2;
    }
    return run_client (client_url, client_location, mode, fetch_results);
  }

  if (n_files < 1 || n_files > RD_BATCH_MAX_FILES || total_mb < 10
      || total_mb > 500 || repeat < 1 || repeat > 100) {
    g_printerr ("--files 1..50, --total-mb 10..500, --repeat 1..100\n");
    return 2;
  }
  if (summary_option != NULL) {
    summary_file = fopen (summary_option, "a");
    if (summary_file == NULL) {
      g_printerr ("%s: %s\n", summary_option, g_strerror (errno));
      return 1;
    }
  }
  emulator_program = emulator_option ? emulator_option :
      g_getenv ("RD_EMULATOR_PROGRAM") ? g_getenv ("RD_EMULATOR_PROGRAM") :
      RD_EMULATOR_PROGRAM;
  self_exe = g_file_read_link ("/proc/self/exe", &error);
  if (self_exe == NULL) {
    g_printerr ("%s\n", error->message);
    return 1;
  }

  if (dir_option != NULL) {
    root = g_strdup (dir_option);
  } else {
    root = g_dir_make_tmp ("bench-upload-XXXXXX", &error);
    if (root == NULL) {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  }

  {
    struct
    {
      const gchar *label;
      guint64 bytes;
    } sizes[] = {
      {"small", (guint64) total_mb * 100000},
      {"main", (guint64) total_mb * 1000000},
      {"large", G_GUINT64_CONSTANT (499000000)},
    };

    for (i = 0; i < G_N_ELEMENTS (sizes); i++) {
      Workload *work;

      if (i == 2 && !large)
        break;
      work = workload_new (root, sizes[i].label, n_files, sizes[i].bytes,
          &error);
      if (work == NULL) {
        g_printerr ("%s\n", error->message);
        g_ptr_array_unref (g_steal_pointer (&workloads));
        if (dir_option == NULL)
          g_rmdir (root);
        return 1;
      }
      g_ptr_array_add (workloads, work);
    }
  }

  if (g_file_test (TIME_PROGRAM, G_FILE_TEST_IS_EXECUTABLE))
    rss_path = g_build_filename (root, "curl-rss", NULL);
  else
    g_printerr ("%s is missing (apt-get install time): curl's peak RSS "
        "will include this program's\n", TIME_PROGRAM);
  if (spool_option == NULL && g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR))
    spool_option = g_strdup ("/dev/shm");
  /* Pinned, the sender and the server do not compete for a CPU, and the
   * client's threads do not hop between CPUs: repeatable numbers. */
  if (!no_pin && g_get_num_processors () >= 2) {
    sender_cpu = 0;
    emulator_cpu = 1;
  }
  if (!emulator_start (&emulator, emulator_program, spool_option, emulator_cpu)) {
    g_ptr_array_unref (g_steal_pointer (&workloads));
    if (dir_option == NULL)
      g_rmdir (root);
    return 1;
  }

  g_print ("bench-upload: emulator %s (own process, spooling to %s), curl "
      "and the client (rd_client, own process) each upload every batch %d "
      "times; medians\n", emulator.url, spool_option ? spool_option :
      g_get_tmp_dir (), repeat);
  if (sender_cpu >= 0)
    g_print ("curl and the client pinned to CPU %d, the emulator to CPU %d\n",
        sender_cpu, emulator_cpu);
  else
    g_print ("nothing pinned to a CPU\n");
  g_print ("files written just before (page cache warm); the speed, CPU "
      "and RSS ratios are to curl in the same mode\n"
      "body s: start of the request (curl: connecting; client: "
      "rd_client_submit) to the last body byte written\n"
      "202 s: start of the request to the 202 (includes the emulator "
      "hashing the files after the body)\n"
      "CPU s: curl's whole process, the client process's during the "
      "upload; peak MB: the process's peak RSS;\n"
      "grow MB: the client's VmHWM after the batch minus before submitting "
      "it\n");

  for (i = 0; i < workloads->len; i++) {
    Workload *work = g_ptr_array_index (workloads, i);
    Results results = bench_workload (self_exe, emulator.url, work, repeat,
        fetch_results, rss_path, sender_cpu);

    growth[i].batch_mb = work->total_bytes / 1e6;
    growth[i].files_mb = results.client_files.rss_growth_kb / 1024.0;
    growth[i].zip_mb = results.client_zip.rss_growth_kb / 1024.0;
    ok &= results.curl_files.ok && results.client_files.ok
        && results.curl_zip.ok && results.client_zip.ok;
  }
  emulator_rss_kb = emulator_stop (&emulator);

  g_print ("\nclient RSS growth during the upload vs batch size "
      "(flat = streamed):\n");
  for (i = 0; i < workloads->len; i++)
    g_print ("  %6.1f MB batch: files +%.1f MB, zip +%.1f MB\n",
        growth[i].batch_mb, growth[i].files_mb, growth[i].zip_mb);
  g_print ("emulator peak RSS over the whole run: %.1f MB\n",
      emulator_rss_kb / 1024.0);

  if (summary_file != NULL)
    fclose (summary_file);
  g_ptr_array_unref (g_steal_pointer (&workloads));
  if (rss_path != NULL)
    g_unlink (rss_path);
  if (dir_option == NULL)
    g_rmdir (root);
  return ok ? 0 : 1;
}
