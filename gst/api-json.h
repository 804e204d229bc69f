/* Reading the API's JSON tolerantly, for results.c and api-errors.c: every
 * value through an accessor that checks its JSON type first and takes
 * anything unexpected as absent, and the bounded copies of values into
 * GstStructures. Knows JSON and GstStructure, nothing of batches or HTTP. */
#pragma once

#include <gst/gst.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Bounds that keep a hostile or buggy answer from producing a huge message:
 * strings, nested result trees and generic copies of unknown members. */
#define RD_JSON_MAX_TEXT_LENGTH 2048
#define RD_JSON_MAX_CHILD_DEPTH 4
#define RD_JSON_MAX_CHILD_NODES 2000
#define RD_JSON_MAX_COPIED_MEMBERS 64
#define RD_JSON_MAX_EXCERPT_CHARS 200
#define RD_JSON_MAX_MESSAGE_CHARS 1000
#define RD_JSON_MAX_ID_LENGTH 128
#define RD_JSON_MAX_STATUS_LENGTH 64
#define RD_JSON_MAX_LABEL_LENGTH 64
/* Longest http(s) URL copied into a result; longer ones and data: URIs are
 * dropped so that bus messages stay small. */
#define RD_JSON_MAX_URL_LENGTH 2048
/* Deepest nesting of a document handed to json-glib, whose parser recurses
 * once per level (100000 levels overflow the stack). */
#define RD_JSON_MAX_DEPTH 512

/* json_parser_load_from_data() for documents from outside (the API's
 * answers, manifests on disk), refusing first what is not one value in
 * plain JSON (RFC 8259) or nested deeper than RD_JSON_MAX_DEPTH: json-glib
 * 1.6 also reads comments, single quotes and several top-level values, and
 * leaks memory on some of those (every value after the first one, a broken
 * surrogate pair). An empty document is left to json-glib (no root). */
gboolean rd_json_parser_load (JsonParser * parser, const gchar * data,
    gssize length, GError ** error);

/* Members and values of the types the API should send, else absent. */
JsonNode *rd_json_member (JsonObject * object, const gchar * name);
JsonObject *rd_json_object_member (JsonObject * object, const gchar * name);
JsonArray *rd_json_array_member (JsonObject * object, const gchar * name);
const gchar *rd_json_node_string (JsonNode * node);
const gchar *rd_json_string_member (JsonObject * object, const gchar * name);
gboolean rd_json_is_id (const gchar * str);
gboolean rd_json_is_status_word (const gchar * str);
gboolean rd_json_parse_number_string (const gchar * str, gboolean allow_percent,
    gdouble * value);
gboolean rd_json_node_double (JsonNode * node, gdouble * value);
gboolean rd_json_double_member (JsonObject * object, const gchar * name,
    gdouble * value);
gboolean rd_json_node_int64 (JsonNode * node, gint64 * value);
gboolean rd_json_uint_member (JsonObject * object, const gchar * name,
    guint * value);
gboolean rd_json_node_boolean (JsonNode * node, gboolean * value);
/* What may go into a structure, bounded. */
gboolean rd_json_is_data_uri (const gchar * str);
gboolean rd_json_is_http_url (const gchar * str);
gchar *rd_json_truncate_utf8 (const gchar * str, gsize max_bytes);
void rd_json_set_text (GstStructure * s, const gchar * field,
    const gchar * str);
void rd_json_set_text_member (GstStructure * s, const gchar * field, JsonObject * object,
    const gchar * name);
void rd_json_set_url_member (GstStructure * s, const gchar * field, JsonObject * object,
    const gchar * name);
void rd_json_set_double_member (GstStructure * s, const gchar * field, JsonObject * object,
    const gchar * name);
void rd_json_set_boolean_member (GstStructure * s, const gchar * field,
    JsonObject * object, const gchar * name);
void rd_json_set_int64_member (GstStructure * s, const gchar * field, JsonObject * object,
    const gchar * name);
gchar *rd_json_field_name (const gchar * name);
void rd_json_copy_scalar_members (JsonObject * object, GstStructure * s,
    const gchar * const *skip);
gchar *rd_json_normalize_status (const gchar * status,
    const gchar * const *known);
gdouble rd_json_score_or_none (gdouble score);

G_END_DECLS
