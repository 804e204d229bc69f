/* broadcast-monitor: watches one broadcast (any URI uridecodebin plays: a
 * file, HTTP, RTSP, ...) with resembledetectsink. Its audio goes to the
 * element in segments, its video as periodic JPEG snapshots; every verdict is
 * printed as it comes, optionally appended to a JSON Lines file, and at the
 * end (EOS, or Ctrl-C, which sends EOS as gst-launch-1.0 -e does) an HTML
 * report with a summary and an SVG timeline of the scores is written.
 *
 *   RESEMBLE_API_TOKEN=... broadcast-monitor --jsonl verdicts.jsonl \
 *       --report report.html rtsp://camera.example/stream
 *
 * docs/monitor.md describes the options and the output formats.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib-unix.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>

#define DEFAULT_SEGMENT 10
#define DEFAULT_SNAPSHOT_EVERY 5
#define DEFAULT_SNAPSHOT_SIZE 640
#define DEFAULT_MAX_FILES 10

/* label == "fake" (any case), or a score of 0.5 or more without a label */
#define SCORE_THRESHOLD 0.5

typedef struct
{
  gchar *api_url;
  gchar *location;
  gint segment;
  gint snapshot_every;
  gint snapshot_size;
  gint max_files;
  gchar *upload_mode;
  gchar *audio_format;
  gchar *jsonl;
  gchar *report;
  gchar *svg;
  gboolean keep_files;
} Settings;

typedef enum
{
  MEDIA_AUDIO,
  MEDIA_VIDEO,
  MEDIA_IMAGE,
} Media;

typedef enum
{
  CLASS_REAL,                   /* another label, or a low score without one */
  CLASS_LIKELY_FAKE,            /* a label with "fake" in it, not "fake" */
  CLASS_FAKE,
  CLASS_NONE,                   /* no score: failed, or the API gave none */
} Class;

typedef struct
{
  gchar *batch_uuid;
  gchar *detect_uuid;
  gchar *file;
  gchar *media_type;
  gchar *status;
  gchar *label;
  gdouble score;                /* -1: none */
  GstClockTime running_time;
  GstClockTime duration;
  GstClockTime latency;         /* NONE when the message had no latency */
} Verdict;

typedef struct
{
  Settings *settings;
  gchar *uri;
  GMainLoop *loop;
  GstElement *pipeline;
  GstElement *sink;
  const gchar *audio_encoder;   /* factory name, NULL for raw audio (.wav) */
  FILE *jsonl;
  GPtrArray *verdicts;
  GDateTime *started;
  gint audio_branches;          /* atomic: counted in streaming threads */
  gint video_branches;
  guint batches_done;
  guint batches_failed;
  guint interrupts;
  gboolean is_live;
  gboolean buffering;
  gboolean got_eos;
  gchar *error;                 /* the pipeline's error, if any */
} Monitor;

static void
verdict_free (Verdict * v)
{
  g_free (v->batch_uuid);
  g_free (v->detect_uuid);
  g_free (v->file);
  g_free (v->media_type);
  g_free (v->status);
  g_free (v->label);
  g_free (v);
}

static Media
verdict_media (const Verdict * v)
{
  static const gchar *image_ext[] = { ".jpg", ".jpeg", ".png", ".gif",
    ".webp", NULL
  };
  static const gchar *video_ext[] = { ".mp4", ".webm", ".mkv", ".mov", NULL };
  g_autofree gchar *lower = NULL;

  if (g_strcmp0 (v->media_type, "image") == 0)
    return MEDIA_IMAGE;
  if (g_strcmp0 (v->media_type, "video") == 0)
    return MEDIA_VIDEO;
  if (g_strcmp0 (v->media_type, "audio") == 0 || v->file == NULL)
    return MEDIA_AUDIO;
  /* the API did not say: the extension is what it goes by */
  lower = g_ascii_strdown (v->file, -1);
  for (guint i = 0; image_ext[i]; i++)
    if (g_str_has_suffix (lower, image_ext[i]))
      return MEDIA_IMAGE;
  for (guint i = 0; video_ext[i]; i++)
    if (g_str_has_suffix (lower, video_ext[i]))
      return MEDIA_VIDEO;
  return MEDIA_AUDIO;
}

static const gchar *
media_name (Media media)
{
  return media == MEDIA_IMAGE ? "image" : media == MEDIA_VIDEO ? "video" :
      "audio";
}

static Class
verdict_class (const Verdict * v)
{
  if (v->label) {
    if (g_ascii_strcasecmp (v->label, "fake") == 0)
      return CLASS_FAKE;
    if (strstr (v->label, "fake"))
      return CLASS_LIKELY_FAKE;
    return CLASS_REAL;
  }
  if (v->score < 0)
    return CLASS_NONE;
  return v->score >= SCORE_THRESHOLD ? CLASS_FAKE : CLASS_REAL;
}

static gchar *
format_time (GstClockTime t)
{
  if (!GST_CLOCK_TIME_IS_VALID (t))
    return g_strdup ("-");
  return g_strdup_printf ("%u:%02u:%02u.%03u",
      (guint) (t / (3600 * GST_SECOND)), (guint) (t / (60 * GST_SECOND) % 60),
      (guint) (t / GST_SECOND % 60), (guint) (t / GST_MSECOND % 1000));
}

/* A tick label: m:ss, or h:mm:ss past an hour. */
static gchar *
format_tick (guint64 seconds)
{
  if (seconds >= 3600)
    return g_strdup_printf ("%u:%02u:%02u", (guint) (seconds / 3600),
        (guint) (seconds / 60 % 60), (guint) (seconds % 60));
  return g_strdup_printf ("%u:%02u", (guint) (seconds / 60),
      (guint) (seconds % 60));
}

/* ---- the live line and JSON Lines ---------------------------------------- */

static void
jsonl_write (Monitor * m, JsonBuilder * b)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree gchar *line = NULL;

  json_generator_set_root (gen, root);
  line = json_generator_to_data (gen, NULL);
  if (fprintf (m->jsonl, "%s\n", line) < 0 || fflush (m->jsonl) != 0)
    g_printerr ("broadcast-monitor: cannot write %s: %s\n",
        m->settings->jsonl, g_strerror (errno));
}

/* JSON wants UTF-8: bytes of a path that are not become U+FFFD. */
static void
add_string (JsonBuilder * b, const gchar * name, const gchar * value)
{
  json_builder_set_member_name (b, name);
  if (value == NULL) {
    json_builder_add_null_value (b);
  } else {
    g_autofree gchar *valid = g_utf8_make_valid (value, -1);
    json_builder_add_string_value (b, valid);
  }
}

static void
add_time (JsonBuilder * b, const gchar * name, GstClockTime t)
{
  json_builder_set_member_name (b, name);
  if (GST_CLOCK_TIME_IS_VALID (t))
    json_builder_add_int_value (b, (gint64) t);
  else
    json_builder_add_null_value (b);
}

static void
jsonl_verdict (Monitor * m, const Verdict * v)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  add_string (b, "event", "verdict");
  add_string (b, "batch_uuid", v->batch_uuid);
  add_string (b, "detect_uuid", v->detect_uuid);
  add_string (b, "file", v->file);
  add_string (b, "media_type", v->media_type);
  add_time (b, "running_time_ns", v->running_time);
  add_time (b, "duration_ns", v->duration);
  add_string (b, "status", v->status);
  add_string (b, "label", v->label);
  json_builder_set_member_name (b, "score");
  if (v->score >= 0)
    json_builder_add_double_value (b, v->score);
  else
    json_builder_add_null_value (b);
  if (GST_CLOCK_TIME_IS_VALID (v->latency))
    add_time (b, "latency_ns", v->latency);
  json_builder_end_object (b);
  jsonl_write (m, b);
}

static void
jsonl_batch (Monitor * m, const GstStructure * s, gboolean done)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  guint index = 0, total = 0, completed = 0, failed = 0, http = 0;
  gboolean cancelled = FALSE;

  gst_structure_get_uint (s, "index", &index);
  gst_structure_get_uint (s, "total-files", &total);
  json_builder_begin_object (b);
  add_string (b, "event", done ? "batch-done" : "batch-error");
  json_builder_set_member_name (b, "index");
  json_builder_add_int_value (b, index);
  add_string (b, "batch_uuid", gst_structure_get_string (s, "uuid"));
  json_builder_set_member_name (b, "total_files");
  json_builder_add_int_value (b, total);
  if (done) {
    gst_structure_get_uint (s, "completed-count", &completed);
    gst_structure_get_uint (s, "failed-count", &failed);
    add_string (b, "status", gst_structure_get_string (s, "status"));
    json_builder_set_member_name (b, "completed_count");
    json_builder_add_int_value (b, completed);
    json_builder_set_member_name (b, "failed_count");
    json_builder_add_int_value (b, failed);
  } else {
    gst_structure_get_uint (s, "http-status", &http);
    gst_structure_get_boolean (s, "cancelled", &cancelled);
    json_builder_set_member_name (b, "http_status");
    json_builder_add_int_value (b, http);
    add_string (b, "reason", gst_structure_get_string (s, "reason"));
    json_builder_set_member_name (b, "cancelled");
    json_builder_add_boolean_value (b, cancelled);
  }
  json_builder_end_object (b);
  jsonl_write (m, b);
}

static void
on_result (Monitor * m, const GstStructure * s)
{
  Verdict *v = g_new0 (Verdict, 1);
  g_autofree gchar *when = NULL;
  g_autofree gchar *length = NULL;
  g_autofree gchar *base = NULL;
  g_autofree gchar *latency = NULL;
  g_autofree gchar *score = NULL;

  v->batch_uuid = g_strdup (gst_structure_get_string (s, "batch-uuid"));
  v->detect_uuid = g_strdup (gst_structure_get_string (s, "detect-uuid"));
  v->file = g_strdup (gst_structure_get_string (s, "file"));
  v->media_type = g_strdup (gst_structure_get_string (s, "media-type"));
  v->status = g_strdup (gst_structure_get_string (s, "status"));
  v->label = g_strdup (gst_structure_get_string (s, "label"));
  v->score = -1;
  v->running_time = v->duration = v->latency = GST_CLOCK_TIME_NONE;
  gst_structure_get_double (s, "score", &v->score);
  gst_structure_get_uint64 (s, "running-time", &v->running_time);
  gst_structure_get_uint64 (s, "duration", &v->duration);
  gst_structure_get_uint64 (s, "latency", &v->latency);
  g_ptr_array_add (m->verdicts, v);

  when = format_time (v->running_time);
  length = GST_CLOCK_TIME_IS_VALID (v->duration) ?
      g_strdup_printf ("%.1fs", (gdouble) v->duration / GST_SECOND) :
      g_strdup ("-");
  base = v->file ? g_path_get_basename (v->file) : g_strdup ("-");
  score = v->score >= 0 ? g_strdup_printf ("%.3f", v->score) : g_strdup ("-");
  latency = GST_CLOCK_TIME_IS_VALID (v->latency) ?
      g_strdup_printf ("%.1fs", (gdouble) v->latency / GST_SECOND) :
      g_strdup ("-");
  g_print ("%-11s %7s  %-5s  %-11s %5s  %7s  %s\n", when, length,
      media_name (verdict_media (v)),
      v->label ? v->label : (v->status ? v->status : "-"), score, latency,
      base);
  if (m->jsonl)
    jsonl_verdict (m, v);
}

/* ---- the HTML report ----------------------------------------------------- */

/* Text for XML and HTML: valid UTF-8, no control characters (XML 1.0 has
 * no way to write them), markup characters escaped. */
static void
append_escaped (GString * out, const gchar * text)
{
  g_autofree gchar *valid = g_utf8_make_valid (text ? text : "", -1);
  g_autofree gchar *escaped = NULL;

  for (gchar * p = valid; *p; p++)
    if ((guchar) * p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
      *p = '?';
  escaped = g_markup_escape_text (valid, -1);
  g_string_append (out, escaped);
}

/* Numbers in SVG and CSS, whatever the locale. */
static void
append_number (GString * out, gdouble value)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append (out, g_ascii_formatd (buf, sizeof buf, "%.1f", value));
}

static const gchar *
class_color (Class c, Media media)
{
  switch (c) {
    case CLASS_FAKE:
      return "#d62728";
    case CLASS_LIKELY_FAKE:
      return "#ff7f0e";
    case CLASS_NONE:
      return "#999999";
    case CLASS_REAL:
    default:
      return media == MEDIA_IMAGE ? "#2ca02c" : media == MEDIA_VIDEO ?
          "#9467bd" : "#1f77b4";
  }
}

static const gchar *
class_name (Class c)
{
  switch (c) {
    case CLASS_FAKE:
      return "fake";
    case CLASS_LIKELY_FAKE:
      return "likely fake";
    case CLASS_NONE:
      return "no score";
    case CLASS_REAL:
    default:
      return "real";
  }
}

static gint
compare_verdicts (gconstpointer a, gconstpointer b)
{
  const Verdict *va = *(const Verdict **) a, *vb = *(const Verdict **) b;

  /* GST_CLOCK_TIME_NONE (unknown) sorts last */
  if (va->running_time != vb->running_time)
    return va->running_time < vb->running_time ? -1 : 1;
  return g_strcmp0 (va->file, vb->file);
}

#define SVG_WIDTH 1100
#define SVG_HEIGHT 340
#define SVG_LEFT 56
#define SVG_RIGHT 24
#define SVG_TOP 40
#define SVG_BOTTOM 46

static void
svg_tooltip (GString * svg, const Verdict * v)
{
  g_autofree gchar *base = v->file ? g_path_get_basename (v->file) : NULL;
  g_autofree gchar *when = format_time (v->running_time);
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append (svg, "<title>");
  append_escaped (svg, base ? base : "-");
  g_string_append_printf (svg, " at %s: ", when);
  append_escaped (svg, v->label ? v->label : v->status);
  if (v->score >= 0)
    g_string_append_printf (svg, " %s", g_ascii_formatd (buf, sizeof buf,
            "%.3f", v->score));
  g_string_append (svg, "</title>");
}

/* The timeline: x the stream time, y the score; audio and video segments
 * are spans over their running time, snapshots points. Well-formed XML on
 * its own (the test runs xmllint on it). */
static gchar *
make_svg (GPtrArray * sorted)
{
  static const guint64 steps[] = { 1, 2, 5, 10, 15, 30, 60, 120, 300, 600,
    900, 1800, 3600, 7200, 10800, 21600, 43200, 86400
  };
  const gdouble pw = SVG_WIDTH - SVG_LEFT - SVG_RIGHT;
  const gdouble ph = SVG_HEIGHT - SVG_TOP - SVG_BOTTOM;
  const gdouble bottom = SVG_TOP + ph;
  GString *svg = g_string_new (NULL);
  GstClockTime end = GST_SECOND;
  guint64 step = steps[G_N_ELEMENTS (steps) - 1];
  gdouble seconds;
  struct
  {
    const gchar *name, *color;
    gboolean point;
  } legend[] = {
    {"audio segment", "#1f77b4", FALSE},
    {"snapshot", "#2ca02c", TRUE},
    {"fake", "#d62728", FALSE},
    {"likely fake", "#ff7f0e", TRUE},
    {"no score", "#999999", TRUE},
  };
  gdouble lx = SVG_LEFT;

  for (guint i = 0; i < sorted->len; i++) {
    const Verdict *v = sorted->pdata[i];
    GstClockTime e = v->running_time;

    if (!GST_CLOCK_TIME_IS_VALID (e))
      continue;
    if (GST_CLOCK_TIME_IS_VALID (v->duration))
      e += v->duration;
    end = MAX (end, e);
  }
  seconds = (gdouble) end / GST_SECOND;
  for (guint i = 0; i < G_N_ELEMENTS (steps); i++) {
    if (seconds / steps[i] <= 12) {
      step = steps[i];
      break;
    }
  }
#define X(t) (SVG_LEFT + pw * ((gdouble) (t) / GST_SECOND) / seconds)
#define Y(s) (SVG_TOP + ph * (1.0 - (s)))

  g_string_append_printf (svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
      "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
      "font-family=\"sans-serif\" font-size=\"12\" role=\"img\">\n",
      SVG_WIDTH, SVG_HEIGHT, SVG_WIDTH, SVG_HEIGHT);
  g_string_append (svg, "<title>Scores over stream time</title>\n");
  g_string_append_printf (svg, "<rect x=\"%d\" y=\"%d\" width=\"%d\" "
      "height=\"%d\" fill=\"#fafafa\" stroke=\"#cccccc\"/>\n", SVG_LEFT,
      SVG_TOP, (gint) pw, (gint) ph);

  /* legend, above the plot */
  for (guint i = 0; i < G_N_ELEMENTS (legend); i++) {
    if (legend[i].point) {
      g_string_append (svg, "<circle cx=\"");
      append_number (svg, lx + 6);
      g_string_append_printf (svg, "\" cy=\"16\" r=\"5\" fill=\"%s\"/>",
          legend[i].color);
    } else {
      g_string_append (svg, "<rect x=\"");
      append_number (svg, lx);
      g_string_append_printf (svg, "\" y=\"13\" width=\"14\" height=\"6\" "
          "fill=\"%s\"/>", legend[i].color);
    }
    g_string_append (svg, "<text x=\"");
    append_number (svg, lx + 19);
    g_string_append_printf (svg, "\" y=\"20\">%s</text>\n", legend[i].name);
    lx += 19 + 6.4 * strlen (legend[i].name) + 24;
  }
  g_string_append (svg, "<line x1=\"");
  append_number (svg, lx);
  g_string_append (svg, "\" x2=\"");
  append_number (svg, lx + 18);
  g_string_append (svg, "\" y1=\"16\" y2=\"16\" stroke=\"#d62728\" "
      "stroke-dasharray=\"6 4\"/><text x=\"");
  append_number (svg, lx + 23);
  g_string_append (svg, "\" y=\"20\">threshold 0.5</text>\n");

  /* y axis: score, with the threshold */
  for (gint i = 0; i <= 4; i++) {
    gdouble s = i / 4.0, y = Y (s);
    gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

    g_string_append_printf (svg, "<line x1=\"%d\" x2=\"%d\" y1=\"",
        SVG_LEFT - 5, SVG_LEFT + (gint) pw);
    append_number (svg, y);
    g_string_append (svg, "\" y2=\"");
    append_number (svg, y);
    g_string_append_printf (svg, "\" stroke=\"%s\"%s/>", i == 2 ?
        "#d62728" : "#e0e0e0", i == 2 ? " stroke-dasharray=\"6 4\"" : "");
    g_string_append_printf (svg, "<text x=\"%d\" y=\"", SVG_LEFT - 8);
    append_number (svg, y + 4);
    g_string_append_printf (svg, "\" text-anchor=\"end\">%s</text>\n",
        g_ascii_formatd (buf, sizeof buf, "%.2f", s));
  }
  g_string_append_printf (svg, "<text transform=\"translate(14 %d) "
      "rotate(-90)\" text-anchor=\"middle\">score</text>\n",
      SVG_TOP + (gint) ph / 2);

  /* x axis: stream time */
  g_string_append_printf (svg, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" "
      "y2=\"%d\" stroke=\"#333333\"/>\n", SVG_LEFT, SVG_LEFT + (gint) pw,
      (gint) bottom, (gint) bottom);
  for (guint64 t = 0; t <= (guint64) seconds; t += step) {
    g_autofree gchar *label = format_tick (t);
    gdouble x = X (t * GST_SECOND);

    g_string_append (svg, "<line x1=\"");
    append_number (svg, x);
    g_string_append (svg, "\" x2=\"");
    append_number (svg, x);
    g_string_append_printf (svg, "\" y1=\"%d\" y2=\"%d\" "
        "stroke=\"#333333\"/><text x=\"", (gint) bottom, (gint) bottom + 5);
    append_number (svg, x);
    g_string_append_printf (svg, "\" y=\"%d\" text-anchor=\"middle\">%s"
        "</text>\n", (gint) bottom + 18, label);
  }
  g_string_append_printf (svg, "<text x=\"%d\" y=\"%d\" "
      "text-anchor=\"middle\">stream time (running time, m:ss)</text>\n",
      SVG_LEFT + (gint) pw / 2, SVG_HEIGHT - 6);

  /* the verdicts: spans first, points over them */
  for (gint pass = 0; pass < 2; pass++) {
    for (guint i = 0; i < sorted->len; i++) {
      const Verdict *v = sorted->pdata[i];
      Media media = verdict_media (v);
      Class c = verdict_class (v);
      gboolean span = media != MEDIA_IMAGE
          && GST_CLOCK_TIME_IS_VALID (v->duration);
      gdouble x, y = Y (v->score >= 0 ? CLAMP (v->score, 0, 1) : 0);

      if (!GST_CLOCK_TIME_IS_VALID (v->running_time) || span != (pass == 0))
        continue;
      x = X (v->running_time);
      if (span) {
        gdouble w = MAX (2.0, X (v->running_time + v->duration) - x - 1);

        g_string_append (svg, "<rect x=\"");
        append_number (svg, x);
        g_string_append (svg, "\" y=\"");
        append_number (svg, y - 3);
        g_string_append (svg, "\" width=\"");
        append_number (svg, w);
        g_string_append_printf (svg, "\" height=\"6\" fill=\"%s\">",
            class_color (c, media));
        svg_tooltip (svg, v);
        g_string_append (svg, "</rect>\n");
      } else {
        g_string_append (svg, "<circle cx=\"");
        append_number (svg, x);
        g_string_append (svg, "\" cy=\"");
        append_number (svg, y);
        g_string_append_printf (svg, "\" r=\"5\" fill=\"%s\" "
            "stroke=\"#ffffff\">", class_color (c, media));
        svg_tooltip (svg, v);
        g_string_append (svg, "</circle>\n");
      }
    }
  }
#undef X
#undef Y
  g_string_append (svg, "</svg>\n");
  return g_string_free (svg, FALSE);
}

static void
summary_row (GString * html, const gchar * name, const gchar * value)
{
  g_string_append (html, "<tr><th>");
  append_escaped (html, name);
  g_string_append (html, "</th><td>");
  append_escaped (html, value);
  g_string_append (html, "</td></tr>\n");
}

static gchar *
make_html (Monitor * m, GPtrArray * sorted, const gchar * svg)
{
  GString *html = g_string_new (NULL);
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree gchar *started = g_date_time_format (m->started, "%F %T");
  g_autofree gchar *ended = g_date_time_format (now, "%F %T");
  g_autofree gchar *media_counts = NULL;
  g_autofree gchar *class_counts = NULL;
  g_autofree gchar *batches = NULL;
  g_autofree gchar *highest = NULL;
  g_autofree gchar *covered = NULL;
  g_autofree gchar *verdicts = NULL;
  guint per_media[3] = { 0, }, per_class[4] = { 0, };
  const Verdict *top = NULL;
  GstClockTime end = 0;
  const gchar *outcome;

  for (guint i = 0; i < sorted->len; i++) {
    const Verdict *v = sorted->pdata[i];

    per_media[verdict_media (v)]++;
    per_class[verdict_class (v)]++;
    if (v->score >= 0 && (top == NULL || v->score > top->score))
      top = v;
    if (GST_CLOCK_TIME_IS_VALID (v->running_time))
      end = MAX (end, v->running_time + (GST_CLOCK_TIME_IS_VALID (v->duration)
              ? v->duration : 0));
  }
  verdicts = g_strdup_printf ("%u", sorted->len);
  /* the monitor sends no video files; the API could still call one so */
  if (per_media[MEDIA_VIDEO])
    media_counts = g_strdup_printf ("%u audio, %u video, %u image",
        per_media[MEDIA_AUDIO], per_media[MEDIA_VIDEO], per_media[MEDIA_IMAGE]);
  else
    media_counts = g_strdup_printf ("%u audio, %u image",
        per_media[MEDIA_AUDIO], per_media[MEDIA_IMAGE]);
  class_counts = g_strdup_printf ("%u fake, %u likely fake, %u real, "
      "%u without a score", per_class[CLASS_FAKE], per_class[CLASS_LIKELY_FAKE],
      per_class[CLASS_REAL], per_class[CLASS_NONE]);
  batches = g_strdup_printf ("%u done, %u failed", m->batches_done,
      m->batches_failed);
  covered = format_time (end);
  if (top) {
    g_autofree gchar *when = format_time (top->running_time);
    g_autofree gchar *base = g_path_get_basename (top->file ? top->file : "-");
    highest = g_strdup_printf ("%.3f at %s (%s)", top->score, when, base);
  }
  outcome = m->error ? m->error : m->got_eos ? "end of stream" :
      m->interrupts ? "stopped (Ctrl-C)" : "stopped";

  g_string_append (html, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
      "<meta charset=\"utf-8\">\n<title>Broadcast monitor: ");
  append_escaped (html, m->uri);
  g_string_append (html, "</title>\n<style>\n"
      "body { font-family: sans-serif; margin: 24px; color: #222; "
      "max-width: 1140px; }\n"
      "h1 { font-size: 20px; margin: 0 0 4px; }\n"
      "h2 { font-size: 16px; margin: 24px 0 8px; }\n"
      "p.note { color: #666; font-size: 13px; margin: 0 0 16px; }\n"
      "table { border-collapse: collapse; font-size: 13px; }\n"
      "th, td { padding: 4px 10px; border-bottom: 1px solid #e4e4e4; "
      "text-align: left; vertical-align: top; }\n"
      "div.summary { display: flex; flex-wrap: wrap; gap: 8px 40px; "
      "align-items: flex-start; }\n"
      "table.summary th { color: #555; font-weight: normal; "
      "white-space: nowrap; }\n"
      "table.verdicts td.num { text-align: right; "
      "font-variant-numeric: tabular-nums; }\n"
      "tr.fake td { background: #fde8e8; }\n"
      "tr.likely td { background: #fff1e0; }\n"
      "svg { max-width: 100%; height: auto; display: block; }\n"
      ".file { font-family: monospace; }\n"
      "</style>\n</head>\n<body>\n<h1>Broadcast monitor report</h1>\n"
      "<p class=\"note\">Verdicts from resembledetectsink. Fake (red): the "
      "label \"fake\", or a score of 0.5 or more without a label; likely fake "
      "(orange): another label that says fake.</p>\n"
      "<div class=\"summary\">\n<table class=\"summary\">\n");
  summary_row (html, "Source", m->uri);
  summary_row (html, "API", m->settings->api_url ? m->settings->api_url :
      "the element's default (production)");
  summary_row (html, "Started", started);
  summary_row (html, "Report written", ended);
  summary_row (html, "Ended by", outcome);
  summary_row (html, "Stream time covered", covered);
  g_string_append (html, "</table>\n<table class=\"summary\">\n");
  summary_row (html, "Verdicts", verdicts);
  summary_row (html, "By media", media_counts);
  summary_row (html, "By class", class_counts);
  summary_row (html, "Highest score", highest ? highest : "-");
  summary_row (html, "Batches", batches);
  g_string_append (html, "</table>\n</div>\n<h2>Timeline</h2>\n");
  g_string_append (html, svg);
  g_string_append (html, "<h2>Verdicts</h2>\n<table class=\"verdicts\">\n"
      "<tr><th>stream time</th><th>length</th><th>media</th><th>status</th>"
      "<th>label</th><th>score</th><th>latency</th><th>file</th></tr>\n");
  for (guint i = 0; i < sorted->len; i++) {
    const Verdict *v = sorted->pdata[i];
    Class c = verdict_class (v);
    g_autofree gchar *when = format_time (v->running_time);
    g_autofree gchar *base = g_path_get_basename (v->file ? v->file : "-");
    gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

    g_string_append_printf (html, "<tr%s><td class=\"num\">%s</td>"
        "<td class=\"num\">", c == CLASS_FAKE ? " class=\"fake\"" :
        c == CLASS_LIKELY_FAKE ? " class=\"likely\"" : "", when);
    if (GST_CLOCK_TIME_IS_VALID (v->duration))
      g_string_append_printf (html, "%ss", g_ascii_formatd (buf, sizeof buf,
              "%.1f", (gdouble) v->duration / GST_SECOND));
    g_string_append_printf (html, "</td><td>%s</td><td>",
        media_name (verdict_media (v)));
    append_escaped (html, v->status ? v->status : "-");
    g_string_append (html, "</td><td>");
    append_escaped (html, v->label ? v->label : class_name (c));
    g_string_append (html, "</td><td class=\"num\">");
    if (v->score >= 0)
      g_string_append (html, g_ascii_formatd (buf, sizeof buf, "%.3f",
              v->score));
    g_string_append (html, "</td><td class=\"num\">");
    if (GST_CLOCK_TIME_IS_VALID (v->latency))
      g_string_append_printf (html, "%ss", g_ascii_formatd (buf, sizeof buf,
              "%.1f", (gdouble) v->latency / GST_SECOND));
    g_string_append (html, "</td><td class=\"file\" title=\"");
    append_escaped (html, v->file ? v->file : "");
    g_string_append (html, "\">");
    append_escaped (html, base);
    g_string_append (html, "</td></tr>\n");
  }
  g_string_append (html, "</table>\n</body>\n</html>\n");
  return g_string_free (html, FALSE);
}

static gboolean
write_report (Monitor * m)
{
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *svg = NULL;
  g_autofree gchar *html = NULL;
  gboolean ok = TRUE;

  for (guint i = 0; i < m->verdicts->len; i++)
    g_ptr_array_add (sorted, m->verdicts->pdata[i]);
  g_ptr_array_sort (sorted, compare_verdicts);
  svg = make_svg (sorted);
  if (m->settings->svg) {
    g_autofree gchar *doc = g_strconcat ("<?xml version=\"1.0\" "
        "encoding=\"UTF-8\"?>\n", svg, NULL);

    if (!g_file_set_contents (m->settings->svg, doc, -1, &error)) {
      g_printerr ("broadcast-monitor: %s\n", error->message);
      g_clear_error (&error);
      ok = FALSE;
    }
  }
  if (m->settings->report) {
    html = make_html (m, sorted, svg);
    if (!g_file_set_contents (m->settings->report, html, -1, &error)) {
      g_printerr ("broadcast-monitor: %s\n", error->message);
      ok = FALSE;
    } else {
      g_print ("report: %s\n", m->settings->report);
    }
  }
  return ok;
}

/* ---- the pipeline -------------------------------------------------------- */

static void
post_error (Monitor * m, GQuark domain, gint code, const gchar * message)
{
  GError *error = g_error_new_literal (domain, code, message);

  gst_element_post_message (m->pipeline,
      gst_message_new_error (GST_OBJECT (m->pipeline), error, NULL));
  g_error_free (error);
}

static GstElement *
make (Monitor * m, const gchar * factory)
{
  GstElement *e = gst_element_factory_make (factory, NULL);

  if (e == NULL) {
    g_autofree gchar *text = g_strdup_printf ("element %s is not installed",
        factory);
    post_error (m, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN, text);
  }
  return e;
}

/* Links decoded pad -> elements -> a new request pad of the sink. Streaming
 * thread (pad-added): the pipeline is going to PAUSED or playing, so each
 * new element takes its parent's state, downstream first. */
static gboolean
add_branch (Monitor * m, GstPad * pad, GstElement ** elements, guint n,
    const gchar * sink_template)
{
  g_autoptr (GstPad) src = NULL;
  g_autoptr (GstPad) sink = NULL;
  g_autoptr (GstPad) first = NULL;

  for (guint i = 0; i < n; i++) {
    if (elements[i] == NULL) {
      for (guint j = 0; j < n; j++)
        if (elements[j])
          gst_object_unref (gst_object_ref_sink (elements[j]));
      return FALSE;
    }
  }
  for (guint i = 0; i < n; i++)
    gst_bin_add (GST_BIN (m->pipeline), elements[i]);
  for (guint i = 0; i + 1 < n; i++) {
    if (!gst_element_link (elements[i], elements[i + 1]))
      goto failed;
  }
  sink = gst_element_request_pad_simple (m->sink, sink_template);
  src = gst_element_get_static_pad (elements[n - 1], "src");
  if (sink == NULL || gst_pad_link (src, sink) != GST_PAD_LINK_OK)
    goto failed;
  for (guint i = n; i > 0; i--)
    gst_element_sync_state_with_parent (elements[i - 1]);
  first = gst_element_get_static_pad (elements[0], "sink");
  if (gst_pad_link (pad, first) != GST_PAD_LINK_OK)
    goto failed;
  return TRUE;

failed:
  {
    g_autofree gchar *text = g_strdup_printf ("cannot link %s to the "
        "detection sink (%s)", GST_PAD_NAME (pad), sink_template);
    post_error (m, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION, text);
  }
  return FALSE;
}

static void
add_audio_branch (Monitor * m, GstPad * pad)
{
  GstElement *e[4] = { make (m, "queue"), make (m, "audioconvert"),
    make (m, "audioresample"), NULL,
  };

  if (m->audio_encoder) {
    e[3] = make (m, m->audio_encoder);
  } else {
    /* raw audio: the element writes .wav */
    g_autoptr (GstCaps) caps =
        gst_caps_from_string ("audio/x-raw,format=S16LE");
    e[3] = make (m, "capsfilter");
    if (e[3])
      g_object_set (e[3], "caps", caps, NULL);
  }
  if (add_branch (m, pad, e, G_N_ELEMENTS (e), "audio_%u"))
    g_atomic_int_inc (&m->audio_branches);
}

/* One frame every snapshot-every seconds, scaled to fit in a square of
 * snapshot-size pixels (square pixels, aspect kept), as JPEG. */
static void
add_video_branch (Monitor * m, GstPad * pad)
{
  GstElement *e[6] = { make (m, "queue"), make (m, "videorate"),
    make (m, "videoconvert"), make (m, "videoscale"), make (m, "capsfilter"),
    make (m, "jpegenc"),
  };
  g_autoptr (GstCaps) caps = NULL;

  if (e[1])
    g_object_set (e[1], "drop-only", TRUE, NULL);
  caps = gst_caps_new_simple ("video/x-raw",
      "framerate", GST_TYPE_FRACTION, 1, m->settings->snapshot_every,
      "width", GST_TYPE_INT_RANGE, 16, m->settings->snapshot_size,
      "height", GST_TYPE_INT_RANGE, 16, m->settings->snapshot_size,
      "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, NULL);
  if (e[4])
    g_object_set (e[4], "caps", caps, NULL);
  if (add_branch (m, pad, e, G_N_ELEMENTS (e), "image_%u"))
    g_atomic_int_inc (&m->video_branches);
}

static void
on_pad_added (GstElement * decodebin, GstPad * pad, Monitor * m)
{
  g_autoptr (GstCaps) caps = gst_pad_get_current_caps (pad);
  const gchar *name;

  if (caps == NULL)
    caps = gst_pad_query_caps (pad, NULL);
  if (caps == NULL || gst_caps_is_empty (caps))
    return;
  name = gst_structure_get_name (gst_caps_get_structure (caps, 0));
  /* other streams (subtitles...) stay unlinked; decodebin lets them be */
  if (g_str_equal (name, "audio/x-raw"))
    add_audio_branch (m, pad);
  else if (g_str_equal (name, "video/x-raw"))
    add_video_branch (m, pad);
}

static void
on_no_more_pads (GstElement * decodebin, Monitor * m)
{
  if (g_atomic_int_get (&m->audio_branches) == 0
      && g_atomic_int_get (&m->video_branches) == 0)
    post_error (m, GST_STREAM_ERROR, GST_STREAM_ERROR_TYPE_NOT_FOUND,
        "the URI has neither audio nor video");
}

static gboolean
on_signal (gpointer user_data)
{
  Monitor *m = user_data;

  if (m->interrupts++ == 0) {
    g_printerr ("broadcast-monitor: interrupted, ending the stream "
        "(waits for the pending verdicts; again to stop now)\n");
    gst_element_send_event (m->pipeline, gst_event_new_eos ());
  } else {
    g_printerr ("broadcast-monitor: stopping now\n");
    g_main_loop_quit (m->loop);
  }
  return G_SOURCE_CONTINUE;
}

static void
handle_message (Monitor * m, GstMessage * msg)
{
  const GstStructure *s = gst_message_get_structure (msg);

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ELEMENT:{
      const gchar *name = s ? gst_structure_get_name (s) : "";
      guint index = 0, total = 0, completed = 0, http = 0;

      if (!g_str_has_prefix (name, "resemble-detect-"))
        break;
      gst_structure_get_uint (s, "index", &index);
      gst_structure_get_uint (s, "total-files", &total);
      if (g_str_equal (name, "resemble-detect-result")) {
        on_result (m, s);
      } else if (g_str_equal (name, "resemble-detect-batch-done")) {
        m->batches_done++;
        gst_structure_get_uint (s, "completed-count", &completed);
        g_print ("# batch %u %s: %u of %u files\n", index,
            gst_structure_get_string (s, "status"), completed, total);
        if (m->jsonl)
          jsonl_batch (m, s, TRUE);
      } else if (g_str_equal (name, "resemble-detect-batch-error")) {
        m->batches_failed++;
        gst_structure_get_uint (s, "http-status", &http);
        g_print ("# batch %u failed (HTTP %u): %s\n", index, http,
            gst_structure_get_string (s, "reason"));
        if (m->jsonl)
          jsonl_batch (m, s, FALSE);
      } else if (g_str_equal (name, "resemble-detect-spool-full")) {
        g_print ("# spool full: files skipped\n");
      }
      break;
    }
    case GST_MESSAGE_WARNING:{
      g_autoptr (GError) error = NULL;

      gst_message_parse_warning (msg, &error, NULL);
      g_printerr ("warning from %s: %s\n", GST_OBJECT_NAME (msg->src),
          error->message);
      break;
    }
    case GST_MESSAGE_INFO:{
      g_autoptr (GError) error = NULL;

      gst_message_parse_info (msg, &error, NULL);
      g_printerr ("info from %s: %s\n", GST_OBJECT_NAME (msg->src),
          error->message);
      break;
    }
    case GST_MESSAGE_ERROR:{
      g_autoptr (GError) error = NULL;
      g_autofree gchar *debug = NULL;

      /* the first error says why; those that follow are its echoes */
      if (m->error)
        break;
      gst_message_parse_error (msg, &error, &debug);
      g_printerr ("error from %s: %s\n%s%s", GST_OBJECT_NAME (msg->src),
          error->message, debug ? debug : "", debug ? "\n" : "");
      m->error = g_strdup_printf ("error: %s", error->message);
      g_main_loop_quit (m->loop);
      break;
    }
    case GST_MESSAGE_EOS:
      m->got_eos = TRUE;
      g_main_loop_quit (m->loop);
      break;
    case GST_MESSAGE_BUFFERING:{
      gint percent = 100;

      /* as gst-launch-1.0 does: a network stream that is not live pauses
       * while its buffer fills */
      if (m->is_live)
        break;
      gst_message_parse_buffering (msg, &percent);
      if (percent < 100 && !m->buffering) {
        m->buffering = TRUE;
        gst_element_set_state (m->pipeline, GST_STATE_PAUSED);
      } else if (percent >= 100 && m->buffering) {
        m->buffering = FALSE;
        gst_element_set_state (m->pipeline, GST_STATE_PLAYING);
      }
      break;
    }
    case GST_MESSAGE_CLOCK_LOST:
      gst_element_set_state (m->pipeline, GST_STATE_PAUSED);
      gst_element_set_state (m->pipeline, GST_STATE_PLAYING);
      break;
    default:
      break;
  }
}

static gboolean
on_bus_message (GstBus * bus, GstMessage * msg, gpointer user_data)
{
  handle_message (user_data, msg);
  return G_SOURCE_CONTINUE;
}

static const gchar *
pick_audio_encoder (const gchar * format, gboolean * ok)
{
  static const struct
  {
    const gchar *format, *factory;
  } encoders[] = {
    {"mp3", "lamemp3enc"},
    {"opus", "opusenc"},
    {"flac", "flacenc"},
  };

  *ok = TRUE;
  if (g_strcmp0 (format, "wav") == 0)
    return NULL;
  for (guint i = 0; i < G_N_ELEMENTS (encoders); i++) {
    g_autoptr (GstElementFactory) f = NULL;

    if (format && !g_str_equal (format, encoders[i].format))
      continue;
    f = gst_element_factory_find (encoders[i].factory);
    if (f)
      return encoders[i].factory;
    if (format) {
      g_printerr ("broadcast-monitor: --audio-format=%s needs %s, which is "
          "not installed\n", format, encoders[i].factory);
      *ok = FALSE;
      return NULL;
    }
  }
  if (format) {
    g_printerr ("broadcast-monitor: unknown --audio-format %s (mp3, opus, "
        "flac or wav)\n", format);
    *ok = FALSE;
  }
  return NULL;
}

static gchar *
argument_to_uri (const gchar * arg)
{
  g_autofree gchar *absolute = NULL;

  if (gst_uri_is_valid (arg))
    return g_strdup (arg);
  /* a plain path, for convenience */
  absolute = g_canonicalize_filename (arg, NULL);
  return gst_filename_to_uri (absolute, NULL);
}

int
main (int argc, char **argv)
{
  Settings settings = {
    .segment = DEFAULT_SEGMENT,
    .snapshot_every = DEFAULT_SNAPSHOT_EVERY,
    .snapshot_size = DEFAULT_SNAPSHOT_SIZE,
    .max_files = DEFAULT_MAX_FILES,
  };
  GOptionEntry entries[] = {
    {"api-url", 0, 0, G_OPTION_ARG_STRING, &settings.api_url,
          "Base URL of the detection API (default: the production service)",
        "URL"},
    {"location", 0, 0, G_OPTION_ARG_FILENAME, &settings.location,
          "Spool directory (default: under ~/.cache/gst-resembledetect/)",
        "DIR"},
    {"segment", 0, 0, G_OPTION_ARG_INT, &settings.segment,
        "Length of each audio segment (default 10)", "SECONDS"},
    {"snapshot-every", 0, 0, G_OPTION_ARG_INT, &settings.snapshot_every,
        "One video snapshot every SECONDS (default 5)", "SECONDS"},
    {"snapshot-size", 0, 0, G_OPTION_ARG_INT, &settings.snapshot_size,
        "Snapshots fit in a square of PIXELS (default 640)", "PIXELS"},
    {"max-files", 0, 0, G_OPTION_ARG_INT, &settings.max_files,
        "Files per batch, 1..50 (default 10)", "N"},
    {"upload-mode", 0, 0, G_OPTION_ARG_STRING, &settings.upload_mode,
        "How a batch is uploaded: files (default) or zip", "MODE"},
    {"audio-format", 0, 0, G_OPTION_ARG_STRING, &settings.audio_format,
        "Audio segments as mp3, opus, flac or wav (default: mp3, else opus, "
          "else wav)", "FORMAT"},
    {"jsonl", 0, 0, G_OPTION_ARG_FILENAME, &settings.jsonl,
        "Write every verdict and batch end to FILE as JSON Lines", "FILE"},
    {"report", 0, 0, G_OPTION_ARG_FILENAME, &settings.report,
        "Write an HTML report with a timeline at the end", "FILE.html"},
    {"svg", 0, 0, G_OPTION_ARG_FILENAME, &settings.svg,
        "Write the report's timeline also as an SVG file", "FILE.svg"},
    {"keep-files", 0, 0, G_OPTION_ARG_NONE, &settings.keep_files,
        "Keep the segment files and snapshots in the spool", NULL},
    {NULL}
  };
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GstBus) bus = NULL;
  g_autoptr (GstElementFactory) sink_factory = NULL;
  Monitor m = { 0, };
  GstElement *decodebin;
  GstStateChangeReturn ret;
  GstMessage *msg;
  gboolean ok;
  int status;

  context = g_option_context_new ("URI - watch a broadcast for deepfakes "
      "with resembledetectsink");
  g_option_context_set_summary (context, "Plays URI (a file, http://, "
      "rtsp://: anything uridecodebin plays, or a plain path),\nsends its "
      "audio in segments and its video as snapshots to the Resemble AI\n"
      "detection API, and prints every verdict as it comes.");
  g_option_context_set_description (context, "The API token comes from the "
      "environment variable RESEMBLE_API_TOKEN.\nCtrl-C ends the stream "
      "and waits for the pending verdicts; a second one stops at once.\n"
      "Exit status: 0 at the end of the stream, 1 on a pipeline error, "
      "2 on a usage error,\n130 when stopped by a second Ctrl-C.");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_group (context, gst_init_get_option_group ());
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("broadcast-monitor: %s\n", error->message);
    return 2;
  }
  if (argc != 2) {
    g_printerr ("usage: broadcast-monitor [OPTION...] URI (see --help)\n");
    return 2;
  }
  if (settings.segment < 1 || settings.snapshot_every < 1
      || settings.snapshot_size < 16 || settings.max_files < 1
      || settings.max_files > 50) {
    g_printerr ("broadcast-monitor: --segment and --snapshot-every take 1 "
        "second or more, --snapshot-size 16 pixels or more, --max-files "
        "1..50\n");
    return 2;
  }
  if (settings.upload_mode && !g_str_equal (settings.upload_mode, "files")
      && !g_str_equal (settings.upload_mode, "zip")) {
    g_printerr ("broadcast-monitor: --upload-mode is files or zip\n");
    return 2;
  }
  if (g_getenv ("RESEMBLE_API_TOKEN") == NULL
      || *g_getenv ("RESEMBLE_API_TOKEN") == '\0') {
    g_printerr ("broadcast-monitor: set RESEMBLE_API_TOKEN to the API "
        "token\n");
    return 2;
  }
  sink_factory = gst_element_factory_find ("resembledetectsink");
  if (sink_factory == NULL) {
    g_printerr ("broadcast-monitor: the resembledetectsink element is not "
        "installed (GST_PLUGIN_PATH?)\n");
    return 1;
  }
  m.audio_encoder = pick_audio_encoder (settings.audio_format, &ok);
  if (!ok)
    return 2;

  m.settings = &settings;
  m.uri = argument_to_uri (argv[1]);
  m.verdicts = g_ptr_array_new_with_free_func ((GDestroyNotify) verdict_free);
  m.started = g_date_time_new_now_local ();
  if (settings.jsonl) {
    m.jsonl = fopen (settings.jsonl, "w");
    if (m.jsonl == NULL) {
      g_printerr ("broadcast-monitor: cannot write %s: %s\n", settings.jsonl,
          g_strerror (errno));
      return 2;
    }
  }

  m.pipeline = gst_pipeline_new ("monitor");
  decodebin = gst_element_factory_make ("uridecodebin", NULL);
  m.sink = gst_element_factory_create (sink_factory, "detect");
  if (decodebin == NULL || m.sink == NULL) {
    g_printerr ("broadcast-monitor: cannot make %s\n", decodebin == NULL ?
        "uridecodebin (is gstreamer1.0-plugins-base installed?)" :
        "resembledetectsink");
    return 1;
  }
  g_object_set (decodebin, "uri", m.uri, NULL);
  g_object_set (m.sink, "segment-duration",
      (guint64) settings.segment * GST_SECOND,
      "max-files", (guint) settings.max_files,
      "keep-files", settings.keep_files, NULL);
  if (settings.api_url)
    g_object_set (m.sink, "api-url", settings.api_url, NULL);
  if (settings.location)
    g_object_set (m.sink, "location", settings.location, NULL);
  if (settings.upload_mode)
    gst_util_set_object_arg (G_OBJECT (m.sink), "upload-mode",
        settings.upload_mode);
  gst_bin_add_many (GST_BIN (m.pipeline), decodebin, m.sink, NULL);
  g_signal_connect (decodebin, "pad-added", G_CALLBACK (on_pad_added), &m);
  g_signal_connect (decodebin, "no-more-pads", G_CALLBACK (on_no_more_pads),
      &m);

  m.loop = g_main_loop_new (NULL, FALSE);
  bus = gst_element_get_bus (m.pipeline);
  gst_bus_add_watch (bus, on_bus_message, &m);
  g_unix_signal_add (SIGINT, on_signal, &m);
  g_unix_signal_add (SIGTERM, on_signal, &m);

  g_print ("monitoring %s\n%-11s %7s  %-5s  %-11s %5s  %7s  %s\n", m.uri,
      "stream time", "length", "media", "label", "score", "latency", "file");
  ret = gst_element_set_state (m.pipeline, GST_STATE_PLAYING);
  m.is_live = ret == GST_STATE_CHANGE_NO_PREROLL;
  if (ret == GST_STATE_CHANGE_FAILURE) {
    /* the error message on the bus says why */
    while ((msg = gst_bus_pop (bus))) {
      handle_message (&m, msg);
      gst_message_unref (msg);
    }
    if (m.error == NULL)
      m.error = g_strdup ("error: the pipeline did not start");
  } else {
    g_main_loop_run (m.loop);
  }

  /* Stopping makes the element end its unfinished batches with
   * batch-error (cancelled): READY first, to read them before NULL flushes
   * the bus. */
  gst_element_set_state (m.pipeline, GST_STATE_READY);
  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT))) {
    handle_message (&m, msg);
    gst_message_unref (msg);
  }
  gst_element_set_state (m.pipeline, GST_STATE_NULL);
  gst_bus_remove_watch (bus);

  ok = write_report (&m);
  g_print ("%u verdicts, %u batches done, %u failed\n", m.verdicts->len,
      m.batches_done, m.batches_failed);
  if (m.jsonl && fclose (m.jsonl) != 0) {
    g_printerr ("broadcast-monitor: cannot write %s: %s\n", settings.jsonl,
        g_strerror (errno));
    ok = FALSE;
  }
  status = m.error ? 1 : !m.got_eos && m.interrupts > 1 ? 130 : ok ? 0 : 1;

  gst_object_unref (m.pipeline);
  g_main_loop_unref (m.loop);
  g_ptr_array_unref (m.verdicts);
  g_date_time_unref (m.started);
  g_free (m.uri);
  g_free (m.error);
  g_free (settings.api_url);
  g_free (settings.location);
  g_free (settings.upload_mode);
  g_free (settings.audio_format);
  g_free (settings.jsonl);
  g_free (settings.report);
  g_free (settings.svg);
  return status;
}
