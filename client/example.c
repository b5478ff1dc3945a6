/*
 * example.c - the smallest program using libcairn: connect, write a file,
 * read it back, print its size.
 *
 *   cc example.c $(pkg-config --cflags --libs cairn) -o example
 *   CAIRN_MASTER=127.0.0.1:9000 CAIRN_SECRET_FILE=/etc/cairn/secret ./example /hello.txt
 */
#include <cairn.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what, int rc) {
  fprintf(stderr, "%s: %s\n", what, cairn_strerror(rc));
  return 1;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "/example/hello.txt";
  const char text[] = "hello from libcairn\n";

  cairn_options o;
  cairn_options_init(&o); /* master and secret from $CAIRN_MASTER, $CAIRN_SECRET_FILE */
  cairn_client *c;
  int rc = cairn_connect(&o, &c);
  if (rc != 0) return fail("connect", rc);

  cairn_file *f;
  rc = cairn_open(c, path, CAIRN_O_READ | CAIRN_O_WRITE | CAIRN_O_CREATE | CAIRN_O_PARENTS, &f);
  if (rc != 0) {
    cairn_disconnect(c);
    return fail("open", rc);
  }
  int64_t n = cairn_pwrite(f, text, strlen(text), 0);
  char back[sizeof text] = {0};
  if (n >= 0) n = cairn_pread(f, back, sizeof back - 1, 0);
  cairn_stat st;
  rc = n < 0 ? (int)n : cairn_fstat(f, &st);
  cairn_close(f);
  cairn_disconnect(c);
  if (rc != 0) return fail("write/read", rc);
  printf("%s: %llu bytes: %s", path, (unsigned long long)st.size, back);
  return strcmp(back, text) == 0 ? 0 : 1;
}
