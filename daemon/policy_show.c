/* `hksd policy show`: the effective policy, from the same files and settings the daemon reads at
 * start, as one JSON model (printed as is, or rendered by policy_render.c). */
#include "policy.h"

#include <dirent.h>
#include <string.h>

/* Every runtime the daemon serves runs under this profile (daemon.c, runtimes/pool.c). */
#define FUNCTION_PROFILE "seccomp/function.json"

static json_t *load(const char *dir, const char *name, hks_error *err)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return hksd_json_file_load(path, HKSD_CONFIG_FILE_MAX, true, err);
}

static void push_unique(json_t *array, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(array, i, s)
    {
        if (strcmp(json_string_value(s), name) == 0)
            return;
    }
    json_array_append_new(array, json_string(name));
}

/* The runtimes under root/runtimes (each a directory with a launcher). */
static json_t *runtime_names(const char *root)
{
    json_t *names = json_array();
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/runtimes", root);
    cleanup_dir DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char launcher[PATH_MAX + 600];
        snprintf(launcher, sizeof(launcher), "%s/%s/launcher.py", path, e->d_name);
        bool has = access(launcher, R_OK) == 0;
        snprintf(launcher, sizeof(launcher), "%s/%s/launcher.js", path, e->d_name);
        if (e->d_name[0] != '.' && (has || access(launcher, R_OK) == 0))
            json_array_append_new(names, json_string(e->d_name));
    }
    return names;
}

/* The profile by the groups of groups.json: each group's calls by their actual status. */
static json_t *grouped(json_t *table, json_t *groups)
{
    json_t *out = json_array(), *seen = json_object();
    size_t i;
    json_t *group;
    json_array_foreach(json_object_get(groups, "groups"), i, group)
    {
        json_t *by = json_pack("{s:[],s:[],s:[]}", "allowed", "filtered", "refused");
        json_t *actions = json_array();
        size_t j;
        json_t *call;
        json_array_foreach(json_object_get(group, "syscalls"), j, call)
        {
            const char *name = json_string_value(call);
            if (!name)
                continue;
            json_object_set_new(seen, name, json_true());
            json_t *effect = policy_seccomp_lookup(table, name);
            const char *status = json_string_value(json_object_get(effect, "status"));
            json_array_append_new(json_object_get(by, status), json_string(name));
            push_unique(actions, json_string_value(json_object_get(effect, "action")));
            json_decref(effect);
        }
        json_array_append_new(
            out, json_pack("{s:O*,s:O*,s:O*,s:o,s:o}", "name", json_object_get(group, "name"),
                           "status", json_object_get(group, "status"), "reason",
                           json_object_get(group, "reason"), "syscalls", by, "actions", actions));
    }
    json_t *ungrouped = json_array();
    const char *name;
    json_t *entry;
    json_object_foreach(json_object_get(table, "syscalls"), name, entry)
    {
        if (!json_object_get(seen, name))
            json_array_append_new(ungrouped, json_string(name));
    }
    json_decref(seen);
    return json_pack("{s:o,s:o}", "groups", out, "ungrouped", ungrouped);
}

static json_t *filters_of(json_t *table)
{
    json_t *out = json_object();
    const char *name;
    json_t *entry;
    json_object_foreach(json_object_get(table, "syscalls"), name, entry)
    {
        if (strcmp(json_string_value(json_object_get(entry, "status")), "filtered") == 0)
            json_object_set_new(out, name,
                                json_pack("{s:O,s:O}", "filters", json_object_get(entry, "filters"),
                                          "otherwise", json_object_get(entry, "action")));
    }
    return out;
}

static json_t *seccomp_section(const hksd_config *cfg, json_t **table_out, hks_error *err)
{
    json_t *profile = load(cfg->policies_dir, FUNCTION_PROFILE, err);
    if (!profile)
        return NULL;
    policy_view sandbox = {.capabilities = NULL, .arch = "amd64"};
    json_t *table = policy_seccomp_table(profile, &sandbox);
    hks_error groups_err = {0};
    json_t *groups = load(cfg->policies_dir, "seccomp/groups.json", &groups_err);
    json_t *section = json_pack(
        "{s:s,s:o,s:O,s:O*,s:o}", "profile", FUNCTION_PROFILE, "runtimes", runtime_names(cfg->root),
        "default_action", json_object_get(table, "default"), "architectures",
        json_object_get(profile, "architectures"), "filters", filters_of(table));
    if (groups)
        json_object_update(section, grouped(table, groups));
    else
        json_object_set_new(section, "groups_error", json_string(groups_err.msg));
    json_decref(groups);
    json_decref(profile);
    *table_out = table;
    return section;
}

static json_t *describe_entry(json_t *entry)
{
    if (strcmp(json_string_value(json_object_get(entry, "status")), "filtered") != 0)
        return json_incref(json_object_get(entry, "action"));
    json_t *when = json_array();
    size_t i;
    json_t *filter;
    json_array_foreach(json_object_get(entry, "filters"), i, filter)
    {
        const char *action = json_string_value(json_object_get(filter, "action"));
        if (strcmp(policy_action_status(action), "allowed") == 0)
            json_array_append(when, json_object_get(filter, "when"));
    }
    return json_pack("{s:o}", "allowed_when", when);
}

/* Ours against Docker's default profile, call by call. */
static json_t *docker_section(const hksd_config *cfg, json_t *ours, hks_error *err)
{
    json_t *meta = load(cfg->policies_dir, "reference/docker.json", err);
    if (!meta)
        return NULL;
    char profile_name[256];
    const char *file = json_string_value(json_object_get(meta, "profile"));
    snprintf(profile_name, sizeof(profile_name), "reference/%s",
             file ? file : "docker-default.json");
    json_t *profile = load(cfg->policies_dir, profile_name, err);
    if (!profile) {
        json_decref(meta);
        return NULL;
    }
    const char *arch = json_string_value(json_object_get(meta, "arch"));
    policy_view docker = {.capabilities = json_object_get(meta, "capabilities"),
                          .arch = arch ? arch : "amd64"};
    json_t *theirs = policy_seccomp_table(profile, &docker);
    json_t *names = json_array();
    const char *name;
    json_t *entry;
    json_object_foreach(json_object_get(ours, "syscalls"), name, entry)
    {
        push_unique(names, name);
    }
    json_object_foreach(json_object_get(theirs, "syscalls"), name, entry)
    {
        push_unique(names, name);
    }
    json_t *more = json_array(), *less = json_array(), *other = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        name = json_string_value(n);
        json_t *here = policy_seccomp_lookup(ours, name),
               *there = policy_seccomp_lookup(theirs, name);
        const char *hs = json_string_value(json_object_get(here, "status"));
        const char *ts = json_string_value(json_object_get(there, "status"));
        json_t *row = json_pack("{s:s,s:o,s:o}", "syscall", name, "here", describe_entry(here),
                                "docker", describe_entry(there));
        bool here_refused = strcmp(hs, "refused") == 0, there_refused = strcmp(ts, "refused") == 0;
        if (!here_refused && there_refused)
            json_array_append(more, row);
        else if (here_refused && !there_refused)
            json_array_append(less, row);
        else if (!here_refused &&
                 !json_equal(json_object_get(row, "here"), json_object_get(row, "docker")))
            json_array_append(other, row);
        json_decref(row);
        json_decref(here);
        json_decref(there);
    }
    json_t *section = json_pack(
        "{s:s,s:O*,s:O*,s:O*,s:o,s:o,s:o,s:O}", "profile", profile_name, "source",
        json_object_get(meta, "source"), "arch", json_object_get(meta, "arch"), "capabilities",
        json_object_get(meta, "capabilities"), "allowed_here_refused_by_docker", more,
        "refused_here_allowed_by_docker", less, "filtered_differently", other,
        "docker_names_unknown_to_libseccomp", json_object_get(theirs, "unknown"));
    json_decref(names);
    json_decref(theirs);
    json_decref(profile);
    json_decref(meta);
    return section;
}

static json_t *limits_section(const hksd_config *cfg, hks_error *err)
{
    json_t *raw = load(cfg->policies_dir, "limits.json", err);
    if (!raw)
        return NULL;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/limits.json", cfg->policies_dir);
    hksd_policy_limits checked;
    hks_error invalid = {0};
    json_t *section = json_object();
    static const char *const parts[] = {"defaults", "maxima", "ttl_seconds", "execute"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(parts); i++) {
        json_t *copy = json_deep_copy(json_object_get(raw, parts[i]));
        json_object_del(copy, "_comment");
        json_object_set_new(section, parts[i], copy ? copy : json_null());
    }
    if (hksd_policy_limits_load(path, &checked, &invalid) < 0)
        json_object_set_new(section, "error", json_string(invalid.msg));
    json_decref(raw);
    return section;
}

static json_t *jwt_section(const hksd_config *cfg, const hksd_policy_api *api)
{
    json_t *algorithms = json_array(), *routes = json_array();
    for (const char *const *a = api->algorithms; a && *a; a++)
        json_array_append_new(algorithms, json_string(*a));
    for (size_t i = 0; i < api->n_routes; i++) {
        const hksd_policy_route *r = &api->routes[i];
        json_array_append_new(routes, json_pack("{s:s,s:s,s:s?}", "method", r->method, "path",
                                                r->path, "scope", r->scope));
    }
    json_t *section =
        json_pack("{s:o,s:s,s:[s],s:[s],s:I,s:I,s:o}", "algorithms", algorithms, "keys_dir",
                  cfg->keys_dir, "issuers", cfg->jwt_issuer, "audiences", cfg->jwt_audience,
                  "leeway_s", (json_int_t)cfg->jwt_leeway_s, "max_lifetime_s",
                  (json_int_t)cfg->jwt_max_lifetime_s, "routes", routes);
    hks_error err = {0};
    json_t *keys = api->describe_keys ? api->describe_keys(cfg->keys_dir, &err) : NULL;
    if (keys)
        json_object_set_new(section, "keys", keys);
    else
        json_object_set_new(section, "keys_error",
                            json_string(api->describe_keys ? err.msg : "not available"));
    return section;
}

static json_t *kubernetes_section(const hksd_config *cfg)
{
    hks_error err = {0};
    char **files = policy_kubernetes_files(cfg->policies_dir, &err);
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/kubernetes", cfg->policies_dir);
    json_t *section = json_pack("{s:s,s:s,s:[]}", "dir", dir, "backend", cfg->backend, "files");
    hks_error render_err = {0};
    json_t *rendered = policy_kubernetes_sample(cfg, &render_err);
    json_object_set_new(section, rendered ? "rendered" : "render_error",
                        rendered ? rendered : json_string(render_err.msg));
    if (!files) {
        json_object_set_new(section, "error", json_string(err.msg));
        return section;
    }
    for (char **f = files; *f; f++) {
        cleanup_free char *text = malloc(HKSD_CONFIG_FILE_MAX + 1);
        hks_error read_err = {0};
        ssize_t n = text ? hks_read_file(*f, text, HKSD_CONFIG_FILE_MAX + 1, &read_err) : -1;
        json_t *item = json_pack("{s:s}", "file", *f + strlen(cfg->policies_dir) + 1);
        if (n >= 0)
            json_object_set_new(item, "text", json_stringn(text, (size_t)n));
        else
            json_object_set_new(item, "error", json_string(text ? read_err.msg : "out of memory"));
        json_array_append_new(json_object_get(section, "files"), item);
    }
    policy_free_list(files);
    return section;
}

json_t *policy_show_model(const hksd_config *cfg, const hksd_policy_api *api, hks_error *err)
{
    json_t *table = NULL;
    json_t *seccomp = seccomp_section(cfg, &table, err);
    if (!seccomp)
        return NULL;
    json_t *docker = docker_section(cfg, table, err);
    json_t *limits = docker ? limits_section(cfg, err) : NULL;
    json_decref(table);
    if (!docker || !limits) {
        json_decref(seccomp);
        json_decref(docker);
        return NULL;
    }
    return json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "root", cfg->root, "policies_dir",
                     cfg->policies_dir, "seccomp", seccomp, "docker", docker, "limits", limits,
                     "jwt", jwt_section(cfg, api), "kubernetes", kubernetes_section(cfg));
}
