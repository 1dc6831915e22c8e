/* The node role: policies/seccomp/ installed into the kubelet's seccomp directory. The target is
 * a directory on the node that other software (the kubelet, an admin, another pod with the same
 * hostPath) can touch, so everything below works on one directory descriptor opened without
 * following its last component, and never follows a name inside it. */
#include "node_seccomp.h"

#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "../sandbox/sandbox.h"

#define MAX_PROFILES      64
#define MAX_PROFILE_BYTES (1024 * 1024)
#define MAX_MANIFEST      (64 * 1024)
#define TMP_PREFIX        ".hksd-tmp."
#define NAME_MAX_LEN      128

/* jansson's own cleanup helper */
#define cleanup_json __attribute__((cleanup(json_decrefp)))

/* One of hksd's JSON log lines on stderr. */
static void node_log(const char *level, const char *msg, const char *dir, const char *name)
{
    json_t *line = json_pack("{s:s,s:s,s:s,s:s}", "level", level, "msg", msg, "dir", dir, "name",
                             name ? name : "");
    cleanup_free char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (text)
        fprintf(stderr, "%s\n", text);
}

/* <name>.json with a name of letters, digits, '.', '_' and '-', not starting with '.': what a
 * localhostProfile may name and what never collides with the manifest or temporary files. */
static bool profile_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len < 6 || len > NAME_MAX_LEN || name[0] == '.' || strcmp(name + len - 5, ".json") != 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* ---- conversion ---- */

static bool key_in(const char *key, const char *const *keys)
{
    for (size_t i = 0; keys[i]; i++) {
        if (strcmp(keys[i], key) == 0)
            return true;
    }
    return false;
}

/* A copy of object with only the keys in keep ("comment" dropped, anything else refused). */
static json_t *oci_keys(json_t *object, const char *const *keep, const char *label,
                        const char *where, hks_error *err)
{
    if (!json_is_object(object)) {
        hks_fail(err, 0, "seccomp profile %s: %s: must be an object", label, where);
        return NULL;
    }
    json_t *out = json_object();
    if (!out) {
        hks_fail(err, ENOMEM, "seccomp profile %s", label);
        return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value)
    {
        if (strcmp(key, "comment") == 0)
            continue;
        if (!key_in(key, keep)) {
            hks_fail(err, 0, "seccomp profile %s: %s.%.64s: not a key of the OCI seccomp format",
                     label, where, key);
            json_decref(out);
            return NULL;
        }
        if (json_object_set(out, key, value) < 0) {
            hks_fail(err, ENOMEM, "seccomp profile %s", label);
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static const char *const top_keys[] = {"defaultAction", "defaultErrnoRet", "architectures",
                                       "flags",         "syscalls",        NULL};
static const char *const rule_keys[] = {"names", "action", "errnoRet", "args", NULL};
static const char *const arg_keys[] = {"index", "value", "valueTwo", "op", NULL};

/* rule with its args reduced to the OCI keys */
static json_t *oci_rule(json_t *rule, size_t i, const char *label, hks_error *err)
{
    char where[64];
    snprintf(where, sizeof(where), "syscalls[%zu]", i);
    cleanup_json json_t *out = oci_keys(rule, rule_keys, label, where, err);
    if (!out)
        return NULL;
    json_t *args = json_object_get(out, "args");
    if (!json_is_array(args))
        return steal_pointer(&out); /* absent, or wrong: the compiler names it */
    cleanup_json json_t *clean = json_array();
    size_t j;
    json_t *arg;
    json_array_foreach(args, j, arg)
    {
        snprintf(where, sizeof(where), "syscalls[%zu].args[%zu]", i, j);
        json_t *a = oci_keys(arg, arg_keys, label, where, err);
        if (!a || json_array_append_new(clean, a) < 0)
            return NULL;
    }
    if (json_object_set(out, "args", clean) < 0) {
        hks_fail(err, ENOMEM, "seccomp profile %s", label);
        return NULL;
    }
    return steal_pointer(&out);
}

char *hksd_node_seccomp_convert(const char *text, size_t len, const char *label, size_t *out_len,
                                hks_error *err)
{
    json_error_t jerr;
    cleanup_json json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        hks_fail(err, 0, "seccomp profile %s: line %d column %d: %s", label, jerr.line, jerr.column,
                 jerr.text);
        return NULL;
    }
    cleanup_json json_t *out = oci_keys(root, top_keys, label, "(root)", err);
    if (!out)
        return NULL;
    json_t *rules = json_object_get(out, "syscalls");
    if (rules && !json_is_array(rules)) {
        hks_fail(err, 0, "seccomp profile %s: syscalls: must be an array", label);
        return NULL;
    }
    cleanup_json json_t *clean = json_array();
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        json_t *r = oci_rule(rule, i, label, err);
        if (!r || json_array_append_new(clean, r) < 0)
            return NULL;
    }
    /* a function on Knative listens on $PORT and the queue-proxy reaches it over TCP: the same
     * socket families the local sandbox adds for a function with network (sandbox/profile.c) */
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t f = 0; f < HKS_ARRAY_LEN(families); f++) {
        json_t *inet = json_pack("{s:[s], s:s, s:[{s:i, s:i, s:s}]}", "names", "socket", "action",
                                 "SCMP_ACT_ALLOW", "args", "index", 0, "value", families[f], "op",
                                 "SCMP_CMP_EQ");
        if (!inet || json_array_append_new(clean, inet) < 0) {
            hks_fail(err, ENOMEM, "seccomp profile %s", label);
            return NULL;
        }
    }
    if (json_object_set(out, "syscalls", clean) < 0) {
        hks_fail(err, ENOMEM, "seccomp profile %s", label);
        return NULL;
    }
    cleanup_free char *dumped = json_dumps(out, JSON_INDENT(2));
    if (!dumped) {
        hks_fail(err, ENOMEM, "seccomp profile %s", label);
        return NULL;
    }
    size_t dumped_len = strlen(dumped);
    /* what the kubelet gets must be a profile the sandbox itself accepts */
    sbx_profile *compiled = NULL;
    if (sbx_profile_load_text(dumped, dumped_len, label, false, &compiled, err) < 0)
        return NULL;
    sbx_profile_free(compiled);
    char *with_newline = realloc(dumped, dumped_len + 2);
    if (!with_newline) {
        hks_fail(err, ENOMEM, "seccomp profile %s", label);
        return NULL;
    }
    dumped = NULL;
    with_newline[dumped_len] = '\n';
    with_newline[dumped_len + 1] = '\0';
    *out_len = dumped_len + 1;
    return with_newline;
}

/* ---- the profiles to install ---- */

typedef struct source_profile {
    char name[NAME_MAX_LEN + 1];
    char *text; /* converted */
    size_t len;
} source_profile;

typedef struct source_set {
    source_profile items[MAX_PROFILES];
    size_t n;
} source_set;

static void source_set_release(source_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        free(set->items[i].text);
    set->n = 0;
}

static int compare_sources(const void *a, const void *b)
{
    return strcmp(((const source_profile *)a)->name, ((const source_profile *)b)->name);
}

static int read_source(int dfd, const char *dir, const char *name, char **text, size_t *len,
                       hks_error *err)
{
    cleanup_fd int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return hks_fail(err, errno, "open %s/%s", dir, name);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return hks_fail(err, errno, "stat %s/%s", dir, name);
    if (!S_ISREG(st.st_mode) || st.st_size > MAX_PROFILE_BYTES)
        return hks_fail(err, 0, "%s/%s: not a regular file of at most %d bytes", dir, name,
                        MAX_PROFILE_BYTES);
    cleanup_free char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return hks_fail(err, ENOMEM, "read %s/%s", dir, name);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return hks_fail(err, errno, "read %s/%s", dir, name);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *text = steal_pointer(&buf);
    *len = got;
    return 0;
}

/* dir/name read and converted into p->text */
static int load_source(int dfd, const char *dir, const char *name, source_profile *p,
                       hks_error *err)
{
    char *text = NULL; /* freed here, not by cleanup: clang-tidy 14 does not see that */
    size_t len = 0;
    if (read_source(dfd, dir, name, &text, &len, err) < 0)
        return -1;
    char label[PATH_MAX + NAME_MAX_LEN + 2];
    snprintf(label, sizeof(label), "%s/%s", dir, name);
    p->text = hksd_node_seccomp_convert(text, len, label, &p->len, err);
    free(text);
    return p->text ? 0 : -1;
}

/* Every <name>.json of dir, converted and sorted by name. */
static int load_sources(const char *dir, source_set *set, hks_error *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return hks_fail(err, errno, "open %s", dir);
    cleanup_dir DIR *d = fdopendir(dfd);
    if (!d) {
        int saved = errno;
        close(dfd);
        return hks_fail(err, saved, "read %s", dir);
    }
    for (;;) {
        errno = 0;
        const struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                return hks_fail(err, errno, "read %s", dir);
            break;
        }
        size_t nlen = strlen(e->d_name);
        if (e->d_name[0] == '.' || nlen < 5 || strcmp(e->d_name + nlen - 5, ".json") != 0)
            continue;
        /* groups.json describes the profiles for review (hksd policy show); it is not one */
        if (strcmp(e->d_name, HKSD_SECCOMP_GROUPS_FILE) == 0)
            continue;
        if (!profile_name_ok(e->d_name))
            return hks_fail(err, 0,
                            "%s/%s: a profile name is 1-123 letters, digits, '.', '_' or '-' "
                            "before .json",
                            dir, e->d_name);
        if (set->n == MAX_PROFILES)
            return hks_fail(err, 0, "%s: more than %d profiles", dir, MAX_PROFILES);
        source_profile *p = &set->items[set->n];
        if (load_source(dirfd(d), dir, e->d_name, p, err) < 0)
            return -1;
        memcpy(p->name, e->d_name, nlen + 1); /* nlen <= NAME_MAX_LEN: profile_name_ok */
        set->n++;
    }
    if (set->n == 0)
        return hks_fail(err, 0, "%s: no profile (<name>.json) to install", dir);
    qsort(set->items, set->n, sizeof(set->items[0]), compare_sources);
    return 0;
}

/* ---- the target directory ---- */

static int make_parents(const char *path, hks_error *err)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return hks_fail(err, errno, "create %s", buf);
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return hks_fail(err, errno, "create %s", buf);
    return 0;
}

/* The target directory, opened without following its last component, created when missing;
 * refused unless it belongs to this user and nobody else may write in it. */
static int open_target(const char *target, hks_error *err)
{
    char path[PATH_MAX];
    size_t len = strlen(target);
    while (len > 1 && target[len - 1] == '/')
        len--;
    if (target[0] != '/' || len >= sizeof(path))
        return hks_fail(err, 0, "seccomp directory '%.200s': must be an absolute path", target);
    memcpy(path, target, len);
    path[len] = '\0';
    char *slash = strrchr(path, '/');
    const char *base = slash + 1;
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return hks_fail(err, 0, "seccomp directory '%s': must name a directory below /", path);
    *slash = '\0';
    const char *parent = slash == path ? "/" : path;
    if (make_parents(parent, err) < 0)
        return -1;
    cleanup_fd int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return hks_fail(err, errno, "open %s", parent);
    if (mkdirat(pfd, base, 0755) < 0 && errno != EEXIST)
        return hks_fail(err, errno, "create %s/%s", parent, base);
    int dfd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        if (e == ELOOP || e == ENOTDIR)
            return hks_fail(err, e, "open %s: not a directory or a symlink: refused", target);
        return hks_fail(err, e, "open %s", target);
    }
    struct stat st;
    if (fstat(dfd, &st) < 0) {
        int e = errno;
        close(dfd);
        return hks_fail(err, e, "stat %s", target);
    }
    if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
        close(dfd);
        return hks_fail(err, EPERM,
                        "%s: owned by uid %u with mode %04o: it must belong to uid %u and be "
                        "writable by nobody else",
                        target, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
                        (unsigned)geteuid());
    }
    return dfd;
}

/* A regular file of this user in dfd, looked at without following a symlink. */
static bool owned_file(int dfd, const char *name)
{
    struct stat st;
    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
           st.st_uid == geteuid();
}

/* Temporary files a crash left behind (the lock is held: none is being written). */
static int sweep_temporaries(int dfd, const char *target, hks_error *err)
{
    int copy = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (copy < 0)
        return hks_fail(err, errno, "open %s", target);
    cleanup_dir DIR *d = fdopendir(copy);
    if (!d) {
        int e = errno;
        close(copy);
        return hks_fail(err, e, "read %s", target);
    }
    for (;;) {
        errno = 0;
        const struct dirent *e = readdir(d);
        if (!e)
            return errno ? hks_fail(err, errno, "read %s", target) : 0;
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0 || !owned_file(dfd, e->d_name))
            continue;
        if (unlinkat(dfd, e->d_name, 0) < 0 && errno != ENOENT)
            return hks_fail(err, errno, "remove %s/%s", target, e->d_name);
    }
}

/* data written to a temporary file and renamed over name: readers see the old or the new file,
 * and a symlink at name is replaced, never followed */
static int write_atomically(int dfd, const char *target, const char *name, const char *data,
                            size_t len, hks_error *err)
{
    char tmp[64];
    cleanup_fd int fd = -1;
    for (int attempt = 0; fd < 0; attempt++) {
        unsigned char nonce[8];
        if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
            return hks_fail(err, errno, "random name for a file in %s", target);
        int n = snprintf(tmp, sizeof(tmp), TMP_PREFIX);
        for (size_t i = 0; i < sizeof(nonce); i++)
            n += snprintf(tmp + n, sizeof(tmp) - (size_t)n, "%02x", nonce[i]);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && (errno != EEXIST || attempt == 8))
            return hks_fail(err, errno, "create %s/%s", target, tmp);
    }
    if (fchmod(fd, 0644) < 0 || hks_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        int e = errno;
        unlinkat(dfd, tmp, 0);
        return hks_fail(err, e, "write %s/%s", target, tmp);
    }
    if (renameat(dfd, tmp, dfd, name) < 0) {
        int e = errno;
        unlinkat(dfd, tmp, 0);
        return hks_fail(err, e, "rename %s/%s to %s", target, tmp, name);
    }
    if (fsync(dfd) < 0)
        return hks_fail(err, errno, "fsync %s", target);
    return 0;
}

/* The names the manifest lists (an empty array when there is none). */
static json_t *read_manifest(int dfd, const char *target, hks_error *err)
{
    cleanup_fd int fd = openat(dfd, HKSD_NODE_SECCOMP_MANIFEST,
                               O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == ENOENT)
        return json_array();
    if (fd < 0) {
        hks_fail(err, errno, "open %s/" HKSD_NODE_SECCOMP_MANIFEST " (a symlink is refused)",
                 target);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        hks_fail(err, errno, "stat %s/" HKSD_NODE_SECCOMP_MANIFEST, target);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_size > MAX_MANIFEST) {
        hks_fail(err, 0,
                 "%s/" HKSD_NODE_SECCOMP_MANIFEST ": not a regular file of uid %u of at most %d "
                 "bytes: refused (remove it if hksd did not write it)",
                 target, (unsigned)geteuid(), MAX_MANIFEST);
        return NULL;
    }
    json_error_t jerr;
    cleanup_json json_t *root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
    json_t *names = json_object_get(root, "profiles");
    bool ok = json_is_array(names);
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name)
    {
        ok = ok && json_is_string(name) && profile_name_ok(json_string_value(name));
    }
    if (!ok) {
        hks_fail(err, 0,
                 "%s/" HKSD_NODE_SECCOMP_MANIFEST ": not {\"profiles\": [\"<name>.json\", ...]}: "
                 "refused (remove it if hksd did not write it)",
                 target);
        return NULL;
    }
    return json_incref(names);
}

static bool names_contain(json_t *names, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        if (strcmp(json_string_value(v), name) == 0)
            return true;
    }
    return false;
}

static int write_manifest(int dfd, const char *target, json_t *names, hks_error *err)
{
    json_t *root = json_pack("{s:s, s:O}", "written_by", "hksd", "profiles", names);
    cleanup_free char *text = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
    json_decref(root);
    if (!text)
        return hks_fail(err, ENOMEM, "%s/" HKSD_NODE_SECCOMP_MANIFEST, target);
    return write_atomically(dfd, target, HKSD_NODE_SECCOMP_MANIFEST, text, strlen(text), err);
}

static int install_into(int dfd, const char *target, const source_set *set,
                        hksd_node_seccomp_result *result, hks_error *err)
{
    if (flock(dfd, LOCK_EX) < 0)
        return hks_fail(err, errno, "lock %s", target);
    if (sweep_temporaries(dfd, target, err) < 0)
        return -1;
    cleanup_json json_t *old = read_manifest(dfd, target, err);
    if (!old)
        return -1;
    cleanup_json json_t *fresh = json_array();
    cleanup_json json_t *both = json_copy(old);
    if (!fresh || !both)
        return hks_fail(err, ENOMEM, "%s", target);
    for (size_t i = 0; i < set->n; i++) {
        json_array_append_new(fresh, json_string(set->items[i].name));
        if (!names_contain(both, set->items[i].name))
            json_array_append_new(both, json_string(set->items[i].name));
    }
    /* first the union: a crash from here on leaves nothing of hksd's unlisted */
    if (write_manifest(dfd, target, both, err) < 0)
        return -1;
    for (size_t i = 0; i < set->n; i++) {
        const source_profile *p = &set->items[i];
        if (write_atomically(dfd, target, p->name, p->text, p->len, err) < 0)
            return -1;
        node_log("info", "seccomp profile installed", target, p->name);
        result->written++;
    }
    size_t i;
    json_t *v;
    json_array_foreach(old, i, v)
    {
        const char *name = json_string_value(v);
        if (names_contain(fresh, name))
            continue;
        if (!owned_file(dfd, name)) {
            struct stat st;
            if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                node_log("warn", "stale seccomp profile left alone: not a regular file of hksd's",
                         target, name);
                result->kept++;
            }
            continue;
        }
        if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
            return hks_fail(err, errno, "remove %s/%s", target, name);
        node_log("info", "stale seccomp profile removed", target, name);
        result->removed++;
    }
    return write_manifest(dfd, target, fresh, err);
}

int hksd_node_seccomp_install(const char *profiles_dir, const char *target_dir,
                              hksd_node_seccomp_result *result, hks_error *err)
{
    hksd_node_seccomp_result local = {0};
    source_set set = {.n = 0};
    int rc = load_sources(profiles_dir, &set, err);
    if (rc == 0) {
        cleanup_fd int dfd = open_target(target_dir, err);
        rc = dfd < 0 ? -1 : install_into(dfd, target_dir, &set, &local, err);
    } /* the lock goes with the descriptor */
    source_set_release(&set);
    if (rc == 0 && result)
        *result = local;
    return rc;
}
