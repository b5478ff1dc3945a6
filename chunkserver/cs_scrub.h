/*
 * cs_scrub.h - the background scrubber: re-verifies every block of every
 * replica at a configured rate (bytes per second), so silent corruption of
 * idle chunks is found before a reader needs them. A replica that fails is
 * marked corrupt by the store, which tells the heartbeat thread through its
 * notify callback; the master then replaces it.
 *
 * Thread safety: start/stop from main().
 */
#ifndef CS_SCRUB_H
#define CS_SCRUB_H

#include <stdint.h>

#include "cs_server.h"

typedef struct cs_scrub cs_scrub;

typedef struct cs_scrub_stats {
  uint64_t verified;   /* replicas verified good */
  uint64_t bad;        /* replicas found corrupt */
  uint64_t passes;     /* complete walks over the store */
} cs_scrub_stats;

/* Start scrubbing `store` at `rate` bytes per second (0: do nothing; a
 * stopped scrubber is still returned so stop is uniform). */
int cs_scrub_start(cs_store *store, uint64_t rate, cs_scrub **out);
void cs_scrub_stop(cs_scrub *sc);
void cs_scrub_get_stats(cs_scrub *sc, cs_scrub_stats *out);

#endif /* CS_SCRUB_H */
