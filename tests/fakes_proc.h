/* tests/fakes_proc.h: runs the project's Python fakes (tools/fakes.py: FIDO, Retailer, Flipper,
 * schema registry) for an integration test, and talks to their test hooks.
 *
 * fakes_start() starts one tools/fakes.py process serving the listed services, each on a free
 * loopback port, with the venv python (CGW_PYTHON overrides it; else `bash scripts/pyenv`), and
 * waits until the fakes wrote their pidfile. The process is stopped (SIGTERM) by fakes_stop()
 * or at exit, so a failed case still stops it. A test then finds a service by name:
 * fakes_port(), fakes_url(); and drives it through the hooks: fakes_control() posts switches
 * to POST /_control (CGW_FAKES_ACCESS_LOG=<file> keeps the fakes' access log there),
 * fakes_stats() counts requests from GET /_stats, fakes_hook() is any other
 * hook call. Every failure is a CHECK failure of the calling case (tests/test.h).
 *
 * Header-only; include it after test.h in one test file. The struct fakes_proc must live as
 * long as the process (a static), since the exit handler stops it. Tests run from the
 * repository root (scripts/run-tests does).
 *
 *     static struct fakes_proc fakes;
 *     fakes_start(&fakes, "fido,retailer", NULL);
 *     fakes_control(&fakes, "fido", "{\"outage\":true}");
 *     long n = fakes_stats(&fakes, "fido", "POST /v1/products:batchGet", NULL);
 */
#ifndef CGW_FAKES_PROC_H
#define CGW_FAKES_PROC_H

#include "test.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAKES_MAX_SERVICES 4

struct fakes_proc {
    pid_t pid;                                  /* 0 while not running */
    int count;                                  /* services started */
    char service[FAKES_MAX_SERVICES][16];       /* their names, as in --services */
    int port[FAKES_MAX_SERVICES];               /* and ports, same order */
    char pidfile[128];
};

/* A loopback port nothing listens on (bound once, then released); -1 on error. */
static inline int fakes_free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0) {
        if (s >= 0) close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}

/* The venv python: CGW_PYTHON, else what `bash scripts/pyenv` prints; NULL if neither. */
static inline const char *fakes_python(void) {
    static char python[512];
    if (python[0]) return python;
    const char *env = getenv("CGW_PYTHON");
    if (env && *env) {
        snprintf(python, sizeof python, "%s", env);
        return python;
    }
    FILE *p = popen("bash scripts/pyenv 2>/dev/null", "r");
    if (!p) return NULL;
    if (!fgets(python, sizeof python, p)) python[0] = '\0';
    pclose(p);
    python[strcspn(python, "\n")] = '\0';
    return python[0] ? python : NULL;
}

/* Stops the fakes (SIGTERM, then reaps them) and removes the pidfile; no-op if not running. */
static inline void fakes_stop(struct fakes_proc *f) {
    if (f->pid <= 0) return;
    kill(f->pid, SIGTERM);
    waitpid(f->pid, NULL, 0);
    f->pid = 0;
    unlink(f->pidfile);
}

/* Every struct fakes_proc ever started, stopped at exit. */
static struct fakes_proc *fakes_started_[4];

static inline void fakes_stop_all_(void) {
    for (size_t i = 0; i < sizeof fakes_started_ / sizeof *fakes_started_; i++)
        if (fakes_started_[i]) fakes_stop(fakes_started_[i]);
}

static inline void fakes_remember_(struct fakes_proc *f) {
    static int registered;
    size_t i, n = sizeof fakes_started_ / sizeof *fakes_started_;
    for (i = 0; i < n && fakes_started_[i] && fakes_started_[i] != f; i++) {}
    CHECKF(i < n, "more than %zu struct fakes_proc", n);
    fakes_started_[i] = f;
    if (!registered) registered = atexit(fakes_stop_all_) == 0;
}

/* Starts tools/fakes.py serving `services` (comma-separated, e.g. "fido,retailer"), each on a
 * free port, with extra_args (NULL-terminated; NULL for none) added to its command line, and
 * waits up to 15 s for it to be ready. Does nothing if f is already running. */
static inline void fakes_start(struct fakes_proc *f, const char *services,
                               const char *const *extra_args) {
    if (f->pid > 0) return;
    CHECKF(access("tools/fakes.py", R_OK) == 0, "run from the repository root (tools/fakes.py)");
    const char *py = fakes_python();
    CHECKF(py, "no python: set CGW_PYTHON or make scripts/pyenv work");

    static int started;
    const char *argv[64];
    char flag[FAKES_MAX_SERVICES][32], port[FAKES_MAX_SERVICES][16];
    int argc = 0;
    argv[argc++] = py;
    argv[argc++] = "tools/fakes.py";
    argv[argc++] = "--services";
    argv[argc++] = services;
    f->count = 0;
    for (const char *s = services; *s;) {
        size_t len = strcspn(s, ",");
        int i = f->count;
        CHECKF(i < FAKES_MAX_SERVICES && len > 0 && len < sizeof f->service[i],
               "bad services list '%s'", services);
        memcpy(f->service[i], s, len);
        f->service[i][len] = '\0';
        f->port[i] = fakes_free_port();
        CHECK(f->port[i] > 0);
        snprintf(flag[i], sizeof flag[i], "--%s-port", f->service[i]);
        snprintf(port[i], sizeof port[i], "%d", f->port[i]);
        argv[argc++] = flag[i];
        argv[argc++] = port[i];
        f->count++;
        s += len + (s[len] == ',');
    }
    snprintf(f->pidfile, sizeof f->pidfile, "/tmp/cgw-fakes-%d-%d.pid", (int)getpid(),
             started++);
    unlink(f->pidfile);
    argv[argc++] = "--pidfile";
    argv[argc++] = f->pidfile;
    argv[argc++] = "--access-log";
    argv[argc++] = getenv("CGW_FAKES_ACCESS_LOG") ? getenv("CGW_FAKES_ACCESS_LOG") : "/dev/null";
    for (size_t i = 0; extra_args && extra_args[i]; i++) {
        CHECKF(argc < (int)(sizeof argv / sizeof *argv) - 1, "too many arguments for fakes.py");
        argv[argc++] = extra_args[i];
    }
    argv[argc] = NULL;

    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execv(py, (char *const *)argv);
        _exit(127);
    }
    f->pid = pid;
    fakes_remember_(f);
    for (int i = 0; i < 300 && access(f->pidfile, R_OK) != 0; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            f->pid = 0;
            CHECKF(0, "fakes (%s) exited early (status %d)", services, st);
        }
        usleep(50 * 1000);
    }
    CHECKF(access(f->pidfile, R_OK) == 0, "fakes did not write %s within 15 s", f->pidfile);
}

/* The port of a started service. */
static inline int fakes_port(const struct fakes_proc *f, const char *service) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->service[i], service) == 0) return f->port[i];
    CHECKF(0, "the fakes do not serve '%s'", service);
    return -1;
}

/* "http://127.0.0.1:<port of service><path>" into buf; returns buf. */
static inline char *fakes_url(const struct fakes_proc *f, const char *service, const char *path,
                              char *buf, size_t len) {
    int n = snprintf(buf, len, "http://127.0.0.1:%d%s", fakes_port(f, service), path);
    CHECKF(n >= 0 && (size_t)n < len, "URL of %s%s too long", service, path);
    return buf;
}

static inline size_t fakes_collect_(char *p, size_t s, size_t n, void *arg) {
    return fwrite(p, s, n, (FILE *)arg);
}

/* Calls a test hook of service: GET path, or POST body when body is not NULL. Returns the JSON
 * answer (the caller json_decref()s it); fails the case when there is none. */
static inline json_t *fakes_hook(const struct fakes_proc *f, const char *service,
                                 const char *path, const char *body) {
    char url[256], *answer = NULL;
    size_t len = 0;
    fakes_url(f, service, path, url, sizeof url);
    FILE *mem = open_memstream(&answer, &len);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fakes_collect_);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, mem);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    if (body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    CURLcode cc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    fclose(mem);
    json_t *j = cc == CURLE_OK ? json_loadb(answer, len, 0, NULL) : NULL;
    free(answer);
    CHECKF(j, "test hook %s failed: %s", url, curl_easy_strerror(cc));
    return j;
}

/* POST /_control: merges the switches in json (latency_ms, error_rate, outage, reset_stats...). */
static inline void fakes_control(const struct fakes_proc *f, const char *service,
                                 const char *json) {
    json_decref(fakes_hook(f, service, "/_control", json));
}

/* From GET /_stats: requests to endpoint (e.g. "GET /features") answered with status (e.g.
 * "200"), or with any status (refusals included) when status is NULL. */
static inline long fakes_stats(const struct fakes_proc *f, const char *service,
                               const char *endpoint, const char *status) {
    json_t *st = fakes_hook(f, service, "/_stats", NULL);
    json_t *per = json_object_get(json_object_get(st, "endpoints"), endpoint);
    const char *k;
    json_t *v;
    long n = 0;
    json_object_foreach(per, k, v) if (!status || strcmp(k, status) == 0) n +=
        (long)json_integer_value(v);
    json_decref(st);
    return n;
}

/* A client's stop flag set from another thread while the client waits on frozen fakes
 * (SIGSTOP: the kernel accepts the requests, nobody answers): fakes_stop_later starts the
 * thread that sets *flag after ms milliseconds; fakes_stop_joined waits for it. */
struct fakes_stopper {
    pthread_t thread;
    atomic_bool *flag;
    int ms;
};

static inline void *fakes_stopper_main(void *arg) {
    struct fakes_stopper *s = arg;
    usleep((useconds_t)s->ms * 1000);
    atomic_store(s->flag, true);
    return NULL;
}

static inline void fakes_stop_later(struct fakes_stopper *s, atomic_bool *flag, int ms) {
    *s = (struct fakes_stopper){.flag = flag, .ms = ms};
    atomic_store(flag, false);
    pthread_create(&s->thread, NULL, fakes_stopper_main, s);
}

static inline void fakes_stop_joined(struct fakes_stopper *s) { pthread_join(s->thread, NULL); }

#endif
