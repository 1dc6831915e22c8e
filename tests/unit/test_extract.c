/* Extraction of uploaded archives: a real project lands byte-exact with normalised modes; hostile
 * archives are refused naming the entry, leave dest_dir empty and create nothing outside it.
 * Every archive is built here with libarchive's writer, in memory. */
#include "tests/unit/helpers.h"

#include "builder/builder.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <ftw.h>
#include <locale.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

typedef struct tentry {
    const char *path;
    mode_t type; /* AE_IFREG when 0 */
    mode_t perm; /* 0644 when 0 */
    const char *data;
    size_t len; /* with data NULL: len zero bytes */
    const char *symlink;
    const char *hardlink;
} tentry;

typedef struct buf {
    unsigned char *data;
    size_t len, cap;
} buf;

static la_ssize_t buf_write(struct archive *a, void *opaque, const void *data, size_t n)
{
    (void)a;
    buf *b = opaque;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
        assert_non_null(b->data);
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return (la_ssize_t)n;
}

static struct archive *writer(buf *b, bool gzip)
{
    struct archive *a = archive_write_new();
    assert_non_null(a);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    if (gzip)
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
    assert_int_equal(archive_write_open(a, b, NULL, buf_write, NULL), ARCHIVE_OK);
    return a;
}

static buf make_tar(const tentry *entries, size_t n, bool gzip)
{
    buf b = {0};
    struct archive *a = writer(&b, gzip);
    static const char zeros[65536];
    for (size_t i = 0; i < n; i++) {
        const tentry *t = &entries[i];
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, t->path);
        archive_entry_set_filetype(e, t->symlink ? AE_IFLNK : t->type ? t->type : AE_IFREG);
        archive_entry_set_perm(e, t->perm ? t->perm : 0644);
        if (t->symlink)
            archive_entry_set_symlink(e, t->symlink);
        if (t->hardlink)
            archive_entry_set_hardlink(e, t->hardlink);
        if (t->type == AE_IFCHR || t->type == AE_IFBLK)
            archive_entry_set_rdev(e, makedev(1, 3));
        bool data = !t->symlink && !t->hardlink && (!t->type || t->type == AE_IFREG);
        archive_entry_set_size(e, data ? (la_int64_t)t->len : 0);
        /* WARN: a name not in the locale's charset, written as raw bytes (pax hdrcharset) */
        int r = archive_write_header(a, e);
        assert_true(r == ARCHIVE_OK || r == ARCHIVE_WARN);
        for (size_t done = 0; data && done < t->len;) {
            size_t chunk = t->len - done < sizeof(zeros) ? t->len - done : sizeof(zeros);
            const char *src = t->data ? t->data + done : zeros;
            assert_int_equal(archive_write_data(a, src, chunk), (la_ssize_t)chunk);
            done += chunk;
        }
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return b;
}

/* gzip arbitrary bytes (hand-made tar headers libarchive's writer would not produce) */
static buf gzip_bytes(const void *data, size_t len)
{
    buf b = {0};
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
    assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
    assert_int_equal(archive_write_open(a, &b, NULL, buf_write, NULL), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "raw");
    archive_entry_set_filetype(e, AE_IFREG);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
    archive_entry_free(e);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return b;
}

/* one ustar header block */
static void ustar_header(unsigned char *h, const char *name, char type, size_t size)
{
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    snprintf((char *)h + 100, 8, "%07o", 0644);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011zo", size);
    snprintf((char *)h + 136, 12, "%011o", 0);
    h[156] = (unsigned char)type;
    memcpy(h + 257, "ustar", 6);
    h[263] = '0';
    h[264] = '0';
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
}

typedef struct place {
    char top[64];  /* fresh per test: only dest may appear in it */
    char dest[96]; /* top/dest */
} place;

static void place_make(place *p)
{
    snprintf(p->top, sizeof(p->top), "/tmp/hks-test-extract-XXXXXX");
    assert_non_null(mkdtemp(p->top));
    snprintf(p->dest, sizeof(p->dest), "%s/dest", p->top);
    assert_int_equal(mkdir(p->dest, 0700), 0);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void place_remove(place *p)
{
    assert_int_equal(nftw(p->top, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void expect_refused_limits(const void *data, size_t len, const bld_extract_limits *limits,
                                  const char *expect)
{
    place p = {0};
    place_make(&p);
    hks_error err = {0};
    bld_extract_stats st = {.files = 99};
    if (bld_extract_archive(data, len, p.dest, limits, &st, &err) != -1)
        fail_msg("accepted; expected '%s'", expect);
    if (!strstr(err.msg, expect))
        fail_msg("message '%s' lacks '%s'", err.msg, expect);
    assert_int_equal(count_entries_with_prefix(p.dest, ""), 0);
    assert_int_equal(count_entries_with_prefix(p.top, ""), 1);
    assert_int_equal(st.files + st.dirs + st.links, 0);
    assert_int_equal(st.bytes, 0);
    place_remove(&p);
}

static void expect_refused(const tentry *entries, size_t n, const bld_extract_limits *limits,
                           const char *expect)
{
    buf b = make_tar(entries, n, true);
    expect_refused_limits(b.data, b.len, limits, expect);
    free(b.data);
}

#define REFUSED(limits, expect, ...)                                                               \
    do {                                                                                           \
        const tentry entries_[] = {__VA_ARGS__};                                                   \
        expect_refused(entries_, HKS_ARRAY_LEN(entries_), limits, expect);                         \
    } while (0)

/* a normal file and directory first: what was extracted before the refusal must go too */
#define OK_FIRST                                                                                   \
    {"func.yaml", .data = "name: f\n", .len = 8},                                                  \
    {                                                                                              \
        "src", .type = AE_IFDIR                                                                    \
    }

static void check_file(const char *dir, const char *name, const char *content, mode_t mode)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, mode);
    assert_int_equal(st.st_size, strlen(content));
    char got[4096] = {0};
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(got, 1, sizeof(got), f), strlen(content));
    fclose(f);
    assert_memory_equal(got, content, strlen(content));
}

static void check_dir(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0755);
}

static const char func_yaml[] = "specVersion: 0.36.0\nname: hello\nruntime: node\n"
                                "created: 2026-11-30T10:00:00Z\ninvoke: http\n";
static const char index_js[] = "const handle = async (context, body) => {\n"
                               "  return { body: 'hello' };\n};\nmodule.exports = { handle };\n";
static const char package_json[] = "{\n  \"name\": \"hello\",\n  \"version\": \"0.1.0\",\n"
                                   "  \"main\": \"index.js\"\n}\n";
static const char unit_js[] = "const { handle } = require('../index.js');\n";
static const char run_sh[] = "#!/bin/sh\nexec node index.js\n";

static void a_functions_project_lands_byte_exact(void **state)
{
    (void)state;
    const tentry project[] = {
        {"./", .type = AE_IFDIR, .perm = 0700},
        {"./func.yaml", .data = func_yaml, .len = sizeof(func_yaml) - 1, .perm = 0600},
        {"./index.js", .data = index_js, .len = sizeof(index_js) - 1, .perm = 0664},
        {"./package.json", .data = package_json, .len = sizeof(package_json) - 1},
        {"./test/", .type = AE_IFDIR, .perm = 0700},
        {"./test/unit.js", .data = unit_js, .len = sizeof(unit_js) - 1, .perm = 0400},
        {"./bin/run.sh", .data = run_sh, .len = sizeof(run_sh) - 1, .perm = 0700},
        {"./empty.txt", .len = 0},
        {"./node_modules/x/cli.js", .data = "1;\n", .len = 3, .perm = 0744},
        {"./node_modules/.bin/x", .symlink = "../x/cli.js"},
        {"./test/index.js", .hardlink = "./index.js"},
    };
    for (int gzip = 0; gzip <= 1; gzip++) {
        buf b = make_tar(project, HKS_ARRAY_LEN(project), gzip);
        place p = {0};
        place_make(&p);
        mode_t old_umask = umask(077); /* modes must not depend on it */
        hks_error err = {0};
        bld_extract_stats st;
        int rc = bld_extract_archive(b.data, b.len, p.dest, NULL, &st, &err);
        umask(old_umask);
        if (rc != 0)
            fail_msg("refused: %s", err.msg);
        assert_int_equal(st.files, 7);
        assert_int_equal(st.dirs, 1);
        assert_int_equal(st.links, 2);
        assert_int_equal(st.bytes, sizeof(func_yaml) + sizeof(index_js) + sizeof(package_json) +
                                       sizeof(unit_js) + sizeof(run_sh) - 5 + 3);
        check_file(p.dest, "func.yaml", func_yaml, 0644);
        check_file(p.dest, "index.js", index_js, 0644);
        check_file(p.dest, "package.json", package_json, 0644);
        check_file(p.dest, "test/unit.js", unit_js, 0644);
        check_file(p.dest, "bin/run.sh", run_sh, 0755);
        check_file(p.dest, "empty.txt", "", 0644);
        check_file(p.dest, "node_modules/x/cli.js", "1;\n", 0755);
        check_file(p.dest, "test/index.js", index_js, 0644);
        check_dir(p.dest, "test");
        check_dir(p.dest, "bin");
        check_dir(p.dest, "node_modules");
        check_dir(p.dest, "node_modules/.bin");
        char path[PATH_MAX], target[64] = {0};
        snprintf(path, sizeof(path), "%s/node_modules/.bin/x", p.dest);
        assert_int_equal(readlink(path, target, sizeof(target) - 1), strlen("../x/cli.js"));
        assert_string_equal(target, "../x/cli.js");
        struct stat a, h;
        snprintf(path, sizeof(path), "%s/index.js", p.dest);
        assert_int_equal(stat(path, &a), 0);
        snprintf(path, sizeof(path), "%s/test/index.js", p.dest);
        assert_int_equal(stat(path, &h), 0);
        assert_int_equal(a.st_ino, h.st_ino);
        struct stat d;
        assert_int_equal(stat(p.dest, &d), 0);
        assert_int_equal(d.st_mode & 07777, 0700); /* dest_dir itself is the caller's */
        assert_int_equal(count_entries_with_prefix(p.top, ""), 1);
        place_remove(&p);
        free(b.data);
    }
}

/* Pax stores names in UTF-8 and libarchive converts them to the locale's charset: hksd runs in
 * the "C" locale, where that fails unless the extraction sees them as UTF-8. */
static void non_ascii_names_survive_the_c_locale(void **state)
{
    (void)state;
    const tentry entries[] = {{"./lib/h\xc3\xa9llo.js", .data = "1;\n", .len = 3},
                              {"./\xe6\x97\xa5\xe6\x9c\xac/", .type = AE_IFDIR}};
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    assert_non_null(utf8);
    locale_t old = uselocale(utf8); /* so that the writer records them as UTF-8 */
    buf b = make_tar(entries, HKS_ARRAY_LEN(entries), true);
    uselocale(old);
    freelocale(utf8);
    assert_non_null(memmem(b.data, b.len, "\x1f\x8b", 2)); /* gzip */
    place p = {0};
    place_make(&p);
    hks_error err = {0};
    if (bld_extract_archive(b.data, b.len, p.dest, NULL, NULL, &err) != 0)
        fail_msg("refused: %s", err.msg);
    check_file(p.dest, "lib/h\xc3\xa9llo.js", "1;\n", 0644);
    check_dir(p.dest, "\xe6\x97\xa5\xe6\x9c\xac");
    place_remove(&p);
    free(b.data);
}

static void names_that_leave_the_tree_are_refused(void **state)
{
    (void)state;
    REFUSED(NULL, "archive entry '../evil': path leaves the tree", OK_FIRST,
            {"../evil", .data = "x", .len = 1});
    REFUSED(NULL, "archive entry 'a/../../evil': path leaves the tree", OK_FIRST,
            {"a/../../evil", .data = "x", .len = 1});
    REFUSED(NULL, "archive entry 'src/../x': path has a '..' component", OK_FIRST,
            {"src/../x", .data = "x", .len = 1});
    REFUSED(NULL, "archive entry '/etc/passwd': absolute path", OK_FIRST,
            {"/etc/passwd", .data = "root::0:0::/:/bin/sh\n", .len = 21});
    REFUSED(NULL, "archive entry '.': names the tree itself", {".", .data = "x", .len = 1});
    REFUSED(NULL, "archive entry 'a?b': name contains a control character",
            {"a\nb", .data = "x", .len = 1});
    /* names in messages stay valid UTF-8 (they end up in JSON errors) */
    REFUSED(NULL, "archive entry 'bad?name/../../x': path leaves the tree",
            {"bad\xffname/../../x", .data = "x", .len = 1});
    REFUSED(NULL, "archive entry 'h\xc3\xa9/../../x': path leaves the tree",
            {"h\xc3\xa9/../../x", .data = "x", .len = 1});
    char deep[200] = "d";
    for (int i = 1; i < 33; i++)
        snprintf(deep + strlen(deep), sizeof(deep) - strlen(deep), "/d");
    REFUSED(NULL, "path has 33 components, more than 32", OK_FIRST, {deep, .len = 1});
    /* one level less is fine */
    deep[strlen(deep) - 2] = '\0';
    const tentry ok[] = {{deep, .data = "x", .len = 1}};
    buf b = make_tar(ok, 1, true);
    place p = {0};
    place_make(&p);
    hks_error err = {0};
    assert_int_equal(bld_extract_archive(b.data, b.len, p.dest, NULL, NULL, &err), 0);
    place_remove(&p);
    free(b.data);
}

static void links_that_leave_the_tree_are_refused(void **state)
{
    (void)state;
    REFUSED(NULL, "archive entry 'etc': symlink target is absolute: '/etc'", OK_FIRST,
            {"etc", .symlink = "/etc"});
    REFUSED(NULL, "archive entry 'up': symlink target resolves outside the tree: '../..'", OK_FIRST,
            {"up", .symlink = "../.."});
    REFUSED(NULL, "archive entry 'src/up': symlink target resolves outside the tree", OK_FIRST,
            {"src/up", .symlink = "../../x"});
    /* the link points at the test's own directory: nothing may appear there */
    place outside = {0};
    place_make(&outside);
    REFUSED(NULL, "archive entry 'link': symlink target is absolute", OK_FIRST,
            {"link", .symlink = outside.top}, {"link/evil", .data = "x", .len = 1});
    REFUSED(NULL, "archive entry 'tmp': symlink target is absolute", {"tmp", .symlink = "/tmp"},
            {"tmp/evil", .data = "x", .len = 1});
    assert_int_equal(count_entries_with_prefix(outside.top, ""), 1);
    place_remove(&outside);
    /* a link inside the tree is fine, but nothing is written through it */
    REFUSED(NULL, "archive entry 'link/evil': path goes through the symlink 'link'", OK_FIRST,
            {"link", .symlink = "src"}, {"link/evil", .data = "x", .len = 1});
    REFUSED(NULL, "archive entry 'link/sub/': path goes through the symlink 'link'", OK_FIRST,
            {"link", .symlink = "src"}, {"link/sub", .type = AE_IFDIR});
    /* u points at the root (allowed); "u/.." would climb from there, out of the tree */
    REFUSED(NULL, "archive entry 'x/y/v': symlink target has '..' after a name", OK_FIRST,
            {"x/y/u", .symlink = "../.."}, {"x/y/v", .symlink = "u/.."});
    REFUSED(NULL, "archive entry 'shadow': hardlink target '/etc/shadow': absolute path", OK_FIRST,
            {"shadow", .hardlink = "/etc/shadow"});
    REFUSED(NULL, "archive entry 'h': hardlink target '../outside': path leaves the tree", OK_FIRST,
            {"h", .hardlink = "../outside"});
    REFUSED(NULL, "archive entry 'h': hardlink target 'src' is not a regular file", OK_FIRST,
            {"h", .hardlink = "src"});
    REFUSED(NULL, "archive entry 'h': hardlink target 'later' is not a regular file", OK_FIRST,
            {"h", .hardlink = "later"}, {"later", .data = "x", .len = 1});
    REFUSED(NULL, "archive entry 'h': hardlink target 'l' is not a regular file", OK_FIRST,
            {"l", .symlink = "func.yaml"}, {"h", .hardlink = "l"});
}

static void special_files_and_modes_are_refused(void **state)
{
    (void)state;
    REFUSED(NULL, "archive entry 'dev/tty': character device refused", OK_FIRST,
            {"dev/tty", .type = AE_IFCHR});
    REFUSED(NULL, "archive entry 'sda': block device refused", OK_FIRST, {"sda", .type = AE_IFBLK});
    REFUSED(NULL, "archive entry 'pipe': FIFO refused", OK_FIRST, {"pipe", .type = AE_IFIFO});
    REFUSED(NULL, "archive entry 'su': setuid bit set (mode 4755)", OK_FIRST,
            {"su", .data = "x", .len = 1, .perm = 04755});
    REFUSED(NULL, "archive entry 'sg': setgid bit set", OK_FIRST,
            {"sg", .data = "x", .len = 1, .perm = 02755});
    REFUSED(NULL, "archive entry 'tmpdir/': sticky bit set", OK_FIRST,
            {"tmpdir", .type = AE_IFDIR, .perm = 01777});
    REFUSED(NULL, "archive entry 'func.yaml': already in the archive", OK_FIRST,
            {"func.yaml", .data = "y", .len = 1});
    REFUSED(NULL, "archive entry 'func.yaml/x': path goes through the file 'func.yaml'", OK_FIRST,
            {"func.yaml/x", .data = "y", .len = 1});
    REFUSED(NULL, "archive entry 'func.yaml/': already in the archive", OK_FIRST,
            {"func.yaml", .type = AE_IFDIR});
}

static void caps_are_enforced(void **state)
{
    (void)state;
    bld_extract_limits l;
    bld_extract_limits_default(&l);
    assert_int_equal(l.max_entries, 10000);
    assert_int_equal(l.max_total_bytes, 64 << 20);
    assert_int_equal(l.max_entry_bytes, 16 << 20);
    assert_int_equal(l.max_depth, 32);
    l.max_entries = 4;
    REFUSED(&l, "archive entry 'c': more than 4 entries", OK_FIRST, {"a", .len = 1},
            {"b", .len = 1}, {"c", .len = 1});
    bld_extract_limits_default(&l);
    l.max_total_bytes = 1000;
    REFUSED(&l, "archive entry 'c': the files total more than 1000 bytes", {"a", .len = 400},
            {"b", .len = 400}, {"c", .len = 400});
    bld_extract_limits_default(&l);
    l.max_entry_bytes = 100;
    REFUSED(&l, "archive entry 'big': claims 101 bytes, more than 100", OK_FIRST,
            {"big", .len = 101});
    REFUSED(NULL, "archive entry 'huge': claims 17825792 bytes, more than 16777216", OK_FIRST,
            {"huge", .len = 17 << 20});
}

/* A small upload that expands past the caps: 8 files of 12 MiB of zeros, each under the entry
 * cap, 96 MiB together against the 64 MiB total. */
static void a_gzip_bomb_stops_at_the_cap(void **state)
{
    (void)state;
    tentry bomb[8];
    char names[8][16];
    for (unsigned i = 0; i < 8; i++) {
        snprintf(names[i], sizeof(names[i]), "z%u", i);
        bomb[i] = (tentry){names[i], .len = 12 << 20};
    }
    buf b = make_tar(bomb, 8, true);
    assert_true(b.len < 1 << 20);
    expect_refused_limits(b.data, b.len, NULL,
                          "archive entry 'z5': the files total more than 67108864 bytes");
    free(b.data);
}

/* Data the tar reader skips by itself (here pax global headers) never reaches the file caps:
 * the decompressed stream has a cap of its own. */
static void skipped_data_counts_against_the_stream_cap(void **state)
{
    (void)state;
    size_t body = 1000 * 1000, n = 6;
    size_t block = 512 + ((body + 511) / 512) * 512;
    size_t len = n * block + 1024;
    unsigned char *raw = calloc(1, len);
    assert_non_null(raw);
    for (size_t i = 0; i < n; i++)
        ustar_header(raw + i * block, "pax_global_header", 'g', body);
    buf b = gzip_bytes(raw, len);
    free(raw);
    bld_extract_limits l;
    bld_extract_limits_default(&l);
    l.max_entries = 10;
    l.max_total_bytes = 1 << 20;
    expect_refused_limits(b.data, b.len, &l,
                          "archive: expands past 2138112 bytes, more than the caps allow");
    free(b.data);
}

static void broken_archives_are_refused(void **state)
{
    (void)state;
    unsigned char garbage[4096];
    unsigned x = 12345;
    for (size_t i = 0; i < sizeof(garbage); i++) {
        x = x * 1103515245u + 12345u;
        garbage[i] = (unsigned char)(x >> 16);
    }
    expect_refused_limits(garbage, sizeof(garbage), NULL, "archive: ");
    buf gz = gzip_bytes(garbage, sizeof(garbage));
    expect_refused_limits(gz.data, gz.len, NULL, "archive: ");
    free(gz.data);

    /* truncated in the middle of a file's data, compressed or not (after the first 64 KiB the
     * decompressor reads when opening: the error can name the entry) */
    static unsigned char noise[400000];
    for (size_t i = 0; i < sizeof(noise); i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (unsigned char)(x >> 16);
    }
    const tentry one[] = {OK_FIRST,
                          {"noise.bin", .data = (const char *)noise, .len = sizeof(noise)}};
    for (int gzip = 0; gzip <= 1; gzip++) {
        buf b = make_tar(one, HKS_ARRAY_LEN(one), gzip);
        expect_refused_limits(b.data, b.len / 2, NULL, "archive entry 'noise.bin': ");
        free(b.data);
    }

    /* an empty name, which libarchive's writer would not produce */
    unsigned char tar[512 * 4] = {0};
    ustar_header(tar, "", '0', 1);
    tar[512] = 'x';
    buf b = gzip_bytes(tar, sizeof(tar));
    expect_refused_limits(b.data, b.len, NULL, "archive entry '': empty name");
    free(b.data);

    hks_error err = {0};
    place p = {0};
    place_make(&p);
    assert_int_equal(bld_extract_archive("", 0, p.dest, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "archive: empty"));
    place_remove(&p);
}

static void plain_tar_is_checked_the_same(void **state)
{
    (void)state;
    const tentry evil[] = {OK_FIRST, {"../evil", .data = "x", .len = 1}};
    buf b = make_tar(evil, HKS_ARRAY_LEN(evil), false);
    expect_refused_limits(b.data, b.len, NULL, "archive entry '../evil': path leaves the tree");
    free(b.data);
}

static void dest_dir_must_be_empty_and_limits_sane(void **state)
{
    (void)state;
    const tentry ok[] = {OK_FIRST};
    buf b = make_tar(ok, HKS_ARRAY_LEN(ok), true);
    place p = {0};
    place_make(&p);
    char keep[PATH_MAX + 8];
    snprintf(keep, sizeof(keep), "%s/keep", p.dest);
    int fd = open(keep, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    hks_error err = {0};
    assert_int_equal(bld_extract_archive(b.data, b.len, p.dest, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "Directory not empty"));
    struct stat st;
    assert_int_equal(stat(keep, &st), 0);
    assert_int_equal(unlink(keep), 0);
    bld_extract_limits l;
    bld_extract_limits_default(&l);
    l.max_depth = 0;
    assert_int_equal(bld_extract_archive(b.data, b.len, p.dest, &l, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "limits out of range"));
    /* and it works into the now-empty directory */
    bld_extract_stats stats;
    assert_int_equal(bld_extract_archive(b.data, b.len, p.dest, NULL, &stats, &err), 0);
    assert_int_equal(stats.files, 1);
    assert_int_equal(stats.dirs, 1);
    assert_int_equal(stats.bytes, 8);
    place_remove(&p);
    free(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_functions_project_lands_byte_exact),
        cmocka_unit_test(non_ascii_names_survive_the_c_locale),
        cmocka_unit_test(names_that_leave_the_tree_are_refused),
        cmocka_unit_test(links_that_leave_the_tree_are_refused),
        cmocka_unit_test(special_files_and_modes_are_refused),
        cmocka_unit_test(caps_are_enforced),
        cmocka_unit_test(a_gzip_bomb_stops_at_the_cap),
        cmocka_unit_test(skipped_data_counts_against_the_stream_cap),
        cmocka_unit_test(broken_archives_are_refused),
        cmocka_unit_test(plain_tar_is_checked_the_same),
        cmocka_unit_test(dest_dir_must_be_empty_and_limits_sane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
