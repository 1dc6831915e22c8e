/* The dashboard's static files: GET /ui/ and /ui/<asset>, read from <root>/ui/dist. The pages hold
 * no data (they call the API with the user's token), so they need no token themselves. A name is
 * served only when every segment is a plain file name (no "..", no hidden names) and the walk
 * down to it meets no symbolic link; only known file types are served, each with its type, a
 * strict Content-Security-Policy and caching headers. */
#include "internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UI_PREFIX    "/ui/"
#define UI_FILE_MAX  (8u << 20)
#define UI_NAME_MAX  200
#define UI_DEPTH_MAX 8
#define UI_CSP                                                                                     \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "                    \
    "form-action 'self'; frame-ancestors 'none'"
#define UI_CACHE_IMMUTABLE  "public, max-age=31536000, immutable"
#define UI_CACHE_REVALIDATE "no-cache"

static const struct {
    const char *ext;
    const char *type;
} ui_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
};

static const char *ui_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < HKS_ARRAY_LEN(ui_types); i++) {
        if (strcmp(dot, ui_types[i].ext) == 0)
            return ui_types[i].type;
    }
    return NULL;
}

/* Segments of [A-Za-z0-9_.-], none empty or starting with '.', at most UI_DEPTH_MAX deep. */
static bool ui_name_ok(const char *name)
{
    size_t len = strlen(name), depth = 1;
    if (len == 0 || len > UI_NAME_MAX)
        return false;
    for (const char *seg = name; seg;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 0 || seg[0] == '.')
            return false;
        for (size_t i = 0; i < n; i++) {
            char c = seg[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.'))
                return false;
        }
        seg = end ? end + 1 : NULL;
        if (seg && ++depth > UI_DEPTH_MAX)
            return false;
    }
    return true;
}

static void close_fd(const int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

/* Open name below dir_fd one segment at a time, refusing symbolic links on the way and at the
 * end. Returns the file's fd or -1. */
static int ui_open_beneath(int dir_fd, const char *name)
{
    char copy[UI_NAME_MAX + 1];
    snprintf(copy, sizeof(copy), "%s", name);
    int at = dir_fd;
    char *save = NULL;
    char *seg = strtok_r(copy, "/", &save);
    while (seg) {
        char *next = strtok_r(NULL, "/", &save);
        int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (next ? O_DIRECTORY : O_NONBLOCK);
        int fd = openat(at, seg, flags);
        if (at != dir_fd)
            close(at);
        if (fd < 0)
            return -1;
        at = fd;
        seg = next;
    }
    return at == dir_fd ? -1 : at;
}

static void ui_not_found(request *req)
{
    api_error(req, 404, "not_found", "no such file of the dashboard", NULL);
}

static void add_header(json_t *headers, const char *name, const char *value)
{
    json_array_append_new(headers, json_pack("[s,s]", name, value));
}

/* Headers every answer of the dashboard carries. */
static json_t *ui_headers(void)
{
    json_t *h = json_array();
    add_header(h, "Content-Security-Policy", UI_CSP);
    add_header(h, "X-Content-Type-Options", "nosniff");
    add_header(h, "X-Frame-Options", "DENY");
    add_header(h, "Referrer-Policy", "no-referrer");
    add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
    add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
    return h;
}

/* The answer: body (malloc'd, taken; NULL for none), type ("" for none), headers (taken). */
static void ui_answer(request *req, int status, char *body, size_t len, const char *type,
                      json_t *headers)
{
    free(req->resp.body);
    json_decref(req->resp.headers);
    req->resp = (response){.status = status,
                           .body = body ? body : strdup(""),
                           .len = body ? len : 0,
                           .content_type = type,
                           .headers = headers};
    req->answered = true;
}

static bool etag_matches(request *req, const char *etag)
{
    const char *given = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "If-None-Match");
    return given && (strcmp(given, "*") == 0 || strstr(given, etag) != NULL);
}

void api_handle_ui(request *req)
{
    const char *name = req->path + strlen(UI_PREFIX);
    if (!name[0])
        name = "index.html";
    const char *type = ui_type(name);
    /* the dashboard's names need no escapes: an escaped byte (an encoded "..", "/" or NUL that
     * would cut the name short) is not one of its files */
    size_t raw_path_len = strcspn(req->raw_uri, "?#");
    if (!type || !ui_name_ok(name) || memchr(req->raw_uri, '%', raw_path_len)) {
        ui_not_found(req);
        return;
    }
    const hksd_config *cfg = hksd_config_of(req->daemon);
    char dist[PATH_MAX + 16];
    snprintf(dist, sizeof(dist), "%.4000s/ui/dist", cfg->root);
    int dist_fd __attribute__((cleanup(close_fd))) = open(dist, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fd __attribute__((cleanup(close_fd))) = dist_fd < 0 ? -1 : ui_open_beneath(dist_fd, name);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > UI_FILE_MAX) {
        ui_not_found(req);
        return;
    }
    char etag[96];
    snprintf(etag, sizeof(etag), "\"%llx-%llx-%lx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec, (unsigned long)st.st_mtim.tv_nsec);
    /* built assets carry a hash of their content in their name: they never change */
    bool immutable = strncmp(name, "assets/", 7) == 0;
    json_t *headers = ui_headers();
    add_header(headers, "Cache-Control", immutable ? UI_CACHE_IMMUTABLE : UI_CACHE_REVALIDATE);
    add_header(headers, "ETag", etag);
    if (etag_matches(req, etag)) {
        ui_answer(req, 304, NULL, 0, "", headers);
        return;
    }
    size_t size = (size_t)st.st_size;
    char *body = malloc(size + 1);
    size_t got = 0;
    while (body && got < size) {
        ssize_t n = read(fd, body + got, size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (!body || got != size) {
        free(body);
        json_decref(headers);
        api_error(req, 500, "internal", "could not read a file of the dashboard", NULL);
        return;
    }
    ui_answer(req, 200, body, size, type, headers);
}

void api_handle_ui_redirect(request *req)
{
    json_t *headers = ui_headers();
    add_header(headers, "Location", UI_PREFIX);
    add_header(headers, "Cache-Control", UI_CACHE_REVALIDATE);
    ui_answer(req, 301, NULL, 0, "", headers);
}
