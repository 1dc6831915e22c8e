#include "cli/yaml.h"

#include <string.h>

typedef struct yline {
    int lineno;
    int indent;      /* spaces before the content (moved right for "- key: value" items) */
    const char *raw; /* the whole line, NUL-terminated, no '\n' */
    char *owned;     /* the content without its comment and trailing blanks (in the arena) */
    char *text;      /* into owned: what is left to parse of the line */
    bool tab_indent; /* a tab before the content */
} yline;

typedef struct yparser {
    char *arena; /* the lines' stripped contents, one after another */
    size_t arena_used;
    yline *lines;
    size_t n, pos;
    int depth;
    cli_error *err;
} yparser;

enum { MAX_DEPTH = 64 };

static int fail_at(yparser *p, int lineno, const char *what)
{
    return cli_fail(p->err, 0, "line %d: %s", lineno, what);
}

/* Whether a quote at s[i] opens a quoted scalar: at the start, or after an indicator. */
static bool quote_opens(const char *s, size_t i)
{
    size_t j = i;
    while (j > 0 && (s[j - 1] == ' ' || s[j - 1] == '\t'))
        j--;
    return j == 0 || strchr(":-[{,?", s[j - 1]) != NULL;
}

/* Copy s without its comment and trailing blanks to dst. */
static char *strip_comment(const char *s, char *dst)
{
    size_t len = strlen(s);
    char quote = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (quote == '\'') {
            if (c == '\'' && s[i + 1] == '\'')
                i++;
            else if (c == '\'')
                quote = 0;
        } else if (quote == '"') {
            if (c == '\\' && s[i + 1])
                i++;
            else if (c == '"')
                quote = 0;
        } else if ((c == '\'' || c == '"') && quote_opens(s, i)) {
            quote = c;
        } else if (c == '#' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t')) {
            len = i;
            break;
        }
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return dst;
}

static bool is_seq_item(const char *text)
{
    return text[0] == '-' && (text[1] == ' ' || text[1] == '\0' || text[1] == '\t');
}

/* The next line with content (blank and comment-only lines skipped), or NULL. */
static yline *peek(yparser *p)
{
    while (p->pos < p->n && p->lines[p->pos].text[0] == '\0')
        p->pos++;
    if (p->pos >= p->n)
        return NULL;
    yline *l = &p->lines[p->pos];
    if (l->tab_indent) {
        fail_at(p, l->lineno, "a tab in the indentation (YAML indents with spaces)");
        return NULL;
    }
    return l;
}

static int put_utf8(cli_buf *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return cli_buf_append(b, u, n);
}

static int hex_value(const char *s, int digits, unsigned long *out)
{
    unsigned long v = 0;
    for (int i = 0; i < digits; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (unsigned long)d;
    }
    *out = v;
    return 0;
}

/* s at an opening quote: decode into out, *end after the closing quote. 0, or an error text. */
static const char *parse_quoted(const char *s, const char **end, cli_buf *out)
{
    char q = *s++;
    for (; *s; s++) {
        if (q == '\'' && *s == '\'') {
            if (s[1] != '\'') {
                *end = s + 1;
                return cli_buf_append(out, "", 0) < 0 ? "out of memory" : NULL;
            }
            s++;
        } else if (q == '"' && *s == '"') {
            *end = s + 1;
            return cli_buf_append(out, "", 0) < 0 ? "out of memory" : NULL;
        } else if (q == '"' && *s == '\\') {
            static const char from[] = "0abtnvfre \"/\\";
            static const char to[] = "\0\a\b\t\n\v\f\r\033 \"/\\";
            const char *k = s[1] ? strchr(from, s[1]) : NULL;
            if (k) {
                if (cli_buf_append(out, &to[k - from], 1) < 0)
                    return "out of memory";
                s++;
                continue;
            }
            int digits = s[1] == 'x' ? 2 : s[1] == 'u' ? 4 : s[1] == 'U' ? 8 : 0;
            unsigned long cp;
            if (!digits || strnlen(s + 2, (size_t)digits) < (size_t)digits ||
                hex_value(s + 2, digits, &cp) < 0)
                return "an unknown escape in a double-quoted string";
            s += 1 + digits;
            if (cp >= 0xd800 && cp <= 0xdbff && s[1] == '\\' && s[2] == 'u') {
                unsigned long low;
                if (hex_value(s + 3, 4, &low) == 0 && low >= 0xdc00 && low <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                    s += 6;
                }
            }
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return "an escape that is not a Unicode character";
            if (put_utf8(out, cp) < 0)
                return "out of memory";
            continue;
        }
        if (cli_buf_append(out, s, 1) < 0)
            return "out of memory";
    }
    return "a quoted string that does not end on its line (multi-line quoted strings are not "
           "supported)";
}

static bool is_null_word(const char *s)
{
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

static json_t *plain_scalar(const char *s, size_t len)
{
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    char *copy = strndup(s, len);
    if (!copy)
        return NULL;
    json_t *v = is_null_word(copy) ? json_null() : json_stringn(copy, len);
    free(copy);
    return v;
}

static void skip_blanks(const char **s)
{
    while (**s == ' ' || **s == '\t')
        (*s)++;
}

static json_t *flow_value(yparser *p, int lineno, const char **s, bool key);

static json_t *flow_collection(yparser *p, int lineno, const char **s)
{
    bool is_map = **s == '{';
    char close = is_map ? '}' : ']';
    json_t *coll = is_map ? json_object() : json_array();
    (*s)++;
    for (;;) {
        skip_blanks(s);
        if (**s == close) {
            (*s)++;
            return coll;
        }
        json_t *key = is_map ? flow_value(p, lineno, s, true) : NULL;
        if (is_map && (!key || !json_is_string(key))) {
            json_decref(key);
            json_decref(coll);
            if (key)
                fail_at(p, lineno, "a flow mapping key that is not a string");
            return NULL;
        }
        if (is_map) {
            skip_blanks(s);
            if (**s != ':') {
                json_decref(key);
                json_decref(coll);
                fail_at(p, lineno, "a flow mapping entry without ':'");
                return NULL;
            }
            (*s)++;
            skip_blanks(s);
        }
        json_t *v =
            (is_map && (**s == ',' || **s == '}')) ? json_null() : flow_value(p, lineno, s, false);
        if (!v || (is_map ? json_object_set_new(coll, json_string_value(key), v)
                          : json_array_append_new(coll, v)) < 0) {
            json_decref(key);
            json_decref(coll);
            if (v)
                cli_fail(p->err, ENOMEM, "line %d", lineno);
            return NULL;
        }
        json_decref(key);
        skip_blanks(s);
        if (**s == ',') {
            (*s)++;
        } else if (**s != close) {
            json_decref(coll);
            fail_at(p, lineno,
                    **s ? "unexpected text in a flow collection"
                        : "a flow collection that does not end on its line (multi-line [...] "
                          "and {...} are not supported)");
            return NULL;
        }
    }
}

static json_t *flow_value(yparser *p, int lineno, const char **s, bool key)
{
    skip_blanks(s);
    if (**s == '[' || **s == '{') {
        if (++p->depth > MAX_DEPTH) {
            fail_at(p, lineno, "nested too deeply");
            return NULL;
        }
        json_t *v = flow_collection(p, lineno, s);
        p->depth--;
        return v;
    }
    if (**s == '"' || **s == '\'') {
        cleanup_buf cli_buf b = {0};
        const char *problem = parse_quoted(*s, s, &b);
        if (problem) {
            fail_at(p, lineno, problem);
            return NULL;
        }
        return json_stringn(b.data, b.len);
    }
    const char *start = *s;
    while (**s && !strchr(",]}", **s) && !(key && **s == ':' && strchr(" \t,]}", (*s)[1])) &&
           !(key && **s == ':' && !(*s)[1]))
        (*s)++;
    return plain_scalar(start, (size_t)(*s - start));
}

/* Whether text begins "key:" (then *key, malloc'd, and *rest after the ':' and its blanks, when
 * they are not NULL): 1; 0 when it is not a key; -1 on an error. */
static int split_key(yparser *p, const yline *l, char *text, char **key, char **rest)
{
    if (text[0] == '?' && (text[1] == ' ' || !text[1]))
        return fail_at(p, l->lineno, "complex mapping keys ('? ') are not supported");
    if (text[0] == '[' || text[0] == '{')
        return 0;
    char *colon = NULL;
    cleanup_buf cli_buf quoted = {0};
    if (text[0] == '"' || text[0] == '\'') {
        const char *end;
        if (parse_quoted(text, &end, &quoted))
            return 0; /* a (broken) quoted scalar, reported as a value */
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end != ':' || (end[1] && end[1] != ' ' && end[1] != '\t'))
            return 0;
        colon = (char *)end;
    } else {
        for (char *c = text; *c && !colon; c++)
            if (*c == ':' && (c[1] == ' ' || c[1] == '\t' || c[1] == '\0'))
                colon = c;
        if (!colon)
            return 0;
    }
    if (key) {
        if (quoted.data) {
            *key = strdup(quoted.data);
        } else {
            size_t len = (size_t)(colon - text);
            while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
                len--;
            *key = strndup(text, len);
        }
        if (!*key)
            return cli_fail(p->err, ENOMEM, "line %d", l->lineno);
    }
    if (rest) {
        char *r = colon + 1;
        while (*r == ' ' || *r == '\t')
            r++;
        *rest = r;
    }
    return 1;
}

static int parse_node(yparser *p, int parent_indent, json_t **out);
static int parse_seq(yparser *p, int indent, json_t **out);

static int block_scalar(yparser *p, const yline *l, const char *text, int owner_indent,
                        json_t **out)
{
    bool folded = text[0] == '>';
    char chomp = 'c';
    int explicit_indent = 0;
    for (const char *h = text + 1; *h; h++) {
        if ((*h == '+' || *h == '-') && chomp == 'c')
            chomp = *h;
        else if (*h >= '1' && *h <= '9' && !explicit_indent)
            explicit_indent = *h - '0';
        else
            return fail_at(p, l->lineno, "a block scalar header with unexpected text");
    }
    int content_indent = explicit_indent ? owner_indent + explicit_indent : -1;
    cleanup_buf cli_buf b = {0};
    size_t pending_newlines = 0;
    bool any = false, prev_more_indented = false;
    while (p->pos < p->n) {
        const yline *c = &p->lines[p->pos];
        size_t spaces = strspn(c->raw, " ");
        bool blank = c->raw[spaces + strspn(c->raw + spaces, " \t\r")] == '\0';
        if (!blank) {
            if ((int)spaces <= owner_indent)
                break;
            if (content_indent < 0)
                content_indent = (int)spaces;
            if ((int)spaces < content_indent)
                return fail_at(p, c->lineno, "a block scalar line indented less than its first");
        }
        p->pos++;
        if (blank) {
            pending_newlines++;
            continue;
        }
        const char *line = c->raw + content_indent;
        bool more_indented = line[0] == ' ' || line[0] == '\t';
        if (any) {
            if (!folded || more_indented || prev_more_indented)
                pending_newlines++;
            else if (pending_newlines == 0 && cli_buf_append(&b, " ", 1) < 0)
                return cli_fail(p->err, ENOMEM, "line %d", c->lineno);
        }
        for (; pending_newlines > 0; pending_newlines--)
            if (cli_buf_append(&b, "\n", 1) < 0)
                return cli_fail(p->err, ENOMEM, "line %d", c->lineno);
        size_t len = strlen(line);
        while (len > 0 && line[len - 1] == '\r')
            len--;
        if (cli_buf_append(&b, line, len) < 0)
            return cli_fail(p->err, ENOMEM, "line %d", c->lineno);
        any = true;
        prev_more_indented = more_indented;
    }
    if (any && chomp != '-' && cli_buf_append(&b, "\n", 1) < 0)
        return cli_fail(p->err, ENOMEM, "line %d", l->lineno);
    for (; chomp == '+' && pending_newlines > 0; pending_newlines--)
        if (cli_buf_append(&b, "\n", 1) < 0)
            return cli_fail(p->err, ENOMEM, "line %d", l->lineno);
    *out = json_stringn(b.data ? b.data : "", b.len);
    return *out ? 0 : fail_at(p, l->lineno, "a block scalar that is not UTF-8");
}

/* The value written after "key:" or "- " on line l (already consumed). */
static int parse_value(yparser *p, const yline *l, const char *text, int owner_indent, json_t **out)
{
    if (text[0] == '!') { /* a tag: ignored */
        text += strcspn(text, " \t");
        while (*text == ' ' || *text == '\t')
            text++;
        if (!*text)
            return parse_node(p, owner_indent, out);
    }
    if (text[0] == '&' || text[0] == '*')
        return fail_at(p, l->lineno, "anchors and aliases (&, *) are not supported");
    if (text[0] == '|' || text[0] == '>')
        return block_scalar(p, l, text, owner_indent, out);
    if (text[0] == '"' || text[0] == '\'' || text[0] == '[' || text[0] == '{') {
        const char *s = text;
        *out = flow_value(p, l->lineno, &s, false);
        if (!*out)
            return -1;
        skip_blanks(&s);
        if (*s) {
            json_decref(*out);
            *out = NULL;
            return fail_at(p, l->lineno, "unexpected text after a value");
        }
        return 0;
    }
    /* a plain scalar, continued by more indented lines */
    cleanup_buf cli_buf b = {0};
    if (cli_buf_append(&b, text, strlen(text)) < 0)
        return cli_fail(p->err, ENOMEM, "line %d", l->lineno);
    for (yline *next; (next = peek(p)) && next->indent > owner_indent; p->pos++) {
        int k = is_seq_item(next->text) ? 1 : split_key(p, next, next->text, NULL, NULL);
        if (k != 0)
            return k < 0 ? -1
                         : fail_at(p, next->lineno,
                                   "unexpected indentation (a key or an item indented more "
                                   "than the one before it)");
        if (cli_buf_append(&b, " ", 1) < 0 || cli_buf_append(&b, next->text, strlen(next->text)))
            return cli_fail(p->err, ENOMEM, "line %d", l->lineno);
    }
    if (p->err->e.msg[0])
        return -1;
    *out = plain_scalar(b.data, b.len);
    return *out ? 0 : fail_at(p, l->lineno, "a value that is not UTF-8");
}

/* One "key: value" entry of a mapping at indent, into obj. */
static int map_entry(yparser *p, yline *l, int indent, json_t *obj)
{
    char *key = NULL;
    char *rest = NULL;
    int k = split_key(p, l, l->text, &key, &rest);
    if (k <= 0 || !key || !rest) {
        free(key);
        if (k < 0)
            return -1;
        return fail_at(p, l->lineno,
                       is_seq_item(l->text) ? "a sequence item where a key was expected"
                                            : "expected 'key: value'");
    }
    json_t *v = NULL;
    int rc = 0;
    if (json_object_get(obj, key)) {
        rc = fail_at(p, l->lineno, "a duplicate key");
    } else {
        p->pos++;
        yline *next = *rest ? NULL : peek(p);
        if (*rest)
            rc = parse_value(p, l, rest, indent, &v);
        else if (next && next->indent == indent && is_seq_item(next->text))
            rc = parse_seq(p, indent, &v);
        else
            rc = parse_node(p, indent, &v);
        if (rc == 0 && json_object_set_new(obj, key, v) < 0)
            rc = cli_fail(p->err, ENOMEM, "line %d", l->lineno);
    }
    free(key);
    return rc;
}

static int parse_map(yparser *p, int indent, json_t **out)
{
    cleanup_json json_t *obj = json_object();
    if (!obj)
        return cli_fail(p->err, ENOMEM, "mapping");
    for (yline *l; (l = peek(p)) && l->indent >= indent;) {
        if (l->indent > indent)
            return fail_at(p, l->lineno, "unexpected indentation");
        if (map_entry(p, l, indent, obj) < 0)
            return -1;
    }
    if (p->err->e.msg[0])
        return -1;
    *out = steal_pointer(&obj);
    return 0;
}

static int parse_seq(yparser *p, int indent, json_t **out)
{
    cleanup_json json_t *arr = json_array();
    if (!arr)
        return cli_fail(p->err, ENOMEM, "sequence");
    for (yline *l; (l = peek(p)) && l->indent >= indent && is_seq_item(l->text);) {
        if (l->indent > indent)
            return fail_at(p, l->lineno, "unexpected indentation");
        char *rest = l->text + 1;
        while (*rest == ' ' || *rest == '\t')
            rest++;
        json_t *v = NULL;
        int k = *rest ? split_key(p, l, rest, NULL, NULL) : 0;
        if (k < 0)
            return -1;
        if (!*rest) {
            p->pos++;
            if (parse_node(p, indent, &v) < 0)
                return -1;
        } else if (k == 1 || is_seq_item(rest)) {
            /* "- key: value" or "- - x": the rest is a node indented where it starts */
            l->indent += (int)(rest - l->text);
            l->text = rest;
            if (parse_node(p, indent, &v) < 0)
                return -1;
        } else {
            p->pos++;
            if (parse_value(p, l, rest, indent, &v) < 0)
                return -1;
        }
        if (json_array_append_new(arr, v) < 0)
            return cli_fail(p->err, ENOMEM, "line %d", l->lineno);
    }
    if (p->err->e.msg[0])
        return -1;
    *out = steal_pointer(&arr);
    return 0;
}

/* The node on the next lines, indented more than parent_indent; null when there is none. */
static int parse_node(yparser *p, int parent_indent, json_t **out)
{
    yline *l = peek(p);
    if (!l || l->indent <= parent_indent) {
        *out = json_null();
        return p->err->e.msg[0] ? -1 : 0;
    }
    if (++p->depth > MAX_DEPTH)
        return fail_at(p, l->lineno, "nested too deeply");
    int rc;
    int k = is_seq_item(l->text) ? 0 : split_key(p, l, l->text, NULL, NULL);
    if (is_seq_item(l->text)) {
        rc = parse_seq(p, l->indent, out);
    } else if (k < 0) {
        rc = -1;
    } else if (k == 1) {
        rc = parse_map(p, l->indent, out);
    } else {
        p->pos++;
        rc = parse_value(p, l, l->text, parent_indent, out);
    }
    p->depth--;
    return rc;
}

/* Fill p->lines (room for every line of text) from text, which is cut into lines in place. */
static int split_lines(yparser *p, char *text)
{
    int lineno = 0;
    for (char *line = text; line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[len - 1] = '\0';
        if (lineno == 1 && strncmp(line, "\xef\xbb\xbf", 3) == 0)
            line += 3;
        yline *l = &p->lines[p->n];
        size_t lead = strspn(line, " \t");
        size_t spaces = strspn(line, " ");
        *l = (yline){.lineno = lineno, .indent = (int)spaces, .raw = line};
        l->owned = strip_comment(line + lead, p->arena + p->arena_used);
        p->arena_used += strlen(l->owned) + 1;
        l->text = l->owned;
        l->tab_indent = lead != spaces && l->text[0];
        p->n++;
        bool marker = (strncmp(line, "---", 3) == 0 || strncmp(line, "...", 3) == 0) &&
                      (line[3] == '\0' || line[3] == ' ' || line[3] == '\t');
        if (marker || (line[0] == '%' && spaces == 0)) {
            bool content_before = false;
            for (size_t i = 0; i + 1 < p->n; i++)
                content_before = content_before || p->lines[i].text[0];
            if (content_before) { /* the end of the first document: the rest is ignored */
                l->text[0] = '\0';
                return 0;
            }
            size_t skip = strlen(l->text);
            l->text += line[0] == '%' || skip < 3 ? skip : 3;
            while (*l->text == ' ')
                l->text++;
            if (l->text[0]) /* "--- value" on the marker line */
                l->indent = (int)(l->text - l->owned);
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

int cli_yaml_parse(const char *text, size_t len, json_t **out, cli_error *err)
{
    *out = NULL;
    if (!cli_utf8_valid(text, len) || memchr(text, '\0', len))
        return cli_fail(err, 0, "not UTF-8 text");
    char *copy = strndup(text, len);
    if (!copy)
        return cli_fail(err, ENOMEM, "YAML");
    /* each line's stripped content is at most the line, plus its NUL */
    size_t n_lines = 1;
    for (size_t i = 0; i < len; i++)
        n_lines += text[i] == '\n';
    yparser p = {
        .err = err, .arena = calloc(2 * len + 2, 1), .lines = calloc(n_lines, sizeof(yline))};
    err->e.msg[0] = '\0';
    int rc = p.arena && p.lines ? split_lines(&p, copy) : cli_fail(err, ENOMEM, "YAML");
    if (rc == 0) {
        rc = parse_node(&p, -1, out);
        yline *extra = rc == 0 ? peek(&p) : NULL;
        if (rc == 0 && extra)
            rc = fail_at(&p, extra->lineno, "unexpected text after the document's top node");
        else if (rc == 0 && err->e.msg[0])
            rc = -1;
    }
    free(p.arena);
    free(p.lines);
    free(copy);
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}
