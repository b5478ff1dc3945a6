/*
 * cmn_log.h - structured logging to stderr.
 *
 * One line per event, written with a single write(2) so lines from several
 * threads never interleave, to stderr so journald (or a test's log file)
 * keeps it:
 *
 *   2026-11-22T02:40:01.123Z info  master rpc: server started addr=127.0.0.1:9000 workers=2
 *
 * The message after the module is "event key=value key=value": callers put
 * the variable parts in key=value fields so the line stays greppable.
 * Values containing spaces should be quoted by the caller (key="a b").
 *
 * Thread safety: every function may be called from any thread;
 * cmn_log_init / cmn_log_set_level are meant for start-up.
 */
#ifndef CMN_LOG_H
#define CMN_LOG_H

typedef enum cmn_log_level {
  CMN_LOG_DEBUG = 0,
  CMN_LOG_INFO = 1,
  CMN_LOG_WARN = 2,
  CMN_LOG_ERROR = 3,
  CMN_LOG_OFF = 4,
} cmn_log_level;

/* Set the process name shown on every line ("master", "chunkserver", ...).
 * The string must outlive logging (a literal). Default "cairn". The level
 * starts at INFO, or at the value of CAIRN_LOG_LEVEL if set. */
void cmn_log_init(const char *process);

void cmn_log_set_level(cmn_log_level level);
cmn_log_level cmn_log_get_level(void);

/* "debug", "info", "warn", "error", "off" -> level; -1 for anything else. */
int cmn_log_level_parse(const char *name);

void cmn_log(cmn_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CMN_DEBUG(mod, ...)                                                              \
  do {                                                                                   \
    if (cmn_log_get_level() <= CMN_LOG_DEBUG) cmn_log(CMN_LOG_DEBUG, mod, __VA_ARGS__); \
  } while (0)
#define CMN_INFO(mod, ...) cmn_log(CMN_LOG_INFO, mod, __VA_ARGS__)
#define CMN_WARN(mod, ...) cmn_log(CMN_LOG_WARN, mod, __VA_ARGS__)
#define CMN_ERROR(mod, ...) cmn_log(CMN_LOG_ERROR, mod, __VA_ARGS__)

#endif /* CMN_LOG_H */
