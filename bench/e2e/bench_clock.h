/* bench/e2e/bench_clock.h: the two clocks the benchmark's C programs time with (ceiling.c,
 * kafka_read.c): monotonic wall seconds and the process's own CPU seconds. Header-only
 * (static inline): the programs are single files built by bench/e2e/ceiling.mk. */
#ifndef CGW_BENCH_CLOCK_H
#define CGW_BENCH_CLOCK_H

#include <sys/resource.h>
#include <time.h>

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

#endif
