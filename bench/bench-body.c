/* bench-body: what it costs to produce an upload body from files on disk.
 * Builds N files (200 MB in all by default), then reads them as a plain
 * read(2) loop (the baseline, like cat), as a multipart body (sync reads, and
 * async reads on a GMainContext the way libsoup pulls a request body), as a
 * zip inside a multipart body, and as a real libsoup POST of the multipart
 * body to a SoupServer on 127.0.0.1 that discards it. It prints each one's
 * throughput and peak RSS and their ratios to the baseline. Every mode runs
 * in its own child process so that peak RSS is its own; the page cache is
 * warmed first, so the numbers compare CPU and memory overhead, not the
 * disk. */

#include "multipart-stream.h"
#include "zip-stream.h"

#include <libsoup/soup.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct
{
  gboolean ok;
  gint64 bytes;
  gdouble seconds;
  glong peak_rss_kb;
} Result;

typedef struct
{
  GStrv paths;
  gsize chunk;
} Workload;

typedef gboolean (*ModeFunc) (const Workload * work, gint64 * bytes);

static gboolean
write_file (const gchar * path, gsize size, guint64 seed)
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

    /* xorshift: incompressible, like the media files it stands for. */
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
  return close (fd) == 0;
}

static gboolean
run_cat (const Workload * work, gint64 * bytes)
{
  g_autofree guint8 *buffer = g_malloc (work->chunk);
  guint i;

  for (i = 0; work->paths[i] != NULL; i++) {
    int fd = g_open (work->paths[i], O_RDONLY, 0);
    gssize n;

    if (fd < 0)
      return FALSE;
    while ((n = read (fd, buffer, work->chunk)) > 0)
      *bytes += n;
    close (fd);
    if (n < 0)
      return FALSE;
  }
  return TRUE;
}

static RdMultipartStream *
build_multipart (const Workload * work)
{
  RdMultipartStream *body = rd_multipart_stream_new ();
  guint i;

  rd_multipart_stream_add_field (body, "intelligence", "true");
  rd_multipart_stream_add_field (body, "visualize", "false");
  for (i = 0; work->paths[i] != NULL; i++) {
    g_autoptr (GError) error = NULL;

    if (!rd_multipart_stream_add_file (body, "files[]", work->paths[i], NULL,
            "audio/wav", &error)) {
      g_printerr ("%s\n", error->message);
      g_object_unref (body);
      return NULL;
    }
  }
  return body;
}

static gboolean
drain (GInputStream * stream, gsize chunk, gint64 * bytes)
{
  g_autofree guint8 *buffer = g_malloc (chunk);
  g_autoptr (GError) error = NULL;
  gssize n;

  while ((n = g_input_stream_read (stream, buffer, chunk, NULL, &error)) > 0)
    *bytes += n;
  if (n < 0) {
    g_printerr ("%s\n", error->message);
    return FALSE;
  }
  return TRUE;
}

static gboolean
run_multipart (const Workload * work, gint64 * bytes)
{
  g_autoptr (RdMultipartStream) body = build_multipart (work);

  return body != NULL && drain (G_INPUT_STREAM (body), work->chunk, bytes)
      && *bytes == rd_multipart_stream_get_length (body);
}

typedef struct
{
  GInputStream *stream;
  guint8 *buffer;
  gsize chunk;
  gint64 bytes;
  gboolean done;
  gboolean ok;
} AsyncDrain;

static void
async_read_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  AsyncDrain *drain = user_data;
  g_autoptr (GError) error = NULL;
  gssize n = g_input_stream_read_finish (drain->stream, result, &error);

  if (n <= 0) {
    if (n < 0)
      g_printerr ("%s\n", error->message);
    drain->ok = n == 0;
    drain->done = TRUE;
    return;
  }
  drain->bytes += n;
  g_input_stream_read_async (drain->stream, drain->buffer, drain->chunk,
      G_PRIORITY_DEFAULT, NULL, async_read_done, drain);
}

/* One read_async at a time on the thread's own context, as libsoup does. */
static gboolean
run_multipart_async (const Workload * work, gint64 * bytes)
{
  g_autoptr (RdMultipartStream) body = build_multipart (work);
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autofree guint8 *buffer = g_malloc (work->chunk);
  AsyncDrain drain = { 0 };

  if (body == NULL)
    return FALSE;
  drain.stream = G_INPUT_STREAM (body);
  drain.buffer = buffer;
  drain.chunk = work->chunk;

  g_main_context_push_thread_default (context);
  g_input_stream_read_async (drain.stream, buffer, work->chunk,
      G_PRIORITY_DEFAULT, NULL, async_read_done, &drain);
  while (!drain.done)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  *bytes = drain.bytes;
  return drain.ok && *bytes == rd_multipart_stream_get_length (body);
}

static gboolean
run_zip (const Workload * work, gint64 * bytes)
{
  g_autoptr (RdZipStream) zip = rd_zip_stream_new ();
  g_autoptr (RdMultipartStream) body = rd_multipart_stream_new ();
  g_autoptr (GError) error = NULL;
  goffset zip_length;
  guint i;

  for (i = 0; work->paths[i] != NULL; i++) {
    if (!rd_zip_stream_add_file (zip, work->paths[i], NULL, &error)) {
      g_printerr ("%s\n", error->message);
      return FALSE;
    }
  }
  zip_length = rd_zip_stream_get_length (zip, &error);
  if (zip_length < 0) {
    g_printerr ("%s\n", error->message);
    return FALSE;
  }
  rd_multipart_stream_add_field (body, "intelligence", "true");
  rd_multipart_stream_add_stream (body, "file", "batch.zip",
      "application/zip", G_INPUT_STREAM (zip), zip_length);

  return drain (G_INPUT_STREAM (body), work->chunk, bytes)
      && *bytes == rd_multipart_stream_get_length (body);
}

static void
discard_request_body (SoupServer * server, SoupServerMessage * msg,
    gpointer user_data)
{
  soup_message_body_set_accumulate (soup_server_message_get_request_body
      (msg), FALSE);
}

static void
upload_handler (SoupServer * server, SoupServerMessage * msg,
    const gchar * path, GHashTable * query, gpointer user_data)
{
  soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
}

typedef struct
{
  gboolean done;
  GError *error;
} Upload;

static void
upload_done (GObject * source, GAsyncResult * result, gpointer user_data)
{
  Upload *upload = user_data;
  g_autoptr (GBytes) reply = NULL;

  reply = soup_session_send_and_read_finish (SOUP_SESSION (source), result,
      &upload->error);
  upload->done = TRUE;
}

/* What the API client does, minus the real network: the server shares the
 * thread, so this also pays for receiving. */
static gboolean
run_libsoup_upload (const Workload * work, gint64 * bytes)
{
  g_autoptr (RdMultipartStream) body = build_multipart (work);
  g_autoptr (SoupServer) server = soup_server_new (NULL, NULL);
  g_autoptr (SoupSession) session =
      soup_session_new_with_options ("proxy-resolver", NULL, NULL);
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GUri) uri = NULL;
  GSList *uris;
  Upload upload = { 0 };

  if (body == NULL)
    return FALSE;
  g_signal_connect (server, "request-started",
      G_CALLBACK (discard_request_body), NULL);
  soup_server_add_handler (server, "/upload", upload_handler, NULL, NULL);
  if (!soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY,
          &error)) {
    g_printerr ("%s\n", error->message);
    return FALSE;
  }
  uris = soup_server_get_uris (server);
  uri = g_uri_parse_relative (uris->data, "/upload", G_URI_FLAGS_NONE, NULL);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  msg = soup_message_new_from_uri ("POST", uri);
  soup_message_set_request_body (msg,
      rd_multipart_stream_get_content_type (body), G_INPUT_STREAM (body),
      rd_multipart_stream_get_length (body));
  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL,
      upload_done, &upload);
  while (!upload.done)
    g_main_context_iteration (NULL, TRUE);

  *bytes = rd_multipart_stream_get_bytes_read (body);
  if (upload.error != NULL) {
    g_printerr ("%s\n", upload.error->message);
    g_error_free (upload.error);
    return FALSE;
  }
  return soup_message_get_status (msg) == SOUP_STATUS_NO_CONTENT
      && *bytes == rd_multipart_stream_get_length (body);
}

/* Runs @func in a child process and reports its time and peak RSS. */
static Result
measure (ModeFunc func, const Workload * work)
{
  Result result = { 0 };
  int fds[2];
  pid_t pid;
  int status;

  if (pipe (fds) != 0)
    g_error ("pipe: %s", g_strerror (errno));
  pid = fork ();
  if (pid < 0)
    g_error ("fork: %s", g_strerror (errno));

  if (pid == 0) {
    Result child = { 0 };
    struct rusage usage;
    gint64 start = g_get_monotonic_time ();

    close (fds[0]);
    child.ok = func (work, &child.bytes);
    child.seconds =
        (g_get_monotonic_time () - start) / (gdouble) G_USEC_PER_SEC;
    getrusage (RUSAGE_SELF, &usage);
    child.peak_rss_kb = usage.ru_maxrss;
    if (write (fds[1], &child, sizeof (child)) != sizeof (child))
      _exit (1);
    _exit (0);
  }

  close (fds[1]);
  if (read (fds[0], &result, sizeof (result)) != sizeof (result))
    result.ok = FALSE;
  close (fds[0]);
  waitpid (pid, &status, 0);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    result.ok = FALSE;
  return result;
}

/* Returns whether the mode succeeded. */
static gboolean
print_result (const gchar * name, const Result * result,
    const Result * baseline)
{
  gdouble mb_per_s = result->bytes / 1e6 / MAX (result->seconds, 1e-9);
  gdouble base_mb_per_s = baseline->bytes / 1e6 / MAX (baseline->seconds, 1e-9);

  if (!result->ok) {
    g_print ("%-18s FAILED\n", name);
    return FALSE;
  }
  g_print ("%-18s %10.1f %9.3f %10.1f %12.1f %12.2f %10.2f\n", name,
      result->bytes / 1e6, result->seconds, mb_per_s,
      result->peak_rss_kb / 1024.0, mb_per_s / base_mb_per_s,
      (gdouble) result->peak_rss_kb / baseline->peak_rss_kb);
  return TRUE;
}

int
main (int argc, char **argv)
{
  gint n_files = 20;
  gint total_mb = 200;
  gint chunk = 8192;
  gchar *dir_option = NULL;
  GOptionEntry entries[] = {
    {"files", 'n', 0, G_OPTION_ARG_INT, &n_files, "Number of files (20)", "N"},
    {"total-mb", 's', 0, G_OPTION_ARG_INT, &total_mb,
        "Total size in MB (200)", "MB"},
    {"chunk", 'c', 0, G_OPTION_ARG_INT, &chunk,
        "Bytes per read; libsoup uses 8192 (8192)", "BYTES"},
    {"dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir_option,
        "Where to create the files (a new temporary directory)", "DIR"},
    {NULL}
  };
  g_autoptr (GOptionContext) options =
      g_option_context_new ("- upload body throughput and memory");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *dir = NULL;
  gboolean own_dir = FALSE;
  Workload work;
  Result baseline, result;
  gboolean ok = TRUE;
  gsize file_size;
  guint i;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  if (n_files < 1 || total_mb < 1 || chunk < 1) {
    g_printerr ("--files, --total-mb and --chunk must be positive\n");
    return 2;
  }

  if (dir_option != NULL) {
    dir = g_steal_pointer (&dir_option);
  } else {
    dir = g_dir_make_tmp ("bench-body-XXXXXX", &error);
    if (dir == NULL) {
      g_printerr ("%s\n", error->message);
      return 1;
    }
    own_dir = TRUE;
  }

  file_size = (gsize) total_mb *1000 * 1000 / n_files;
  for (i = 0; i < (guint) n_files; i++) {
    gchar *path = g_strdup_printf ("%s/segment-%06u.wav", dir, i);

    g_ptr_array_add (paths, path);
    if (!write_file (path, file_size, i + 1)) {
      g_printerr ("Cannot write %s: %s\n", path, g_strerror (errno));
      return 1;
    }
  }
  g_ptr_array_add (paths, NULL);
  work.paths = (GStrv) paths->pdata;
  work.chunk = chunk;

  /* Warm the page cache so that every mode reads from memory. */
  measure (run_cat, &work);

  g_print ("bench-body: %d files, %.1f MB, %d-byte reads, page cache warm\n",
      n_files, (gdouble) file_size * n_files / 1e6, chunk);
  g_print ("%-18s %10s %9s %10s %12s %12s %10s\n", "mode", "MB", "seconds",
      "MB/s", "peak RSS MB", "speed ratio", "RSS ratio");
  baseline = measure (run_cat, &work);
  if (!baseline.ok) {
    g_printerr ("baseline failed\n");
    return 1;
  }
  print_result ("cat (baseline)", &baseline, &baseline);
  result = measure (run_multipart, &work);
  ok &= print_result ("multipart", &result, &baseline);
  result = measure (run_multipart_async, &work);
  ok &= print_result ("multipart async", &result, &baseline);
  result = measure (run_zip, &work);
  ok &= print_result ("zip in multipart", &result, &baseline);
  result = measure (run_libsoup_upload, &work);
  ok &= print_result ("libsoup upload", &result, &baseline);

  for (i = 0; i < (guint) n_files; i++)
    g_unlink (g_ptr_array_index (paths, i));
  if (own_dir)
    g_rmdir (dir);
  return ok ? 0 : 1;
}
