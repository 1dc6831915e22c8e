/* Build contexts: what a Dockerfile builder (Kaniko) gets for a function. A deterministic tar.gz
 * laid out as the runtime's Dockerfile.tmpl expects (its header says where the code and the
 * launcher go), holding the Dockerfile rendered for this function and a .dockerignore.
 *
 * The templates express the dependency step as shell conditions (npm ci only when package.json
 * declares dependencies, pip only with requirements.txt or pyproject.toml); rendering keeps the
 * template as it is when the function brings dependencies, and otherwise leaves those statements
 * out, so that the image does not carry a step (and, for python, a COPY of the code to
 * /tmp/hks-deps) that does nothing. The rewrite is checked: a template whose dependency step
 * cannot be found or removed is refused rather than rendered half-way. */
#include "build_internal.h"

#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#define MANIFEST_MAX (1u << 20) /* package.json, requirements.txt, pyproject.toml */
#define TEMPLATE_MAX (1u << 20)

static const char *const node_reserved[] = {"Dockerfile", ".dockerignore", ".hks", NULL};
static const char *const python_reserved[] = {NULL};
static const char *const node_env[] = {"NODE_ENV=production", NULL};
static const char *const python_env[] = {"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1",
                                         "HOME=/tmp", NULL};
static const char *const node_drop[] = {"package.json", NULL};
static const char *const python_drop[] = {
    "hks-deps", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "requirements.txt", "pyproject.toml", NULL};

static const bld_runtime runtimes[] = {
    {.name = "node",
     .interpreter = "node",
     .launcher = "launcher.js",
     .ctx_code = "",
     .ctx_runtime = ".hks/runtime",
     .reserved = node_reserved,
     .env = node_env,
     .dep_anchor = "npm ci",
     .dep_drop = node_drop,
     .dep_note = "# No dependencies to install: package.json declares none (step left out by "
                 "hksd)."},
    {.name = "python",
     .interpreter = "python3",
     .launcher = "launcher.py",
     .ctx_code = "code",
     .ctx_runtime = "hks-runtime",
     .reserved = python_reserved,
     .env = python_env,
     .dep_anchor = "pip install",
     .dep_drop = python_drop,
     .dep_note = "# No dependencies to install: neither requirements.txt nor pyproject.toml "
                 "declares any (step left out by hksd)."},
};

const bld_runtime *bld_runtime_find(const char *name, hks_error *err)
{
    for (size_t i = 0; name && i < HKS_ARRAY_LEN(runtimes); i++) {
        if (strcmp(runtimes[i].name, name) == 0)
            return &runtimes[i];
    }
    hks_fail(err, 0, "unknown runtime '%.64s' (node or python)", name ? name : "");
    return NULL;
}

bool bld_runtime_skip(const char *rel, bool is_dir)
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    if (is_dir)
        return strcmp(rel, "templates") == 0 || strcmp(base, "__pycache__") == 0;
    size_t len = strlen(base);
    return strcmp(rel, "Dockerfile.tmpl") == 0 || (len > 4 && strcmp(base + len - 4, ".pyc") == 0);
}

/* ---- does the function bring dependencies? ---- */

/* As the node template decides: package.json's dependencies or optionalDependencies. A file
 * that does not parse keeps the step: npm then says what is wrong, at build time. */
static bool node_wants(const char *data, size_t len)
{
    json_error_t jerr;
    json_t *pkg = json_loadb(data, len, 0, &jerr);
    bool wants = !json_is_object(pkg);
    const char *keys[] = {"dependencies", "optionalDependencies"};
    for (size_t i = 0; !wants && i < HKS_ARRAY_LEN(keys); i++) {
        json_t *deps = json_object_get(pkg, keys[i]);
        wants = deps && (!json_is_object(deps) || json_object_size(deps) > 0);
    }
    json_decref(pkg);
    return wants;
}

static bool requirements_want(const char *data)
{
    for (const char *p = data; *p;) {
        const char *end = strchrnul(p, '\n');
        const char *q = p;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < end && *q != '#')
            return true;
        p = *end ? end + 1 : end;
    }
    return false;
}

/* pyproject.toml, as far as the python template reads it: [project] dependencies, an array with
 * at least one string. Not a TOML parser: anything it cannot rule out (dotted or inline forms of
 * project.dependencies) counts as dependencies, which only keeps a step that then does nothing. */
static bool pyproject_wants(const char *data)
{
    enum { TOP, PROJECT, OTHER } table = TOP;
    bool in_deps = false;
    for (const char *p = data; *p;) {
        const char *end = strchrnul(p, '\n');
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        size_t len = (size_t)(end - p);
        const char *value = NULL;
        if (in_deps) {
            value = p;
        } else if (len && *p == '[') {
            table = len >= 9 && strncmp(p, "[project]", 9) == 0 ? PROJECT : OTHER;
        } else if (table == TOP && len >= 7 && strncmp(p, "project", 7) == 0) {
            return true; /* project.dependencies = [...], project = { dependencies = ... } */
        } else if (table == PROJECT && len >= 12 && strncmp(p, "dependencies", 12) == 0) {
            const char *q = p + 12;
            while (q < end && (*q == ' ' || *q == '\t'))
                q++;
            if (q < end && *q == '=') {
                in_deps = true;
                value = q + 1;
            }
        }
        /* the array's items up to its ']' (comments aside): any string is a dependency */
        for (const char *q = value; q && q < end && *q != '#' && in_deps; q++) {
            if (*q == '"' || *q == '\'')
                return true;
            in_deps = *q != ']';
        }
        p = *end ? end + 1 : end;
    }
    return false;
}

/* Whether the file name of code_dir (dir) asks for an install. */
static int file_wants(int dir, const char *code_dir, const char *name, bool *out, hks_error *err)
{
    char *data = NULL;
    size_t len = 0;
    if (bld_read_file_at(dir, name, O_NOFOLLOW, MANIFEST_MAX, &data, &len) < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno == ELOOP) {
            *out = true; /* a symlink: the build follows it, so keep the step */
            return 0;
        }
        hks_fail(err, errno, "function code: %s/%s", code_dir, name);
        return -1;
    }
    if (strcmp(name, "package.json") == 0)
        *out = node_wants(data, len);
    else if (strcmp(name, "requirements.txt") == 0)
        *out = requirements_want(data);
    else
        *out = pyproject_wants(data);
    free(data);
    return 0;
}

int bld_code_has_dependencies(const bld_runtime *rt, const char *code_dir, bool *out,
                              hks_error *err)
{
    *out = false;
    cleanup_fd int dir = open(code_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return hks_fail(err, errno, "function code: open directory %s", code_dir);
    if (strcmp(rt->name, "node") == 0)
        return file_wants(dir, code_dir, "package.json", out, err);
    if (file_wants(dir, code_dir, "requirements.txt", out, err) < 0)
        return -1;
    return *out ? 0 : file_wants(dir, code_dir, "pyproject.toml", out, err);
}

int bld_code_needs_install(const char *runtime, const char *code_dir, bool *out, hks_error *err)
{
    *out = false;
    const bld_runtime *rt = bld_runtime_find(runtime, err);
    return rt ? bld_code_has_dependencies(rt, code_dir, out, err) : -1;
}

/* ---- Dockerfile rendering ---- */

typedef struct line {
    const char *p;
    size_t len;
    char *owned; /* when p was rewritten */
} line;

typedef struct lines {
    line *v;
    size_t n, cap;
} lines;

static void lines_free(lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].owned);
    free(l->v);
}

static int lines_push(lines *l, const char *p, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 128;
        line *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (line){.p = p, .len = len};
    return 0;
}

static bool has(const line *ln, const char *needle)
{
    return memmem(ln->p, ln->len, needle, strlen(needle)) != NULL;
}

static bool starts(const line *ln, const char *prefix)
{
    size_t n = strlen(prefix);
    return ln->len >= n && memcmp(ln->p, prefix, n) == 0;
}

static bool continued(const line *ln)
{
    return ln->len && ln->p[ln->len - 1] == '\\';
}

static size_t indent(const line *ln)
{
    size_t i = 0;
    while (i < ln->len && ln->p[i] == ' ')
        i++;
    return i;
}

static bool has_any(const line *ln, const char *const *needles)
{
    for (; *needles; needles++) {
        if (has(ln, *needles))
            return true;
    }
    return false;
}

typedef struct render {
    const bld_runtime *rt;
    lines in, out;
    bool noted;
    const char *tmpl_path;
    hks_error *err;
} render;

/* The comment paragraph just above a step left out describes it: replace it with the note. */
static int note(render *r)
{
    while (r->out.n && starts(&r->out.v[r->out.n - 1], "#"))
        free(r->out.v[--r->out.n].owned);
    if (lines_push(&r->out, r->rt->dep_note, strlen(r->rt->dep_note)) < 0)
        return hks_fail(r->err, ENOMEM, "render %s", r->tmpl_path);
    r->noted = true;
    return 0;
}

/* The last line of a shell statement starting at in[i], within a RUN ending at in[end]: an
 * `if` over several lines ends at the `fi` of the same indentation. */
static size_t statement_end(render *r, size_t i, size_t end)
{
    const line *first = &r->in.v[i];
    size_t ind = indent(first);
    bool is_if = first->len > ind + 3 && memcmp(first->p + ind, "if ", 3) == 0;
    if (!is_if || has(first, "fi;") || !continued(first))
        return i;
    for (size_t j = i + 1; j <= end; j++) {
        const line *ln = &r->in.v[j];
        if (indent(ln) == ind && ln->len >= ind + 2 && memcmp(ln->p + ind, "fi", 2) == 0)
            return j;
    }
    return (size_t)-1;
}

/* The RUN from in[start] to in[end] without its dependency statements. */
static int strip_run(render *r, size_t start, size_t end)
{
    if (note(r) < 0 || lines_push(&r->out, r->in.v[start].p, r->in.v[start].len) < 0)
        return hks_fail(r->err, ENOMEM, "render %s", r->tmpl_path);
    for (size_t i = start + 1; i <= end;) {
        size_t last = statement_end(r, i, end);
        if (last == (size_t)-1)
            return hks_fail(r->err, 0, "%s: an 'if' without its 'fi' in the dependency step",
                            r->tmpl_path);
        bool drop = has_any(&r->in.v[i], r->rt->dep_drop);
        for (size_t j = i; j <= last && !drop; j++) {
            if (lines_push(&r->out, r->in.v[j].p, r->in.v[j].len) < 0)
                return hks_fail(r->err, ENOMEM, "render %s", r->tmpl_path);
        }
        i = last + 1;
    }
    /* the RUN's new last line must not continue (" \"), nor end the command list (";") */
    line *tail = &r->out.v[r->out.n - 1];
    size_t len = tail->len;
    while (len && (tail->p[len - 1] == '\\' || tail->p[len - 1] == ' ' || tail->p[len - 1] == ';'))
        len--;
    if (len != tail->len) {
        if (!(tail->owned = strndup(tail->p, len)))
            return hks_fail(r->err, ENOMEM, "render %s", r->tmpl_path);
        tail->p = tail->owned;
        tail->len = len;
    }
    return 0;
}

static int render_lines(render *r, bool deps)
{
    bool found = false;
    for (size_t i = 0; i < r->in.n;) {
        const line *ln = &r->in.v[i];
        size_t end = i;
        while (end + 1 < r->in.n && continued(&r->in.v[end]))
            end++;
        bool anchor = false;
        for (size_t j = i; j <= end; j++)
            anchor = anchor || has(&r->in.v[j], r->rt->dep_anchor);
        if (starts(ln, "RUN ") && anchor) {
            found = true;
            if (!deps) {
                if (strip_run(r, i, end) < 0)
                    return -1;
                i = end + 1;
                continue;
            }
        } else if (!deps && starts(ln, "COPY ") && end == i && has_any(ln, r->rt->dep_drop)) {
            if (note(r) < 0)
                return -1;
            i++;
            continue;
        }
        for (; i <= end; i++) {
            if (lines_push(&r->out, r->in.v[i].p, r->in.v[i].len) < 0)
                return hks_fail(r->err, ENOMEM, "render %s", r->tmpl_path);
        }
    }
    if (!found)
        return hks_fail(r->err, 0, "%s: no RUN step with '%s' (the dependency step)", r->tmpl_path,
                        r->rt->dep_anchor);
    return 0;
}

static char *join_lines(const lines *l, bool final_newline)
{
    size_t total = 1;
    for (size_t i = 0; i < l->n; i++)
        total += l->v[i].len + 1;
    char *out = malloc(total), *p = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        memcpy(p, l->v[i].p, l->v[i].len);
        p += l->v[i].len;
        if (i + 1 < l->n || final_newline)
            *p++ = '\n';
    }
    *p = '\0';
    return out;
}

/* tmpl (len bytes) rendered: as it is with dependencies, else without the step. */
static char *render_text(const bld_runtime *rt, const char *tmpl, size_t len, const char *tmpl_path,
                         bool deps, hks_error *err)
{
    render r = {.rt = rt, .tmpl_path = tmpl_path, .err = err};
    int rc = 0;
    for (const char *p = tmpl; *p && rc == 0;) {
        const char *end = strchrnul(p, '\n');
        rc = lines_push(&r.in, p, (size_t)(end - p));
        p = *end ? end + 1 : end;
    }
    if (rc < 0)
        hks_fail(err, ENOMEM, "render %s", tmpl_path);
    else
        rc = render_lines(&r, deps);
    char *out = rc < 0 ? NULL : join_lines(&r.out, len && tmpl[len - 1] == '\n');
    lines_free(&r.in);
    lines_free(&r.out);
    if (rc == 0 && !out)
        hks_fail(err, ENOMEM, "render %s", tmpl_path);
    if (out && !deps && strstr(out, rt->dep_anchor)) {
        hks_fail(err, 0, "%s: the dependency step could not be left out ('%s' remains)", tmpl_path,
                 rt->dep_anchor);
        free(out);
        out = NULL;
    }
    return out;
}

char *bld_dockerfile_render(const char *runtime, const char *runtimes_dir, const char *code_dir,
                            hks_error *err)
{
    const bld_runtime *rt = bld_runtime_find(runtime, err);
    if (!rt)
        return NULL;
    if (!runtimes_dir || !code_dir) {
        hks_fail(err, EINVAL, "render the Dockerfile: runtimes_dir and code_dir are required");
        return NULL;
    }
    bool deps = false;
    if (bld_code_has_dependencies(rt, code_dir, &deps, err) < 0)
        return NULL;
    char tmpl_path[PATH_MAX + 32];
    snprintf(tmpl_path, sizeof(tmpl_path), "%s/%s/Dockerfile.tmpl", runtimes_dir, rt->name);
    char *tmpl = NULL;
    size_t len = 0;
    if (bld_read_file_at(AT_FDCWD, tmpl_path, 0, TEMPLATE_MAX, &tmpl, &len) < 0) {
        hks_fail(err, errno, "runtime %s: %s", rt->name, tmpl_path);
        return NULL;
    }
    /* the image must run the launcher as a non-root user: refuse a template that does not */
    char entry[128];
    snprintf(entry, sizeof(entry), "\"/hks/runtime/%s\", \"serve\"]", rt->launcher);
    char *out = NULL;
    if (!strstr(tmpl, "\nUSER 1000") || !strstr(tmpl, "\nENTRYPOINT [") || !strstr(tmpl, entry))
        hks_fail(err, 0, "%s: no 'USER 1000' or no ENTRYPOINT running %s serve", tmpl_path,
                 rt->launcher);
    else
        out = render_text(rt, tmpl, len, tmpl_path, deps, err);
    free(tmpl);
    return out;
}

/* ---- the context ---- */

static const char dockerignore[] =
    "# Written by hksd: the context holds exactly what the image needs.\n"
    "Dockerfile\n"
    ".dockerignore\n";

/* The node context keeps the code at its top: names the context needs are refused there. */
static int check_reserved(const bld_runtime *rt, const char *code_dir, hks_error *err)
{
    int rc = 0;
    for (const char *const *name = rt->reserved; *name && rc == 0; name++) {
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", code_dir, *name);
        if (lstat(path, &st) == 0)
            rc = hks_fail(err, 0,
                          "function code '%s': the name is the build context's own (the %s "
                          "context keeps the code at its top)",
                          path, rt->name);
    }
    return rc;
}

static int add_entries(bld_entries *l, const bld_runtime *rt, const bld_context_input *in,
                       const char *dockerfile, hks_error *err)
{
    char runtime_dir[PATH_MAX];
    snprintf(runtime_dir, sizeof(runtime_dir), "%s/%s", in->runtimes_dir, rt->name);
    if (bld_entries_add_tree(l, in->code_dir, rt->ctx_code, NULL, "function code", err) < 0 ||
        bld_entries_add_tree(l, runtime_dir, rt->ctx_runtime, bld_runtime_skip, "runtime", err) <
            0 ||
        bld_entries_add_data(l, "Dockerfile", dockerfile, strlen(dockerfile), 0644,
                             "generated Dockerfile", err) < 0 ||
        bld_entries_add_data(l, ".dockerignore", dockerignore, sizeof(dockerignore) - 1, 0644,
                             "generated .dockerignore", err) < 0)
        return -1;
    return 0;
}

int bld_context_build(const bld_context_input *in, void **out, size_t *out_len, char digest[72],
                      hks_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (!in || !in->code_dir || !in->runtimes_dir)
        return hks_fail(err, EINVAL, "build context: runtime, code_dir and runtimes_dir needed");
    const bld_runtime *rt = bld_runtime_find(in->runtime, err);
    if (!rt || check_reserved(rt, in->code_dir, err) < 0)
        return -1;
    char *dockerfile = bld_dockerfile_render(rt->name, in->runtimes_dir, in->code_dir, err);
    if (!dockerfile)
        return -1;
    __attribute__((cleanup(bld_entries_free))) bld_entries l = {0};
    bld_tar_result res;
    int rc = add_entries(&l, rt, in, dockerfile, err);
    free(dockerfile);
    if (rc < 0 || bld_tar_write(&l, -1, out, out_len, &res, err) < 0)
        return hks_wrap(err, "build context");
    memcpy(digest, res.digest, sizeof(res.digest));
    return 0;
}
