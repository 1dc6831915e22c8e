/* The execute request's body: every field typed, bounded and checked against the limits policy,
 * before anything touches a sandbox. A pure function of the JSON, so it is fuzzed on its own. */
#include "internal.h"

#include <ctype.h>
#include <string.h>

#define MAX_ARG_BYTES (64 * 1024)

/* ---- execute ---- */

void api_execute_input_release(execute_input *in)
{
    for (size_t i = 0; i < in->n_files; i++)
        free(in->decoded[i]);
    for (size_t i = 0; i < MAX_ENV && in->env_storage[i]; i++)
        free(in->env_storage[i]);
}

char *api_base64_decode(const char *text, size_t len, size_t *out_len)
{
    if (len % 4 != 0)
        return NULL;
    char *out = malloc(len / 4 * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = text[i + k];
            if (c == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = hks_base64_value((unsigned char)c, false)) < 0) {
                free(out);
                return NULL;
            }
        }
        unsigned triple =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        out[o++] = (char)(triple >> 16);
        if (pad < 2)
            out[o++] = (char)(triple >> 8 & 0xff);
        if (pad < 1)
            out[o++] = (char)(triple & 0xff);
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

char *api_base64_encode(const void *data, size_t len)
{
    static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < len ? p[i + 2] : 0);
        out[o++] = table[(v >> 18) & 63];
        out[o++] = table[(v >> 12) & 63];
        out[o++] = i + 1 < len ? table[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? table[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* Fills the response with a 422 naming field and returns -1. */
const char *api_unknown_field(json_t *in, const char *const *known, size_t n_known)
{
    const char *key;
    json_t *value;
    json_object_foreach(in, key, value)
    {
        bool ok = false;
        for (size_t i = 0; i < n_known && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok)
            return key;
    }
    return NULL;
}

int api_invalid(decode_error *e, const char *field, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    /* an unknown field may have an empty name: the answer still names something */
    snprintf(e->field, sizeof(e->field), "%s", field[0] ? field : "(empty name)");
    snprintf(e->message, sizeof(e->message), "%s", message);
    return -1;
}

bool api_safe_env_name(const char *name)
{
    if (!name[0] || strlen(name) > 128 || !(isalpha((unsigned char)name[0]) || name[0] == '_'))
        return false;
    for (const char *p = name; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    }
    return true;
}

int api_decode_files(decode_error *e, json_t *in, const char *code_name,
                     const hksd_policy_limits *policy, execute_input *out)
{
    json_t *code = json_object_get(in, "code");
    json_t *files = json_object_get(in, "files");
    if ((code != NULL) == (files != NULL))
        return api_invalid(e, "code", "give either \"code\" (one string) or \"files\"");
    if (code) {
        if (!json_is_string(code) || json_string_length(code) == 0)
            return api_invalid(e, "code", "code must be a non-empty string");
        if (json_string_length(code) > policy->max_file_bytes)
            return api_invalid(e, "code", "code is larger than %zu bytes", policy->max_file_bytes);
        out->files[0] = (rt_file){
            .name = code_name, .data = json_string_value(code), .len = json_string_length(code)};
        out->n_files = 1;
        return 0;
    }
    if (!json_is_array(files) || json_array_size(files) == 0)
        return api_invalid(e, "files", "files must be a non-empty array");
    if (json_array_size(files) > policy->max_files || json_array_size(files) > RT_MAX_FILES)
        return api_invalid(e, "files", "at most %zu files", policy->max_files);
    size_t total = 0, i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        char field[48];
        snprintf(field, sizeof(field), "files[%zu]", i);
        const char *name = json_string_value(json_object_get(f, "name"));
        json_t *content = json_object_get(f, "content");
        const char *encoding = json_string_value(json_object_get(f, "encoding"));
        if (!json_is_object(f) || !name || !json_is_string(content))
            return api_invalid(e, field, "each file needs a \"name\" and a \"content\" string");
        if (json_object_size(f) > 3 || (json_object_size(f) == 3 && !encoding))
            return api_invalid(e, field, "a file has only name, content and encoding");
        if (!rt_safe_name(name))
            return api_invalid(e, field, "file name '%s' must be a relative path without '..'",
                               name);
        const char *data = json_string_value(content);
        size_t len = json_string_length(content);
        if (encoding && strcmp(encoding, "base64") == 0) {
            out->decoded[i] = api_base64_decode(data, len, &len);
            if (!out->decoded[i])
                return api_invalid(e, field, "content is not valid base64");
            data = out->decoded[i];
        } else if (encoding && strcmp(encoding, "utf8") != 0) {
            return api_invalid(e, field, "encoding must be utf8 or base64");
        }
        if (len > policy->max_file_bytes)
            return api_invalid(e, field, "file %s is larger than %zu bytes", name,
                               policy->max_file_bytes);
        total += len;
        out->files[i] = (rt_file){.name = name, .data = data, .len = len};
        out->n_files = i + 1;
    }
    if (total > policy->max_total_bytes)
        return api_invalid(e, "files", "files total %zu bytes, more than %zu", total,
                           policy->max_total_bytes);
    return 0;
}

int api_decode_execute(json_t *in, const hksd_policy_limits *policy_in, const rt_runtime **rt,
                       execute_input *out, decode_error *e)
{
    const hksd_policy_limits policy = *policy_in;
    static const char *const known[] = {"runtime", "code", "files", "entry",
                                        "stdin",   "args", "env",   "limits"};
    const char *unknown = api_unknown_field(in, known, HKS_ARRAY_LEN(known));
    if (unknown)
        return api_invalid(e, unknown, "unknown field '%s'", unknown);
    const char *key;
    json_t *value;
    const char *runtime = json_string_value(json_object_get(in, "runtime"));
    if (!runtime)
        return api_invalid(e, "runtime", "runtime is required (python or node)");
    *rt = rt_runtime_find(runtime);
    if (!*rt)
        return api_invalid(e, "runtime", "unknown runtime '%s' (python or node)", runtime);
    if (api_decode_files(e, in, strcmp((*rt)->name, "node") == 0 ? "main.js" : "main.py", &policy,
                         out) < 0)
        return -1;
    json_t *entry = json_object_get(in, "entry");
    if (entry && !json_is_string(entry))
        return api_invalid(e, "entry", "entry must be a string");
    out->entry = entry ? json_string_value(entry) : out->files[0].name;
    bool found = false;
    for (size_t i = 0; i < out->n_files; i++)
        found = found || strcmp(out->files[i].name, out->entry) == 0;
    if (!found)
        return api_invalid(e, "entry", "entry '%s' is not one of the files", out->entry);

    json_t *stdin_json = json_object_get(in, "stdin");
    if (stdin_json && !json_is_string(stdin_json))
        return api_invalid(e, "stdin", "stdin must be a string");
    if (stdin_json && json_string_length(stdin_json) > policy.max_stdin_bytes)
        return api_invalid(e, "stdin", "stdin is larger than %zu bytes", policy.max_stdin_bytes);
    json_t *args = json_object_get(in, "args");
    if (args && (!json_is_array(args) || json_array_size(args) > MAX_ARGS))
        return api_invalid(e, "args", "args must be an array of at most %d strings", MAX_ARGS);
    size_t i;
    json_t *a;
    size_t arg_bytes = 0;
    json_array_foreach(args, i, a)
    {
        if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a))
            return api_invalid(e, "args", "args[%zu] must be a string without NUL bytes", i);
        arg_bytes += json_string_length(a);
        out->argv[i] = (char *)json_string_value(a);
    }
    if (arg_bytes > MAX_ARG_BYTES)
        return api_invalid(e, "args", "args total more than %d bytes", MAX_ARG_BYTES);
    json_t *env = json_object_get(in, "env");
    if (env && (!json_is_object(env) || json_object_size(env) > MAX_ENV))
        return api_invalid(e, "env", "env must be an object of at most %d strings", MAX_ENV);
    size_t n_env = 0;
    json_object_foreach(env, key, value)
    {
        if (!api_safe_env_name(key))
            return api_invalid(e, "env", "'%s' is not a variable name", key);
        if (!json_is_string(value) || strlen(json_string_value(value)) != json_string_length(value))
            return api_invalid(e, "env", "env.%s must be a string without NUL bytes", key);
        char *pair = NULL;
        if (asprintf(&pair, "%s=%s", key, json_string_value(value)) < 0)
            return api_invalid(e, "env", "out of memory");
        out->env_storage[n_env] = pair;
        out->env[n_env++] = pair;
    }
    hks_error err = {0};
    if (hksd_policy_limits_resolve(&policy, json_object_get(in, "limits"), &out->limits, &err) < 0)
        return api_invalid(e, "limits", "%s", err.msg);
    return 0;
}
