/*
 * test_tmp.h - temporary directories for tests: one made per case under
 * $TMPDIR (or /tmp), removed with everything in it by the case's teardown.
 * Needs test_main.h (cmocka) and cmn_util.h included first.
 */
#ifndef CAIRN_TEST_TMP_H
#define CAIRN_TEST_TMP_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* A new directory "<TMPDIR>/cairn-<tag>-XXXXXX"; the caller frees the name
 * (cairn_test_rm_rf does). */
static inline char *cairn_test_tmpdir(const char *tag) {
  const char *base = getenv("TMPDIR");
  char *t = cmn_sprintf("%s/cairn-%s-XXXXXX", base && *base ? base : "/tmp", tag);
  assert_non_null(mkdtemp(t));
  return t;
}

static inline int cairn_test_rm_one(const char *p, const struct stat *st, int flag,
                                    struct FTW *f) {
  (void)st;
  (void)flag;
  (void)f;
  remove(p);
  return 0;
}

/* Remove the tree and free its name. NULL is fine. */
static inline void cairn_test_rm_rf(char *dir) {
  if (!dir) return;
  nftw(dir, cairn_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

#endif
