/* Shared by the element test programs: see rd-check.h. */
#include <string.h>

#include "rd-check.h"

gboolean
rd_check_have_elements (const gchar * names)
{
  g_auto (GStrv) list = g_strsplit (names, " ", -1);

  for (guint i = 0; list[i]; i++) {
    g_autoptr (GstElementFactory) factory = NULL;

    if (*list[i] == '\0')
      continue;
    factory = gst_element_factory_find (list[i]);
    if (factory == NULL) {
      g_printerr ("skipped: element %s is not installed\n", list[i]);
      return FALSE;
    }
  }
  return TRUE;
}

int
rd_check_main (Suite * suite, const gchar * const *needed)
{
  g_autoptr (GString) missing = g_string_new (NULL);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash,
      g_str_equal, g_free, NULL);
  int failures = gst_check_run_suite (suite, "resembledetect", __FILE__);

  for (guint i = 0; needed && needed[i]; i++) {
    g_auto (GStrv) list = g_strsplit (needed[i], " ", -1);

    for (guint j = 0; list[j]; j++) {
      g_autoptr (GstElementFactory) factory = NULL;

      if (*list[j] == '\0' || !g_hash_table_add (seen, g_strdup (list[j])))
        continue;
      factory = gst_element_factory_find (list[j]);
      if (factory == NULL)
        g_string_append_printf (missing, " %s", list[j]);
    }
  }
  if (failures > 0)
    return 1;
  if (missing->len == 0)
    return 0;
  if (g_getenv ("RD_TESTS_REQUIRE_ALL_ELEMENTS")) {
    g_printerr ("FAIL: tests skipped for want of:%s\n", missing->str);
    return 1;
  }
  g_printerr ("SKIP: tests skipped for want of:%s\n", missing->str);
  return 77;
}

/* ---- the message contract of docs/resembledetectsink.md ------------------ */

typedef struct
{
  gchar *name;
  gchar *type;                  /* as documented: "uint", "array of strings" */
  gboolean optional;
} ContractField;

struct _RdCheckContract
{
  GHashTable *messages;         /* name -> GPtrArray of ContractField */
};

static void
contract_field_free (ContractField * field)
{
  g_free (field->name);
  g_free (field->type);
  g_free (field);
}

/* The text between the first pair of backticks of @line, or NULL. */
static gchar *
backticked (const gchar * line)
{
  const gchar *start = strchr (line, '`');
  const gchar *end = start ? strchr (start + 1, '`') : NULL;

  return end ? g_strndup (start + 1, end - start - 1) : NULL;
}

RdCheckContract *
rd_check_contract_read (const gchar * doc_path)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *text = NULL;
  g_auto (GStrv) lines = NULL;
  RdCheckContract *contract = g_new0 (RdCheckContract, 1);
  GPtrArray *fields = NULL;
  gboolean in_messages = FALSE;

  fail_unless (g_file_get_contents (doc_path, &text, NULL, &error), "%s",
      error ? error->message : "");
  contract->messages = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      (GDestroyNotify) g_ptr_array_unref);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    const gchar *line = lines[i];

    if (g_str_has_prefix (line, "## ")) {
      in_messages = g_str_equal (line, "## Messages");
      fields = NULL;
    } else if (in_messages && g_str_has_prefix (line, "### ")) {
      gchar *name = backticked (line);

      fail_unless (name != NULL, "%s: a message heading without a name: %s",
          doc_path, line);
      fields = g_ptr_array_new_with_free_func ((GDestroyNotify)
          contract_field_free);
      g_hash_table_insert (contract->messages, name, fields);
    } else if (fields && g_str_has_prefix (line, "| `")) {
      g_auto (GStrv) cells = g_strsplit (line, "|", -1);
      ContractField *field;

      fail_unless (g_strv_length (cells) >= 4, "%s: %s", doc_path, line);
      field = g_new0 (ContractField, 1);
      field->name = backticked (cells[1]);
      field->type = g_strstrip (g_strdup (cells[2]));
      if (g_str_has_suffix (field->type, ", optional")) {
        field->optional = TRUE;
        field->type[strlen (field->type) - strlen (", optional")] = '\0';
      }
      g_ptr_array_add (fields, field);
    }
  }
  fail_unless (g_hash_table_size (contract->messages) > 0, "%s documents no "
      "message", doc_path);
  return contract;
}

void
rd_check_contract_free (RdCheckContract * contract)
{
  g_hash_table_unref (contract->messages);
  g_free (contract);
}

const gchar **
rd_check_contract_names (RdCheckContract * contract)
{
  return (const gchar **) g_hash_table_get_keys_as_array (contract->messages,
      NULL);
}

static gboolean
array_of (const GValue * value, GType type)
{
  if (!GST_VALUE_HOLDS_ARRAY (value))
    return FALSE;
  for (guint i = 0; i < gst_value_array_get_size (value); i++) {
    if (G_VALUE_TYPE (gst_value_array_get_value (value, i)) != type)
      return FALSE;
  }
  return TRUE;
}

static gboolean
value_has_type (const GValue * value, const gchar * type)
{
  if (g_str_equal (type, "uint"))
    return G_VALUE_HOLDS_UINT (value);
  if (g_str_equal (type, "uint64"))
    return G_VALUE_HOLDS_UINT64 (value);
  if (g_str_equal (type, "string"))
    return G_VALUE_HOLDS_STRING (value);
  if (g_str_equal (type, "double"))
    return G_VALUE_HOLDS_DOUBLE (value);
  if (g_str_equal (type, "boolean"))
    return G_VALUE_HOLDS_BOOLEAN (value);
  if (g_str_equal (type, "structure"))
    return GST_VALUE_HOLDS_STRUCTURE (value);
  if (g_str_equal (type, "array of strings"))
    return array_of (value, G_TYPE_STRING);
  if (g_str_equal (type, "array of structures"))
    return array_of (value, GST_TYPE_STRUCTURE);
  fail ("the documented type \"%s\" is not one the test knows", type);
  return FALSE;
}

typedef struct
{
  GPtrArray *fields;
  const gchar *message;
} ExtraCheck;

static gboolean
field_is_documented (GQuark field_id, const GValue * value, gpointer data)
{
  ExtraCheck *check = data;
  const gchar *field = g_quark_to_string (field_id);

  for (guint i = 0; i < check->fields->len; i++) {
    if (g_str_equal (((ContractField *) check->fields->pdata[i])->name, field))
      return TRUE;
  }
  fail ("%s has an undocumented field %s", check->message, field);
  return FALSE;
}

void
rd_check_contract_assert (RdCheckContract * contract, const GstStructure * s)
{
  const gchar *name = gst_structure_get_name (s);
  GPtrArray *fields = g_hash_table_lookup (contract->messages, name);

  fail_unless (fields != NULL, "%s is not documented", name);
  for (guint i = 0; i < fields->len; i++) {
    ContractField *field = fields->pdata[i];
    const GValue *value = gst_structure_get_value (s, field->name);

    if (value == NULL) {
      fail_unless (field->optional, "%s lacks its field %s", name, field->name);
      continue;
    }
    fail_unless (value_has_type (value, field->type), "%s: %s is a %s, not "
        "the documented %s", name, field->name, G_VALUE_TYPE_NAME (value),
        field->type);
  }
  if (!g_str_equal (name, "resemble-detect-result")
      && !g_str_equal (name, "GstMessageProgress")) {
    ExtraCheck check = { fields, name };
    gst_structure_foreach (s, field_is_documented, &check);
  }
}

static void
dump_states (GstElement * element, guint depth)
{
  GstState state, pending;

  GST_OBJECT_LOCK (element);
  state = GST_STATE (element);
  pending = GST_STATE_PENDING (element);
  GST_OBJECT_UNLOCK (element);
  g_printerr ("%*s%s: %s (pending %s)%s\n", depth * 2, "",
      GST_OBJECT_NAME (element), gst_element_state_get_name (state),
      gst_element_state_get_name (pending),
      GST_OBJECT_FLAG_IS_SET (element, GST_ELEMENT_FLAG_SINK) ? " sink" : "");
  if (GST_IS_BIN (element)) {
    GstIterator *it = gst_bin_iterate_elements (GST_BIN (element));
    GValue item = G_VALUE_INIT;

    while (gst_iterator_next (it, &item) == GST_ITERATOR_OK) {
      dump_states (g_value_get_object (&item), depth + 1);
      g_value_reset (&item);
    }
    g_value_unset (&item);
    gst_iterator_free (it);
  }
}

void
rd_check_dump_states (GstElement * element)
{
  dump_states (element, 0);
}
