#include "cli/target.h"

#include "cli/project.h"

#include <string.h>

bool cli_is_function_id(const char *s)
{
    if (strncmp(s, "fn-", 3) != 0 || strlen(s) != 23)
        return false;
    for (const char *p = s + 3; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static void set(cli_target *out, const char *id, const char *name, bool local)
{
    snprintf(out->id, sizeof(out->id), "%s", id);
    snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
    out->local = local;
}

static int by_name(cli_http *h, const char *name, cli_target *out, cli_error *err)
{
    cleanup_json json_t *list = NULL;
    long status = 0;
    if (cli_http_json(h, "GET", "/internal/v1/functions", NULL, 0, &list, &status, err) < 0) {
        cli_wrap(err, "look up the function '%s'", name);
        if (status == 403)
            cli_hint(err, "finding a function by name needs the scope functions:read; give its "
                          "id instead");
        return -1;
    }
    const json_t *fns = json_object_get(list, "functions");
    const json_t *match = NULL;
    cleanup_buf cli_buf ids = {0};
    size_t count = 0, i;
    const json_t *fn;
    json_array_foreach(fns, i, fn)
    {
        const char *n = json_string_value(json_object_get(fn, "name"));
        const char *id = json_string_value(json_object_get(fn, "id"));
        if (!n || !id || strcmp(n, name) != 0)
            continue;
        match = fn;
        count++;
        if (cli_buf_printf(&ids, "%s%s", ids.len ? ", " : "", id) < 0)
            return cli_fail(err, ENOMEM, "look up %s", name);
    }
    if (count == 0) {
        cli_fail(err, 0, "no function named '%s' in the token's project", name);
        cli_hint(err, "hks-func list shows the project's functions; deploy it with hks-func "
                      "deploy");
        return -1;
    }
    if (count > 1) {
        cli_fail(err, 0, "%zu functions are named '%s' (%s)", count, name, ids.data);
        cli_hint(err, "give the id of the one you mean");
        return -1;
    }
    set(out, json_string_value(json_object_get(match, "id")), name, false);
    return 0;
}

int cli_target_resolve(cli_http *h, const char *arg, const char *dir, cli_target *out,
                       cli_error *err)
{
    *out = (cli_target){0};
    cli_local_fn local;
    bool found = false;
    cli_error ignored;
    /* a broken .hks/function.json only matters when nothing else names the function */
    int local_rc = cli_local_load(dir, &local, &found, arg ? &ignored : err);
    bool same_server = found && local.server && strcmp(local.server, cli_http_server(h)) == 0;
    int rc = 0;
    if (arg && cli_is_function_id(arg)) {
        set(out, arg, same_server && strcmp(local.id, arg) == 0 ? local.name : NULL, false);
    } else if (arg) {
        if (same_server && strcmp(local.name, arg) == 0)
            set(out, local.id, local.name, true);
        else if (!cli_valid_name(arg))
            rc = cli_fail_usage(err, "'%s' is neither a function name nor an id (fn-...)", arg);
        else
            rc = by_name(h, arg, out, err);
    } else if (local_rc < 0) {
        rc = -1;
    } else if (same_server) {
        set(out, local.id, local.name, true);
    } else {
        cli_func_yaml fy;
        if (cli_func_yaml_load(dir, &fy, err) < 0) {
            rc = -1;
        } else if (fy.name) {
            rc = by_name(h, fy.name, out, err);
        } else {
            rc = cli_fail_usage(err, "no function given, and none was deployed from this "
                                     "directory");
            cli_hint(err, "give a NAME or an ID (hks-func list shows them), or run hks-func "
                          "deploy here first");
        }
        cli_func_yaml_free(&fy);
    }
    if (found)
        cli_local_free(&local);
    return rc;
}
