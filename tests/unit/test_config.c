/* hksd's configuration: the shipped limits policy, refused policies, limits of requests resolved
 * against it, the config file, environment overrides and the printed configuration. */
#include "tests/unit/helpers.h"

#include "daemon/config.h"

#include <fcntl.h>
#include <sys/stat.h>

/* ---- files ---- */

static char tmp_dir[PATH_MAX];

static int make_tmp_dir(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/hks-test-config-XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int remove_tmp_dir(void **state)
{
    (void)state;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/file.json", tmp_dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/dir", tmp_dir);
    rmdir(path);
    return rmdir(tmp_dir);
}

/* text written to <tmp>/file.json, whose path is returned */
static const char *write_file(const char *text)
{
    static char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/file.json", tmp_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *write_json(json_t *json)
{
    char *text = json_dumps(json, JSON_INDENT(2));
    assert_non_null(text);
    const char *path = write_file(text);
    free(text);
    return path;
}

static void shipped_policy_path(char *out, size_t size)
{
    test_path(out, size, "policies/limits.json");
}

/* the shipped policy as JSON, for tests to spoil */
static json_t *shipped_policy(void)
{
    char path[PATH_MAX];
    shipped_policy_path(path, sizeof(path));
    json_error_t jerr;
    json_t *policy = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(policy);
    return policy;
}

static hksd_policy_limits shipped_limits(void)
{
    char path[PATH_MAX];
    shipped_policy_path(path, sizeof(path));
    hksd_policy_limits policy;
    hks_error err = {0};
    if (hksd_policy_limits_load(path, &policy, &err) < 0)
        fail_msg("%s", err.msg);
    return policy;
}

static void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("'%s' does not contain '%s'", text, part);
}

/* ---- the limits policy ---- */

static void shipped_policy_loads_with_the_sandbox_defaults(void **state)
{
    (void)state;
    hksd_policy_limits policy = shipped_limits();
    sbx_limits def;
    sbx_limits_default(&def);
    assert_memory_equal(&policy.defaults, &def, sizeof(def));

    const sbx_limits *max = &policy.maxima;
    assert_int_equal(max->memory_bytes, 2048ULL << 20);
    assert_int_equal(max->pids, 512);
    assert_int_equal(max->cpu_millis, 2000);
    assert_int_equal(max->wall_ms, 300000);
    assert_int_equal(max->cpu_ms, 300000);
    assert_int_equal(max->tmpfs_bytes, 512ULL << 20);
    assert_int_equal(max->fsize_bytes, 256ULL << 20);
    assert_int_equal(max->nofile, 4096);
    assert_int_equal(max->stdout_max, 16ULL << 20);
    assert_int_equal(max->stderr_max, 16ULL << 20);
    assert_int_equal(max->shm_bytes, def.shm_bytes); /* not in the policy */

    assert_int_equal(policy.ttl_default_s, 3600);
    assert_int_equal(policy.ttl_max_s, 86400);
    assert_int_equal(policy.max_files, 256);
    assert_int_equal(policy.max_file_bytes, 8ULL << 20);
    assert_int_equal(policy.max_total_bytes, 16ULL << 20);
    assert_int_equal(policy.max_stdin_bytes, 1ULL << 20);
}

/* path is refused, and the message names it and says what */
static void assert_policy_file_refused(const char *path, const char *expected)
{
    hksd_policy_limits policy;
    memset(&policy, 0x5a, sizeof(policy));
    hksd_policy_limits untouched = policy;
    hks_error err = {0};
    assert_int_equal(hksd_policy_limits_load(path, &policy, &err), -1);
    assert_contains(err.msg, path);
    assert_contains(err.msg, expected);
    assert_memory_equal(&policy, &untouched, sizeof(policy));
}

static void assert_policy_refused(json_t *policy, const char *expected)
{
    assert_policy_file_refused(write_json(policy), expected);
    json_decref(policy);
}

static void set_in(json_t *policy, const char *section, const char *key, json_t *value)
{
    assert_int_equal(json_object_set_new(json_object_get(policy, section), key, value), 0);
}

static void spoiled_policies_are_refused(void **state)
{
    (void)state;
    json_t *p;

    /* the shipped text copied loads (the helpers themselves are sound) */
    p = shipped_policy();
    hksd_policy_limits ok;
    hks_error err = {0};
    assert_int_equal(hksd_policy_limits_load(write_json(p), &ok, &err), 0);
    json_decref(p);

    p = shipped_policy();
    set_in(p, "defaults", "swap_mb", json_integer(1));
    assert_policy_refused(p, ": defaults.swap_mb: unknown key");

    p = shipped_policy();
    json_object_set_new(p, "minima", json_object());
    assert_policy_refused(p, ": minima: unknown key");

    p = shipped_policy();
    set_in(p, "defaults", "memory_mb", json_integer(4096));
    assert_policy_refused(p, ": defaults.memory_mb: 4096 is above maxima.memory_mb 2048");

    p = shipped_policy();
    set_in(p, "defaults", "cpus", json_real(2.5));
    assert_policy_refused(p, ": defaults.cpus: 2.5 is above maxima.cpus 2");

    p = shipped_policy();
    set_in(p, "maxima", "pids", json_integer(-1));
    assert_policy_refused(p, ": maxima.pids: -1 is not positive");

    p = shipped_policy();
    set_in(p, "defaults", "wall_ms", json_integer(0));
    assert_policy_refused(p, ": defaults.wall_ms: 0 is not positive");

    p = shipped_policy();
    set_in(p, "maxima", "nofile", json_string("4096"));
    assert_policy_refused(p, ": maxima.nofile: must be a positive integer");

    p = shipped_policy();
    set_in(p, "maxima", "memory_mb", json_real(1e30));
    assert_policy_refused(p, ": maxima.memory_mb: must be a positive integer");

    p = shipped_policy();
    set_in(p, "maxima", "cpus", json_real(1e30));
    assert_policy_refused(p, ": maxima.cpus: 1e+30 is above the hard cap 1024");

    p = shipped_policy();
    set_in(p, "maxima", "memory_mb", json_integer(1LL << 40));
    assert_policy_refused(p, ": maxima.memory_mb: 1099511627776 is above the hard cap 1048576");

    p = shipped_policy();
    set_in(p, "defaults", "cpus", json_real(0.0001));
    assert_policy_refused(p, ": defaults.cpus: 0.0001 is below the minimum 0.001");

    p = shipped_policy();
    set_in(p, "defaults", "cpus", json_true());
    assert_policy_refused(p, ": defaults.cpus: must be a number of cores");

    p = shipped_policy();
    json_object_del(json_object_get(p, "defaults"), "nofile");
    assert_policy_refused(p, ": defaults.nofile: missing");

    p = shipped_policy();
    json_object_del(p, "execute");
    assert_policy_refused(p, ": execute: missing");

    p = shipped_policy();
    json_object_set_new(p, "maxima", json_array());
    assert_policy_refused(p, ": maxima: must be an object");

    p = shipped_policy();
    set_in(p, "ttl_seconds", "default", json_integer(100000));
    assert_policy_refused(p, ": ttl_seconds.default: 100000 is above ttl_seconds.maximum 86400");

    p = shipped_policy();
    json_object_del(json_object_get(p, "ttl_seconds"), "maximum");
    assert_policy_refused(p, ": ttl_seconds.maximum: missing");

    p = shipped_policy();
    set_in(p, "execute", "max_file_bytes", json_integer(32 << 20));
    assert_policy_refused(p, ": execute.max_file_bytes: 33554432 is above execute.max_total_bytes");

    p = shipped_policy();
    set_in(p, "execute", "max_files", json_real(1.0));
    assert_policy_refused(p, ": execute.max_files: must be a positive integer");

    p = shipped_policy();
    set_in(p, "execute", "max_tar_bytes", json_integer(1));
    assert_policy_refused(p, ": execute.max_tar_bytes: unknown key");

    p = shipped_policy();
    json_object_set_new(p, "_comment", json_integer(1));
    assert_policy_refused(p, ": _comment: must be a string");

    p = shipped_policy();
    assert_int_equal(
        json_object_setn_new(json_object_get(p, "defaults"), "memory_mb\0x", 11, json_integer(1)),
        0);
    assert_policy_refused(p, ": line 13 column 22: NUL byte in object key not supported");

    /* texts jansson refuses: the line is named */
    assert_policy_file_refused(write_file("{\"defaults\": {\"memory_mb\": 1,\n"
                                          "  \"memory_mb\": 2}}"),
                               ": line 2 column 13: duplicate object key near '\"memory_mb\"'");
    assert_policy_file_refused(write_file("{\"defaults\": {\"memory_mb\": "
                                          "1000000000000000000000000000000}}"),
                               ": line 1 column 58: too big integer");
    assert_policy_file_refused(write_file("[]"), ": must be a JSON object");
    assert_policy_file_refused(write_file(""), ": line 1 column 0:");

    char missing[PATH_MAX + 32];
    snprintf(missing, sizeof(missing), "%s/nope.json", tmp_dir);
    assert_policy_file_refused(missing, "No such file or directory");
    snprintf(missing, sizeof(missing), "%s/dir", tmp_dir);
    assert_int_equal(mkdir(missing, 0700), 0);
    assert_policy_file_refused(missing, ": not a regular file");
}

static void oversized_files_are_refused(void **state)
{
    (void)state;
    size_t size = HKSD_CONFIG_FILE_MAX + 2;
    char *text = malloc(size);
    assert_non_null(text);
    memset(text, ' ', size - 1);
    text[0] = '{';
    text[size - 2] = '}';
    text[size - 1] = '\0';
    const char *path = write_file(text);
    free(text);
    assert_policy_file_refused(path, ": larger than 1048576 bytes");
    hksd_config cfg;
    hksd_config_defaults(&cfg, "/srv/hks");
    hks_error err = {0};
    assert_int_equal(hksd_config_load_file(&cfg, path, &err), -1);
    assert_contains(err.msg, ": larger than 1048576 bytes");
}

/* ---- resolving a request's limits ---- */

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *json = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!json)
        fail_msg("%s: %s", text, jerr.text);
    return json;
}

static void missing_limits_are_the_defaults(void **state)
{
    (void)state;
    hksd_policy_limits policy = shipped_limits();
    sbx_limits out;
    hks_error err = {0};
    assert_int_equal(hksd_policy_limits_resolve(&policy, NULL, &out, &err), 0);
    assert_memory_equal(&out, &policy.defaults, sizeof(out));

    json_t *json = json_null();
    assert_int_equal(hksd_policy_limits_resolve(&policy, json, &out, &err), 0);
    assert_memory_equal(&out, &policy.defaults, sizeof(out));
    json_decref(json);

    json = json_object();
    assert_int_equal(hksd_policy_limits_resolve(&policy, json, &out, &err), 0);
    assert_memory_equal(&out, &policy.defaults, sizeof(out));
    json_decref(json);
}

static void request_limits_override_the_defaults(void **state)
{
    (void)state;
    hksd_policy_limits policy = shipped_limits();
    sbx_limits def;
    sbx_limits_default(&def);
    json_t *req = parse("{\"memory_mb\": 512, \"cpus\": 1.5, \"wall_ms\": 2000, \"output_bytes\": "
                        "4096, \"tmpfs_mb\": 8}");
    sbx_limits out;
    hks_error err = {0};
    assert_int_equal(hksd_policy_limits_resolve(&policy, req, &out, &err), 0);
    json_decref(req);
    assert_int_equal(out.memory_bytes, 512ULL << 20);
    assert_int_equal(out.cpu_millis, 1500);
    assert_int_equal(out.wall_ms, 2000);
    assert_int_equal(out.stdout_max, 4096);
    assert_int_equal(out.stderr_max, 4096);
    assert_int_equal(out.tmpfs_bytes, 8ULL << 20);
    /* the rest stays at the defaults */
    assert_int_equal(out.pids, def.pids);
    assert_int_equal(out.cpu_ms, def.cpu_ms);
    assert_int_equal(out.fsize_bytes, def.fsize_bytes);
    assert_int_equal(out.nofile, def.nofile);
    assert_int_equal(out.shm_bytes, def.shm_bytes);

    /* every maximum itself is allowed; lower than the default too */
    req =
        parse("{\"memory_mb\": 2048, \"pids\": 512, \"cpus\": 2, \"wall_ms\": 300000, \"cpu_ms\": "
              "1, \"tmpfs_mb\": 512, \"fsize_mb\": 256, \"nofile\": 4096, \"output_bytes\": "
              "16777216}");
    assert_int_equal(hksd_policy_limits_resolve(&policy, req, &out, &err), 0);
    json_decref(req);
    assert_int_equal(out.memory_bytes, policy.maxima.memory_bytes);
    assert_int_equal(out.pids, 512);
    assert_int_equal(out.cpu_millis, 2000);
    assert_int_equal(out.cpu_ms, 1);
    assert_int_equal(out.fsize_bytes, 256ULL << 20);
    assert_int_equal(out.stderr_max, 16ULL << 20);
}

static void assert_resolve_refused(const char *text, const char *expected)
{
    hksd_policy_limits policy = shipped_limits();
    json_t *req = parse(text);
    sbx_limits out;
    memset(&out, 0x5a, sizeof(out));
    sbx_limits untouched = out;
    hks_error err = {0};
    assert_int_equal(hksd_policy_limits_resolve(&policy, req, &out, &err), -1);
    json_decref(req);
    assert_string_equal(err.msg, expected);
    assert_memory_equal(&out, &untouched, sizeof(out));
}

static void bad_request_limits_are_refused(void **state)
{
    (void)state;
    /* above the maximum */
    assert_resolve_refused("{\"memory_mb\": 4096}",
                           "limits.memory_mb: 4096 is above the maximum 2048");
    assert_resolve_refused("{\"cpus\": 4}", "limits.cpus: 4 is above the maximum 2");
    assert_resolve_refused("{\"cpus\": 2.001}", "limits.cpus: 2.001 is above the maximum 2");
    assert_resolve_refused("{\"wall_ms\": 300001}",
                           "limits.wall_ms: 300001 is above the maximum 300000");
    assert_resolve_refused("{\"output_bytes\": 9223372036854775807}",
                           "limits.output_bytes: 9223372036854775807 is above the maximum "
                           "16777216");
    /* zero and negative */
    assert_resolve_refused("{\"pids\": 0}", "limits.pids: 0 is not positive");
    assert_resolve_refused("{\"nofile\": -3}", "limits.nofile: -3 is not positive");
    assert_resolve_refused("{\"cpus\": 0}", "limits.cpus: 0 is not positive");
    assert_resolve_refused("{\"cpus\": -0.5}", "limits.cpus: -0.5 is not positive");
    assert_resolve_refused("{\"cpus\": 0.0004}", "limits.cpus: 0.0004 is below the minimum 0.001");
    /* wrong types */
    assert_resolve_refused("{\"memory_mb\": \"512\"}", "limits.memory_mb: must be a positive "
                                                       "integer");
    assert_resolve_refused("{\"memory_mb\": 1.5}", "limits.memory_mb: must be a positive integer");
    assert_resolve_refused("{\"fsize_mb\": true}", "limits.fsize_mb: must be a positive integer");
    assert_resolve_refused("{\"tmpfs_mb\": null}", "limits.tmpfs_mb: must be a positive integer");
    assert_resolve_refused("{\"cpus\": \"1\"}", "limits.cpus: must be a number of cores");
    assert_resolve_refused("[1]", "limits: must be an object");
    assert_resolve_refused("\"big\"", "limits: must be an object");
    /* unknown keys, also names of sbx_limits that requests do not set */
    assert_resolve_refused("{\"swap_mb\": 1}",
                           "limits.swap_mb: unknown limit (known: memory_mb, pids, cpus, wall_ms, "
                           "cpu_ms, tmpfs_mb, fsize_mb, nofile, output_bytes)");
    assert_resolve_refused("{\"memory_mb\": 1, \"shm_bytes\": 1}",
                           "limits.shm_bytes: unknown limit (known: memory_mb, pids, cpus, "
                           "wall_ms, cpu_ms, tmpfs_mb, fsize_mb, nofile, output_bytes)");

    /* a key with a NUL byte (jansson objects built in code may have one) is not "memory_mb" */
    hksd_policy_limits policy = shipped_limits();
    json_t *req = json_object();
    assert_int_equal(json_object_setn_new(req, "memory_mb\0x", 11, json_integer(4096)), 0);
    sbx_limits out;
    hks_error err = {0};
    assert_int_equal(hksd_policy_limits_resolve(&policy, req, &out, &err), -1);
    assert_string_equal(err.msg, "limits: a key holds a NUL byte");
    json_decref(req);
}

/* ---- the daemon's settings ---- */

static void defaults_follow_the_root(void **state)
{
    (void)state;
    hksd_config cfg;
    hksd_config_defaults(&cfg, "/srv/hks/");
    assert_string_equal(cfg.listen_host, "127.0.0.1");
    assert_int_equal(cfg.listen_port, 8080);
    assert_string_equal(cfg.root, "/srv/hks/");
    assert_string_equal(cfg.state_dir, "/srv/hks/var/hksd");
    assert_string_equal(cfg.keys_dir, "/srv/hks/var/hksd/keys");
    assert_string_equal(cfg.policies_dir, "/srv/hks/policies");
    assert_string_equal(cfg.backend, "local");
    assert_int_equal(cfg.pool_python, 2);
    assert_int_equal(cfg.pool_node, 2);
    assert_string_equal(cfg.jwt_issuer, "hksd");
    assert_string_equal(cfg.jwt_audience, "hks-internal");
    assert_int_equal(cfg.jwt_leeway_s, 30);
    assert_int_equal(cfg.jwt_max_lifetime_s, 3600);
    assert_int_equal(cfg.max_body_bytes, 32 << 20);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(cfg.threads, cores < 1 ? 1 : cores > 4 ? 4 : cores);
    assert_int_equal(cfg.max_connections, 256);
    assert_int_equal(cfg.per_ip_connections, 64);
    assert_int_equal(cfg.connection_timeout_s, 120);
    assert_string_equal(cfg.log_level, "info");

    hksd_config_defaults(&cfg, "/usr");
    assert_string_equal(cfg.state_dir, "/var/lib/hksd");
    assert_string_equal(cfg.keys_dir, "/var/lib/hksd/keys");
    assert_string_equal(cfg.policies_dir, "/usr/policies");
    hksd_config_defaults(&cfg, "/usr/share/hks");
    assert_string_equal(cfg.state_dir, "/var/lib/hksd");
    assert_string_equal(cfg.policies_dir, "/usr/share/hks/policies");
    hksd_config_defaults(&cfg, "/usrx");
    assert_string_equal(cfg.state_dir, "/usrx/var/hksd");
    hksd_config_defaults(&cfg, NULL);
    assert_string_equal(cfg.root, ".");
    assert_string_equal(cfg.state_dir, "./var/hksd");
    assert_string_equal(cfg.policies_dir, "./policies");
    hksd_config_defaults(&cfg, "/");
    assert_string_equal(cfg.state_dir, "/var/hksd");
    assert_string_equal(cfg.policies_dir, "/policies");
}

static const char full_config[] =
    "{\n"
    "  \"_comment\": \"every setting\",\n"
    "  \"listen\": \"[::1]:9090\",\n"
    "  \"state_dir\": \"/var/lib/hks-test\",\n"
    "  \"root\": \"/opt/hks\",\n"
    "  \"policies_dir\": \"/etc/hks/policies\",\n"
    "  \"keys_dir\": \"/etc/hks/keys\",\n"
    "  \"backend\": \"kubernetes\",\n"
    "  \"pool\": {\"python\": 0, \"node\": 64},\n"
    "  \"jwt\": {\"issuer\": \"https://issuer.example\", \"audience\": \"hks\", \"leeway_s\": 0,\n"
    "          \"max_lifetime_s\": \"15m\"},\n"
    "  \"http\": {\"max_body_bytes\": \"8M\", \"threads\": 16, \"max_connections\": 1000,\n"
    "           \"per_ip_connections\": 1000, \"connection_timeout_s\": 30},\n"
    "  \"node\": {\"install_seccomp\": true, \"seccomp_dir\": \"/var/lib/k/seccomp/hks\"},\n"
    "  \"kubernetes\": {\"kubeconfig\": \"/etc/hks/kubeconfig\", \"context\": \"prod\",\n"
    "                 \"in_cluster\": true, \"namespace\": \"hks-{project}\",\n"
    "                 \"registry\": \"registry.example:5000\", \"repository_prefix\": \"fn\",\n"
    "                 \"registry_insecure\": true, \"registry_ca_file\": \"/etc/hks/ca.pem\",\n"
    "                 \"docker_config\": \"/etc/hks/docker.json\",\n"
    "                 \"base_layout_python\": \"/srv/base/python\",\n"
    "                 \"base_layout_node\": \"/srv/base/node\", \"ready_timeout_s\": \"5m\",\n"
    "                 \"reap_interval_s\": 3, \"request_timeout_s\": 7,\n"
    "                 \"kaniko_namespace\": \"builds\", \"kaniko_registry_secret\": \"push\",\n"
    "                 \"kaniko_executor\": \"mirror.example/kaniko@sha256:"
    "4e7a52dd1f14872430652bb3b027405b8dfd17c4538751c620ac005741ef9698\",\n"
    "                 \"kaniko_deadline_s\": \"20m\"},\n"
    "  \"log_level\": \"debug\"\n"
    "}\n";

static void a_full_config_file_sets_everything(void **state)
{
    (void)state;
    hksd_config cfg;
    hksd_config_defaults(&cfg, "/srv/hks");
    hks_error err = {0};
    if (hksd_config_load_file(&cfg, write_file(full_config), &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg.listen_host, "::1");
    assert_int_equal(cfg.listen_port, 9090);
    assert_string_equal(cfg.state_dir, "/var/lib/hks-test");
    assert_string_equal(cfg.root, "/opt/hks");
    assert_string_equal(cfg.policies_dir, "/etc/hks/policies");
    assert_string_equal(cfg.keys_dir, "/etc/hks/keys");
    assert_string_equal(cfg.backend, "kubernetes");
    assert_int_equal(cfg.pool_python, 0);
    assert_int_equal(cfg.pool_node, 64);
    assert_string_equal(cfg.jwt_issuer, "https://issuer.example");
    assert_string_equal(cfg.jwt_audience, "hks");
    assert_int_equal(cfg.jwt_leeway_s, 0);
    assert_int_equal(cfg.jwt_max_lifetime_s, 900);
    assert_int_equal(cfg.max_body_bytes, 8 << 20);
    assert_int_equal(cfg.threads, 16);
    assert_int_equal(cfg.max_connections, 1000);
    assert_int_equal(cfg.per_ip_connections, 1000);
    assert_int_equal(cfg.connection_timeout_s, 30);
    assert_true(cfg.node_install_seccomp);
    assert_string_equal(cfg.node_seccomp_dir, "/var/lib/k/seccomp/hks");
    assert_string_equal(cfg.kube_kubeconfig, "/etc/hks/kubeconfig");
    assert_string_equal(cfg.kube_context, "prod");
    assert_true(cfg.kube_in_cluster);
    assert_string_equal(cfg.kube_namespace, "hks-{project}");
    assert_string_equal(cfg.kube_registry, "registry.example:5000");
    assert_string_equal(cfg.kube_repository, "fn");
    assert_true(cfg.kube_registry_insecure);
    assert_string_equal(cfg.kube_registry_ca, "/etc/hks/ca.pem");
    assert_string_equal(cfg.kube_docker_config, "/etc/hks/docker.json");
    assert_string_equal(cfg.kube_base_python, "/srv/base/python");
    assert_string_equal(cfg.kube_base_node, "/srv/base/node");
    assert_int_equal(cfg.kube_ready_timeout_s, 300);
    assert_int_equal(cfg.kube_reap_interval_s, 3);
    assert_int_equal(cfg.kube_request_timeout_s, 7);
    assert_string_equal(cfg.kube_kaniko_namespace, "builds");
    assert_string_equal(cfg.kube_kaniko_secret, "push");
    assert_string_equal(cfg.kube_kaniko_executor,
                        "mirror.example/kaniko@sha256:"
                        "4e7a52dd1f14872430652bb3b027405b8dfd17c4538751c620ac005741ef9698");
    assert_int_equal(cfg.kube_kaniko_deadline_s, 1200);
    assert_string_equal(cfg.log_level, "debug");

    /* an empty object changes nothing */
    hksd_config before = cfg;
    assert_int_equal(hksd_config_load_file(&cfg, write_file("{}"), &err), 0);
    assert_memory_equal(&cfg, &before, sizeof(cfg));
}

static void derived_directories_move_with_their_base(void **state)
{
    (void)state;
    hksd_config cfg;
    hks_error err = {0};
    hksd_config_defaults(&cfg, "/srv/hks");
    assert_int_equal(
        hksd_config_load_file(&cfg, write_file("{\"state_dir\": \"/data/hksd/\"}"), &err), 0);
    assert_string_equal(cfg.state_dir, "/data/hksd/");
    assert_string_equal(cfg.keys_dir, "/data/hksd/keys");

    /* keys_dir set apart stays, whichever comes first */
    hksd_config_defaults(&cfg, "/srv/hks");
    assert_int_equal(hksd_config_load_file(&cfg,
                                           write_file("{\"keys_dir\": \"/k\", \"state_dir\": "
                                                      "\"/s\"}"),
                                           &err),
                     0);
    assert_string_equal(cfg.keys_dir, "/k");
    assert_string_equal(cfg.state_dir, "/s");

    /* a new root moves policies_dir and the default state_dir (and so keys_dir) */
    hksd_config_defaults(&cfg, "/srv/hks");
    assert_int_equal(hksd_config_load_file(&cfg, write_file("{\"root\": \"/opt/hks\"}"), &err), 0);
    assert_string_equal(cfg.policies_dir, "/opt/hks/policies");
    assert_string_equal(cfg.state_dir, "/opt/hks/var/hksd");
    assert_string_equal(cfg.keys_dir, "/opt/hks/var/hksd/keys");
    assert_int_equal(
        hksd_config_load_file(&cfg, write_file("{\"root\": \"/usr/share/hks\"}"), &err), 0);
    assert_string_equal(cfg.state_dir, "/var/lib/hksd");
    assert_string_equal(cfg.keys_dir, "/var/lib/hksd/keys");

    /* a state_dir set apart stays when the root moves */
    hksd_config_defaults(&cfg, "/srv/hks");
    assert_int_equal(hksd_config_load_file(
                         &cfg, write_file("{\"state_dir\": \"/s\", \"root\": \"/opt/hks\"}"), &err),
                     0);
    assert_string_equal(cfg.state_dir, "/s");
    assert_string_equal(cfg.keys_dir, "/s/keys");
    assert_string_equal(cfg.policies_dir, "/opt/hks/policies");
}

static void assert_config_refused(const char *text, const char *expected)
{
    hksd_config cfg;
    hksd_config_defaults(&cfg, "/srv/hks");
    hksd_config before = cfg;
    hks_error err = {0};
    const char *path = write_file(text);
    if (hksd_config_load_file(&cfg, path, &err) != -1)
        fail_msg("accepted: %s", text);
    assert_contains(err.msg, path);
    assert_contains(err.msg, expected);
    /* nothing of a refused file is applied, even what came before the error */
    assert_memory_equal(&cfg, &before, sizeof(cfg));
}

static void bad_config_files_are_refused(void **state)
{
    (void)state;
    /* unknown keys, at the top and in sections; sections that are not objects */
    assert_config_refused("{\"threads\": 4}", ": threads: unknown key");
    assert_config_refused("{\"pool\": {\"ruby\": 1}}", ": pool.ruby: unknown key");
    assert_config_refused("{\"http\": {\"issuer\": \"x\"}}", ": http.issuer: unknown key");
    assert_config_refused("{\"jwt\": []}", ": jwt: must be an object");
    assert_config_refused("{\"listen_host\": \"127.0.0.1\"}", ": listen_host: unknown key");
    assert_config_refused("[]", ": must be a JSON object");
    assert_config_refused("{\"backend\": \"local\", \"backend\": \"local\"}",
                          "duplicate object key near '\"backend\"'");
    assert_config_refused("{\"log_level\": \"info\"", ": line 1 column ");
    /* types */
    assert_config_refused("{\"log_level\": \"debug\", \"http\": {\"threads\": \"4\"}}",
                          ": http.threads: must be an integer from 1 to 256");
    assert_config_refused("{\"http\": {\"threads\": 4.0}}",
                          ": http.threads: must be an integer from 1 to 256");
    assert_config_refused("{\"backend\": 1}", ": backend: must be one of local, kubernetes");
    assert_config_refused("{\"kubernetes\": {\"kaniko_executor\": \"gcr.io/kaniko:latest\"}}",
                          ": kubernetes.kaniko_executor: 'gcr.io/kaniko:latest' is not an image by "
                          "digest");
    assert_config_refused("{\"kubernetes\": {\"kaniko_namespace\": \"Builds\"}}",
                          ": kubernetes.kaniko_namespace: 'Builds' is not a namespace name");
    assert_config_refused("{\"kubernetes\": {\"kaniko_registry_secret\": \"a_b\"}}",
                          ": kubernetes.kaniko_registry_secret: 'a_b' is not a Secret's name");
    assert_config_refused("{\"kubernetes\": {\"kaniko_deadline_s\": 7200}}",
                          ": kubernetes.kaniko_deadline_s: must be");
    assert_config_refused("{\"backend\": \"docker\"}",
                          ": backend: must be one of local, kubernetes");
    assert_config_refused("{\"log_level\": \"verbose\"}",
                          ": log_level: must be one of debug, info, warn, error");
    assert_config_refused("{\"listen\": 8080}", ": listen: must be a string host:port");
    assert_config_refused("{\"state_dir\": \"\"}", ": state_dir: must be a non-empty path");
    assert_config_refused("{\"state_dir\": null}", ": state_dir: must be a non-empty path");
    assert_config_refused("{\"keys_dir\": \"/a\\u0000b\"}",
                          ": line 1 column 24: \\u0000 is not allowed");
    assert_config_refused("{\"jwt\": {\"issuer\": \"a\\nb\"}}",
                          ": jwt.issuer: must be a non-empty string of at most 127 printable");
    assert_config_refused("{\"jwt\": {\"audience\": true}}", ": jwt.audience: must be a non-empty");
    assert_config_refused("{\"pool\": {\"python\": false}}", ": pool.python: must be an integer");
    assert_config_refused("{\"_comment\": 1}", ": _comment: must be a string");
    assert_config_refused("{\"node\": {\"install_seccomp\": 1}}",
                          ": node.install_seccomp: must be true or false");
    assert_config_refused("{\"node\": {\"install_seccomp\": \"true\"}}",
                          ": node.install_seccomp: must be true or false");
    assert_config_refused("{\"node\": {\"seccomp_dir\": \"\"}}",
                          ": node.seccomp_dir: must be a non-empty path");
    assert_config_refused("{\"node\": {\"role\": \"worker\"}}", ": node.role: unknown key");
    /* ranges */
    assert_config_refused("{\"pool\": {\"node\": 65}}",
                          ": pool.node: must be an integer from 0 to 64");
    assert_config_refused("{\"pool\": {\"node\": -1}}",
                          ": pool.node: must be an integer from 0 to 64");
    assert_config_refused("{\"http\": {\"threads\": 0}}", ": http.threads: must be an integer");
    assert_config_refused("{\"http\": {\"max_body_bytes\": 100}}",
                          ": http.max_body_bytes: must be a size from 1024 to 1073741824 bytes");
    assert_config_refused("{\"http\": {\"max_body_bytes\": \"2G\"}}",
                          ": http.max_body_bytes: must be a size");
    assert_config_refused("{\"http\": {\"max_body_bytes\": \"lots\"}}",
                          ": http.max_body_bytes: must be a size");
    assert_config_refused("{\"jwt\": {\"max_lifetime_s\": 0}}",
                          ": jwt.max_lifetime_s: must be whole seconds from 1 to 86400");
    assert_config_refused("{\"jwt\": {\"max_lifetime_s\": \"2d\"}}",
                          ": jwt.max_lifetime_s: must be whole seconds");
    assert_config_refused("{\"jwt\": {\"max_lifetime_s\": \"25h\"}}",
                          ": jwt.max_lifetime_s: must be whole seconds");
    assert_config_refused("{\"jwt\": {\"leeway_s\": \"1500ms\"}}",
                          ": jwt.leeway_s: must be whole seconds from 0 to 300");
    assert_config_refused("{\"http\": {\"connection_timeout_s\": 1e3}}",
                          ": http.connection_timeout_s: must be whole seconds");
    /* settings that depend on each other */
    assert_config_refused("{\"http\": {\"max_connections\": 10}}",
                          ": http.per_ip_connections: 64 is above http.max_connections 10");
    /* listen addresses */
    assert_config_refused("{\"listen\": \"\"}", ": listen: listen address is empty");
    assert_config_refused("{\"listen\": \"host:\"}",
                          ": listen: listen address 'host:': the port must be from 1 to 65535");
    assert_config_refused("{\"listen\": \"::1:8080\"}", "an IPv6 address goes in brackets");

    /* paths that cannot be read */
    hksd_config cfg;
    hksd_config_defaults(&cfg, "/srv/hks");
    hks_error err = {0};
    char missing[PATH_MAX + 32];
    snprintf(missing, sizeof(missing), "%s/missing.json", tmp_dir);
    assert_int_equal(hksd_config_load_file(&cfg, missing, &err), -1);
    assert_contains(err.msg, "missing.json: No such file or directory");
    assert_int_equal(err.errnum, ENOENT);
}

static void listen_addresses_parse(void **state)
{
    (void)state;
    char host[256];
    int port = 0;
    hks_error err = {0};
    assert_int_equal(hksd_parse_listen("127.0.0.1:8080", host, sizeof(host), &port, &err), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(hksd_parse_listen("[::1]:8080", host, sizeof(host), &port, &err), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(hksd_parse_listen("[::]:1", host, sizeof(host), &port, &err), 0);
    assert_string_equal(host, "::");
    assert_int_equal(port, 1);
    assert_int_equal(hksd_parse_listen(":8080", host, sizeof(host), &port, &err), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 8080);
    assert_int_equal(hksd_parse_listen("localhost:65535", host, sizeof(host), &port, &err), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 65535);

    static const struct {
        const char *text, *expected;
    } bad[] = {
        {"", "listen address is empty (expected host:port)"},
        {"host:", "listen address 'host:': the port must be from 1 to 65535"},
        {":0", "listen address ':0': the port must be from 1 to 65535"},
        {":70000", "listen address ':70000': the port must be from 1 to 65535"},
        {"[::1", "listen address '[::1': no ']' after the IPv6 address"},
        {"a:b", "listen address 'a:b': the port must be from 1 to 65535"},
        {"host", "listen address 'host': no :port (expected host:port)"},
        {"[::1]", "listen address '[::1]': no :port after ']'"},
        {"[::1]8080", "listen address '[::1]8080': no :port after ']'"},
        {"[]:80", "listen address '[]:80': not an IPv6 address"},
        {"[1.2.3.4]:80", "listen address '[1.2.3.4]:80': not an IPv6 address"},
        {"::1:8080", "listen address '::1:8080': an IPv6 address goes in brackets ([::1]:8080)"},
        {"ho st:80", "listen address 'ho st:80': not a host name or address"},
        {"host:+80", "listen address 'host:+80': the port must be from 1 to 65535"},
        {"host:80 ", "listen address 'host:80 ': the port must be from 1 to 65535"},
        {"host:-1", "listen address 'host:-1': the port must be from 1 to 65535"},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad); i++) {
        port = 7;
        snprintf(host, sizeof(host), "unchanged");
        assert_int_equal(hksd_parse_listen(bad[i].text, host, sizeof(host), &port, &err), -1);
        assert_string_equal(err.msg, bad[i].expected);
        assert_int_equal(port, 7);
        assert_string_equal(host, "unchanged");
    }
    /* a host that does not fit */
    char small[4];
    assert_int_equal(hksd_parse_listen("abcd:80", small, sizeof(small), &port, &err), -1);
    assert_string_equal(err.msg, "listen address 'abcd:80': host longer than 3 bytes");
}

static void environment_overrides(void **state)
{
    (void)state;
    hksd_config cfg;
    hksd_config_defaults(&cfg, "/srv/hks");
    hks_error err = {0};
    char *const env[] = {
        "PATH=/usr/bin",
        "HKSD_LISTEN=0.0.0.0:9000",
        "HKSD_STATE_DIR=/data/hksd",
        "HKSD_BACKEND=kubernetes",
        "HKSD_POOL_PYTHON=0",
        "HKSD_POOL_NODE=5",
        "HKSD_JWT_ISSUER=issuer-x",
        "HKSD_JWT_AUDIENCE=aud-y",
        "HKSD_JWT_MAX_LIFETIME=1h",
        "HKSD_LOG_LEVEL=warn",
        "HKSD_LOG_LEVEL=error", /* the first counts, as for getenv */
        "HKSD_NODE_INSTALL_SECCOMP=true",
        "HKSD_NODE_SECCOMP_DIR=/srv/kubelet/seccomp/hks",
        "HKSD_KUBE_KANIKO_NAMESPACE=env-builds",
        "HKSD_CONFIG=/etc/hksd.json",
        "HKSD_LISTENER=junk",
        "NOEQUALS",
        NULL,
    };
    if (hksd_config_apply_env(&cfg, env, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg.listen_host, "0.0.0.0");
    assert_int_equal(cfg.listen_port, 9000);
    assert_string_equal(cfg.state_dir, "/data/hksd");
    assert_string_equal(cfg.keys_dir, "/data/hksd/keys");
    assert_string_equal(cfg.backend, "kubernetes");
    assert_int_equal(cfg.pool_python, 0);
    assert_int_equal(cfg.pool_node, 5);
    assert_string_equal(cfg.jwt_issuer, "issuer-x");
    assert_string_equal(cfg.jwt_audience, "aud-y");
    assert_int_equal(cfg.jwt_max_lifetime_s, 3600);
    assert_string_equal(cfg.log_level, "warn");
    assert_true(cfg.node_install_seccomp);
    assert_string_equal(cfg.node_seccomp_dir, "/srv/kubelet/seccomp/hks");
    assert_string_equal(cfg.kube_kaniko_namespace, "env-builds");
    char *const off[] = {"HKSD_NODE_INSTALL_SECCOMP=0", NULL};
    assert_int_equal(hksd_config_apply_env(&cfg, off, &err), 0);
    assert_false(cfg.node_install_seccomp);

    char *const seconds[] = {"HKSD_JWT_MAX_LIFETIME=900", NULL};
    assert_int_equal(hksd_config_apply_env(&cfg, seconds, &err), 0);
    assert_int_equal(cfg.jwt_max_lifetime_s, 900);
    assert_int_equal(hksd_config_apply_env(&cfg, NULL, &err), 0);

    static const struct {
        const char *var, *expected;
    } bad[] = {
        {"HKSD_LISTEN=:0", "HKSD_LISTEN: listen address ':0': the port must be from 1 to 65535"},
        {"HKSD_LISTEN=", "HKSD_LISTEN: listen address is empty (expected host:port)"},
        {"HKSD_STATE_DIR=", "HKSD_STATE_DIR: must be a non-empty path shorter than 4096 bytes"},
        {"HKSD_STATE_DIR=/a\xff", "HKSD_STATE_DIR: must be UTF-8"},
        {"HKSD_BACKEND=docker", "HKSD_BACKEND: must be one of local, kubernetes"},
        {"HKSD_POOL_PYTHON=abc", "HKSD_POOL_PYTHON: must be an integer from 0 to 64"},
        {"HKSD_POOL_NODE=65", "HKSD_POOL_NODE: must be an integer from 0 to 64"},
        {"HKSD_POOL_NODE=-1", "HKSD_POOL_NODE: must be an integer from 0 to 64"},
        {"HKSD_JWT_ISSUER=", "HKSD_JWT_ISSUER: must be a non-empty string of at most 127 "
                             "printable characters"},
        {"HKSD_JWT_AUDIENCE=a\tb", "HKSD_JWT_AUDIENCE: must be a non-empty string of at most 127 "
                                   "printable characters"},
        {"HKSD_JWT_MAX_LIFETIME=2d", "HKSD_JWT_MAX_LIFETIME: must be whole seconds from 1 to "
                                     "86400 (an integer or like \"1h\")"},
        {"HKSD_JWT_MAX_LIFETIME=0", "HKSD_JWT_MAX_LIFETIME: must be whole seconds"},
        {"HKSD_JWT_MAX_LIFETIME=1.5", "HKSD_JWT_MAX_LIFETIME: must be whole seconds"},
        {"HKSD_LOG_LEVEL=INFO", "HKSD_LOG_LEVEL: must be one of debug, info, warn, error"},
        {"HKSD_NODE_INSTALL_SECCOMP=yes", "HKSD_NODE_INSTALL_SECCOMP: must be true or false"},
        {"HKSD_NODE_INSTALL_SECCOMP=", "HKSD_NODE_INSTALL_SECCOMP: must be true or false"},
        {"HKSD_NODE_SECCOMP_DIR=", "HKSD_NODE_SECCOMP_DIR: must be a non-empty path"},
    };
    for (size_t i = 0; i < HKS_ARRAY_LEN(bad); i++) {
        /* HKSD_LISTEN comes first: when it is not the bad one, its good value is not applied
         * either (the first definition of a variable counts) */
        char *const one[] = {(char *)bad[i].var, "HKSD_LISTEN=127.0.0.2:1", NULL};
        hksd_config before = cfg;
        assert_int_equal(hksd_config_apply_env(&cfg, one, &err), -1);
        if (strncmp(err.msg, bad[i].expected, strlen(bad[i].expected)) != 0)
            fail_msg("'%s' does not start with '%s'", err.msg, bad[i].expected);
        assert_memory_equal(&cfg, &before, sizeof(cfg));
    }
    char long_issuer[200] = "HKSD_JWT_ISSUER=";
    memset(long_issuer + strlen(long_issuer), 'x', 128);
    char *const too_long[] = {long_issuer, NULL};
    assert_int_equal(hksd_config_apply_env(&cfg, too_long, &err), -1);
    assert_contains(err.msg, "HKSD_JWT_ISSUER: must be a non-empty string of at most 127");
}

static void assert_configs_equal(const hksd_config *a, const hksd_config *b)
{
    assert_string_equal(a->listen_host, b->listen_host);
    assert_int_equal(a->listen_port, b->listen_port);
    assert_string_equal(a->state_dir, b->state_dir);
    assert_string_equal(a->root, b->root);
    assert_string_equal(a->policies_dir, b->policies_dir);
    assert_string_equal(a->keys_dir, b->keys_dir);
    assert_string_equal(a->backend, b->backend);
    assert_int_equal(a->pool_python, b->pool_python);
    assert_int_equal(a->pool_node, b->pool_node);
    assert_string_equal(a->jwt_issuer, b->jwt_issuer);
    assert_string_equal(a->jwt_audience, b->jwt_audience);
    assert_int_equal(a->jwt_leeway_s, b->jwt_leeway_s);
    assert_int_equal(a->jwt_max_lifetime_s, b->jwt_max_lifetime_s);
    assert_int_equal(a->max_body_bytes, b->max_body_bytes);
    assert_int_equal(a->threads, b->threads);
    assert_int_equal(a->max_connections, b->max_connections);
    assert_int_equal(a->per_ip_connections, b->per_ip_connections);
    assert_int_equal(a->connection_timeout_s, b->connection_timeout_s);
    assert_string_equal(a->log_level, b->log_level);
    assert_int_equal(a->node_install_seccomp, b->node_install_seccomp);
    assert_string_equal(a->node_seccomp_dir, b->node_seccomp_dir);
    assert_string_equal(a->kube_kubeconfig, b->kube_kubeconfig);
    assert_string_equal(a->kube_context, b->kube_context);
    assert_int_equal(a->kube_in_cluster, b->kube_in_cluster);
    assert_string_equal(a->kube_namespace, b->kube_namespace);
    assert_string_equal(a->kube_registry, b->kube_registry);
    assert_string_equal(a->kube_repository, b->kube_repository);
    assert_int_equal(a->kube_registry_insecure, b->kube_registry_insecure);
    assert_string_equal(a->kube_registry_ca, b->kube_registry_ca);
    assert_string_equal(a->kube_docker_config, b->kube_docker_config);
    assert_string_equal(a->kube_base_python, b->kube_base_python);
    assert_string_equal(a->kube_base_node, b->kube_base_node);
    assert_int_equal(a->kube_ready_timeout_s, b->kube_ready_timeout_s);
    assert_int_equal(a->kube_reap_interval_s, b->kube_reap_interval_s);
    assert_int_equal(a->kube_request_timeout_s, b->kube_request_timeout_s);
    assert_string_equal(a->kube_kaniko_namespace, b->kube_kaniko_namespace);
    assert_string_equal(a->kube_kaniko_executor, b->kube_kaniko_executor);
    assert_string_equal(a->kube_kaniko_secret, b->kube_kaniko_secret);
    assert_int_equal(a->kube_kaniko_deadline_s, b->kube_kaniko_deadline_s);
}

static void kubernetes_namespace_rules(void **state)
{
    (void)state;
    char ns[64];
    assert_true(hksd_kube_namespace_rule_valid("{project}"));
    assert_true(hksd_kube_namespace_rule_valid("hks-{project}-fn"));
    assert_true(hksd_kube_namespace_rule_valid("functions"));
    assert_false(hksd_kube_namespace_rule_valid(""));
    assert_false(hksd_kube_namespace_rule_valid("-{project}"));
    assert_false(hksd_kube_namespace_rule_valid("Hks-{project}"));
    assert_false(hksd_kube_namespace_rule_valid("{projekt}"));
    assert_false(hksd_kube_namespace_rule_valid("a/{project}"));
    assert_int_equal(hksd_kube_namespace("hks-{project}", "team-a", ns, sizeof(ns)), 0);
    assert_string_equal(ns, "hks-team-a");
    assert_int_equal(hksd_kube_namespace("{project}", "p1", ns, sizeof(ns)), 0);
    assert_string_equal(ns, "p1");
    assert_int_equal(hksd_kube_namespace("shared", "anything", ns, sizeof(ns)), 0);
    assert_string_equal(ns, "shared");
    /* a project that makes no DNS label: refused, never truncated */
    assert_int_equal(hksd_kube_namespace("{project}", "Team_A", ns, sizeof(ns)), -1);
    assert_int_equal(hksd_kube_namespace("{project}-", "a", ns, sizeof(ns)), -1);
    char long_project[80];
    memset(long_project, 'a', sizeof(long_project) - 1);
    long_project[sizeof(long_project) - 1] = '\0';
    assert_int_equal(hksd_kube_namespace("{project}", long_project, ns, sizeof(ns)), -1);
    long_project[64] = '\0';
    assert_int_equal(hksd_kube_namespace("{project}", long_project, ns, sizeof(ns)), -1);
    long_project[63] = '\0'; /* 63 characters: the longest label */
    assert_int_equal(hksd_kube_namespace("x{project}", long_project, ns, sizeof(ns)), -1);
    assert_int_equal(hksd_kube_namespace("{project}", long_project, ns, sizeof(ns)), 0);
    /* the config refuses a bad rule, naming the key */
    hksd_config cfg;
    hks_error err = {0};
    hksd_config_defaults(&cfg, "/srv/hks");
    assert_int_equal(
        hksd_config_load_file(
            &cfg, write_file("{\"kubernetes\": {\"namespace\": \"A_{project}\"}}"), &err),
        -1);
    assert_non_null(strstr(err.msg, "kubernetes.namespace: 'A_{project}'"));
    assert_int_equal(
        hksd_config_load_file(&cfg, write_file("{\"kubernetes\": {\"reap_interval_s\": 0}}"), &err),
        -1);
    assert_non_null(strstr(err.msg, "kubernetes.reap_interval_s: must be"));
    assert_int_equal(
        hksd_config_load_file(&cfg, write_file("{\"kubernetes\": {\"registry\": \"\"}}"), &err),
        -1);
    assert_non_null(strstr(err.msg, "kubernetes.registry: must be a non-empty string"));
    char *env[] = {"HKSD_KUBE_NAMESPACE=fn-{project}", "HKSD_KUBE_REGISTRY=r.example",
                   "HKSD_KUBECONFIG=/k", "HKSD_KUBE_REAP_INTERVAL=2s", NULL};
    assert_int_equal(hksd_config_apply_env(&cfg, env, &err), 0);
    assert_string_equal(cfg.kube_namespace, "fn-{project}");
    assert_string_equal(cfg.kube_registry, "r.example");
    assert_string_equal(cfg.kube_kubeconfig, "/k");
    assert_int_equal(cfg.kube_reap_interval_s, 2);
    char *bad_env[] = {"HKSD_KUBE_NAMESPACE=x/{project}", NULL};
    assert_int_equal(hksd_config_apply_env(&cfg, bad_env, &err), -1);
    assert_non_null(strstr(err.msg, "environment: kubernetes.namespace"));
}

static void printed_config_loads_back(void **state)
{
    (void)state;
    hks_error err = {0};
    /* the defaults, and a config that differs from them in every field */
    hksd_config configs[2];
    hksd_config_defaults(&configs[0], "/srv/hks");
    hksd_config_defaults(&configs[1], "/srv/hks");
    assert_int_equal(hksd_config_load_file(&configs[1], write_file(full_config), &err), 0);
    for (size_t i = 0; i < HKS_ARRAY_LEN(configs); i++) {
        json_t *json = hksd_config_to_json(&configs[i]);
        assert_non_null(json);
        const char *path = write_json(json);
        json_decref(json);
        hksd_config back;
        hksd_config_defaults(&back, "/elsewhere");
        if (hksd_config_load_file(&back, path, &err) < 0)
            fail_msg("%s", err.msg);
        assert_configs_equal(&back, &configs[i]);
    }

    json_t *json = hksd_config_to_json(&configs[1]);
    assert_string_equal(json_string_value(json_object_get(json, "listen")), "[::1]:9090");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json, "pool"), "node")),
                     64);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(json, "jwt"), "max_lifetime_s")), 900);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(json, "http"), "max_body_bytes")),
        8 << 20);
    assert_string_equal(json_string_value(json_object_get(json, "log_level")), "debug");
    json_decref(json);
    json = hksd_config_to_json(&configs[0]);
    assert_string_equal(json_string_value(json_object_get(json, "listen")), "127.0.0.1:8080");
    assert_string_equal(json_string_value(json_object_get(json, "state_dir")), "/srv/hks/var/hksd");
    /* the node role is off unless configured; its directory is the kubelet's default */
    json_t *node = json_object_get(json, "node");
    assert_true(json_is_false(json_object_get(node, "install_seccomp")));
    assert_string_equal(json_string_value(json_object_get(node, "seccomp_dir")),
                        "/var/lib/kubelet/seccomp/hks");
    json_decref(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shipped_policy_loads_with_the_sandbox_defaults),
        cmocka_unit_test(spoiled_policies_are_refused),
        cmocka_unit_test(oversized_files_are_refused),
        cmocka_unit_test(missing_limits_are_the_defaults),
        cmocka_unit_test(request_limits_override_the_defaults),
        cmocka_unit_test(bad_request_limits_are_refused),
        cmocka_unit_test(defaults_follow_the_root),
        cmocka_unit_test(a_full_config_file_sets_everything),
        cmocka_unit_test(derived_directories_move_with_their_base),
        cmocka_unit_test(bad_config_files_are_refused),
        cmocka_unit_test(listen_addresses_parse),
        cmocka_unit_test(environment_overrides),
        cmocka_unit_test(printed_config_loads_back),
        cmocka_unit_test(kubernetes_namespace_rules),
    };
    return cmocka_run_group_tests(tests, make_tmp_dir, remove_tmp_dir);
}
