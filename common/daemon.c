/*
 * daemon.c - signals, data-directory lock, UUIDs and the start-up table.
 */
#include "cmn_daemon.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static void term_set(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGHUP);
}

void cmn_daemon_block_signals(void) {
  sigset_t set;
  term_set(&set);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
}

int cmn_daemon_wait_signal(void) {
  sigset_t set;
  term_set(&set);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

int cmn_daemon_lock_dir(const char *dir) {
  char *path = cmn_sprintf("%s/LOCK", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  free(path);
  if (fd < 0) return cmn_errno_to_cairn(errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    return err == EWOULDBLOCK ? CAIRN_EBUSY : cmn_errno_to_cairn(err);
  }
  return fd;
}

int cmn_uuid_v4(char out[37]) {
  unsigned char b[16];
  int rc = cmn_random_bytes(b, sizeof b);
  if (rc != 0) return rc;
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
  return 0;
}

int cmn_uuid_valid(const char *s) {
  if (strlen(s) != 36) return 0;
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return 0;
    } else if (!isxdigit((unsigned char)s[i])) {
      return 0;
    }
  }
  return 1;
}

int cmn_daemon_start_all(const cmn_daemon_module *modules, size_t n, void *ctx) {
  for (size_t i = 0; i < n; i++) {
    int rc = modules[i].start(ctx);
    if (rc != 0) {
      CMN_ERROR("daemon", "start failed module=%s error=%s (%s)", modules[i].name,
                cairn_err_name(rc), cairn_strerror(rc));
      cmn_daemon_stop_all(modules, i, ctx);
      return rc;
    }
    CMN_DEBUG("daemon", "started module=%s", modules[i].name);
  }
  return 0;
}

void cmn_daemon_stop_all(const cmn_daemon_module *modules, size_t n, void *ctx) {
  for (size_t i = n; i-- > 0;) {
    if (modules[i].stop) modules[i].stop(ctx);
    CMN_DEBUG("daemon", "stopped module=%s", modules[i].name);
  }
}
