/* Runtimes: the languages code runs in, and warm pools of sandboxes with a launcher already
 * started in them, so that an execution costs IPC plus the user's own code, not an interpreter
 * start.
 *
 * Threads: rt_pool_start forks the sandbox spawner, so call it before starting any thread; every
 * other function is thread-safe. */
#ifndef HKS_RUNTIMES_H
#define HKS_RUNTIMES_H

#include <stdbool.h>
#include <stddef.h>

#include "../sandbox/sandbox.h"

#define RT_MAX_RUNTIMES 4

typedef struct rt_runtime {
    const char *name;        /* "python", "node" */
    const char *interpreter; /* absolute path, the same inside the sandbox */
    const char *launcher;    /* file name in runtimes/<name>/ */
} rt_runtime;

/* The runtimes this build knows; NULL when name is not one of them. */
const rt_runtime *rt_runtime_find(const char *name);

typedef struct rt_pool_config {
    const char *root;               /* directory holding runtimes/<name>/ and policies/ */
    const char *work_dir;           /* host directories for the sandboxes' /code (created 0700) */
    const char *profile_path;       /* seccomp profile */
    unsigned warm[RT_MAX_RUNTIMES]; /* sandboxes kept ready, per runtime in rt_runtime order */
    sbx_limits limits; /* limits sandboxes are created with (tmpfs, rlimits, defaults) */
    uint64_t idle_ms;  /* a warm sandbox waiting longer than this is replaced */
    /* When the spawner dies, a new one is started by executing "<spawner_exe> spawner --fd 3"
     * (sbx_spawner_respawn) and the pools refilled; NULL: the pool stays down. */
    const char *spawner_exe;
} rt_pool_config;

void rt_pool_config_init(rt_pool_config *cfg);

typedef struct rt_file {
    const char *name; /* relative path below /code: no "..", no absolute path */
    const void *data;
    size_t len;
} rt_file;

typedef struct rt_exec_request {
    const char *runtime;
    const rt_file *files;
    size_t n_files;
    const char *entry;      /* one of the files: the main program */
    char *const *argv;      /* program arguments, NULL-terminated (may be NULL) */
    char *const *env;       /* "K=V", NULL-terminated (may be NULL) */
    const void *stdin_data; /* given on the program's stdin, then EOF */
    size_t stdin_len;
    const sbx_limits *limits; /* NULL: the pool's defaults */
} rt_exec_request;

typedef struct rt_exec_result {
    sbx_result sandbox;
    bool warm; /* served by a sandbox started ahead of time */
} rt_exec_result;

/* Limits on what an execution may bring. */
#define RT_MAX_FILES       256
#define RT_MAX_FILE_BYTES  (8u << 20)
#define RT_MAX_TOTAL_BYTES (16u << 20)
#define RT_MAX_STDIN_BYTES (1u << 20)

typedef struct rt_pool rt_pool;

int rt_pool_start(const rt_pool_config *cfg, rt_pool **out, hks_error *err);
/* Run one execution: a warm sandbox when one is ready, else a cold one (result.warm says
 * which). An error means the request was refused (bad files, unknown runtime) or the sandbox
 * machinery failed; what the program did is in result->sandbox. */
int rt_pool_execute(rt_pool *pool, const rt_exec_request *req, rt_exec_result *result,
                    hks_error *err);
/* Compile the seccomp profile again (SIGHUP): sandboxes started from now on use it; the answer
 * is logged. Sandboxes already waiting keep the program they were started with. */
int rt_pool_reload_profile(rt_pool *pool, hks_error *err);
/* Whether the pool can start sandboxes now (false while its spawner is being restarted). */
bool rt_pool_healthy(rt_pool *pool);
/* How many times a spawner that died was replaced. */
unsigned long rt_pool_spawner_restarts(rt_pool *pool);
/* Warm sandboxes ready right now for a runtime (for metrics and tests). */
unsigned rt_pool_ready(rt_pool *pool, const char *runtime);
/* Wait until every runtime has its warm sandboxes (or timeout_ms passes); returns 0 when full. */
int rt_pool_wait_full(rt_pool *pool, int timeout_ms);
void rt_pool_stop(rt_pool *pool);
void rt_exec_result_release(rt_exec_result *result);

/* ---- serve-mode instances: a deployed function's launcher serving HTTP ----
 *
 * The launcher runs in serve mode in its own sandbox, /code bound read-only from the function's
 * directory, and accepts on a listening socket the caller made (HKS_LISTEN_FD), so the caller
 * can connect to it from outside while the sandbox keeps its empty network namespace. Its stdout
 * and stderr go straight to the fds given (the caller reads and caps them). */

typedef struct rt_serve_events {
    /* the launcher listens and said ready */
    void (*on_ready)(void *ctx, long long instance_id);
    /* the sandbox ended (result: why; killed after rt_serve_stop). Called once, from the pool's
     * dispatcher thread, without pool locks held; the instance id is gone afterwards. */
    void (*on_end)(void *ctx, long long instance_id, const sbx_result *result);
    void *ctx;
} rt_serve_events;

typedef struct rt_serve_request {
    const char *runtime;
    const char *code_dir;     /* host directory, bound read-only at /code */
    char *const *env;         /* "K=V" for the function, NULL-terminated (may be NULL) */
    const sbx_limits *limits; /* the instance's: memory, pids, CPU bandwidth, its lifetime */
    int listen_fd;            /* listening socket handed in as HKS_LISTEN_FD */
    int stdout_fd, stderr_fd; /* the launcher's fds 1 and 2 */
    rt_serve_events events;
} rt_serve_request;

/* Start an instance; its id is known to the events before the spawner can answer about it. */
int rt_serve_start(rt_pool *pool, const rt_serve_request *req, long long *instance_id,
                   hks_error *err);
/* A CronJob task: a command run once in its own sandbox over a function's code (/code bound
 * read-only, the working directory), its stdout and stderr straight to the fds given. There is no
 * launcher: the command is what runs (found on PATH when it has no slash). on_end is called as for
 * an instance; rt_serve_stop(pool, task_id, false) kills it. */
typedef struct rt_task_request {
    const char *runtime;      /* whose root file system the command runs in */
    const char *code_dir;     /* host directory, bound read-only at /code */
    char *const *argv;        /* the command and its arguments, NULL-terminated */
    char *const *env;         /* "K=V", NULL-terminated (may be NULL) */
    const sbx_limits *limits; /* wall_ms is the task's deadline */
    int stdout_fd, stderr_fd;
    rt_serve_events events; /* on_ready is not used */
} rt_task_request;

int rt_task_start(rt_pool *pool, const rt_task_request *req, long long *task_id, hks_error *err);

/* Stop an instance: gracefully ({"op":"stop"} to the launcher, which runs the function's
 * shutdown hook and ends) or at once. Unknown ids (already ended) are ignored. */
void rt_serve_stop(rt_pool *pool, long long instance_id, bool graceful);

/* Write files into dir (which must exist and be empty), refusing unsafe names. */
int rt_write_files(const char *dir, const rt_file *files, size_t n_files, hks_error *err);
/* Remove dir and everything below it without following links. */
int rt_remove_tree(const char *dir, hks_error *err);
/* Whether name is a safe relative path for a file below /code. */
bool rt_safe_name(const char *name);

#endif
