/* Rings of recent activity: a function's last invocations and usage samples, the host's last
 * executions (see recent.h). */
#include "recent.h"

#include "../common/common.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

long long recent_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void recent_format_ms(long long ts_ms, char *out, size_t size)
{
    time_t t = (time_t)(ts_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%03dZ", base, (int)(ts_ms % 1000));
}

static json_t *ts_json(long long ts_ms)
{
    char text[40];
    recent_format_ms(ts_ms, text, sizeof(text));
    return json_string(text);
}

/* ---- a function's invocations and samples ---- */

fn_recent *fn_recent_new(void)
{
    return calloc(1, sizeof(fn_recent));
}

void fn_recent_free(fn_recent *r)
{
    free(r);
}

void fn_recent_add_call(fn_recent *r, const recent_invocation *call)
{
    r->calls[r->calls_next] = *call;
    r->calls_next = (r->calls_next + 1) % RECENT_INVOCATIONS;
    if (r->calls_count < RECENT_INVOCATIONS)
        r->calls_count++;
}

bool fn_recent_sample_due(const fn_recent *r, long long now_ms)
{
    if (r->samples_count == 0)
        return true;
    size_t last = (r->samples_next + RECENT_SAMPLES - 1) % RECENT_SAMPLES;
    return now_ms - r->samples[last].ts_ms >= RECENT_SAMPLE_MS;
}

void fn_recent_add_sample(fn_recent *r, const recent_sample *s)
{
    r->samples[r->samples_next] = *s;
    r->samples_next = (r->samples_next + 1) % RECENT_SAMPLES;
    if (r->samples_count < RECENT_SAMPLES)
        r->samples_count++;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile of sorted values (n > 0). */
static double percentile_ms(const uint32_t *sorted, size_t n, unsigned pct)
{
    size_t rank = (n * pct + 99) / 100; /* ceil(n * pct / 100), at least 1 */
    if (rank == 0)
        rank = 1;
    return (double)sorted[rank - 1] / 1000.0;
}

json_t *fn_recent_durations(const fn_recent *r)
{
    uint32_t sorted[RECENT_INVOCATIONS];
    size_t n = r->calls_count;
    for (size_t i = 0; i < n; i++)
        sorted[i] = r->calls[i].duration_us;
    if (n == 0)
        return json_pack("{s:n,s:n,s:i}", "p50", "p95", "samples", 0);
    qsort(sorted, n, sizeof(sorted[0]), compare_u32);
    return json_pack("{s:f,s:f,s:I}", "p50", percentile_ms(sorted, n, 50), "p95",
                     percentile_ms(sorted, n, 95), "samples", (json_int_t)n);
}

static const char *call_status(const recent_invocation *c)
{
    if (c->timed_out)
        return "timeout";
    if (c->failed || c->http_status == 0)
        return "no_answer";
    return c->http_status >= 500 ? "error" : "ok";
}

json_t *fn_recent_calls_json(const fn_recent *r, size_t limit)
{
    json_t *list = json_array();
    for (size_t k = 0; k < r->calls_count && k < limit; k++) {
        const recent_invocation *c =
            &r->calls[(r->calls_next + RECENT_INVOCATIONS - 1 - k) % RECENT_INVOCATIONS];
        json_t *item =
            json_pack("{s:o,s:s,s:o,s:f,s:b}", "ts", ts_json(c->ts_ms), "status", call_status(c),
                      "http_status", c->http_status ? json_integer(c->http_status) : json_null(),
                      "duration_ms", (double)c->duration_us / 1000.0, "cold_start", c->cold);
        json_array_append_new(list, item);
    }
    return list;
}

json_t *fn_recent_samples_json(const fn_recent *r)
{
    json_t *list = json_array();
    size_t first = (r->samples_next + RECENT_SAMPLES - r->samples_count) % RECENT_SAMPLES;
    for (size_t k = 0; k < r->samples_count; k++) {
        const recent_sample *s = &r->samples[(first + k) % RECENT_SAMPLES];
        json_array_append_new(
            list, json_pack("{s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "ts", ts_json(s->ts_ms),
                            "instances_running", (json_int_t)s->running, "instances_busy",
                            (json_int_t)s->busy, "waiting", (json_int_t)s->waiting, "invocations",
                            (json_int_t)s->invocations, "errors", (json_int_t)s->errors,
                            "peak_memory_bytes", (json_int_t)s->peak_memory_bytes, "cpu_ms",
                            (json_int_t)s->cpu_ms));
    }
    return list;
}

/* ---- the host's executions ---- */

void recent_executions_init(recent_executions *r)
{
    pthread_mutex_init(&r->lock, NULL);
    r->next = r->count = 0;
}

void recent_executions_destroy(recent_executions *r)
{
    pthread_mutex_destroy(&r->lock);
}

void recent_executions_add(recent_executions *r, const recent_execution *e)
{
    pthread_mutex_lock(&r->lock);
    r->ring[r->next] = *e;
    r->next = (r->next + 1) % RECENT_EXECUTIONS;
    if (r->count < RECENT_EXECUTIONS)
        r->count++;
    pthread_mutex_unlock(&r->lock);
}

static json_t *execution_json(const recent_execution *e)
{
    return json_pack("{s:s,s:o,s:s,s:s,s:s,s:o,s:o,s:f,s:f,s:I,s:b}", "id", e->id, "ts",
                     ts_json(e->ts_ms), "sub", e->sub, "runtime", e->runtime, "status", e->status,
                     "exit_code", e->exit_code >= 0 ? json_integer(e->exit_code) : json_null(),
                     "signal", e->signal > 0 ? json_integer(e->signal) : json_null(), "wall_ms",
                     e->wall_ms, "cpu_ms", e->cpu_ms, "peak_memory_bytes",
                     (json_int_t)e->peak_memory_bytes, "warm", e->warm);
}

json_t *recent_executions_json(recent_executions *r, const char *project, size_t limit)
{
    json_t *list = json_array();
    pthread_mutex_lock(&r->lock);
    for (size_t k = 0; k < r->count && json_array_size(list) < limit; k++) {
        const recent_execution *e =
            &r->ring[(r->next + RECENT_EXECUTIONS - 1 - k) % RECENT_EXECUTIONS];
        if (strcmp(e->project, project) == 0)
            json_array_append_new(list, execution_json(e));
    }
    pthread_mutex_unlock(&r->lock);
    return json_pack("{s:o}", "executions", list);
}
