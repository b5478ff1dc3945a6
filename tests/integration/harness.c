/*
 * harness.c - process and file helpers for the integration tests.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int it_tmpdir(char *out, size_t n, const char *tag) {
  const char *base = getenv("TMPDIR");
  if (!base || !*base) base = "/tmp";
  snprintf(out, n, "%s/cairn-it-%s-XXXXXX", base, tag);
  return mkdtemp(out) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void it_rm_rf(const char *dir) {
  if (dir && *dir) nftw(dir, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

void it_bin(char *out, size_t n, const char *name) {
  const char *dir = getenv("CAIRN_BIN_DIR");
  snprintf(out, n, "%s/%s", dir && *dir ? dir : ".", name);
}

pid_t it_spawn_as(char *const argv[], const char *log, const char *cwd, uid_t uid, gid_t gid) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
  }
  int nul = open("/dev/null", O_RDONLY);
  if (nul >= 0) dup2(nul, 0);
  if (uid != (uid_t)-1 && (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) {
    fprintf(stderr, "cannot switch to uid %ld: %s\n", (long)uid, strerror(errno));
    _exit(126);
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(125); /* the test died before the prctl */
  if (cwd && chdir(cwd) != 0) _exit(124);
  /* Unblock what the test may have blocked. */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execv(argv[0], argv);
  fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

int it_spawn(it_proc *p, char *const argv[]) {
  pid_t pid = it_spawn_as(argv, p->log, NULL, (uid_t)-1, (gid_t)-1);
  if (pid < 0) return -1;
  p->pid = pid;
  return 0;
}

int it_alive(const it_proc *p) {
  if (p->pid <= 0) return 0;
  int st;
  return waitpid(p->pid, &st, WNOHANG) == 0;
}

int it_stop(it_proc *p, int sig, int timeout_ms) {
  if (p->pid <= 0) return -1;
  kill(p->pid, sig);
  int64_t end = now_ms() + timeout_ms;
  int st = -1;
  for (;;) {
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid || r < 0) break;
    if (now_ms() >= end) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &st, 0);
      break;
    }
    usleep(5000);
  }
  p->pid = 0;
  return st;
}

int it_run(char *const argv[], const char *log, int timeout_ms) {
  it_proc p = {0};
  snprintf(p.log, sizeof p.log, "%s", log);
  if (it_spawn(&p, argv) != 0) return -1;
  int64_t end = now_ms() + timeout_ms;
  int st;
  for (;;) {
    pid_t r = waitpid(p.pid, &st, WNOHANG);
    if (r == p.pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (r < 0 || now_ms() >= end) break;
    usleep(5000);
  }
  kill(p.pid, SIGKILL);
  waitpid(p.pid, &st, 0);
  return -1;
}

int it_wait_file(const char *path, const it_proc *p, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (now_ms() < end) {
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > 0) return 0;
    if (p && !it_alive(p)) return -1;
    usleep(10000);
  }
  return -1;
}

int it_read_kv(const char *file, const char *key, char *out, size_t n) {
  FILE *f = fopen(file, "r");
  if (!f) return -1;
  char line[1024];
  size_t klen = strlen(key);
  int rc = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
      line[strcspn(line, "\r\n")] = '\0';
      snprintf(out, n, "%s", line + klen + 1);
      rc = 0;
      break;
    }
  }
  fclose(f);
  return rc;
}

int it_file_contains(const char *file, const char *needle) {
  FILE *f = fopen(file, "r");
  if (!f) return 0;
  char line[4096];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) found = strstr(line, needle) != NULL;
  fclose(f);
  return found;
}

int it_http_get(const char *hostport, const char *path, const char *accept, char *out, size_t n) {
  char host[64];
  const char *colon = strrchr(hostport, ':');
  if (!colon || (size_t)(colon - hostport) >= sizeof host) return -1;
  memcpy(host, hostport, (size_t)(colon - hostport));
  host[colon - hostport] = '\0';
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  char req[1024];
  int len = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: %s\r\nConnection: close\r\n\r\n", path,
                     hostport, accept ? accept : "*/*");
  if (write(fd, req, (size_t)len) != len) {
    close(fd);
    return -1;
  }
  size_t cap = 1 << 20, got = 0;
  char *buf = malloc(cap);
  ssize_t r;
  while (got < cap - 1 && (r = read(fd, buf + got, cap - 1 - got)) > 0) got += (size_t)r;
  close(fd);
  buf[got] = '\0';
  int status = -1;
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) status = -1;
  char *body = strstr(buf, "\r\n\r\n");
  snprintf(out, n, "%s", body ? body + 4 : "");
  free(buf);
  return status;
}
