/* Receiving a batch upload without holding it: the request body goes chunk
 * by chunk into an unlinked temporary file, and is then parsed from that
 * file with a small sliding window, so a 500 MB upload costs disk, not
 * memory. files[] parts are hashed while they pass; the zip part is left in
 * place and read by libarchive through callbacks over its byte range. The
 * checks are the API's 400s, each with a message that names the problem. */
#define _GNU_SOURCE             /* memmem */
#include "emulator-upload.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <libsoup/soup.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

GQuark
rd_upload_error_quark (void)
{
  return g_quark_from_static_string ("rd-upload-error-quark");
}

#define WINDOW_SIZE (64 * 1024)
#define MAX_PART_HEADERS 16384
#define MAX_FIELD_VALUE 65536

typedef struct
{
  const gchar *extension;
  RdUploadMediaType type;
} MediaExtension;

/* The API's allowed list, in its order. */
static const MediaExtension media_extensions[] = {
  {"wav", RD_UPLOAD_MEDIA_AUDIO},
  {"mp3", RD_UPLOAD_MEDIA_AUDIO},
  {"m4a", RD_UPLOAD_MEDIA_AUDIO},
  {"ogg", RD_UPLOAD_MEDIA_AUDIO},
  {"aac", RD_UPLOAD_MEDIA_AUDIO},
  {"flac", RD_UPLOAD_MEDIA_AUDIO},
  {"mp4", RD_UPLOAD_MEDIA_VIDEO},
  {"mov", RD_UPLOAD_MEDIA_VIDEO},
  {"avi", RD_UPLOAD_MEDIA_VIDEO},
  {"mkv", RD_UPLOAD_MEDIA_VIDEO},
  {"webm", RD_UPLOAD_MEDIA_VIDEO},
  {"jpg", RD_UPLOAD_MEDIA_IMAGE},
  {"jpeg", RD_UPLOAD_MEDIA_IMAGE},
  {"png", RD_UPLOAD_MEDIA_IMAGE},
  {"gif", RD_UPLOAD_MEDIA_IMAGE},
  {"webp", RD_UPLOAD_MEDIA_IMAGE},
};

gboolean
rd_upload_media_type_for_name (const gchar * name, RdUploadMediaType * type)
{
  const gchar *dot;
  guint i;

  if (name == NULL)
    return FALSE;
  dot = strrchr (name, '.');
  if (dot == NULL)
    return FALSE;
  for (i = 0; i < G_N_ELEMENTS (media_extensions); i++) {
    if (g_ascii_strcasecmp (dot + 1, media_extensions[i].extension) == 0) {
      if (type)
        *type = media_extensions[i].type;
      return TRUE;
    }
  }
  return FALSE;
}

const gchar *
rd_upload_media_type_to_string (RdUploadMediaType type)
{
  switch (type) {
    case RD_UPLOAD_MEDIA_AUDIO:
      return "audio";
    case RD_UPLOAD_MEDIA_VIDEO:
      return "video";
    case RD_UPLOAD_MEDIA_IMAGE:
      return "image";
  }
  return "audio";
}

/* ---- spool ---- */

struct _RdUploadSpool
{
  gint fd;
  guint64 received;
  guint64 stored;
  guint64 store_limit;
  gboolean overflowed;
  gint write_errno;             /* 0, or why storing stopped */
};

RdUploadSpool *
rd_upload_spool_new (guint64 store_limit, GError ** error)
{
  RdUploadSpool *spool;
  g_autofree gchar *path = NULL;
  gint fd;

  fd = g_file_open_tmp ("rd-emulator-upload-XXXXXX", &path, error);
  if (fd < 0)
    return NULL;
  /* Unlinked at once: the kernel frees it when the fd closes, whatever
   * happens to the request or the process. */
  g_unlink (path);

  spool = g_new0 (RdUploadSpool, 1);
  spool->fd = fd;
  spool->store_limit = store_limit;
  return spool;
}

void
rd_upload_spool_free (RdUploadSpool * spool)
{
  if (spool == NULL)
    return;
  if (spool->fd >= 0)
    close (spool->fd);
  g_free (spool);
}

void
rd_upload_spool_write (RdUploadSpool * spool, const guint8 * data, gsize len)
{
  spool->received += len;
  if (spool->overflowed || spool->write_errno != 0)
    return;
  if (spool->stored + len > spool->store_limit) {
    spool->overflowed = TRUE;
    return;
  }
  while (len > 0) {
    gssize n = write (spool->fd, data, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      spool->write_errno = errno;
      return;
    }
    data += n;
    len -= n;
    spool->stored += n;
  }
}

guint64
rd_upload_spool_get_received (RdUploadSpool * spool)
{
  return spool->received;
}

gboolean
rd_upload_spool_overflowed (RdUploadSpool * spool)
{
  return spool->overflowed;
}

/* ---- a sliding window over the spool file ---- */

typedef struct
{
  gint fd;
  guint64 file_pos;             /* next byte to read from the file */
  guint64 file_len;
  guint8 *buf;
  gsize start;                  /* unconsumed data is buf[start, end) */
  gsize end;
  gint64 buf_offset;            /* file offset of buf[0] */
} Window;

typedef gboolean (*SinkFunc) (gpointer user_data, const guint8 * data,
    gsize len, GError ** error);

static void
window_init (Window * w, gint fd, guint64 file_len)
{
  w->fd = fd;
  w->file_pos = 0;
  w->file_len = file_len;
  w->buf = g_malloc (WINDOW_SIZE);
  /* A virtual CRLF before the body lets the first boundary, which has no
   * CRLF of its own, match the same delimiter as every later one. */
  w->buf[0] = '\r';
  w->buf[1] = '\n';
  w->start = 0;
  w->end = 2;
  w->buf_offset = -2;
}

static void
window_clear (Window * w)
{
  g_free (w->buf);
}

static gint64
window_offset (const Window * w)
{
  return w->buf_offset + (gint64) w->start;
}

/* Moves the unconsumed bytes to the front and reads more; FALSE at the end
 * of the file. */
static gboolean
window_fill (Window * w, GError ** error)
{
  gssize n;

  if (w->start > 0) {
    memmove (w->buf, w->buf + w->start, w->end - w->start);
    w->buf_offset += w->start;
    w->end -= w->start;
    w->start = 0;
  }
  if (w->file_pos >= w->file_len || w->end == WINDOW_SIZE)
    return FALSE;
  do {
    n = pread (w->fd, w->buf + w->end,
        MIN (WINDOW_SIZE - w->end, w->file_len - w->file_pos), w->file_pos);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    g_set_error (error, RD_UPLOAD_ERROR, RD_UPLOAD_ERROR_STORAGE,
        "cannot read the spooled upload: %s", g_strerror (errno));
    return FALSE;
  }
  w->file_pos += n;
  w->end += n;
  return n > 0;
}

/* Makes at least @n bytes available; FALSE if the file ends first. */
static gboolean
window_need (Window * w, gsize n, GError ** error)
{
  while (w->end - w->start < n) {
    if (!window_fill (w, error))
      return FALSE;
  }
  return TRUE;
}

/* Passes everything up to the next @delim to @sink (NULL: discard) and
 * consumes the delimiter. *found is FALSE if the file ended first. */
static gboolean
window_scan (Window * w, const gchar * delim, gsize delim_len,
    SinkFunc sink, gpointer user_data, gboolean * found, GError ** error)
{
  *found = FALSE;
  for (;;) {
    gsize avail = w->end - w->start;
    const guint8 *data = w->buf + w->start;
    const guint8 *hit = memmem (data, avail, delim, delim_len);
    GError *fill_error = NULL;

    if (hit != NULL) {
      gsize n = hit - data;
      if (n > 0 && sink && !sink (user_data, data, n, error))
        return FALSE;
      w->start += n + delim_len;
      *found = TRUE;
      return TRUE;
    }
    /* The last delim_len - 1 bytes may be the start of a delimiter. */
    if (avail >= delim_len) {
      gsize n = avail - (delim_len - 1);
      if (sink && !sink (user_data, data, n, error))
        return FALSE;
      w->start += n;
    }
    if (!window_fill (w, &fill_error)) {
      if (fill_error) {
        g_propagate_error (error, fill_error);
        return FALSE;
      }
      return TRUE;
    }
  }
}

/* ---- the parse ---- */

typedef enum
{
  PART_FIELD,
  PART_FILES,                   /* a files[] part */
  PART_ZIP,                     /* the "file" part */
} PartKind;

typedef struct
{
  const RdUploadLimits *limits;
  RdUpload *upload;
  guint64 total;                /* bytes of all media files so far */
  guint n_files_parts;
  guint n_zip_parts;

  /* the part being read */
  PartKind kind;
  gchar *part_name;
  GString *value;
  GChecksum *checksum;
  RdUploadFile *file;
} ParseState;

static void
upload_file_free (RdUploadFile * file)
{
  g_free (file->name);
  g_free (file);
}

static void
upload_field_free (RdUploadField * field)
{
  g_free (field->name);
  g_free (field->value);
  g_free (field);
}

static void
upload_skipped_free (RdUploadSkipped * skipped)
{
  g_free (skipped->name);
  g_free (skipped->reason);
  g_free (skipped);
}

void
rd_upload_free (RdUpload * upload)
{
  if (upload == NULL)
    return;
  g_free (upload->zip_name);
  g_ptr_array_unref (upload->files);
  g_ptr_array_unref (upload->fields);
  g_ptr_array_unref (upload->skipped);
  g_free (upload);
}

static RdUpload *
upload_new (void)
{
  RdUpload *upload = g_new0 (RdUpload, 1);

  upload->files = g_ptr_array_new_with_free_func ((GDestroyNotify)
      upload_file_free);
  upload->fields = g_ptr_array_new_with_free_func ((GDestroyNotify)
      upload_field_free);
  upload->skipped = g_ptr_array_new_with_free_func ((GDestroyNotify)
      upload_skipped_free);
  return upload;
}

/* *INDENT-OFF* */
static gboolean
invalid (GError ** error, const gchar * format, ...) G_GNUC_PRINTF (2, 3);
/* *INDENT-ON* */

static gboolean
invalid (GError ** error, const gchar * format, ...)
{
  va_list args;
  gchar *message;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, RD_UPLOAD_ERROR, RD_UPLOAD_ERROR_INVALID,
      message);
  g_free (message);
  return FALSE;
}

static gboolean
check_total (ParseState * state, guint64 more, GError ** error)
{
  state->total += more;
  if (state->total > state->limits->max_total_bytes)
    return invalid (error, "batch exceeds the maximum total upload size of "
        "%" G_GUINT64_FORMAT " bytes (500 MB)", state->limits->max_total_bytes);
  return TRUE;
}

/* Starts a media file; checks what is known before its bytes. */
static gboolean
begin_file (ParseState * state, const gchar * name, GError ** error)
{
  RdUploadMediaType type;

  if (state->upload->files->len >= state->limits->max_files)
    return invalid (error, "batch exceeds the maximum of %u files",
        state->limits->max_files);
  if (!rd_upload_media_type_for_name (name, &type))
    return invalid (error, "unsupported file type: '%s' (allowed: .wav, "
        ".mp3, .m4a, .ogg, .aac, .flac, .mp4, .mov, .avi, .mkv, .webm, "
        ".jpg, .jpeg, .png, .gif, .webp)", name);

  state->file = g_new0 (RdUploadFile, 1);
  state->file->name = g_strdup (name);
  state->file->media_type = type;
  state->checksum = g_checksum_new (G_CHECKSUM_SHA256);
  return TRUE;
}

static gboolean
file_sink (gpointer user_data, const guint8 * data, gsize len, GError ** error)
{
  ParseState *state = user_data;

  g_checksum_update (state->checksum, data, len);
  state->file->size += len;
  return check_total (state, len, error);
}

static gboolean
end_file (ParseState * state, GError ** error)
{
  RdUploadFile *file = state->file;
  gsize digest_len = sizeof (file->sha256);

  state->file = NULL;
  g_checksum_get_digest (state->checksum, file->sha256, &digest_len);
  g_strlcpy (file->sha256_hex, g_checksum_get_string (state->checksum),
      sizeof (file->sha256_hex));
  g_clear_pointer (&state->checksum, g_checksum_free);
  g_ptr_array_add (state->upload->files, file);

  if (file->size == 0)
    return invalid (error, "file '%s' is empty", file->name);
  return TRUE;
}

static gboolean
field_sink (gpointer user_data, const guint8 * data, gsize len, GError ** error)
{
  ParseState *state = user_data;

  if (state->value->len + len > MAX_FIELD_VALUE)
    return invalid (error, "field '%s' is longer than %d bytes",
        state->part_name, MAX_FIELD_VALUE);
  g_string_append_len (state->value, (const gchar *) data, len);
  return TRUE;
}

static gboolean
header_sink (gpointer user_data, const guint8 * data, gsize len,
    GError ** error)
{
  GString *headers = user_data;

  if (headers->len + len > MAX_PART_HEADERS)
    return invalid (error, "malformed multipart body: part headers longer "
        "than %d bytes", MAX_PART_HEADERS);
  g_string_append_len (headers, (const gchar *) data, len);
  return TRUE;
}

/* Finds name and filename in the part's Content-Disposition. */
static gboolean
parse_part_headers (const gchar * headers, gchar ** name, gchar ** filename,
    GError ** error)
{
  g_auto (GStrv) lines = g_strsplit (headers, "\r\n", -1);
  guint i;

  *name = NULL;
  *filename = NULL;
  for (i = 0; lines[i]; i++) {
    gchar *colon = strchr (lines[i], ':');
    GHashTable *params;

    if (colon == NULL)
      continue;
    *colon = '\0';
    if (g_ascii_strcasecmp (g_strstrip (lines[i]), "Content-Disposition") != 0)
      continue;
    params = soup_header_parse_semi_param_list (colon + 1);
    g_free (*name);
    g_free (*filename);
    *name = g_strdup (g_hash_table_lookup (params, "name"));
    *filename = g_strdup (g_hash_table_lookup (params, "filename"));
    g_hash_table_unref (params);
  }
  if (*name == NULL || **name == '\0')
    return invalid (error, "malformed multipart body: a part has no "
        "Content-Disposition name");
  return TRUE;
}

typedef struct
{
  gint fd;
  guint64 start;
  guint64 length;
  guint64 pos;
  guint8 buf[WINDOW_SIZE];
} ZipRange;

static la_ssize_t
zip_range_read (struct archive *archive, void *user_data, const void **out)
{
  ZipRange *range = user_data;
  gssize n;

  *out = range->buf;
  if (range->pos >= range->length)
    return 0;
  do {
    n = pread (range->fd, range->buf, MIN (sizeof (range->buf),
            range->length - range->pos), range->start + range->pos);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    archive_set_error (archive, errno, "cannot read the spooled zip");
    return -1;
  }
  range->pos += n;
  return n;
}

static la_int64_t
zip_range_seek (struct archive *archive, void *user_data, la_int64_t offset,
    int whence)
{
  ZipRange *range = user_data;
  gint64 base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ?
      (gint64) range->pos : (gint64) range->length;
  gint64 target = base + offset;

  if (target < 0)
    return ARCHIVE_FATAL;
  range->pos = MIN ((guint64) target, range->length);
  return range->pos;
}

static la_int64_t
zip_range_skip (struct archive *archive, void *user_data, la_int64_t request)
{
  ZipRange *range = user_data;
  guint64 n = MIN ((guint64) MAX (request, 0), range->length - range->pos);

  range->pos += n;
  return n;
}

/* Why an entry is not analysed, or NULL for a media entry; *flat gets the
 * name without directories. */
static const gchar *
zip_entry_skip_reason (const gchar * path, gchar ** flat)
{
  g_auto (GStrv) parts = NULL;
  const gchar *base = NULL;
  guint i;

  *flat = NULL;
  if (path[0] == '/' || path[0] == '\\' ||
      (g_ascii_isalpha (path[0]) && path[1] == ':'))
    return "unsafe path (absolute)";
  parts = g_regex_split_simple ("[/\\\\]", path, 0, 0);
  for (i = 0; parts[i]; i++) {
    if (strcmp (parts[i], "..") == 0)
      return "unsafe path (escapes the archive)";
    if (strcmp (parts[i], "__MACOSX") == 0)
      return "archive metadata";
    if (parts[i][0] != '\0')
      base = parts[i];
  }
  if (base == NULL)
    return "no file name";
  if (base[0] == '.')
    return "hidden file";
  if (!rd_upload_media_type_for_name (base, NULL))
    return "not a media file";
  *flat = g_strdup (base);
  return NULL;
}

static void
add_skipped (RdUpload * upload, const gchar * name, const gchar * reason)
{
  RdUploadSkipped *skipped = g_new0 (RdUploadSkipped, 1);

  skipped->name = g_strdup (name);
  skipped->reason = g_strdup (reason);
  g_ptr_array_add (upload->skipped, skipped);
}

static gboolean
read_zip (ParseState * state, gint fd, guint64 start, guint64 length,
    GError ** error)
{
  struct archive *archive = archive_read_new ();
  struct archive_entry *entry;
  ZipRange *range = g_new0 (ZipRange, 1);
  g_autofree guint8 *buf = g_malloc (WINDOW_SIZE);
  gboolean ok = TRUE;
  gint r;

  range->fd = fd;
  range->start = start;
  range->length = length;
  archive_read_support_format_zip (archive);
  archive_read_set_read_callback (archive, zip_range_read);
  archive_read_set_seek_callback (archive, zip_range_seek);
  archive_read_set_skip_callback (archive, zip_range_skip);
  archive_read_set_callback_data (archive, range);
  if (archive_read_open1 (archive) != ARCHIVE_OK) {
    ok = invalid (error, "file '%s' is not a readable zip archive: %s",
        state->upload->zip_name, archive_error_string (archive));
    goto done;
  }

  while ((r = archive_read_next_header (archive, &entry)) != ARCHIVE_EOF) {
    const gchar *path;
    const gchar *reason;
    g_autofree gchar *flat = NULL;
    la_ssize_t n;

    if (r < ARCHIVE_WARN) {
      ok = invalid (error, "file '%s' is not a readable zip archive: %s",
          state->upload->zip_name, archive_error_string (archive));
      goto done;
    }
    path = archive_entry_pathname_utf8 (entry);
    if (path == NULL)
      path = archive_entry_pathname (entry);
    if (path == NULL)
      path = "";
    if (archive_entry_filetype (entry) == AE_IFDIR)
      continue;
    if (archive_entry_filetype (entry) != AE_IFREG) {
      add_skipped (state->upload, path, "not a regular file");
      continue;
    }
    reason = zip_entry_skip_reason (path, &flat);
    if (reason) {
      add_skipped (state->upload, path, reason);
      continue;
    }
    if (!begin_file (state, flat, error)) {
      ok = FALSE;
      goto done;
    }
    while ((n = archive_read_data (archive, buf, WINDOW_SIZE)) > 0) {
      if (!file_sink (state, buf, n, error)) {
        ok = FALSE;
        goto done;
      }
    }
    if (n < 0) {
      ok = invalid (error, "cannot read zip entry '%s': %s", path,
          archive_error_string (archive));
      goto done;
    }
    if (!end_file (state, error)) {
      ok = FALSE;
      goto done;
    }
  }

  if (state->upload->files->len == 0)
    ok = invalid (error, "zip archive '%s' contains no media files",
        state->upload->zip_name);

done:
  if (state->file) {
    upload_file_free (state->file);
    state->file = NULL;
  }
  g_clear_pointer (&state->checksum, g_checksum_free);
  archive_read_free (archive);
  g_free (range);
  return ok;
}

static gboolean
has_zip_suffix (const gchar * filename)
{
  gsize len = strlen (filename);

  return len >= 4 && g_ascii_strcasecmp (filename + len - 4, ".zip") == 0;
}

/* Reads one part's headers and body; the window stands just after the
 * boundary line. */
static gboolean
read_part (ParseState * state, Window * w, const gchar * delim,
    gsize delim_len, guint64 * zip_start, guint64 * zip_length, GError ** error)
{
  g_autoptr (GString) headers = g_string_new (NULL);
  g_autofree gchar *name = NULL;
  g_autofree gchar *filename = NULL;
  gboolean found;
  gint64 body_start;

  /* An empty header block is just the blank line. */
  if (!window_need (w, 2, error))
    return *error ? FALSE :
        invalid (error, "malformed multipart body: truncated part");
  if (memcmp (w->buf + w->start, "\r\n", 2) == 0) {
    w->start += 2;
  } else {
    if (!window_scan (w, "\r\n\r\n", 4, header_sink, headers, &found, error))
      return FALSE;
    if (!found)
      return invalid (error, "malformed multipart body: truncated part "
          "headers");
  }
  if (!parse_part_headers (headers->str, &name, &filename, error))
    return FALSE;

  g_free (state->part_name);
  state->part_name = g_strdup (name);
  if (strcmp (name, "files[]") == 0) {
    if (filename == NULL || filename[0] == '\0')
      return invalid (error, "a files[] part has no filename");
    if (state->n_zip_parts > 0)
      return invalid (error, "both files[] and a zip file were supplied; "
          "send exactly one of them");
    state->kind = PART_FILES;
    state->n_files_parts++;
    if (!begin_file (state, filename, error))
      return FALSE;
  } else if (strcmp (name, "file") == 0) {
    if (state->n_files_parts > 0)
      return invalid (error, "both files[] and a zip file were supplied; "
          "send exactly one of them");
    if (state->n_zip_parts > 0)
      return invalid (error, "more than one 'file' part; send exactly one "
          "zip archive");
    if (filename == NULL || !has_zip_suffix (filename))
      return invalid (error, "the 'file' part must be a .zip archive (got "
          "'%s')", filename ? filename : "no filename");
    state->kind = PART_ZIP;
    state->n_zip_parts++;
    state->upload->zip = TRUE;
    state->upload->zip_name = g_strdup (filename);
  } else if (filename != NULL) {
    return invalid (error, "unexpected file field '%s' (send media as "
        "files[] or one zip as file)", name);
  } else {
    state->kind = PART_FIELD;
    g_string_truncate (state->value, 0);
  }

  body_start = window_offset (w);
  switch (state->kind) {
    case PART_FILES:
      if (!window_scan (w, delim, delim_len, file_sink, state, &found, error))
        return FALSE;
      break;
    case PART_ZIP:
      if (!window_scan (w, delim, delim_len, NULL, NULL, &found, error))
        return FALSE;
      break;
    case PART_FIELD:
      if (!window_scan (w, delim, delim_len, field_sink, state, &found, error))
        return FALSE;
      break;
  }
  if (!found)
    return invalid (error, "malformed multipart body: missing closing "
        "boundary");

  switch (state->kind) {
    case PART_FILES:
      return end_file (state, error);
    case PART_ZIP:
      *zip_start = body_start;
      *zip_length = window_offset (w) - delim_len - body_start;
      state->upload->zip_size = *zip_length;
      return TRUE;
    case PART_FIELD:{
      RdUploadField *field = g_new0 (RdUploadField, 1);
      field->name = g_strdup (name);
      field->value = g_strdup (state->value->str);
      g_ptr_array_add (state->upload->fields, field);
      return TRUE;
    }
  }
  return TRUE;
}

static RdUpload *
parse_spool (RdUploadSpool * spool, const gchar * boundary,
    const RdUploadLimits * limits, GError ** error)
{
  ParseState state = { 0, };
  Window w;
  g_autofree gchar *delim = NULL;
  gsize delim_len;
  guint64 zip_start = 0, zip_length = 0;
  gboolean found, ok = FALSE;
  RdUpload *upload;

  if (spool->write_errno != 0) {
    g_set_error (error, RD_UPLOAD_ERROR, RD_UPLOAD_ERROR_STORAGE,
        "cannot spool the upload: %s", g_strerror (spool->write_errno));
    return NULL;
  }
  if (boundary == NULL || boundary[0] == '\0' || strlen (boundary) > 200) {
    invalid (error, "malformed multipart body: no usable boundary");
    return NULL;
  }

  upload = upload_new ();
  state.limits = limits;
  state.upload = upload;
  state.value = g_string_new (NULL);
  delim = g_strconcat ("\r\n--", boundary, NULL);
  delim_len = strlen (delim);
  window_init (&w, spool->fd, spool->stored);

  /* The preamble, up to the first boundary, is ignored. */
  if (!window_scan (&w, delim, delim_len, NULL, NULL, &found, error))
    goto out;
  if (!found) {
    invalid (error, "malformed multipart body: no boundary found");
    goto out;
  }
  for (;;) {
    if (!window_need (&w, 2, error)) {
      if (*error == NULL)
        invalid (error, "malformed multipart body: missing closing boundary");
      goto out;
    }
    if (memcmp (w.buf + w.start, "--", 2) == 0)
      break;
    /* Transport padding, then the end of the boundary line. */
    while (window_need (&w, 1, NULL) && (w.buf[w.start] == ' '
            || w.buf[w.start] == '\t'))
      w.start++;
    if (!window_need (&w, 2, error)
        || memcmp (w.buf + w.start, "\r\n", 2) != 0) {
      if (*error == NULL)
        invalid (error, "malformed multipart body: bad boundary line");
      goto out;
    }
    w.start += 2;
    if (!read_part (&state, &w, delim, delim_len, &zip_start, &zip_length,
            error))
      goto out;
  }

  if (state.n_files_parts == 0 && state.n_zip_parts == 0) {
    invalid (error, "no media supplied: send files[] parts or one zip "
        "archive as file");
    goto out;
  }
  if (upload->zip) {
    if (zip_length == 0) {
      invalid (error, "file '%s' is empty", upload->zip_name);
      goto out;
    }
    if (zip_length > limits->max_total_bytes) {
      invalid (error, "batch exceeds the maximum total upload size of "
          "%" G_GUINT64_FORMAT " bytes (500 MB)", limits->max_total_bytes);
      goto out;
    }
    if (!read_zip (&state, spool->fd, zip_start, zip_length, error))
      goto out;
  }
  ok = TRUE;

out:
  if (state.file)
    upload_file_free (state.file);
  g_clear_pointer (&state.checksum, g_checksum_free);
  g_free (state.part_name);
  g_string_free (state.value, TRUE);
  window_clear (&w);
  if (!ok) {
    rd_upload_free (upload);
    return NULL;
  }
  return upload;
}

RdUpload *
rd_upload_parse (RdUploadSpool * spool, const gchar * boundary,
    const RdUploadLimits * limits, GError ** error)
{
  GError *local_error = NULL;
  RdUpload *upload;

  /* The helpers below test *error, so they always get a real one. */
  upload = parse_spool (spool, boundary, limits, &local_error);
  if (upload == NULL)
    g_propagate_error (error, local_error);
  return upload;
}
