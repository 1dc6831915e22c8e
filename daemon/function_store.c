/* Function records on disk: atomic writes, read-back with validation, quarantine of bad records. */
#include "function_store.h"

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORD_SUFFIX ".json"
#define TMP_SUFFIX    ".json.tmp"

bool hksd_function_id_valid(const char *id)
{
    if (!id || strlen(id) != HKSD_FUNCTION_ID_LEN || strncmp(id, "fn-", 3) != 0)
        return false;
    for (const char *c = id + 3; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

int hksd_function_id_new(char out[HKSD_FUNCTION_ID_LEN + 1], hks_error *err)
{
    unsigned char raw[(HKSD_FUNCTION_ID_LEN - 3) / 2];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return hks_fail(err, errno, "getrandom for a function id");
    snprintf(out, 4, "fn-");
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 3 + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

static int fsync_dir(const char *dir, hks_error *err)
{
    cleanup_fd int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        return hks_fail(err, errno, "fsync directory %s", dir);
    return 0;
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n > s && strcmp(name + n - s, suffix) == 0;
}

int hksd_function_store_open(hksd_function_store *store, const char *state_dir, hks_error *err)
{
    if ((size_t)snprintf(store->dir, sizeof(store->dir), "%s/functions", state_dir) >=
        sizeof(store->dir))
        return hks_fail(err, ENAMETOOLONG, "function records under %s", state_dir);
    if (mkdir(store->dir, 0700) < 0 && errno != EEXIST)
        return hks_fail(err, errno, "create %s", store->dir);
    struct stat st;
    if (lstat(store->dir, &st) < 0)
        return hks_fail(err, errno, "stat %s", store->dir);
    if (!S_ISDIR(st.st_mode))
        return hks_fail(err, ENOTDIR, "function records: %s", store->dir);

    cleanup_dir DIR *dir = opendir(store->dir);
    if (!dir)
        return hks_fail(err, errno, "open %s", store->dir);
    int dfd = dirfd(dir);
    for (struct dirent *e; (errno = 0, e = readdir(dir));) {
        if (has_suffix(e->d_name, TMP_SUFFIX) && unlinkat(dfd, e->d_name, 0) < 0)
            return hks_fail(err, errno, "remove interrupted write %s/%s", store->dir, e->d_name);
    }
    if (errno)
        return hks_fail(err, errno, "read %s", store->dir);
    return 0;
}

static int check_string(json_t *record, const char *key, size_t max, hks_error *err)
{
    const char *value = json_string_value(json_object_get(record, key));
    if (!value || !*value || strlen(value) > max)
        return hks_fail(err, EINVAL, "function record: \"%s\" must be a string of 1 to %zu bytes",
                        key, max);
    return 0;
}

static int check_time(json_t *record, const char *key, hks_error *err)
{
    json_t *value = json_object_get(record, key);
    if (!json_is_integer(value) || json_integer_value(value) <= 0)
        return hks_fail(err, EINVAL, "function record: \"%s\" must be a positive integer", key);
    return 0;
}

static int check_record(json_t *record, hks_error *err)
{
    if (!json_is_object(record))
        return hks_fail(err, EINVAL, "function record: not a JSON object");
    const char *id = json_string_value(json_object_get(record, "id"));
    if (!hksd_function_id_valid(id))
        return hks_fail(err, EINVAL, "function record: \"id\" is not a function id");
    if (check_string(record, "project", 128, err) < 0 ||
        check_string(record, "runtime", 32, err) < 0 || check_time(record, "created_at", err) < 0 ||
        check_time(record, "expires_at", err) < 0)
        return -1;
    return 0;
}

static int record_path(const hksd_function_store *store, const char *id, const char *suffix,
                       char *out, size_t size, hks_error *err)
{
    if (!hksd_function_id_valid(id))
        return hks_fail(err, EINVAL, "'%.64s' is not a function id", id ? id : "(null)");
    if ((size_t)snprintf(out, size, "%s/%s%s", store->dir, id, suffix) >= size)
        return hks_fail(err, ENAMETOOLONG, "record of %s under %s", id, store->dir);
    return 0;
}

/* text and a newline into a new file at tmp, synced to disk */
static int write_synced(const char *tmp, const char *text, size_t len, hks_error *err)
{
    cleanup_fd int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return hks_fail(err, errno, "create %s", tmp);
    if (hks_write_all(fd, text, len) < 0 || hks_write_all(fd, "\n", 1) < 0)
        return hks_fail(err, errno, "write %s", tmp);
    if (fsync(fd) < 0)
        return hks_fail(err, errno, "fsync %s", tmp);
    return 0;
}

int hksd_function_store_put(const hksd_function_store *store, json_t *record, hks_error *err)
{
    if (check_record(record, err) < 0)
        return -1;
    const char *id = json_string_value(json_object_get(record, "id"));
    char path[PATH_MAX], tmp[PATH_MAX];
    if (record_path(store, id, RECORD_SUFFIX, path, sizeof(path), err) < 0 ||
        record_path(store, id, TMP_SUFFIX, tmp, sizeof(tmp), err) < 0)
        return -1;
    cleanup_free char *text = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return hks_fail(err, ENOMEM, "serialize the record of %s", id);
    size_t len = strlen(text);
    if (len + 1 > HKSD_FUNCTION_RECORD_MAX)
        return hks_fail(err, EFBIG, "record of %s: %zu bytes, above %d", id, len,
                        HKSD_FUNCTION_RECORD_MAX);

    /* A leftover from an interrupted write is stale by construction: writes of one id are
     * serialized by the caller. */
    if (unlink(tmp) < 0 && errno != ENOENT)
        return hks_fail(err, errno, "remove stale %s", tmp);
    if (write_synced(tmp, text, len, err) < 0) {
        if (err->errnum != EEXIST)
            unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        hks_fail(err, errno, "rename %s to %s", tmp, path);
        unlink(tmp);
        return -1;
    }
    return fsync_dir(store->dir, err);
}

static json_t *read_record(const char *path, const char *id, hks_error *err)
{
    json_t *record = hksd_json_file_load(path, HKSD_FUNCTION_RECORD_MAX, false, err);
    if (!record)
        return NULL;
    if (check_record(record, err) < 0) {
        hks_wrap(err, "%s", path);
        json_decref(record);
        return NULL;
    }
    if (strcmp(json_string_value(json_object_get(record, "id")), id) != 0) {
        hks_fail(err, EINVAL, "%s: the record's id is not its file's name", path);
        json_decref(record);
        return NULL;
    }
    return record;
}

json_t *hksd_function_store_get(const hksd_function_store *store, const char *id, hks_error *err)
{
    char path[PATH_MAX];
    if (record_path(store, id, RECORD_SUFFIX, path, sizeof(path), err) < 0)
        return NULL;
    return read_record(path, id, err);
}

int hksd_function_store_remove(const hksd_function_store *store, const char *id, hks_error *err)
{
    char path[PATH_MAX];
    if (record_path(store, id, RECORD_SUFFIX, path, sizeof(path), err) < 0)
        return -1;
    if (unlink(path) < 0)
        return hks_fail(err, errno, "remove %s", path);
    return fsync_dir(store->dir, err);
}

/* <id>.json, where id is a function id */
static int is_record_name(const struct dirent *entry)
{
    size_t len = strlen(entry->d_name);
    if (len != HKSD_FUNCTION_ID_LEN + strlen(RECORD_SUFFIX) ||
        strcmp(entry->d_name + HKSD_FUNCTION_ID_LEN, RECORD_SUFFIX) != 0)
        return 0;
    char id[HKSD_FUNCTION_ID_LEN + 1];
    memcpy(id, entry->d_name, HKSD_FUNCTION_ID_LEN);
    id[HKSD_FUNCTION_ID_LEN] = '\0';
    return hksd_function_id_valid(id);
}

typedef struct record_names {
    struct dirent **entries;
    int count;
} record_names;

static void record_names_free(record_names *names)
{
    for (int i = 0; i < names->count; i++)
        free(names->entries[i]);
    free(names->entries);
}

/* A record that cannot be read back moves aside as <id>.json.corrupt. */
static int quarantine(const hksd_function_store *store, const char *id, const char *why,
                      hks_error *err)
{
    char path[PATH_MAX], corrupt[PATH_MAX];
    if (record_path(store, id, RECORD_SUFFIX, path, sizeof(path), err) < 0 ||
        record_path(store, id, ".json.corrupt", corrupt, sizeof(corrupt), err) < 0)
        return -1;
    if (rename(path, corrupt) < 0)
        return hks_fail(err, errno, "quarantine %s (%s)", path, why);
    return 0;
}

json_t *hksd_function_store_list(const hksd_function_store *store, size_t *quarantined,
                                 hks_error *err)
{
    *quarantined = 0;
    __attribute__((cleanup(record_names_free))) record_names names = {0};
    /* alphasort: ids are lowercase hex, so this is their byte order in every locale */
    names.count = scandir(store->dir, &names.entries, is_record_name, alphasort);
    if (names.count < 0) {
        names.count = 0;
        hks_fail(err, errno, "list %s", store->dir);
        return NULL;
    }
    json_auto_t *records = json_array();
    if (!records) {
        hks_fail(err, ENOMEM, "list %s", store->dir);
        return NULL;
    }
    for (int i = 0; i < names.count; i++) {
        char id[HKSD_FUNCTION_ID_LEN + 1];
        memcpy(id, names.entries[i]->d_name, HKSD_FUNCTION_ID_LEN);
        id[HKSD_FUNCTION_ID_LEN] = '\0';
        hks_error read_err = {0};
        json_t *record = hksd_function_store_get(store, id, &read_err);
        if (record) {
            if (json_array_append_new(records, record) < 0) {
                hks_fail(err, ENOMEM, "list %s", store->dir);
                return NULL;
            }
            continue;
        }
        if (read_err.errnum == ENOENT)
            continue; /* removed while listing */
        if (quarantine(store, id, read_err.msg, err) < 0)
            return NULL;
        (*quarantined)++;
    }
    return json_incref(records);
}
