/* driver_internal.h: the driver struct, shared by driver.c (pools, routing) and session.c
 * (transaction functions). Private to src/bolt/. */
#ifndef BOLT_DRIVER_INTERNAL_H
#define BOLT_DRIVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "bolt/bolt_internal.h"

typedef struct pool {
    char *address;
    bolt_conn **idle;        /* LIFO: the most recently used on top */
    int nidle, cap;
    int in_use;
    struct pool *next;
} pool;

typedef struct addr_list {
    char **a;
    int n;
} addr_list;

typedef struct rtable {
    char *db;
    int64_t expires_ms;
    addr_list writers, readers, routers;
    struct rtable *next;
} rtable;

struct bolt_driver {
    bolt_settings settings;
    bolt_uri *uri;
    pthread_mutex_t mu;       /* guards pools, tables, rr */
    pthread_cond_t cond;      /* a connection came back */
    pool *pools;
    rtable *tables;
    unsigned rr;
    int cancel_fd;            /* eventfd: readable once bolt_driver_cancel was called */
    atomic_int cancelled;
};

/* Sleeps ms, or less when the driver is cancelled meanwhile. */
void driver_sleep(bolt_driver *d, int64_t ms);
int driver_cancelled(bolt_driver *d);

int driver_pool_acquire(bolt_driver *d, const char *address, bolt_conn **out, bolt_error *err);
/* Drop a server from routing tables: from every role after a connection failure, or only
 * from db's writers (writer_only) after NotALeader/ForbiddenOnReadOnlyDatabase. */
void driver_forget(bolt_driver *d, const char *db, const char *address, int writer_only);
const bolt_settings *driver_settings(const bolt_driver *d);

#endif
