#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SN_ERRBUF 2048
static _Thread_local char sn_errbuf[SN_ERRBUF];

int sn_error(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sn_errbuf, SN_ERRBUF, fmt, ap);
  va_end(ap);
  return status;
}

int sn_error_context(int status, const char *fmt, ...) {
  char prefix[512], old[SN_ERRBUF];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, sn_errbuf, SN_ERRBUF);
  /* prefix, ": ", then as much of the old message as fits */
  size_t lp = strlen(prefix), lo = strlen(old);
  if (lp > SN_ERRBUF - 3) lp = SN_ERRBUF - 3;
  if (lo > SN_ERRBUF - 3 - lp) lo = SN_ERRBUF - 3 - lp;
  memcpy(sn_errbuf, prefix, lp);
  memcpy(sn_errbuf + lp, ": ", 2);
  memcpy(sn_errbuf + lp + 2, old, lo);
  sn_errbuf[lp + 2 + lo] = '\0';
  return status;
}

const char *sn_last_error(void) { return sn_errbuf[0] ? sn_errbuf : "unknown error"; }

void sn_clear_error(void) { sn_errbuf[0] = '\0'; }
