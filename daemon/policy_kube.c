/* The Kubernetes side of `hksd policy`: YAML and the Kubernetes schemas (the npm package
 * kubernetes-models) live in node, so the checks and comparisons of policies/kubernetes/ run in
 * tools/policy/kubernetes.mjs, and this file only finds and runs it. */
#include "policy.h"

#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

#define TOOL_DIR     "tools/policy"
#define TOOL_SCRIPT  TOOL_DIR "/kubernetes.mjs"
#define TOOL_MODULES TOOL_DIR "/node_modules/kubernetes-models/package.json"

/* node on PATH, or HKSD_NODE. */
static int find_node(char *out, size_t size, hks_error *err)
{
    const char *configured = getenv("HKSD_NODE");
    if (configured && *configured) {
        if (access(configured, X_OK) != 0)
            return hks_fail(err, errno, "HKSD_NODE=%s is not an executable", configured);
        snprintf(out, size, "%s", configured);
        return 0;
    }
    const char *path = getenv("PATH");
    char *dirs = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
    if (!dirs)
        return hks_fail(err, ENOMEM, "PATH");
    char *save = NULL;
    bool found = false;
    for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, size, "%s/node", d);
        found = access(out, X_OK) == 0;
    }
    free(dirs);
    if (found)
        return 0;
    return hks_fail(err, 0,
                    "node is not installed (the Kubernetes files are validated with the npm "
                    "package kubernetes-models: install nodejs, then run `make policy-deps`)");
}

int policy_kubernetes_run(const char *root, const char *const *args, FILE *out, hks_error *err)
{
    char node[PATH_MAX], script[PATH_MAX + 32], modules[PATH_MAX + 64];
    if (find_node(node, sizeof(node), err) < 0)
        return -1;
    snprintf(script, sizeof(script), "%s/" TOOL_SCRIPT, root);
    snprintf(modules, sizeof(modules), "%s/" TOOL_MODULES, root);
    if (access(script, R_OK) != 0)
        return hks_fail(err, errno, "the validator %s is missing", script);
    if (access(modules, R_OK) != 0)
        return hks_fail(err, 0,
                        "%s/" TOOL_DIR "/node_modules has no kubernetes-models: run `make "
                        "policy-deps` (npm ci)",
                        root);
    size_t n = 0;
    while (args[n])
        n++;
    char **argv = calloc(n + 3, sizeof(*argv));
    if (!argv)
        return hks_fail(err, ENOMEM, "node arguments");
    argv[0] = node;
    argv[1] = script;
    for (size_t i = 0; i < n; i++)
        argv[i + 2] = (char *)args[i];
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        free(argv);
        return hks_fail(err, errno, "pipe for node");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, node, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    free(argv);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        return hks_fail(err, rc, "run %s", node);
    }
    char buf[8192];
    ssize_t got;
    while ((got = read(pipefd[0], buf, sizeof(buf))) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        fwrite(buf, 1, (size_t)got, out);
    }
    close(pipefd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return hks_fail(err, errno, "wait for node");
    }
    if (!WIFEXITED(status))
        return hks_fail(err, 0, "%s %s was killed by signal %d", node, script, WTERMSIG(status));
    return WEXITSTATUS(status);
}
