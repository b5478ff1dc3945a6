/*
 * util.c - small pieces the master's files share.
 */
#include "mst_master.h"

#include "cmn_util.h"

/* Wall-clock milliseconds for everything the master records (mtimes, trash
 * times, lease expiries handed to chunkservers). Never goes backwards within
 * one process even if the system clock is stepped back, so records in the
 * log stay ordered. */
int64_t mst_now_ms(void) {
  static _Atomic int64_t last;
  int64_t now = cmn_wall_ms();
  int64_t prev = atomic_load(&last);
  while (now > prev && !atomic_compare_exchange_weak(&last, &prev, now)) {
  }
  return now > prev ? now : prev;
}
