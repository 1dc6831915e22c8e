/* hks-exec: run code through a warm pool, the way hksd's execute does, from the command line.
 * It is the driver of the runtime tests and of `make bench-execute`. */
#include "runtimes.h"

#include <getopt.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "Usage: hks-exec [OPTIONS] --runtime python|node FILE [FILE...] [-- ARGS...]\n"
    "\n"
    "Runs the first FILE (the others are placed beside it in /code) through a pool of warm\n"
    "sandboxes, and prints one JSON record per execution: the sandbox's result plus \"warm\".\n"
    "\n"
    "  --runtime NAME      python or node\n"
    "  --root DIR          checkout holding runtimes/ and policies/ (default: next to the binary)\n"
    "  --work DIR          where /code directories are made (default /tmp/hks-exec-<pid>)\n"
    "  --warm N            warm sandboxes per runtime (default 2; 0: every execution is cold)\n"
    "  --repeat N          executions in all (default 1)\n"
    "  --concurrency N     executions at once (default 1)\n"
    "  --wait-warm         before the first execution, wait until the pool is full\n"
    "  --interval MS       with --wait-warm: wait until the pool is full again between\n"
    "                      executions, at most MS ms (latency at low load, not throughput)\n"
    "  --stdin FILE        given to the program on stdin\n"
    "  --setenv K=V        environment of the program (repeatable)\n"
    "  --memory SIZE, --pids N, --cpus N, --wall DURATION, --cpu DURATION, --output-limit SIZE\n"
    "                      limits of each execution\n"
    "  --stats             print latency percentiles and executions per second, not records\n"
    "  -h, --help\n";

typedef struct run_plan {
    rt_pool *pool;
    rt_exec_request req;
    int repeat;
    int next;
    pthread_mutex_t lock;
    double *latencies_ms;
    int warm_count;
    int failures;
    bool print;
    int interval_ms;
} run_plan;

static void *worker(void *arg)
{
    run_plan *plan = arg;
    for (;;) {
        pthread_mutex_lock(&plan->lock);
        int index = plan->next < plan->repeat ? plan->next++ : -1;
        pthread_mutex_unlock(&plan->lock);
        if (index < 0)
            return NULL;
        if (plan->interval_ms > 0 && index > 0)
            rt_pool_wait_full(plan->pool, plan->interval_ms);
        rt_exec_result result;
        hks_error err = {0};
        uint64_t start = hks_now_us();
        int rc = rt_pool_execute(plan->pool, &plan->req, &result, &err);
        double ms = (double)(hks_now_us() - start) / 1000.0;
        pthread_mutex_lock(&plan->lock);
        plan->latencies_ms[index] = ms;
        if (rc < 0) {
            plan->failures++;
            fprintf(stderr, "hks-exec: %s\n", err.msg);
        } else {
            plan->warm_count += result.warm;
            if (plan->print) {
                json_t *record = sbx_result_to_json(&result.sandbox);
                json_object_set_new(record, "warm", json_boolean(result.warm));
                json_object_set_new(record, "latency_ms", json_real(ms));
                json_dumpf(record, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
                fputc('\n', stdout);
                fflush(stdout);
                json_decref(record);
            }
            rt_exec_result_release(&result);
        }
        pthread_mutex_unlock(&plan->lock);
    }
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, int n, double p)
{
    if (n == 0)
        return 0;
    double k = (n - 1) * p / 100.0;
    int lo = (int)k;
    int hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len + 65536 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *grown = realloc(data, cap);
            if (!grown)
                break;
            data = grown;
        }
        size_t n = fread(data + *len, 1, cap - *len, f);
        *len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    return data;
}

__attribute__((noreturn)) static void die_usage(const char *what)
{
    fprintf(stderr, "hks-exec: %s\nTry 'hks-exec --help'.\n", what);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"runtime", required_argument, NULL, 'r'},
        {"root", required_argument, NULL, 'R'},
        {"work", required_argument, NULL, 'W'},
        {"warm", required_argument, NULL, 'w'},
        {"repeat", required_argument, NULL, 'n'},
        {"concurrency", required_argument, NULL, 'c'},
        {"wait-warm", no_argument, NULL, 'F'},
        {"stdin", required_argument, NULL, 'i'},
        {"setenv", required_argument, NULL, 'e'},
        {"memory", required_argument, NULL, 'm'},
        {"pids", required_argument, NULL, 'p'},
        {"wall", required_argument, NULL, 't'},
        {"cpu", required_argument, NULL, 'C'},
        {"output-limit", required_argument, NULL, 'o'},
        {"stats", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {"interval", required_argument, NULL, 'I'},
        {"cpus", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    signal(SIGPIPE, SIG_IGN); /* a sandbox that ends before reading its stdin */
    rt_pool_config cfg;
    rt_pool_config_init(&cfg);
    char exe[PATH_MAX], root[PATH_MAX + 4], work[PATH_MAX], profile[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    snprintf(root, sizeof(root), "%s/..", dirname(exe)); /* build/hks-exec -> the checkout */
    snprintf(work, sizeof(work), "/tmp/hks-exec-%d", (int)getpid());
    cfg.root = root;
    cfg.work_dir = work;
    const char *runtime = NULL, *stdin_path = NULL;
    int repeat = 1, concurrency = 1;
    unsigned warm = 2;
    bool wait_warm = false, stats = false;
    int interval_ms = 0;
    char *env[65] = {0};
    size_t n_env = 0;
    sbx_limits limits = cfg.limits;
    /* the pool's sandboxes get the execution limits too (tmpfs, rlimits and the defaults) */
    unsigned long long v;
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            runtime = optarg;
            break;
        case 'R':
            cfg.root = optarg;
            break;
        case 'W':
            cfg.work_dir = optarg;
            break;
        case 'w':
            if (hks_parse_uint(optarg, 0, 64, &v) < 0)
                die_usage("--warm: 0 to 64");
            warm = (unsigned)v;
            break;
        case 'n':
            if (hks_parse_uint(optarg, 1, 1000000, &v) < 0)
                die_usage("--repeat: 1 to 1000000");
            repeat = (int)v;
            break;
        case 'c':
            if (hks_parse_uint(optarg, 1, 256, &v) < 0)
                die_usage("--concurrency: 1 to 256");
            concurrency = (int)v;
            break;
        case 'F':
            wait_warm = true;
            break;
        case 'i':
            stdin_path = optarg;
            break;
        case 'e':
            if (n_env >= 64 || !strchr(optarg, '='))
                die_usage("--setenv K=V, at most 64");
            env[n_env++] = optarg;
            break;
        case 'm':
            if (hks_parse_size(optarg, &v) < 0)
                die_usage("--memory: a size");
            limits.memory_bytes = v;
            break;
        case 'p':
            if (hks_parse_uint(optarg, 1, 1u << 22, &v) < 0)
                die_usage("--pids: a number");
            limits.pids = v;
            break;
        case 't':
            if (hks_parse_duration_ms(optarg, &v) < 0 || v == 0)
                die_usage("--wall: a duration");
            limits.wall_ms = v;
            break;
        case 'C':
            if (hks_parse_duration_ms(optarg, &v) < 0 || v == 0)
                die_usage("--cpu: a duration");
            limits.cpu_ms = v;
            break;
        case 'o':
            if (hks_parse_size(optarg, &v) < 0 || v == 0)
                die_usage("--output-limit: a size");
            limits.stdout_max = limits.stderr_max = v;
            break;
        case 's':
            stats = true;
            break;
        case 'P': {
            char *end;
            double cpus = strtod(optarg, &end);
            if (*end || !(cpus >= 0.01 && cpus <= 1024))
                die_usage("--cpus: a number of cores");
            limits.cpu_millis = (uint64_t)(cpus * 1000 + 0.5);
            cfg.limits.cpu_millis = limits.cpu_millis;
            break;
        }
        case 'I':
            if (hks_parse_uint(optarg, 1, 600000, &v) < 0)
                die_usage("--interval: milliseconds");
            interval_ms = (int)v;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            die_usage("unknown option");
        }
    }
    const rt_runtime *rt = rt_runtime_find(runtime);
    if (!rt)
        die_usage("--runtime python|node is required");
    /* files up to "--", program arguments after it */
    int first_file = optind, end_files = optind;
    while (end_files < argc && strcmp(argv[end_files], "--") != 0)
        end_files++;
    if (end_files == first_file)
        die_usage("no FILE to run");
    size_t n_files = (size_t)(end_files - first_file);
    rt_file *files = calloc(n_files, sizeof(*files));
    if (!files)
        die_usage("out of memory");
    for (size_t i = 0; i < n_files; i++) {
        const char *path = argv[first_file + (int)i];
        size_t len = 0;
        char *data = slurp(path, &len);
        if (!data) {
            fprintf(stderr, "hks-exec: read %s: %s\n", path, strerror(errno));
            for (size_t k = 0; k < i; k++) {
                free((void *)files[k].name);
                free((void *)files[k].data);
            }
            free(files);
            return 2;
        }
        char *copy = strdup(path);
        files[i] = (rt_file){.name = strdup(basename(copy)), .data = data, .len = len};
        free(copy);
    }
    char **args = end_files < argc ? argv + end_files + 1 : NULL;

    for (size_t i = 0; i < RT_MAX_RUNTIMES; i++)
        cfg.warm[i] = 0;
    cfg.warm[rt - rt_runtime_find("python")] = warm;
    snprintf(profile, sizeof(profile), "%s/policies/seccomp/function.json", cfg.root);
    cfg.profile_path = profile;

    rt_pool *pool = NULL;
    hks_error err = {0};
    if (rt_pool_start(&cfg, &pool, &err) < 0) {
        fprintf(stderr, "hks-exec: %s\n", err.msg);
        return 1;
    }
    if (wait_warm && warm > 0 && rt_pool_wait_full(pool, 60000) < 0)
        fprintf(stderr, "hks-exec: the pool did not fill within 60 s\n");

    run_plan plan = {.pool = pool, .repeat = repeat, .print = !stats, .interval_ms = interval_ms};
    pthread_mutex_init(&plan.lock, NULL);
    plan.latencies_ms = calloc((size_t)repeat, sizeof(double));
    size_t stdin_len = 0;
    char *stdin_data = stdin_path ? slurp(stdin_path, &stdin_len) : NULL;
    plan.req = (rt_exec_request){.runtime = rt->name,
                                 .files = files,
                                 .n_files = n_files,
                                 .entry = files[0].name,
                                 .argv = args,
                                 .env = env,
                                 .stdin_data = stdin_data,
                                 .stdin_len = stdin_len,
                                 .limits = &limits};
    uint64_t start = hks_now_us();
    pthread_t threads[256];
    for (int i = 0; i < concurrency; i++)
        pthread_create(&threads[i], NULL, worker, &plan);
    for (int i = 0; i < concurrency; i++)
        pthread_join(threads[i], NULL);
    double elapsed_s = (double)(hks_now_us() - start) / 1e6;
    if (stats) {
        qsort(plan.latencies_ms, (size_t)repeat, sizeof(double), compare_double);
        printf("{\"runtime\":\"%s\",\"executions\":%d,\"concurrency\":%d,\"warm\":%d,"
               "\"failures\":%d,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
               "\"per_second\":%.1f}\n",
               rt->name, repeat, concurrency, plan.warm_count, plan.failures,
               percentile(plan.latencies_ms, repeat, 50), percentile(plan.latencies_ms, repeat, 90),
               percentile(plan.latencies_ms, repeat, 99), repeat / elapsed_s);
    }
    rt_pool_stop(pool);
    for (size_t i = 0; i < n_files; i++) {
        free((void *)files[i].name);
        free((void *)files[i].data);
    }
    free(files);
    free(stdin_data);
    free(plan.latencies_ms);
    return plan.failures ? 1 : 0;
}
