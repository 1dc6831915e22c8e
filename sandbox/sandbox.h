/* hks sandbox: runs one untrusted program in new namespaces, a minimal read-only root, dropped
 * capabilities, a seccomp allowlist and its own cgroup, and reports what happened to it.
 *
 * Threads: sbx_run_start forks. Call it only from a single-threaded process (hks-sandbox, or the
 * spawner that hksd forks before it starts any thread). */
#ifndef HKS_SANDBOX_H
#define HKS_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "../common/common.h"

/* ---- seccomp profiles (OCI / Docker JSON), compiled once to BPF ---- */

typedef struct sbx_profile sbx_profile;

/* Compile the OCI seccomp profile at path. With allow_inet, socket(AF_INET/AF_INET6) is added to
 * what the profile allows. */
int sbx_profile_load(const char *path, bool allow_inet, sbx_profile **out, hks_error *err);
/* The same from a JSON text already in memory (label names it in messages). */
int sbx_profile_load_text(const char *text, size_t len, const char *label, bool allow_inet,
                          sbx_profile **out, hks_error *err);
/* The same through a cache of compiled programs in cache_dir (created 0700 if missing), keyed by
 * the SHA-256 of the profile text, allow_inet and the libseccomp version. A cache that is not
 * owned by the caller, is writable by others, or is damaged is ignored: the profile is compiled. */
int sbx_profile_load_cached(const char *path, bool allow_inet, const char *cache_dir,
                            sbx_profile **out, hks_error *err);
void sbx_profile_free(sbx_profile *profile);
/* Number of BPF instructions (for reports and tests). */
size_t sbx_profile_insns(const sbx_profile *profile);

/* Validate a profile: every problem (unknown syscall, bad action or operator, ...) becomes one
 * line "path: field: problem" on report. Returns the number of problems, or -1 if unreadable. */
int sbx_profile_check(const char *path, FILE *report, hks_error *err);

/* ---- configuration of one run ---- */

typedef struct sbx_mount {
    const char *source; /* host path */
    const char *target; /* absolute path inside */
    bool writable;
} sbx_mount;

typedef struct sbx_limits {
    uint64_t memory_bytes; /* cgroup memory limit, swap disabled */
    uint64_t pids;         /* cgroup pids limit */
    uint64_t cpu_millis;   /* CPU bandwidth in thousandths of a core (1000 = one core) */
    uint64_t wall_ms;      /* wall-clock limit */
    uint64_t cpu_ms;       /* CPU time limit of the whole sandbox */
    uint64_t tmpfs_bytes;  /* size of /tmp */
    uint64_t shm_bytes;    /* size of /dev/shm */
    uint64_t fsize_bytes;  /* RLIMIT_FSIZE */
    uint64_t nofile;       /* RLIMIT_NOFILE */
    uint64_t stdout_max;   /* bytes kept of stdout; more kills the sandbox (output_limit) */
    uint64_t stderr_max;   /* bytes kept of stderr */
} sbx_limits;

/* Where the program's output goes. */
typedef enum sbx_output_mode {
    SBX_OUTPUT_CAPTURE, /* kept in the result (up to the limits) */
    SBX_OUTPUT_FORWARD, /* written through to stdout_sink / stderr_sink (still counted) */
    SBX_OUTPUT_DIRECT,  /* stdout_sink / stderr_sink are the program's fds 1 and 2: nothing
                         * relayed or counted (a long-lived instance whose reader caps it) */
} sbx_output_mode;

typedef struct sbx_config {
    char *const *argv;       /* argv[0] is an absolute path inside the sandbox */
    char *const *env;        /* NULL-terminated "K=V"; a minimal default is used when NULL */
    const char *cwd;         /* inside; default /code if mounted, else /tmp */
    const char *hostname;    /* default "sandbox" */
    const sbx_mount *mounts; /* in addition to the runtime binds (/usr, /lib*, /bin, /sbin) */
    size_t n_mounts;
    const sbx_profile *profile; /* required */
    sbx_limits limits;
    bool network;              /* share the host network namespace (the profile then allows inet) */
    bool use_cgroup;           /* false only when running without cgroup delegation */
    const char *cgroup_parent; /* NULL: a child of the caller's own cgroup */
    uid_t host_uid;            /* host uid the sandbox user maps to (root only; else getuid()) */
    gid_t host_gid;
    int stdin_fd; /* -1: /dev/null */
    sbx_output_mode output;
    int stdout_sink, stderr_sink; /* for SBX_OUTPUT_FORWARD and SBX_OUTPUT_DIRECT */
    const int *pass_fds;          /* handed to the program as fds 3, 4, ... */
    size_t n_pass_fds;
} sbx_config;

/* Defaults of policies/limits.json, used when a caller sets nothing else. */
void sbx_limits_default(sbx_limits *limits);
void sbx_config_init(sbx_config *cfg);

/* ---- result ---- */

typedef enum sbx_status {
    SBX_STATUS_OK,             /* exited 0 */
    SBX_STATUS_ERROR,          /* exited non-zero, or died of a signal of its own */
    SBX_STATUS_TIMEOUT,        /* wall or CPU limit */
    SBX_STATUS_OOM,            /* killed by the memory cgroup */
    SBX_STATUS_OUTPUT_LIMIT,   /* stdout or stderr went past its limit */
    SBX_STATUS_KILLED,         /* killed on request (sbx_run_kill) */
    SBX_STATUS_INTERNAL_ERROR, /* the sandbox could not be set up */
} sbx_status;

typedef enum sbx_timeout_reason {
    SBX_TIMEOUT_NONE,
    SBX_TIMEOUT_WALL,
    SBX_TIMEOUT_CPU,
} sbx_timeout_reason;

typedef struct sbx_result {
    sbx_status status;
    bool exited; /* exit_code is valid */
    int exit_code;
    int signal; /* 0 when not killed by a signal */
    sbx_timeout_reason timeout_reason;
    uint64_t wall_us;
    uint64_t cpu_us;
    uint64_t peak_memory_bytes;
    bool oom_killed;
    bool stdout_truncated, stderr_truncated;
    char *stdout_data; /* SBX_OUTPUT_CAPTURE only; malloc'd, NUL-terminated */
    size_t stdout_len;
    char *stderr_data;
    size_t stderr_len;
    const char *cgroup_version; /* "v1", "v2" or "none" */
    char message[1024];         /* internal_error: what failed in setup */
} sbx_result;

const char *sbx_status_name(sbx_status status);
const char *sbx_timeout_reason_name(sbx_timeout_reason reason); /* NULL for none */
void sbx_result_release(sbx_result *result);
/* The result record: {"status", "exit_code", "signal", "timeout_reason", "wall_ms", "cpu_ms",
 * "peak_memory_bytes", "oom_killed", "stdout", "stderr", "stdout_truncated", "stderr_truncated",
 * "message", "cgroup"}; output bytes that are not UTF-8 are replaced by U+FFFD. */
json_t *sbx_result_to_json(const sbx_result *result);
/* The reverse, for a record received from the spawner (whose output travels separately):
 * stdout/stderr are left empty. Returns -1 when the record is malformed. */
int sbx_result_from_json(json_t *record, sbx_result *result);
/* Exit status a command-line tool reports for this result: the program's code, 128+signal, 125. */
int sbx_result_exit_status(const sbx_result *result);

/* ---- running ---- */

typedef struct sbx_run sbx_run;

/* Create the sandbox and start the program. On success *out owns the sandbox until
 * sbx_run_finish. A setup failure inside the sandbox is not an error here: it is reported by
 * sbx_run_finish as status internal_error with the message. */
int sbx_run_start(const sbx_config *cfg, sbx_run **out, hks_error *err);
/* A pollable fd (an epoll set) that becomes readable when sbx_run_step has work to do. */
int sbx_run_fd(const sbx_run *run);
pid_t sbx_run_pid(const sbx_run *run);
/* Handle whatever is ready, waiting at most timeout_ms (-1: until something happens). Returns 1
 * when the result is ready (the program has ended), 0 when not yet; once sbx_run_result was
 * called, 1 when the teardown is complete too. */
int sbx_run_step(sbx_run *run, int timeout_ms);
/* The program's result, as soon as it is known (waits for it if needed). The namespaces' teardown
 * may still be going on: keep stepping until sbx_run_drained, then sbx_run_free. */
void sbx_run_result(sbx_run *run, sbx_result *result);
bool sbx_run_drained(const sbx_run *run);
/* Wait for the teardown, remove the cgroup, release everything. */
int sbx_run_free(sbx_run *run, hks_error *err);
/* The same, but the cgroup is removed by a child process (for a caller serving many sandboxes,
 * which must not wait for a slow rmdir). Returns that child's pid, for the caller to reap, or 0
 * when nothing was left to remove. */
pid_t sbx_run_dispose(sbx_run *run);
/* Start the clock again with new limits (memory, pids, CPU bandwidth, wall and CPU time, output
 * caps): for a sandbox started ahead of time that is now given its real work. Wall and CPU time
 * in the result count from here. Files, rlimits and tmpfs sizes stay as created. */
int sbx_run_rearm(sbx_run *run, const sbx_limits *limits, hks_error *err);
/* Kill the whole sandbox now; the result says killed. */
void sbx_run_kill(sbx_run *run);
/* sbx_run_result then sbx_run_free: the result, with every resource (processes, cgroup)
 * released. */
void sbx_run_finish(sbx_run *run, sbx_result *result);

/* Start, wait and finish in one call. */
int sbx_run_once(const sbx_config *cfg, sbx_result *result, hks_error *err);

/* ---- the spawner: a single-threaded process that creates sandboxes for a threaded caller ----
 *
 * Messages are JSON objects, one per SOCK_SEQPACKET datagram (at most SBX_MSG_MAX bytes), with
 * fds attached by SCM_RIGHTS:
 *   -> {"op":"load_profile","id":N,"name":S,"path":P}        <- {"op":"loaded","id":N,"insns":I}
 *   -> {"op":"run","id":N,"profile":S,"argv":[..],"env":[..],"cwd":S,"hostname":S,
 *       "mounts":[{"source":S,"target":S,"writable":B}],"limits":{<sbx_limits names>},
 *       "network":B,"stdin":B,"output":"direct","pass_fds":K}
 *                                             fds: [stdin if "stdin"] + [stdout, stderr if
 *                                             "output" is "direct"] + K fds handed over
 *                                             <- {"op":"started","id":N,"pid":P}
 *                                             <- {"op":"result","id":N,"result":{record}}
 *                                                fds: [stdout memfd, stderr memfd]; the record's
 *                                                "stdout"/"stderr" are left out
 *   -> {"op":"kill","id":N}                   (the run's result then says "killed")
 *   -> {"op":"arm","id":N,"limits":{..}[,"reply":true][,"send":S]}
 *                                             <- {"op":"armed","id":N}: new limits and a fresh
 *                                                clock for a sandbox started ahead of time.
 *      fds: [reply channel if "reply"] + [fd to write S to, once armed, if "send"]: the run's
 *      "armed", errors and result then go to the reply channel instead of this socket, and S
 *      (e.g. the launcher's "go") leaves only once the limits are in place
 *   <- {"op":"error","id":N,"message":S}       for a request that could not be carried out
 * Closing the socket kills every sandbox, removes their cgroups and ends the spawner. */

#define SBX_MSG_MAX     (64 * 1024)
#define SBX_MSG_MAX_FDS 16

typedef struct sbx_spawner sbx_spawner;

/* Fork the spawner (call before starting any thread). */
int sbx_spawner_start(sbx_spawner **out, hks_error *err);
int sbx_spawner_fd(const sbx_spawner *spawner);
pid_t sbx_spawner_pid(const sbx_spawner *spawner);
/* Replace a spawner that is gone (or kill it first) with a new one, started by executing
 * `EXE spawner --fd 3` (safe from a threaded process, unlike the fork of sbx_spawner_start; EXE
 * must serve that command, see sbx_spawner_cli). The socket keeps its fd number: threads sending
 * on it reach the new spawner. Sandboxes of the old one died with it (parent-death signal); the
 * new one sweeps their cgroups when it starts. */
int sbx_spawner_respawn(sbx_spawner *spawner, const char *exe, hks_error *err);
/* `spawner --fd N`: serve as a spawner on the inherited socket N (argv[0] is "spawner"). */
int sbx_spawner_cli(int argc, char **argv);
/* Close the socket, wait for the spawner to clean up and exit. Returns its exit status. */
int sbx_spawner_stop(sbx_spawner *spawner);
/* Serve requests on sock until it closes; returns the process exit status. */
int sbx_spawner_serve(int sock);

/* Send one message with fds / receive one (caller owns *msg and the received fds). */
int sbx_msg_send(int sock, json_t *msg, const int *fds, size_t n_fds, hks_error *err);
int sbx_msg_recv(int sock, json_t **msg, int *fds, size_t *n_fds, hks_error *err);

/* Remove cgroups that earlier sandboxes of this host left behind (after a crash). Returns how
 * many were removed. */
int sbx_cgroup_sweep(const char *cgroup_parent, hks_error *err);

#endif
