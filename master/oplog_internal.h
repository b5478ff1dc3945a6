/*
 * oplog_internal.h - what oplog.c (appending) and oplog_recover.c (recovery)
 * share: the on-disk constants and the hand-over of a recovered log.
 * Not a public interface; the format itself is described in mst_oplog.h.
 */
#ifndef MST_OPLOG_INTERNAL_H
#define MST_OPLOG_INTERNAL_H

#include "mst_oplog.h"

#include <stddef.h>
#include <stdint.h>

#define MST_OPLOG__MAGIC "CAIRNLOG"
#define MST_OPLOG__VERSION 1u
#define MST_OPLOG__HDR_SIZE 32u   /* segment header */
#define MST_OPLOG__FRAME_SIZE 16u /* record framing before the payload */
#define MST_OPLOG__PREFIX "oplog"

/* A recovered log, ready for appending. Owned by the caller of
 * mst_oplog__recover, which takes over `fd` and `segs` (free with free()). */
typedef struct mst_oplog__state {
  int fd;             /* current segment, opened O_WRONLY | O_APPEND */
  uint64_t seg_first; /* first LSN of the current segment */
  uint64_t next_lsn;  /* LSN the next append gets */
  uint64_t *segs;     /* first LSN of every segment, ascending; last = current */
  size_t nsegs;
} mst_oplog__state;

/* Recovery as described at mst_oplog_open. On failure nothing is handed over
 * (st->fd is -1, st->segs NULL). Called by mst_oplog_open only. */
int mst_oplog__recover(const char *dir, size_t max_record, uint64_t after_lsn,
                       mst_oplog_replay_fn replay, void *arg, mst_oplog__state *st, char *err,
                       size_t errlen);

/* "<dir>/oplog.<16 hex>" (caller frees). */
char *mst_oplog__segment_path(const char *dir, uint64_t first_lsn);

/* Create segment `first_lsn` durably (temp file, header, fsync, rename,
 * directory fsync) and return it open O_WRONLY | O_APPEND in *fd.
 * 0, CAIRN_EIO, CAIRN_ENOSPC or CAIRN_EPERM; nothing is left behind on failure. */
int mst_oplog__segment_create(const char *dir, uint64_t first_lsn, int *fd);

/* CRC of a record: crc32c over the 8 lsn bytes (LE) followed by the payload.
 * In a frame these bytes are contiguous (offset 8 to the end). */
uint32_t mst_oplog__frame_crc(const unsigned char *lsn_and_payload, size_t payload_len);

#endif /* MST_OPLOG_INTERNAL_H */
