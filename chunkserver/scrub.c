/*
 * scrub.c - one thread walking the store with cs_store_scrub_one, pacing
 * itself so the bytes verified per second stay at the configured rate.
 */
#include "cs_scrub.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct cs_scrub {
  cs_store *store;
  uint64_t rate;
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
  cs_scrub_stats st;
};

/* Wait `ms` unless stopped; true when stopping. */
static bool nap(cs_scrub *sc, int64_t ms) {
  struct timespec ts;
  cmn_deadline_in(&ts, ms);
  pthread_mutex_lock(&sc->mu);
  while (!sc->stop && pthread_cond_timedwait(&sc->cv, &sc->mu, &ts) != ETIMEDOUT) {
  }
  bool stop = sc->stop;
  pthread_mutex_unlock(&sc->mu);
  return stop;
}

static void *scrub_main(void *arg) {
  cs_scrub *sc = arg;
  uint64_t cursor = 0;
  for (;;) {
    uint64_t handle = 0;
    int rc = cs_store_scrub_one(sc->store, &cursor, &handle);
    uint64_t bytes = 0;
    cs_store_replica r;
    if (handle && cs_store_info(sc->store, handle, &r) == 0) bytes = r.length;
    pthread_mutex_lock(&sc->mu);
    if (rc == 1) sc->st.verified++;
    else if (rc == 0) sc->st.passes++;
    else if (rc == CAIRN_ECHECKSUM || rc == CAIRN_ECORRUPT) sc->st.bad++;
    pthread_mutex_unlock(&sc->mu);
    if (rc == CAIRN_ECHECKSUM || rc == CAIRN_ECORRUPT)
      CMN_WARN("scrub", "replica failed verification handle=%llu", (unsigned long long)handle);
    /* Pace: the time this replica's bytes are worth at the rate; a pass
     * over an empty store or an error waits a second. */
    int64_t ms = rc == 1 ? (int64_t)(bytes * 1000 / sc->rate) : 1000;
    if (nap(sc, ms < 1 ? 1 : ms)) break;
  }
  return NULL;
}

int cs_scrub_start(cs_store *store, uint64_t rate, cs_scrub **out) {
  cs_scrub *sc = cmn_calloc(1, sizeof *sc);
  sc->store = store;
  sc->rate = rate;
  pthread_mutex_init(&sc->mu, NULL);
  pthread_cond_init(&sc->cv, NULL);
  if (rate > 0) {
    if (pthread_create(&sc->thread, NULL, scrub_main, sc) != 0) {
      cs_scrub_stop(sc);
      return CAIRN_ENOMEM;
    }
    sc->started = true;
  }
  *out = sc;
  return 0;
}

void cs_scrub_stop(cs_scrub *sc) {
  if (!sc) return;
  pthread_mutex_lock(&sc->mu);
  sc->stop = true;
  pthread_cond_broadcast(&sc->cv);
  pthread_mutex_unlock(&sc->mu);
  if (sc->started) pthread_join(sc->thread, NULL);
  pthread_mutex_destroy(&sc->mu);
  pthread_cond_destroy(&sc->cv);
  free(sc);
}

void cs_scrub_get_stats(cs_scrub *sc, cs_scrub_stats *out) {
  pthread_mutex_lock(&sc->mu);
  *out = sc->st;
  pthread_mutex_unlock(&sc->mu);
}
