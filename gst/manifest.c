/* manifest.json: the batch as it stands on disk, so that a restarted element
 * can finish what a previous run left (submit "closed" batches, poll
 * "submitted" ones) and send exactly the settings it sent before. The file
 * is replaced atomically, never edited in place, so a crash leaves either
 * the old manifest or the new one. Reading is strict about what it needs
 * and ignores what it does not know, so an older reader still understands
 * a newer writer's additions. The API token is not part of a batch and so
 * never reaches this file. */

#include "manifest.h"
#include "api-json.h"

#include <json-glib/json-glib.h>
#include <errno.h>
#include <string.h>

#ifdef G_OS_UNIX
#include <fcntl.h>
#include <unistd.h>
#endif

#define MANIFEST_VERSION 1
#define MANIFEST_MODE 0600

gchar *
rd_manifest_path (const RdBatch * batch)
{
  g_return_val_if_fail (batch != NULL, NULL);

  return g_build_filename (batch->dir, RD_MANIFEST_NAME, NULL);
}

/* Writing. The manifest is rewritten at every change of its batch: while a
 * batch fills, that is once per closed media file, on the streaming thread
 * that closed it (streams_file_closed -> rd_spool_add_file). Built as a
 * JsonBuilder tree and printed by JsonGenerator, a batch of 10 files cost
 * about 350,000 instructions (nodes, hash tables and allocations for every
 * value, all freed again); printed straight into one GString it costs about
 * 40,000, most of them copying bytes. The layout is JsonGenerator's pretty
 * one with an indent of 2 ("name" : value, a member a line), so the file
 * reads as it did, and the reader below still parses it with json-glib. */

/* Line breaks and indentation, the deepest being the members of a file
 * (depth 3). */
#define INDENT_WIDTH 2
static const gchar line_breaks[] = ",\n      ";

typedef struct
{
  GString *out;
  guint depth;                  /* objects and arrays open */
  gboolean empty;               /* the innermost one has no member yet */
} ManifestWriter;

/* g_string_append_len () without a call into GLib when the bytes fit, as
 * newer GLib inlines it in its header: the string is sized for the whole
 * document up front, and the calls were a third of the cost. */
static inline void
append_len (GString * out, const gchar * bytes, gsize len)
{
  if (G_LIKELY (out->len + len < out->allocated_len)) {
    memcpy (out->str + out->len, bytes, len);
    out->len += len;
    out->str[out->len] = '\0';
  } else {
    g_string_append_len (out, bytes, len);
  }
}

/* For each byte, the letter after the backslash that stands for it in a
 * JSON string ('u': \u00XX), or 0 for a byte copied as it is. */
static const gchar escapes[256] = {
  /* 0x00 */ 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
  /* 0x08 */ 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
  /* 0x10 */ 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
  /* 0x18 */ 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
  ['"'] = '"',
  ['\\'] = '\\',
  [0x7f] = 'u',
};

/* A JSON string: '"', '\\', the control characters and 0x7f escaped (as
 * json-glib did, but for 0x1f, which it left raw), every other byte copied,
 * so UTF-8 stays as it is. */
static void
append_string (GString * out, const gchar * str)
{
  static const gchar hex[] = "0123456789abcdef";
  const gchar *run = str;
  const gchar *p;

  g_string_append_c (out, '"');
  for (p = str; *p != '\0'; p++) {
    guchar c = (guchar) * p;
    gchar escape = escapes[c];

    if (escape == 0)
      continue;

    append_len (out, run, p - run);
    run = p + 1;
    g_string_append_c (out, '\\');
    g_string_append_c (out, escape);
    if (escape == 'u') {
      append_len (out, "00", 2);
      g_string_append_c (out, hex[c >> 4]);
      g_string_append_c (out, hex[c & 0xf]);
    }
  }
  append_len (out, run, p - run);
  g_string_append_c (out, '"');
}

/* g_string_append_printf () costs about 1,400 instructions a number (a
 * vasprintf, its allocation and its free), which nearly doubled the cost of
 * a write. */
static void
append_int (GString * out, gint64 value)
{
  gchar digits[20];
  guint64 magnitude = value < 0 ? -(guint64) value : (guint64) value;
  gsize n = sizeof digits;

  do {
    digits[--n] = '0' + magnitude % 10;
    magnitude /= 10;
  } while (magnitude > 0);

  if (value < 0)
    g_string_append_c (out, '-');
  append_len (out, digits + n, sizeof digits - n);
}

/* Ends the line, after a comma where @comma, and indents the next one. */
static void
new_line (ManifestWriter * writer, gboolean comma)
{
  gsize indent = writer->depth * INDENT_WIDTH;

  g_assert (indent <= sizeof line_breaks - 3);
  if (comma)
    append_len (writer->out, line_breaks, 2 + indent);
  else
    append_len (writer->out, line_breaks + 1, 1 + indent);
}

/* The next member or element, on a line of its own. */
static void
begin_item (ManifestWriter * writer)
{
  new_line (writer, !writer->empty);
  writer->empty = FALSE;
}

static void
begin_member (ManifestWriter * writer, const gchar * name)
{
  begin_item (writer);
  append_string (writer->out, name);
  append_len (writer->out, " : ", 3);
}

/* @bracket is '{' or '['. */
static void
open_container (ManifestWriter * writer, gchar bracket)
{
  g_string_append_c (writer->out, bracket);
  writer->depth++;
  writer->empty = TRUE;
}

/* An empty one closes on its line: {} or [] (json-glib wrote "{  }"). */
static void
close_container (ManifestWriter * writer, gchar bracket)
{
  writer->depth--;
  if (!writer->empty)
    new_line (writer, FALSE);
  g_string_append_c (writer->out, bracket);
  writer->empty = FALSE;
}

static void
write_int_member (ManifestWriter * writer, const gchar * name, gint64 value)
{
  begin_member (writer, name);
  append_int (writer->out, value);
}

static void
write_null_member (ManifestWriter * writer, const gchar * name)
{
  begin_member (writer, name);
  append_len (writer->out, "null", 4);
}

static void
write_string_member (ManifestWriter * writer, const gchar * name,
    const gchar * value)
{
  begin_member (writer, name);
  append_string (writer->out, value);
}

/* Times are guint64 in GStreamer and read back as gint64 by json-glib.
 * Nothing real runs for more than G_MAXINT64 ns (292 years), so such a value
 * is treated like RD_TIME_NONE: unknown. */
static void
write_time_member (ManifestWriter * writer, const gchar * name, guint64 time)
{
  if (time == RD_TIME_NONE || time > (guint64) G_MAXINT64)
    write_null_member (writer, name);
  else
    write_int_member (writer, name, (gint64) time);
}

static void
write_string_or_null_member (ManifestWriter * writer, const gchar * name,
    const gchar * value)
{
  if (value == NULL)
    write_null_member (writer, name);
  else
    write_string_member (writer, name, value);
}

static void
write_setting (const gchar * name, const gchar * value, gpointer user_data)
{
  write_string_member (user_data, name, value);
}

static void
write_file (ManifestWriter * writer, const RdBatchFile * file)
{
  begin_item (writer);
  open_container (writer, '{');
  write_string_member (writer, "name", file->name);
  write_int_member (writer, "size", (gint64) file->size);
  write_string_member (writer, "media_type",
      rd_media_type_to_string (file->media_type));
  write_time_member (writer, "running_time", file->running_time);
  write_time_member (writer, "duration", file->duration);
  write_string_or_null_member (writer, "detect_uuid", file->detect_uuid);
  close_container (writer, '}');
}

static void
write_error (ManifestWriter * writer, const RdBatch * batch)
{
  if (batch->error_reason == NULL && batch->error_http_status == 0) {
    write_null_member (writer, "error");
    return;
  }
  begin_member (writer, "error");
  open_container (writer, '{');
  write_int_member (writer, "http_status", batch->error_http_status);
  write_string_or_null_member (writer, "reason", batch->error_reason);
  close_container (writer, '}');
}

/* The document, with a final newline. */
static GString *
format_manifest (const RdBatch * batch)
{
  ManifestWriter writer = {
    /* a file takes about 240 bytes once it has its detect_uuid */
    .out = g_string_sized_new (1024 + 256 * batch->files->len),
  };
  guint i;

  open_container (&writer, '{');
  write_int_member (&writer, "version", MANIFEST_VERSION);
  write_int_member (&writer, "index", batch->index);
  write_string_member (&writer, "state",
      rd_batch_state_to_string (batch->state));
  write_string_member (&writer, "upload_mode",
      rd_upload_mode_to_string (batch->upload_mode));

  begin_member (&writer, "settings");
  open_container (&writer, '{');
  rd_settings_foreach_field (&batch->settings, write_setting, &writer);
  close_container (&writer, '}');

  write_string_or_null_member (&writer, "uuid", batch->uuid);
  write_string_or_null_member (&writer, "status", batch->status);
  write_int_member (&writer, "completed_count", batch->completed_count);
  write_int_member (&writer, "failed_count", batch->failed_count);
  write_int_member (&writer, "total_files", batch->files->len);
  write_int_member (&writer, "total_bytes", (gint64) batch->total_bytes);
  if (batch->upload_started_us > 0)
    write_int_member (&writer, "upload_started_us", batch->upload_started_us);
  write_error (&writer, batch);

  begin_member (&writer, "files");
  open_container (&writer, '[');
  for (i = 0; i < batch->files->len; i++)
    write_file (&writer, g_ptr_array_index (batch->files, i));
  close_container (&writer, ']');

  close_container (&writer, '}');
  g_string_append_c (writer.out, '\n');
  return writer.out;
}

/* The rename is only durable once the directory entry is; a failure here
 * costs durability, not correctness, so it is not reported. */
static void
sync_directory (const gchar * dir)
{
#ifdef G_OS_UNIX
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0)
    return;
  while (fsync (fd) < 0 && errno == EINTR);
  close (fd);
#endif
}

gboolean
rd_manifest_write (const RdBatch * batch, GError ** error)
{
  g_autoptr (GString) contents = NULL;
  g_autofree gchar *path = NULL;

  g_return_val_if_fail (batch != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  contents = format_manifest (batch);

  path = rd_manifest_path (batch);
  /* CONSISTENT writes a temp file (created with MANIFEST_MODE) in the same
   * directory and renames it over the old one; DURABLE fsyncs it first. */
  if (!g_file_set_contents_full (path, contents->str, contents->len,
          G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
          MANIFEST_MODE, error))
    return FALSE;

  sync_directory (batch->dir);
  return TRUE;
}

/* Reading: every refusal says where in the document the problem is. */

typedef struct
{
  const gchar *path;
  GError **error;
} ReadContext;

/* *INDENT-OFF* */
static gboolean format_error (ReadContext * ctx, const gchar * format, ...)
    G_GNUC_PRINTF (2, 3);
/* *INDENT-ON* */

static gboolean
format_error (ReadContext * ctx, const gchar * format, ...)
{
  g_autofree gchar *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_set_error (ctx->error, RD_ERROR, RD_ERROR_FORMAT, "manifest %s: %s",
      ctx->path, message);
  return FALSE;
}

static gboolean
node_is_null (JsonNode * node)
{
  return node == NULL || JSON_NODE_HOLDS_NULL (node);
}

static gboolean
node_is_int (JsonNode * node)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node)
      && json_node_get_value_type (node) == G_TYPE_INT64;
}

static gboolean
node_is_string (JsonNode * node)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node)
      && json_node_get_value_type (node) == G_TYPE_STRING;
}

/* An integer in 0..@max. @where names the member in messages. */
static gboolean
read_uint (ReadContext * ctx, JsonNode * node, const gchar * where,
    guint64 max, guint64 * out)
{
  gint64 value;

  if (!node_is_int (node))
    return format_error (ctx, "%s is not an integer", where);

  value = json_node_get_int (node);
  if (value < 0 || (guint64) value > max)
    return format_error (ctx, "%s %" G_GINT64_FORMAT " is outside 0..%"
        G_GUINT64_FORMAT, where, value, max);

  *out = (guint64) value;
  return TRUE;
}

static gboolean
read_required_uint (ReadContext * ctx, JsonObject * object,
    const gchar * member, const gchar * where, guint64 max, guint64 * out)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL)
    return format_error (ctx, "%s is missing", where);
  return read_uint (ctx, node, where, max, out);
}

static gboolean
read_optional_uint (ReadContext * ctx, JsonObject * object,
    const gchar * member, const gchar * where, guint64 max, guint64 fallback,
    guint64 * out)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node_is_null (node)) {
    *out = fallback;
    return TRUE;
  }
  return read_uint (ctx, node, where, max, out);
}

static gboolean
read_required_string (ReadContext * ctx, JsonObject * object,
    const gchar * member, const gchar * where, const gchar ** out)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL)
    return format_error (ctx, "%s is missing", where);
  if (!node_is_string (node))
    return format_error (ctx, "%s is not a string", where);
  *out = json_node_get_string (node);
  return TRUE;
}

/* A string, null or absent (NULL). */
static gboolean
read_optional_string (ReadContext * ctx, JsonObject * object,
    const gchar * member, const gchar * where, gchar ** out)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node_is_null (node)) {
    *out = NULL;
    return TRUE;
  }
  if (!node_is_string (node))
    return format_error (ctx, "%s is neither a string nor null", where);
  *out = g_strdup (json_node_get_string (node));
  return TRUE;
}

/* A time in ns, null or absent (RD_TIME_NONE). */
static gboolean
read_time (ReadContext * ctx, JsonObject * object, const gchar * member,
    const gchar * where, guint64 * out)
{
  return read_optional_uint (ctx, object, member, where, G_MAXINT64,
      RD_TIME_NONE, out);
}

/* File names come back as paths under the batch directory: a manifest must
 * not be able to point outside it. */
static gboolean
file_name_is_plain (const gchar * name)
{
  return *name != '\0' && strcmp (name, ".") != 0 && strcmp (name, "..") != 0
      && strchr (name, '/') == NULL && strchr (name, G_DIR_SEPARATOR) == NULL;
}

static RdBatchFile *
read_file (ReadContext * ctx, JsonNode * node, guint i)
{
  g_autoptr (RdBatchFile) file = NULL;
  g_autofree gchar *where = NULL;
  JsonObject *object;
  const gchar *name;
  const gchar *media_type_str;
  RdMediaType media_type;
  guint64 size, running_time, duration;
  gchar *detect_uuid;

  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    format_error (ctx, "files[%u] is not an object", i);
    return NULL;
  }
  object = json_node_get_object (node);

  where = g_strdup_printf ("files[%u].name", i);
  if (!read_required_string (ctx, object, "name", where, &name))
    return NULL;
  if (!file_name_is_plain (name)) {
    format_error (ctx, "files[%u].name \"%s\" is not a plain file name", i,
        name);
    return NULL;
  }

  g_free (where);
  where = g_strdup_printf ("files[%u].size", i);
  if (!read_required_uint (ctx, object, "size", where, G_MAXINT64, &size))
    return NULL;

  g_free (where);
  where = g_strdup_printf ("files[%u].media_type", i);
  if (!read_required_string (ctx, object, "media_type", where, &media_type_str))
    return NULL;
  if (!rd_media_type_from_string (media_type_str, &media_type)) {
    format_error (ctx, "%s \"%s\" is not audio, video or image", where,
        media_type_str);
    return NULL;
  }

  g_free (where);
  where = g_strdup_printf ("files[%u].running_time", i);
  if (!read_time (ctx, object, "running_time", where, &running_time))
    return NULL;

  g_free (where);
  where = g_strdup_printf ("files[%u].duration", i);
  if (!read_time (ctx, object, "duration", where, &duration))
    return NULL;

  g_free (where);
  where = g_strdup_printf ("files[%u].detect_uuid", i);
  if (!read_optional_string (ctx, object, "detect_uuid", where, &detect_uuid))
    return NULL;

  file = rd_batch_file_new (name, size, media_type, running_time, duration);
  file->detect_uuid = detect_uuid;
  return g_steal_pointer (&file);
}

static gboolean
read_settings (ReadContext * ctx, JsonObject * root, RdSettings * settings)
{
  JsonNode *node = json_object_get_member (root, "settings");
  JsonObjectIter iter;
  const gchar *name;

  if (node_is_null (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return format_error (ctx, "settings is not an object");

  /* Unlike elsewhere, an unknown setting is refused: these are what gets
   * sent, and dropping one would change the request without a word. */
  json_object_iter_init (&iter, json_node_get_object (node));
  while (json_object_iter_next (&iter, &name, &node)) {
    g_autoptr (GError) field_error = NULL;

    if (!node_is_string (node))
      return format_error (ctx, "settings.%s is not a string", name);
    if (!rd_settings_set_field (settings, name, json_node_get_string (node),
            &field_error))
      return format_error (ctx, "settings: %s", field_error->message);
  }
  return TRUE;
}

static gboolean
read_error (ReadContext * ctx, JsonObject * root, RdBatch * batch)
{
  JsonNode *node = json_object_get_member (root, "error");
  JsonObject *object;
  guint64 http_status;

  if (node_is_null (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return format_error (ctx, "error is neither an object nor null");
  object = json_node_get_object (node);

  if (!read_optional_uint (ctx, object, "http_status", "error.http_status",
          G_MAXUINT, 0, &http_status))
    return FALSE;
  batch->error_http_status = (guint) http_status;
  return read_optional_string (ctx, object, "reason", "error.reason",
      &batch->error_reason);
}

static RdBatch *
read_batch (ReadContext * ctx, const gchar * dir, JsonNode * root_node)
{
  g_autoptr (RdBatch) batch = NULL;
  JsonObject *root;
  JsonNode *node;
  JsonArray *files;
  const gchar *str;
  guint64 value;
  guint i;

  if (root_node == NULL || !JSON_NODE_HOLDS_OBJECT (root_node)) {
    format_error (ctx, "the document is not a JSON object");
    return NULL;
  }
  root = json_node_get_object (root_node);

  if (!read_required_uint (ctx, root, "version", "version", G_MAXINT64, &value))
    return NULL;
  if (value != MANIFEST_VERSION) {
    format_error (ctx, "version %" G_GUINT64_FORMAT " is not supported (%d "
        "is)", value, MANIFEST_VERSION);
    return NULL;
  }

  if (!read_required_uint (ctx, root, "index", "index", G_MAXUINT, &value))
    return NULL;

  /* rd_batch_new() derives dir from a location; here the dir is given. */
  batch = rd_batch_new ((guint) value, dir);
  g_free (batch->dir);
  batch->dir = g_strdup (dir);

  if (!read_required_string (ctx, root, "state", "state", &str))
    return NULL;
  if (!rd_batch_state_from_string (str, &batch->state)) {
    format_error (ctx, "state \"%s\" is not a batch state", str);
    return NULL;
  }

  node = json_object_get_member (root, "upload_mode");
  if (!node_is_null (node)) {
    if (!node_is_string (node)) {
      format_error (ctx, "upload_mode is not a string");
      return NULL;
    }
    str = json_node_get_string (node);
    if (!rd_upload_mode_from_string (str, &batch->upload_mode)) {
      format_error (ctx, "upload_mode \"%s\" is not files or zip", str);
      return NULL;
    }
  }

  if (!read_settings (ctx, root, &batch->settings))
    return NULL;

  if (!read_optional_string (ctx, root, "uuid", "uuid", &batch->uuid)
      || !read_optional_string (ctx, root, "status", "status", &batch->status))
    return NULL;

  if (!read_optional_uint (ctx, root, "completed_count", "completed_count",
          G_MAXUINT, 0, &value))
    return NULL;
  batch->completed_count = (guint) value;
  if (!read_optional_uint (ctx, root, "failed_count", "failed_count",
          G_MAXUINT, 0, &value))
    return NULL;
  batch->failed_count = (guint) value;

  if (!read_optional_uint (ctx, root, "upload_started_us",
          "upload_started_us", G_MAXINT64, 0, &value))
    return NULL;
  batch->upload_started_us = (gint64) value;

  if (!read_error (ctx, root, batch))
    return NULL;

  node = json_object_get_member (root, "files");
  if (node == NULL) {
    format_error (ctx, "files is missing");
    return NULL;
  }
  if (!JSON_NODE_HOLDS_ARRAY (node)) {
    format_error (ctx, "files is not an array");
    return NULL;
  }
  files = json_node_get_array (node);
  for (i = 0; i < json_array_get_length (files); i++) {
    RdBatchFile *file = read_file (ctx, json_array_get_element (files, i), i);

    if (file == NULL)
      return NULL;
    /* The total is written as a JSON integer: one this reader would refuse
     * must not be accepted here. */
    if (file->size > (guint64) G_MAXINT64 - batch->total_bytes) {
      rd_batch_file_free (file);
      format_error (ctx, "files[%u].size makes the total larger than %"
          G_GINT64_FORMAT, i, G_MAXINT64);
      return NULL;
    }
    rd_batch_add_file (batch, file);
  }

  /* The totals are redundant with the files; a mismatch means the document
   * was damaged or edited, and which one is right cannot be known. */
  node = json_object_get_member (root, "total_files");
  if (!node_is_null (node)) {
    if (!read_uint (ctx, node, "total_files", G_MAXUINT, &value))
      return NULL;
    if (value != batch->files->len) {
      format_error (ctx, "total_files %" G_GUINT64_FORMAT " does not match "
          "the %u entries of files", value, batch->files->len);
      return NULL;
    }
  }
  node = json_object_get_member (root, "total_bytes");
  if (!node_is_null (node)) {
    if (!read_uint (ctx, node, "total_bytes", G_MAXINT64, &value))
      return NULL;
    if (value != batch->total_bytes) {
      format_error (ctx, "total_bytes %" G_GUINT64_FORMAT " does not match "
          "the sum of the file sizes, %" G_GUINT64_FORMAT, value,
          batch->total_bytes);
      return NULL;
    }
  }

  return g_steal_pointer (&batch);
}

RdBatch *
rd_manifest_read (const gchar * dir, GError ** error)
{
  g_autofree gchar *path = NULL;
  g_autofree gchar *contents = NULL;
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) parse_error = NULL;
  ReadContext ctx;
  gsize length;

  g_return_val_if_fail (dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  path = g_build_filename (dir, RD_MANIFEST_NAME, NULL);
  ctx.path = path;
  ctx.error = error;

  /* A missing or unreadable file keeps its G_FILE_ERROR: the caller may
   * treat "no manifest" differently from "a broken one". */
  if (!g_file_get_contents (path, &contents, &length, error))
    return NULL;

  if (length > G_MAXSSIZE) {
    format_error (&ctx, "the document is too large");
    return NULL;
  }

  parser = json_parser_new ();
  if (!rd_json_parser_load (parser, contents, (gssize) length, &parse_error)) {
    format_error (&ctx, "%s", parse_error->message);
    return NULL;
  }

  return read_batch (&ctx, dir, json_parser_get_root (parser));
}
