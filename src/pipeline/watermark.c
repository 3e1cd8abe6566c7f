/* src/pipeline/watermark.c: per partition, the offset below which every record taken is
 * settled (engine.h): what the batch engine stores for commit.
 *
 * Why. Records no longer settle in the order they arrive: a skipped record settles at once,
 * a purchase only when its write batch is persisted. Committing the highest settled offset
 * would lose the purchases before it on a crash; committing the contiguous watermark never
 * does (at least once).
 *
 * How. Per partition a ring of the offsets taken and not yet released, in increasing order,
 * each with a settled bit. Settling finds its record by binary search; then the settled
 * records at the head leave the ring, and the partition's watermark becomes the last one's
 * offset + 1, marked as advanced for the next watermark_take. Offsets may have gaps
 * (compaction, transaction markers): only the records taken count. A few partitions per
 * consumer: a linear list of them.
 */
#include "pipeline/engine.h"

#include <stdlib.h>
#include <string.h>

struct part {
    int32_t partition;
    int64_t *off;
    unsigned char *done;
    size_t head, len, cap;         /* ring of cap slots, len used from head */
    int64_t mark;                  /* next offset to read, once advanced */
    bool advanced;
};

struct watermark {
    struct part *p;
    size_t np, cap;
    size_t tracked;
};

struct watermark *watermark_new(void) { return calloc(1, sizeof(struct watermark)); }

static void part_clear(struct part *p) {
    free(p->off);
    free(p->done);
}

void watermark_free(struct watermark *w) {
    if (!w) return;
    for (size_t i = 0; i < w->np; i++) part_clear(&w->p[i]);
    free(w->p);
    free(w);
}

static struct part *find(struct watermark *w, int32_t partition) {
    for (size_t i = 0; i < w->np; i++)
        if (w->p[i].partition == partition) return &w->p[i];
    return NULL;
}

static struct part *find_or_add(struct watermark *w, int32_t partition) {
    struct part *p = find(w, partition);
    if (p) return p;
    if (w->np == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 8;
        struct part *np = realloc(w->p, cap * sizeof *np);
        if (!np) return NULL;
        w->p = np;
        w->cap = cap;
    }
    p = &w->p[w->np++];
    memset(p, 0, sizeof *p);
    p->partition = partition;
    return p;
}

static size_t slot(const struct part *p, size_t i) { return (p->head + i) % p->cap; }

/* Doubles the ring, unrolled from its head. */
static int grow(struct part *p) {
    size_t cap = p->cap ? 2 * p->cap : 64;
    int64_t *off = malloc(cap * sizeof *off);
    unsigned char *done = malloc(cap);
    if (!off || !done) {
        free(off);
        free(done);
        return -1;
    }
    for (size_t i = 0; i < p->len; i++) {
        off[i] = p->off[slot(p, i)];
        done[i] = p->done[slot(p, i)];
    }
    part_clear(p);
    p->off = off;
    p->done = done;
    p->head = 0;
    p->cap = cap;
    return 0;
}

static void forget(struct watermark *w, struct part *p) {
    w->tracked -= p->len;
    p->len = 0;
    p->head = 0;
}

int watermark_track(struct watermark *w, int32_t partition, int64_t offset) {
    struct part *p = find_or_add(w, partition);
    if (!p) return -1;
    if (p->len && p->off[slot(p, p->len - 1)] >= offset) forget(w, p);  /* sought back */
    if (p->len == p->cap && grow(p) != 0) return -1;
    p->off[slot(p, p->len)] = offset;
    p->done[slot(p, p->len)] = 0;
    p->len++;
    w->tracked++;
    return 0;
}

/* The ring index of offset, or -1. */
static long search(const struct part *p, int64_t offset) {
    size_t lo = 0, hi = p->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t o = p->off[slot(p, mid)];
        if (o == offset) return (long)mid;
        if (o < offset) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

void watermark_settle(struct watermark *w, int32_t partition, int64_t offset) {
    struct part *p = find(w, partition);
    long i = p ? search(p, offset) : -1;
    if (i < 0) return;
    p->done[slot(p, (size_t)i)] = 1;
    while (p->len && p->done[p->head]) {
        p->mark = p->off[p->head] + 1;
        p->advanced = true;
        p->head = (p->head + 1) % p->cap;
        p->len--;
        w->tracked--;
    }
}

void watermark_drop(struct watermark *w, int32_t partition) {
    struct part *p = find(w, partition);
    if (!p) return;
    forget(w, p);
    part_clear(p);
    *p = w->p[--w->np];
}

size_t watermark_tracked(const struct watermark *w) { return w->tracked; }

size_t watermark_take(struct watermark *w, struct engine_offset *out, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < w->np && n < cap; i++) {
        if (!w->p[i].advanced) continue;
        out[n++] = (struct engine_offset){w->p[i].partition, w->p[i].mark};
        w->p[i].advanced = false;
    }
    return n;
}
