/* The emulator's side of a batch upload: the request body spooled to an
 * unlinked temporary file as it arrives, then a streaming multipart parse
 * of that file (files[] parts hashed as they pass, a zip part read in place
 * through libarchive), checked against the API's documented limits. Nothing
 * here holds a whole file in memory. Internal to the emulator. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define RD_UPLOAD_ERROR (rd_upload_error_quark ())
GQuark rd_upload_error_quark (void);

typedef enum {
  RD_UPLOAD_ERROR_INVALID,      /* the API answers 400, the message says why */
  RD_UPLOAD_ERROR_STORAGE,      /* the emulator could not spool the body: 500 */
} RdUploadErrorCode;

typedef enum {
  RD_UPLOAD_MEDIA_AUDIO,
  RD_UPLOAD_MEDIA_VIDEO,
  RD_UPLOAD_MEDIA_IMAGE,
} RdUploadMediaType;

typedef struct {
  gchar *name;                  /* as uploaded; for zip entries, flattened */
  guint64 size;
  guint8 sha256[32];
  gchar sha256_hex[65];
  RdUploadMediaType media_type;
} RdUploadFile;

typedef struct {
  gchar *name;
  gchar *value;
} RdUploadField;

typedef struct {
  gchar *name;                  /* the entry's path inside the zip */
  gchar *reason;
} RdUploadSkipped;

typedef struct {
  gboolean zip;                 /* one "file" part holding a zip, else files[] */
  gchar *zip_name;              /* the zip part's filename */
  guint64 zip_size;
  GPtrArray *files;             /* RdUploadFile*, in upload (or entry) order */
  GPtrArray *fields;            /* RdUploadField*, the non-file parts in order */
  GPtrArray *skipped;           /* RdUploadSkipped*, zip entries not analysed */
} RdUpload;

typedef struct {
  guint max_files;
  guint64 max_total_bytes;
} RdUploadLimits;

/* Media type from the extension, case-insensitive, over the API's allowed
 * list; FALSE for anything else. */
gboolean rd_upload_media_type_for_name (const gchar * name,
    RdUploadMediaType * type);
const gchar *rd_upload_media_type_to_string (RdUploadMediaType type);

typedef struct _RdUploadSpool RdUploadSpool;

/* Bytes past @store_limit are counted but not stored. */
RdUploadSpool *rd_upload_spool_new (guint64 store_limit, GError ** error);
void rd_upload_spool_free (RdUploadSpool * spool);
void rd_upload_spool_write (RdUploadSpool * spool, const guint8 * data,
    gsize len);
guint64 rd_upload_spool_get_received (RdUploadSpool * spool);
gboolean rd_upload_spool_overflowed (RdUploadSpool * spool);

/* Parses the spooled multipart/form-data body and checks it (exactly one of
 * files[] or a zip, file count, total size, extensions, empty files). */
RdUpload *rd_upload_parse (RdUploadSpool * spool, const gchar * boundary,
    const RdUploadLimits * limits, GError ** error);
void rd_upload_free (RdUpload * upload);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RdUploadSpool, rd_upload_spool_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RdUpload, rd_upload_free)

G_END_DECLS
