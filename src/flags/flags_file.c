/* src/flags/flags_file.c: the file source: a Flipper export file re-read when it changed.
 *
 * Why: the default flag source (flags.file) needs no server. How: a poll stats the file and
 * compares inode, size, mtime and ctime with what it read last, so an unchanged file costs one
 * stat(2); a changed one is read (bounded by FLAGS_FILE_MAX) and parsed by flags_json.c.
 */
#include "flags/flags_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int flags_open_file(struct flags_file *ff, const char *path, char *err, size_t errlen) {
    memset(ff, 0, sizeof *ff);
    if (!(ff->path = strdup(path))) { base_errf(err, errlen, "flags: out of memory"); return -1; }
    return 0;
}

void flags_close_file(struct flags_file *ff) {
    free(ff->path);
    memset(ff, 0, sizeof *ff);
}

static bool same_stat(const struct flags_file *ff, const struct stat *st) {
    return ff->loaded && ff->dev == st->st_dev && ff->ino == st->st_ino && ff->size == st->st_size &&
           ff->mtime.tv_sec == st->st_mtim.tv_sec && ff->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           ff->ctime.tv_sec == st->st_ctim.tv_sec && ff->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

int flags_poll_file(struct flags_file *ff, struct flags_set **out, char *err, size_t errlen) {
    struct stat st;
    *out = NULL;
    if (stat(ff->path, &st) < 0) {
        base_errf(err, errlen, "flags: cannot stat %s: %s", ff->path, strerror(errno));
        return -1;
    }
    if (same_stat(ff, &st)) return 0;

    int fd = open(ff->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        base_errf(err, errlen, "flags: cannot open %s: %s", ff->path, strerror(errno));
        return -1;
    }
    /* identity of what is actually read: the file may have been replaced since stat() */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > FLAGS_FILE_MAX) {
        base_errf(err, errlen, "flags: %s: not a regular file of at most %u bytes", ff->path, FLAGS_FILE_MAX);
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) { close(fd); base_errf(err, errlen, "flags: out of memory"); return -1; }
    for (;;) {
        if (len == cap) {      /* grew while we read: still bounded */
            if (cap > FLAGS_FILE_MAX) break;
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            base_errf(err, errlen, "flags: cannot read %s: %s", ff->path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    char perr[256];
    struct flags_set *s = flags_parse_export(buf, len, perr, sizeof perr);
    free(buf);
    if (!s) {
        base_errf(err, errlen, "%s (in %s)", perr, ff->path);
        return -1;
    }
    ff->loaded = true;
    ff->dev = st.st_dev;
    ff->ino = st.st_ino;
    ff->size = st.st_size;
    ff->mtime = st.st_mtim;
    ff->ctime = st.st_ctim;
    *out = s;
    return 1;
}

/* ---- as a struct flags_source ------------------------------------------------------------ */

static int file_source_poll(void *impl, struct flags_set **out, char *err, size_t errlen) {
    return flags_poll_file(impl, out, err, errlen);
}

static void file_source_close(void *impl) {
    flags_close_file(impl);
    free(impl);
}

int flags_file_source(const char *path, struct flags_source *out, char *err, size_t errlen) {
    struct flags_file *ff = malloc(sizeof *ff);
    if (!ff) return base_errf(err, errlen, "flags: out of memory");
    if (flags_open_file(ff, path, err, errlen) != 0) {
        free(ff);
        return -1;
    }
    *out = (struct flags_source){.impl = ff, .poll = file_source_poll, .close = file_source_close};
    return 0;
}
