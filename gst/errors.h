/* The error domain of the plain modules (settings, batches, manifests,
 * the API's answers): what the API would refuse, what is too large, and
 * what is malformed. At the bottom: everything may use it. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define RD_ERROR (rd_error_quark ())

static inline GQuark
rd_error_quark (void)
{
  return g_quark_from_static_string ("rd-error-quark");
}

typedef enum {
  RD_ERROR_INVALID,             /* what the API would refuse with a 400 */
  RD_ERROR_TOO_LARGE,
  RD_ERROR_FORMAT,              /* a malformed manifest or API answer */
} RdErrorCode;

G_END_DECLS
