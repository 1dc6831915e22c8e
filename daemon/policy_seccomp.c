/* A seccomp profile read as a reviewer reads it: for each system call it names, what the filter
 * does with it on this machine, and what changes between two versions of it. */
#include "policy.h"

#include <seccomp.h>
#include <string.h>

static const char *errno_name(long long value, char *buf, size_t size)
{
    const char *name = value > 0 && value < 4096 ? strerrorname_np((int)value) : NULL;
    if (name)
        return name;
    snprintf(buf, size, "%lld", value);
    return buf;
}

/* "SCMP_ACT_ERRNO(EPERM)" for an ERRNO action, the action's name otherwise. */
static char *action_text(json_t *action, json_t *errno_ret, long long default_errno)
{
    const char *name = json_string_value(action);
    if (!name)
        return NULL;
    if (strcmp(name, "SCMP_ACT_ERRNO") != 0)
        return strdup(name);
    long long value = json_is_integer(errno_ret) ? json_integer_value(errno_ret) : default_errno;
    char buf[32], *text = NULL;
    if (asprintf(&text, "SCMP_ACT_ERRNO(%s)", errno_name(value, buf, sizeof(buf))) < 0)
        return NULL;
    return text;
}

const char *policy_action_status(const char *action)
{
    if (strcmp(action, "SCMP_ACT_ALLOW") == 0 || strcmp(action, "SCMP_ACT_LOG") == 0)
        return "allowed";
    return "refused";
}

static void append_number(char *buf, size_t size, json_t *value)
{
    size_t used = strlen(buf);
    json_int_t n = json_integer_value(value);
    if (n >= 0 && n < 10)
        snprintf(buf + used, size - used, "%lld", (long long)n);
    else
        snprintf(buf + used, size - used, "0x%llx", (unsigned long long)n);
}

/* "arg1 & 0xffffffff == 0x5401 && arg2 == 0x1": the rule's conditions as C would write them. */
static char *conditions_text(json_t *args)
{
    static const struct {
        const char *op, *symbol;
    } ops[] = {{"SCMP_CMP_NE", "!="}, {"SCMP_CMP_LT", "<"},  {"SCMP_CMP_LE", "<="},
               {"SCMP_CMP_EQ", "=="}, {"SCMP_CMP_GE", ">="}, {"SCMP_CMP_GT", ">"}};
    char buf[1024] = "";
    size_t i;
    json_t *arg;
    json_array_foreach(args, i, arg)
    {
        const char *op = json_string_value(json_object_get(arg, "op"));
        json_t *index = json_object_get(arg, "index");
        size_t used = strlen(buf);
        snprintf(buf + used, sizeof(buf) - used, "%sarg%lld ", i ? " && " : "",
                 (long long)json_integer_value(index));
        if (op && strcmp(op, "SCMP_CMP_MASKED_EQ") == 0) {
            strncat(buf, "& ", sizeof(buf) - strlen(buf) - 1);
            append_number(buf, sizeof(buf), json_object_get(arg, "value"));
            strncat(buf, " == ", sizeof(buf) - strlen(buf) - 1);
            append_number(buf, sizeof(buf), json_object_get(arg, "valueTwo"));
            continue;
        }
        const char *symbol = "?";
        for (size_t k = 0; op && k < HKS_ARRAY_LEN(ops); k++) {
            if (strcmp(op, ops[k].op) == 0)
                symbol = ops[k].symbol;
        }
        strncat(buf, symbol, sizeof(buf) - strlen(buf) - 1);
        strncat(buf, " ", sizeof(buf) - strlen(buf) - 1);
        append_number(buf, sizeof(buf), json_object_get(arg, "value"));
    }
    return strdup(buf);
}

static bool array_has_string(json_t *array, const char *value)
{
    size_t i;
    json_t *item;
    json_array_foreach(array, i, item)
    {
        if (json_is_string(item) && strcmp(json_string_value(item), value) == 0)
            return true;
    }
    return false;
}

bool policy_rule_applies(json_t *rule, const policy_view *view)
{
    json_t *inc = json_object_get(rule, "includes"), *exc = json_object_get(rule, "excludes");
    size_t i;
    json_t *cap;
    json_array_foreach(json_object_get(inc, "caps"), i, cap)
    {
        if (!json_is_string(cap) || !array_has_string(view->capabilities, json_string_value(cap)))
            return false;
    }
    json_t *arches = json_object_get(inc, "arches");
    if (json_array_size(arches) > 0 && !array_has_string(arches, view->arch))
        return false;
    json_array_foreach(json_object_get(exc, "caps"), i, cap)
    {
        if (json_is_string(cap) && array_has_string(view->capabilities, json_string_value(cap)))
            return false;
    }
    return !array_has_string(json_object_get(exc, "arches"), view->arch);
}

static void append_unique(json_t *array, const char *name)
{
    if (!array_has_string(array, name))
        json_array_append_new(array, json_string(name));
}

/* The entry of one named call, created on first use. */
static json_t *entry_for(json_t *calls, const char *name)
{
    json_t *entry = json_object_get(calls, name);
    if (!entry) {
        entry = json_pack("{s:[],s:[],s:[]}", "unconditional", "filters", "rules");
        json_object_set_new(calls, name, entry);
    }
    return entry;
}

static void add_rule(json_t *table, json_t *rule, size_t index, long long default_errno)
{
    json_t *args = json_object_get(rule, "args");
    if (args && !json_is_array(args))
        return;
    char *action = action_text(json_object_get(rule, "action"), json_object_get(rule, "errnoRet"),
                               default_errno);
    if (!action)
        return;
    char *when = json_array_size(args) > 0 ? conditions_text(args) : NULL;
    json_t *names = json_object_get(rule, "names");
    json_t *single = json_object_get(rule, "name");
    json_t *one = NULL;
    if (!json_is_array(names) && json_is_string(single))
        names = one = json_pack("[O]", single);
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name)
    {
        const char *text = json_string_value(name);
        if (!text)
            continue;
        int nr = seccomp_syscall_resolve_name(text);
        if (nr == __NR_SCMP_ERROR) {
            append_unique(json_object_get(table, "unknown"), text);
            continue;
        }
        if (nr < 0) {
            append_unique(json_object_get(table, "other_arch"), text);
            continue;
        }
        json_t *entry = entry_for(json_object_get(table, "syscalls"), text);
        json_array_append_new(json_object_get(entry, "rules"), json_integer((json_int_t)index));
        if (when)
            json_array_append_new(json_object_get(entry, "filters"),
                                  json_pack("{s:s,s:s}", "when", when, "action", action));
        else
            json_array_append_new(json_object_get(entry, "unconditional"), json_string(action));
    }
    json_decref(one);
    free(when);
    free(action);
}

/* From the rules gathered for one call to its effective treatment. */
static void settle(json_t *entry, const char *default_action)
{
    json_t *unconditional = json_object_get(entry, "unconditional");
    json_t *filters = json_object_get(entry, "filters");
    const char *default_status = policy_action_status(default_action);
    if (json_array_size(unconditional) > 0) {
        /* An unconditional rule decides; filters beside it have no effect (check reports it). */
        const char *action = json_string_value(json_array_get(unconditional, 0));
        json_object_set_new(entry, "action", json_string(action));
        json_object_set_new(entry, "status", json_string(policy_action_status(action)));
        json_object_set_new(entry, "filters", json_array());
    } else {
        bool differs = false;
        size_t i;
        json_t *filter;
        json_array_foreach(filters, i, filter)
        {
            const char *action = json_string_value(json_object_get(filter, "action"));
            if (strcmp(policy_action_status(action), default_status) != 0)
                differs = true;
        }
        json_object_set_new(entry, "action", json_string(default_action));
        json_object_set_new(entry, "status", json_string(differs ? "filtered" : default_status));
    }
    json_object_del(entry, "unconditional");
}

json_t *policy_seccomp_table(json_t *profile, const policy_view *view)
{
    long long default_errno = 1;
    json_t *de = json_object_get(profile, "defaultErrnoRet");
    if (json_is_integer(de))
        default_errno = json_integer_value(de);
    json_t *da = json_object_get(profile, "defaultAction");
    char *default_action = action_text(json_is_string(da) ? da : NULL, de, default_errno);
    json_t *table =
        json_pack("{s:s,s:{},s:[],s:[]}", "default", default_action ? default_action : "(missing)",
                  "syscalls", "unknown", "other_arch");
    free(default_action);
    if (!table)
        return NULL;
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(profile, "syscalls"), i, rule)
    {
        if (json_is_object(rule) && policy_rule_applies(rule, view))
            add_rule(table, rule, i, default_errno);
    }
    const char *name;
    json_t *entry;
    json_object_foreach(json_object_get(table, "syscalls"), name, entry)
    {
        settle(entry, json_string_value(json_object_get(table, "default")));
    }
    return table;
}

json_t *policy_seccomp_lookup(json_t *table, const char *name)
{
    json_t *entry = json_object_get(json_object_get(table, "syscalls"), name);
    if (entry)
        return json_incref(entry);
    const char *action = json_string_value(json_object_get(table, "default"));
    return json_pack("{s:s,s:s,s:[],s:[]}", "status", policy_action_status(action), "action",
                     action, "filters", "rules");
}

/* ---- diff ---- */

static int status_rank(const char *status)
{
    if (strcmp(status, "allowed") == 0)
        return 2;
    return strcmp(status, "filtered") == 0 ? 1 : 0;
}

/* The conditions under which a filtered call is let through, one string each. */
static json_t *allowing_filters(json_t *entry)
{
    json_t *out = json_array();
    size_t i;
    json_t *filter;
    json_array_foreach(json_object_get(entry, "filters"), i, filter)
    {
        const char *action = json_string_value(json_object_get(filter, "action"));
        if (strcmp(policy_action_status(action), "allowed") == 0)
            append_unique(out, json_string_value(json_object_get(filter, "when")));
    }
    return out;
}

static void join(json_t *strings, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t i;
    json_t *s;
    json_array_foreach(strings, i, s)
    {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s(%s)", i ? " || " : "", json_string_value(s));
    }
}

/* Same status, both filtered: which allowing conditions came and went. */
static void diff_filters(json_t *old_entry, json_t *new_entry, const char *label, const char *name,
                         FILE *out, policy_diff_counts *counts)
{
    json_t *old_when = allowing_filters(old_entry), *new_when = allowing_filters(new_entry);
    size_t i;
    json_t *when;
    json_array_foreach(new_when, i, when)
    {
        if (!array_has_string(old_when, json_string_value(when)))
            policy_diff_line(out, counts, "loosened",
                             "%s: %s: argument filter loosened: now also allowed when %s", label,
                             name, json_string_value(when));
    }
    json_array_foreach(old_when, i, when)
    {
        if (!array_has_string(new_when, json_string_value(when)))
            policy_diff_line(out, counts, "tightened",
                             "%s: %s: argument filter tightened: no longer allowed when %s", label,
                             name, json_string_value(when));
    }
    json_decref(old_when);
    json_decref(new_when);
}

static void describe(json_t *entry, char *buf, size_t size)
{
    const char *status = json_string_value(json_object_get(entry, "status"));
    if (strcmp(status, "filtered") == 0) {
        json_t *when = allowing_filters(entry);
        char joined[2048];
        join(when, joined, sizeof(joined));
        snprintf(buf, size, "allowed only when %s, otherwise %s", joined,
                 json_string_value(json_object_get(entry, "action")));
        json_decref(when);
        return;
    }
    snprintf(buf, size, "%s: %s", status, json_string_value(json_object_get(entry, "action")));
}

static void diff_call(json_t *old_table, json_t *new_table, const char *name, const char *label,
                      FILE *out, policy_diff_counts *counts)
{
    json_t *o = policy_seccomp_lookup(old_table, name), *n = policy_seccomp_lookup(new_table, name);
    const char *os = json_string_value(json_object_get(o, "status"));
    const char *ns = json_string_value(json_object_get(n, "status"));
    const char *oa = json_string_value(json_object_get(o, "action"));
    const char *na = json_string_value(json_object_get(n, "action"));
    char was[2600], now[2600];
    describe(o, was, sizeof(was));
    describe(n, now, sizeof(now));
    int delta = status_rank(ns) - status_rank(os);
    if (delta > 0)
        policy_diff_line(out, counts, "loosened", "%s: %s: %s (was %s)", label, name,
                         strcmp(ns, "allowed") == 0 ? "newly allowed" : now, was);
    else if (delta < 0)
        policy_diff_line(out, counts, "tightened", "%s: %s: now %s (was %s)", label, name, now,
                         was);
    else if (strcmp(ns, "filtered") == 0)
        diff_filters(o, n, label, name, out, counts);
    else if (strcmp(oa, na) != 0)
        policy_diff_line(out, counts, "changed", "%s: %s: %s -> %s", label, name, oa, na);
    json_decref(o);
    json_decref(n);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void policy_diff_seccomp(json_t *old_table, json_t *new_table, const char *label, FILE *out,
                         policy_diff_counts *counts)
{
    const char *od = json_string_value(json_object_get(old_table, "default"));
    const char *nd = json_string_value(json_object_get(new_table, "default"));
    if (strcmp(od, nd) != 0) {
        int delta = status_rank(policy_action_status(nd)) - status_rank(policy_action_status(od));
        policy_diff_line(out, counts,
                         delta > 0   ? "loosened"
                         : delta < 0 ? "tightened"
                                     : "changed",
                         "%s: defaultAction: %s -> %s (every call the profile does not name)",
                         label, od, nd);
    }
    json_t *names = json_object();
    json_object_update(names, json_object_get(old_table, "syscalls"));
    json_object_update(names, json_object_get(new_table, "syscalls"));
    size_t n = json_object_size(names), k = 0;
    const char **sorted = calloc(n ? n : 1, sizeof(*sorted));
    const char *name;
    json_t *ignored;
    json_object_foreach(names, name, ignored)
    {
        if (sorted)
            sorted[k++] = name;
    }
    if (sorted) {
        qsort(sorted, k, sizeof(*sorted), compare_strings);
        for (size_t i = 0; i < k; i++)
            diff_call(old_table, new_table, sorted[i], label, out, counts);
    }
    free(sorted);
    json_decref(names);
}
