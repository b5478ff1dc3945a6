/*
 * bg_internal.h - the background state shared by repair.c (clones, watch
 * list, trimming) and background.c (the thread, liveness, garbage
 * collection). Not a public interface: see mst_background.h.
 */
#ifndef BG_INTERNAL_H
#define BG_INTERNAL_H

#include "mst_background.h"
#include "mst_u64map.h"

/* One clone in flight. */
typedef struct bg_clone {
  uint64_t handle;
  uint64_t version;     /* the chunk's version when the clone started */
  uint16_t source;
  uint16_t target;
  uint16_t move_from;   /* rebalancing move: the copy to delete after; else MST_SERVER_NONE */
  int64_t started_ms;
} bg_clone;

/* One chunk on the watch list, looked at again from not_before_ms on. */
typedef struct bg_watch {
  uint64_t handle;
  int64_t not_before_ms;
} bg_watch;

/* Everything here is protected by the master's lock (see mst_background.h). */
struct mst_bg {
  bg_clone *clones;
  size_t nclones, cclones;
  bg_watch *watch;
  size_t nwatch, cwatch;
  mst__u64map watched;        /* handle -> 1 for every chunk on the watch list */
  int64_t repair_not_before;  /* back-off after a round that placed nothing */
  mst_bg_stats st;            /* counters (in-flight figures are computed when read) */
};

#endif /* BG_INTERNAL_H */
