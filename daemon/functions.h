/* Private to the daemon: deployed functions, their instances and their logs.
 *
 * Locking: one manager lock (fm->lock) guards the function list, every function's instances,
 * waiters and counters. A function's log file has its own lock (written by the log thread and by
 * the manager's "system" lines); watchers of logs have theirs. Callbacks to the edge (leases,
 * log wake-ups) are made with no lock held. Lifetimes are counted: a function is freed when it
 * has left the list and no instance, log source or lease refers to it any more. */
#ifndef HKSD_FUNCTIONS_H
#define HKSD_FUNCTIONS_H

#include "daemon.h"
#include "function_store.h"
#include "recent.h"

#include <pthread.h>

#define FN_MAX_WAITERS      64         /* requests waiting for room, per function: beyond, 429 */
#define FN_START_TIMEOUT_MS 30000      /* an instance not ready by then is killed */
#define FN_STOP_GRACE_MS    10000      /* a graceful stop not done by then is a kill */
#define FN_LOG_MAX_BYTES    (8u << 20) /* then logs.ndjson becomes logs.ndjson.1 */

typedef struct function function;

typedef enum inst_state {
    INST_STARTING,
    INST_READY,
    INST_STOPPING,
} inst_state;

typedef struct fn_instance {
    struct fn_instance *next;
    function *fn;
    unsigned no; /* "i-<no>" in logs */
    long long sbx_id;
    inst_state state;
    bool ended;          /* its sandbox is gone */
    bool launching;      /* its start is being sent (unlocked): not freed meanwhile */
    bool cold_unclaimed; /* started for a waiting request that has not been served yet */
    char socket_path[108];
    unsigned in_flight;
    uint64_t started_us, last_used_us, stop_deadline_us;
} fn_instance;

typedef struct fn_waiter {
    struct fn_waiter *next;
    hksd_lease_cb cb;
    void *ctx;
    uint64_t since_us, deadline_us;
} fn_waiter;

struct function {
    function *next;
    struct fn_manager *fm;
    char id[HKSD_FUNCTION_ID_LEN + 1];
    char name[64], runtime[16];
    char project[128], owner[128];
    json_t *record; /* as persisted */
    char dir[PATH_MAX], code_dir[PATH_MAX + 8], log_path[PATH_MAX + 16];
    char **env; /* "K=V", NULL-terminated */
    sbx_limits limits;
    unsigned min_scale, max_scale, concurrency;
    long long created_at, expires_at; /* unix seconds */
    char code_sha256[65];
    fn_instance *instances;
    fn_waiter *waiters;
    unsigned n_waiters;
    bool removed;
    unsigned refs;
    unsigned next_instance_no;
    uint64_t last_start_failure_us;
    /* counters */
    uint64_t invocations, errors, timeouts, cold_starts, instance_starts;
    long long last_invocation_ms;
    uint64_t peak_memory_bytes, cpu_ms_ended;
    fn_recent *recent; /* its last invocations and usage samples (recent.c) */
    /* its log */
    pthread_mutex_t log_lock;
    int log_fd;
    uint64_t log_bytes;
};

/* A callback owed to the edge, made once the manager lock is released. */
typedef struct fn_callback {
    struct fn_callback *next;
    hksd_lease_cb cb;
    void *ctx;
    int failure;
    hksd_lease lease;
    char message[256];
} fn_callback;

typedef struct fn_watch {
    struct fn_watch *next;
    unsigned long id;
    char fn_id[HKSD_FUNCTION_ID_LEN + 1];
    void (*wake)(void *ctx);
    void *ctx;
} fn_watch;

typedef struct fn_manager {
    hksd *d;
    rt_pool *pool;
    const hksd_config *cfg;
    hksd_function_store store;
    char fn_root[PATH_MAX];   /* <state_dir>/fn: a directory per function */
    char sock_root[PATH_MAX]; /* <state_dir>/sock: the instances' listening sockets */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    function *functions;
    unsigned n_functions, n_instances;
    bool stopping;
    pthread_t manager_thread, log_thread;
    bool manager_running, log_running;
    int log_epfd, log_wake;
    unsigned log_sources;
    pthread_mutex_t watch_lock;
    fn_watch *watches;
    unsigned long next_watch;
    unsigned long next_socket;
    struct fn_launch *launches; /* instances to send to the spawner (manager thread) */
    /* metrics */
    atomic_ulong deployed_total, deleted_total, reaped_total, restored_total;
    atomic_ulong invocations_by_class[6]; /* 2xx..5xx by first digit, [0] none, [1] timeout */
    atomic_ulong instance_starts_cold, instance_starts_warm, instance_failures;
    atomic_ulong inv_buckets[12], inv_count;
    _Atomic double inv_sum_s;
} fn_manager;

/* functions.c */
/* Reconcile the state directory with the records (reap the expired, restore the live, remove
 * orphans) and start the manager and log threads. */
int fn_manager_start(fn_manager *fm, hksd *d, rt_pool *pool, const hksd_config *cfg,
                     hks_error *err);
/* Stop accepting leases, stop every instance and wait (bounded) for them to end. */
void fn_manager_stop(fn_manager *fm);
/* After the pool has stopped: end the log thread, free everything. */
void fn_manager_free(fn_manager *fm);
/* Send the instances' pending launches to the spawner (manager thread). */
void fn_launch_pending(fn_manager *fm);
void fn_acquire(fn_manager *fm, const char *project, const char *id, hksd_lease_cb cb, void *ctx);
void fn_release(fn_manager *fm, hksd_lease *lease, const hksd_fn_outcome *outcome);
void fn_unref(function *fn); /* fm->lock held */
int fn_deploy(fn_manager *fm, const hksd_caller *caller, const hksd_fn_spec *spec, json_t **view,
              hks_error *err);
int fn_delete(fn_manager *fm, const hksd_caller *caller, const char *id, hks_error *err);
/* The code of spec (files or an archive, extracted safely) written into code_dir (created), its
 * layout checked for the runtime: 0, or a hksd_failure (INVALID: the code's fault) with err. */
int fn_write_code(const hksd_fn_spec *spec, const char *code_dir, hks_error *err);
/* Hex SHA-256 of spec's code, for records and audit. */
void fn_code_digest(const hksd_fn_spec *spec, char hex[65]);
json_t *fn_get(fn_manager *fm, const char *project, const char *id);
json_t *fn_list(fn_manager *fm, const char *project);
/* {"function_id", "invocations": [...]} (newest first, at most limit) / {"function_id",
 * "interval_ms", "samples": [...]}; NULL: no such function in project. */
json_t *fn_invocations(fn_manager *fm, const char *project, const char *id, size_t limit);
json_t *fn_usage(fn_manager *fm, const char *project, const char *id);
bool fn_log_path_of(fn_manager *fm, const char *project, const char *id, char *path, size_t size);
unsigned long fn_log_watch(fn_manager *fm, const char *id, void (*wake)(void *), void *ctx);
void fn_log_unwatch(fn_manager *fm, unsigned long watch);
void fn_count_invocation(fn_manager *fm, const hksd_fn_outcome *outcome);
void fn_metrics(fn_manager *fm, FILE *out);

/* What a CronJob task takes from a deployed function: copies, since the function may go while
 * the task runs. */
typedef struct fn_template {
    char runtime[16];
    char code_dir[PATH_MAX + 8];
    char **env; /* "K=V", NULL-terminated, owned */
    sbx_limits limits;
} fn_template;
/* -1: no such function in project. */
int fn_template_get(fn_manager *fm, const char *project, const char *id, fn_template *out);
void fn_template_release(fn_template *t);

/* instances.c (fm->lock held unless said otherwise) */
int fn_instance_start(function *fn, bool for_waiter, hks_error *err);
void fn_instance_stop(fn_instance *inst, bool graceful);
/* Serve waiters from instances with room; start instances when the waiters need them. */
void fn_serve_waiters(function *fn, fn_callback **owed);
/* Fail every waiter (a function deleted, or no instance can start). */
void fn_fail_waiters(function *fn, int failure, const char *message, fn_callback **owed);
/* Stop idle instances, kill stuck ones, keep min_scale, time out waiters. */
void fn_instances_tick(function *fn, uint64_t now_us, fn_callback **owed);
/* Make the owed callbacks (no lock held). */
void fn_callbacks_run(fn_callback *owed);
unsigned fn_live_instances(const function *fn);

/* function_logs.c */
int fn_logs_start(fn_manager *fm, hks_error *err);
void fn_logs_stop(fn_manager *fm);
/* Open (or reopen) the function's log file. */
int fn_log_open(function *fn, hks_error *err);
/* One line in the function's log (any thread; takes the log lock). */
void fn_log_line(function *fn, const char *stream, unsigned instance, const char *text, size_t len);
/* A "system" line (what hksd did with the function or an instance). */
void fn_log_system(function *fn, unsigned instance, const char *text);
/* Pipes for an instance's stdout and stderr, read by the log thread: out_w and err_w get the ends
 * for the sandbox (the caller closes them once handed over). Takes a reference on fn (fm->lock
 * held). */
int fn_log_attach(function *fn, unsigned instance, int *out_w, int *err_w, hks_error *err);
void fn_log_wake_watchers(fn_manager *fm, const char *fn_id);

#endif
