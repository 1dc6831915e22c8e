/* libFuzzer target: the policy tools' readers of seccomp profiles and of the syscall groups file
 * (a pull request's files are outside input). Any JSON must be tabled, checked and compared
 * without a crash or a leak. */
#include "daemon/policy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static FILE *sink(void)
{
    static FILE *null;
    if (!null)
        null = fopen("/dev/null", "we");
    return null;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    json_t *input = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!input)
        return 0;
    static const policy_view sandbox = {.capabilities = NULL, .arch = "amd64"};
    json_t *caps = json_pack("[s]", "CAP_SYS_CHROOT");
    policy_view docker = {.capabilities = caps, .arch = "amd64"};
    json_t *fixed = json_pack("{s:s,s:[{s:[s,s],s:s}]}", "defaultAction", "SCMP_ACT_ERRNO",
                              "syscalls", "names", "read", "ptrace", "action", "SCMP_ACT_ALLOW");
    json_t *table = policy_seccomp_table(input, &sandbox);
    json_t *docker_table = policy_seccomp_table(input, &docker);
    json_t *fixed_table = policy_seccomp_table(fixed, &sandbox);
    policy_diff_counts counts = {0};
    if (table && docker_table && fixed_table) {
        policy_diff_seccomp(fixed_table, table, "fuzz", sink(), &counts);
        policy_diff_seccomp(table, docker_table, "fuzz", sink(), &counts);
    }
    policy_check_seccomp_json(input, "fuzz", sink());
    policy_check_groups(input, "groups", fixed, "fixed", sink());
    policy_check_groups(json_object_get(input, "groups") ? input : fixed, "groups", input, "fuzz",
                        sink());
    json_decref(fixed_table);
    json_decref(docker_table);
    json_decref(table);
    json_decref(fixed);
    json_decref(caps);
    json_decref(input);
    return 0;
}
