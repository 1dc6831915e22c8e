/* Private to the daemon: CronJobs on the local backend.
 *
 * A CronJob is a definition (cronjob_spec.c checks it), a status (when it last ran, what came of
 * it, the last schedule time considered) and a history of runs, all under
 * <state_dir>/cronjobs/<id>/: cronjob.json, runs/<no>.json and runs/<no>.log. One scheduler thread
 * starts runs when they are due; each run has a thread of its own (cronjob_runs.c) that runs the
 * task in a one-shot sandbox or invokes the function through the edge's invoker.
 *
 * Locking: cj_manager.lock guards the list, every CronJob's fields and its runs. Run threads take
 * it only to publish what they did; nothing blocking happens under it. */
#ifndef HKSD_CRONJOBS_H
#define HKSD_CRONJOBS_H

#include "cron.h"
#include "daemon.h"

#include <pthread.h>

#define CJ_ID_LEN           23 /* "cj-" and 20 hex digits */
#define CJ_NAME_MAX         52 /* Kubernetes: a CronJob's name leaves 11 characters for its Jobs' */
#define CJ_HISTORY_MAX      100
#define CJ_LOG_MAX          (256u << 10) /* of one run; the rest is dropped and said so */
#define CJ_BODY_MAX         (1u << 20)   /* of a function target's request body */
#define CJ_TASK_TIMEOUT_DEF 300          /* seconds, when the task says nothing */

typedef enum cj_policy {
    CJ_ALLOW,
    CJ_FORBID,
    CJ_REPLACE,
} cj_policy;

/* A definition, checked (cronjob_spec.c). The JSON keeps every field in its canonical form (the
 * schedule normalized, defaults filled in) and is what is persisted and shown. */
typedef struct cj_spec {
    json_t *json;
    hksd_cron schedule;
    cj_policy policy;
    bool suspend;
    long long deadline_s; /* starting_deadline_seconds; -1: none */
    unsigned keep_succeeded, keep_failed;
    bool is_task;
    const char *target_function; /* the function invoked, or the task's template */
} cj_spec;

/* Check a create body (base NULL) or an update's changes over the current definition (base);
 * on success *out holds a new definition. field: the offending field on error ("schedule",
 * "target.task.command[2]"). timeout_max_s: the policy's maximum wall time. */
int cj_spec_parse(json_t *in, json_t *base, unsigned timeout_max_s, cj_spec *out, char field[64],
                  hks_error *err);
void cj_spec_release(cj_spec *spec);

typedef enum cj_run_state {
    CJ_RUN_RUNNING,
    CJ_RUN_SUCCEEDED,
    CJ_RUN_FAILED,
} cj_run_state;

typedef struct cronjob cronjob;

typedef struct cj_run {
    struct cj_run *next;
    cronjob *cj;
    unsigned no;
    bool manual;
    long long scheduled_at, started_at; /* the cron clock's unix seconds */
    uint64_t started_us;                /* hks_now_us, for its duration */
    atomic_bool cancel;                 /* Replace, delete, stop */
    char cancel_reason[64];
    long long task_id; /* its sandbox while it runs (0: none) */
    pthread_t thread;
} cj_run;

struct cronjob {
    cronjob *next;
    char id[CJ_ID_LEN + 1];
    char name[CJ_NAME_MAX + 1];
    char project[128], owner[128];
    char dir[PATH_MAX];
    cj_spec spec;
    long long created_at, updated_at;
    long long last_schedule_at; /* the latest schedule time dealt with (run, skipped, missed) */
    long long next_run_at;      /* HKSD_CRON_NEVER: none within five years */
    long long last_run_at;
    char last_result[16]; /* "", "succeeded", "failed" */
    uint64_t missed, skipped;
    unsigned next_run_no;
    json_t *history; /* finished runs, oldest first: their records without logs */
    cj_run *active;
    unsigned refs;
    bool removed;
};

struct kb_backend;

typedef struct cj_manager {
    hksd *d;
    struct kb_backend
        *kube; /* backend "kubernetes": CronJobs live on the cluster (cronjob_kube.c) */
    rt_pool *pool;
    struct fn_manager *functions;
    const hksd_config *cfg;
    char root[PATH_MAX]; /* <state_dir>/cronjobs */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    cronjob *cronjobs;
    cj_run *finished; /* runs whose threads ended, to join */
    unsigned n_cronjobs, n_active;
    bool stopping, started;
    pthread_t scheduler;
    /* the clock of schedules: the real one, or HKSD_CRON_CLOCK's (tests) */
    long long clock_start;
    double clock_rate;
    uint64_t clock_origin_us;
    /* the edge's invoker; calls counts those in flight */
    pthread_mutex_t invoker_lock;
    pthread_cond_t invoker_idle;
    hksd_invoker invoker;
    void *invoker_ctx;
    unsigned invoker_calls;
    /* counters */
    atomic_ullong runs_succeeded, runs_failed, runs_missed, runs_skipped;
} cj_manager;

/* kube: the kubernetes backend (NULL: local); then no CronJob is scheduled or kept here. */
int cj_manager_start(cj_manager *m, hksd *d, rt_pool *pool, struct fn_manager *functions,
                     struct kb_backend *kube, const hksd_config *cfg, hks_error *err);
/* Runs going are cancelled and waited for. */
void cj_manager_stop(cj_manager *m);
void cj_metrics(cj_manager *m, FILE *out);

/* The calls of the edge (daemon.h's hksd_cronjob_*). */
int cj_create(cj_manager *m, const hksd_caller *caller, json_t *body, json_t **out, char field[64],
              hks_error *err);
int cj_update(cj_manager *m, const hksd_caller *caller, const char *ref, json_t *changes,
              json_t **out, char field[64], hks_error *err);
int cj_delete(cj_manager *m, const hksd_caller *caller, const char *ref, hks_error *err);
json_t *cj_get(cj_manager *m, const char *project, const char *ref);
json_t *cj_list(cj_manager *m, const char *project);
json_t *cj_runs(cj_manager *m, const char *project, const char *ref, size_t log_bytes);
int cj_trigger(cj_manager *m, const hksd_caller *caller, const char *ref, json_t **run,
               hks_error *err);
void cj_set_invoker(cj_manager *m, hksd_invoker invoker, void *ctx);

/* The cron clock: unix seconds. */
long long cj_now(const cj_manager *m);
int cj_new_id(char out[CJ_ID_LEN + 1], hks_error *err);
unsigned cj_timeout_max_s(hksd *d);

/* ---- the kubernetes backend (cronjob_kube.c): the edge's calls when m->kube is set ----
 * A CronJob is a batch/v1 CronJob in the project's namespace, its definition in the annotation
 * hks.io/definition: every hksd on the cluster reads the same, nothing is kept on disk. */
int cjk_create(cj_manager *m, const hksd_caller *caller, json_t *body, json_t **out, char field[64],
               hks_error *err);
int cjk_update(cj_manager *m, const hksd_caller *caller, const char *ref, json_t *changes,
               json_t **out, char field[64], hks_error *err);
int cjk_delete(cj_manager *m, const hksd_caller *caller, const char *ref, hks_error *err);
json_t *cjk_get(cj_manager *m, const char *project, const char *ref);
json_t *cjk_list(cj_manager *m, const char *project);
json_t *cjk_runs(cj_manager *m, const char *project, const char *ref, size_t log_bytes);
int cjk_trigger(cj_manager *m, const hksd_caller *caller, const char *ref, json_t **run,
                hks_error *err);

/* ---- runs (cronjob_runs.c) ---- */

/* Start a run of cj (m->lock held): its thread is started; NULL with err when it cannot be. */
cj_run *cj_run_start(cj_manager *m, cronjob *cj, long long scheduled_at, bool manual,
                     hks_error *err);
/* Ask a run to stop (m->lock held). */
void cj_run_cancel(cj_manager *m, cj_run *run, const char *reason);
/* Join the threads of finished runs (m->lock held; they have published already). */
void cj_runs_reap(cj_manager *m);
/* Read the history of a CronJob from its directory, newest last; runs left "running" by a
 * previous hksd are recorded as failed. */
json_t *cj_history_load(cronjob *cj, long long now);
/* The records of the running runs (m->lock held). */
json_t *cj_active_views(const cronjob *cj);
/* Add to each run record of runs the tail of its log (up to log_bytes) from dir/runs. */
void cj_attach_logs(const char *dir, json_t *runs, size_t log_bytes);
/* Persist cj's definition and status atomically (m->lock held). */
int cj_save(cj_manager *m, cronjob *cj, hks_error *err);
void cj_unref(cj_manager *m, cronjob *cj); /* m->lock held */

/* Write text to dir/name atomically (temporary file, fsync, rename, fsync dir). */
int cj_write_atomic(const char *dir, const char *name, const char *text, size_t len,
                    hks_error *err);

#endif
