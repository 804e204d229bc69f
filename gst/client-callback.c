/* The receiver of the API's batch callbacks (callback-listen). A SoupServer
 * on the client's GMainContext, so its handlers run on the network thread
 * like everything else here. Each batch it is told about gets a secret (128
 * random bits, hex) and the API is asked to call callback-public-url plus
 * "/" plus that secret; the path is the only thing that ties a callback to
 * its batch, and a callback is only ever a hint: the batch is looked at
 * once more with its own GET (client-follow.c), and only what that GET says
 * counts. Meanwhile the batch is polled at poll-max-interval, so a callback
 * that never comes (a firewall, a proxy, a lost request) costs time, never
 * a verdict.
 *
 * What is refused, before any body is read where the headers are enough: a
 * method other than POST (405), a path with no batch behind it (404: a
 * guess, a batch that ended), a body without Content-Length (411) or over
 * 1 MiB (413); then a body that is not the batch's JSON, or names another
 * batch (400). The secret is never logged.
 *
 * It sits below client.c (which starts and stops it) and client-submit.c
 * (which gives each batch its callback URL before its POST), above
 * client-follow.c, whose poll it sends early. */

#include "client-private.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#define CALLBACK_MAX_BODY (1024 * 1024)
#define SECRET_BYTES 16

static gboolean
secret_new (gchar out[SECRET_BYTES * 2 + 1])
{
  guint8 bytes[SECRET_BYTES];
  gsize got = 0;

  while (got < sizeof bytes) {
    gssize n = getrandom (bytes + got, sizeof bytes - got, 0);

    if (n < 0 && errno != EINTR)
      return FALSE;
    if (n > 0)
      got += n;
  }
  for (guint i = 0; i < SECRET_BYTES; i++)
    g_snprintf (out + 2 * i, 3, "%02x", bytes[i]);
  return TRUE;
}

/* The last segment of a request's path: a proxy in front may keep or strip
 * a prefix of callback-public-url. */
static const gchar *
path_secret (const gchar * path)
{
  const gchar *slash = strrchr (path, '/');

  return slash ? slash + 1 : path;
}

static void
refuse (SoupServerMessage * msg, guint status, const gchar * why)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_COPY, why,
      strlen (why));
}

/* After the headers: what can be refused without reading the body. */
static void
receiver_early_handler (SoupServer * server, SoupServerMessage * msg,
    const char *path, GHashTable * query, gpointer user_data)
{
  RdClient *client = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);

  if (strcmp (soup_server_message_get_method (msg), SOUP_METHOD_POST) != 0) {
    soup_message_headers_append (soup_server_message_get_response_headers
        (msg), "Allow", "POST");
    refuse (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "POST only\n");
  } else if (!g_hash_table_contains (client->receiver.jobs, path_secret (path))) {
    client->receiver.refused++;
    refuse (msg, SOUP_STATUS_NOT_FOUND, "no such batch\n");
  } else if (soup_message_headers_get_encoding (headers) !=
      SOUP_ENCODING_CONTENT_LENGTH) {
    client->receiver.refused++;
    refuse (msg, SOUP_STATUS_LENGTH_REQUIRED, "Content-Length required\n");
  } else if (soup_message_headers_get_content_length (headers) >
      CALLBACK_MAX_BODY) {
    client->receiver.refused++;
    refuse (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "body over 1 MiB\n");
  }
}

/* A callback is a hint: look at the batch now. */
static void
job_hint (Job * job)
{
  if (job->phase == JOB_POLLING && job->msg == NULL && job->timer
      && !job->parked) {
    GST_DEBUG ("batch %u: a callback came; looking now", job->batch->index);
    rd_client_clear_timer (&job->timer);
    rd_job_poll (job);
  } else if (job->phase == JOB_POSTING || job->phase == JOB_POLLING) {
    /* the 202 or a poll is on its way: one more look after it */
    job->callback_hint = TRUE;
  }
}

static void
receiver_handler (SoupServer * server, SoupServerMessage * msg,
    const char *path, GHashTable * query, gpointer user_data)
{
  RdClient *client = user_data;
  SoupMessageBody *body;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (RdBatchStatus) status = NULL;
  g_autoptr (GError) error = NULL;
  Job *job;

  if (soup_server_message_get_status (msg) != 0)
    return;                     /* refused early */
  job = g_hash_table_lookup (client->receiver.jobs, path_secret (path));
  if (job == NULL) {
    client->receiver.refused++;
    refuse (msg, SOUP_STATUS_NOT_FOUND, "no such batch\n");
    return;
  }
  body = soup_server_message_get_request_body (msg);
  bytes = soup_message_body_flatten (body);
  status = rd_results_parse_batch (g_bytes_get_data (bytes, NULL),
      g_bytes_get_size (bytes), &error);
  if (status == NULL || (job->batch->uuid
          && g_strcmp0 (status->uuid, job->batch->uuid) != 0)) {
    client->receiver.refused++;
    GST_WARNING ("batch %u: a callback refused: %s", job->batch->index,
        status ? "it names another batch" : error->message);
    refuse (msg, SOUP_STATUS_BAD_REQUEST, "not this batch's status\n");
    return;
  }
  client->receiver.accepted++;
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
      "ok\n", 3);
  GST_INFO ("batch %u: callback (%s)", job->batch->index, status->status);
  job_hint (job);
}

gboolean
rd_client_receiver_start (RdClient * client, GError ** error)
{
  g_autoptr (GSocketAddress) address = NULL;
  g_autofree gchar *host = NULL;
  GSList *uris;
  guint port;
  gboolean ok;

  if (client->receiver.listen == NULL)
    return TRUE;
  if (!rd_listen_address_parse (client->receiver.listen, &host, &port, error))
    return FALSE;
  if (client->receiver.public_url == NULL) {
    g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (host);

    if (g_inet_address_get_is_any (inet)) {
      g_set_error (error, RD_ERROR, RD_ERROR_INVALID, "callback-listen %s "
          "takes every address: set callback-public-url to the URL the API "
          "can call", client->receiver.listen);
      return FALSE;
    }
  }
  address = g_inet_socket_address_new_from_string (host, port);

  /* on the hub's thread, whose context is the thread-default: the
   * server's sources go there */
  client->receiver.server = soup_server_new ("server-header",
      "gst-resembledetect ", NULL);
  soup_server_add_early_handler (client->receiver.server, NULL,
      receiver_early_handler, client, NULL);
  soup_server_add_handler (client->receiver.server, NULL, receiver_handler,
      client, NULL);
  ok = soup_server_listen (client->receiver.server, address, 0, error);
  if (!ok) {
    g_prefix_error (error, "callback-listen %s: ", client->receiver.listen);
    g_clear_object (&client->receiver.server);
    return FALSE;
  }

  uris = soup_server_get_uris (client->receiver.server);
  if (client->receiver.public_url == NULL && uris) {
    g_autofree gchar *text = g_uri_to_string (uris->data);
    gsize len = strlen (text);

    while (len > 0 && text[len - 1] == '/')
      text[--len] = '\0';
    client->receiver.public_url = g_steal_pointer (&text);
  }
  GST_INFO ("callbacks: listening on %s, the API calls %s/<secret>",
      client->receiver.listen, client->receiver.public_url);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  return TRUE;
}

void
rd_client_receiver_stop (RdClient * client)
{
  if (client->receiver.server == NULL)
    return;
  soup_server_disconnect (client->receiver.server);
  g_clear_object (&client->receiver.server);
}

void
rd_job_expect_callback (Job * job)
{
  RdClient *client = job->client;
  RdBatch *batch = job->batch;
  gchar secret[SECRET_BYTES * 2 + 1];

  if (client->receiver.server == NULL)
    return;
  if (job->callback_secret == NULL) {
    if (!secret_new (secret)) {
      GST_WARNING ("batch %u: no random bytes for a callback path; it is "
          "polled", batch->index);
      return;
    }
    job->callback_secret = g_strdup (secret);
    g_hash_table_insert (client->receiver.jobs, job->callback_secret, job);
  }
  g_free (batch->settings.callback_url);
  batch->settings.callback_url = g_strconcat (client->receiver.public_url, "/",
      job->callback_secret, NULL);
}

void
rd_job_resume_callback (Job * job)
{
  RdClient *client = job->client;
  const gchar *url = job->batch->settings.callback_url;
  gsize len;

  if (client->receiver.server == NULL || url == NULL)
    return;
  /* sent by an earlier run to the same public URL: its secret still
   * leads here */
  len = strlen (client->receiver.public_url);
  if (strncmp (url, client->receiver.public_url, len) != 0 || url[len] != '/'
      || strlen (url + len + 1) != SECRET_BYTES * 2)
    return;
  job->callback_secret = g_strdup (url + len + 1);
  g_hash_table_insert (client->receiver.jobs, job->callback_secret, job);
}
