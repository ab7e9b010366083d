/* Error model of the engine.
 *
 * Every engine function that can fail returns an int status (SN_OK == 0).
 * The human-readable message sits in a per-thread buffer, set by sn_error()
 * at the point of failure; the R glue reads it with sn_last_error() after it
 * has released whatever it holds, then raises the R condition.  The engine
 * never calls abort(), exit() or anything from R. */
#ifndef SN_ERROR_H
#define SN_ERROR_H

#include <stddef.h>

typedef enum {
  SN_OK = 0,
  SN_ERR_ARG,         /* bad argument or parameter */
  SN_ERR_SHAPE,       /* shape mismatch or unknown shape */
  SN_ERR_TYPE,        /* unsupported dtype */
  SN_ERR_OOM,         /* allocation failed */
  SN_ERR_OVERFLOW,    /* size product does not fit */
  SN_ERR_IO,          /* file could not be opened, read or written */
  SN_ERR_FORMAT,      /* malformed file or JSON */
  SN_ERR_UNSUPPORTED, /* op, device or feature not available */
  SN_ERR_DEVICE,      /* GPU runtime error */
  SN_ERR_INTERRUPT,   /* user interrupt observed */
  SN_ERR_INTERNAL
} sn_status;

/* Formats the message into the per-thread buffer and returns status. */
int sn_error(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prepends "context: " to the current message, keeps status. */
int sn_error_context(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *sn_last_error(void);
void sn_clear_error(void);

#define SN_TRY(expr)                 \
  do {                               \
    int sn_try_status_ = (expr);     \
    if (sn_try_status_ != SN_OK)     \
      return sn_try_status_;         \
  } while (0)

#endif
