/* Recent activity kept in memory for the dashboard and the agents (daemon-private): per function a
 * ring of its last invocations (for recent invocations and p50/p95 durations) and a ring of usage
 * samples taken every few seconds; per host a ring of the last executions, listed per project.
 * Nothing here survives a restart: it is what happened lately, not a record (the audit log is).
 * Locking: a function's rings are guarded by the function manager's lock; the executions ring has
 * its own. */
#ifndef HKSD_RECENT_H
#define HKSD_RECENT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define RECENT_INVOCATIONS 200 /* per function */
#define RECENT_SAMPLES     120 /* per function: 10 minutes at one sample per 5 s */
#define RECENT_SAMPLE_MS   5000
#define RECENT_EXECUTIONS  500 /* per host, every project's */

typedef struct recent_invocation {
    long long ts_ms; /* unix milliseconds, when the answer came */
    int http_status; /* 0: none */
    bool timed_out, failed, cold;
    uint32_t duration_us;
} recent_invocation;

typedef struct recent_sample {
    long long ts_ms;
    uint32_t running, busy, waiting;
    uint64_t invocations, errors;
    uint64_t peak_memory_bytes, cpu_ms;
} recent_sample;

typedef struct fn_recent {
    recent_invocation calls[RECENT_INVOCATIONS];
    size_t calls_next, calls_count;
    recent_sample samples[RECENT_SAMPLES];
    size_t samples_next, samples_count;
} fn_recent;

fn_recent *fn_recent_new(void);
void fn_recent_free(fn_recent *r);
void fn_recent_add_call(fn_recent *r, const recent_invocation *call);
/* Whether a sample is due at now_ms (none yet, or the last one RECENT_SAMPLE_MS ago). */
bool fn_recent_sample_due(const fn_recent *r, long long now_ms);
void fn_recent_add_sample(fn_recent *r, const recent_sample *s);
/* {"p50": ms, "p95": ms, "samples": n} over the kept invocations (null percentiles when none). */
json_t *fn_recent_durations(const fn_recent *r);
/* The kept invocations, newest first, at most limit: [{"ts", "status", "http_status",
 * "duration_ms", "cold_start"}]. */
json_t *fn_recent_calls_json(const fn_recent *r, size_t limit);
/* The kept samples, oldest first. */
json_t *fn_recent_samples_json(const fn_recent *r);

/* ---- executions ---- */

typedef struct recent_execution {
    long long ts_ms;
    char id[64];
    char project[128];
    char sub[128];
    char runtime[16];
    char status[24];
    int exit_code; /* -1: none */
    int signal;    /* 0: none */
    double wall_ms, cpu_ms;
    uint64_t peak_memory_bytes;
    bool warm;
} recent_execution;

typedef struct recent_executions {
    pthread_mutex_t lock;
    recent_execution ring[RECENT_EXECUTIONS];
    size_t next, count;
} recent_executions;

void recent_executions_init(recent_executions *r);
void recent_executions_destroy(recent_executions *r);
void recent_executions_add(recent_executions *r, const recent_execution *e);
/* {"executions": [...]} of project, newest first, at most limit. */
json_t *recent_executions_json(recent_executions *r, const char *project, size_t limit);

/* RFC 3339 UTC with milliseconds, as the logs write it. */
void recent_format_ms(long long ts_ms, char *out, size_t size);
long long recent_now_ms(void);

#endif
