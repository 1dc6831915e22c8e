#include "cli/config.h"

#include <ctype.h>
#include <limits.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>

static const char *home_dir(void)
{
    const char *home = getenv("HOME");
    if (home && home[0] == '/')
        return home;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir ? pw->pw_dir : NULL;
}

int cli_config_paths(char *dir, size_t dir_size, char *file, size_t file_size, cli_error *err)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    int n;
    if (xdg && xdg[0] == '/') {
        n = snprintf(dir, dir_size, "%s/hks", xdg);
    } else {
        const char *home = home_dir();
        if (!home) {
            cli_fail(err, 0, "cannot find the configuration directory: HOME is not set");
            cli_hint(err, "set HOME or XDG_CONFIG_HOME, or use HKS_SERVER and HKS_TOKEN");
            return -1;
        }
        n = snprintf(dir, dir_size, "%s/.config/hks", home);
    }
    if (n < 0 || (size_t)n >= dir_size ||
        (size_t)snprintf(file, file_size, "%s/config.json", dir) >= file_size)
        return cli_fail(err, ENAMETOOLONG, "configuration directory");
    return 0;
}

static char *dup_string(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) && json_string_length(v) > 0 ? strdup(json_string_value(v)) : NULL;
}

int cli_config_load(cli_config *cfg, cli_error *err)
{
    *cfg = (cli_config){0};
    char dir[PATH_MAX], file[PATH_MAX];
    if (cli_config_paths(dir, sizeof(dir), file, sizeof(file), err) < 0)
        return -1;
    struct stat st;
    if (stat(file, &st) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return cli_fail(err, errno, "read %s", file);
    }
    json_error_t jerr;
    cleanup_json json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        cli_fail(err, 0, "read %s: %s", file, root ? "not a JSON object" : jerr.text);
        cli_hint(err, "fix or remove the file, then run hks-func login");
        return -1;
    }
    cfg->server = dup_string(root, "server");
    cfg->token = dup_string(root, "token");
    cfg->token_file = dup_string(root, "token_file");
    cfg->project = dup_string(root, "project");
    if ((st.st_mode & 077) && cfg->token)
        cli_warn("%s holds a token and is readable by others (mode %04o); run: chmod 600 %s", file,
                 (unsigned)(st.st_mode & 07777), file);
    return 0;
}

static int make_dirs(const char *dir, cli_error *err)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s", dir) >= sizeof(path))
        return cli_fail(err, ENAMETOOLONG, "create %s", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return cli_fail(err, errno, "create %s", path);
        *p = saved;
        if (!saved)
            break;
    }
    /* the hks directory itself: 0700 even when it existed */
    struct stat st;
    if (stat(dir, &st) < 0)
        return cli_fail(err, errno, "stat %s", dir);
    if (!S_ISDIR(st.st_mode))
        return cli_fail(err, ENOTDIR, "%s", dir);
    if ((st.st_mode & 07777) != 0700 && st.st_uid == geteuid() && chmod(dir, 0700) < 0)
        return cli_fail(err, errno, "chmod 0700 %s", dir);
    return 0;
}

int cli_config_save(const cli_config *cfg, cli_error *err)
{
    char dir[PATH_MAX], file[PATH_MAX];
    if (cli_config_paths(dir, sizeof(dir), file, sizeof(file), err) < 0 || make_dirs(dir, err) < 0)
        return -1;
    cleanup_json json_t *root = json_object();
    if (!root)
        return cli_fail(err, ENOMEM, "write %s", file);
    const char *keys[] = {"server", "token", "token_file", "project"};
    const char *values[] = {cfg->server, cfg->token, cfg->token_file, cfg->project};
    for (size_t i = 0; i < HKS_ARRAY_LEN(keys); i++)
        if (values[i] && json_object_set_new(root, keys[i], json_string(values[i])) < 0)
            return cli_fail(err, ENOMEM, "write %s", file);
    cleanup_free char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        return cli_fail(err, ENOMEM, "write %s", file);
    size_t len = strlen(text);
    cleanup_buf cli_buf out = {0};
    if (cli_buf_append(&out, text, len) < 0 || cli_buf_append(&out, "\n", 1) < 0)
        return cli_fail(err, ENOMEM, "write %s", file);
    return cli_write_file_atomic(file, out.data, out.len, 0600, err);
}

void cli_config_free(cli_config *cfg)
{
    free(cfg->server);
    free(cfg->token);
    free(cfg->token_file);
    free(cfg->project);
    *cfg = (cli_config){0};
}

char *cli_server_normalize(const char *url, cli_error *err)
{
    const char *rest = NULL;
    if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    if (!rest || !*rest || *rest == '/') {
        cli_fail_usage(err, "server '%s' is not an http:// or https:// URL with a host", url);
        cli_hint(err, "e.g. hks-func login --server http://127.0.0.1:8080");
        return NULL;
    }
    for (const char *p = url; *p; p++)
        if (isspace((unsigned char)*p) || (unsigned char)*p < 0x20) {
            cli_fail_usage(err, "server '%s' contains white space", url);
            return NULL;
        }
    char *out = strdup(url);
    if (!out) {
        cli_fail(err, ENOMEM, "server");
        return NULL;
    }
    size_t len = strlen(out);
    while (len > (size_t)(rest - url) + 1 && out[len - 1] == '/')
        out[--len] = '\0';
    return out;
}

char *cli_token_read_file(const char *path, cli_error *err)
{
    cleanup_buf cli_buf buf = {0};
    if (cli_read_file(path, 64 * 1024, &buf, err) < 0) {
        cli_hint(err, "check --token-file (or the token_file of the configuration)");
        return NULL;
    }
    char *start = buf.data;
    while (*start && isspace((unsigned char)*start))
        start++;
    size_t len = strlen(start);
    while (len > 0 && isspace((unsigned char)start[len - 1]))
        start[--len] = '\0';
    if (len == 0) {
        cli_fail(err, 0, "token file %s is empty", path);
        cli_hint(err, "put a token from `hksd token` in it");
        return NULL;
    }
    char *token = strdup(start);
    if (!token)
        cli_fail(err, ENOMEM, "token file %s", path);
    return token;
}

json_t *cli_jwt_claims(const char *token)
{
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
        return NULL;
    cleanup_buf cli_buf payload = {0};
    if (cli_base64_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), true, &payload) < 0)
        return NULL;
    json_t *claims = json_loadb(payload.data, payload.len, JSON_REJECT_DUPLICATES, NULL);
    if (claims && !json_is_object(claims)) {
        json_decref(claims);
        return NULL;
    }
    return claims;
}

void cli_settings_read_claims(cli_settings *s)
{
    free(s->token_project);
    free(s->token_sub);
    s->token_project = s->token_sub = NULL;
    s->token_exp = 0;
    if (!s->token)
        return;
    cleanup_json json_t *claims = cli_jwt_claims(s->token);
    if (!claims)
        return;
    s->token_project = dup_string(claims, "project");
    s->token_sub = dup_string(claims, "sub");
    json_t *exp = json_object_get(claims, "exp");
    if (json_is_integer(exp))
        s->token_exp = json_integer_value(exp);
}

static char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? strdup(v) : NULL;
}

int cli_settings_load(cli_settings *s, bool need_server, bool need_token, cli_error *err)
{
    *s = (cli_settings){0};
    cli_config cfg;
    if (cli_config_load(&cfg, err) < 0)
        return -1;
    int rc = 0;
    const char *raw_server = getenv("HKS_SERVER");
    if (raw_server && *raw_server) {
        s->server_from = "HKS_SERVER";
    } else {
        raw_server = cfg.server;
        s->server_from = "config";
    }
    if (raw_server) {
        s->server = cli_server_normalize(raw_server, err);
        if (!s->server) {
            cli_wrap(err, "%s", s->server_from);
            rc = -1;
            goto out;
        }
    }
    if ((s->token = env_value("HKS_TOKEN"))) {
        s->token_from = "HKS_TOKEN";
    } else if (cfg.token_file) {
        s->token_from = "token_file";
        if (!(s->token = cli_token_read_file(cfg.token_file, err))) {
            rc = -1;
            goto out;
        }
    } else if (cfg.token) {
        s->token_from = "config";
        s->token = strdup(cfg.token);
    }
    if ((s->project = env_value("HKS_PROJECT")))
        s->project_from = "HKS_PROJECT";
    else if (cfg.project && (s->project = strdup(cfg.project)))
        s->project_from = "config";
    cli_settings_read_claims(s);
    if (need_server && !s->server) {
        cli_fail_usage(err, "no hksd server configured");
        cli_hint(err, "run hks-func login --server URL --token TOKEN, or set HKS_SERVER");
        rc = -1;
    } else if (need_token && !s->token) {
        cli_fail_usage(err, "not logged in: no token");
        cli_hint(err, "run hks-func login --server URL --token TOKEN, or set HKS_TOKEN");
        rc = -1;
    }
out:
    cli_config_free(&cfg);
    if (rc < 0)
        cli_settings_free(s);
    return rc;
}

void cli_settings_free(cli_settings *s)
{
    free(s->server);
    free(s->token);
    free(s->project);
    free(s->token_project);
    free(s->token_sub);
    *s = (cli_settings){0};
}

bool cli_valid_project(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}
