/*
 * Unit tests for the JSON documents of `cairn ... --json`
 * (client/cli_json.c): field names and types scripts rely on, the fsck
 * health rule, and that what is printed parses back.
 */
#include "test_main.h"

#include "cli_util.h"

#include <stdlib.h>
#include <string.h>

static void assert_int_field(json_t *o, const char *key, json_int_t want) {
  json_t *v = json_object_get(o, key);
  if (!v) fail_msg("missing field %s", key);
  assert_true(json_is_integer(v));
  assert_int_equal(json_integer_value(v), want);
}

static void assert_str_field(json_t *o, const char *key, const char *want) {
  json_t *v = json_object_get(o, key);
  if (!v) fail_msg("missing field %s", key);
  assert_true(json_is_string(v));
  assert_string_equal(json_string_value(v), want);
}

static void stat_of_file_and_dir(void **state) {
  (void)state;
  cairn_stat st = {.id = 42, .type = CAIRN_TYPE_FILE, .size = 5u << 20, .mtime_ms = 1714564803000,
                   .goal = 3, .chunks = 5};
  json_t *o = cli_json_stat("/photos/a.jpg", &st);
  assert_str_field(o, "path", "/photos/a.jpg");
  assert_str_field(o, "name", "a.jpg");
  assert_str_field(o, "type", "file");
  assert_str_field(o, "mtime", "2024-05-01T12:00:03Z");
  assert_int_field(o, "id", 42);
  assert_int_field(o, "size", 5 << 20);
  assert_int_field(o, "chunks", 5);
  assert_int_field(o, "goal", 3);
  assert_int_field(o, "mtime_ms", 1714564803000);
  assert_null(json_object_get(o, "trashed_ms"));
  json_decref(o);

  cairn_stat d = {.id = 7, .type = CAIRN_TYPE_DIR, .goal = 2, .trashed_ms = 99};
  o = cli_json_stat("/", &d);
  assert_str_field(o, "type", "dir");
  assert_str_field(o, "name", "");
  assert_int_field(o, "trashed_ms", 99);
  assert_str_field(o, "mtime", "-");
  json_decref(o);
}

static void big_values_clamped(void **state) {
  (void)state;
  cairn_stat st = {.type = CAIRN_TYPE_FILE, .size = UINT64_MAX};
  json_t *o = cli_json_stat("/x", &st);
  assert_int_field(o, "size", INT64_MAX);
  json_decref(o);
}

static cairn_server_status servers[3] = {
    {.id = "a", .data_addr = "127.0.0.1:8080", .zone = "z1", .state = "alive",
     .capacity = 1000, .free = 400, .chunks = 10, .last_heartbeat_ms = 5},
    {.id = "b", .zone = "z2", .state = "dead", .capacity = 1000, .free = 1000},
    {.id = "c", .zone = "z3", .state = "draining", .capacity = 500, .free = 600},
};

static cairn_cluster_status sample(void) {
  cairn_cluster_status s = {.cluster_id = "cid", .files = 10, .directories = 3, .chunks = 42,
                            .repair_queue = 1, .clones_in_flight = 2, .capacity = 2500,
                            .free = 2000, .nservers = 3, .servers = servers};
  return s;
}

static void status_document(void **state) {
  (void)state;
  cairn_cluster_status s = sample();
  json_t *o = cli_json_status(&s);
  assert_str_field(o, "cluster_id", "cid");
  assert_int_field(o, "files", 10);
  assert_int_field(o, "directories", 3);
  assert_int_field(o, "chunks", 42);
  assert_int_field(o, "used", 500);
  assert_true(json_is_true(json_object_get(o, "healthy")));
  json_t *arr = json_object_get(o, "servers");
  assert_true(json_is_array(arr));
  assert_int_equal(json_array_size(arr), 3);
  json_t *a = json_array_get(arr, 0);
  assert_str_field(a, "id", "a");
  assert_str_field(a, "state", "alive");
  assert_str_field(a, "zone", "z1");
  assert_str_field(a, "data_addr", "127.0.0.1:8080");
  assert_int_field(a, "used", 600);
  assert_int_field(a, "chunks", 10);
  assert_int_field(a, "last_heartbeat_ms", 5);
  assert_int_field(json_array_get(arr, 2), "used", 0); /* free > capacity: not negative */
  json_decref(o);
}

static void fsck_document_and_health(void **state) {
  (void)state;
  cairn_cluster_status s = sample();
  json_t *o = cli_json_fsck(&s);
  const char *fields[] = {"files", "chunks", "under_replicated", "missing", "corrupt"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    assert_true(json_is_integer(json_object_get(o, fields[i])));
  assert_int_field(o, "servers", 3);
  assert_int_field(o, "servers_alive", 1);
  assert_int_field(o, "servers_dead", 1);
  assert_int_field(o, "servers_draining", 1);
  assert_true(json_is_true(json_object_get(o, "healthy")));
  assert_int_equal(cli_fsck_healthy(&s), 1);
  json_decref(o);

  uint64_t *bad[] = {&s.under_replicated, &s.missing, &s.corrupt};
  for (size_t i = 0; i < 3; i++) {
    s = sample();
    *bad[i] = 1; /* s is reset above; the pointers still point into it */
    assert_int_equal(cli_fsck_healthy(&s), 0);
    o = cli_json_fsck(&s);
    assert_true(json_is_false(json_object_get(o, "healthy")));
    json_decref(o);
  }
  /* Repairs in flight alone do not make a cluster unhealthy. */
  s = sample();
  s.repair_queue = 9;
  assert_int_equal(cli_fsck_healthy(&s), 1);
}

static void printed_json_parses_back(void **state) {
  (void)state;
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  cairn_cluster_status s = sample();
  assert_int_equal(cli_json_print(f, cli_json_fsck(&s)), 0);
  fclose(f);
  assert_int_equal(out[len - 1], '\n');
  json_error_t e;
  json_t *back = json_loads(out, 0, &e);
  assert_non_null(back);
  assert_int_field(back, "chunks", 42);
  json_decref(back);
  free(out);
}

CAIRN_TEST_MAIN(cmocka_unit_test(stat_of_file_and_dir), cmocka_unit_test(big_values_clamped),
                cmocka_unit_test(status_document), cmocka_unit_test(fsck_document_and_health),
                cmocka_unit_test(printed_json_parses_back))
