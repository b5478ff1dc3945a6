/*
 * log.c - one formatted line per event, one write(2) per line.
 */
#include "cmn_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *proc_name = "cairn";
static atomic_int cur_level = CMN_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int cmn_log_level_parse(const char *name) {
  for (int i = 0; i <= CMN_LOG_OFF; i++)
    if (strcmp(name, level_names[i]) == 0) return i;
  return -1;
}

void cmn_log_init(const char *process) {
  if (process) proc_name = process;
  const char *env = getenv("CAIRN_LOG_LEVEL");
  if (env) {
    int l = cmn_log_level_parse(env);
    if (l >= 0) atomic_store(&cur_level, l);
  }
}

void cmn_log_set_level(cmn_log_level level) { atomic_store(&cur_level, (int)level); }

cmn_log_level cmn_log_get_level(void) { return (cmn_log_level)atomic_load(&cur_level); }

void cmn_log(cmn_log_level level, const char *module, const char *fmt, ...) {
  if ((int)level < atomic_load(&cur_level) || level >= CMN_LOG_OFF) return;
  char line[2048];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s %s: ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], proc_name, module);
  if (n < 0) return;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof line - 2) len = sizeof line - 2; /* truncated: keep the newline */
  line[len++] = '\n';
  /* One write per line: atomic with respect to other lines for pipe/file
   * sizes well below PIPE_BUF-ish lengths; a failed log write is dropped. */
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}
