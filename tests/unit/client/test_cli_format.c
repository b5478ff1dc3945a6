/*
 * Unit tests for what the `cairn` tool shows people (client/cli_util.c,
 * client/cli_progress.c): sizes, rates, ETAs, times, and the progress
 * meter's layout and redraw throttling (driven by a fake clock).
 */
#include "test_main.h"

#include "cli_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void sizes(void **state) {
  (void)state;
  struct {
    uint64_t v;
    const char *s;
  } c[] = {
      {0, "0 B"},
      {1023, "1023 B"},
      {1024, "1.00 KiB"},
      {1536, "1.50 KiB"},
      {5u << 20, "5.00 MiB"},
      {(25u << 20) / 2, "12.5 MiB"},
      {123ull << 30, "123 GiB"},
      {(10ull << 20) - 1, "10.0 MiB"},
      {UINT64_MAX, "16.0 EiB"},
  };
  char buf[32];
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    cli_fmt_size(c[i].v, buf, sizeof buf);
    assert_string_equal(buf, c[i].s);
  }
  char tiny[4];
  cli_fmt_size(5u << 20, tiny, sizeof tiny);
  assert_string_equal(tiny, "5.0");
}

static void rates(void **state) {
  (void)state;
  char buf[32];
  cli_fmt_rate(0, buf, sizeof buf);
  assert_string_equal(buf, "0 B/s");
  cli_fmt_rate(1.5 * 1024 * 1024, buf, sizeof buf);
  assert_string_equal(buf, "1.50 MiB/s");
  cli_fmt_rate(-1, buf, sizeof buf);
  assert_string_equal(buf, "-- B/s");
  cli_fmt_rate(NAN, buf, sizeof buf);
  assert_string_equal(buf, "-- B/s");
  cli_fmt_rate(INFINITY, buf, sizeof buf);
  assert_string_equal(buf, "-- B/s");
}

static void etas(void **state) {
  (void)state;
  struct {
    int64_t v;
    const char *s;
  } c[] = {{0, "0:00"},        {7, "0:07"},      {754, "12:34"}, {3723, "1:02:03"},
           {-1, "--:--"},      {360000, "--:--"}, {359999, "99:59:59"}};
  char buf[16];
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    cli_fmt_eta(c[i].v, buf, sizeof buf);
    assert_string_equal(buf, c[i].s);
  }
}

static void times(void **state) {
  (void)state;
  char buf[40];
  cli_fmt_time(1714564803000, buf, sizeof buf);
  assert_string_equal(buf, "2024-05-01T12:00:03Z");
  cli_fmt_time(0, buf, sizeof buf);
  assert_string_equal(buf, "-");
  cli_fmt_time(-5, buf, sizeof buf);
  assert_string_equal(buf, "-");
}

static void render_known_total(void **state) {
  (void)state;
  char line[512];
  cli_progress_render(line, sizeof line, 120, "put big.iso", 45u << 20, 100u << 20,
                      10.0 * (1 << 20));
  assert_non_null(strstr(line, "put big.iso"));
  assert_non_null(strstr(line, " 45%"));
  assert_non_null(strstr(line, "45.0 MiB / 100 MiB"));
  assert_non_null(strstr(line, "10.0 MiB/s"));
  assert_non_null(strstr(line, "ETA 0:06")); /* 55 MiB at 10 MiB/s, rounded */
  assert_non_null(strchr(line, '['));
  /* Never wider than the terminal minus one column, at any width. */
  for (int w = 1; w <= 200; w++) {
    cli_progress_render(line, sizeof line, w, "put a-rather-long-file-name.tar.gz", 45u << 20,
                        100u << 20, 1e6);
    size_t max = w > 21 ? (size_t)w - 1 : 20;
    assert_true(strlen(line) <= max);
  }
}

static void render_unknown_total(void **state) {
  (void)state;
  char line[512];
  cli_progress_render(line, sizeof line, 100, "put stdin", 3u << 20, 0, -1);
  assert_non_null(strstr(line, "3.00 MiB"));
  assert_non_null(strstr(line, "-- B/s"));
  assert_null(strchr(line, '%'));
  assert_null(strstr(line, "ETA"));
  assert_null(strchr(line, '['));
  cli_progress_render(line, sizeof line, 100, "get x", 10, 10, 0);
  assert_non_null(strstr(line, "100%"));
  assert_non_null(strstr(line, "ETA 0:00"));
}

static size_t count_char(const char *s, size_t n, char ch) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += s[i] == ch;
  return k;
}

/* Callbacks every millisecond for 2 s: nothing in the first 200 ms, then at
 * most one redraw per 100 ms, and a final line with a newline. */
static void throttled_to_ten_per_second(void **state) {
  (void)state;
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  assert_non_null(f);
  cli_progress p;
  cli_progress_init(&p, f, true, 100, "get x", 1000);
  int draws = 0;
  for (int64_t t = 1000; t <= 3000; t++) {
    uint64_t done = (uint64_t)(t - 1000) * 1024; /* 1 KiB per ms: 1000 KiB/s */
    int d = cli_progress_update(&p, done, 2048u * 1024, t);
    if (t < 1200) assert_int_equal(d, 0);
    draws += d;
  }
  assert_true(draws >= 17 && draws <= 19);
  cli_progress_finish(&p, 2048u * 1024, 2048u * 1024, 3000);
  fclose(f);
  assert_int_equal(count_char(out, len, '\r'), (size_t)draws + 1);
  assert_int_equal(out[len - 1], '\n');
  assert_non_null(strstr(out, "1000 KiB/s")); /* smoothed rate of a steady stream */
  free(out);
}

static void quiet_when_disabled_or_fast(void **state) {
  (void)state;
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  cli_progress p;
  cli_progress_init(&p, f, false, 80, "put x", 0);
  for (int64_t t = 0; t < 2000; t += 10) assert_int_equal(cli_progress_update(&p, 1, 2, t), 0);
  cli_progress_finish(&p, 2, 2, 2000);
  cli_progress_clear(&p);
  /* Enabled, but finished within the start delay: nothing drawn at all. */
  cli_progress_init(&p, f, true, 80, "put x", 0);
  for (int64_t t = 0; t < 150; t += 10) assert_int_equal(cli_progress_update(&p, 1, 2, t), 0);
  cli_progress_finish(&p, 2, 2, 150);
  fclose(f);
  assert_int_equal(len, 0);
  free(out);
}

static void clear_wipes_the_line(void **state) {
  (void)state;
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  cli_progress p;
  cli_progress_init(&p, f, true, 80, "put x", 0);
  assert_int_equal(cli_progress_update(&p, 10, 100, 500), 1);
  cli_progress_clear(&p);
  cli_progress_finish(&p, 10, 100, 600); /* nothing left to finish */
  fclose(f);
  assert_true(len > 4);
  assert_string_equal(out + len - 4, "\r\x1b[K");
  free(out);
}

CAIRN_TEST_MAIN(cmocka_unit_test(sizes), cmocka_unit_test(rates), cmocka_unit_test(etas),
                cmocka_unit_test(times), cmocka_unit_test(render_known_total),
                cmocka_unit_test(render_unknown_total),
                cmocka_unit_test(throttled_to_ten_per_second),
                cmocka_unit_test(quiet_when_disabled_or_fast),
                cmocka_unit_test(clear_wipes_the_line))
