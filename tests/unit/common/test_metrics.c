/* Unit tests for the metrics registry (common/metrics.c). */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_metrics.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static cmn_metrics *new_registry(void) {
  cmn_metrics *m = NULL;
  assert_int_equal(cmn_metrics_create(&m), 0);
  assert_non_null(m);
  return m;
}

/* Render into a fresh buffer the caller frees. */
static char *render(cmn_metrics *m) {
  cmn_buf b = {0};
  assert_int_equal(cmn_metrics_render(m, &b), 0);
  cmn_buf_append(&b, "", 0);
  return b.data;
}

static double seven(void *arg) { return (double)*(int *)arg; }

static void render_small_registry_exactly(void **state) {
  (void)state;
  cmn_metrics *m = new_registry();
  cmn_counter *req, *create, *read, *again;
  cmn_gauge *temp;
  cmn_histogram *lat;
  static const cmn_label l_create[] = {{"method", "Create"}};
  static const cmn_label l_read[] = {{"method", "Read"}};
  static const double bounds[] = {0.25, 0.5, 1};
  int chunks = 7;

  assert_int_equal(cmn_counter_register(m, "cairn_test_requests_total", "Requests handled.", NULL,
                                        0, &req), 0);
  assert_int_equal(cmn_counter_register(m, "cairn_rpc_calls_total", "RPC calls served.", l_create,
                                        1, &create), 0);
  assert_int_equal(cmn_gauge_register(m, "cairn_test_temperature", "Temperature.", NULL, 0, &temp),
                   0);
  assert_int_equal(cmn_counter_register(m, "cairn_rpc_calls_total", "RPC calls served.", l_read, 1,
                                        &read), 0);
  assert_int_equal(cmn_gauge_register_fn(m, "cairn_test_chunks", "Chunks stored.", NULL, 0, seven,
                                         &chunks), 0);
  assert_int_equal(cmn_histogram_register(m, "cairn_test_latency_seconds", "Latency.", NULL, 0,
                                          bounds, 3, &lat), 0);
  /* The same series again is the same handle. */
  assert_int_equal(cmn_counter_register(m, "cairn_rpc_calls_total", "RPC calls served.", l_create,
                                        1, &again), 0);
  assert_ptr_equal(again, create);

  cmn_counter_add(req, 41);
  cmn_counter_inc(req);
  cmn_counter_add(create, 2);
  cmn_counter_inc(again);
  cmn_counter_inc(read);
  cmn_gauge_set(temp, 21.5);
  cmn_gauge_add(temp, -1.25);
  cmn_histogram_observe(lat, 0.125);
  cmn_histogram_observe(lat, 0.25);
  cmn_histogram_observe(lat, 0.75);
  cmn_histogram_observe(lat, 2);

  assert_int_equal(cmn_counter_get(req), 42);
  assert_int_equal(cmn_counter_get(create), 3);
  assert_true(cmn_gauge_get(temp) == 20.25);
  assert_int_equal(cmn_histogram_count(lat), 4);
  assert_true(cmn_histogram_sum(lat) == 3.125);

  char *text = render(m);
  assert_string_equal(text,
                      "# HELP cairn_test_requests_total Requests handled.\n"
                      "# TYPE cairn_test_requests_total counter\n"
                      "cairn_test_requests_total 42\n"
                      "# HELP cairn_rpc_calls_total RPC calls served.\n"
                      "# TYPE cairn_rpc_calls_total counter\n"
                      "cairn_rpc_calls_total{method=\"Create\"} 3\n"
                      "cairn_rpc_calls_total{method=\"Read\"} 1\n"
                      "# HELP cairn_test_temperature Temperature.\n"
                      "# TYPE cairn_test_temperature gauge\n"
                      "cairn_test_temperature 20.25\n"
                      "# HELP cairn_test_chunks Chunks stored.\n"
                      "# TYPE cairn_test_chunks gauge\n"
                      "cairn_test_chunks 7\n"
                      "# HELP cairn_test_latency_seconds Latency.\n"
                      "# TYPE cairn_test_latency_seconds histogram\n"
                      "cairn_test_latency_seconds_bucket{le=\"0.25\"} 2\n"
                      "cairn_test_latency_seconds_bucket{le=\"0.5\"} 2\n"
                      "cairn_test_latency_seconds_bucket{le=\"1\"} 3\n"
                      "cairn_test_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                      "cairn_test_latency_seconds_sum 3.125\n"
                      "cairn_test_latency_seconds_count 4\n");
  free(text);

  /* Callback gauges are read at render time. */
  chunks = 9;
  text = render(m);
  assert_non_null(strstr(text, "\ncairn_test_chunks 9\n"));
  free(text);
  cmn_metrics_destroy(m);
}

static void gauge_values_and_special_floats(void **state) {
  (void)state;
  cmn_metrics *m = new_registry();
  cmn_gauge *g;
  assert_int_equal(cmn_gauge_register(m, "g", "A gauge.", NULL, 0, &g), 0);
  assert_true(cmn_gauge_get(g) == 0.0);
  cmn_gauge_add(g, -3);
  assert_true(cmn_gauge_get(g) == -3.0);
  cmn_gauge_set(g, 0.1);
  char *text = render(m);
  assert_non_null(strstr(text, "\ng 0.1\n"));
  free(text);
  cmn_gauge_set(g, INFINITY);
  text = render(m);
  assert_non_null(strstr(text, "\ng +Inf\n"));
  free(text);
  cmn_gauge_set(g, NAN);
  text = render(m);
  assert_non_null(strstr(text, "\ng NaN\n"));
  free(text);
  cmn_gauge_set(g, 1e21);
  text = render(m);
  assert_non_null(strstr(text, "\ng 1e+21\n"));
  free(text);
  cmn_metrics_destroy(m);
}

struct hammer {
  cmn_counter *c;
  cmn_gauge *g;
  cmn_histogram *h;
};

#define THREADS 8
#define PER_THREAD 100000

static void *hammer_thread(void *arg) {
  struct hammer *hm = arg;
  for (int i = 0; i < PER_THREAD; i++) {
    cmn_counter_inc(hm->c);
    cmn_gauge_add(hm->g, 1.0);
    cmn_histogram_observe(hm->h, (double)(i % 4));
  }
  return NULL;
}

static void concurrent_updates_are_exact(void **state) {
  (void)state;
  cmn_metrics *m = new_registry();
  struct hammer hm;
  static const double bounds[] = {0, 1, 2};
  assert_int_equal(cmn_counter_register(m, "hits_total", "Hits.", NULL, 0, &hm.c), 0);
  assert_int_equal(cmn_gauge_register(m, "level", "Level.", NULL, 0, &hm.g), 0);
  assert_int_equal(cmn_histogram_register(m, "value", "Values.", NULL, 0, bounds, 3, &hm.h), 0);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &hm), 0);
  /* Scrape while the threads run: rendering must not disturb updates. */
  for (int i = 0; i < 20; i++) free(render(m));
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  assert_int_equal(cmn_counter_get(hm.c), (uint64_t)THREADS * PER_THREAD);
  assert_true(cmn_gauge_get(hm.g) == (double)THREADS * PER_THREAD);
  assert_int_equal(cmn_histogram_count(hm.h), (uint64_t)THREADS * PER_THREAD);
  /* Each thread observes 0,1,2,3 in turn: sum = THREADS * PER_THREAD/4 * 6. */
  assert_true(cmn_histogram_sum(hm.h) == (double)THREADS * (PER_THREAD / 4) * 6);
  char *text = render(m);
  assert_non_null(strstr(text, "\nhits_total 800000\n"));
  assert_non_null(strstr(text, "\nvalue_bucket{le=\"0\"} 200000\n"));
  assert_non_null(strstr(text, "\nvalue_bucket{le=\"2\"} 600000\n"));
  assert_non_null(strstr(text, "\nvalue_bucket{le=\"+Inf\"} 800000\n"));
  assert_non_null(strstr(text, "\nvalue_count 800000\n"));
  free(text);
  cmn_metrics_destroy(m);
}

static double zero_fn(void *arg) {
  (void)arg;
  return 0;
}

static void invalid_registrations_are_refused(void **state) {
  (void)state;
  cmn_metrics *m = new_registry();
  cmn_counter *c = NULL;
  cmn_histogram *h = NULL;
  static const char *const bad_names[] = {"", "1abc", "a-b", "a b", "caf\xc3\xa9", "a.b", "a{b}"};
  for (size_t i = 0; i < CMN_ARRAY_LEN(bad_names); i++)
    assert_int_equal(cmn_counter_register(m, bad_names[i], "x", NULL, 0, &c), CAIRN_EINVAL);
  assert_int_equal(cmn_counter_register(m, NULL, "x", NULL, 0, &c), CAIRN_EINVAL);
  assert_int_equal(cmn_counter_register(m, "ok_name", NULL, NULL, 0, &c), CAIRN_EINVAL);
  assert_int_equal(cmn_counter_register(m, "ok_name", "x", NULL, 0, NULL), CAIRN_EINVAL);
  assert_int_equal(cmn_counter_register(NULL, "ok_name", "x", NULL, 0, &c), CAIRN_EINVAL);
  assert_int_equal(cmn_counter_register(m, "ok_name", "x", NULL, 1, &c), CAIRN_EINVAL);

  static const cmn_label reserved[] = {{"__name", "x"}};
  static const cmn_label digit[] = {{"1a", "x"}};
  static const cmn_label colon[] = {{"a:b", "x"}};
  static const cmn_label dup[] = {{"a", "x"}, {"a", "y"}};
  static const cmn_label nullv[] = {{"a", NULL}};
  static const cmn_label le[] = {{"le", "1"}};
  static const cmn_label many[] = {{"a", ""}, {"b", ""}, {"c", ""}, {"d", ""}, {"e", ""},
                                   {"f", ""}, {"g", ""}, {"h", ""}, {"i", ""}};
  assert_int_equal(cmn_counter_register(m, "ok_name", "x", reserved, 1, &c), CAIRN_EINVAL);
  assert_int_equal(cmn_counter_register(m, "ok_name", "x", digit, 1, &c), CAIRN_EINVAL);
  assert_int_equal(cmn_counter_register(m, "ok_name", "x", colon, 1, &c), CAIRN_EINVAL);
  assert_int_equal(cmn_counter_register(m, "ok_name", "x", dup, 2, &c), CAIRN_EINVAL);
  assert_int_equal(cmn_counter_register(m, "ok_name", "x", nullv, 1, &c), CAIRN_EINVAL);
  assert_int_equal(cmn_counter_register(m, "ok_name", "x", many, 9, &c), CAIRN_EINVAL);

  static const double b_ok[] = {1, 2};
  static const double b_down[] = {2, 1};
  static const double b_same[] = {1, 1};
  const double b_nan[] = {1, NAN};
  const double b_inf[] = {1, INFINITY};
  assert_int_equal(cmn_histogram_register(m, "h", "x", le, 1, b_ok, 2, &h), CAIRN_EINVAL);
  assert_int_equal(cmn_histogram_register(m, "h", "x", NULL, 0, b_down, 2, &h), CAIRN_EINVAL);
  assert_int_equal(cmn_histogram_register(m, "h", "x", NULL, 0, b_same, 2, &h), CAIRN_EINVAL);
  assert_int_equal(cmn_histogram_register(m, "h", "x", NULL, 0, b_nan, 2, &h), CAIRN_EINVAL);
  assert_int_equal(cmn_histogram_register(m, "h", "x", NULL, 0, b_inf, 2, &h), CAIRN_EINVAL);
  assert_int_equal(cmn_histogram_register(m, "h", "x", NULL, 0, b_ok, 0, &h), CAIRN_EINVAL);
  assert_int_equal(cmn_histogram_register(m, "h", "x", NULL, 0, NULL, 2, &h), CAIRN_EINVAL);
  assert_int_equal(cmn_gauge_register_fn(m, "f", "x", NULL, 0, NULL, NULL), CAIRN_EINVAL);

  /* Nothing above registered anything. */
  char *text = render(m);
  assert_string_equal(text, "");
  free(text);

  /* Valid: colons in metric names; then conflicts with it are refused. */
  static const cmn_label a[] = {{"a", "1"}};
  static const cmn_label b[] = {{"b", "1"}};
  cmn_gauge *g;
  assert_int_equal(cmn_counter_register(m, "ns:sub_total", "Help.", a, 1, &c), 0);
  assert_int_equal(cmn_gauge_register(m, "ns:sub_total", "Help.", a, 1, &g), CAIRN_EEXIST);
  assert_int_equal(cmn_counter_register(m, "ns:sub_total", "Other help.", a, 1, &c), CAIRN_EEXIST);
  assert_int_equal(cmn_counter_register(m, "ns:sub_total", "Help.", b, 1, &c), CAIRN_EEXIST);
  assert_int_equal(cmn_counter_register(m, "ns:sub_total", "Help.", NULL, 0, &c), CAIRN_EEXIST);
  assert_int_equal(cmn_gauge_register_fn(m, "f", "x", NULL, 0, zero_fn, NULL), 0);
  assert_int_equal(cmn_gauge_register_fn(m, "f", "x", NULL, 0, zero_fn, NULL), CAIRN_EEXIST);
  assert_int_equal(cmn_gauge_register(m, "f", "x", NULL, 0, &g), CAIRN_EEXIST);
  assert_int_equal(cmn_histogram_register(m, "h", "x", NULL, 0, b_ok, 2, &h), 0);
  assert_int_equal(cmn_histogram_register(m, "h", "x", NULL, 0, b_ok, 1, &h), CAIRN_EEXIST);
  text = render(m);
  assert_non_null(strstr(text, "ns:sub_total{a=\"1\"} 0\n"));
  free(text);
  assert_int_equal(cmn_metrics_render(NULL, NULL), CAIRN_EINVAL);
  cmn_metrics_destroy(m);
  cmn_metrics_destroy(NULL);
}

static void label_values_and_help_are_escaped(void **state) {
  (void)state;
  cmn_metrics *m = new_registry();
  static const cmn_label labels[] = {{"path", "C:\\dir \"x\"\nnext"}, {"empty", ""}};
  static const double bounds[] = {1};
  cmn_counter *c;
  cmn_histogram *h;
  assert_int_equal(cmn_counter_register(m, "odd_total", "Back\\slash and\nnewline \"quoted\".",
                                        labels, 2, &c), 0);
  assert_int_equal(cmn_histogram_register(m, "odd_seconds", "H.", labels, 1, bounds, 1, &h), 0);
  cmn_histogram_observe(h, 0.5);
  char *text = render(m);
  assert_string_equal(text,
                      "# HELP odd_total Back\\\\slash and\\nnewline \"quoted\".\n"
                      "# TYPE odd_total counter\n"
                      "odd_total{path=\"C:\\\\dir \\\"x\\\"\\nnext\",empty=\"\"} 0\n"
                      "# HELP odd_seconds H.\n"
                      "# TYPE odd_seconds histogram\n"
                      "odd_seconds_bucket{path=\"C:\\\\dir \\\"x\\\"\\nnext\",le=\"1\"} 1\n"
                      "odd_seconds_bucket{path=\"C:\\\\dir \\\"x\\\"\\nnext\",le=\"+Inf\"} 1\n"
                      "odd_seconds_sum{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 0.5\n"
                      "odd_seconds_count{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n");
  free(text);
  cmn_metrics_destroy(m);
}

static void histogram_bounds_are_inclusive(void **state) {
  (void)state;
  cmn_metrics *m = new_registry();
  static const double bounds[] = {1, 2, 5};
  cmn_histogram *h;
  assert_int_equal(cmn_histogram_register(m, "edge", "Edges.", NULL, 0, bounds, 3, &h), 0);
  cmn_histogram_observe(h, 1);         /* le=1 */
  cmn_histogram_observe(h, -3);        /* le=1 */
  cmn_histogram_observe(h, 2);         /* le=2 */
  cmn_histogram_observe(h, 2.25);      /* le=5 */
  cmn_histogram_observe(h, 5);         /* le=5 */
  cmn_histogram_observe(h, 5.5);       /* +Inf */
  cmn_histogram_observe(h, NAN);       /* ignored */
  cmn_histogram_observe(h, 1.0 + DBL_EPSILON); /* just above 1: le=2 */
  assert_int_equal(cmn_histogram_count(h), 7);
  char *text = render(m);
  assert_non_null(strstr(text, "edge_bucket{le=\"1\"} 2\n"
                               "edge_bucket{le=\"2\"} 4\n"
                               "edge_bucket{le=\"5\"} 6\n"
                               "edge_bucket{le=\"+Inf\"} 7\n"
                               "edge_sum 13.75\n"
                               "edge_count 7\n"));
  free(text);
  /* The shared latency buckets are valid bounds. */
  cmn_histogram *lat;
  assert_int_equal(cmn_histogram_register(m, "lat_seconds", "L.", NULL, 0,
                                          cmn_metrics_latency_buckets,
                                          CMN_METRICS_LATENCY_NBUCKETS, &lat), 0);
  cmn_histogram_observe(lat, 0.001);
  text = render(m);
  assert_non_null(strstr(text, "lat_seconds_bucket{le=\"0.001\"} 1\n"));
  free(text);
  cmn_metrics_destroy(m);
}

CAIRN_TEST_MAIN(cmocka_unit_test(render_small_registry_exactly),
                cmocka_unit_test(gauge_values_and_special_floats),
                cmocka_unit_test(concurrent_updates_are_exact),
                cmocka_unit_test(invalid_registrations_are_refused),
                cmocka_unit_test(label_values_and_help_are_escaped),
                cmocka_unit_test(histogram_bounds_are_inclusive))
