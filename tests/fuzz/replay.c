/* tests/fuzz/replay.c: a main() that replays a fuzz target's committed corpus once, without
 * libFuzzer, so `make check` runs every target over its seeds and regression cases in seconds.
 *
 * Why. The libFuzzer build needs clang and its own build of the library (minutes); the seeds
 * and the regression case of every past finding only need to run through the target's
 * LLVMFuzzerTestOneInput under the sanitizers. The Makefile links each tests/fuzz/<name>.c
 * with this file and the ASan build's library into build/asan/tests/fuzz/<name>_test, with
 * FUZZ_CORPUS set to tests/fuzz/<name>; scripts/run-tests runs it like a unit test.
 * How: every regular file of the corpus directory (or of the paths given as arguments) is read
 * whole and passed once; a broken promise traps and a sanitizer report aborts, so the binary
 * dies before its summary line and the runner counts a failure. An empty corpus is a failure.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_CORPUS
#error "FUZZ_CORPUS (the corpus directory) must be defined"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        if (f) fclose(f);
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);     /* exactly n bytes: ASan sees any over-read */
    if (!buf || fread(buf, 1, n, f) != n) {
        fclose(f);
        free(buf);
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

/* Replays path (a file, or every regular file of a directory); the count, or -1. */
static long replay_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) { fprintf(stderr, "cannot read %s\n", path); return -1; }
    if (!S_ISDIR(st.st_mode)) return replay_file(path) == 0 ? 1 : -1;
    DIR *d = opendir(path);
    struct dirent *e;
    long n = 0;
    char p[4096];
    while (d && (e = readdir(d))) {
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if (e->d_name[0] == '.' || stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (replay_file(p) != 0) { n = -1; break; }
        n++;
    }
    if (d) closedir(d);
    return d ? n : -1;
}

int main(int argc, char **argv) {
    const char *name = strrchr(FUZZ_CORPUS, '/') ? strrchr(FUZZ_CORPUS, '/') + 1 : FUZZ_CORPUS;
    char **paths = argc > 1 ? argv + 1 : (char *[]){ (char *)FUZZ_CORPUS };
    int npaths = argc > 1 ? argc - 1 : 1;
    long total = 0;
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 0; i < npaths; i++) {
        long n = replay_path(paths[i]);
        if (n < 0) { total = -1; break; }
        total += n;
    }
    if (total <= 0) {
        printf("FAIL %s_corpus: %s\n# 0 passed, 1 failed\n", name, total < 0 ? "unreadable input" : "empty corpus");
        return 1;
    }
    printf("ok %s_corpus (%ld inputs replayed)\n# 1 passed, 0 failed\n", name, total);
    return 0;
}
