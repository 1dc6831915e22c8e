#include "cli/project.h"

#include "cli/yaml.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cli_find_template(const char *lang, const char *template_name, char *out, size_t size,
                      cli_error *err)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    const char *exe_dir = n > 0 ? dirname(exe) : ".";
    char candidates[3][PATH_MAX];
    size_t count = 0;
    const char *env = getenv("HKS_RUNTIMES_DIR");
    if (env && *env)
        snprintf(candidates[count++], PATH_MAX, "%s", env);
    snprintf(candidates[count++], PATH_MAX, "%.4000s/../runtimes", exe_dir);
    snprintf(candidates[count++], PATH_MAX, "%.4000s/../share/hks/runtimes", exe_dir);
    for (size_t i = 0; i < count; i++) {
        if ((size_t)snprintf(out, size, "%s/%s/templates/%s", candidates[i], lang, template_name) >=
            size)
            continue;
        if (is_dir(out))
            return 0;
        if (i == 0 && env && *env) {
            cli_fail(err, 0, "no template %s for %s in HKS_RUNTIMES_DIR (%s)", template_name, lang,
                     out);
            cli_hint(err, "HKS_RUNTIMES_DIR must be the runtimes/ directory of an HKS checkout");
            return -1;
        }
    }
    cli_fail(err, 0,
             "cannot find the %s %s template (looked in %s/../runtimes and "
             "%s/../share/hks/runtimes)",
             lang, template_name, exe_dir, exe_dir);
    cli_hint(err, "set HKS_RUNTIMES_DIR to the runtimes/ directory of an HKS checkout");
    return -1;
}

/* "2026-11-29T08:27:20.123456789+01:00" */
static void now_rfc3339(char *buf, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char date[64];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    off = off < 0 ? -off : off;
    snprintf(buf, size, "%s.%09ld%c%02ld:%02ld", date, ts.tv_nsec, sign, off / 3600,
             off % 3600 / 60);
}

static int replace_all(cli_buf *out, const char *text, const char *const *from,
                       const char *const *to, size_t n)
{
    for (const char *p = text; *p;) {
        size_t k = 0;
        while (k < n && strncmp(p, from[k], strlen(from[k])) != 0)
            k++;
        if (k < n) {
            if (cli_buf_append(out, to[k], strlen(to[k])) < 0)
                return -1;
            p += strlen(from[k]);
        } else if (cli_buf_append(out, p++, 1) < 0) {
            return -1;
        }
    }
    return cli_buf_append(out, "", 0);
}

static int copy_tree(const char *src, const char *dst, const char *name, const char *created,
                     int depth, cli_error *err)
{
    if (depth > 16)
        return cli_fail(err, ELOOP, "copy %s", src);
    cleanup_dir DIR *d = opendir(src);
    if (!d)
        return cli_fail(err, errno, "read the template %s", src);
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char from[PATH_MAX], to[PATH_MAX];
        if ((size_t)snprintf(from, sizeof(from), "%s/%s", src, e->d_name) >= sizeof(from) ||
            (size_t)snprintf(to, sizeof(to), "%s/%s", dst, e->d_name) >= sizeof(to))
            return cli_fail(err, ENAMETOOLONG, "copy %s", e->d_name);
        struct stat st;
        if (lstat(from, &st) < 0)
            return cli_fail(err, errno, "stat %s", from);
        if (S_ISDIR(st.st_mode)) {
            if (mkdir(to, 0755) < 0)
                return cli_fail(err, errno, "create %s", to);
            if (copy_tree(from, to, name, created, depth + 1, err) < 0)
                return -1;
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        cleanup_buf cli_buf data = {0};
        if (cli_read_file(from, 16 * 1024 * 1024, &data, err) < 0)
            return -1;
        cleanup_buf cli_buf text = {0};
        const char *write_data = data.data;
        size_t write_len = data.len;
        if (strcmp(e->d_name, "func.yaml") == 0 && depth == 0) {
            const char *from_s[] = {"{{NAME}}", "{{CREATED}}"};
            const char *to_s[] = {name, created};
            if (replace_all(&text, data.data, from_s, to_s, 2) < 0)
                return cli_fail(err, ENOMEM, "write %s", to);
            write_data = text.data;
            write_len = text.len;
        }
        mode_t mode = (st.st_mode & 0111) ? 0755 : 0644;
        cleanup_fd int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
            return cli_fail(err, errno, "create %s", to);
        if (fchmod(fd, mode) < 0 || hks_write_all(fd, write_data, write_len) < 0)
            return cli_fail(err, errno, "write %s", to);
    }
    return 0;
}

int cli_create_project(const char *template_dir, const char *dest, const char *name, cli_error *err)
{
    if (mkdir(dest, 0755) < 0) {
        if (errno != EEXIST)
            return cli_fail(err, errno, "create %s", dest);
        cleanup_dir DIR *d = opendir(dest);
        if (!d) {
            cli_fail(err, errno, "%s exists and is not a directory one can use", dest);
            cli_hint(err, "choose another name or path");
            return -1;
        }
        for (struct dirent *e; (e = readdir(d));)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                cli_fail(err, 0, "%s exists and is not empty", dest);
                cli_hint(err, "choose another name or path, or remove it");
                return -1;
            }
    }
    char created[96];
    now_rfc3339(created, sizeof(created));
    if (copy_tree(template_dir, dest, name, created, 0, err) < 0)
        return cli_wrap(err, "create %s", dest);
    return 0;
}

static const json_t *path_get(const json_t *root, const char *const *keys, size_t n)
{
    const json_t *v = root;
    for (size_t i = 0; i < n && v; i++)
        v = json_is_object(v) ? json_object_get(v, keys[i]) : NULL;
    return v;
}

static int yaml_int(const json_t *v, const char *what, long long *out, cli_error *err)
{
    if (!v || json_is_null(v))
        return 0;
    const char *s = json_string_value(v);
    unsigned long long n;
    if (!s || hks_parse_uint(s, 0, 1000000, &n) < 0) {
        cli_fail(err, 0, "%s is not a whole number", what);
        cli_hint(err, "fix %s in func.yaml", what);
        return -1;
    }
    *out = (long long)n;
    return 0;
}

int cli_quantity_mib(const char *text, long long *out)
{
    static const char *const units[] = {"", "k", "K", "M", "G", "T", "Ki", "Mi", "Gi", "Ti", "m"};
    static const double scales[] = {
        1, 1e3, 1e3, 1e6, 1e9, 1e12, 1024.0, 1048576.0, 1073741824.0, 1099511627776.0, 1e-3};
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || !isfinite(v) || v < 0 || *text == '-' || *text == '+')
        return -1;
    for (size_t i = 0; i < HKS_ARRAY_LEN(units); i++)
        if (strcmp(end, units[i]) == 0) {
            double mib = ceil(v * scales[i] / 1048576.0);
            if (mib > 1e12)
                return -1;
            *out = (long long)mib;
            return 0;
        }
    return -1;
}

int cli_quantity_cpus(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || !isfinite(v) || v <= 0 || *text == '-' || *text == '+')
        return -1;
    if (strcmp(end, "m") == 0)
        v /= 1000.0;
    else if (*end)
        return -1;
    *out = v;
    return 0;
}

static int read_func_yaml(const json_t *root, cli_func_yaml *f, cli_error *err)
{
    if (!json_is_object(root)) {
        cli_fail(err, 0, "not a mapping of keys (name, runtime, ...)");
        return -1;
    }
    const json_t *name = json_object_get(root, "name");
    const json_t *runtime = json_object_get(root, "runtime");
    if (json_is_string(name) && json_string_length(name) &&
        !(f->name = strdup(json_string_value(name))))
        return cli_fail(err, ENOMEM, "name");
    if (json_is_string(runtime) && json_string_length(runtime) &&
        !(f->runtime = strdup(json_string_value(runtime))))
        return cli_fail(err, ENOMEM, "runtime");
    const char *envs_path[] = {"run", "envs"};
    const json_t *envs = path_get(root, envs_path, 2);
    if (envs && !json_is_null(envs) && !json_is_array(envs))
        return cli_fail(err, 0, "run.envs is not a list of {name, value}");
    size_t i;
    const json_t *entry;
    json_array_foreach(envs, i, entry)
    {
        const json_t *n = json_object_get(entry, "name");
        const json_t *v = json_object_get(entry, "value");
        if (!json_is_object(entry) || (v && !json_is_string(v) && !json_is_null(v)))
            return cli_fail(err, 0, "run.envs[%zu] is not {name, value}", i);
        if (!json_is_string(n)) {
            cli_fail(err, 0,
                     "run.envs[%zu] has no name (importing every key of a secret or "
                     "configMap is not supported by hksd)",
                     i);
            cli_hint(err, "give each variable a name and a value in func.yaml");
            return -1;
        }
        json_t *copy = json_pack("{s:s,s:s}", "name", json_string_value(n), "value",
                                 json_is_string(v) ? json_string_value(v) : "");
        if (!copy || json_array_append_new(f->envs, copy) < 0)
            return cli_fail(err, ENOMEM, "run.envs");
    }
    const char *scale_min[] = {"deploy", "options", "scale", "min"};
    const char *scale_max[] = {"deploy", "options", "scale", "max"};
    const char *conc[] = {"deploy", "options", "resources", "limits", "concurrency"};
    const char *mem[] = {"deploy", "options", "resources", "limits", "memory"};
    const char *cpu[] = {"deploy", "options", "resources", "limits", "cpu"};
    if (yaml_int(path_get(root, scale_min, 4), "deploy.options.scale.min", &f->min_scale, err) <
            0 ||
        yaml_int(path_get(root, scale_max, 4), "deploy.options.scale.max", &f->max_scale, err) <
            0 ||
        yaml_int(path_get(root, conc, 5), "deploy.options.resources.limits.concurrency",
                 &f->concurrency, err) < 0)
        return -1;
    const char *m = json_string_value(path_get(root, mem, 5));
    if (m && cli_quantity_mib(m, &f->memory_mb) < 0) {
        cli_fail(err, 0, "deploy.options.resources.limits.memory '%s' is not a quantity", m);
        cli_hint(err, "write it like 256Mi or 1Gi");
        return -1;
    }
    const char *c = json_string_value(path_get(root, cpu, 5));
    if (c && cli_quantity_cpus(c, &f->cpus) < 0) {
        cli_fail(err, 0, "deploy.options.resources.limits.cpu '%s' is not a quantity", c);
        cli_hint(err, "write it like 500m or 1");
        return -1;
    }
    return 0;
}

int cli_func_yaml_load(const char *dir, cli_func_yaml *out, cli_error *err)
{
    *out = (cli_func_yaml){
        .min_scale = -1, .max_scale = -1, .concurrency = -1, .memory_mb = -1, .cpus = -1};
    if (!(out->envs = json_array()))
        return cli_fail(err, ENOMEM, "func.yaml");
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/func.yaml", dir) >= sizeof(path))
        return cli_fail(err, ENAMETOOLONG, "%s/func.yaml", dir);
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return 0;
    cleanup_buf cli_buf text = {0};
    if (cli_read_file(path, 1024 * 1024, &text, err) < 0)
        return -1;
    out->found = true;
    cleanup_json json_t *root = NULL;
    if (cli_yaml_parse(text.data, text.len, &root, err) < 0 || read_func_yaml(root, out, err) < 0) {
        cli_wrap(err, "%s", path);
        if (!err->hint[0])
            cli_hint(err, "fix func.yaml (hks-func reads name, runtime, run.envs and "
                          "deploy.options)");
        return -1;
    }
    return 0;
}

void cli_func_yaml_free(cli_func_yaml *f)
{
    free(f->name);
    free(f->runtime);
    json_decref(f->envs);
    *f = (cli_func_yaml){0};
}

char *cli_env_resolve(const char *name, const char *value, cli_error *err)
{
    const char *p = value;
    while (*p == ' ')
        p++;
    if (strncmp(p, "{{", 2) != 0)
        return strdup(value);
    p += 2;
    while (*p == ' ')
        p++;
    const char *close = strstr(p, "}}");
    size_t len = close ? (size_t)(close - p) : 0;
    while (len > 0 && p[len - 1] == ' ')
        len--;
    if (close && strncmp(p, "env:", 4) == 0 && len > 4) {
        char var[256];
        snprintf(var, sizeof(var), "%.*s", (int)(len - 4), p + 4);
        const char *v = getenv(var);
        if (!v) {
            cli_fail(err, 0, "run.envs %s wants {{ env:%s }}, and %s is not set", name, var, var);
            cli_hint(err, "export %s, or give the value with --env %s=VALUE", var, name);
            return NULL;
        }
        return strdup(v);
    }
    cli_fail(err, 0, "run.envs %s: '%s' (secrets and configMaps) is not supported by hksd", name,
             value);
    cli_hint(err, "set the value in func.yaml, use {{ env:VAR }}, or pass --env %s=VALUE", name);
    return NULL;
}

static int local_path(const char *dir, const char *file, char *out, size_t size, cli_error *err)
{
    if ((size_t)snprintf(out, size, "%s/.hks%s%s", dir, file ? "/" : "", file ? file : "") >= size)
        return cli_fail(err, ENAMETOOLONG, "%s/.hks", dir);
    return 0;
}

int cli_local_load(const char *dir, cli_local_fn *out, bool *found, cli_error *err)
{
    *out = (cli_local_fn){0};
    *found = false;
    char path[PATH_MAX];
    if (local_path(dir, "function.json", path, sizeof(path), err) < 0)
        return -1;
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return 0;
    json_error_t jerr;
    cleanup_json json_t *root = json_load_file(path, 0, &jerr);
    if (!json_is_object(root)) {
        cli_fail(err, 0, "read %s: %s", path, root ? "not a JSON object" : jerr.text);
        cli_hint(err, "remove it; hks-func deploy writes it again");
        return -1;
    }
    char **fields[] = {&out->name, &out->id, &out->url, &out->server, &out->project, &out->runtime};
    const char *keys[] = {"name", "id", "url", "server", "project", "runtime"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(keys); i++) {
        const char *v = json_string_value(json_object_get(root, keys[i]));
        if (v && !(*fields[i] = strdup(v))) {
            cli_local_free(out);
            return cli_fail(err, ENOMEM, "read %s", path);
        }
    }
    if (!out->id || !out->name) {
        cli_local_free(out);
        cli_fail(err, 0, "%s has no id or name", path);
        cli_hint(err, "remove it; hks-func deploy writes it again");
        return -1;
    }
    *found = true;
    return 0;
}

int cli_local_save(const char *dir, const json_t *record, const char *server, cli_error *err)
{
    char hks_dir[PATH_MAX], path[PATH_MAX], ignore[PATH_MAX];
    if (local_path(dir, NULL, hks_dir, sizeof(hks_dir), err) < 0 ||
        local_path(dir, "function.json", path, sizeof(path), err) < 0 ||
        local_path(dir, ".gitignore", ignore, sizeof(ignore), err) < 0)
        return -1;
    if (mkdir(hks_dir, 0755) < 0 && errno != EEXIST)
        return cli_fail(err, errno, "create %s", hks_dir);
    /* keeps .hks/ out of git without touching the project's own .gitignore */
    if (access(ignore, F_OK) < 0 && cli_write_file_atomic(ignore, "*\n", 2, 0644, err) < 0)
        return -1;
    cleanup_json json_t *doc = json_object();
    const char *keys[] = {"name", "id", "url", "project", "runtime", "expires_at"};
    for (size_t i = 0; doc && i < HKS_ARRAY_LEN(keys); i++) {
        json_t *v = json_object_get(record, keys[i]);
        if (v && json_object_set(doc, keys[i], v) < 0)
            return cli_fail(err, ENOMEM, "write %s", path);
    }
    if (!doc || json_object_set_new(doc, "server", json_string(server)) < 0)
        return cli_fail(err, ENOMEM, "write %s", path);
    cleanup_free char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    cleanup_buf cli_buf out = {0};
    if (!text || cli_buf_append(&out, text, strlen(text)) < 0 || cli_buf_append(&out, "\n", 1) < 0)
        return cli_fail(err, ENOMEM, "write %s", path);
    return cli_write_file_atomic(path, out.data, out.len, 0644, err);
}

int cli_local_remove(const char *dir, cli_error *err)
{
    char path[PATH_MAX];
    if (local_path(dir, "function.json", path, sizeof(path), err) < 0)
        return -1;
    if (unlink(path) < 0 && errno != ENOENT)
        return cli_fail(err, errno, "remove %s", path);
    return 0;
}

void cli_local_free(cli_local_fn *l)
{
    free(l->name);
    free(l->id);
    free(l->url);
    free(l->server);
    free(l->project);
    free(l->runtime);
    *l = (cli_local_fn){0};
}
