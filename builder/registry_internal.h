/* The registry client's insides (registry.c, registry_http.c, registry_parse.c), private to the
 * builder. The parsers are declared here rather than in builder.h so that the unit tests and the
 * fuzz target reach them without making them part of the builder's API. */
#ifndef HKS_BUILDER_REGISTRY_INTERNAL_H
#define HKS_BUILDER_REGISTRY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "builder.h"

/* ---- parsers (registry_parse.c): everything a registry, a token server or a docker config.json
 * hands over; each bounds its input and never trusts a length it did not count ---- */

/* A Basic or Bearer challenge from a WWW-Authenticate value. */
typedef struct bld_auth_challenge {
    char scheme[8]; /* "basic" or "bearer" */
    char realm[2048];
    char service[256];
    char scope[1024];
} bld_auth_challenge;

/* The first Basic or Bearer challenge of a WWW-Authenticate value (RFC 7235: a scheme, then
 * comma-separated name=value parameters, values quoted with backslash escapes or bare; challenges
 * of other schemes are skipped). -1 when there is none, when a value is longer than its field or
 * holds a control character, or when a Bearer challenge has no realm. */
int bld_registry_parse_challenge(const char *value, size_t len, bld_auth_challenge *out,
                                 hks_error *err);

typedef struct bld_registry_credentials {
    char username[256];
    char password[1024];
    char identity_token[4096]; /* an OAuth2 refresh token ("identitytoken") */
} bld_registry_credentials;

/* The credentials a docker config.json (len bytes) holds for registry (host[:port]): the "auths"
 * key equal to it once a scheme and a path are removed ("https://host:5000/v1/" matches
 * "host:5000"; docker.io also matches index.docker.io and registry-1.docker.io), with "auth"
 * (base64 of user:password), or "username" and "password", and/or "identitytoken". Returns 1 with
 * *out filled, 0 when the file has none for registry, -1 when it is malformed. */
int bld_registry_parse_docker_config(const char *json, size_t len, const char *registry,
                                     bld_registry_credentials *out, hks_error *err);

/* The token of a token server's answer: "token", else "access_token". malloc'd; NULL with err
 * when there is none or when it holds a byte that cannot go into an HTTP header. */
char *bld_registry_parse_token(const char *json, size_t len, hks_error *err);

/* location (absolute, scheme-relative, absolute-path or relative, as a Location header may be)
 * resolved against base_url, without its fragment. malloc'd; NULL with err for an empty or
 * malformed location, a scheme other than https (or http when allow_http), control bytes. */
char *bld_registry_resolve_location(const char *base_url, const char *location, bool allow_http,
                                    hks_error *err);

/* A one-line summary of a registry's error body into out (size > 0): "CODE: message" of the first
 * entry of {"errors":[...]}, else the body's first printable line; "" when there is nothing.
 * Control bytes are replaced, so the summary can end an error message. */
void bld_registry_error_summary(const char *body, size_t len, char *out, size_t size);

/* true when text is a repository name of the distribution spec (lower-case components joined by
 * '/', separators '.', '_', '__' or dashes) of at most 255 bytes. */
bool bld_registry_valid_repository(const char *text);

/* true when text is a tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
bool bld_registry_valid_tag(const char *text);

/* true when text is "sha256:" followed by 64 lower-case hex digits. */
bool bld_registry_valid_digest(const char *text);

/* ---- the HTTP side (registry_http.c) ---- */

/* A request body: memory, or a range of a blob file hashed while it is read. A blob's sha256 is
 * carried across requests (the PATCHes of a chunked upload) in base; work is base plus what the
 * current attempt has read, so that an attempt retried from its start hashes its range again
 * without counting it twice. */
typedef struct reg_body {
    const unsigned char *mem; /* memory body, or NULL */
    int fd;                   /* blob file, when mem is NULL */
    uint64_t start, len, pos; /* the range sent, and how much of it was handed to curl */
    EVP_MD_CTX *base, *work;  /* NULL: not hashed */
    const char *expect;       /* "sha256:<hex>" the blob must hash to */
    bool final;               /* the range ends the blob: check the digest when it is read */
    bool corrupt;             /* the blob hashed to something else: the upload was aborted */
    char actual[72];          /* what it hashed to, when corrupt */
    int read_errno;           /* a read error, or EIO for a file shorter than its descriptor */
} reg_body;

typedef struct reg_request {
    const char *method; /* GET, HEAD, POST, PUT, PATCH */
    const char *url;
    const char *what;         /* the step, for errors: "uploading blob sha256:..." */
    const char *content_type; /* NULL: none set */
    const char *accept;
    const char *content_range;
    reg_body *body;         /* PUT/PATCH body, NULL: empty */
    const char *form;       /* POST body (application/x-www-form-urlencoded), NULL: empty */
    const char *auth_value; /* token server requests: this Authorization value, no challenge */
    bool token_server;      /* a request to a token realm: never answered with registry auth */
} reg_request;

typedef struct reg_response {
    long status;
    unsigned attempts;
    char *location; /* Location, raw */
    char *digest;   /* Docker-Content-Digest */
    char *body;     /* the first REG_BODY_MAX bytes, NUL-terminated */
    size_t body_len;
} reg_response;

#define REG_BODY_MAX (64 * 1024)

typedef struct reg_client {
    char registry[256];   /* host[:port], as named in errors */
    char repository[256]; /* the destination */
    char base[300];       /* scheme://host[:port] requests go to */
    const char *mount_from;
    const char *ca_file;
    const char *docker_config;
    bool insecure;
    unsigned retries;
    unsigned stall_s;     /* seconds without a byte before a request is dropped */
    unsigned backoff_ms;  /* the first retry's wait; doubles with every retry */
    CURL *curl;           /* one handle for the whole push: its connections are kept alive */
    char *authorization;  /* the Authorization value requests to base carry, or NULL */
    char auth_note[1024]; /* why a 401 may have happened ("no credentials for ..."), or "" */
    char curl_error[CURL_ERROR_SIZE];
} reg_client;

int reg_client_init(reg_client *c, const bld_registry_options *opt, const bld_image_ref *dest,
                    hks_error *err);
void reg_client_free(reg_client *c);

/* Send rq, retrying connection errors, 5xx and 429 (rewinding the body) with exponential backoff
 * or the server's Retry-After, and answering one 401 challenge (then sending rq again). Returns 0
 * with *rs holding the final response whatever its status (the caller judges it), -1 with err
 * when no response came, a challenge could not be answered or the body turned out corrupt. */
int reg_do(reg_client *c, const reg_request *rq, reg_response *rs, hks_error *err);
void reg_response_free(reg_response *rs);

/* err = "registry R, repository P: <what>: <METHOD>: HTTP <status> (<summary>)[ after N attempts]
 * [; <auth_note>]". Returns -1. */
int reg_status_error(const reg_client *c, const reg_request *rq, const reg_response *rs,
                     hks_error *err);

#endif
