/* REST operations on the kinds hksd uses: paths built from checked names, replies read through
 * kube_parse.c, failures made into messages that name the kind, the object and the namespace. */
#include "kube_internal.h"

#include <errno.h>
#include <string.h>

#define PATH_LEN       2048
#define APPLY_ATTEMPTS 4
#define WATCH_DEFAULT  (5u * 60u * 1000u)

/* DNS-1123 subdomain: what object names may be. */
static bool valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > KUBE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && !((ch == '-' || ch == '.') && i > 0 && i + 1 < n))
            return false;
    }
    return true;
}

/* "<Kind> <name> in namespace <ns>" for messages. */
static void describe(char *out, size_t size, const char *verb, kube_kind kind, const char *ns,
                     const char *name)
{
    const kube_kind_info *k = kube_kind_get(kind);
    bool in_ns = k && k->namespaced && ns;
    snprintf(out, size, "%s %s%s%.253s%s%.63s", verb, kube_kind_name(kind), name ? " " : "",
             name ? name : "",
             in_ns ? " in namespace " : (k && k->namespaced ? " in every namespace" : ""),
             in_ns ? ns : "");
}

/* The collection path of kind in ns (ns NULL: every namespace), or the item path when name. */
static int build_path(char *out, size_t size, kube_kind kind, const char *ns, const char *name,
                      const char *what, hks_error *err)
{
    const kube_kind_info *k = kube_kind_get(kind);
    if (!k)
        return kube_fail(err, EINVAL, "%s: unknown kind", what);
    if (k->namespaced && ns && !kube_dns_label(ns))
        return kube_fail(err, EINVAL, "%s: namespace \"%.63s\" is not a DNS label", what, ns);
    if (name && !valid_name(name))
        return kube_fail(err, EINVAL, "%s: \"%.253s\" is not an object name", what, name);
    int n;
    if (k->namespaced && ns)
        n = snprintf(out, size, "%s/namespaces/%s/%s%s%s", k->prefix, ns, k->plural,
                     name ? "/" : "", name ? name : "");
    else
        n = snprintf(out, size, "%s/%s%s%s", k->prefix, k->plural, name ? "/" : "",
                     name ? name : "");
    if (n < 0 || (size_t)n >= size)
        return kube_fail(err, ENAMETOOLONG, "%s: path too long", what);
    return 0;
}

/* Append "&key=<value percent-encoded>" (or "?" first) to path. */
static int add_query(char *path, size_t size, const char *key, const char *value)
{
    size_t n = strlen(path);
    int w = snprintf(path + n, size - n, "%c%s=", strchr(path, '?') ? '&' : '?', key);
    if (w < 0 || (size_t)w >= size - n)
        return -1;
    n += (size_t)w;
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        if (n + 4 >= size)
            return -1;
        if (plain) {
            path[n++] = (char)*p;
        } else {
            path[n++] = '%';
            path[n++] = hex[*p >> 4];
            path[n++] = hex[*p & 15];
        }
    }
    path[n] = '\0';
    return 0;
}

static void response_done(kube_response *rs)
{
    kube_response_free(rs);
}

/* Send a request expecting one object back (any 2xx); *out optional. */
static int object_call(kube_client *c, const char *method, const char *path, const char *ctype,
                       json_t *body_obj, const char *what, const char *expect_kind, json_t **out,
                       hks_error *err)
{
    if (out)
        *out = NULL;
    cleanup_free char *body = body_obj ? json_dumps(body_obj, JSON_COMPACT) : NULL;
    if (body_obj && !body)
        return kube_fail(err, EINVAL, "%s: the object cannot be encoded", what);
    kube_request rq = {.method = method,
                       .path = path,
                       .content_type = ctype,
                       .body = body,
                       .body_len = body ? strlen(body) : 0,
                       .what = what};
    __attribute__((cleanup(response_done))) kube_response rs = {0};
    int rc = kube_send(c, &rq, &rs, err);
    if (rc != 0)
        return -1;
    if (rs.status < 200 || rs.status > 299)
        return kube_fail_reply(err, what, &rs);
    if (!out)
        return 0;
    *out = kube_parse_object(rs.body, rs.body_len, expect_kind, err);
    return *out ? 0 : hks_wrap(err, "%s", what);
}

static const char *object_name(const json_t *obj)
{
    const json_t *name = json_object_get(json_object_get(obj, "metadata"), "name");
    return json_is_string(name) ? json_string_value(name) : NULL;
}

int kube_create(kube_client *c, kube_kind kind, const char *ns, json_t *obj, json_t **created,
                hks_error *err)
{
    char what[400], path[PATH_LEN];
    describe(what, sizeof(what), "create", kind, ns, object_name(obj));
    if (!ns && kube_kind_get(kind) && kube_kind_get(kind)->namespaced)
        return kube_fail(err, EINVAL, "%s: no namespace", what);
    if (build_path(path, sizeof(path), kind, ns, NULL, what, err) < 0)
        return -1;
    const kube_kind_info *k = kube_kind_get(kind);
    return object_call(c, "POST", path, NULL, obj, what, k->kind, created, err);
}

int kube_replace(kube_client *c, kube_kind kind, const char *ns, json_t *obj, json_t **stored,
                 hks_error *err)
{
    char what[400], path[PATH_LEN];
    const char *name = object_name(obj);
    describe(what, sizeof(what), "replace", kind, ns, name);
    if (!name)
        return kube_fail(err, EINVAL, "%s: the object has no metadata.name", what);
    if (build_path(path, sizeof(path), kind, ns, name, what, err) < 0)
        return -1;
    const kube_kind_info *k = kube_kind_get(kind);
    return object_call(c, "PUT", path, NULL, obj, what, k->kind, stored, err);
}

int kube_get(kube_client *c, kube_kind kind, const char *ns, const char *name, json_t **out,
             hks_error *err)
{
    char what[400], path[PATH_LEN];
    describe(what, sizeof(what), "get", kind, ns, name);
    if (build_path(path, sizeof(path), kind, ns, name ? name : "", what, err) < 0)
        return -1;
    const kube_kind_info *k = kube_kind_get(kind);
    return object_call(c, "GET", path, NULL, NULL, what, k->kind, out, err);
}

int kube_patch(kube_client *c, kube_kind kind, const char *ns, const char *name, json_t *patch,
               json_t **out, hks_error *err)
{
    char what[400], path[PATH_LEN];
    describe(what, sizeof(what), "patch", kind, ns, name);
    if (build_path(path, sizeof(path), kind, ns, name ? name : "", what, err) < 0)
        return -1;
    const kube_kind_info *k = kube_kind_get(kind);
    return object_call(c, "PATCH", path, "application/merge-patch+json", patch, what, k->kind, out,
                       err);
}

int kube_apply(kube_client *c, kube_kind kind, const char *ns, json_t *obj, json_t **stored,
               hks_error *err)
{
    for (int attempt = 0; attempt < APPLY_ATTEMPTS; attempt++) {
        if (kube_create(c, kind, ns, obj, stored, err) == 0)
            return 0;
        if (err->errnum != EEXIST)
            return -1;
        json_t *current = NULL;
        if (kube_get(c, kind, ns, object_name(obj), &current, err) < 0) {
            if (err->errnum == ENOENT)
                continue; /* deleted in between: create again */
            return -1;
        }
        json_t *meta = json_object_get(obj, "metadata");
        json_t *rv = json_object_get(json_object_get(current, "metadata"), "resourceVersion");
        int set = json_is_object(meta) && json_is_string(rv)
                      ? json_object_set(meta, "resourceVersion", rv)
                      : -1;
        json_decref(current);
        if (set < 0)
            return kube_fail(err, EIO, "apply %s %s: the stored object has no resourceVersion",
                             kube_kind_name(kind), object_name(obj));
        int rc = kube_replace(c, kind, ns, obj, stored, err);
        json_object_del(meta, "resourceVersion");
        if (rc == 0)
            return 0;
        if (err->errnum != EBUSY && err->errnum != ENOENT)
            return -1;
    }
    return hks_wrap(err, "apply %s %s: gave up after %d attempts", kube_kind_name(kind),
                    object_name(obj) ? object_name(obj) : "?", APPLY_ATTEMPTS);
}

int kube_delete(kube_client *c, kube_kind kind, const char *ns, const char *name,
                kube_propagation propagation, hks_error *err)
{
    char what[400], path[PATH_LEN];
    describe(what, sizeof(what), "delete", kind, ns, name);
    if (build_path(path, sizeof(path), kind, ns, name ? name : "", what, err) < 0)
        return -1;
    static const char *const policies[] = {"Background", "Foreground", "Orphan"};
    if ((unsigned)propagation >= HKS_ARRAY_LEN(policies))
        return kube_fail(err, EINVAL, "%s: unknown propagation policy", what);
    json_t *opts = json_pack("{s:s, s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1",
                             "propagationPolicy", policies[propagation]);
    if (!opts)
        return hks_fail(err, ENOMEM, "%s", what);
    int rc = object_call(c, "DELETE", path, NULL, opts, what, NULL, NULL, err);
    json_decref(opts);
    return rc;
}

int kube_list(kube_client *c, kube_kind kind, const char *ns, const char *label_selector,
              const char *field_selector, json_t **items, char *resource_version, size_t rv_size,
              hks_error *err)
{
    *items = NULL;
    char what[400], path[PATH_LEN], rv[72];
    describe(what, sizeof(what), "list", kind, ns, NULL);
    if (build_path(path, sizeof(path), kind, ns, NULL, what, err) < 0)
        return -1;
    if ((label_selector && add_query(path, sizeof(path), "labelSelector", label_selector) < 0) ||
        (field_selector && add_query(path, sizeof(path), "fieldSelector", field_selector) < 0))
        return kube_fail(err, ENAMETOOLONG, "%s: selector too long", what);
    kube_request rq = {.method = "GET", .path = path, .what = what};
    __attribute__((cleanup(response_done))) kube_response rs = {0};
    if (kube_send(c, &rq, &rs, err) != 0)
        return -1;
    if (rs.status != 200)
        return kube_fail_reply(err, what, &rs);
    *items = kube_parse_list(rs.body, rs.body_len, rv, sizeof(rv), err);
    if (!*items)
        return hks_wrap(err, "%s", what);
    if (resource_version && rv_size)
        snprintf(resource_version, rv_size, "%s", rv);
    return 0;
}

/* ---- watch ---- */

typedef struct watch_state {
    kube_event_fn fn;
    void *ctx;
    char rv[72];
    bool stopped;
} watch_state;

static int watch_line(void *ctx, const char *line, size_t len, hks_error *err)
{
    watch_state *w = ctx;
    char type[16], rv[72];
    json_t *obj = NULL;
    if (kube_parse_watch_event(line, len, type, &obj, rv, sizeof(rv), err) < 0)
        return -1;
    if (rv[0])
        memcpy(w->rv, rv, sizeof(rv));
    int rc = strcmp(type, "BOOKMARK") == 0 ? 0 : w->fn(w->ctx, type, obj, err);
    json_decref(obj);
    if (rc > 0) {
        w->stopped = true;
        return 1;
    }
    return rc < 0 ? -1 : 0;
}

int kube_watch(kube_client *c, kube_kind kind, const char *ns, const kube_watch_options *opt,
               const char *resource_version, kube_event_fn fn, void *ctx, char *last_rv,
               size_t rv_size, hks_error *err)
{
    char what[400], path[PATH_LEN];
    describe(what, sizeof(what), "watch", kind, ns, NULL);
    if (build_path(path, sizeof(path), kind, ns, NULL, what, err) < 0)
        return -1;
    unsigned timeout_ms = opt && opt->timeout_ms ? opt->timeout_ms : WATCH_DEFAULT;
    char server_timeout[24];
    /* the server ends the watch a little before our own deadline, cleanly */
    snprintf(server_timeout, sizeof(server_timeout), "%u",
             timeout_ms / 1000 > 1 ? timeout_ms / 1000 - 1 : 1);
    if (add_query(path, sizeof(path), "watch", "1") < 0 ||
        add_query(path, sizeof(path), "allowWatchBookmarks", "true") < 0 ||
        add_query(path, sizeof(path), "timeoutSeconds", server_timeout) < 0 ||
        (resource_version && resource_version[0] &&
         add_query(path, sizeof(path), "resourceVersion", resource_version) < 0) ||
        (opt && opt->label_selector &&
         add_query(path, sizeof(path), "labelSelector", opt->label_selector) < 0) ||
        (opt && opt->field_selector &&
         add_query(path, sizeof(path), "fieldSelector", opt->field_selector) < 0))
        return kube_fail(err, ENAMETOOLONG, "%s: query too long", what);
    watch_state w = {.fn = fn, .ctx = ctx};
    snprintf(w.rv, sizeof(w.rv), "%s", resource_version ? resource_version : "");
    kube_request rq = {.method = "GET",
                       .path = path,
                       .what = what,
                       .on_line = watch_line,
                       .line_ctx = &w,
                       .timeout_ms = timeout_ms};
    __attribute__((cleanup(response_done))) kube_response rs = {0};
    int rc = kube_send(c, &rq, &rs, err);
    if (last_rv && rv_size)
        snprintf(last_rv, rv_size, "%s", w.rv);
    if (w.stopped)
        return 1;
    if (rc != 0)
        return err->errnum == ETIMEDOUT ? -1 : hks_wrap(err, "%s", what);
    if (rs.status != 200)
        return kube_fail_reply(err, what, &rs);
    return 0;
}

int kube_list_watch(kube_client *c, kube_kind kind, const char *ns, const kube_watch_options *opt,
                    kube_event_fn fn, void *ctx, hks_error *err)
{
    unsigned timeout_ms = opt && opt->timeout_ms ? opt->timeout_ms : WATCH_DEFAULT;
    unsigned long long deadline = hks_now_us() + (unsigned long long)timeout_ms * 1000ull;
    char rv[72] = "";
    bool need_list = true;
    for (;;) {
        unsigned long long now = hks_now_us();
        if (now >= deadline)
            return kube_fail(err, ETIMEDOUT, "watch %s: nothing decided within %u ms",
                             kube_kind_name(kind), timeout_ms);
        if (need_list) {
            json_t *items = NULL;
            if (kube_list(c, kind, ns, opt ? opt->label_selector : NULL,
                          opt ? opt->field_selector : NULL, &items, rv, sizeof(rv), err) < 0)
                return -1;
            size_t i;
            json_t *item;
            int rc = 0;
            json_array_foreach(items, i, item)
            {
                rc = fn(ctx, "SYNC", item, err);
                if (rc != 0)
                    break;
            }
            json_decref(items);
            if (rc != 0)
                return rc;
            need_list = false;
        }
        kube_watch_options once = opt ? *opt : (kube_watch_options){0};
        once.timeout_ms = (unsigned)((deadline - now) / 1000ull);
        if (once.timeout_ms == 0)
            once.timeout_ms = 1;
        int rc = kube_watch(c, kind, ns, &once, rv, fn, ctx, rv, sizeof(rv), err);
        if (rc == 1)
            return 1;
        if (rc < 0 && err->errnum == ESTALE)
            need_list = true; /* our resourceVersion is too old: the current state, then on */
        else if (rc < 0)
            return -1;
    }
}

/* ---- pods/log ---- */

#define LOG_LIMIT_DEFAULT (1u << 20)

int kube_pod_logs(kube_client *c, const char *ns, const char *pod, const char *container,
                  unsigned tail_lines, size_t limit_bytes, char **text, size_t *len, hks_error *err)
{
    *text = NULL;
    *len = 0;
    char what[400], path[PATH_LEN], number[24];
    describe(what, sizeof(what), "read the log of", KUBE_POD, ns, pod);
    if (!ns)
        return kube_fail(err, EINVAL, "%s: no namespace", what);
    if (build_path(path, sizeof(path), KUBE_POD, ns, pod ? pod : "", what, err) < 0)
        return -1;
    if (container && !kube_dns_label(container))
        return kube_fail(err, EINVAL, "%s: \"%.63s\" is not a container name", what, container);
    if (limit_bytes == 0 || limit_bytes > KUBE_BODY_MAX)
        limit_bytes = LOG_LIMIT_DEFAULT;
    snprintf(number, sizeof(number), "%zu", limit_bytes);
    size_t n = strlen(path);
    snprintf(path + n, sizeof(path) - n, "/log");
    if (add_query(path, sizeof(path), "limitBytes", number) < 0 ||
        (container && add_query(path, sizeof(path), "container", container) < 0))
        return kube_fail(err, ENAMETOOLONG, "%s: path too long", what);
    if (tail_lines) {
        snprintf(number, sizeof(number), "%u", tail_lines);
        if (add_query(path, sizeof(path), "tailLines", number) < 0)
            return kube_fail(err, ENAMETOOLONG, "%s: path too long", what);
    }
    kube_request rq = {.method = "GET", .path = path, .accept = "text/plain, */*", .what = what};
    __attribute__((cleanup(response_done))) kube_response rs = {0};
    if (kube_send(c, &rq, &rs, err) != 0)
        return -1;
    if (rs.status != 200)
        return kube_fail_reply(err, what, &rs);
    /* the server honours limitBytes; a reply longer than asked is cut, not trusted */
    size_t keep = rs.body_len < limit_bytes ? rs.body_len : limit_bytes;
    *text = malloc(keep + 1);
    if (!*text)
        return hks_fail(err, ENOMEM, "%s", what);
    if (keep)
        memcpy(*text, rs.body, keep);
    (*text)[keep] = '\0';
    *len = keep;
    return 0;
}
