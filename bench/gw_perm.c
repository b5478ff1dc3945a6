/*
 * gw_perm.c - permission checks per second of the gateway's perm.c on one
 * thread, against a running cluster's PostgreSQL: the cached path (the
 * answer comes from gw->perm_cache) and the uncached one (the cache is
 * emptied before each check, so each check is one SQL query). Prints one
 * "name value" line per figure; bench/gateway.sh creates the document and
 * the users over HTTP and pins this program to one core.
 *
 *   CAIRN_PG="<libpq conninfo>" bench_gw_perm DOC_ID OWNER_ID OTHER_ID [SECONDS]
 *
 * OWNER_ID owns DOC_ID; OTHER_ID must have no access to it. Both answers
 * are checked first, through the database and through the cache, so a
 * figure is only printed for checks that give the right answer.
 * Exit status: 0, 1 on a failed check or database error, 2 on bad usage.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_daemon.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "gw.h"

#define PERM_ALL (GW_PERM_READ | GW_PERM_WRITE | GW_PERM_OWNER)
#define CACHE_CAPACITY 1024
#define CACHE_TTL_MS 10000
#define CLOCK_EVERY 256 /* cached checks between two looks at the clock */

/* A whole decimal user id (> 0); 0 for anything else. */
static int64_t parse_id(const char *s) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v <= 0) {
    return 0;
  }
  return (int64_t)v;
}

/* One check that must give `want` bits. 0, CAIRN_EINVAL (with a message)
 * when the answer is wrong, or the database error. */
static int expect(gw_ctx *gw, int64_t user, const char *doc, unsigned want, const char *what) {
  unsigned bits = 0;
  int rc = gw_perm_document(gw, user, doc, &bits);
  if (rc < 0) {
    fprintf(stderr, "bench_gw_perm: %s: %s\n", what, cairn_strerror(rc));
    return rc;
  }
  if (bits != want) {
    fprintf(stderr, "bench_gw_perm: %s: user %lld has bits 0x%x on %s, expected 0x%x\n", what,
            (long long)user, bits, doc, want);
    return CAIRN_EINVAL;
  }
  return 0;
}

/* The owner's and the outsider's answers, uncached then cached. */
static int verify(gw_ctx *gw, const char *doc, int64_t owner, int64_t other) {
  int rc;
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 0) {
      gw_perm_changed(gw);
    }
    const char *what = pass == 0 ? "database check" : "cached check";
    if ((rc = expect(gw, owner, doc, PERM_ALL, what)) < 0 ||
        (rc = expect(gw, other, doc, 0, what)) < 0) {
      return rc;
    }
  }
  return 0;
}

/* Checks per second of `user` on `doc` for `ms` milliseconds; with
 * `uncached` the cache is emptied before each check. 0 with *rate, or
 * the first error. */
static int measure(gw_ctx *gw, const char *doc, int64_t user, int uncached, int64_t ms,
                   double *rate) {
  uint64_t n = 0;
  int64_t t0 = cmn_mono_ns(), t = t0, end = t0 + ms * 1000000;
  unsigned bits;
  while (t < end) {
    for (int i = 0; i < (uncached ? 1 : CLOCK_EVERY); i++) {
      if (uncached) {
        gw_perm_changed(gw);
      }
      int rc = gw_perm_document(gw, user, doc, &bits);
      if (rc < 0) {
        fprintf(stderr, "bench_gw_perm: check %llu: %s\n", (unsigned long long)n,
                cairn_strerror(rc));
        return rc;
      }
      if (bits != PERM_ALL) {
        fprintf(stderr, "bench_gw_perm: check %llu: bits 0x%x\n", (unsigned long long)n, bits);
        return CAIRN_EINVAL;
      }
      n++;
    }
    t = cmn_mono_ns();
  }
  *rate = (double)n * 1e9 / (double)(t - t0);
  return 0;
}

/* Set up a gateway context with only what perm.c uses (the database pool
 * and the permission cache), verify the answers, measure both paths. */
static int run(const char *conninfo, const char *doc, int64_t owner, int64_t other,
               int64_t ms) {
  gw_ctx gw;
  memset(&gw, 0, sizeof gw);
  gw.cfg.cache_ttl_ms = CACHE_TTL_MS;
  double cached = 0, db = 0;
  int rc = gw_db_open(conninfo, 1, 5000, &gw.db);
  if (rc < 0) {
    fprintf(stderr, "bench_gw_perm: cannot use CAIRN_PG: %s\n", cairn_strerror(rc));
    goto fail;
  }
  rc = gw_cache_new(CACHE_CAPACITY, gw.cfg.cache_ttl_ms, &gw.perm_cache);
  if (rc < 0) {
    fprintf(stderr, "bench_gw_perm: cache: %s\n", cairn_strerror(rc));
    goto fail;
  }
  if ((rc = verify(&gw, doc, owner, other)) < 0) {
    goto fail;
  }
  /* Warm the connection and the server's plan cache before timing. */
  if ((rc = measure(&gw, doc, owner, 1, 200, &db)) < 0 ||
      (rc = measure(&gw, doc, owner, 0, ms, &cached)) < 0 ||
      (rc = measure(&gw, doc, owner, 1, ms, &db)) < 0) {
    goto fail;
  }
  printf("gw_perm_checks_per_s_cached %.0f\n", cached);
  printf("gw_perm_checks_per_s_db %.0f\n", db);
  rc = 0;
fail:
  gw_cache_free(gw.perm_cache);
  gw_db_close(gw.db);
  return rc;
}

int main(int argc, char **argv) {
  cmn_log_init("bench_gw_perm");
  const char *conninfo = getenv("CAIRN_PG");
  if (argc < 4 || argc > 5 || conninfo == NULL || *conninfo == '\0') {
    fprintf(stderr, "usage: CAIRN_PG=<conninfo> bench_gw_perm DOC_ID OWNER_ID OTHER_ID "
                    "[SECONDS]\n");
    return 2;
  }
  int64_t owner = parse_id(argv[2]), other = parse_id(argv[3]);
  int64_t secs = argc == 5 ? parse_id(argv[4]) : 3;
  if (!cmn_uuid_valid(argv[1]) || owner == 0 || other == 0 || owner == other || secs == 0 ||
      secs > 600) {
    fprintf(stderr, "bench_gw_perm: need a document UUID, two different user ids and "
                    "1..600 seconds\n");
    return 2;
  }
  return run(conninfo, argv[1], owner, other, secs * 1000) < 0 ? 1 : 0;
}
