/* OCI seccomp profiles (the format of Docker's default.json and of Kubernetes Localhost profiles)
 * compiled with libseccomp into a BPF program once, so that a sandbox child only has to hand the
 * ready program to the kernel. */
#include "internal.h"

#include <jansson.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#define PROFILE_MAX_BYTES (1u << 20)
#define PROFILE_MAX_RULES 4096

/* Collects problems: in check mode every problem is printed and counted; in load mode the first
 * one fails the load. */
typedef struct profile_walk {
    const char *label;
    FILE *report;
    int problems;
    hks_error *err;
} profile_walk;

static int problem(profile_walk *w, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int problem(profile_walk *w, const char *field, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    w->problems++;
    if (w->report) {
        fprintf(w->report, "%s: %s: %s\n", w->label, field, text);
        return 0; /* keep going to find every problem */
    }
    return hks_fail(w->err, 0, "seccomp profile %s: %s: %s", w->label, field, text);
}

static bool action_from_name(const char *name, uint32_t errno_ret, uint32_t *out)
{
    if (strcmp(name, "SCMP_ACT_ALLOW") == 0)
        *out = SCMP_ACT_ALLOW;
    else if (strcmp(name, "SCMP_ACT_ERRNO") == 0)
        *out = SCMP_ACT_ERRNO(errno_ret);
    else if (strcmp(name, "SCMP_ACT_KILL") == 0 || strcmp(name, "SCMP_ACT_KILL_THREAD") == 0)
        *out = SCMP_ACT_KILL_THREAD;
    else if (strcmp(name, "SCMP_ACT_KILL_PROCESS") == 0)
        *out = SCMP_ACT_KILL_PROCESS;
    else if (strcmp(name, "SCMP_ACT_TRAP") == 0)
        *out = SCMP_ACT_TRAP;
    else if (strcmp(name, "SCMP_ACT_LOG") == 0)
        *out = SCMP_ACT_LOG;
    else
        return false; /* TRACE and NOTIFY need a supervisor we do not run */
    return true;
}

static bool op_from_name(const char *name, enum scmp_compare *out)
{
    static const struct {
        const char *name;
        enum scmp_compare op;
    } ops[] = {
        {"SCMP_CMP_NE", SCMP_CMP_NE},
        {"SCMP_CMP_LT", SCMP_CMP_LT},
        {"SCMP_CMP_LE", SCMP_CMP_LE},
        {"SCMP_CMP_EQ", SCMP_CMP_EQ},
        {"SCMP_CMP_GE", SCMP_CMP_GE},
        {"SCMP_CMP_GT", SCMP_CMP_GT},
        {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(ops); i++) {
        if (strcmp(name, ops[i].name) == 0) {
            *out = ops[i].op;
            return true;
        }
    }
    return false;
}

static bool arch_from_name(const char *name, uint32_t *out)
{
    static const struct {
        const char *name;
        uint32_t arch;
    } arches[] = {
        {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64}, {"SCMP_ARCH_X86", SCMP_ARCH_X86},
        {"SCMP_ARCH_X32", SCMP_ARCH_X32},       {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64},
        {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(arches); i++) {
        if (strcmp(name, arches[i].name) == 0) {
            *out = arches[i].arch;
            return true;
        }
    }
    return false;
}

static bool json_get_u64(json_t *value, uint64_t *out)
{
    if (!json_is_integer(value) || json_integer_value(value) < 0)
        return false;
    *out = (uint64_t)json_integer_value(value);
    return true;
}

/* Linux version as a comparable number (major << 16 | minor << 8). */
static unsigned kernel_version(const char *text)
{
    unsigned major = 0, minor = 0;
    if (sscanf(text, "%u.%u", &major, &minor) < 1)
        return 0;
    return major << 16 | minor << 8;
}

static const char *native_docker_arch(void)
{
    uint32_t native = seccomp_arch_native();
    if (native == SCMP_ARCH_X86_64)
        return "amd64";
    if (native == SCMP_ARCH_AARCH64)
        return "arm64";
    return "";
}

/* Docker's includes/excludes: a sandbox has no capabilities, runs on the native arch and on the
 * running kernel. Returns whether the rule applies here. */
static bool rule_applies(json_t *rule, profile_walk *w, const char *field)
{
    json_t *inc = json_object_get(rule, "includes");
    json_t *exc = json_object_get(rule, "excludes");
    if (inc && json_is_object(inc)) {
        json_t *caps = json_object_get(inc, "caps");
        if (json_is_array(caps) && json_array_size(caps) > 0)
            return false; /* needs a capability the sandbox never has */
        json_t *arches = json_object_get(inc, "arches");
        if (json_is_array(arches) && json_array_size(arches) > 0) {
            bool found = false;
            size_t i;
            json_t *a;
            json_array_foreach(arches, i, a)
            {
                if (json_is_string(a) && strcmp(json_string_value(a), native_docker_arch()) == 0)
                    found = true;
            }
            if (!found)
                return false;
        }
        json_t *min_kernel = json_object_get(inc, "minKernel");
        if (json_is_string(min_kernel)) {
            struct utsname uts;
            if (uname(&uts) == 0 &&
                kernel_version(uts.release) < kernel_version(json_string_value(min_kernel)))
                return false;
        }
    }
    if (exc && json_is_object(exc)) {
        json_t *arches = json_object_get(exc, "arches");
        size_t i;
        json_t *a;
        if (json_is_array(arches)) {
            json_array_foreach(arches, i, a)
            {
                if (json_is_string(a) && strcmp(json_string_value(a), native_docker_arch()) == 0)
                    return false;
            }
        }
        /* excludes.caps: the sandbox has none of them, so the rule applies */
    }
    (void)w;
    (void)field;
    return true;
}

static int add_arches(scmp_filter_ctx ctx, json_t *root, profile_walk *w)
{
    json_t *arches = json_object_get(root, "architectures");
    if (arches && !json_is_array(arches))
        return problem(w, "architectures", "must be an array of SCMP_ARCH_* names");
    size_t i;
    json_t *a;
    json_array_foreach(arches, i, a)
    {
        char field[64];
        snprintf(field, sizeof(field), "architectures[%zu]", i);
        uint32_t arch;
        if (!json_is_string(a) || !arch_from_name(json_string_value(a), &arch)) {
            if (problem(w, field, "unknown architecture") < 0)
                return -1;
            continue;
        }
        int rc = seccomp_arch_add(ctx, arch);
        if (rc < 0 && rc != -EEXIST)
            return hks_fail(w->err, -rc, "seccomp_arch_add %s", json_string_value(a));
    }
    /* Docker's archMap: sub-architectures of the native one. */
    json_t *map = json_object_get(root, "archMap");
    json_t *entry;
    json_array_foreach(map, i, entry)
    {
        uint32_t arch;
        json_t *name = json_object_get(entry, "architecture");
        if (!json_is_string(name) || !arch_from_name(json_string_value(name), &arch) ||
            arch != seccomp_arch_native())
            continue;
        size_t j;
        json_t *sub;
        json_array_foreach(json_object_get(entry, "subArchitectures"), j, sub)
        {
            uint32_t sub_arch;
            if (json_is_string(sub) && arch_from_name(json_string_value(sub), &sub_arch)) {
                int rc = seccomp_arch_add(ctx, sub_arch);
                if (rc < 0 && rc != -EEXIST)
                    return hks_fail(w->err, -rc, "seccomp_arch_add %s", json_string_value(sub));
            }
        }
    }
    return 0;
}

static int parse_args(json_t *args, const char *field, profile_walk *w, struct scmp_arg_cmp *cmp,
                      unsigned *n_cmp)
{
    *n_cmp = 0;
    if (!args || json_is_null(args))
        return 0;
    if (!json_is_array(args))
        return problem(w, field, "args must be an array");
    if (json_array_size(args) > 6)
        return problem(w, field, "more than 6 argument conditions");
    unsigned seen = 0;
    size_t i;
    json_t *arg;
    json_array_foreach(args, i, arg)
    {
        char f[128];
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        uint64_t index = 0, value = 0, value_two = 0;
        enum scmp_compare op;
        json_t *op_name = json_object_get(arg, "op");
        if (!json_get_u64(json_object_get(arg, "index"), &index) || index > 5)
            return problem(w, f, "index must be an integer 0..5");
        if (!json_get_u64(json_object_get(arg, "value"), &value))
            return problem(w, f, "value must be a non-negative integer");
        json_t *two = json_object_get(arg, "valueTwo");
        if (two && !json_get_u64(two, &value_two))
            return problem(w, f, "valueTwo must be a non-negative integer");
        if (!json_is_string(op_name) || !op_from_name(json_string_value(op_name), &op))
            return problem(w, f, "op must be one of SCMP_CMP_NE/LT/LE/EQ/GE/GT/MASKED_EQ");
        if (seen & (1u << index))
            /* libseccomp ANDs conditions, and two on one argument cannot both hold for
             * "!=" lists: Docker splits such rules (moby/profiles dec315c). */
            return problem(w, f, "a second condition on argument %u in one rule", (unsigned)index);
        seen |= 1u << index;
        cmp[*n_cmp] = (struct scmp_arg_cmp){
            .arg = (unsigned)index, .op = op, .datum_a = value, .datum_b = value_two};
        (*n_cmp)++;
    }
    return 0;
}

static int add_rule(scmp_filter_ctx ctx, json_t *rule, size_t index, uint32_t default_action,
                    uint32_t default_errno, profile_walk *w)
{
    char field[64];
    snprintf(field, sizeof(field), "syscalls[%zu]", index);
    if (!json_is_object(rule))
        return problem(w, field, "must be an object");

    uint64_t errno_ret = default_errno;
    json_t *errno_json = json_object_get(rule, "errnoRet");
    if (errno_json && (!json_get_u64(errno_json, &errno_ret) || errno_ret > 4095))
        return problem(w, field, "errnoRet must be an integer 0..4095");
    json_t *action_json = json_object_get(rule, "action");
    uint32_t action;
    if (!json_is_string(action_json) ||
        !action_from_name(json_string_value(action_json), (uint32_t)errno_ret, &action))
        return problem(w, field,
                       "action %s is not supported (ALLOW, ERRNO, KILL, KILL_PROCESS, TRAP, LOG)",
                       json_is_string(action_json) ? json_string_value(action_json) : "(missing)");

    char args_field[96];
    snprintf(args_field, sizeof(args_field), "%s.args", field);
    struct scmp_arg_cmp cmp[6];
    unsigned n_cmp = 0;
    int problems_before = w->problems;
    if (parse_args(json_object_get(rule, "args"), args_field, w, cmp, &n_cmp) < 0)
        return -1;
    if (w->problems != problems_before)
        return 0;

    json_t *names = json_object_get(rule, "names");
    json_t *single = json_object_get(rule, "name");
    if (!names && json_is_string(single)) {
        names = json_array();
        json_array_append(names, single);
    } else {
        json_incref(names);
    }
    if (!json_is_array(names) || json_array_size(names) == 0) {
        json_decref(names);
        return problem(w, field, "names must be a non-empty array of syscall names");
    }
    bool applies = rule_applies(rule, w, field);
    size_t i;
    json_t *name;
    int rc = 0;
    json_array_foreach(names, i, name)
    {
        char f[96];
        snprintf(f, sizeof(f), "%s.names[%zu]", field, i);
        if (!json_is_string(name)) {
            rc = problem(w, f, "must be a string");
            if (rc < 0)
                break;
            continue;
        }
        int nr = seccomp_syscall_resolve_name(json_string_value(name));
        if (nr == __NR_SCMP_ERROR) {
            /* Not allowing an unknown syscall is safe; refusing one we cannot name is not. */
            if (!w->report && action == SCMP_ACT_ALLOW && default_action != SCMP_ACT_ALLOW)
                continue;
            rc = problem(w, f, "unknown syscall \"%s\"", json_string_value(name));
            if (rc < 0)
                break;
            continue;
        }
        if (!applies)
            continue;
        int added = seccomp_rule_add_array(ctx, action, nr, n_cmp, cmp);
        if (added == -EACCES)
            continue; /* same as the default action: nothing to add */
        if (added < 0) {
            rc = problem(w, f, "libseccomp refused the rule for '%s': %s", json_string_value(name),
                         strerror(-added));
            if (rc < 0)
                break;
        }
    }
    json_decref(names);
    return rc;
}

static unsigned parse_flags(json_t *root, profile_walk *w)
{
    unsigned flags = 0;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(root, "flags"), i, f)
    {
        const char *name = json_is_string(f) ? json_string_value(f) : "";
        if (strcmp(name, "SECCOMP_FILTER_FLAG_LOG") == 0)
            flags |= SECCOMP_FILTER_FLAG_LOG;
        else if (strcmp(name, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
            flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
        else if (strcmp(name, "SECCOMP_FILTER_FLAG_TSYNC") != 0) {
            char field[32];
            snprintf(field, sizeof(field), "flags[%zu]", i);
            problem(w, field, "unsupported flag '%s'", name);
        }
    }
    return flags;
}

static void release_ctx(scmp_filter_ctx *ctx)
{
    if (*ctx)
        seccomp_release(*ctx);
}

static int export_bpf(scmp_filter_ctx ctx, sbx_profile *profile, hks_error *err)
{
    cleanup_fd int fd = memfd_create("hks-seccomp-bpf", MFD_CLOEXEC);
    if (fd < 0)
        return hks_fail(err, errno, "memfd_create for the seccomp program");
    int rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0)
        return hks_fail(err, -rc, "seccomp_export_bpf");
    off_t size = lseek(fd, 0, SEEK_END);
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
        size > (off_t)(BPF_MAXINSNS * sizeof(struct sock_filter)))
        return hks_fail(err, 0, "seccomp program of %lld bytes is not a valid BPF program",
                        (long long)size);
    profile->insns = malloc((size_t)size);
    if (!profile->insns)
        return hks_fail(err, ENOMEM, "seccomp program");
    if (pread(fd, profile->insns, (size_t)size, 0) != size)
        return hks_fail(err, errno, "read back the seccomp program");
    profile->n_insns = (size_t)size / sizeof(struct sock_filter);
    return 0;
}

static int compile(json_t *root, bool allow_inet, profile_walk *w, sbx_profile *profile)
{
    if (!json_is_object(root))
        return problem(w, "(root)", "must be a JSON object");
    uint64_t default_errno = EPERM;
    json_t *de = json_object_get(root, "defaultErrnoRet");
    if (de && (!json_get_u64(de, &default_errno) || default_errno > 4095))
        return problem(w, "defaultErrnoRet", "must be an integer 0..4095");
    json_t *da = json_object_get(root, "defaultAction");
    uint32_t default_action;
    if (!json_is_string(da) ||
        !action_from_name(json_string_value(da), (uint32_t)default_errno, &default_action))
        return problem(w, "defaultAction", "missing or unsupported action");
    __attribute__((cleanup(release_ctx))) scmp_filter_ctx ctx = seccomp_init(default_action);
    if (!ctx)
        return hks_fail(w->err, ENOMEM, "seccomp_init");
    /* i386 (int 0x80) and x32 calls on an x86_64 filter kill the whole process. */
    seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (add_arches(ctx, root, w) < 0)
        return -1;
    profile->flags = parse_flags(root, w);

    json_t *rules = json_object_get(root, "syscalls");
    if (rules && !json_is_array(rules))
        return problem(w, "syscalls", "must be an array");
    if (json_array_size(rules) > PROFILE_MAX_RULES)
        return problem(w, "syscalls", "more than %u rules", PROFILE_MAX_RULES);
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        if (add_rule(ctx, rule, i, default_action, (uint32_t)default_errno, w) < 0)
            return -1;
    }
    if (allow_inet) {
        static const int families[] = {AF_INET, AF_INET6};
        for (size_t f = 0; f < HKS_ARRAY_LEN(families); f++) {
            int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                                      SCMP_A0_64(SCMP_CMP_EQ, (uint64_t)families[f]));
            if (rc < 0 && rc != -EACCES)
                return hks_fail(w->err, -rc, "allow socket family %d", families[f]);
        }
    }
    if (w->problems)
        return 0;
    return export_bpf(ctx, profile, w->err);
}

static json_t *parse_json(const char *text, size_t len, profile_walk *w)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char field[64];
        snprintf(field, sizeof(field), "line %d column %d", jerr.line, jerr.column);
        problem(w, field, "invalid JSON: %s", jerr.text);
    }
    return root;
}

int sbx_profile_load_text(const char *text, size_t len, const char *label, bool allow_inet,
                          sbx_profile **out, hks_error *err)
{
    profile_walk w = {.label = label, .err = err};
    json_t *root = parse_json(text, len, &w);
    if (!root)
        return -1;
    sbx_profile *profile = calloc(1, sizeof(*profile));
    if (!profile) {
        json_decref(root);
        return hks_fail(err, ENOMEM, "seccomp profile");
    }
    int rc = compile(root, allow_inet, &w, profile);
    json_decref(root);
    if (rc < 0) {
        sbx_profile_free(profile);
        return -1;
    }
    *out = profile;
    return 0;
}

int sbx_profile_read_file(const char *path, char **text, size_t *len, hks_error *err)
{
    cleanup_file FILE *f = fopen(path, "re");
    if (!f)
        return hks_fail(err, errno, "open seccomp profile %s", path);
    cleanup_free char *buf = malloc(PROFILE_MAX_BYTES + 1);
    if (!buf)
        return hks_fail(err, ENOMEM, "seccomp profile %s", path);
    size_t n = fread(buf, 1, PROFILE_MAX_BYTES + 1, f);
    if (ferror(f))
        return hks_fail(err, errno, "read seccomp profile %s", path);
    if (n > PROFILE_MAX_BYTES)
        return hks_fail(err, 0, "seccomp profile %s is larger than %u bytes", path,
                        PROFILE_MAX_BYTES);
    *len = n;
    *text = steal_pointer(&buf);
    return 0;
}

int sbx_profile_load(const char *path, bool allow_inet, sbx_profile **out, hks_error *err)
{
    cleanup_free char *text = NULL;
    size_t len = 0;
    if (sbx_profile_read_file(path, &text, &len, err) < 0)
        return -1;
    return sbx_profile_load_text(text, len, path, allow_inet, out, err);
}

int sbx_profile_check(const char *path, FILE *report, hks_error *err)
{
    cleanup_free char *text = NULL;
    size_t len = 0;
    if (sbx_profile_read_file(path, &text, &len, err) < 0)
        return -1;
    profile_walk w = {.label = path, .report = report, .err = err};
    json_t *root = parse_json(text, len, &w);
    if (!root)
        return w.problems;
    sbx_profile profile = {0};
    json_t *da = json_object_get(root, "defaultAction");
    if (json_is_string(da) && strcmp(json_string_value(da), "SCMP_ACT_ALLOW") == 0)
        problem(&w, "defaultAction",
                "SCMP_ACT_ALLOW makes the profile a denylist; use an allowlist");
    /* i386 multiplexes socket calls through socketcall(), whose arguments BPF cannot read, so
     * argument filters stop holding (moby/profiles 3c28324); x32 shares the x86_64 audit arch. */
    size_t i;
    json_t *arch;
    json_array_foreach(json_object_get(root, "architectures"), i, arch)
    {
        const char *name = json_string_value(arch);
        if (name && (strcmp(name, "SCMP_ARCH_X86") == 0 || strcmp(name, "SCMP_ARCH_X32") == 0)) {
            char field[48];
            snprintf(field, sizeof(field), "architectures[%zu]", i);
            problem(&w, field,
                    "%s lets 32-bit system calls through argument filters instead of "
                    "killing them",
                    name);
        }
    }
    if (json_array_size(json_object_get(root, "archMap")) > 0)
        problem(&w, "archMap",
                "sub-architectures let 32-bit system calls in; list only the "
                "native architecture in \"architectures\"");
    int rc = compile(root, false, &w, &profile);
    json_decref(root);
    free(profile.insns);
    if (rc < 0 && w.problems == 0) {
        fprintf(report, "%s: %s\n", path, err->msg);
        return 1;
    }
    return w.problems;
}

void sbx_profile_free(sbx_profile *profile)
{
    if (!profile)
        return;
    free(profile->insns);
    free(profile);
}

size_t sbx_profile_insns(const sbx_profile *profile)
{
    return profile->n_insns;
}

int sbx_profile_install(const sbx_profile *profile)
{
    struct sock_fprog prog = {.len = (unsigned short)profile->n_insns, .filter = profile->insns};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, profile->flags, &prog);
}
