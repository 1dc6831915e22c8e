/* Private to the runtimes module: the pool's state, shared by the one-shot pool (pool.c) and the
 * serve-mode instances of functions (serve.c), which go through the same spawner and dispatcher. */
#ifndef HKS_RUNTIMES_INTERNAL_H
#define HKS_RUNTIMES_INTERNAL_H

#include "runtimes.h"

#include <pthread.h>
#include <stdatomic.h>

#define PROFILE_NAME  "function"
#define LAUNCHER_DIR  "/hks/runtime"
#define RT_N_RUNTIMES 2

extern const rt_runtime rt_runtimes[RT_N_RUNTIMES];

typedef enum slot_state {
    SLOT_STARTING, /* sandbox asked for, launcher not ready yet */
    SLOT_READY,    /* launcher waits for "go" */
    SLOT_CLAIMED,  /* an execution owns it */
} slot_state;

typedef struct slot {
    struct slot *next;
    json_int_t id; /* the spawner's run id */
    size_t runtime;
    slot_state state;
    bool pooled; /* counts toward the warm target (false: a cold start for one execution) */
    int control; /* host end of the launcher's control socket */
    int stdin_w; /* write end of the program's stdin */
    char code_dir[PATH_MAX];
    bool armed;  /* the spawner applied the execution's limits */
    bool ended;  /* the spawner sent the sandbox's result */
    bool dead;   /* the sandbox was never created: no result will come */
    bool failed; /* a request about it was refused (error holds why) */
    char error[512];
    sbx_result result;
    rt_serve_events serve; /* serve-mode instance: whom to tell (on_end NULL: one-shot) */
    bool serve_ready_due, serve_end_due; /* to tell, once the lock is released */
} slot;

struct rt_pool {
    rt_pool_config cfg;
    char root[PATH_MAX], work_dir[PATH_MAX], profile_path[PATH_MAX], spawner_exe[PATH_MAX];
    sbx_spawner *spawner;
    int sock;
    int epfd;
    int wake; /* eventfd: refill and stop requests for the dispatcher */
    pthread_t dispatcher;
    bool dispatcher_running;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool stopping;
    bool spawner_gone; /* until a new spawner serves (cfg.spawner_exe), or for good */
    atomic_ulong spawner_restarts;
    slot *slots;
    atomic_llong next_id;
    pthread_t refiller;
    bool refiller_running;
    pthread_cond_t refill_wanted;
    bool refill_pending;
    unsigned pooled[RT_MAX_RUNTIMES]; /* starting + ready, pooled only */
};

json_t *rt_limits_json(const sbx_limits *l);
/* Why executions and instance starts are refused right now (pool->lock held). */
const char *rt_pool_down_reason(const rt_pool *pool);
/* pool->lock held */
void rt_slot_unlink(rt_pool *pool, slot *target);
/* Forget a slot whose sandbox has ended: its fds, its /code directory (one-shot), its result. */
void rt_slot_free(slot *s);
/* A serve slot's sandbox ended, or its launcher said ready (pool->lock held): what to tell the
 * owner once the lock is released is queued on the dispatcher's list. */
void rt_serve_on_result(rt_pool *pool, slot *s);
void rt_serve_on_ready(rt_pool *pool, slot *s);
/* Tell the owners what was queued (dispatcher thread, no lock held). */
void rt_serve_deliver(rt_pool *pool);

#endif
