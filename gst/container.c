/* The containers of segment files and their muxers (see container.h).
 *
 * Two of them need help inside splitmuxsink with GStreamer 1.22: oggmux
 * refuses the pad names splitmuxsink asks for ("audio_0" is read as a serial
 * number), so Ogg goes through a small bin that requests oggmux's pads
 * without a name; and FLAC has no muxer, so flacparse writes the stream
 * headers (from the caps) at the start of every file. MP3 files get a Xing
 * header from xingmux, so that players know their exact duration. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "container.h"

typedef struct
{
  GstResembleDetectContainer container;
  const gchar *extension;
  const gchar *muxer;           /* the element that writes it */
  const gchar *package;         /* where that element comes from */
  gboolean audio_only;          /* the API analyses its files as audio */
} ContainerInfo;

static const ContainerInfo container_table[] = {
  {GST_RESEMBLE_DETECT_CONTAINER_MP4, "mp4", "mp4mux", "gst-plugins-good",
      FALSE},
  {GST_RESEMBLE_DETECT_CONTAINER_MOV, "mov", "qtmux", "gst-plugins-good",
      FALSE},
  {GST_RESEMBLE_DETECT_CONTAINER_MKV, "mkv", "matroskamux", "gst-plugins-good",
      FALSE},
  {GST_RESEMBLE_DETECT_CONTAINER_WEBM, "webm", "webmmux", "gst-plugins-good",
      FALSE},
  {GST_RESEMBLE_DETECT_CONTAINER_M4A, "m4a", "mp4mux", "gst-plugins-good",
      TRUE},
  {GST_RESEMBLE_DETECT_CONTAINER_MP3, "mp3", "xingmux", "gst-plugins-ugly",
      TRUE},
  {GST_RESEMBLE_DETECT_CONTAINER_WAV, "wav", "wavenc", "gst-plugins-good",
      TRUE},
  {GST_RESEMBLE_DETECT_CONTAINER_OGG, "ogg", "oggmux", "gst-plugins-base",
      TRUE},
  {GST_RESEMBLE_DETECT_CONTAINER_FLAC, "flac", "flacparse", "gst-plugins-good",
      TRUE},
};

GType
gst_resemble_detect_container_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_RESEMBLE_DETECT_CONTAINER_AUTO,
        "Pick from the caps: wav, mp3, m4a, ogg (Opus, Vorbis), flac for "
          "audio; mp4 (H.264, H.265) or webm (VP8, VP9, AV1) for video, "
          "mkv when that one cannot hold the audio", "auto"},
    {GST_RESEMBLE_DETECT_CONTAINER_MP4, "MP4 (.mp4, video)", "mp4"},
    {GST_RESEMBLE_DETECT_CONTAINER_MOV, "QuickTime (.mov, video)", "mov"},
    {GST_RESEMBLE_DETECT_CONTAINER_MKV, "Matroska (.mkv, video)", "mkv"},
    {GST_RESEMBLE_DETECT_CONTAINER_WEBM, "WebM (.webm, video)", "webm"},
    {GST_RESEMBLE_DETECT_CONTAINER_M4A, "MPEG-4 audio (.m4a: AAC, Opus)",
        "m4a"},
    {GST_RESEMBLE_DETECT_CONTAINER_MP3, "MP3 with a Xing header (.mp3)",
        "mp3"},
    {GST_RESEMBLE_DETECT_CONTAINER_WAV, "WAV (.wav: raw audio)", "wav"},
    {GST_RESEMBLE_DETECT_CONTAINER_OGG, "Ogg (.ogg: Opus, Vorbis, FLAC)",
        "ogg"},
    {GST_RESEMBLE_DETECT_CONTAINER_FLAC, "FLAC (.flac)", "flac"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstResembleDetectContainer", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

static const ContainerInfo *
container_info (GstResembleDetectContainer container)
{
  for (guint i = 0; i < G_N_ELEMENTS (container_table); i++) {
    if (container_table[i].container == container)
      return &container_table[i];
  }
  return NULL;
}

const gchar *
rd_container_extension (GstResembleDetectContainer container)
{
  const ContainerInfo *info = container_info (container);

  return info ? info->extension : NULL;
}

static GstResembleDetectContainer
container_for_caps (const GstCaps * caps)
{
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  const gchar *name = gst_structure_get_name (s);
  gint mpegversion = 0;

  if (g_str_equal (name, "audio/x-raw"))
    return GST_RESEMBLE_DETECT_CONTAINER_WAV;
  if (g_str_equal (name, "audio/mpeg")) {
    gst_structure_get_int (s, "mpegversion", &mpegversion);
    return mpegversion == 1 ? GST_RESEMBLE_DETECT_CONTAINER_MP3 :
        GST_RESEMBLE_DETECT_CONTAINER_M4A;
  }
  if (g_str_equal (name, "audio/x-opus")
      || g_str_equal (name, "audio/x-vorbis"))
    return GST_RESEMBLE_DETECT_CONTAINER_OGG;
  if (g_str_equal (name, "audio/x-flac"))
    return GST_RESEMBLE_DETECT_CONTAINER_FLAC;
  if (g_str_equal (name, "video/x-h264") || g_str_equal (name, "video/x-h265"))
    return GST_RESEMBLE_DETECT_CONTAINER_MP4;
  if (g_str_equal (name, "video/x-vp8") || g_str_equal (name, "video/x-vp9")
      || g_str_equal (name, "video/x-av1"))
    return GST_RESEMBLE_DETECT_CONTAINER_WEBM;
  return GST_RESEMBLE_DETECT_CONTAINER_MKV;
}

/* Whether one of @factory_name's sink pad templates takes @caps. */
static gboolean
factory_sink_takes (const gchar * factory_name, const GstCaps * caps)
{
  g_autoptr (GstElementFactory) factory =
      gst_element_factory_find (factory_name);

  if (factory == NULL)
    return FALSE;
  for (const GList * l = gst_element_factory_get_static_pad_templates (factory);
      l; l = l->next) {
    GstStaticPadTemplate *templ = l->data;
    g_autoptr (GstCaps) templ_caps = NULL;

    if (templ->direction != GST_PAD_SINK)
      continue;
    templ_caps = gst_static_pad_template_get_caps (templ);
    if (gst_caps_can_intersect (templ_caps, caps))
      return TRUE;
  }
  return FALSE;
}

static gboolean
container_accepts_caps (const ContainerInfo * info, const GstCaps * caps)
{
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  gint version = 0;

  if (info->audio_only && !g_str_has_prefix (gst_structure_get_name (s),
          "audio/"))
    return FALSE;
  switch (info->container) {
    case GST_RESEMBLE_DETECT_CONTAINER_MP3:
      /* xingmux passes anything through: MP3 files hold MPEG-1 layer 3 */
      return gst_structure_has_name (s, "audio/mpeg")
          && gst_structure_get_int (s, "mpegversion", &version)
          && version == 1;
    case GST_RESEMBLE_DETECT_CONTAINER_FLAC:
      return gst_structure_has_name (s, "audio/x-flac");
    default:
      return factory_sink_takes (info->muxer, caps);
  }
}

static gint
first_refused (const ContainerInfo * info, guint n, GstCaps * const *caps)
{
  for (guint i = 0; i < n; i++) {
    if (!container_accepts_caps (info, caps[i]))
      return i;
  }
  return -1;
}

gboolean
rd_container_choose (GstResembleDetectContainer requested, guint n,
    GstCaps * const *caps, const gchar * const *names,
    GstResembleDetectContainer * chosen, GError ** error)
{
  gboolean automatic = requested == GST_RESEMBLE_DETECT_CONTAINER_AUTO;
  gboolean has_video = FALSE;
  const ContainerInfo *info;
  gint refused;

  g_return_val_if_fail (n > 0, FALSE);
  for (guint i = 0; i < n; i++) {
    if (g_str_has_prefix (gst_structure_get_name (gst_caps_get_structure
                (caps[i], 0)), "video/"))
      has_video = TRUE;
  }
  info = container_info (automatic ? container_for_caps (caps[0]) : requested);
  refused = first_refused (info, n, caps);
  if (refused >= 0 && automatic) {
    /* e.g. H.264 with raw audio: Matroska takes both */
    info = container_info (GST_RESEMBLE_DETECT_CONTAINER_MKV);
    refused = first_refused (info, n, caps);
  }
  if (refused >= 0) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_WRONG_TYPE,
        "container=%s cannot hold %s on pad %s.", info->extension,
        gst_structure_get_name (gst_caps_get_structure (caps[refused], 0)),
        names[refused]);
    return FALSE;
  }
  if (!has_video && !info->audio_only) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_WRONG_TYPE,
        "container=%s would hold audio without video on pad %s, which the "
        "API analyses as video (it goes by the extension); use auto, m4a, "
        "mp3, wav, ogg or flac.", info->extension, names[0]);
    return FALSE;
  }
  *chosen = info->container;
  return TRUE;
}

/* ---- Ogg: oggmux behind pads that splitmuxsink can request ------------- */

#define GST_TYPE_RESEMBLE_DETECT_OGG_MUX (gst_resemble_detect_ogg_mux_get_type ())
G_DECLARE_FINAL_TYPE (GstResembleDetectOggMux, gst_resemble_detect_ogg_mux,
    GST, RESEMBLE_DETECT_OGG_MUX, GstBin);

struct _GstResembleDetectOggMux
{
  GstBin parent;
  GstElement *oggmux;           /* owned by the bin */
};

G_DEFINE_TYPE (GstResembleDetectOggMux, gst_resemble_detect_ogg_mux,
    GST_TYPE_BIN);

static GstStaticPadTemplate ogg_mux_sink_template =
    GST_STATIC_PAD_TEMPLATE ("audio_%u", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS ("audio/x-opus; audio/x-vorbis; audio/x-flac"));
static GstStaticPadTemplate ogg_mux_src_template =
    GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("audio/ogg; application/ogg"));

static GstPad *
gst_resemble_detect_ogg_mux_request_new_pad (GstElement * element,
    GstPadTemplate * templ, const gchar * name, const GstCaps * caps)
{
  GstResembleDetectOggMux *self = GST_RESEMBLE_DETECT_OGG_MUX (element);
  /* no name: oggmux picks a random serial number */
  g_autoptr (GstPad) target = gst_element_request_pad_simple (self->oggmux,
      "audio_%u");
  GstPad *pad;

  if (target == NULL)
    return NULL;
  pad = gst_ghost_pad_new_from_template (name, target, templ);
  if (GST_STATE (element) > GST_STATE_READY)
    gst_pad_set_active (pad, TRUE);
  gst_element_add_pad (element, pad);
  return pad;
}

static void
gst_resemble_detect_ogg_mux_release_pad (GstElement * element, GstPad * pad)
{
  GstResembleDetectOggMux *self = GST_RESEMBLE_DETECT_OGG_MUX (element);
  g_autoptr (GstPad) target = gst_ghost_pad_get_target (GST_GHOST_PAD (pad));

  gst_element_remove_pad (element, pad);
  if (target)
    gst_element_release_request_pad (self->oggmux, target);
}

static void
gst_resemble_detect_ogg_mux_class_init (GstResembleDetectOggMuxClass * klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gst_element_class_add_static_pad_template (element_class,
      &ogg_mux_sink_template);
  gst_element_class_add_static_pad_template (element_class,
      &ogg_mux_src_template);
  gst_element_class_set_static_metadata (element_class,
      "Ogg muxer for splitmuxsink", "Codec/Muxer",
      "oggmux with pads that splitmuxsink can request",
      "gst-resembledetect developers");
  element_class->request_new_pad = gst_resemble_detect_ogg_mux_request_new_pad;
  element_class->release_pad = gst_resemble_detect_ogg_mux_release_pad;
}

static void
gst_resemble_detect_ogg_mux_init (GstResembleDetectOggMux * self)
{
  g_autoptr (GstPad) src = NULL;
  GstPadTemplate *templ =
      gst_element_class_get_pad_template (GST_ELEMENT_GET_CLASS (self), "src");

  self->oggmux = gst_element_factory_make ("oggmux", NULL);
  gst_bin_add (GST_BIN_CAST (self), self->oggmux);
  src = gst_element_get_static_pad (self->oggmux, "src");
  gst_element_add_pad (GST_ELEMENT_CAST (self),
      gst_ghost_pad_new_from_template ("src", src, templ));
}

GstElement *
rd_container_make_muxer (GstResembleDetectContainer container, GError ** error)
{
  const ContainerInfo *info = container_info (container);
  g_autoptr (GstElementFactory) factory = NULL;

  g_return_val_if_fail (info != NULL, NULL);
  factory = gst_element_factory_find (info->muxer);
  if (factory == NULL) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
        "%s, which writes .%s segments, is missing (%s).", info->muxer,
        info->extension, info->package);
    return NULL;
  }
  if (container == GST_RESEMBLE_DETECT_CONTAINER_OGG)
    return g_object_new (GST_TYPE_RESEMBLE_DETECT_OGG_MUX, NULL);
  return gst_element_factory_create (factory, NULL);
}
