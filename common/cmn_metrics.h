/*
 * cmn_metrics.h - a registry of counters, gauges and histograms rendered in
 * the Prometheus text exposition format (version 0.0.4).
 *
 * A daemon creates one registry at start-up and passes it to the modules
 * that publish metrics; there is no global instance. Modules register their
 * series once and keep the returned handle; updating a handle is a single
 * atomic operation (no lock), so it is cheap enough for hot paths and may be
 * done from any thread. Registration and rendering take the registry's lock.
 *
 * A metric name identifies a family (one # HELP and # TYPE block); each set
 * of label values given at registration is one series of that family:
 *
 *   static const cmn_label create[] = {{"method", "Create"}};
 *   cmn_counter *calls;
 *   cmn_counter_register(reg, "cairn_rpc_calls_total", "RPC calls served.",
 *                        create, 1, &calls);
 *   cmn_counter_inc(calls);
 *
 * Registering a series that already exists with the same name, type, help,
 * label values (and, for histograms, bucket bounds) returns the existing
 * handle, so two callers may share a series; anything that would make the
 * family inconsistent (another type, another help text, other label names)
 * is refused.
 *
 * Thread safety: every function may be called from any thread. Handles stay
 * valid until cmn_metrics_destroy; using one afterwards is undefined.
 */
#ifndef CMN_METRICS_H
#define CMN_METRICS_H

#include "cmn_util.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cmn_metrics cmn_metrics;
typedef struct cmn_counter cmn_counter;
typedef struct cmn_gauge cmn_gauge;
typedef struct cmn_histogram cmn_histogram;

/* One label pair. Names match [a-zA-Z_][a-zA-Z0-9_]* and do not start with
 * "__"; values are any text (escaped when rendered). Both are copied. */
typedef struct cmn_label {
  const char *name;
  const char *value;
} cmn_label;

/* Limits checked at registration (CAIRN_EINVAL beyond them). */
#define CMN_METRICS_MAX_LABELS 8
#define CMN_METRICS_MAX_BUCKETS 64

/* Bucket bounds in seconds for request latencies, 1 ms to 10 s. */
#define CMN_METRICS_LATENCY_NBUCKETS 13
extern const double cmn_metrics_latency_buckets[CMN_METRICS_LATENCY_NBUCKETS];

/* Create an empty registry (*out, destroy with cmn_metrics_destroy).
 * Returns 0 or CAIRN_EINVAL (out is NULL). */
int cmn_metrics_create(cmn_metrics **out);

/* Free the registry and every series; all handles become invalid. No other
 * thread may use the registry or its handles during or after the call.
 * NULL is ignored. */
void cmn_metrics_destroy(cmn_metrics *m);

/* Append the whole registry to `out` in the Prometheus text format 0.0.4,
 * families in registration order, series in registration order. Callback
 * gauges are read now, on the calling thread, with the registry lock held.
 * Values read while other threads update them may be a moment apart (a
 * histogram's _sum and _count, for instance), never torn.
 * Returns 0 or CAIRN_EINVAL (NULL argument). */
int cmn_metrics_render(cmn_metrics *m, cmn_buf *out);

/*
 * Registration. Every register function:
 *   - validates `name` ([a-zA-Z_:][a-zA-Z0-9_:]*), `help` (non-NULL), the
 *     labels (see cmn_label; at most CMN_METRICS_MAX_LABELS, no name twice),
 *   - copies everything it keeps,
 *   - stores a handle in *out, owned by the registry and valid until
 *     cmn_metrics_destroy,
 *   - returns 0, CAIRN_EINVAL for invalid arguments or CAIRN_EEXIST when the
 *     name is taken by a different type, help text or label names (or by an
 *     incompatible series with the same labels). On error nothing changes.
 */
int cmn_counter_register(cmn_metrics *m, const char *name, const char *help,
                         const cmn_label *labels, size_t nlabels, cmn_counter **out);

/* Gauges hold a double. */
int cmn_gauge_register(cmn_metrics *m, const char *name, const char *help,
                       const cmn_label *labels, size_t nlabels, cmn_gauge **out);

/* A gauge whose value is read by calling fn(arg) each time the registry is
 * rendered (e.g. the number of chunks a store holds), so the owner need not
 * push updates. fn runs on the rendering thread with the registry lock held:
 * it must be quick, thread-safe, and must not register metrics in the same
 * registry. fn and arg must stay valid until cmn_metrics_destroy.
 * Registering the same series twice is CAIRN_EEXIST (there is no handle). */
typedef double (*cmn_gauge_fn)(void *arg);
int cmn_gauge_register_fn(cmn_metrics *m, const char *name, const char *help,
                          const cmn_label *labels, size_t nlabels, cmn_gauge_fn fn, void *arg);

/* Histograms count observations into buckets with the given upper bounds
 * (inclusive: a value equal to a bound lands in that bucket). `bounds` has
 * 1..CMN_METRICS_MAX_BUCKETS finite values in strictly increasing order and
 * is copied; the +Inf bucket is implicit. The name "le" is reserved for
 * labels. */
int cmn_histogram_register(cmn_metrics *m, const char *name, const char *help,
                           const cmn_label *labels, size_t nlabels, const double *bounds,
                           size_t nbounds, cmn_histogram **out);

/* Updates: lock-free, any thread. */
void cmn_counter_inc(cmn_counter *c);
void cmn_counter_add(cmn_counter *c, uint64_t n);
uint64_t cmn_counter_get(const cmn_counter *c);

void cmn_gauge_set(cmn_gauge *g, double v);
void cmn_gauge_add(cmn_gauge *g, double delta);
double cmn_gauge_get(const cmn_gauge *g);

/* Record one observation. NaN is ignored (it would poison _sum). */
void cmn_histogram_observe(cmn_histogram *h, double v);
/* Number of observations and their sum so far. */
uint64_t cmn_histogram_count(const cmn_histogram *h);
double cmn_histogram_sum(const cmn_histogram *h);

#endif /* CMN_METRICS_H */
