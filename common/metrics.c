/*
 * metrics.c - the metrics registry and its Prometheus text rendering.
 *
 * Layout: the registry holds an array of families (one per metric name);
 * each family holds an array of series pointers. Series are allocated one by
 * one and never move, so the handle returned at registration stays valid
 * until the registry is destroyed. Each handle type starts with a struct
 * series header, which is how the family refers to it.
 *
 * Values are C11 atomics updated with relaxed ordering: a scrape needs each
 * number to be whole, not a consistent snapshot across numbers. Doubles are
 * stored as their bit pattern in a 64-bit atomic and updated by
 * compare-and-swap. A histogram keeps per-bucket (not cumulative) counts;
 * its _count is the sum of the buckets at render time, so the +Inf bucket
 * and _count always agree even while observations race with a scrape.
 */
#include "cmn_metrics.h"

#include "cairn_error.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum family_type { FT_COUNTER, FT_GAUGE, FT_HISTOGRAM };
enum series_kind { SK_COUNTER, SK_GAUGE, SK_GAUGE_FN, SK_HISTOGRAM };

static const char *const type_names[] = {"counter", "gauge", "histogram"};

struct series {
  enum series_kind kind;
  char *labels; /* rendered pairs without braces: a="x",b="y"; "" when none */
};

struct cmn_counter {
  struct series s;
  _Atomic uint64_t value;
};

struct cmn_gauge {
  struct series s;
  _Atomic uint64_t bits; /* a double */
};

struct gauge_fn {
  struct series s;
  cmn_gauge_fn fn;
  void *arg;
};

struct cmn_histogram {
  struct series s;
  size_t nbounds;
  double *bounds;
  _Atomic uint64_t *buckets; /* nbounds + 1, the last one is +Inf */
  _Atomic uint64_t sum_bits; /* a double */
};

struct family {
  char *name;
  char *help;
  enum family_type type;
  char *label_names; /* comma-joined, for the consistency check */
  struct series **series;
  size_t nseries, cap;
};

struct cmn_metrics {
  pthread_mutex_t lock;
  struct family **fams;
  size_t nfams, cap;
};

const double cmn_metrics_latency_buckets[CMN_METRICS_LATENCY_NBUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static uint64_t dbits(double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}

static double bitsd(uint64_t u) {
  double v;
  memcpy(&v, &u, sizeof v);
  return v;
}

/* Add to a double held in an atomic word, retrying if another thread
 * changed it between our read and our swap. */
static void atomic_add_double(_Atomic uint64_t *a, double delta) {
  uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(a, &old, dbits(bitsd(old) + delta),
                                                memory_order_relaxed, memory_order_relaxed)) {
  }
}

/* ---- validation and label text ---- */

static int name_valid(const char *s, int allow_colon) {
  if (!s || !*s) return 0;
  for (const char *p = s; *p; p++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
             (allow_colon && c == ':') || (p != s && c >= '0' && c <= '9');
    if (!ok) return 0;
  }
  return 1;
}

/* Check the label set and render it as `a="x",b="y"` (values escaped) into
 * *text and the names as `a,b` into *names; both are new strings. */
static int labels_prepare(const cmn_label *labels, size_t n, int histogram, char **text,
                          char **names) {
  if (n > CMN_METRICS_MAX_LABELS || (n > 0 && !labels)) return CAIRN_EINVAL;
  for (size_t i = 0; i < n; i++) {
    const char *ln = labels[i].name;
    if (!name_valid(ln, 0) || strncmp(ln, "__", 2) == 0 || !labels[i].value) return CAIRN_EINVAL;
    if (histogram && strcmp(ln, "le") == 0) return CAIRN_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(labels[j].name, ln) == 0) return CAIRN_EINVAL;
  }
  cmn_buf t = {0}, nm = {0};
  cmn_buf_append(&t, "", 0);
  cmn_buf_append(&nm, "", 0);
  for (size_t i = 0; i < n; i++) {
    cmn_buf_appendf(&t, "%s%s=\"", i ? "," : "", labels[i].name);
    for (const char *p = labels[i].value; *p; p++) {
      if (*p == '\\') cmn_buf_append(&t, "\\\\", 2);
      else if (*p == '"') cmn_buf_append(&t, "\\\"", 2);
      else if (*p == '\n') cmn_buf_append(&t, "\\n", 2);
      else cmn_buf_append(&t, p, 1);
    }
    cmn_buf_append(&t, "\"", 1);
    cmn_buf_appendf(&nm, "%s%s", i ? "," : "", labels[i].name);
  }
  *text = t.data;
  *names = nm.data;
  return 0;
}

static void series_free(struct series *s) {
  if (!s) return;
  if (s->kind == SK_HISTOGRAM) {
    struct cmn_histogram *h = (struct cmn_histogram *)s;
    free(h->bounds);
    free((void *)h->buckets);
  }
  free(s->labels);
  free(s);
}

static void family_free(struct family *f) {
  for (size_t i = 0; i < f->nseries; i++) series_free(f->series[i]);
  free(f->series);
  free(f->name);
  free(f->help);
  free(f->label_names);
  free(f);
}

/* Whether an existing series can stand for a new registration with the same
 * labels: same kind and, for histograms, the same bounds. Callback gauges
 * never match (two owners cannot both supply the value). */
static int series_compatible(const struct series *a, const struct series *b) {
  if (a->kind != b->kind || a->kind == SK_GAUGE_FN) return 0;
  if (a->kind != SK_HISTOGRAM) return 1;
  const struct cmn_histogram *x = (const void *)a, *y = (const void *)b;
  return x->nbounds == y->nbounds && memcmp(x->bounds, y->bounds, x->nbounds * sizeof(double)) == 0;
}

/*
 * Insert the new series `s` (labels already rendered) under `name`, creating
 * the family if needed. If the family already has a series with the same
 * labels and it is compatible, *out is that series and the caller frees `s`;
 * otherwise *out is `s`, now owned by the registry. On error nothing changes
 * and the caller still owns `s`.
 */
static int insert_series(cmn_metrics *m, const char *name, const char *help,
                         enum family_type type, const char *label_names, struct series *s,
                         struct series **out) {
  int rc = 0;
  struct family *f = NULL;
  pthread_mutex_lock(&m->lock);
  for (size_t i = 0; i < m->nfams; i++)
    if (strcmp(m->fams[i]->name, name) == 0) f = m->fams[i];
  if (f) {
    if (f->type != type || strcmp(f->help, help) != 0 || strcmp(f->label_names, label_names) != 0) {
      rc = CAIRN_EEXIST;
      goto out;
    }
    for (size_t i = 0; i < f->nseries; i++) {
      if (strcmp(f->series[i]->labels, s->labels) != 0) continue;
      if (!series_compatible(f->series[i], s)) {
        rc = CAIRN_EEXIST;
        goto out;
      }
      *out = f->series[i];
      goto out;
    }
  } else {
    f = cmn_calloc(1, sizeof *f);
    f->name = cmn_strdup(name);
    f->help = cmn_strdup(help);
    f->type = type;
    f->label_names = cmn_strdup(label_names);
    if (m->nfams == m->cap) {
      m->cap = m->cap ? m->cap * 2 : 16;
      m->fams = cmn_realloc(m->fams, m->cap * sizeof *m->fams);
    }
    m->fams[m->nfams++] = f;
  }
  if (f->nseries == f->cap) {
    f->cap = f->cap ? f->cap * 2 : 4;
    f->series = cmn_realloc(f->series, f->cap * sizeof *f->series);
  }
  f->series[f->nseries++] = s;
  *out = s;
out:
  pthread_mutex_unlock(&m->lock);
  return rc;
}

/*
 * The common part of every register function: validate, render the labels
 * into the caller-allocated series `s`, insert. On success *out is the
 * series that represents the registration (possibly an existing one, in
 * which case `s` has been freed); on error `s` has been freed.
 */
static int do_register(cmn_metrics *m, const char *name, const char *help, enum family_type type,
                       const cmn_label *labels, size_t nlabels, struct series *s,
                       struct series **out) {
  char *names = NULL;
  int rc = CAIRN_EINVAL;
  if (!m || !name_valid(name, 1) || !help) goto fail;
  rc = labels_prepare(labels, nlabels, type == FT_HISTOGRAM, &s->labels, &names);
  if (rc != 0) goto fail;
  rc = insert_series(m, name, help, type, names, s, out);
  if (rc != 0) goto fail;
  if (*out != s) series_free(s);
  free(names);
  return 0;
fail:
  series_free(s);
  free(names);
  return rc;
}

int cmn_counter_register(cmn_metrics *m, const char *name, const char *help,
                         const cmn_label *labels, size_t nlabels, cmn_counter **out) {
  if (!out) return CAIRN_EINVAL;
  struct cmn_counter *c = cmn_calloc(1, sizeof *c);
  c->s.kind = SK_COUNTER;
  atomic_init(&c->value, 0);
  struct series *got;
  int rc = do_register(m, name, help, FT_COUNTER, labels, nlabels, &c->s, &got);
  if (rc == 0) *out = (cmn_counter *)got;
  return rc;
}

int cmn_gauge_register(cmn_metrics *m, const char *name, const char *help,
                       const cmn_label *labels, size_t nlabels, cmn_gauge **out) {
  if (!out) return CAIRN_EINVAL;
  struct cmn_gauge *g = cmn_calloc(1, sizeof *g);
  g->s.kind = SK_GAUGE;
  atomic_init(&g->bits, dbits(0.0));
  struct series *got;
  int rc = do_register(m, name, help, FT_GAUGE, labels, nlabels, &g->s, &got);
  if (rc == 0) *out = (cmn_gauge *)got;
  return rc;
}

int cmn_gauge_register_fn(cmn_metrics *m, const char *name, const char *help,
                          const cmn_label *labels, size_t nlabels, cmn_gauge_fn fn, void *arg) {
  if (!fn) return CAIRN_EINVAL;
  struct gauge_fn *g = cmn_calloc(1, sizeof *g);
  g->s.kind = SK_GAUGE_FN;
  g->fn = fn;
  g->arg = arg;
  struct series *got;
  return do_register(m, name, help, FT_GAUGE, labels, nlabels, &g->s, &got);
}

int cmn_histogram_register(cmn_metrics *m, const char *name, const char *help,
                           const cmn_label *labels, size_t nlabels, const double *bounds,
                           size_t nbounds, cmn_histogram **out) {
  if (!out || !bounds || nbounds == 0 || nbounds > CMN_METRICS_MAX_BUCKETS) return CAIRN_EINVAL;
  for (size_t i = 0; i < nbounds; i++)
    if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) return CAIRN_EINVAL;
  struct cmn_histogram *h = cmn_calloc(1, sizeof *h);
  h->s.kind = SK_HISTOGRAM;
  h->nbounds = nbounds;
  h->bounds = cmn_malloc(nbounds * sizeof(double));
  memcpy(h->bounds, bounds, nbounds * sizeof(double));
  h->buckets = cmn_calloc(nbounds + 1, sizeof *h->buckets);
  for (size_t i = 0; i <= nbounds; i++) atomic_init(&h->buckets[i], 0);
  atomic_init(&h->sum_bits, dbits(0.0));
  struct series *got;
  int rc = do_register(m, name, help, FT_HISTOGRAM, labels, nlabels, &h->s, &got);
  if (rc == 0) *out = (cmn_histogram *)got;
  return rc;
}

/* ---- updates ---- */

void cmn_counter_inc(cmn_counter *c) { atomic_fetch_add_explicit(&c->value, 1, memory_order_relaxed); }

void cmn_counter_add(cmn_counter *c, uint64_t n) {
  atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t cmn_counter_get(const cmn_counter *c) {
  return atomic_load_explicit((_Atomic uint64_t *)&c->value, memory_order_relaxed);
}

void cmn_gauge_set(cmn_gauge *g, double v) {
  atomic_store_explicit(&g->bits, dbits(v), memory_order_relaxed);
}

void cmn_gauge_add(cmn_gauge *g, double delta) { atomic_add_double(&g->bits, delta); }

double cmn_gauge_get(const cmn_gauge *g) {
  return bitsd(atomic_load_explicit((_Atomic uint64_t *)&g->bits, memory_order_relaxed));
}

/* Bucket i holds values in (bounds[i-1], bounds[i]]; a binary search finds
 * the first bound >= v, or the +Inf bucket past the last bound. */
void cmn_histogram_observe(cmn_histogram *h, double v) {
  if (isnan(v)) return;
  size_t lo = 0, hi = h->nbounds;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v <= h->bounds[mid]) hi = mid;
    else lo = mid + 1;
  }
  atomic_fetch_add_explicit(&h->buckets[lo], 1, memory_order_relaxed);
  atomic_add_double(&h->sum_bits, v);
}

uint64_t cmn_histogram_count(const cmn_histogram *h) {
  uint64_t n = 0;
  for (size_t i = 0; i <= h->nbounds; i++)
    n += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
  return n;
}

double cmn_histogram_sum(const cmn_histogram *h) {
  return bitsd(atomic_load_explicit((_Atomic uint64_t *)&h->sum_bits, memory_order_relaxed));
}

/* ---- registry and rendering ---- */

int cmn_metrics_create(cmn_metrics **out) {
  if (!out) return CAIRN_EINVAL;
  cmn_metrics *m = cmn_calloc(1, sizeof *m);
  pthread_mutex_init(&m->lock, NULL);
  *out = m;
  return 0;
}

void cmn_metrics_destroy(cmn_metrics *m) {
  if (!m) return;
  for (size_t i = 0; i < m->nfams; i++) family_free(m->fams[i]);
  free(m->fams);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

/* A double the way Prometheus reads it: NaN, +Inf, -Inf, else the shortest
 * %g form that reads back to the same value (0.1, not 0.10000000000000001). */
static void fmt_double(char *buf, size_t n, double v) {
  if (isnan(v)) {
    snprintf(buf, n, "NaN");
    return;
  }
  if (isinf(v)) {
    snprintf(buf, n, "%s", v > 0 ? "+Inf" : "-Inf");
    return;
  }
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, n, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) return;
  }
}

/* name{labels} or name{labels,extra} or name, then a space. */
static void put_series_name(cmn_buf *out, const char *name, const char *suffix,
                            const char *labels, const char *extra) {
  cmn_buf_appendf(out, "%s%s", name, suffix);
  if (*labels || extra) {
    cmn_buf_appendf(out, "{%s%s%s}", labels, (*labels && extra) ? "," : "", extra ? extra : "");
  }
  cmn_buf_append(out, " ", 1);
}

static void render_histogram(cmn_buf *out, const char *name, const struct cmn_histogram *h) {
  char num[64], le[80];
  uint64_t cum = 0;
  for (size_t i = 0; i <= h->nbounds; i++) {
    cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    if (i < h->nbounds) {
      fmt_double(num, sizeof num, h->bounds[i]);
      snprintf(le, sizeof le, "le=\"%s\"", num);
    } else {
      snprintf(le, sizeof le, "le=\"+Inf\"");
    }
    put_series_name(out, name, "_bucket", h->s.labels, le);
    cmn_buf_appendf(out, "%" PRIu64 "\n", cum);
  }
  fmt_double(num, sizeof num, cmn_histogram_sum(h));
  put_series_name(out, name, "_sum", h->s.labels, NULL);
  cmn_buf_appendf(out, "%s\n", num);
  put_series_name(out, name, "_count", h->s.labels, NULL);
  cmn_buf_appendf(out, "%" PRIu64 "\n", cum);
}

static void render_family(cmn_buf *out, const struct family *f) {
  cmn_buf_appendf(out, "# HELP %s ", f->name);
  for (const char *p = f->help; *p; p++) {
    if (*p == '\\') cmn_buf_append(out, "\\\\", 2);
    else if (*p == '\n') cmn_buf_append(out, "\\n", 2);
    else cmn_buf_append(out, p, 1);
  }
  cmn_buf_appendf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
  char num[64];
  for (size_t i = 0; i < f->nseries; i++) {
    const struct series *s = f->series[i];
    switch (s->kind) {
    case SK_COUNTER:
      put_series_name(out, f->name, "", s->labels, NULL);
      cmn_buf_appendf(out, "%" PRIu64 "\n", cmn_counter_get((const cmn_counter *)s));
      break;
    case SK_GAUGE:
    case SK_GAUGE_FN:
      if (s->kind == SK_GAUGE) {
        fmt_double(num, sizeof num, cmn_gauge_get((const cmn_gauge *)s));
      } else {
        const struct gauge_fn *g = (const struct gauge_fn *)s;
        fmt_double(num, sizeof num, g->fn(g->arg));
      }
      put_series_name(out, f->name, "", s->labels, NULL);
      cmn_buf_appendf(out, "%s\n", num);
      break;
    case SK_HISTOGRAM:
      render_histogram(out, f->name, (const struct cmn_histogram *)s);
      break;
    }
  }
}

int cmn_metrics_render(cmn_metrics *m, cmn_buf *out) {
  if (!m || !out) return CAIRN_EINVAL;
  pthread_mutex_lock(&m->lock);
  for (size_t i = 0; i < m->nfams; i++) render_family(out, m->fams[i]);
  pthread_mutex_unlock(&m->lock);
  return 0;
}
