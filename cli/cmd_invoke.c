/* hks-func invoke. */
#include "cli/commands.h"
#include "cli/target.h"

#include <string.h>

#define MAX_INVOKE_BODY (16 * 1024 * 1024)

static const char invoke_help[] =
    "Usage: hks-func invoke [NAME|ID] [--data TEXT | --file FILE] [--method M]\n"
    "                       [--header 'K: V']... [--path /P?QUERY] [--content-type TYPE]\n"
    "\n"
    "Sends one HTTP request to a function (invoke-function) and prints the body of its answer\n"
    "on stdout, as is. Without NAME or ID, the function deployed from the current directory\n"
    "(.hks/function.json), else the one named by its func.yaml.\n"
    "\n"
    "The method is GET without a body and POST with one. The body's Content-Type, unless a\n"
    "--header or --content-type sets it: application/json when it parses as JSON, text/plain\n"
    "when it is UTF-8 text, else application/octet-stream.\n"
    "\n"
    "Exit status: 0 when the function answered 1xx-3xx; 1 when it answered 4xx or 5xx (the body\n"
    "is still printed) or when hksd answered an error (404, 429, 502, 503, 504, ...).\n"
    "\n"
    "Options:\n"
    "  -d, --data TEXT       the request body\n"
    "  -f, --file FILE       the request body from FILE (- for stdin)\n"
    "  -X, --method M        GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS\n"
    "  -H, --header 'K: V'   a request header (repeatable)\n"
    "      --content-type T  the body's Content-Type\n"
    "  -p, --path P          the path (and ?query) the function sees (default /)\n"
    "  -o, --output FMT      table (default: the body) or json (status, headers, body,\n"
    "                        body_encoding, duration_ms, cold_start)\n"
    "  -h, --help            this help\n"
    "\n"
    "Examples:\n"
    "  hks-func invoke\n"
    "  hks-func invoke my-function --data '{\"name\": \"agent\"}'\n"
    "  hks-func invoke my-function --path '/greet?name=agent' -o json\n"
    "  hks-func invoke fn-3f9a0c1d2e4b5a6978c1 -X PUT -H 'x-mode: fast' --file body.bin\n";

typedef struct invoke_opts {
    const char *target, *data, *file, *method, *path, *content_type;
    json_t *headers;
    cli_output out;
} invoke_opts;

/* 0, CLI_EXIT_USAGE after a usage error, -1 after --help. */
static int parse_args(int argc, char **argv, invoke_opts *o)
{
    enum { O_CONTENT_TYPE = 256 };
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"file", required_argument, NULL, 'f'},
                                         {"method", required_argument, NULL, 'X'},
                                         {"header", required_argument, NULL, 'H'},
                                         {"path", required_argument, NULL, 'p'},
                                         {"content-type", required_argument, NULL, O_CONTENT_TYPE},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    for (int c; (c = cli_getopt("invoke", argc, argv, ":d:f:X:H:p:o:h", opts)) != -1;) {
        switch (c) {
        case 'd':
            o->data = optarg;
            break;
        case 'f':
            o->file = optarg;
            break;
        case 'X':
            o->method = optarg;
            break;
        case 'H':
            if (cli_opt_header("invoke", optarg, o->headers))
                return CLI_EXIT_USAGE;
            break;
        case 'p':
            o->path = optarg;
            break;
        case O_CONTENT_TYPE:
            o->content_type = optarg;
            break;
        case 'o':
            if (cli_set_output("invoke", optarg, &o->out))
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            cli_print_help(invoke_help);
            return -1;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        o->target = argv[optind++];
    if (optind < argc)
        return cli_usage("invoke", "unexpected argument '%s'", argv[optind]);
    if (o->data && o->file)
        return cli_usage("invoke", "give --data or --file, not both");
    if (o->out == CLI_OUT_NAME)
        return cli_usage("invoke", "-o name does not apply to invoke (json or table)");
    static const char *const methods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                          "PATCH", "DELETE", "OPTIONS"};
    if (o->method) {
        bool known = false;
        for (size_t i = 0; i < HKS_ARRAY_LEN(methods); i++)
            known = known || strcasecmp(o->method, methods[i]) == 0;
        if (!known)
            return cli_usage("invoke",
                             "unknown method '%s' (GET, HEAD, POST, PUT, PATCH, "
                             "DELETE, OPTIONS)",
                             o->method);
    }
    if (o->path && (o->path[0] != '/' || strpbrk(o->path, " \t\r\n#")))
        return cli_usage("invoke", "--path '%s' must start with / and hold no blanks or #",
                         o->path);
    return 0;
}

static int build_request(const invoke_opts *o, const char *id, json_t *req, cli_error *err)
{
    cleanup_buf cli_buf body = {0};
    bool has_body = o->data || o->file;
    if (o->data && cli_buf_append(&body, o->data, strlen(o->data)) < 0)
        return cli_fail(err, ENOMEM, "--data");
    if (o->file && cli_read_file(o->file, MAX_INVOKE_BODY, &body, err) < 0)
        return cli_wrap(err, "--file");
    char method[16];
    snprintf(method, sizeof(method), "%s", o->method ? o->method : has_body ? "POST" : "GET");
    for (char *m = method; *m; m++)
        if (*m >= 'a' && *m <= 'z')
            *m = (char)(*m - 'a' + 'A');
    json_object_set_new(req, "id", json_string(id));
    json_object_set_new(req, "method", json_string(method));
    const char *path = o->path ? o->path : "/";
    const char *q = strchr(path, '?');
    json_object_set_new(req, "path",
                        q ? json_stringn(path, (size_t)(q - path)) : json_string(path));
    if (q && q[1])
        json_object_set_new(req, "query", json_string(q + 1));
    json_t *headers = json_deep_copy(o->headers);
    if (!headers)
        return cli_fail(err, ENOMEM, "headers");
    json_object_set_new(req, "headers", headers);
    if (has_body) {
        bool text = cli_utf8_valid(body.data, body.len) && !memchr(body.data, '\0', body.len);
        if (o->content_type) {
            json_object_set_new(headers, "content-type", json_string(o->content_type));
        } else if (!json_object_get(headers, "content-type")) {
            json_t *parsed = text ? json_loadb(body.data, body.len, JSON_DECODE_ANY, NULL) : NULL;
            json_object_set_new(headers, "content-type",
                                json_string(parsed ? "application/json"
                                            : text ? "text/plain; charset=utf-8"
                                                   : "application/octet-stream"));
            json_decref(parsed);
        }
        if (text) {
            json_object_set_new(req, "body", json_stringn(body.data, body.len));
        } else {
            cleanup_free char *b64 = cli_base64_encode(body.data, body.len);
            if (!b64)
                return cli_fail(err, ENOMEM, "body");
            json_object_set_new(req, "body", json_string(b64));
            json_object_set_new(req, "body_encoding", json_string("base64"));
        }
    }
    return 0;
}

static int print_body(const json_t *result, cli_error *err)
{
    const json_t *body = json_object_get(result, "body");
    const char *enc = json_string_value(json_object_get(result, "body_encoding"));
    if (!json_is_string(body))
        return 0;
    cleanup_buf cli_buf bytes = {0};
    if (enc && strcmp(enc, "base64") == 0) {
        if (cli_base64_decode(json_string_value(body), json_string_length(body), false, &bytes) < 0)
            return cli_fail(err, 0, "hksd's answer has a body that is not base64");
    } else if (cli_buf_append(&bytes, json_string_value(body), json_string_length(body)) < 0) {
        return cli_fail(err, ENOMEM, "body");
    }
    if (bytes.len && fwrite(bytes.data, 1, bytes.len, stdout) != bytes.len)
        return cli_fail(err, errno, "write stdout");
    if (cli_tty.tty_out && bytes.len && bytes.data[bytes.len - 1] != '\n')
        fputc('\n', stdout);
    return 0;
}

int cmd_invoke(int argc, char **argv, const cli_global *g)
{
    invoke_opts o = {.out = g->output, .headers = json_object()};
    if (!o.headers)
        return CLI_EXIT_FAILED;
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        json_decref(o.headers);
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    cli_settings s;
    cli_http *h = NULL;
    if ((rc = cli_connect(&s, &h))) {
        json_decref(o.headers);
        return rc;
    }
    cli_error err = {0};
    cli_target t;
    json_t *req = json_object();
    json_t *result = NULL;
    long status = 0;
    if (cli_target_resolve(h, o.target, ".", &t, &err) < 0 ||
        build_request(&o, t.id, req, &err) < 0) {
        rc = cli_report(&err);
    } else if (cli_http_json(h, "POST", "/internal/v1/operations/invoke-function", req, 0, &result,
                             &status, &err) < 0) {
        cli_wrap(&err, "invoke %s", t.name[0] ? t.name : t.id);
        if (status == 404 && t.local)
            cli_hint(&err,
                     "%s (%s), deployed from this directory, is gone (deleted or past its "
                     "TTL): run hks-func deploy",
                     t.name, t.id);
        else if (status == 404)
            cli_hint(&err, "hks-func list shows the project's functions");
        else if (status == 502 || status == 503 || status == 504)
            cli_hint(&err, "hks-func logs %s shows what the function wrote",
                     t.name[0] ? t.name : t.id);
        rc = cli_report(&err);
    } else {
        long fn_status = (long)json_integer_value(json_object_get(result, "status"));
        if (o.out == CLI_OUT_JSON)
            cli_print_json(result);
        else if (print_body(result, &err) < 0)
            rc = cli_report(&err);
        fflush(stdout);
        if (rc == 0 && fn_status >= 400) {
            cli_fail(&err, 0, "%s answered HTTP %ld", t.name[0] ? t.name : t.id, fn_status);
            cli_hint(&err, "hks-func logs %s shows what the function wrote",
                     t.name[0] ? t.name : t.id);
            rc = cli_report(&err);
        }
    }
    json_decref(req);
    json_decref(result);
    json_decref(o.headers);
    cli_http_close(h);
    cli_settings_free(&s);
    return rc;
}
