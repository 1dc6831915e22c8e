/* Build contexts: byte-identical whatever the order, times, modes and umask the files were made
 * with; sorted root-owned entries with normalised modes; a gzip header without time or name; and
 * the Dockerfile rendered with or without the dependency step of each runtime's template. */
#include "tests/unit/helpers.h"

#include "builder/build_internal.h"
#include "builder/builder.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <utime.h>

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *temp_dir(void)
{
    char *dir = strdup("/tmp/hks-test-context-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void put_file(const char *dir, const char *name, const char *text, mode_t mode, time_t mtime)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    for (char *slash = strchr(path + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0700);
        *slash = '/';
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
    struct utimbuf times = {.actime = mtime, .modtime = mtime};
    assert_int_equal(utime(path, &times), 0);
}

typedef struct tfile {
    const char *name, *text;
    mode_t mode;
} tfile;

static const tfile node_files[] = {
    {"index.js", "module.exports = { handle: async () => 'ok' };\n", 0644},
    {"lib/util.js", "exports.x = 1;\n", 0600},
    {"bin/tool.sh", "#!/bin/sh\necho hi\n", 0700},
    {"package.json", "{\"name\": \"f\", \"devDependencies\": {\"tape\": \"5\"}}\n", 0644},
};

/* The same project, files made first to last or last to first, with other mtimes and modes
 * (only whether some x bit is set may matter) and under another umask. */
static char *make_node_code(bool reverse)
{
    char *dir = temp_dir();
    mode_t old = umask(reverse ? 077 : 022);
    size_t n = HKS_ARRAY_LEN(node_files);
    for (size_t k = 0; k < n; k++) {
        const tfile *f = &node_files[reverse ? n - 1 - k : k];
        mode_t mode = reverse ? (f->mode | 0044) : f->mode;
        put_file(dir, f->name, f->text, mode, reverse ? 1000 + (time_t)k : 5000000);
    }
    umask(old);
    return dir;
}

static void runtimes_dir(char *out, size_t size)
{
    test_path(out, size, "runtimes");
}

static void build_context(const char *runtime, const char *code, void **out, size_t *len,
                          char digest[72])
{
    char runtimes[PATH_MAX];
    runtimes_dir(runtimes, sizeof(runtimes));
    bld_context_input in = {.runtime = runtime, .code_dir = code, .runtimes_dir = runtimes};
    hks_error err = {0};
    if (bld_context_build(&in, out, len, digest, &err) < 0)
        fail_msg("bld_context_build: %s", err.msg);
}

typedef struct member {
    char name[256];
    mode_t type, perm;
    la_int64_t uid, gid, mtime, size;
    bool uname_empty;
    char data[4096];
} member;

/* The entries of a tar.gz held in memory. */
static size_t list_members(const void *data, size_t len, member *out, size_t max)
{
    struct archive *a = archive_read_new();
    assert_int_equal(archive_read_support_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_read_support_format_tar(a), ARCHIVE_OK);
    assert_int_equal(archive_read_open_memory(a, data, len), ARCHIVE_OK);
    struct archive_entry *e;
    size_t n = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        assert_true(n < max);
        member *m = &out[n++];
        memset(m, 0, sizeof(*m));
        snprintf(m->name, sizeof(m->name), "%s", archive_entry_pathname(e));
        m->type = archive_entry_filetype(e);
        m->perm = archive_entry_perm(e);
        m->uid = archive_entry_uid(e);
        m->gid = archive_entry_gid(e);
        m->mtime = archive_entry_mtime(e);
        m->size = archive_entry_size(e);
        m->uname_empty = !archive_entry_uname(e) || !*archive_entry_uname(e);
        if (m->type == AE_IFREG) {
            la_ssize_t got = archive_read_data(a, m->data, sizeof(m->data) - 1);
            assert_true(got >= 0);
        }
    }
    archive_read_free(a);
    return n;
}

static const member *find(const member *m, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].name, name) == 0)
            return &m[i];
    }
    fail_msg("no member %s", name);
    return NULL;
}

static void contexts_are_byte_identical(void **state)
{
    (void)state;
    char *a = make_node_code(false), *b = make_node_code(true);
    void *c1 = NULL, *c2 = NULL, *c3 = NULL;
    size_t l1 = 0, l2 = 0, l3 = 0;
    char d1[72], d2[72], d3[72], want[72];
    build_context("node", a, &c1, &l1, d1);
    build_context("node", a, &c2, &l2, d2);
    build_context("node", b, &c3, &l3, d3);
    assert_int_equal(l1, l2);
    assert_int_equal(l1, l3);
    assert_memory_equal(c1, c2, l1);
    assert_memory_equal(c1, c3, l1);
    assert_string_equal(d1, d3);
    hks_error err = {0};
    assert_int_equal(bld_sha256(c1, l1, want, &err), 0);
    assert_string_equal(d1, want);
    /* a changed file changes the bytes */
    put_file(a, "index.js", "module.exports = { handle: async () => 'changed' };\n", 0644, 0);
    void *c4 = NULL;
    size_t l4 = 0;
    char d4[72];
    build_context("node", a, &c4, &l4, d4);
    assert_string_not_equal(d1, d4);
    free(c1);
    free(c2);
    free(c3);
    free(c4);
    remove_tree(a);
    remove_tree(b);
    free(a);
    free(b);
}

static void entries_are_sorted_root_owned_and_normalised(void **state)
{
    (void)state;
    char *code = make_node_code(true);
    void *ctx = NULL;
    size_t len = 0;
    char digest[72];
    build_context("node", code, &ctx, &len, digest);
    /* gzip: magic, deflate, no flags (so no name), mtime zero */
    const unsigned char *gz = ctx;
    assert_true(len > 10);
    assert_int_equal(gz[0], 0x1f);
    assert_int_equal(gz[1], 0x8b);
    assert_int_equal(gz[2], 8);
    assert_int_equal(gz[3], 0);
    assert_int_equal(gz[4] | gz[5] | gz[6] | gz[7], 0);
    static member m[64];
    size_t n = list_members(ctx, len, m, HKS_ARRAY_LEN(m));
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(m[i - 1].name, m[i].name) >= 0)
            fail_msg("not sorted: %s before %s", m[i - 1].name, m[i].name);
        assert_int_equal(m[i].uid, 0);
        assert_int_equal(m[i].gid, 0);
        assert_true(m[i].uname_empty);
        assert_int_equal(m[i].mtime, 0);
        if (m[i].type == AE_IFDIR)
            assert_int_equal(m[i].perm, 0755);
        else if (m[i].perm != 0644 && m[i].perm != 0755)
            fail_msg("%s has mode %o", m[i].name, (unsigned)m[i].perm);
        if (strstr(m[i].name, "templates") || strstr(m[i].name, "Dockerfile.tmpl"))
            fail_msg("%s should not be in the context", m[i].name);
    }
    assert_int_equal(find(m, n, "lib/util.js")->perm, 0644); /* 0600 on disk */
    assert_int_equal(find(m, n, "bin/tool.sh")->perm, 0755);
    assert_int_equal(find(m, n, "lib/")->type, AE_IFDIR); /* libarchive shows the '/' */
    assert_int_equal(find(m, n, ".hks/runtime/launcher.js")->type, AE_IFREG);
    assert_int_equal(find(m, n, ".hks/runtime/")->type, AE_IFDIR);
    assert_non_null(strstr(find(m, n, ".dockerignore")->data, "\nDockerfile\n"));
    assert_non_null(strstr(find(m, n, "Dockerfile")->data, "FROM ${BASE_IMAGE}"));
    assert_string_equal(find(m, n, "index.js")->data, node_files[0].text);
    free(ctx);
    remove_tree(code);
    free(code);
}

static void python_context_follows_its_template_layout(void **state)
{
    (void)state;
    char *code = temp_dir();
    put_file(code, "function/__init__.py", "from .func import new\n", 0644, 0);
    put_file(code, "function/func.py", "def new():\n    return None\n", 0644, 0);
    void *ctx = NULL;
    size_t len = 0;
    char digest[72];
    build_context("python", code, &ctx, &len, digest);
    static member m[64];
    size_t n = list_members(ctx, len, m, HKS_ARRAY_LEN(m));
    find(m, n, "code/function/func.py");
    find(m, n, "hks-runtime/launcher.py");
    find(m, n, "hks-runtime/_hks_serve.py");
    find(m, n, "Dockerfile");
    for (size_t i = 0; i < n; i++) {
        if (strstr(m[i].name, "__pycache__") || strstr(m[i].name, "templates"))
            fail_msg("%s should not be in the context", m[i].name);
    }
    free(ctx);
    remove_tree(code);
    free(code);
}

static char *render(const char *runtime, const char *code)
{
    char runtimes[PATH_MAX];
    runtimes_dir(runtimes, sizeof(runtimes));
    hks_error err = {0};
    char *out = bld_dockerfile_render(runtime, runtimes, code, &err);
    if (!out)
        fail_msg("render %s: %s", runtime, err.msg);
    return out;
}

static char *template_of(const char *runtime)
{
    char path[PATH_MAX], rel[64];
    snprintf(rel, sizeof(rel), "runtimes/%s/Dockerfile.tmpl", runtime);
    test_path(path, sizeof(path), rel);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Every continued line is followed by more of the same instruction. */
static void assert_well_formed(const char *dockerfile)
{
    for (const char *p = dockerfile; *p;) {
        const char *end = strchrnul(p, '\n');
        if (end > p && end[-1] == '\\') {
            const char *next = *end ? end + 1 : end;
            if (!*next || *next == '\n' || strncmp(next, "RUN", 3) == 0 ||
                strncmp(next, "USER", 4) == 0 || strncmp(next, "COPY", 4) == 0)
                fail_msg("a continued line leads nowhere: %.*s", (int)(end - p), p);
        }
        p = *end ? end + 1 : end;
    }
    assert_true(dockerfile[strlen(dockerfile) - 1] == '\n');
}

static void node_dockerfile_with_and_without_dependencies(void **state)
{
    (void)state;
    char *code = temp_dir();
    put_file(code, "index.js", "module.exports = {};\n", 0644, 0);
    /* no package.json: the step goes, the rest of its RUN stays */
    char *df = render("node", code);
    assert_null(strstr(df, "npm ci"));
    assert_null(strstr(df, "package.json ]"));
    assert_non_null(strstr(df, "rm -rf /code/.hks; \\\n"));
    assert_non_null(strstr(df, "chmod -R a+rX,go-w /code /hks\n"));
    assert_non_null(strstr(df, "# No dependencies to install"));
    assert_non_null(strstr(df, "\nUSER 1000:1000\n"));
    assert_non_null(strstr(df, "ENTRYPOINT [\"node\", \"/hks/runtime/launcher.js\", \"serve\"]"));
    assert_well_formed(df);
    free(df);
    /* devDependencies only: nothing to install in production */
    put_file(code, "package.json", "{\"devDependencies\": {\"tape\": \"5\"}}", 0644, 0);
    df = render("node", code);
    assert_null(strstr(df, "npm ci"));
    free(df);
    /* dependencies, an unreadable package.json: the template as it is */
    const char *kept[] = {"{\"dependencies\": {\"left-pad\": \"1.3.0\"}}",
                          "{\"optionalDependencies\": {\"x\": \"1\"}}", "{not json"};
    for (size_t i = 0; i < HKS_ARRAY_LEN(kept); i++) {
        put_file(code, "package.json", kept[i], 0644, 0);
        df = render("node", code);
        assert_string_equal(df, template_of("node"));
        free(df);
    }
    remove_tree(code);
    free(code);
}

static void python_dockerfile_with_and_without_dependencies(void **state)
{
    (void)state;
    char *code = temp_dir();
    put_file(code, "function/func.py", "def new():\n    return None\n", 0644, 0);
    char *df = render("python", code);
    assert_null(strstr(df, "pip install"));
    assert_null(strstr(df, "hks-deps"));
    assert_null(strstr(df, "requirements.txt ]"));
    assert_non_null(strstr(df, "(getent passwd 1000"));
    assert_non_null(strstr(df, "|| true\n\nCOPY hks-runtime/"));
    assert_non_null(
        strstr(df, "ENTRYPOINT [\"python3\", \"/hks/runtime/launcher.py\", \"serve\"]"));
    assert_well_formed(df);
    free(df);
    /* nothing to install: comments only, an empty dependencies array */
    put_file(code, "requirements.txt", "# none yet\n\n   \n", 0644, 0);
    put_file(code, "pyproject.toml",
             "[project]\nname = \"f\"\ndependencies = [\n  # later\n]\n\n[tool.x]\n"
             "dependencies = [\"not-a-project-dependency\"]\n",
             0644, 0);
    df = render("python", code);
    assert_null(strstr(df, "pip install"));
    free(df);
    /* something to install: the template as it is */
    put_file(code, "pyproject.toml", "[project]\nname = \"f\"\ndependencies = [\n  \"httpx\",\n]\n",
             0644, 0);
    df = render("python", code);
    assert_string_equal(df, template_of("python"));
    free(df);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/pyproject.toml", code);
    unlink(path);
    put_file(code, "requirements.txt", "flask==3.0\n", 0644, 0);
    df = render("python", code);
    assert_string_equal(df, template_of("python"));
    free(df);
    remove_tree(code);
    free(code);
}

static void bad_inputs_are_refused_naming_them(void **state)
{
    (void)state;
    char runtimes[PATH_MAX];
    runtimes_dir(runtimes, sizeof(runtimes));
    char *code = temp_dir();
    put_file(code, "index.js", "x\n", 0644, 0);
    hks_error err = {0};
    void *out = NULL;
    size_t len = 0;
    char digest[72];
    bld_context_input in = {.runtime = "ruby", .code_dir = code, .runtimes_dir = runtimes};
    assert_int_equal(bld_context_build(&in, &out, &len, digest, &err), -1);
    assert_non_null(strstr(err.msg, "unknown runtime 'ruby'"));
    assert_null(out);

    /* the node context keeps the code at its top: its own names are taken */
    in.runtime = "node";
    put_file(code, "Dockerfile", "FROM scratch\n", 0644, 0);
    assert_int_equal(bld_context_build(&in, &out, &len, digest, &err), -1);
    assert_non_null(strstr(err.msg, "/Dockerfile"));
    assert_non_null(strstr(err.msg, "build context's own"));
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/Dockerfile", code);
    unlink(path);

    /* symlinks: inside the tree fine, out of it refused */
    snprintf(path, sizeof(path), "%s/alias.js", code);
    assert_int_equal(symlink("index.js", path), 0);
    assert_int_equal(bld_context_build(&in, &out, &len, digest, &err), 0);
    static member m[64];
    size_t n = list_members(out, len, m, HKS_ARRAY_LEN(m));
    assert_int_equal(find(m, n, "alias.js")->type, AE_IFLNK);
    free(out);
    out = NULL;
    snprintf(path, sizeof(path), "%s/passwd", code);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    assert_int_equal(bld_context_build(&in, &out, &len, digest, &err), -1);
    assert_non_null(strstr(err.msg, "passwd': symlink target is absolute"));
    unlink(path);
    assert_int_equal(symlink("../../etc/passwd", path), 0);
    assert_int_equal(bld_context_build(&in, &out, &len, digest, &err), -1);
    assert_non_null(strstr(err.msg, "resolves outside the tree"));
    unlink(path);

    /* a FIFO is not a file */
    snprintf(path, sizeof(path), "%s/pipe", code);
    assert_int_equal(mkfifo(path, 0644), 0);
    assert_int_equal(bld_context_build(&in, &out, &len, digest, &err), -1);
    assert_non_null(strstr(err.msg, "pipe': only files, directories and symlinks"));
    unlink(path);

    /* a missing code directory */
    in.code_dir = "/nonexistent/hks-code";
    assert_int_equal(bld_context_build(&in, &out, &len, digest, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/hks-code"));
    remove_tree(code);
    free(code);
}

/* A template whose dependency step cannot be found is refused, not rendered half-way. */
static void a_changed_template_is_refused(void **state)
{
    (void)state;
    char *runtimes = temp_dir();
    char *code = temp_dir();
    put_file(runtimes, "node/launcher.js", "x\n", 0644, 0);
    put_file(runtimes, "node/Dockerfile.tmpl",
             "FROM node\nRUN npm install\nUSER 1000:1000\n"
             "ENTRYPOINT [\"node\", \"/hks/runtime/launcher.js\", \"serve\"]\n",
             0644, 0);
    hks_error err = {0};
    char *df = bld_dockerfile_render("node", runtimes, code, &err);
    assert_null(df);
    assert_non_null(strstr(err.msg, "node/Dockerfile.tmpl: no RUN step with 'npm ci'"));
    put_file(runtimes, "node/Dockerfile.tmpl", "FROM node\nRUN npm ci\n", 0644, 0);
    assert_null(bld_dockerfile_render("node", runtimes, code, &err));
    assert_non_null(strstr(err.msg, "no 'USER 1000'"));
    remove_tree(runtimes);
    remove_tree(code);
    free(runtimes);
    free(code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(contexts_are_byte_identical),
        cmocka_unit_test(entries_are_sorted_root_owned_and_normalised),
        cmocka_unit_test(python_context_follows_its_template_layout),
        cmocka_unit_test(node_dockerfile_with_and_without_dependencies),
        cmocka_unit_test(python_dockerfile_with_and_without_dependencies),
        cmocka_unit_test(bad_inputs_are_refused_naming_them),
        cmocka_unit_test(a_changed_template_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
