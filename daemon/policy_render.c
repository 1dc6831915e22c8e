/* The model of policy_show.c for people: plain text for a terminal, Markdown for a review or a
 * document. Both say the same things in the same order. */
#include "policy.h"

#include <string.h>

typedef struct render {
    FILE *out;
    bool md;
} render;

static void heading(render *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void heading(render *r, const char *fmt, ...)
{
    fputs(r->md ? "\n## " : "\n== ", r->out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->out, fmt, ap);
    va_end(ap);
    fputs("\n\n", r->out);
}

static const char *str(json_t *object, const char *key)
{
    const char *s = json_string_value(json_object_get(object, key));
    return s ? s : "";
}

/* Names separated by spaces (text) or as code spans (Markdown). */
static void names(render *r, json_t *list)
{
    size_t i;
    json_t *n;
    json_array_foreach(list, i, n)
    {
        fprintf(r->out, r->md ? "%s`%s`" : "%s%s", i ? " " : "", json_string_value(n));
    }
}

static void filter_text(render *r, json_t *filtered)
{
    json_t *filters = json_object_get(filtered, "filters");
    size_t i;
    json_t *f;
    fputs("allowed when ", r->out);
    bool first = true;
    json_array_foreach(filters, i, f)
    {
        if (strcmp(policy_action_status(str(f, "action")), "allowed") != 0)
            continue;
        fprintf(r->out, r->md ? "%s`%s`" : "%s(%s)", first ? "" : " || ", str(f, "when"));
        first = false;
    }
    fprintf(r->out, "; otherwise %s", str(filtered, "otherwise"));
}

static void seccomp(render *r, json_t *s)
{
    heading(r, "Seccomp profile: policies/%s", str(s, "profile"));
    fputs("Runtimes: ", r->out);
    names(r, json_object_get(s, "runtimes"));
    fprintf(r->out,
            " (every runtime runs under this profile).\nDefault action: %s. Architectures: ",
            str(s, "default_action"));
    names(r, json_object_get(s, "architectures"));
    fputs(" (other ABIs are killed).\n", r->out);
    if (json_object_get(s, "groups_error")) {
        fprintf(r->out, "\nNo groups: %s\n", str(s, "groups_error"));
        return;
    }
    fputs(r->md ? "\nGroups from `policies/seccomp/groups.json`:\n\n"
                : "\nGroups (policies/seccomp/groups.json):\n",
          r->out);
    json_t *filters = json_object_get(s, "filters");
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(s, "groups"), i, g)
    {
        json_t *by = json_object_get(g, "syscalls");
        static const char *const statuses[] = {"allowed", "filtered", "refused"};
        char status[128];
        snprintf(status, sizeof(status), "%s", str(g, "status"));
        if (strcmp(status, "refused") == 0) {
            size_t used = strlen(status), a;
            json_t *action;
            json_array_foreach(json_object_get(g, "actions"), a, action)
            {
                snprintf(status + used, sizeof(status) - used, "%s%s", a ? ", " : ": ",
                         json_string_value(action));
                used = strlen(status);
            }
        }
        fprintf(r->out, r->md ? "- **%s** (%s):" : "\n  [%s] %s:", r->md ? str(g, "name") : status,
                r->md ? status : str(g, "name"));
        for (size_t k = 0; k < HKS_ARRAY_LEN(statuses); k++) {
            json_t *list = json_object_get(by, statuses[k]);
            if (json_array_size(list) == 0)
                continue;
            if (strcmp(statuses[k], str(g, "status")) != 0)
                fprintf(r->out, " %s, contrary to its group:", statuses[k]);
            fputc(' ', r->out);
            names(r, list);
            if (strcmp(statuses[k], "filtered") != 0)
                continue;
            size_t j;
            json_t *n;
            json_array_foreach(list, j, n)
            {
                fprintf(r->out, r->md ? "\n  - `%s`: " : "\n      %s: ", json_string_value(n));
                filter_text(r, json_object_get(filters, json_string_value(n)));
            }
        }
        if (strcmp(str(g, "status"), "allowed") != 0)
            fprintf(r->out, r->md ? "\n  - why: %s" : "\n      why: %s", str(g, "reason"));
        fputc('\n', r->out);
    }
    json_t *ungrouped = json_object_get(s, "ungrouped");
    if (json_array_size(ungrouped) > 0) {
        fputs("\nIn no group (hksd policy check reports them): ", r->out);
        names(r, ungrouped);
        fputc('\n', r->out);
    }
    fprintf(r->out, "\nEvery other system call: %s.\n", str(s, "default_action"));
}

static void entry_text(render *r, json_t *value)
{
    if (json_is_string(value)) {
        fputs(json_string_value(value), r->out);
        return;
    }
    fputs("allowed when ", r->out);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(value, "allowed_when"), i, w)
    {
        fprintf(r->out, r->md ? "%s`%s`" : "%s(%s)", i ? " || " : "", json_string_value(w));
    }
}

static void docker_rows(render *r, json_t *rows, const char *title, bool details)
{
    fprintf(r->out, r->md ? "\n**%s** (%zu):" : "\n%s (%zu):", title, json_array_size(rows));
    if (json_array_size(rows) == 0) {
        fputs(" none\n", r->out);
        return;
    }
    size_t i;
    json_t *row;
    if (!details) {
        json_t *list = json_array();
        json_array_foreach(rows, i, row)
        {
            json_array_append(list, json_object_get(row, "syscall"));
        }
        fputc(' ', r->out);
        names(r, list);
        fputc('\n', r->out);
        json_decref(list);
        return;
    }
    fputc('\n', r->out);
    json_array_foreach(rows, i, row)
    {
        fprintf(r->out, r->md ? "- `%s`: here " : "  %s: here ", str(row, "syscall"));
        entry_text(r, json_object_get(row, "here"));
        fputs("; Docker ", r->out);
        entry_text(r, json_object_get(row, "docker"));
        fputc('\n', r->out);
    }
}

static void docker(render *r, json_t *d)
{
    heading(r, "Compared with Docker's default seccomp profile");
    fprintf(r->out,
            "Reference: policies/%s (%s), as a default `docker run` on %s gets it (Docker's "
            "default capabilities).\n",
            str(d, "profile"), str(d, "source"), str(d, "arch"));
    docker_rows(r, json_object_get(d, "allowed_here_refused_by_docker"),
                "Allowed here, refused by Docker", true);
    docker_rows(r, json_object_get(d, "refused_here_allowed_by_docker"),
                "Refused here, allowed by Docker", false);
    docker_rows(r, json_object_get(d, "filtered_differently"),
                "Allowed by both, under different argument filters", true);
    json_t *unknown = json_object_get(d, "docker_names_unknown_to_libseccomp");
    if (json_array_size(unknown) > 0) {
        fputs("\nNames in Docker's profile this libseccomp does not know (not compared): ", r->out);
        names(r, unknown);
        fputc('\n', r->out);
    }
}

static void limits(render *r, json_t *l)
{
    heading(r, "Limits: policies/limits.json");
    if (json_object_get(l, "error"))
        fprintf(r->out, "INVALID, the daemon refuses it: %s\n\n", str(l, "error"));
    fputs(r->md ? "| limit | default | maximum |\n|---|---|---|\n"
                : "  limit           default     maximum\n",
          r->out);
    json_t *defaults = json_object_get(l, "defaults"), *maxima = json_object_get(l, "maxima");
    const char *key;
    json_t *d;
    json_object_foreach(defaults, key, d)
    {
        char dv[64], mv[64];
        json_t *m = json_object_get(maxima, key);
        snprintf(dv, sizeof(dv), "%.15g", json_number_value(d));
        snprintf(mv, sizeof(mv), "%.15g", json_number_value(m));
        fprintf(r->out, r->md ? "| %s | %s | %s |\n" : "  %-15s %-11s %s\n", key, dv, mv);
    }
    json_t *ttl = json_object_get(l, "ttl_seconds");
    fprintf(r->out, r->md ? "| ttl_seconds | %lld | %lld |\n" : "  ttl_seconds     %-11lld %lld\n",
            (long long)json_integer_value(json_object_get(ttl, "default")),
            (long long)json_integer_value(json_object_get(ttl, "maximum")));
    fputs(r->md ? "\nOne execute request: " : "\n  one execute request: ", r->out);
    size_t i = 0;
    json_object_foreach(json_object_get(l, "execute"), key, d)
    {
        fprintf(r->out, "%s%s %lld", i++ ? ", " : "", key, (long long)json_integer_value(d));
    }
    fputc('\n', r->out);
}

static void jwt(render *r, json_t *j)
{
    heading(r, "Tokens (JWT)");
    fputs("Algorithms: ", r->out);
    names(r, json_object_get(j, "algorithms"));
    fputs(" (each key pinned to one by its file name; \"none\" and others refused).\n", r->out);
    fprintf(r->out, "Keys in %s: ", str(j, "keys_dir"));
    json_t *keys = json_object_get(j, "keys");
    size_t i;
    json_t *k;
    if (!keys)
        fprintf(r->out, "none loaded (%s)", str(j, "keys_error"));
    else if (json_array_size(keys) == 0)
        fputs("none yet (hksd creates hs256.key, HS256, on its first start)", r->out);
    json_array_foreach(keys, i, k)
    {
        fprintf(r->out, "%s%s (%s)", i ? ", " : "", str(k, "kid"), str(k, "alg"));
    }
    fputs(".\nIssuers: ", r->out);
    names(r, json_object_get(j, "issuers"));
    fputs("; audiences: ", r->out);
    names(r, json_object_get(j, "audiences"));
    fprintf(r->out, "; clock leeway %lld s; maximum token lifetime %lld s.\n\n",
            (long long)json_integer_value(json_object_get(j, "leeway_s")),
            (long long)json_integer_value(json_object_get(j, "max_lifetime_s")));
    fputs(r->md ? "| method | path | scope |\n|---|---|---|\n" : "Scopes per route:\n", r->out);
    json_t *route;
    json_array_foreach(json_object_get(j, "routes"), i, route)
    {
        json_t *scope = json_object_get(route, "scope");
        const char *shown = !json_is_string(scope)           ? "(no token)"
                            : json_string_length(scope) == 0 ? "(any valid token)"
                                                             : json_string_value(scope);
        fprintf(r->out, r->md ? "| %s | `%s` | %s |\n" : "  %-7s %-44s %s\n", str(route, "method"),
                str(route, "path"), shown);
    }
}

/* The objects a sample function gets, as the kubernetes backend sends them (JSON). */
static void rendered_objects(render *r, json_t *k)
{
    json_t *rendered = json_object_get(k, "rendered");
    if (!rendered) {
        fprintf(r->out, "The objects cannot be rendered: %s\n\n", str(k, "render_error"));
        return;
    }
    json_t *sample = json_object_get(rendered, "sample");
    fprintf(r->out,
            "What a function gets on the kubernetes backend, rendered for a sample function "
            "(%s of project %s, %s, namespace %s) exactly as hksd sends it:\n",
            str(sample, "id"), str(sample, "project"), str(sample, "runtime"),
            str(sample, "namespace"));
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(rendered, "objects"), i, o)
    {
        char *text = json_dumps(json_object_get(o, "object"), JSON_INDENT(2) | JSON_SORT_KEYS);
        fprintf(r->out, r->md ? "\n### %s %s\n\n```json\n%s\n```\n" : "\n--- %s %s\n%s\n",
                str(o, "kind"), str(o, "name"), text ? text : "(out of memory)");
        free(text);
    }
    fputc('\n', r->out);
}

static void kubernetes(render *r, json_t *k)
{
    heading(r, "Kubernetes objects: %s", str(k, "dir"));
    rendered_objects(r, k);
    fprintf(r->out, "Backend configured: %s. ", str(k, "backend"));
    json_t *files = json_object_get(k, "files");
    if (json_object_get(k, "error")) {
        fprintf(r->out, "Cannot list them: %s\n", str(k, "error"));
        return;
    }
    if (json_array_size(files) == 0) {
        fputs("No files: functions and builds get no Kubernetes objects from policies/.\n", r->out);
        return;
    }
    fputs("Each file as the backend takes it:\n", r->out);
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        fprintf(r->out, r->md ? "\n### %s\n\n```yaml\n" : "\n--- %s\n", str(f, "file"));
        if (json_object_get(f, "error"))
            fprintf(r->out, "(unreadable: %s)\n", str(f, "error"));
        const char *text = str(f, "text");
        fputs(text, r->out);
        if (*text && text[strlen(text) - 1] != '\n')
            fputc('\n', r->out);
        if (r->md)
            fputs("```\n", r->out);
    }
}

void policy_show_render(json_t *model, policy_format format, FILE *out)
{
    render r = {.out = out, .md = format == POLICY_MARKDOWN};
    fprintf(out,
            r.md ? "# HKS Functions: effective policy\n\nPolicies: `%s`\n"
                 : "HKS Functions: effective policy (policies: %s)\n",
            str(model, "policies_dir"));
    seccomp(&r, json_object_get(model, "seccomp"));
    docker(&r, json_object_get(model, "docker"));
    limits(&r, json_object_get(model, "limits"));
    jwt(&r, json_object_get(model, "jwt"));
    kubernetes(&r, json_object_get(model, "kubernetes"));
}
