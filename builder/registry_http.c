/* The registry client's HTTP side over libcurl: one easy handle per push (connections kept alive),
 * retries with backoff, answering WWW-Authenticate challenges with docker config.json credentials
 * (Basic, or a Bearer token fetched from the realm and kept for the push), TLS verified against
 * the system's or a given CA bundle, plain HTTP only for a registry configured insecure. */
#include "registry_internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

#define CONNECT_TIMEOUT_MS 10000L
#define STALL_SECONDS      60u  /* a transfer slower than 1 byte/s for this long is dropped */
#define BACKOFF_CAP_MS     8000 /* the longest wait between attempts, Retry-After included */
#define RETRY_AFTER_CAP_S  30
#define CONFIG_MAX         (1024 * 1024)
#define EXPECT_MIN_BYTES   (1024 * 1024) /* smaller PUT bodies: no "Expect: 100-continue" */

/* curl_global_init is not thread-safe: hksd may push from several threads */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int reg_client_init(reg_client *c, const bld_registry_options *opt, const bld_image_ref *dest,
                    hks_error *err)
{
    memset(c, 0, sizeof(*c));
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return hks_fail(err, 0, "libcurl: %s", curl_easy_strerror(curl_init_rc));
    snprintf(c->registry, sizeof(c->registry), "%s", dest->registry);
    snprintf(c->repository, sizeof(c->repository), "%s", dest->repository);
    /* Docker Hub's API is not served at the name references use */
    const char *host =
        strcmp(dest->registry, "docker.io") == 0 ? "registry-1.docker.io" : dest->registry;
    snprintf(c->base, sizeof(c->base), "%s://%s", opt->insecure ? "http" : "https", host);
    c->insecure = opt->insecure;
    c->ca_file = opt->ca_file;
    c->docker_config = opt->docker_config;
    c->mount_from = opt->mount_from;
    c->retries = opt->retries ? opt->retries : 3;
    c->stall_s = opt->stall_s ? opt->stall_s : STALL_SECONDS;
    c->backoff_ms = 200;
    c->curl = curl_easy_init();
    if (!c->curl)
        return hks_fail(err, ENOMEM, "libcurl: curl_easy_init");
    return 0;
}

void reg_client_free(reg_client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    c->curl = NULL;
    if (c->authorization)
        OPENSSL_cleanse(c->authorization, strlen(c->authorization));
    free(c->authorization);
    c->authorization = NULL;
}

void reg_response_free(reg_response *rs)
{
    free(rs->location);
    free(rs->digest);
    free(rs->body);
    memset(rs, 0, sizeof(*rs));
}

int reg_status_error(const reg_client *c, const reg_request *rq, const reg_response *rs,
                     hks_error *err)
{
    char summary[300];
    bld_registry_error_summary(rs->body, rs->body_len, summary, sizeof(summary));
    char attempts[48] = "";
    if (rs->attempts > 1)
        snprintf(attempts, sizeof(attempts), " after %u attempts", rs->attempts);
    bool unauthorized = rs->status == 401 || rs->status == 403;
    return hks_fail(err, 0, "registry %s, repository %s: %s: %s: HTTP %ld%s%s%s%s%s%s", c->registry,
                    c->repository, rq->what, rq->method, rs->status, summary[0] ? " (" : "",
                    summary, summary[0] ? ")" : "", attempts,
                    unauthorized && c->auth_note[0] ? "; " : "", unauthorized ? c->auth_note : "");
}

/* ---- bodies ---- */

static void body_rewind(reg_body *b)
{
    b->pos = 0;
    b->corrupt = false;
    b->read_errno = 0;
    if (b->work && EVP_MD_CTX_copy_ex(b->work, b->base) != 1)
        b->read_errno = ENOMEM;
}

/* The digest check at the end of a blob: the bytes that complete it are handed over only when it
 * hashes to its name, so a registry never receives a whole corrupt blob. */
static bool body_digest_matches(reg_body *b)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    bool ok = copy && EVP_MD_CTX_copy_ex(copy, b->work) == 1 &&
              EVP_DigestFinal_ex(copy, md, &md_len) == 1 && md_len == 32;
    EVP_MD_CTX_free(copy);
    if (!ok) {
        b->read_errno = ENOMEM;
        return false;
    }
    char hex[65];
    for (unsigned i = 0; i < md_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(b->actual, sizeof(b->actual), "sha256:%s", hex);
    if (strcmp(b->actual, b->expect) == 0)
        return true;
    b->corrupt = true;
    return false;
}

static size_t body_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    reg_body *b = userdata;
    size_t want = size * nitems;
    if (b->read_errno)
        return CURL_READFUNC_ABORT;
    if (b->len - b->pos < want)
        want = (size_t)(b->len - b->pos);
    if (want == 0)
        return 0;
    if (b->mem) {
        memcpy(buf, b->mem + b->start + b->pos, want);
        b->pos += want;
        return want;
    }
    ssize_t n;
    do {
        n = pread(b->fd, buf, want, (off_t)(b->start + b->pos));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        b->read_errno = n < 0 ? errno : EIO; /* EIO: shorter than its descriptor says */
        return CURL_READFUNC_ABORT;
    }
    if (b->work && EVP_DigestUpdate(b->work, buf, (size_t)n) != 1) {
        b->read_errno = ENOMEM;
        return CURL_READFUNC_ABORT;
    }
    b->pos += (uint64_t)n;
    if (b->pos == b->len && b->final && b->work && !body_digest_matches(b))
        return CURL_READFUNC_ABORT;
    return (size_t)n;
}

/* curl rewinds a body on its own (a connection that died before the answer was read) */
static int body_seek(void *userdata, curl_off_t offset, int origin)
{
    if (origin != SEEK_SET || offset != 0)
        return CURL_SEEKFUNC_CANTSEEK;
    body_rewind(userdata);
    return CURL_SEEKFUNC_OK;
}

static size_t collect_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    reg_response *rs = userdata;
    size_t n = size * nmemb;
    size_t room = REG_BODY_MAX - rs->body_len;
    size_t keep = n < room ? n : room;
    if (keep > 0) {
        if (!rs->body && !(rs->body = malloc(REG_BODY_MAX + 1)))
            return 0;
        memcpy(rs->body + rs->body_len, data, keep);
        rs->body_len += keep;
        rs->body[rs->body_len] = '\0';
    }
    return n; /* the rest is dropped: an error body is summarised, never kept whole */
}

/* ---- one attempt ---- */

static char *header_copy(CURL *h, const char *name)
{
    struct curl_header *hdr = NULL;
    if (curl_easy_header(h, name, 0, CURLH_HEADER, -1, &hdr) != CURLHE_OK || !hdr->value)
        return NULL;
    return strdup(hdr->value);
}

/* Authorization goes only to the registry itself: a Location may point at another host (a
 * storage backend) that must not see the registry's credentials. */
static bool same_origin(const reg_client *c, const char *url)
{
    size_t n = strlen(c->base);
    return strncasecmp(url, c->base, n) == 0 && (url[n] == '/' || url[n] == '\0');
}

static CURLcode perform_once(reg_client *c, const reg_request *rq, reg_response *rs)
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    c->curl_error[0] = '\0';
    struct curl_slist *headers = NULL;
    char line[128];
    reg_body empty = {.fd = -1}; /* a PUT without a body (the end of a chunked upload) */
    cleanup_free char *auth_line = NULL;
    const char *auth =
        rq->token_server ? rq->auth_value : (same_origin(c, rq->url) ? c->authorization : NULL);
    if (auth && asprintf(&auth_line, "Authorization: %s", auth) < 0)
        return CURLE_OUT_OF_MEMORY;
    if (auth_line)
        headers = curl_slist_append(headers, auth_line);
    if (rq->content_type) {
        snprintf(line, sizeof(line), "Content-Type: %s", rq->content_type);
        headers = curl_slist_append(headers, line);
    }
    if (rq->accept) {
        snprintf(line, sizeof(line), "Accept: %s", rq->accept);
        headers = curl_slist_append(headers, line);
    }
    if (rq->content_range) {
        snprintf(line, sizeof(line), "Content-Range: %s", rq->content_range);
        headers = curl_slist_append(headers, line);
    }

    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, c->insecure ? "http,https" : "https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)c->stall_s);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "hksd-registry-client/1");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_error);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, rs);
    if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "POST") == 0) {
        const char *form = rq->form ? rq->form : "";
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(form));
    } else if (strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "PATCH") == 0) {
        reg_body *b = rq->body ? rq->body : &empty;
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, body_read);
        curl_easy_setopt(h, CURLOPT_READDATA, b);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, body_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, b);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)b->len);
        /* libcurl 7.x asks "Expect: 100-continue" before any PUT body and waits for the answer:
         * a round trip per blob and manifest, for nothing when the body is small (the
         * credentials were settled by the first request). Big bodies keep it, so that a
         * refusal does not cost the upload. */
        if (b->len < EXPECT_MIN_BYTES)
            headers = curl_slist_append(headers, "Expect:");
        if (strcmp(rq->method, "PATCH") == 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    if (auth_line)
        OPENSSL_cleanse(auth_line, strlen(auth_line));
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
        rs->location = header_copy(h, "Location");
        rs->digest = header_copy(h, "Docker-Content-Digest");
    }
    return rc;
}

/* errors worth another attempt: the network's and the server's, not ours nor TLS verification */
static bool transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static unsigned retry_after_ms(CURL *h)
{
    struct curl_header *hdr = NULL;
    unsigned long long s = 0;
    if (curl_easy_header(h, "Retry-After", 0, CURLH_HEADER, -1, &hdr) != CURLHE_OK ||
        hks_parse_uint(hdr->value, 0, RETRY_AFTER_CAP_S, &s) < 0)
        return 0; /* an HTTP-date, or absurd: our own backoff applies */
    return (unsigned)s * 1000;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int transport_error(const reg_client *c, const reg_request *rq, CURLcode rc,
                           unsigned attempts, hks_error *err)
{
    const char *kind = "request failed";
    if (rc == CURLE_PEER_FAILED_VERIFICATION)
        kind = "TLS certificate verification failed";
    else if (rc == CURLE_SSL_CACERT_BADFILE)
        kind = "TLS CA file unusable";
    else if (rc == CURLE_SSL_CONNECT_ERROR)
        kind = "TLS handshake failed";
    else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
        kind = "cannot connect";
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        kind = "no answer (timed out)";
    else if (rc == CURLE_UNSUPPORTED_PROTOCOL)
        kind = "protocol refused (plain http needs the registry configured insecure)";
    char after[48] = "";
    if (attempts > 1)
        snprintf(after, sizeof(after), " after %u attempts", attempts);
    return hks_fail(err, 0, "registry %s, repository %s: %s: %s %s: %s%s: %s", c->registry,
                    c->repository, rq->what, rq->method, rq->url, kind, after,
                    c->curl_error[0] ? c->curl_error : curl_easy_strerror(rc));
}

/* ---- authentication ---- */

static int load_credentials(reg_client *c, bld_registry_credentials *cred, hks_error *err)
{
    memset(cred, 0, sizeof(*cred));
    char path[4096];
    const char *file = c->docker_config;
    if (!file) {
        const char *dir = getenv("DOCKER_CONFIG");
        const char *home = getenv("HOME");
        if (dir && *dir)
            snprintf(path, sizeof(path), "%s/config.json", dir);
        else if (home && *home)
            snprintf(path, sizeof(path), "%s/.docker/config.json", home);
        else
            return 0;
        file = path;
    }
    cleanup_fd int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && !c->docker_config)
        return 0; /* no default config: anonymous */
    if (fd < 0)
        return hks_fail(err, errno, "docker config %s", file);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return hks_fail(err, errno, "docker config %s", file);
    if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX)
        return hks_fail(err, 0, "docker config %s: not a regular file of at most %d bytes", file,
                        CONFIG_MAX);
    cleanup_free char *text = malloc((size_t)st.st_size + 1);
    if (!text)
        return hks_fail(err, ENOMEM, "docker config %s", file);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return hks_fail(err, n < 0 ? errno : EIO, "docker config %s", file);
        got += (size_t)n;
    }
    int found = bld_registry_parse_docker_config(text, got, c->registry, cred, err);
    OPENSSL_cleanse(text, got);
    if (found < 0)
        return hks_wrap(err, "%s", file);
    if (found == 0)
        snprintf(c->auth_note, sizeof(c->auth_note), "no credentials for %s in %.300s", c->registry,
                 file);
    return found;
}

static char *basic_value(const bld_registry_credentials *cred)
{
    char plain[sizeof(cred->username) + sizeof(cred->password) + 1];
    int n = snprintf(plain, sizeof(plain), "%s:%s", cred->username, cred->password);
    size_t cap = 6 + 4 * (((size_t)n + 2) / 3) + 1;
    char *out = malloc(cap);
    if (out) {
        snprintf(out, cap, "Basic ");
        EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, n);
    }
    OPENSSL_cleanse(plain, sizeof(plain));
    return out;
}

/* GET (or, with an identity token, POST as OAuth2) the realm of a Bearer challenge for a token
 * granting pull,push on the repository (and pull on the mount source). */
static int fetch_token(reg_client *c, const bld_auth_challenge *ch,
                       const bld_registry_credentials *cred, bool have_cred, hks_error *err)
{
    if (strncasecmp(ch->realm, "https://", 8) != 0 &&
        !(c->insecure && strncasecmp(ch->realm, "http://", 7) == 0))
        return hks_fail(err, 0, "registry %s, repository %s: token realm '%s' refused: %s",
                        c->registry, c->repository, ch->realm,
                        c->insecure ? "not http(s)" : "only https unless the registry is insecure");
    char scope[600], mount_scope[600] = "";
    snprintf(scope, sizeof(scope), "repository:%s:pull,push", c->repository);
    if (c->mount_from && strcmp(c->mount_from, c->repository) != 0)
        snprintf(mount_scope, sizeof(mount_scope), "&scope=repository:%s:pull", c->mount_from);
    bool oauth = have_cred && cred->identity_token[0];
    /* repository names and scopes need no escaping (their grammar has no reserved byte) */
    char *service = curl_easy_escape(c->curl, ch->service, 0);
    char *refresh = oauth ? curl_easy_escape(c->curl, cred->identity_token, 0) : NULL;
    char *url = NULL, *form = NULL, *basic = NULL;
    int n = -1;
    if (service && oauth && refresh) {
        url = strdup(ch->realm);
        n = asprintf(&form,
                     "grant_type=refresh_token&client_id=hksd&service=%s&scope=%s%s&"
                     "refresh_token=%s",
                     service, scope, mount_scope, refresh);
    } else if (service && !oauth) {
        n = asprintf(&url, "%s%cservice=%s&scope=%s%s", ch->realm,
                     strchr(ch->realm, '?') ? '&' : '?', service, scope, mount_scope);
        if (n >= 0 && have_cred && cred->username[0] && !(basic = basic_value(cred)))
            n = -1;
    }
    curl_free(service);
    if (refresh) {
        OPENSSL_cleanse(refresh, strlen(refresh));
        curl_free(refresh);
    }
    int rc = 0;
    char *token = NULL;
    if (n < 0 || !url) {
        rc = -1;
        hks_fail(err, ENOMEM, "token request");
    } else {
        reg_request rq = {.method = oauth ? "POST" : "GET",
                          .url = url,
                          .what = "getting a token",
                          .form = form,
                          .auth_value = basic,
                          .token_server = true};
        reg_response rs = {0};
        if (reg_do(c, &rq, &rs, err) < 0) {
            rc = -1;
        } else if (rs.status < 200 || rs.status > 299) {
            rc = -1;
            reg_status_error(c, &rq, &rs, err);
        } else if (!(token = bld_registry_parse_token(rs.body ? rs.body : "", rs.body_len, err))) {
            rc = -1;
            hks_wrap(err, "registry %s, repository %s: realm %s", c->registry, c->repository,
                     ch->realm);
        }
        reg_response_free(&rs);
    }
    if (basic)
        OPENSSL_cleanse(basic, strlen(basic));
    if (form)
        OPENSSL_cleanse(form, strlen(form));
    free(url);
    free(form);
    free(basic);
    if (!token)
        return -1;
    free(c->authorization);
    if (asprintf(&c->authorization, "Bearer %s", token) < 0) {
        c->authorization = NULL;
        rc = hks_fail(err, ENOMEM, "token");
    }
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    return rc;
}

/* Answer the challenge(s) of a 401: sets c->authorization. */
static int authenticate(reg_client *c, hks_error *err)
{
    bld_auth_challenge ch = {0}, candidate;
    hks_error perr = {0};
    struct curl_header *hdr = NULL;
    /* a registry may offer several challenges: Bearer is preferred to Basic */
    for (size_t i = 0;
         curl_easy_header(c->curl, "WWW-Authenticate", i, CURLH_HEADER, -1, &hdr) == CURLHE_OK;
         i++) {
        if (bld_registry_parse_challenge(hdr->value, strlen(hdr->value), &candidate, &perr) == 0 &&
            (!ch.scheme[0] || strcmp(candidate.scheme, "bearer") == 0))
            ch = candidate;
        if (hdr->amount <= i + 1)
            break;
    }
    if (!ch.scheme[0])
        return hks_fail(err, 0,
                        "registry %s, repository %s: HTTP 401 without a usable challenge%s%s",
                        c->registry, c->repository, perr.msg[0] ? ": " : "", perr.msg);
    bld_registry_credentials cred;
    int have = load_credentials(c, &cred, err);
    if (have < 0)
        return -1;
    int rc = 0;
    if (strcmp(ch.scheme, "basic") == 0) {
        if (!have || !cred.username[0]) {
            rc = hks_fail(err, 0,
                          "registry %s, repository %s: the registry asks for Basic credentials: "
                          "%s",
                          c->registry, c->repository,
                          c->auth_note[0] ? c->auth_note : "none usable in the docker config");
        } else {
            free(c->authorization);
            c->authorization = basic_value(&cred);
            if (!c->authorization)
                rc = hks_fail(err, ENOMEM, "credentials");
        }
    } else {
        rc = fetch_token(c, &ch, &cred, have > 0, err);
    }
    OPENSSL_cleanse(&cred, sizeof(cred));
    return rc;
}

/* ---- a request, with retries and one answered challenge ---- */

int reg_do(reg_client *c, const reg_request *rq, reg_response *rs, hks_error *err)
{
    memset(rs, 0, sizeof(*rs));
    bool answered = false;
    unsigned attempt = 0;
    for (;;) {
        reg_response_free(rs);
        if (rq->body)
            body_rewind(rq->body);
        attempt++;
        CURLcode rc = perform_once(c, rq, rs);
        rs->attempts = attempt;
        if (rq->body && (rq->body->corrupt || rq->body->read_errno))
            return -1; /* the caller names the blob */
        bool retry = false;
        unsigned wait = c->backoff_ms << (attempt - 1 < 6 ? attempt - 1 : 6);
        if (rc != CURLE_OK) {
            if (!transient(rc) || attempt > c->retries)
                return transport_error(c, rq, rc, attempt, err);
            retry = true;
        } else if (rs->status == 401 && !rq->token_server && !answered) {
            if (authenticate(c, err) < 0)
                return -1;
            answered = true;
            attempt = 0;
            continue;
        } else if ((rs->status >= 500 || rs->status == 429) && attempt <= c->retries) {
            unsigned server = retry_after_ms(c->curl);
            wait = server > wait ? server : wait;
            retry = true;
        }
        if (!retry)
            return 0;
        sleep_ms(wait < BACKOFF_CAP_MS ? wait : BACKOFF_CAP_MS);
    }
}
