/*
 * main.c - cairn-gateway: read the configuration, start the gateway, write
 * the ready file, serve until SIGINT/SIGTERM, stop.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn_error.h"
#include "cmn_daemon.h"
#include "cmn_log.h"
#include "gw.h"

#define GW_MMAP_THRESHOLD (2 << 20)

/* url= and pid= lines, written atomically once the listener is up. */
static int write_ready(const gw_ctx *gw) {
  if (gw->cfg.ready_file == NULL || gw->cfg.ready_file[0] == '\0') {
    return 0;
  }
  char *text = cmn_sprintf("url=%s://127.0.0.1:%u\nport=%u\npid=%ld\n",
                           gw->cfg.plain_http ? "http" : "https", gw->port, gw->port,
                           (long)getpid());
  int rc = cmn_write_file_atomic(gw->cfg.ready_file, text, strlen(text), 0644);
  free(text);
  return rc;
}

int main(int argc, char **argv) {
  /* Large blocks straight from and back to the system. Left to adjust
   * itself, malloc raises this threshold when such a block is freed: the
   * first password hash (argon2id's 19 MiB by default) went back to the
   * system, every later one stayed resident in the heap for good. */
  mallopt(M_MMAP_THRESHOLD, GW_MMAP_THRESHOLD);
  cmn_log_init("cairn-gateway");
  cmn_daemon_block_signals();
  gw_ctx gw;
  memset(&gw, 0, sizeof gw);
  char err[512] = "";
  char *help = NULL;
  int rc = gw_config_load(&gw.cfg, argc, argv, &help, err, sizeof err);
  if (rc == 1) {
    fputs(help, stdout);
    free(help);
    return 0;
  }
  if (rc < 0) {
    fprintf(stderr, "cairn-gateway: %s\n", err);
    return 2;
  }
  cmn_log_set_level((cmn_log_level)gw.cfg.log_level);
  char *dump = gw_config_dump(&gw.cfg);
  for (char *p = dump; *p; p++) {
    if (*p == '\n') {
      *p = ';';
    } else if (*p == '"') {
      *p = '\'';
    }
  }
  CMN_INFO("main", "starting config=\"%s\"", dump);
  free(dump);
  rc = gw_start(&gw, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "cairn-gateway: %s\n", err);
    CMN_ERROR("main", "start_failed err=\"%s\"", err);
    gw_config_free(&gw.cfg);
    return 1;
  }
  rc = write_ready(&gw);
  if (rc < 0) {
    fprintf(stderr, "cairn-gateway: cannot write the ready file: %s\n", cairn_strerror(rc));
    gw_stop(&gw);
    gw_config_free(&gw.cfg);
    return 1;
  }
  int sig = cmn_daemon_wait_signal();
  CMN_INFO("main", "stopping signal=%d", sig);
  gw_stop(&gw);
  gw_config_free(&gw.cfg);
  CMN_INFO("main", "stopped");
  return 0;
}
