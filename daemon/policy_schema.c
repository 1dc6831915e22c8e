/* The checks of a seccomp profile that libseccomp does not make: its shape against the OCI
 * runtime-spec schema (schema/config-linux.json "seccomp" and schema/defs-linux.json, v1.2, with
 * Docker's extensions: archMap, comment, includes, excludes), and rules that contradict or repeat
 * each other, which libseccomp accepts silently (the later rule's action is simply lost). */
#include "policy.h"

#include <regex.h>
#include <stdarg.h>
#include <string.h>

/* defs-linux.json SeccompAction, SeccompArch, SeccompFlag, SeccompOperators */
static const char *const oci_actions[] = {"SCMP_ACT_KILL",        "SCMP_ACT_KILL_PROCESS",
                                          "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                                          "SCMP_ACT_ERRNO",       "SCMP_ACT_TRACE",
                                          "SCMP_ACT_ALLOW",       "SCMP_ACT_LOG",
                                          "SCMP_ACT_NOTIFY",      NULL};
static const char *const oci_arches[] = {
    "SCMP_ARCH_X86",      "SCMP_ARCH_X86_64",      "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",      "SCMP_ARCH_AARCH64",     "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",   "SCMP_ARCH_MIPS64N32",   "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",    "SCMP_ARCH_PPC64LE",     "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",    "SCMP_ARCH_PARISC",      "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",  "SCMP_ARCH_LOONGARCH64", NULL};
static const char *const oci_flags[] = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", NULL};
static const char *const oci_ops[] = {"SCMP_CMP_NE",        "SCMP_CMP_LT", "SCMP_CMP_LE",
                                      "SCMP_CMP_EQ",        "SCMP_CMP_GE", "SCMP_CMP_GT",
                                      "SCMP_CMP_MASKED_EQ", NULL};

static const char *const root_keys[] = {"defaultAction",
                                        "defaultErrnoRet",
                                        "architectures",
                                        "flags",
                                        "listenerPath",
                                        "listenerMetadata",
                                        "syscalls",
                                        "archMap",
                                        "comment",
                                        "_comment",
                                        NULL};
static const char *const rule_keys[] = {"names",   "name",     "action",   "errnoRet", "args",
                                        "comment", "includes", "excludes", NULL};
static const char *const arg_keys[] = {"index", "value", "valueTwo", "op", NULL};
static const char *const filter_keys[] = {"caps", "arches", "minKernel", NULL};

typedef struct report {
    const char *label;
    FILE *out;
    int problems;
} report;

static void problem(report *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(report *r, const char *field, const char *fmt, ...)
{
    r->problems++;
    fprintf(r->out, "%s: %s: ", r->label, field);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->out, fmt, ap);
    va_end(ap);
    fputc('\n', r->out);
}

static bool in_list(const char *const *list, const char *value)
{
    for (; *list; list++) {
        if (strcmp(*list, value) == 0)
            return true;
    }
    return false;
}

static void unknown_keys(report *r, json_t *object, const char *field, const char *const *known)
{
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value)
    {
        if (in_list(known, key))
            continue;
        char f[192];
        snprintf(f, sizeof(f), "%s%s%.64s", field, *field ? "." : "", key);
        problem(r, f, "unknown key");
    }
}

static bool is_uint(json_t *v, unsigned long long max)
{
    return json_is_integer(v) && json_integer_value(v) >= 0 &&
           (unsigned long long)json_integer_value(v) <= max;
}

/* A member that must be a string from enumeration. */
static void enum_member(report *r, json_t *v, const char *field, const char *const *allowed,
                        const char *what)
{
    if (!json_is_string(v))
        problem(r, field, "must be a string (%s)", what);
    else if (!in_list(allowed, json_string_value(v)))
        problem(r, field, "unknown %s \"%.64s\"", what, json_string_value(v));
}

static void enum_array(report *r, json_t *v, const char *field, const char *const *allowed,
                       const char *what)
{
    if (!v)
        return;
    if (!json_is_array(v)) {
        problem(r, field, "must be an array");
        return;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        char f[96];
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        enum_member(r, item, f, allowed, what);
    }
}

static void check_filter(report *r, json_t *filter, const char *field)
{
    if (!filter)
        return;
    if (!json_is_object(filter)) {
        problem(r, field, "must be an object");
        return;
    }
    unknown_keys(r, filter, field, filter_keys);
    regex_t cap_re;
    regcomp(&cap_re, "^CAP_[A-Z_]+$", REG_EXTENDED | REG_NOSUB);
    static const char *const lists[] = {"caps", "arches"};
    for (size_t k = 0; k < HKS_ARRAY_LEN(lists); k++) {
        json_t *list = json_object_get(filter, lists[k]);
        char f[160];
        snprintf(f, sizeof(f), "%.120s.%s", field, lists[k]);
        if (list && !json_is_array(list)) {
            problem(r, f, "must be an array of strings");
            continue;
        }
        size_t i;
        json_t *item;
        json_array_foreach(list, i, item)
        {
            char fi[200];
            snprintf(fi, sizeof(fi), "%s[%zu]", f, i);
            if (!json_is_string(item))
                problem(r, fi, "must be a string");
            else if (k == 0 && regexec(&cap_re, json_string_value(item), 0, NULL, 0) != 0)
                problem(r, fi, "\"%.64s\" is not a capability name (CAP_*)",
                        json_string_value(item));
        }
    }
    regfree(&cap_re);
    json_t *min_kernel = json_object_get(filter, "minKernel");
    if (min_kernel && !json_is_string(min_kernel)) {
        char f[160];
        snprintf(f, sizeof(f), "%s.minKernel", field);
        problem(r, f, "must be a string such as \"4.8\"");
    }
}

static void check_args(report *r, json_t *args, const char *field)
{
    if (!args)
        return;
    if (!json_is_array(args)) {
        problem(r, field, "must be an array");
        return;
    }
    size_t i;
    json_t *arg;
    json_array_foreach(args, i, arg)
    {
        char f[128], fk[160];
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        if (!json_is_object(arg)) {
            problem(r, f, "must be an object");
            continue;
        }
        unknown_keys(r, arg, f, arg_keys);
        snprintf(fk, sizeof(fk), "%s.index", f);
        if (!is_uint(json_object_get(arg, "index"), 5))
            problem(r, fk, "required, an integer 0..5");
        static const char *const values[] = {"value", "valueTwo"};
        for (size_t k = 0; k < HKS_ARRAY_LEN(values); k++) {
            json_t *v = json_object_get(arg, values[k]);
            snprintf(fk, sizeof(fk), "%s.%s", f, values[k]);
            if ((k == 0 || v) && !is_uint(v, UINT64_MAX))
                problem(r, fk, "%sa non-negative integer (uint64)", k == 0 ? "required, " : "");
        }
        snprintf(fk, sizeof(fk), "%s.op", f);
        if (!json_object_get(arg, "op"))
            problem(r, fk, "required (SCMP_CMP_*)");
        else
            enum_member(r, json_object_get(arg, "op"), fk, oci_ops, "operator");
    }
}

static void check_rule(report *r, json_t *rule, size_t index)
{
    char field[64], f[96];
    snprintf(field, sizeof(field), "syscalls[%zu]", index);
    if (!json_is_object(rule)) {
        problem(r, field, "must be an object");
        return;
    }
    unknown_keys(r, rule, field, rule_keys);
    json_t *names = json_object_get(rule, "names");
    snprintf(f, sizeof(f), "%s.names", field);
    if (!names && !json_is_string(json_object_get(rule, "name")))
        problem(r, f, "required, a non-empty array of syscall names");
    else if (names && (!json_is_array(names) || json_array_size(names) == 0))
        problem(r, f, "must be a non-empty array of syscall names");
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name)
    {
        if (!json_is_string(name)) {
            snprintf(f, sizeof(f), "%s.names[%zu]", field, i);
            problem(r, f, "must be a string");
        }
    }
    json_t *action = json_object_get(rule, "action");
    snprintf(f, sizeof(f), "%s.action", field);
    if (!action)
        problem(r, f, "required (SCMP_ACT_*)");
    else
        enum_member(r, action, f, oci_actions, "action");
    json_t *errno_ret = json_object_get(rule, "errnoRet");
    snprintf(f, sizeof(f), "%s.errnoRet", field);
    if (errno_ret && !is_uint(errno_ret, UINT32_MAX))
        problem(r, f, "must be a non-negative integer (uint32)");
    else if (errno_ret && json_is_string(action) &&
             strcmp(json_string_value(action), "SCMP_ACT_ERRNO") != 0 &&
             strcmp(json_string_value(action), "SCMP_ACT_TRACE") != 0)
        problem(r, f, "has no effect with %s (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE use it)",
                json_string_value(action));
    snprintf(f, sizeof(f), "%s.args", field);
    check_args(r, json_object_get(rule, "args"), f);
    snprintf(f, sizeof(f), "%s.includes", field);
    check_filter(r, json_object_get(rule, "includes"), f);
    snprintf(f, sizeof(f), "%s.excludes", field);
    check_filter(r, json_object_get(rule, "excludes"), f);
    json_t *comment = json_object_get(rule, "comment");
    snprintf(f, sizeof(f), "%s.comment", field);
    if (comment && !json_is_string(comment))
        problem(r, f, "must be a string");
}

static void check_shape(report *r, json_t *profile)
{
    unknown_keys(r, profile, "", root_keys);
    json_t *da = json_object_get(profile, "defaultAction");
    if (!da)
        problem(r, "defaultAction", "required (SCMP_ACT_*)");
    else
        enum_member(r, da, "defaultAction", oci_actions, "action");
    json_t *de = json_object_get(profile, "defaultErrnoRet");
    if (de && !is_uint(de, UINT32_MAX))
        problem(r, "defaultErrnoRet", "must be a non-negative integer (uint32)");
    enum_array(r, json_object_get(profile, "architectures"), "architectures", oci_arches,
               "architecture");
    enum_array(r, json_object_get(profile, "flags"), "flags", oci_flags, "flag");
    static const char *const strings[] = {"listenerPath", "listenerMetadata"};
    for (size_t k = 0; k < HKS_ARRAY_LEN(strings); k++) {
        json_t *v = json_object_get(profile, strings[k]);
        if (v && !json_is_string(v))
            problem(r, strings[k], "must be a string");
    }
    json_t *syscalls = json_object_get(profile, "syscalls");
    if (syscalls && !json_is_array(syscalls)) {
        problem(r, "syscalls", "must be an array");
        return;
    }
    size_t i;
    json_t *rule;
    json_array_foreach(syscalls, i, rule)
    {
        check_rule(r, rule, i);
    }
}

/* ---- rules against each other ---- */

/* A profile of this one rule for "read" (any call libseccomp knows would do): its table says
 * the rule's action and conditions in the words the rest of the tools use. */
static json_t *rule_alone(json_t *rule, json_t *default_errno)
{
    return json_pack("{s:s,s:O*,s:[{s:[s],s:O,s:O*,s:O*}]}", "defaultAction",
                     "SCMP_ACT_KILL_PROCESS", "defaultErrnoRet", default_errno, "syscalls", "names",
                     "read", "action", json_object_get(rule, "action"), "errnoRet",
                     json_object_get(rule, "errnoRet"), "args", json_object_get(rule, "args"));
}

static void check_overlaps(report *r, json_t *profile)
{
    policy_view sandbox = {.capabilities = NULL, .arch = "amd64"};
    json_t *de = json_object_get(profile, "defaultErrnoRet");
    json_t *seen = json_object(); /* name -> [{"field", "action", "when"}] */
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(profile, "syscalls"), i, rule)
    {
        if (!policy_rule_applies(rule, &sandbox))
            continue;
        /* The rule's own effect, through the same code that builds tables. */
        json_t *alone = rule_alone(rule, de);
        json_t *table = alone ? policy_seccomp_table(alone, &sandbox) : NULL;
        json_t *effect = json_object_get(json_object_get(table, "syscalls"), "read");
        json_t *filter = json_array_get(json_object_get(effect, "filters"), 0);
        const char *action = filter ? json_string_value(json_object_get(filter, "action"))
                                    : json_string_value(json_object_get(effect, "action"));
        const char *when = filter ? json_string_value(json_object_get(filter, "when")) : "";
        size_t j;
        json_t *name;
        json_array_foreach(json_object_get(rule, "names"), j, name)
        {
            const char *text = json_string_value(name);
            if (!text || !action)
                continue;
            char field[96];
            snprintf(field, sizeof(field), "syscalls[%zu].names[%zu]", i, j);
            json_t *earlier = json_object_get(seen, text);
            size_t k;
            json_t *e;
            int before = r->problems;
            json_array_foreach(earlier, k, e)
            {
                if (r->problems != before)
                    break;
                const char *e_field = json_string_value(json_object_get(e, "field"));
                const char *e_action = json_string_value(json_object_get(e, "action"));
                const char *e_when = json_string_value(json_object_get(e, "when"));
                bool same_action = strcmp(action, e_action) == 0;
                if (strcmp(when, e_when) == 0 && same_action)
                    problem(r, field, "\"%s\" repeats %s (same action and arguments)", text,
                            e_field);
                else if (!*when && !*e_when)
                    problem(r, field,
                            "\"%s\" is %s (%s) here but %s (%s) by %s: contradictory rules, "
                            "libseccomp keeps only one",
                            text, policy_action_status(action), action,
                            policy_action_status(e_action), e_action, e_field);
                else if (!*when || !*e_when)
                    problem(r, field,
                            "\"%s\" has both an unconditional rule and an argument filter (%s): "
                            "the filter has no effect",
                            text, *when ? field : e_field);
                else if (strcmp(when, e_when) == 0)
                    problem(r, field, "\"%s\" is %s here but %s by %s under the same arguments",
                            text, action, e_action, e_field);
            }
            if (!earlier) {
                earlier = json_array();
                json_object_set_new(seen, text, earlier);
            }
            json_array_append_new(earlier, json_pack("{s:s,s:s,s:s}", "field", field, "action",
                                                     action, "when", when));
        }
        json_decref(table);
        json_decref(alone);
    }
    json_decref(seen);
}

int policy_check_seccomp_json(json_t *profile, const char *label, FILE *out)
{
    report r = {.label = label, .out = out};
    if (!json_is_object(profile)) {
        problem(&r, "(root)", "must be a JSON object");
        return r.problems;
    }
    check_shape(&r, profile);
    check_overlaps(&r, profile);
    return r.problems;
}
