/*
 * cli_progress.c - the one-line progress meter of `cairn put` and `get`:
 * label, bar, percentage, bytes, rate and ETA, redrawn in place at most
 * ten times a second from the library's progress callback.
 *
 * The clock is passed in by the caller so the throttling and the rate
 * arithmetic can be tested without sleeping.
 */
#include "cli_util.h"

#include <string.h>

/* Nothing is shown for transfers that finish this quickly: no flicker. */
#define START_DELAY_MS 200
/* The rate is re-sampled at most this often and smoothed, so the ETA does
 * not jump with every callback. */
#define SAMPLE_MS 250
#define SMOOTH 0.3

void cli_progress_init(cli_progress *p, FILE *out, bool enabled, int width, const char *label,
                       int64_t now_ms) {
  memset(p, 0, sizeof *p);
  p->out = out;
  p->enabled = enabled && out != NULL;
  p->width = width > 0 ? width : 80;
  p->label = label ? label : "";
  p->start_ms = now_ms;
  p->last_draw_ms = -1;
  p->last_sample_ms = now_ms;
  p->rate = -1;
}

/* The smoothed rate, or the average since the start before the first sample. */
static double current_rate(const cli_progress *p, uint64_t done, int64_t now_ms) {
  if (p->rate >= 0) return p->rate;
  if (now_ms <= p->start_ms) return -1;
  return (double)done * 1000.0 / (double)(now_ms - p->start_ms);
}

static void draw(cli_progress *p, uint64_t done, uint64_t total, double rate) {
  char line[512];
  cli_progress_render(line, sizeof line, p->width, p->label, done, total, rate);
  fprintf(p->out, "\r%s\x1b[K", line);
  fflush(p->out);
  p->drawn = true;
}

int cli_progress_update(cli_progress *p, uint64_t done, uint64_t total, int64_t now_ms) {
  if (!p->enabled) return 0;
  if (done < p->last_done) { /* the transfer restarted: sample afresh */
    p->last_done = done;
    p->last_sample_ms = now_ms;
  }
  int64_t dt = now_ms - p->last_sample_ms;
  if (dt >= SAMPLE_MS) {
    double inst = (double)(done - p->last_done) * 1000.0 / (double)dt;
    p->rate = p->rate < 0 ? inst : (1 - SMOOTH) * p->rate + SMOOTH * inst;
    p->last_done = done;
    p->last_sample_ms = now_ms;
  }
  if (now_ms - p->start_ms < START_DELAY_MS) return 0;
  if (p->last_draw_ms >= 0 && now_ms - p->last_draw_ms < CLI_PROGRESS_INTERVAL_MS) return 0;
  draw(p, done, total, current_rate(p, done, now_ms));
  p->last_draw_ms = now_ms;
  return 1;
}

void cli_progress_finish(cli_progress *p, uint64_t done, uint64_t total, int64_t now_ms) {
  if (!p->enabled || !p->drawn) return;
  /* The final line shows the average over the whole transfer. */
  double avg = now_ms > p->start_ms ? (double)done * 1000.0 / (double)(now_ms - p->start_ms) : -1;
  draw(p, done, total ? total : done, avg);
  fputc('\n', p->out);
  fflush(p->out);
  p->drawn = false;
}

void cli_progress_clear(cli_progress *p) {
  if (!p->enabled || !p->drawn) return;
  fputs("\r\x1b[K", p->out);
  fflush(p->out);
  p->drawn = false;
}

/*
 * Lay out one line in at most width-1 columns (writing into the last column
 * makes some terminals wrap): the numbers always fit first, the bar only
 * when there is room for a useful one, and a long label is cut.
 */
void cli_progress_render(char *buf, size_t n, int width, const char *label, uint64_t done,
                         uint64_t total, double rate) {
  char d[32], t[32], r[32], e[16], tail[160], bar[64];
  size_t max = width > 21 ? (size_t)width - 1 : 20;
  if (n == 0) return;
  if (!label) label = "";
  cli_fmt_size(done, d, sizeof d);
  cli_fmt_rate(rate, r, sizeof r);
  bar[0] = '\0';
  if (total) {
    int pct = done >= total ? 100 : (int)((double)done * 100.0 / (double)total);
    int64_t eta = done >= total ? 0 : rate > 0 ? (int64_t)((double)(total - done) / rate + 0.5) : -1;
    cli_fmt_size(total, t, sizeof t);
    cli_fmt_eta(eta, e, sizeof e);
    snprintf(tail, sizeof tail, "  %3d%%  %s / %s  %s  ETA %s", pct, d, t, r, e);
  } else {
    snprintf(tail, sizeof tail, "  %s  %s", d, r);
  }
  size_t tl = strlen(tail), ll = strlen(label);
  if (ll + tl > max) ll = max > tl ? max - tl : 0;
  size_t room = max - ll - tl; /* >= 0 by the line above, unless tail alone is too long */
  if (ll + tl > max) room = 0;
  if (total && room >= 2 + 2 + 10) {
    size_t w = room - 4 > 30 ? 30 : room - 4;
    size_t fill = done >= total ? w : (size_t)((double)w * (double)done / (double)total);
    bar[0] = ' ';
    bar[1] = ' ';
    bar[2] = '[';
    for (size_t i = 0; i < w; i++) bar[3 + i] = i < fill ? '#' : '-';
    bar[3 + w] = ']';
    bar[4 + w] = '\0';
  }
  snprintf(buf, n, "%.*s%s%s", (int)ll, label, bar, tail);
  if (strlen(buf) > max) buf[max] = '\0';
}
