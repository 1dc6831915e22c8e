/* `hksd policy diff OLD NEW`: what a change to policies/ would allow that it did not before
 * (loosened), forbid (tightened), or alter without a direction (changed), for the review of a
 * policy pull request. */
#include "node_seccomp.h"
#include "policy.h"

#include <stdarg.h>
#include <string.h>

void policy_diff_line(FILE *out, policy_diff_counts *counts, const char *kind, const char *fmt, ...)
{
    if (strcmp(kind, "loosened") == 0)
        counts->loosened++;
    else if (strcmp(kind, "tightened") == 0)
        counts->tightened++;
    else
        counts->changed++;
    fprintf(out, "%s: ", kind);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
}

static json_t *load(const char *dir, const char *name, bool required, hks_error *err)
{
    char path[PATH_MAX + 300];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!required && access(path, F_OK) != 0 && errno == ENOENT)
        return json_null();
    return hksd_json_file_load(path, HKSD_CONFIG_FILE_MAX, true, err);
}

/* ---- limits.json ---- */

static int diff_limits(const char *old_dir, const char *new_dir, FILE *out, policy_diff_counts *c,
                       hks_error *err)
{
    const char *dirs[] = {old_dir, new_dir};
    json_t *sides[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/limits.json", dirs[i]);
        hksd_policy_limits checked;
        if (hksd_policy_limits_load(path, &checked, err) == 0)
            sides[i] = load(dirs[i], "limits.json", true, err);
        if (!sides[i]) {
            json_decref(sides[0]);
            return -1;
        }
    }
    static const char *const sections[] = {"defaults", "maxima", "ttl_seconds", "execute"};
    for (size_t s = 0; s < HKS_ARRAY_LEN(sections); s++) {
        json_t *o = json_object_get(sides[0], sections[s]),
               *n = json_object_get(sides[1], sections[s]);
        const char *key;
        json_t *nv;
        json_object_foreach(n, key, nv)
        {
            json_t *ov = json_object_get(o, key);
            if (!json_is_number(nv) || !json_is_number(ov))
                continue;
            double a = json_number_value(ov), b = json_number_value(nv);
            if (a == b)
                continue;
            policy_diff_line(out, c, b > a ? "loosened" : "tightened",
                             "limits.json: %s.%s: %g -> %g (%s)", sections[s], key, a, b,
                             b > a ? "raised" : "lowered");
        }
    }
    json_decref(sides[0]);
    json_decref(sides[1]);
    return 0;
}

/* ---- the profiles in seccomp/ ---- */

static void diff_arches(json_t *o, json_t *n, const char *label, FILE *out, policy_diff_counts *c)
{
    json_t *oa = json_object_get(o, "architectures"), *na = json_object_get(n, "architectures");
    size_t i, j;
    json_t *a, *b;
    json_array_foreach(na, i, a)
    {
        bool found = false;
        json_array_foreach(oa, j, b) found |= json_equal(a, b);
        if (!found)
            policy_diff_line(out, c, "loosened",
                             "%s: architectures: %s added (its system calls reach the filter)",
                             label, json_string_value(a));
    }
    json_array_foreach(oa, i, a)
    {
        bool found = false;
        json_array_foreach(na, j, b) found |= json_equal(a, b);
        if (!found)
            policy_diff_line(out, c, "tightened", "%s: architectures: %s removed (killed)", label,
                             json_string_value(a));
    }
    json_t *of = json_object_get(o, "flags"), *nf = json_object_get(n, "flags");
    if ((of || nf) && !(of && nf && json_equal(of, nf)))
        policy_diff_line(out, c, "changed", "%s: flags changed", label);
}

static int diff_profile(const char *old_dir, const char *new_dir, const char *name, FILE *out,
                        policy_diff_counts *c, hks_error *err)
{
    char rel[300];
    snprintf(rel, sizeof(rel), "seccomp/%s", name);
    json_t *o = load(old_dir, rel, false, err);
    json_t *n = o ? load(new_dir, rel, false, err) : NULL;
    int rc = -1;
    if (!o || !n)
        goto out;
    rc = 0;
    if (json_is_null(o) || json_is_null(n)) {
        policy_diff_line(out, c, "changed", "%s: %s", rel, json_is_null(o) ? "added" : "removed");
        goto out;
    }
    policy_view sandbox = {.capabilities = NULL, .arch = "amd64"};
    json_t *ot = policy_seccomp_table(o, &sandbox), *nt = policy_seccomp_table(n, &sandbox);
    diff_arches(o, n, rel, out, c);
    policy_diff_seccomp(ot, nt, rel, out, c);
    json_decref(ot);
    json_decref(nt);
out:
    json_decref(o);
    json_decref(n);
    return rc;
}

static int diff_seccomp(const char *old_dir, const char *new_dir, FILE *out, policy_diff_counts *c,
                        hks_error *err)
{
    json_t *names = json_array();
    const char *dirs[] = {old_dir, new_dir};
    for (int i = 0; i < 2; i++) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/seccomp", dirs[i]);
        cleanup_dir DIR *d = opendir(path);
        if (!d && errno != ENOENT) {
            json_decref(names);
            return hks_fail(err, errno, "open directory %s", path);
        }
        struct dirent *e;
        while (d && (e = readdir(d))) {
            size_t len = strlen(e->d_name);
            if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".json") != 0 ||
                strcmp(e->d_name, HKSD_SECCOMP_GROUPS_FILE) == 0)
                continue;
            bool seen = false;
            size_t k;
            json_t *s;
            json_array_foreach(names, k, s) seen |= strcmp(json_string_value(s), e->d_name) == 0;
            if (!seen)
                json_array_append_new(names, json_string(e->d_name));
        }
    }
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name)
    {
        if (diff_profile(old_dir, new_dir, json_string_value(name), out, c, err) < 0) {
            json_decref(names);
            return -1;
        }
    }
    json_decref(names);
    return 0;
}

/* ---- kubernetes/ ---- */

static int diff_kubernetes(const char *old_dir, const char *new_dir, const char *root, FILE *out,
                           policy_diff_counts *c, hks_error *err)
{
    char **old_files = policy_kubernetes_files(old_dir, err);
    char **new_files = old_files ? policy_kubernetes_files(new_dir, err) : NULL;
    bool any = new_files && (old_files[0] || new_files[0]);
    policy_free_list(old_files);
    if (!new_files)
        return -1;
    policy_free_list(new_files);
    if (!any)
        return 0;
    char old_k[PATH_MAX + 16], new_k[PATH_MAX + 16];
    snprintf(old_k, sizeof(old_k), "%s/kubernetes", old_dir);
    snprintf(new_k, sizeof(new_k), "%s/kubernetes", new_dir);
    const char *args[] = {"diff", old_k, new_k, NULL};
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return hks_fail(err, ENOMEM, "Kubernetes comparison");
    int status = policy_kubernetes_run(root, args, mem, err);
    fclose(mem);
    if (status != 0) {
        free(text);
        if (status > 0)
            hks_fail(err, 0, "the Kubernetes comparison failed (exit status %d)", status);
        return hks_wrap(err, "compare %s with %s", old_k, new_k);
    }
    for (char *p = text, *nl; p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(p, "loosened:", 9) == 0)
            c->loosened++;
        else if (strncmp(p, "tightened:", 10) == 0)
            c->tightened++;
        else
            c->changed++;
        fprintf(out, "%s\n", p);
    }
    free(text);
    return 0;
}

int policy_diff_dirs(const char *old_dir, const char *new_dir, const char *root, FILE *out,
                     hks_error *err)
{
    policy_diff_counts c = {0};
    if (diff_seccomp(old_dir, new_dir, out, &c, err) < 0 ||
        diff_limits(old_dir, new_dir, out, &c, err) < 0 ||
        diff_kubernetes(old_dir, new_dir, root, out, &c, err) < 0)
        return -1;
    fprintf(out, "%d loosened, %d tightened, %d changed\n", c.loosened, c.tightened, c.changed);
    return c.loosened;
}
