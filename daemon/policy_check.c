/* `hksd policy check DIR`: every policy file under DIR, each problem on one line naming the file
 * and the field. The daemon's own loaders decide what it would refuse (limits.json through
 * hksd_policy_limits_load, profiles through libseccomp in sbx_profile_check); the rest are the
 * checks a reviewer would make by hand. */
#include "node_seccomp.h"
#include "policy.h"

#include <dirent.h>
#include <seccomp.h>
#include <string.h>
#include <sys/stat.h>

#define GROUPS_FILE HKSD_SECCOMP_GROUPS_FILE

static void problem(FILE *out, int *count, const char *file, const char *field, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));

static void problem(FILE *out, int *count, const char *file, const char *field, const char *fmt,
                    ...)
{
    (*count)++;
    fprintf(out, "%s: %s: ", file, field);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
}

/* ---- groups.json ---- */

static const char *const group_statuses[] = {"allowed", "filtered", "refused"};

/* The field "syscalls[i].names[j]" of the rule that decides name's treatment. */
static void deciding_field(json_t *profile, json_t *entry, const char *name, char *out, size_t size)
{
    json_t *rules = json_object_get(entry, "rules");
    size_t rule_index = (size_t)json_integer_value(json_array_get(rules, 0));
    json_t *names =
        json_object_get(json_array_get(json_object_get(profile, "syscalls"), rule_index), "names");
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0) {
            snprintf(out, size, "syscalls[%zu].names[%zu]", rule_index, i);
            return;
        }
    }
    snprintf(out, size, "syscalls[%zu]", rule_index);
}

static bool check_group_shape(json_t *group, const char *field, const char *label, FILE *out,
                              int *count)
{
    if (!json_is_object(group)) {
        problem(out, count, label, field, "must be an object {name, status, syscalls, reason}");
        return false;
    }
    char f[96];
    const char *key;
    json_t *value;
    json_object_foreach(group, key, value)
    {
        if (strcmp(key, "name") != 0 && strcmp(key, "status") != 0 &&
            strcmp(key, "syscalls") != 0 && strcmp(key, "reason") != 0) {
            snprintf(f, sizeof(f), "%s.%.32s", field, key);
            problem(out, count, label, f, "unknown key (known: name, status, syscalls, reason)");
        }
    }
    static const char *const texts[] = {"name", "reason"};
    bool ok = true;
    for (size_t k = 0; k < HKS_ARRAY_LEN(texts); k++) {
        json_t *v = json_object_get(group, texts[k]);
        if (!json_is_string(v) || json_string_length(v) == 0) {
            snprintf(f, sizeof(f), "%s.%s", field, texts[k]);
            problem(out, count, label, f, "required, a non-empty string");
            ok = false;
        }
    }
    json_t *status = json_object_get(group, "status");
    bool known = false;
    for (size_t k = 0; json_is_string(status) && k < HKS_ARRAY_LEN(group_statuses); k++)
        known |= strcmp(json_string_value(status), group_statuses[k]) == 0;
    if (!known) {
        snprintf(f, sizeof(f), "%s.status", field);
        problem(out, count, label, f, "required, one of allowed, filtered, refused");
        ok = false;
    }
    json_t *syscalls = json_object_get(group, "syscalls");
    if (!json_is_array(syscalls) || json_array_size(syscalls) == 0) {
        snprintf(f, sizeof(f), "%s.syscalls", field);
        problem(out, count, label, f, "required, a non-empty array of syscall names");
        ok = false;
    }
    return ok;
}

int policy_check_groups(json_t *groups, const char *groups_label, json_t *profile,
                        const char *profile_label, FILE *out)
{
    int count = 0;
    json_t *list = json_object_get(groups, "groups");
    if (!json_is_array(list)) {
        problem(out, &count, groups_label, "groups", "required, an array of groups");
        return count;
    }
    policy_view sandbox = {.capabilities = NULL, .arch = "amd64"};
    json_t *table = policy_seccomp_table(profile, &sandbox);
    json_t *member_of = json_object(); /* syscall -> "groups[i]" */
    size_t i;
    json_t *group;
    json_array_foreach(list, i, group)
    {
        char field[48];
        snprintf(field, sizeof(field), "groups[%zu]", i);
        if (!check_group_shape(group, field, groups_label, out, &count))
            continue;
        const char *status = json_string_value(json_object_get(group, "status"));
        const char *name = json_string_value(json_object_get(group, "name"));
        size_t j;
        json_t *call;
        json_array_foreach(json_object_get(group, "syscalls"), j, call)
        {
            char f[96];
            snprintf(f, sizeof(f), "%s.syscalls[%zu]", field, j);
            const char *text = json_string_value(call);
            if (!text) {
                problem(out, &count, groups_label, f, "must be a string");
                continue;
            }
            if (seccomp_syscall_resolve_name(text) == __NR_SCMP_ERROR) {
                problem(out, &count, groups_label, f, "unknown syscall \"%s\"", text);
                continue;
            }
            json_t *earlier = json_object_get(member_of, text);
            if (earlier) {
                problem(out, &count, groups_label, f, "\"%s\" is also in %s", text,
                        json_string_value(earlier));
                continue;
            }
            json_object_set_new(member_of, text, json_string(field));
            json_t *entry = json_object_get(json_object_get(table, "syscalls"), text);
            json_t *effect = policy_seccomp_lookup(table, text);
            const char *actual = json_string_value(json_object_get(effect, "status"));
            if (strcmp(actual, status) != 0) {
                char where[96];
                if (entry)
                    deciding_field(profile, entry, text, where, sizeof(where));
                else
                    snprintf(where, sizeof(where), "defaultAction");
                problem(out, &count, profile_label, where,
                        "\"%s\" is %s (%s), but %s puts it in the %s group \"%s\"", text, actual,
                        json_string_value(json_object_get(effect, "action")), groups_label, status,
                        name);
            }
            json_decref(effect);
        }
    }
    const char *call;
    json_t *entry;
    json_object_foreach(json_object_get(table, "syscalls"), call, entry)
    {
        if (json_object_get(member_of, call))
            continue;
        char where[96];
        deciding_field(profile, entry, call, where, sizeof(where));
        problem(out, &count, profile_label, where,
                "\"%s\" is in no group of %s: add it to the group that says why it is %s", call,
                groups_label, json_string_value(json_object_get(entry, "status")));
    }
    json_decref(member_of);
    json_decref(table);
    return count;
}

/* ---- one directory ---- */

static json_t *load_json(const char *path, FILE *out, int *count)
{
    hks_error err = {0};
    json_t *root = hksd_json_file_load(path, HKSD_CONFIG_FILE_MAX, true, &err);
    if (!root) {
        (*count)++;
        fprintf(out, "%s\n", err.msg);
    }
    return root;
}

static void check_limits(const char *dir, FILE *out, int *count)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/limits.json", dir);
    hksd_policy_limits limits;
    hks_error err = {0};
    /* the daemon's loader: what it refuses at start and on SIGHUP, named by file and field */
    if (hksd_policy_limits_load(path, &limits, &err) < 0) {
        (*count)++;
        fprintf(out, "%s\n", err.msg);
    }
}

/* "FIELD" of a "LABEL: FIELD: message" line (label_len bytes of label first), or NULL. */
static bool line_field(const char *line, size_t label_len, const char **field, size_t *len)
{
    if (strncmp(line + label_len, ": ", 2) != 0)
        return false;
    *field = line + label_len + 2;
    const char *end = strstr(*field, ": ");
    if (!end)
        return false;
    *len = (size_t)(end - *field);
    return true;
}

/* Whether libseccomp's problem line says again what the schema already reported: the same field
 * or one inside it ("syscalls[3]" after "syscalls[3].action"). */
static bool already_reported(const char *line, const char *schema, const char *label)
{
    size_t label_len = strlen(label), len = 0;
    const char *field = NULL;
    if (!line_field(line, label_len, &field, &len))
        return false;
    for (const char *p = schema; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *seen = NULL;
        size_t seen_len = 0;
        if (line_field(p, label_len, &seen, &seen_len) && seen_len >= len &&
            strncmp(seen, field, len) == 0 &&
            (seen_len == len || seen[len] == '.' || seen[len] == '['))
            return true;
    }
    return false;
}

/* One profile: the schema and rule checks, then libseccomp's view (unknown names, what it cannot
 * compile) without what the schema already said. */
static json_t *check_profile(const char *path, FILE *out, int *count)
{
    json_t *profile = load_json(path, out, count);
    if (!profile)
        return NULL;
    char *schema = NULL, *compiled = NULL;
    size_t schema_len = 0, compiled_len = 0;
    FILE *mem = open_memstream(&schema, &schema_len);
    if (!mem) {
        problem(out, count, path, "(file)", "out of memory");
        return profile;
    }
    *count += policy_check_seccomp_json(profile, path, mem);
    fclose(mem);
    fputs(schema, out);
    mem = open_memstream(&compiled, &compiled_len);
    if (mem) {
        hks_error err = {0};
        if (sbx_profile_check(path, mem, &err) < 0)
            fprintf(mem, "%s: (file): %s\n", path, err.msg);
        fclose(mem);
    }
    char *save = NULL;
    for (char *line = compiled ? strtok_r(compiled, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        if (already_reported(line, schema, path))
            continue;
        fprintf(out, "%s\n", line);
        (*count)++;
    }
    free(schema);
    free(compiled);
    return profile;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n > s && strcmp(name + n - s, suffix) == 0;
}

/* dir/sub's regular files whose names end in one of suffixes (NULL-terminated), sorted. */
static char **list_files(const char *dir, const char *sub, const char *const *suffixes,
                         hks_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    cleanup_dir DIR *d = opendir(path);
    char **list = calloc(1, sizeof(*list));
    if (!list) {
        hks_fail(err, ENOMEM, "list %s", path);
        return NULL;
    }
    if (!d) {
        if (errno == ENOENT)
            return list;
        hks_fail(err, errno, "open directory %s", path);
        free(list);
        return NULL;
    }
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        bool wanted = false;
        for (const char *const *s = suffixes; *s; s++)
            wanted |= e->d_name[0] != '.' && has_suffix(e->d_name, *s);
        if (!wanted)
            continue;
        char **grown = realloc(list, (n + 2) * sizeof(*list));
        if (!grown || asprintf(&grown[n], "%s/%s", path, e->d_name) < 0) {
            list = grown ? grown : list;
            list[n] = NULL;
            policy_free_list(list);
            hks_fail(err, ENOMEM, "list %s", path);
            return NULL;
        }
        list = grown;
        list[++n] = NULL;
    }
    qsort(list, n, sizeof(*list), compare_names);
    return list;
}

void policy_free_list(char **list)
{
    for (char **p = list; p && *p; p++)
        free(*p);
    free(list);
}

char **policy_kubernetes_files(const char *dir, hks_error *err)
{
    static const char *const suffixes[] = {".yaml", ".yml", ".json", NULL};
    return list_files(dir, "kubernetes", suffixes, err);
}

static void check_seccomp_dir(const char *dir, FILE *out, int *count)
{
    static const char *const suffixes[] = {".json", NULL};
    hks_error err = {0};
    char **files = list_files(dir, "seccomp", suffixes, &err);
    if (!files) {
        problem(out, count, dir, "seccomp", "%s", err.msg);
        return;
    }
    char groups_path[PATH_MAX + 32];
    snprintf(groups_path, sizeof(groups_path), "%s/seccomp/" GROUPS_FILE, dir);
    char described[PATH_MAX + 300] = "";
    json_t *groups = NULL;
    if (access(groups_path, F_OK) == 0) {
        groups = load_json(groups_path, out, count);
        const char *profile = json_string_value(json_object_get(groups, "profile"));
        if (groups && !profile)
            problem(out, count, groups_path, "profile",
                    "required, the file name of the profile the groups describe");
        else if (profile)
            snprintf(described, sizeof(described), "%s/seccomp/%s", dir, profile);
    }
    bool described_seen = false, function_seen = false;
    for (char **f = files; *f; f++) {
        if (strcmp(*f, groups_path) == 0)
            continue;
        json_t *profile = check_profile(*f, out, count);
        function_seen |= has_suffix(*f, "/seccomp/function.json");
        if (strcmp(*f, described) == 0) {
            described_seen = true;
            if (profile)
                *count += policy_check_groups(groups, groups_path, profile, *f, out);
        }
        json_decref(profile);
    }
    if (!function_seen)
        problem(out, count, dir, "seccomp/function.json",
                "missing: every runtime's sandbox needs it, the daemon does not start without it");
    if (groups && *described && !described_seen)
        problem(out, count, groups_path, "profile", "%s does not exist", described);
    json_decref(groups);
    policy_free_list(files);
}

static void check_kubernetes(const char *dir, const char *root, FILE *out, int *count)
{
    hks_error err = {0};
    char **files = policy_kubernetes_files(dir, &err);
    if (!files) {
        problem(out, count, dir, "kubernetes", "%s", err.msg);
        return;
    }
    size_t n = 0;
    while (files[n])
        n++;
    if (n == 0) {
        policy_free_list(files);
        return;
    }
    const char **args = calloc(n + 2, sizeof(*args));
    if (!args) {
        policy_free_list(files);
        problem(out, count, dir, "kubernetes", "out of memory");
        return;
    }
    args[0] = "check";
    for (size_t i = 0; i < n; i++)
        args[i + 1] = files[i];
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int status = mem ? policy_kubernetes_run(root, args, mem, &err) : -1;
    if (mem)
        fclose(mem);
    if (status < 0) {
        problem(out, count, dir, "kubernetes", "cannot validate %zu file%s: %s", n,
                n == 1 ? "" : "s", mem ? err.msg : "out of memory");
    } else {
        int lines = 0;
        for (size_t i = 0; i < len; i++)
            lines += text[i] == '\n';
        fwrite(text, 1, len, out);
        *count += lines;
        if (status != 0 && lines == 0)
            problem(out, count, dir, "kubernetes", "the validator failed (exit status %d)", status);
    }
    free(text);
    free(args);
    policy_free_list(files);
}

int policy_check_dir(const char *dir, const char *root, FILE *out)
{
    int count = 0;
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        problem(out, &count, dir, "(directory)", "not a directory of policies");
        return count;
    }
    check_limits(dir, out, &count);
    check_seccomp_dir(dir, out, &count);
    check_kubernetes(dir, root, out, &count);
    return count;
}
