/* YAML to a JSON tree over libyaml's event parser: kubeconfig files (kubectl writes YAML) and the
 * policies of policies/kubernetes/. Aliases are refused rather than expanded, so a document cannot
 * grow past its own size. */
#include "kube_internal.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <yaml.h>

typedef struct yaml_reader {
    yaml_parser_t parser;
    bool started;
} yaml_reader;

static void yaml_reader_done(yaml_reader *r)
{
    if (r->started)
        yaml_parser_delete(&r->parser);
}

static int yaml_fail_at(hks_error *err, const yaml_mark_t *mark, const char *why)
{
    return kube_fail(err, EINVAL, "line %zu: %s", mark->line + 1, why);
}

static int next_event(yaml_reader *r, yaml_event_t *ev, hks_error *err)
{
    if (!yaml_parser_parse(&r->parser, ev)) {
        const char *problem = r->parser.problem ? r->parser.problem : "malformed YAML";
        return kube_fail(err, EINVAL, "line %zu: %s", r->parser.problem_mark.line + 1, problem);
    }
    return 0;
}

/* A plain scalar typed as the YAML 1.2 core schema does for what kubeconfigs and policies use. */
static json_t *plain_scalar(const char *s, size_t len)
{
    if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
        strcmp(s, "NULL") == 0)
        return json_null();
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
        return json_true();
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
        return json_false();
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    bool digits = i < len && len - i <= 18;
    for (size_t k = i; digits && k < len; k++)
        digits = s[k] >= '0' && s[k] <= '9';
    if (digits)
        return json_integer(strtoll(s, NULL, 10));
    return json_stringn(s, len);
}

static json_t *read_node(yaml_reader *r, yaml_event_t *ev, unsigned depth, hks_error *err);

static json_t *read_mapping(yaml_reader *r, const yaml_mark_t *start, unsigned depth,
                            hks_error *err)
{
    json_t *obj = json_object();
    if (!obj) {
        hks_fail(err, ENOMEM, "line %zu: mapping", start->line + 1);
        return NULL;
    }
    for (;;) {
        yaml_event_t key;
        if (next_event(r, &key, err) < 0)
            goto fail;
        if (key.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&key);
            return obj;
        }
        if (key.type != YAML_SCALAR_EVENT) {
            yaml_fail_at(err, &key.start_mark,
                         key.type == YAML_ALIAS_EVENT ? "aliases are not supported"
                                                      : "a mapping key must be a scalar");
            yaml_event_delete(&key);
            goto fail;
        }
        char *name = strndup((const char *)key.data.scalar.value, key.data.scalar.length);
        yaml_mark_t key_mark = key.start_mark;
        bool has_nul = strlen(name ? name : "") != key.data.scalar.length;
        yaml_event_delete(&key);
        if (!name || has_nul) {
            free(name);
            if (has_nul)
                yaml_fail_at(err, &key_mark, "a mapping key holds a NUL byte");
            else
                hks_fail(err, ENOMEM, "line %zu: key", key_mark.line + 1);
            goto fail;
        }
        if (json_object_get(obj, name)) {
            free(name);
            yaml_fail_at(err, &key_mark, "duplicate mapping key");
            goto fail;
        }
        yaml_event_t value;
        if (next_event(r, &value, err) < 0) {
            free(name);
            goto fail;
        }
        json_t *child = read_node(r, &value, depth + 1, err);
        int rc = child ? json_object_set_new(obj, name, child) : -1;
        free(name);
        if (rc < 0) {
            if (child)
                hks_fail(err, ENOMEM, "line %zu: mapping value", key_mark.line + 1);
            goto fail;
        }
    }
fail:
    json_decref(obj);
    return NULL;
}

static json_t *read_sequence(yaml_reader *r, const yaml_mark_t *start, unsigned depth,
                             hks_error *err)
{
    json_t *arr = json_array();
    if (!arr) {
        hks_fail(err, ENOMEM, "line %zu: sequence", start->line + 1);
        return NULL;
    }
    for (;;) {
        yaml_event_t item;
        if (next_event(r, &item, err) < 0)
            goto fail;
        if (item.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&item);
            return arr;
        }
        json_t *child = read_node(r, &item, depth + 1, err);
        if (!child)
            goto fail;
        if (json_array_append_new(arr, child) < 0) {
            hks_fail(err, ENOMEM, "line %zu: sequence item", start->line + 1);
            goto fail;
        }
    }
fail:
    json_decref(arr);
    return NULL;
}

/* The node that starts with ev (consumed). */
static json_t *read_node(yaml_reader *r, yaml_event_t *ev, unsigned depth, hks_error *err)
{
    yaml_mark_t mark = ev->start_mark;
    json_t *out = NULL;
    if (depth > KUBE_YAML_DEPTH) {
        yaml_fail_at(err, &mark, "nested too deeply");
        yaml_event_delete(ev);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *s = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag;
        out = plain ? plain_scalar(s, len) : json_stringn(s, len);
        if (!out)
            yaml_fail_at(err, &mark, "a scalar is not valid UTF-8");
        yaml_event_delete(ev);
        return out;
    }
    case YAML_SEQUENCE_START_EVENT:
        yaml_event_delete(ev);
        return read_sequence(r, &mark, depth, err);
    case YAML_MAPPING_START_EVENT:
        yaml_event_delete(ev);
        return read_mapping(r, &mark, depth, err);
    case YAML_ALIAS_EVENT:
        yaml_fail_at(err, &mark, "aliases are not supported");
        break;
    default:
        yaml_fail_at(err, &mark, "unexpected YAML event");
        break;
    }
    yaml_event_delete(ev);
    return NULL;
}

static int expect_event(yaml_reader *r, yaml_event_type_t type, const char *why, hks_error *err)
{
    yaml_event_t ev;
    if (next_event(r, &ev, err) < 0)
        return -1;
    bool ok = ev.type == type;
    if (!ok)
        yaml_fail_at(err, &ev.start_mark, why);
    yaml_event_delete(&ev);
    return ok ? 0 : -1;
}

json_t *kube_yaml_parse(const char *text, size_t len, hks_error *err)
{
    if (len > KUBE_DOC_MAX) {
        kube_fail(err, EFBIG, "document of %zu bytes (at most %u)", len, KUBE_DOC_MAX);
        return NULL;
    }
    __attribute__((cleanup(yaml_reader_done))) yaml_reader r = {0};
    if (!yaml_parser_initialize(&r.parser)) {
        hks_fail(err, ENOMEM, "libyaml: yaml_parser_initialize");
        return NULL;
    }
    r.started = true;
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&r.parser, YAML_UTF8_ENCODING);
    if (expect_event(&r, YAML_STREAM_START_EVENT, "not a YAML stream", err) < 0)
        return NULL;
    yaml_event_t ev;
    if (next_event(&r, &ev, err) < 0)
        return NULL;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        kube_fail(err, EINVAL, "an empty document");
        return NULL;
    }
    if (ev.type != YAML_DOCUMENT_START_EVENT) {
        yaml_fail_at(err, &ev.start_mark, "not a YAML document");
        yaml_event_delete(&ev);
        return NULL;
    }
    yaml_event_delete(&ev);
    if (next_event(&r, &ev, err) < 0)
        return NULL;
    json_t *root = read_node(&r, &ev, 0, err);
    if (!root)
        return NULL;
    if (expect_event(&r, YAML_DOCUMENT_END_EVENT, "a document ends where it should not", err) < 0 ||
        expect_event(&r, YAML_STREAM_END_EVENT, "more than one document", err) < 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}
