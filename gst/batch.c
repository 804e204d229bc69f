/* The batch rules: which closed file goes into which batch, and whether a
 * batch is one the API would accept. These are the API's documented limits
 * (50 files, 500 MB, a fixed list of extensions) applied before any byte
 * leaves the machine, so a 400 from the server means the server changed, not
 * that we sent something we could have known was wrong. */

#include "batch.h"

#include <string.h>

#define DIR_NAME_PREFIX "batch-"

/* *INDENT-OFF* */
/* *INDENT-ON* */

typedef struct
{
  const gchar *extension;       /* with the dot, lower case */
  const gchar *content_type;
} RdExtension;

/* The API's allowed extensions, in the order its docs list them. */
static const RdExtension allowed_extensions[] = {
  {".wav", "audio/wav"},
  {".mp3", "audio/mpeg"},
  {".m4a", "audio/mp4"},
  {".ogg", "audio/ogg"},
  {".aac", "audio/aac"},
  {".flac", "audio/flac"},
  {".mp4", "video/mp4"},
  {".mov", "video/quicktime"},
  {".avi", "video/x-msvideo"},
  {".mkv", "video/x-matroska"},
  {".webm", "video/webm"},
  {".jpg", "image/jpeg"},
  {".jpeg", "image/jpeg"},
  {".png", "image/png"},
  {".gif", "image/gif"},
  {".webp", "image/webp"},
};

RdBatchFile *
rd_batch_file_new (const gchar * name, guint64 size, RdMediaType media_type,
    guint64 running_time, guint64 duration)
{
  RdBatchFile *file;

  g_return_val_if_fail (name != NULL, NULL);

  file = g_new0 (RdBatchFile, 1);
  file->name = g_strdup (name);
  file->size = size;
  file->media_type = media_type;
  file->running_time = running_time;
  file->duration = duration;
  return file;
}

void
rd_batch_file_free (RdBatchFile * file)
{
  if (file == NULL)
    return;

  g_free (file->name);
  g_free (file->detect_uuid);
  g_free (file);
}

RdBatch *
rd_batch_new (guint index, const gchar * location)
{
  RdBatch *batch;
  g_autofree gchar *dir_name = NULL;

  g_return_val_if_fail (location != NULL, NULL);

  dir_name = rd_batch_dir_name (index);

  batch = g_new0 (RdBatch, 1);
  batch->index = index;
  batch->dir = g_build_filename (location, dir_name, NULL);
  batch->state = RD_BATCH_STATE_OPEN;
  batch->files = g_ptr_array_new_with_free_func ((GDestroyNotify)
      rd_batch_file_free);
  batch->total_bytes = 0;
  batch->upload_mode = RD_UPLOAD_MODE_FILES;
  rd_settings_init (&batch->settings);
  return batch;
}

void
rd_batch_free (RdBatch * batch)
{
  if (batch == NULL)
    return;

  g_free (batch->dir);
  g_ptr_array_unref (batch->files);
  rd_settings_clear (&batch->settings);
  g_free (batch->uuid);
  g_free (batch->status);
  g_free (batch->error_reason);
  g_free (batch);
}

gchar *
rd_batch_dir_name (guint index)
{
  return g_strdup_printf (DIR_NAME_PREFIX "%06u", index);
}

gboolean
rd_batch_parse_dir_name (const gchar * name, guint * index)
{
  const gchar *digits;
  guint64 parsed;
  g_autofree gchar *canonical = NULL;

  g_return_val_if_fail (index != NULL, FALSE);

  if (name == NULL || !g_str_has_prefix (name, DIR_NAME_PREFIX))
    return FALSE;

  digits = name + strlen (DIR_NAME_PREFIX);
  if (!g_ascii_string_to_unsigned (digits, 10, 0, G_MAXUINT, &parsed, NULL))
    return FALSE;

  /* Only the spelling rd_batch_dir_name() produces: "batch-7" or
   * "batch-0000007" are somebody else's directories. */
  canonical = rd_batch_dir_name ((guint) parsed);
  if (strcmp (canonical, name) != 0)
    return FALSE;

  *index = (guint) parsed;
  return TRUE;
}

void
rd_batch_add_file (RdBatch * batch, RdBatchFile * file)
{
  g_return_if_fail (batch != NULL);
  g_return_if_fail (file != NULL);

  g_ptr_array_add (batch->files, file);
  batch->total_bytes += file->size;
}

gchar *
rd_batch_file_path (const RdBatch * batch, const RdBatchFile * file)
{
  g_return_val_if_fail (batch != NULL, NULL);
  g_return_val_if_fail (file != NULL, NULL);

  return g_build_filename (batch->dir, file->name, NULL);
}

gchar **
rd_batch_dup_paths (const RdBatch * batch)
{
  gchar **paths;
  guint i;

  g_return_val_if_fail (batch != NULL, NULL);

  paths = g_new0 (gchar *, batch->files->len + 1);
  for (i = 0; i < batch->files->len; i++)
    paths[i] = rd_batch_file_path (batch, g_ptr_array_index (batch->files, i));
  return paths;
}

RdBatchFit
rd_batch_check_fit (const RdBatch * batch, guint64 file_size, guint max_files,
    guint64 max_bytes)
{
  g_return_val_if_fail (batch != NULL, RD_BATCH_FIT_NEVER);

  if (file_size > max_bytes)
    return RD_BATCH_FIT_NEVER;

  /* An empty batch takes any file that fits on its own, whatever the other
   * limits say: closing an empty batch would not make room. */
  if (batch->files->len == 0)
    return RD_BATCH_FIT_OK;

  if (batch->files->len >= max_files)
    return RD_BATCH_FIT_CLOSE_FIRST;

  /* Written as a subtraction so that a huge total cannot wrap around. */
  if (batch->total_bytes > max_bytes
      || file_size > max_bytes - batch->total_bytes)
    return RD_BATCH_FIT_CLOSE_FIRST;

  return RD_BATCH_FIT_OK;
}

gboolean
rd_batch_is_full (const RdBatch * batch, guint max_files)
{
  g_return_val_if_fail (batch != NULL, FALSE);

  return batch->files->len >= max_files;
}

gboolean
rd_batch_validate (const RdBatch * batch, GError ** error)
{
  guint64 total = 0;
  guint i;

  g_return_val_if_fail (batch != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (batch->files->len == 0) {
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
        "batch %u has no files", batch->index);
    return FALSE;
  }

  if (batch->files->len > RD_BATCH_MAX_FILES) {
    g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
        "batch %u has %u files, more than the API's limit of %d",
        batch->index, batch->files->len, RD_BATCH_MAX_FILES);
    return FALSE;
  }

  for (i = 0; i < batch->files->len; i++) {
    const RdBatchFile *file = g_ptr_array_index (batch->files, i);

    if (!rd_batch_extension_allowed (file->name)) {
      g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
          "batch %u: file \"%s\" has an extension the API does not accept",
          batch->index, file->name);
      return FALSE;
    }
    if (file->size == 0) {
      g_set_error (error, RD_ERROR, RD_ERROR_INVALID,
          "batch %u: file \"%s\" is empty", batch->index, file->name);
      return FALSE;
    }
    /* Saturate rather than wrap: any overflow is over the limit anyway. */
    total = file->size > G_MAXUINT64 - total ? G_MAXUINT64 : total + file->size;
  }

  if (total > RD_BATCH_MAX_BYTES) {
    g_set_error (error, RD_ERROR, RD_ERROR_TOO_LARGE,
        "batch %u holds %" G_GUINT64_FORMAT " bytes, more than the API's "
        "limit of %" G_GUINT64_FORMAT, batch->index, total, RD_BATCH_MAX_BYTES);
    return FALSE;
  }

  return TRUE;
}

static const RdExtension *
lookup_extension (const gchar * filename)
{
  const gchar *base;
  const gchar *dot;
  guint i;

  if (filename == NULL)
    return NULL;

  base = strrchr (filename, '/');
  base = base != NULL ? base + 1 : filename;
  dot = strrchr (base, '.');
  if (dot == NULL)
    return NULL;

  for (i = 0; i < G_N_ELEMENTS (allowed_extensions); i++) {
    if (g_ascii_strcasecmp (dot, allowed_extensions[i].extension) == 0)
      return &allowed_extensions[i];
  }
  return NULL;
}

gboolean
rd_batch_extension_allowed (const gchar * filename)
{
  return lookup_extension (filename) != NULL;
}

const gchar *
rd_batch_content_type (const gchar * filename)
{
  const RdExtension *extension = lookup_extension (filename);

  return extension != NULL ? extension->content_type :
      "application/octet-stream";
}

const gchar *
rd_batch_state_to_string (RdBatchState state)
{
  switch (state) {
    case RD_BATCH_STATE_OPEN:
      return "open";
    case RD_BATCH_STATE_CLOSED:
      return "closed";
    case RD_BATCH_STATE_SUBMITTED:
      return "submitted";
    case RD_BATCH_STATE_DONE:
      return "done";
    case RD_BATCH_STATE_ERROR:
      return "error";
  }
  g_return_val_if_reached (NULL);
}

gboolean
rd_batch_state_from_string (const gchar * str, RdBatchState * state)
{
  static const RdBatchState states[] = {
    RD_BATCH_STATE_OPEN, RD_BATCH_STATE_CLOSED, RD_BATCH_STATE_SUBMITTED,
    RD_BATCH_STATE_DONE, RD_BATCH_STATE_ERROR,
  };
  guint i;

  g_return_val_if_fail (state != NULL, FALSE);

  for (i = 0; i < G_N_ELEMENTS (states); i++) {
    if (g_strcmp0 (str, rd_batch_state_to_string (states[i])) == 0) {
      *state = states[i];
      return TRUE;
    }
  }
  return FALSE;
}

const gchar *
rd_media_type_to_string (RdMediaType type)
{
  switch (type) {
    case RD_MEDIA_TYPE_AUDIO:
      return "audio";
    case RD_MEDIA_TYPE_VIDEO:
      return "video";
    case RD_MEDIA_TYPE_IMAGE:
      return "image";
  }
  g_return_val_if_reached (NULL);
}

gboolean
rd_media_type_from_string (const gchar * str, RdMediaType * type)
{
  static const RdMediaType types[] = {
    RD_MEDIA_TYPE_AUDIO, RD_MEDIA_TYPE_VIDEO, RD_MEDIA_TYPE_IMAGE,
  };
  guint i;

  g_return_val_if_fail (type != NULL, FALSE);

  for (i = 0; i < G_N_ELEMENTS (types); i++) {
    if (g_strcmp0 (str, rd_media_type_to_string (types[i])) == 0) {
      *type = types[i];
      return TRUE;
    }
  }
  return FALSE;
}
