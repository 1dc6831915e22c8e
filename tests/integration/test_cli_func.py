"""hks-func, the command line, against a real hksd (the harness in hksd_process.py), with HOME and
XDG_CONFIG_HOME in a temporary directory: the product brief's workflow literally (login, project
select, create, edit, deploy, invoke) for node and python, the configuration file and the
environment's overrides, list/describe/logs/delete, the output formats, run (exit status, stdout
and stderr apart), usage errors (exit 2, one line), remote errors (exit 1, one line with a hint),
a func.yaml as `kn func create` writes it (run.envs reaching the function, deploy options), and
colors only on a terminal."""

import json
import os
import pathlib
import pty
import re
import select
import stat
import subprocess
import time
import urllib.request

import pytest

from hksd_process import HKSD, REPO, Daemon

HKS_FUNC = os.environ.get("HKS_FUNC") or str(REPO / "build" / "hks-func")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(HKSD) or not os.path.exists(HKS_FUNC),
    reason="needs root, build/hksd and build/hks-func")

ALL = ("functions:deploy functions:invoke functions:delete functions:read functions:execute")
PROJECT = "my-serverless-project"
URL_RE = r"^http://127\.0\.0\.1:%d/fn/(fn-[0-9a-f]{20})/$"

NODE_EDIT = ('return { body: "OK" };',
             'return { body: "hello " + (context.query.name || "node") + " " + '
             '(typeof body === "object" ? JSON.stringify(body) : (body || "")) };')
PY_EDIT = ("'body': 'OK'.encode(),", "'body': b'hello from python',")


# ---------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def hksd():
    d = Daemon()
    d.tokens = {}
    yield d
    d.stop()


def token(d, project=PROJECT, scope=ALL, sub="dev"):
    key = (project, scope, sub)
    if key not in d.tokens:
        d.tokens[key] = d.token(scope=scope, sub=sub, project=project, ttl="30m")
    return d.tokens[key]


class Cli:
    """hks-func with a home of its own; env: extra variables (None removes one)."""

    def __init__(self, home, d=None):
        self.home = pathlib.Path(home)
        self.d = d
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("HKS_") and k not in ("NO_COLOR", "XDG_CONFIG_HOME")}
        self.env["HOME"] = str(self.home)

    def __call__(self, *args, cwd=None, env=None, input=None, timeout=120):
        e = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return subprocess.run([HKS_FUNC, *args], cwd=str(cwd or self.home), env=e,
                              input=input, capture_output=True, text=True, timeout=timeout)

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.returncode == 0, "hks-func %s -> %d\nstdout: %s\nstderr: %s" % (
            " ".join(args), r.returncode, r.stdout, r.stderr)
        return r

    def login(self, project=PROJECT, scope=ALL):
        return self.ok("login", "--server", self.d.url, "--token", token(self.d, project, scope))


@pytest.fixture
def cli(tmp_path, hksd):
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, hksd)


def one_line_error(r, code, *needles):
    """r failed with exit status code and said why in one line of stderr, with a hint."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert "hint:" in lines[0], lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "\x1b[" not in r.stderr  # not a terminal: no colors
    return lines[0]


def fetch(d, url, tok, data=None):
    req = urllib.request.Request(url, data=data, headers={"Authorization": "Bearer " + tok})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, resp.read().decode()


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# ---------------------------------------------------------------- the brief's workflow

@pytest.mark.parametrize("lang", ["node", "python"])
def test_the_product_briefs_workflow_literally(hksd, cli, lang):
    # hks-func login: the server and the token from the environment, stored in the config
    r = cli.ok("login", env={"HKS_SERVER": hksd.url, "HKS_TOKEN": token(hksd)})
    assert hksd.url in r.stdout and PROJECT in r.stdout
    r = cli.ok("project", "select", PROJECT)
    assert r.stderr == ""  # the token's project is the one selected: no warning
    r = cli.ok("create", "-l", lang, "my-function")
    proj = cli.home / "my-function"
    assert "my-function" in r.stdout
    fy = (proj / "func.yaml").read_text()
    assert re.search(r"^name: my-function$", fy, re.M) and re.search(r"^runtime: %s$" % lang,
                                                                     fy, re.M)
    assert "{{" not in fy
    # edit the handler
    handler = proj / ("index.js" if lang == "node" else "function/func.py")
    old, new = NODE_EDIT if lang == "node" else PY_EDIT
    text = handler.read_text()
    assert old in text
    handler.write_text(text.replace(old, new))
    # hks-func deploy (no HKS_* variables: the configuration is used)
    r = cli.ok("deploy", cwd=proj)
    m = re.match(URL_RE % hksd.port, r.stdout.strip())
    assert m, r.stdout
    fid = m.group(1)
    assert len(r.stdout.splitlines()) == 1
    local = json.loads((proj / ".hks" / "function.json").read_text())
    assert local["id"] == fid and local["name"] == "my-function" and local["server"] == hksd.url
    # hks-func invoke, with no argument, in the project
    r = cli.ok("invoke", cwd=proj)
    expected = "hello node " if lang == "node" else "hello from python"
    assert r.stdout == expected
    if lang == "node":
        r = cli.ok("invoke", "--data", '{"x": 1}', "--path", "/?name=agent", cwd=proj)
        assert r.stdout == 'hello agent {"x":1}'
    # the URL serves the same function
    status, body = fetch(hksd, r"%s" % m.group(0), token(hksd))
    assert status == 200 and body.startswith("hello")
    # by name from anywhere
    assert cli.ok("invoke", "my-function").stdout.startswith("hello")
    cli.ok("delete", cwd=proj)
    assert not (proj / ".hks" / "function.json").exists()


def test_redeploy_replaces_the_previous_function_with_the_same_code_hash(hksd, cli):
    cli.login()
    cli.ok("create", "-l", "node", "again")
    proj = cli.home / "again"
    first = json.loads(cli.ok("deploy", "-o", "json", cwd=proj).stdout)
    second = json.loads(cli.ok("deploy", "-o", "json", cwd=proj).stdout)
    assert first["id"] != second["id"]
    # the archive is reproducible and .hks/ (written by the first deploy) is not in it
    assert first["code_sha256"] == second["code_sha256"]
    r = cli("describe", first["id"])
    one_line_error(r, 1, "404")
    assert cli.ok("describe", "-o", "name", cwd=proj).stdout == "again\n"
    assert cli.ok("delete", "-o", "name", cwd=proj).stdout == "again\n"


def test_deploy_leaves_out_git_node_modules_pycache_venv_and_hks(hksd, cli):
    cli.login()
    proj = cli.home / "skipper"
    write(proj / "index.js", "const fs = require('fs');\nmodule.exports = { handle: async () => "
          "({ body: JSON.stringify(fs.readdirSync(__dirname).sort()) }) };\n")
    write(proj / "package.json", '{"name": "skipper", "main": "index.js"}\n')
    write(proj / "lib" / "x.js", "module.exports = 1;\n")
    for skipped in (".git", "node_modules", "__pycache__", ".venv", "lib/node_modules"):
        write(proj / skipped / "junk", "x" * 1000)
    write(proj / ".hks" / "other", "not shipped")
    r = cli.ok("deploy", "--name", "skipper", cwd=proj)  # no func.yaml: runtime guessed
    assert re.match(URL_RE % hksd.port, r.stdout.strip())
    listing = json.loads(cli.ok("invoke", cwd=proj).stdout)
    assert listing == ["index.js", "lib", "package.json"]
    cli.ok("delete", "skipper")


# ---------------------------------------------------------------- configuration

def test_login_stores_a_0600_config_in_a_0700_dir_and_respects_xdg(hksd, cli, tmp_path):
    r = cli.login()
    cfg_dir = cli.home / ".config" / "hks"
    cfg = cfg_dir / "config.json"
    assert str(cfg) in r.stdout
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert stat.S_IMODE(cfg_dir.stat().st_mode) == 0o700
    doc = json.loads(cfg.read_text())
    assert doc == {"server": hksd.url, "token": token(hksd), "project": PROJECT}
    # XDG_CONFIG_HOME moves it
    xdg = tmp_path / "xdg"
    r = cli.ok("login", "--server", hksd.url + "/", "--token", token(hksd), "-o", "json",
               env={"XDG_CONFIG_HOME": str(xdg)})
    out = json.loads(r.stdout)
    assert out["config"] == str(xdg / "hks" / "config.json")
    assert out["server"] == hksd.url and out["token_project"] == PROJECT and out["sub"] == "dev"
    assert stat.S_IMODE((xdg / "hks" / "config.json").stat().st_mode) == 0o600
    # --token-file stores the path, read again by every command
    tf = tmp_path / "token"
    tf.write_text(token(hksd) + "\n")
    cli.ok("login", "--server", hksd.url, "--token-file", str(tf))
    doc = json.loads(cfg.read_text())
    assert doc["token_file"] == str(tf) and "token" not in doc
    cli.ok("list")
    tf.write_text("not-a-token\n")
    one_line_error(cli("list"), 1, "401")
    # the token from stdin
    cli.ok("login", "--server", hksd.url, input=token(hksd) + "\n")
    assert json.loads(cfg.read_text())["token"] == token(hksd)


def test_a_bad_login_stores_nothing(hksd, cli):
    r = cli("login", "--server", hksd.url, "--token", "not.a.token")
    one_line_error(r, 1, "401")
    assert not (cli.home / ".config" / "hks" / "config.json").exists()
    r = cli("login", "--server", "http://127.0.0.1:1", "--token", token(hksd))
    one_line_error(r, 1, "cannot reach hksd")
    assert not (cli.home / ".config" / "hks" / "config.json").exists()
    one_line_error(cli("login", "--server", "ftp://x", "--token", "t"), 2, "server")


def test_environment_overrides_the_config(hksd, cli):
    cli.ok("login", "--server", "http://127.0.0.1:1", "--token", "stale", "--no-verify")
    one_line_error(cli("list"), 1, "cannot reach hksd")
    r = cli.ok("list", "-o", "json", env={"HKS_SERVER": hksd.url, "HKS_TOKEN": token(hksd)})
    assert "functions" in json.loads(r.stdout)
    # a server that answers, with the configured (bad) token: 401
    one_line_error(cli("list", env={"HKS_SERVER": hksd.url}), 1, "401")
    # HKS_PROJECT overrides the selected project
    cli.ok("project", "select", "from-config")
    shown = json.loads(cli.ok("project", "show", "-o", "json").stdout)
    assert shown["project"] == "from-config" and shown["source"] == "config"
    shown = json.loads(cli.ok("project", "-o", "json", env={"HKS_PROJECT": "from-env"}).stdout)
    assert shown["project"] == "from-env" and shown["source"] == "HKS_PROJECT"


def test_project_select_warns_when_the_token_is_for_another_project(hksd, cli):
    cli.login(project="p1")
    r = cli.ok("project", "select", "p2")
    assert r.stdout == "Project p2 selected.\n"
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and "'p1'" in lines[0], r.stderr
    assert json.loads((cli.home / ".config/hks/config.json").read_text())["project"] == "p2"
    r = cli.ok("project", "select", "p1")
    assert r.stderr == ""


# ---------------------------------------------------------------- list, describe, logs, delete

ECHO_JS = r"""
module.exports = { handle: async (context, body) => {
  console.log('echo-log tag=' + (context.query.tag || ''));
  const status = Number(context.query.status || 200);
  return { statusCode: status, headers: { 'content-type': 'application/json', 'x-echo': '1' },
           body: JSON.stringify({ method: context.method, query: context.query,
                                  header: context.headers['x-test'] || null, body: body || null,
                                  greeting: process.env.GREETING || null }) };
} };
"""


def deploy_echo(cli, name="echo", *extra):
    proj = cli.home / name
    write(proj / "func.yaml", "specVersion: 0.36.0\nname: %s\nruntime: node\n" % name)
    write(proj / "index.js", ECHO_JS)
    rec = json.loads(cli.ok("deploy", "-o", "json", *extra, cwd=proj).stdout)
    return proj, rec


def test_list_describe_logs_delete_and_output_formats(hksd, cli):
    cli.login()
    proj, rec = deploy_echo(cli, "echo", "--env", "GREETING=hi", "--max-scale", "3",
                            "--concurrency", "4", "--memory", "128", "--timeout", "5s",
                            "--ttl", "20m")
    assert rec["max_scale"] == 3 and rec["concurrency"] == 4
    assert rec["limits"]["memory_mb"] == 128 and rec["limits"]["wall_ms"] == 5000
    assert rec["ttl_seconds"] == 1200 and rec["env"] == {"GREETING": "hi"}
    fid = rec["id"]
    # list: table, json, name
    r = cli.ok("list")
    header, *rows = r.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "ID", "RUNTIME", "STATUS"]
    assert any(row.split()[:4] == ["echo", fid, "node", "ready"] for row in rows), r.stdout
    assert any(f["id"] == fid for f in json.loads(cli.ok("list", "-o", "json").stdout)["functions"])
    assert "echo" in cli.ok("list", "-o", "name").stdout.splitlines()
    assert "echo" in cli.ok("-o", "name", "list").stdout.splitlines()  # the global form
    # describe: by name, by id, in the directory
    r = cli.ok("describe", "echo")
    assert re.search(r"^Name:\s+echo$", r.stdout, re.M) and fid in r.stdout
    assert "GREETING=hi" in r.stdout
    assert json.loads(cli.ok("describe", fid, "-o", "json").stdout)["id"] == fid
    assert cli.ok("describe", "-o", "name", cwd=proj).stdout == "echo\n"
    # invoke: method, header, path with a query, data; -o json
    r = cli.ok("invoke", "echo", "-X", "PUT", "-H", "X-Test: yes", "--path", "/a?tag=t1",
               "--data", '{"k": "v"}', "-o", "json")
    out = json.loads(r.stdout)
    assert out["status"] == 200 and out["headers"]["x-echo"] == "1"
    echoed = json.loads(out["body"])
    assert echoed == {"method": "PUT", "query": {"tag": "t1"}, "header": "yes",
                      "body": {"k": "v"}, "greeting": "hi"}
    # the function's own error: the body is printed, the exit status is 1
    r = cli("invoke", "echo", "--path", "/?status=503")
    assert json.loads(r.stdout)["method"] == "GET"
    one_line_error(r, 1, "answered HTTP 503")
    # logs: the line the function printed, as text and as NDJSON
    deadline = time.time() + 20
    while time.time() < deadline:
        r = cli.ok("logs", "echo")
        if "echo-log tag=t1" in r.stdout:
            break
        time.sleep(0.2)
    line = next(x for x in r.stdout.splitlines() if "echo-log tag=t1" in x)
    assert re.match(r"^\d{4}-\d\d-\d\dT\S+Z i-\d+\s+stdout\s+echo-log tag=t1$", line), line
    lines = [json.loads(x) for x in cli.ok("logs", "-o", "json", cwd=proj).stdout.splitlines()]
    assert any(x["line"] == "echo-log tag=t1" and x["stream"] == "stdout" for x in lines)
    assert len(cli.ok("logs", "echo", "--tail", "1", "-o", "json").stdout.splitlines()) == 1
    assert cli.ok("logs", "echo", "--since", "1h").stdout.strip()
    # logs -f follows new lines until the function is deleted
    follow = subprocess.Popen([HKS_FUNC, "logs", "-f", "--tail", "0", "echo"], cwd=str(cli.home),
                              env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        time.sleep(0.5)
        cli.ok("invoke", "echo", "--path", "/?tag=followed")
        seen = ""
        deadline = time.time() + 20
        while "tag=followed" not in seen and time.time() < deadline:
            ready, _, _ = select.select([follow.stdout], [], [], 1)
            if ready:
                seen += follow.stdout.readline()
        assert "echo-log tag=followed" in seen
        # delete (in the directory: no name) ends the follow
        r = cli.ok("delete", cwd=proj)
        assert r.stdout == "Deleted echo (%s)\n" % fid
        assert follow.wait(timeout=30) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    one_line_error(cli("describe", fid), 1, "404")
    one_line_error(cli("invoke", cwd=proj), 1, "no function named 'echo'")


# ---------------------------------------------------------------- run

def test_run_passes_stdout_and_stderr_apart_and_exits_with_the_program(hksd, cli, tmp_path):
    cli.login()
    prog = tmp_path / "prog.py"
    prog.write_text("import sys\nprint('out1')\nprint('err1', file=sys.stderr)\n"
                    "print('out2', sys.argv[1:])\nsys.exit(int(sys.argv[1]) if sys.argv[1:] "
                    "else 0)\n")
    r = cli("run", str(prog), "7")
    assert (r.returncode, r.stdout, r.stderr) == (7, "out1\nout2 ['7']\n", "err1\n")
    r = cli("run", str(prog))
    assert (r.returncode, r.stdout, r.stderr) == (0, "out1\nout2 []\n", "err1\n")
    js = tmp_path / "prog.mjs"
    js.write_text("console.log('from node'); console.error('node err'); process.exitCode = 4;\n")
    r = cli("run", str(js))
    assert (r.returncode, r.stdout, r.stderr) == (4, "from node\n", "node err\n")
    # from stdin, with the program's own stdin from a file, env and an uncaught exception
    data = tmp_path / "in.txt"
    data.write_text("abc")
    r = cli("run", "--runtime", "python", "--input", str(data), "-e", "K=v", "-",
            input="import os, sys\nprint(sys.stdin.read().upper(), os.environ['K'])\n"
                  "raise ValueError('boom')\n")
    assert r.returncode == 1 and r.stdout == "ABC v\n"
    assert r.stderr.startswith("Traceback") and "ValueError: boom" in r.stderr
    # killed by a signal: 128+N
    r = cli("run", "--runtime", "python", "-",
            input="import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    assert r.returncode == 128 + 15, r.stderr
    # timeout: 124 and one line saying so
    r = cli("run", "--timeout", "1s", "--runtime", "python", "-",
            input="import time\nprint('started', flush=True)\ntime.sleep(30)\n")
    assert r.returncode == 124 and r.stdout == "started\n"
    assert len(r.stderr.splitlines()) == 1 and "time limit" in r.stderr
    # -o json: hksd's result, and still the program's exit status
    r = cli("run", "-o", "json", str(prog), "3")
    doc = json.loads(r.stdout)
    assert r.returncode == 3 and doc["status"] == "error" and doc["exit_code"] == 3
    assert doc["stderr"] == "err1\n"


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("args", [
    [],
    ["bogus"],
    ["cron"],
    ["--frob", "list"],
    ["list", "-o", "yaml"],
    ["list", "extra"],
    ["deploy", "--frob"],
    ["deploy", "--ttl", "soon"],
    ["deploy", "--max-scale", "many"],
    ["deploy", "--env", "NOEQUALS"],
    ["deploy", "--name", "Bad_Name"],
    ["deploy", "somewhere"],
    ["create", "x"],
    ["create", "-l", "cobol", "x"],
    ["create", "-l", "node"],
    ["create", "-l", "node", "Bad_Name"],
    ["invoke", "--data", "a", "--file", "b"],
    ["invoke", "-X", "BREW"],
    ["invoke", "--path", "no-slash"],
    ["invoke", "-o", "name"],
    ["logs", "--tail", "x"],
    ["logs", "-f", "a", "b"],
    ["run"],
    ["run", "prog.txt"],
    ["run", "--timeout"],
    ["project", "select"],
    ["project", "select", "Bad_Name"],
    ["project", "frobnicate"],
    ["login", "--token", "a", "--token-file", "b"],
])
def test_usage_errors_exit_2_with_one_line(cli, args):
    r = cli(*args)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    if args:
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and "usage error" in lines[0] and "hint:" in lines[0], r.stderr


def test_not_logged_in_is_a_usage_error_with_a_hint(cli):
    line = one_line_error(cli("list"), 2, "hks-func login")
    assert "not logged in" in line or "no hksd server" in line
    one_line_error(cli("list", env={"HKS_SERVER": "http://127.0.0.1:1"}), 2, "HKS_TOKEN")


def test_remote_errors_exit_1_with_one_line(hksd, cli):
    cli.login()
    one_line_error(cli("list", env={"HKS_TOKEN": "garbage"}), 1, "401", "invalid_token")
    one_line_error(cli("describe", "no-such-function"), 1, "no function named",
                   "hks-func list")
    one_line_error(cli("describe", "fn-00000000000000000000"), 1, "404", "not_found")
    one_line_error(cli("logs", "fn-00000000000000000000"), 1, "404")
    one_line_error(cli("delete", "fn-00000000000000000000"), 1, "404")
    one_line_error(cli("invoke", "fn-00000000000000000000"), 1, "404")
    # a token without the scope: 403, and the hint names it
    read_only = token(hksd, scope="functions:read")
    one_line_error(cli("run", "--runtime", "python", "-", input="print(1)\n",
                       env={"HKS_TOKEN": read_only}), 1, "403", "functions:execute")
    # nothing given and nothing deployed here: usage
    one_line_error(cli("invoke"), 2, "no function given")
    # an invalid value hksd refuses: 422 names the field
    proj = cli.home / "big"
    write(proj / "index.js", "module.exports = { handle: async () => 'x' };\n")
    one_line_error(cli("deploy", "--max-scale", "500", cwd=proj), 1, "422", "max_scale")


# ---------------------------------------------------------------- func.yaml from kn func create

KN_FUNC_YAML = """\
# $schema: https://raw.githubusercontent.com/knative/func/refs/tags/v0.36.0/schema/func_yaml-schema.json
# yaml-language-server: $schema=https://raw.githubusercontent.com/knative/func/refs/tags/v0.36.0/schema/func_yaml-schema.json
specVersion: 0.36.0
name: kn-made
runtime: node
registry: quay.io/someone
namespace: default
created: 2025-05-01T12:00:00.123456789+02:00
build:
  builder: pack
  buildEnvs:
  - name: BP_NODE_RUN_SCRIPTS
    value: build
run:
  envs:
  - name: PLAIN
    value: plain value
  - name: QUOTED
    value: 'it''s # not a comment'   # but this is
  - name: DOUBLE
    value: "tab\\tand \\u00e9"
  - name: FROM_LOCAL
    value: '{{ env:KN_LOCAL_VALUE }}'
  - name: EMPTY
deploy:
  namespace: default
  annotations: {team: "a"}
  options:
    scale:
      min: 0
      max: 3
      metric: concurrency
    resources:
      requests:
        cpu: 100m
      limits:
        cpu: 500m
        memory: 128Mi
        concurrency: 5
"""

ENV_JS = r"""
module.exports = { handle: async () => ({ body: JSON.stringify({
  PLAIN: process.env.PLAIN, QUOTED: process.env.QUOTED, DOUBLE: process.env.DOUBLE,
  FROM_LOCAL: process.env.FROM_LOCAL, EMPTY: process.env.EMPTY,
  EXTRA: process.env.EXTRA || null }) }) };
"""


def test_a_kn_func_create_func_yaml_is_understood(hksd, cli):
    cli.login()
    proj = cli.home / "kn-made"
    write(proj / "func.yaml", KN_FUNC_YAML)
    write(proj / "index.js", ENV_JS)
    write(proj / "package.json", '{"name": "kn-made", "main": "index.js"}\n')
    # {{ env:KN_LOCAL_VALUE }} needs the variable
    one_line_error(cli("deploy", cwd=proj), 1, "KN_LOCAL_VALUE")
    r = cli.ok("deploy", "-o", "json", "--env", "EXTRA=x", cwd=proj,
               env={"KN_LOCAL_VALUE": "from my shell"})
    rec = json.loads(r.stdout)
    assert rec["name"] == "kn-made" and rec["runtime"] == "node"
    assert rec["min_scale"] == 0 and rec["max_scale"] == 3 and rec["concurrency"] == 5
    assert rec["limits"]["memory_mb"] == 128 and rec["limits"]["cpus"] == 0.5
    env = json.loads(cli.ok("invoke", cwd=proj).stdout)
    assert env == {"PLAIN": "plain value", "QUOTED": "it's # not a comment",
                   "DOUBLE": "tab\tand \u00e9", "FROM_LOCAL": "from my shell", "EMPTY": "",
                   "EXTRA": "x"}
    # secrets are refused, unless --env gives the value; K- drops a variable
    text = KN_FUNC_YAML.replace("'{{ env:KN_LOCAL_VALUE }}'", "'{{ secret:mysecret:key }}'")
    (proj / "func.yaml").write_text(text)
    one_line_error(cli("deploy", cwd=proj), 1, "secret")
    cli.ok("deploy", "--env", "FROM_LOCAL=given", "--env", "PLAIN-", cwd=proj)
    env = json.loads(cli.ok("invoke", "kn-made").stdout)
    assert env["FROM_LOCAL"] == "given" and "PLAIN" not in env
    # a func.yaml that is not YAML hks-func reads: the line is named
    (proj / "func.yaml").write_text("name: kn-made\nruntime: node\nrun:\n\tenvs: []\n")
    one_line_error(cli("deploy", cwd=proj), 1, "func.yaml", "line 4")
    (proj / "func.yaml").write_text("name: kn-made\nruntime: go\n")
    one_line_error(cli("deploy", cwd=proj), 1, "runtime 'go'")
    cli.ok("delete", "kn-made")


# ---------------------------------------------------------------- help, colors, templates

@pytest.mark.parametrize("cmd", ["login", "project", "create", "deploy", "invoke", "list",
                                 "describe", "logs", "delete", "run", "cron"])
def test_every_command_has_help_with_examples(cli, cmd):
    r = cli.ok(cmd, "--help")
    assert r.stdout.startswith("Usage: hks-func %s" % cmd) and "Examples:" in r.stdout
    assert r.stderr == ""
    assert cli.ok("help", cmd).stdout == r.stdout


def test_top_level_help_and_version(cli):
    r = cli.ok("--help")
    for cmd in ("login", "project", "create", "deploy", "invoke", "list", "describe", "logs",
                "delete", "run", "cron"):
        assert "\n  %s" % cmd in r.stdout
    assert "Exit status" in r.stdout
    assert re.match(r"^hks-func \d+\.\d+\.\d+$", cli.ok("--version").stdout.strip())


def run_with_stderr_on_a_tty(args, env):
    master, slave = pty.openpty()
    try:
        p = subprocess.run([HKS_FUNC, *args], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=slave, timeout=30)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return p.returncode, out.decode(errors="replace")
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)


def test_colors_only_on_a_terminal_and_not_with_no_color(cli):
    code, err = run_with_stderr_on_a_tty(["bogus"], cli.env)
    assert code == 2 and "\x1b[31m" in err
    code, err = run_with_stderr_on_a_tty(["bogus"], dict(cli.env, NO_COLOR="1"))
    assert code == 2 and "\x1b[" not in err and "usage error" in err
    code, err = run_with_stderr_on_a_tty(["--no-color", "bogus"], cli.env)
    assert code == 2 and "\x1b[" not in err
    r = cli("bogus")
    assert "\x1b[" not in r.stderr


def test_templates_are_found_through_hks_runtimes_dir(cli, tmp_path):
    rt = tmp_path / "rt"
    write(rt / "python" / "templates" / "http" / "func.yaml",
          "specVersion: 0.36.0\nname: {{NAME}}\nruntime: python\ncreated: {{CREATED}}\n")
    write(rt / "python" / "templates" / "http" / "function" / "func.py", "# custom\n")
    cli.ok("create", "-l", "python", "custom-one", env={"HKS_RUNTIMES_DIR": str(rt)})
    proj = cli.home / "custom-one"
    assert (proj / "function" / "func.py").read_text() == "# custom\n"
    fy = (proj / "func.yaml").read_text()
    assert "name: custom-one\n" in fy
    assert re.search(r"created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d\n", fy)
    one_line_error(cli("create", "-l", "node", "other", env={"HKS_RUNTIMES_DIR": str(rt)}), 1,
                   "HKS_RUNTIMES_DIR")
    # an existing, non-empty directory is refused
    write(cli.home / "taken" / "file", "x")
    one_line_error(cli("create", "-l", "node", "taken"), 1, "not empty")
    # the default templates are the runtimes' own, copied whole
    cli.ok("create", "-l", "node", "full")
    src = REPO / "runtimes" / "node" / "templates" / "http"
    copied = sorted(str(p.relative_to(cli.home / "full")) for p in (cli.home / "full").rglob("*"))
    expected = sorted(str(p.relative_to(src)) for p in src.rglob("*"))
    assert copied == expected
