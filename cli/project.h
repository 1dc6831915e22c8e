/* The local side of a function project: the runtimes' Knative templates (`create`), func.yaml
 * (name, runtime, run.envs, deploy options) and .hks/function.json, where `deploy` remembers
 * which function it made so that later commands can name it, or not name it at all. */
#ifndef HKS_CLI_PROJECT_H
#define HKS_CLI_PROJECT_H

#include "cli/util.h"

/* The runtimes directory: $HKS_RUNTIMES_DIR, else <exe_dir>/../runtimes, else
 * <exe_dir>/../share/hks/runtimes (the first holding <lang>/templates/<template>); the
 * template's directory goes to out. */
int cli_find_template(const char *lang, const char *template_name, char *out, size_t size,
                      cli_error *err);
/* Copy the template directory to dest (created; an existing empty directory is fine), replacing
 * {{NAME}} and {{CREATED}} in func.yaml. */
int cli_create_project(const char *template_dir, const char *dest, const char *name,
                       cli_error *err);

/* What hks-func reads of func.yaml. Numbers are -1 when not set. */
typedef struct cli_func_yaml {
    bool found;
    char *name;
    char *runtime;
    json_t *envs; /* [{"name", "value"}] as written (value may be "{{ env:VAR }}"); never NULL */
    long long min_scale, max_scale, concurrency, memory_mb;
    double cpus;
} cli_func_yaml;

/* Read <dir>/func.yaml; found is false (and the rest unset) when there is none. Keys read:
 * name, runtime, run.envs[].name/value, deploy.options.scale.min/max,
 * deploy.options.resources.limits.concurrency/memory/cpu. */
int cli_func_yaml_load(const char *dir, cli_func_yaml *out, cli_error *err);
void cli_func_yaml_free(cli_func_yaml *f);

/* The value of a run.envs entry: "{{ env:VAR }}" is $VAR of hks-func's environment (an error
 * when unset); secret and configMap references are refused (hksd has neither). */
char *cli_env_resolve(const char *name, const char *value, cli_error *err);

/* Kubernetes quantities: memory ("128Mi", "1Gi", "256M", "1048576") to MiB rounded up, cpu
 * ("500m", "1.5") to cores. -1 on junk. */
int cli_quantity_mib(const char *text, long long *out);
int cli_quantity_cpus(const char *text, double *out);

/* .hks/function.json of a project directory. */
typedef struct cli_local_fn {
    char *name, *id, *url, *server, *project, *runtime;
} cli_local_fn;
/* Read it; found is false when there is none. */
int cli_local_load(const char *dir, cli_local_fn *out, bool *found, cli_error *err);
/* Remember a deployed function (its hksd record) for dir. */
int cli_local_save(const char *dir, const json_t *record, const char *server, cli_error *err);
/* Forget it (after a delete). */
int cli_local_remove(const char *dir, cli_error *err);
void cli_local_free(cli_local_fn *l);

#endif
