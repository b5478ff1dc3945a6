/*
 * cli_admin.c - the administration commands of `cairn`: status (servers,
 * space, replication), fsck (health as an exit code and a JSON object for
 * monitoring) and drain (empty a chunkserver before taking it out).
 */
#include "cli.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <string.h>

/* "12s ago" from a heartbeat time (ms since the epoch); "-" when never. */
static void fmt_age(int64_t when_ms, int64_t now_ms, char *buf, size_t n) {
  if (when_ms <= 0) {
    snprintf(buf, n, "-");
    return;
  }
  int64_t age = now_ms > when_ms ? (now_ms - when_ms) / 1000 : 0;
  if (age < 120) snprintf(buf, n, "%llds ago", (long long)age);
  else if (age < 7200) snprintf(buf, n, "%lldm ago", (long long)(age / 60));
  else snprintf(buf, n, "%lldh ago", (long long)(age / 3600));
}

static size_t count_state(const cairn_cluster_status *s, const char *state) {
  size_t n = 0;
  for (size_t i = 0; i < s->nservers; i++)
    if (strcmp(s->servers[i].state, state) == 0) n++;
  return n;
}

static int used_pct(uint64_t capacity, uint64_t free_bytes) {
  if (capacity == 0 || free_bytes >= capacity) return 0;
  return (int)((double)(capacity - free_bytes) * 100.0 / (double)capacity + 0.5);
}

static void print_counters(const cairn_cluster_status *s) {
  printf("replication: %llu under-replicated, %llu missing, %llu corrupt; repair queue %llu, "
         "clones in flight %llu\n",
         (unsigned long long)s->under_replicated, (unsigned long long)s->missing,
         (unsigned long long)s->corrupt, (unsigned long long)s->repair_queue,
         (unsigned long long)s->clones_in_flight);
}

/* The human form of `status`: summary lines, then one row per server. */
static void print_status(const cairn_cluster_status *s) {
  char cap[32], used[32], fr[32];
  cli_fmt_size(s->capacity, cap, sizeof cap);
  cli_fmt_size(s->capacity > s->free ? s->capacity - s->free : 0, used, sizeof used);
  cli_fmt_size(s->free, fr, sizeof fr);
  printf("cluster:     %s\n", s->cluster_id[0] ? s->cluster_id : "-");
  printf("servers:     %zu (%zu alive, %zu dead, %zu draining)\n", s->nservers,
         count_state(s, "alive"), count_state(s, "dead"), count_state(s, "draining"));
  printf("space:       %s used of %s (%d%%), %s free\n", used, cap,
         used_pct(s->capacity, s->free), fr);
  printf("namespace:   %llu files, %llu directories, %llu chunks\n",
         (unsigned long long)s->files, (unsigned long long)s->directories,
         (unsigned long long)s->chunks);
  print_counters(s);
  printf("health:      %s\n", cli_fsck_healthy(s) ? "healthy" : "NOT HEALTHY");
  if (s->nservers == 0) return;
  printf("\n%-36s  %-9s %-8s %-21s %10s %10s %5s %7s  %s\n", "ID", "STATE", "ZONE", "ADDRESS",
         "CAPACITY", "FREE", "USED", "CHUNKS", "HEARTBEAT");
  int64_t now = cmn_wall_ms();
  for (size_t i = 0; i < s->nservers; i++) {
    const cairn_server_status *v = &s->servers[i];
    char age[32], pct[8];
    cli_fmt_size(v->capacity, cap, sizeof cap);
    cli_fmt_size(v->free, fr, sizeof fr);
    fmt_age(v->last_heartbeat_ms, now, age, sizeof age);
    snprintf(pct, sizeof pct, "%d%%", used_pct(v->capacity, v->free));
    printf("%-36s  %-9s %-8s %-21s %10s %10s %5s %7u  %s\n", v->id, v->state,
           v->zone[0] ? v->zone : "-", v->data_addr[0] ? v->data_addr : "-", cap, fr, pct,
           v->chunks, age);
  }
}

/* Fetch the cluster status, or report the failure; returns an exit code. */
static int get_status(cli_ctx *x, cairn_cluster_status *s) {
  memset(s, 0, sizeof *s);
  int rc = cli_connect(x);
  if (rc != CLI_EXIT_OK) return rc;
  rc = cairn_cluster_status_get(x->c, s);
  return rc == 0 ? CLI_EXIT_OK : cli_fail(x, rc, "%s", x->cmd);
}

int cli_cmd_status(cli_ctx *x) {
  cairn_cluster_status s;
  int code = get_status(x, &s);
  if (code != CLI_EXIT_OK) return code;
  if (x->o->json) code = cli_print_json(cli_json_status(&s));
  else print_status(&s);
  cairn_cluster_status_free(&s);
  return code;
}

/*
 * Health for scripts and monitoring: exit 0 when nothing is missing,
 * corrupt or under-replicated, else 1 (the output says what is wrong).
 */
int cli_cmd_fsck(cli_ctx *x) {
  cairn_cluster_status s;
  int code = get_status(x, &s);
  if (code != CLI_EXIT_OK) return code;
  int healthy = cli_fsck_healthy(&s);
  if (x->o->json) {
    code = cli_print_json(cli_json_fsck(&s));
  } else {
    printf("namespace:   %llu files, %llu directories, %llu chunks\n",
           (unsigned long long)s.files, (unsigned long long)s.directories,
           (unsigned long long)s.chunks);
    printf("servers:     %zu alive of %zu\n", count_state(&s, "alive"), s.nservers);
    print_counters(&s);
    printf("%s\n", healthy ? "HEALTHY" : "NOT HEALTHY");
  }
  cairn_cluster_status_free(&s);
  if (code != CLI_EXIT_OK) return code;
  return healthy ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cli_cmd_drain(cli_ctx *x) {
  const char *id = x->pos[0];
  if (!id[0]) return cli_usage(x->cmd, "empty server id (see 'cairn status')");
  int rc = cli_connect(x);
  if (rc != CLI_EXIT_OK) return rc;
  rc = cairn_drain(x->c, id, x->o->cancel);
  if (rc != 0) {
    int code = cli_fail(x, rc, "drain %s", id);
    if (rc == CAIRN_ENOENT) fprintf(stderr, "cairn: hint: 'cairn status' lists the server ids\n");
    return code;
  }
  if (x->o->json) {
    json_t *doc = json_object();
    json_object_set_new(doc, "server_id", json_string(id));
    json_object_set_new(doc, "draining", json_boolean(!x->o->cancel));
    return cli_print_json(doc);
  }
  if (!x->o->quiet) {
    if (x->o->cancel) printf("%s: drain cancelled; it takes new replicas again\n", id);
    else printf("%s: draining; watch 'cairn status' until its chunk count is 0\n", id);
  }
  return CLI_EXIT_OK;
}
