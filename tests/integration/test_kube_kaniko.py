"""The Kaniko driver (cluster/kaniko.c) against the fake API server (tests/kube/), through
build/kube-probe: the build context made by hksd's builder (`hksd build --context`) goes into a
ConfigMap, the executor Pod is watched until it ends, the digest comes from its termination
message; failures, deadlines and our own wait end with clear errors; the Pod and the ConfigMap
never outlive a build; everything sent is validated by kubernetes-models."""

import base64
import json
import pathlib
import subprocess

import pytest

from kube_fixture import FakeKube, missing, probe, REPO

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

POLICIES = REPO / "policies" / "kubernetes"
HKSD = REPO / "build" / "hksd"
DIGEST = "sha256:" + "5f" * 32
DEST = "registry.local:5000/fn/hello:build-1"


@pytest.fixture
def fake(tmp_path):
    f = FakeKube(tmp_path)
    f.kc = f.kubeconfig(token="t")
    yield f
    f.stop()


@pytest.fixture
def context(tmp_path):
    """A real build context: hksd's builder over a python function with dependencies."""
    if not HKSD.exists():
        pytest.skip("build/hksd not built (make build/hksd)")
    code = tmp_path / "code"
    code.mkdir()
    (code / "handler.py").write_text("import requests\n\ndef handle(req):\n    return 'hi'\n")
    (code / "requirements.txt").write_text("requests==2.31.0\n")
    out = tmp_path / "context.tar.gz"
    subprocess.run([str(HKSD), "build", "--runtime", "python", "--code", str(code), "--context",
                    str(out)], check=True, capture_output=True, timeout=60,
                   env={"HKS_ROOT": str(REPO), "PATH": "/usr/bin:/bin"})
    return out


def options(tmp_path, **over):
    doc = {"ns": "hks-builds", "registry_secret": "regcred", "function_id": "fn-0123456789abcdef0123",
           "deadline_s": 120, "wait_ms": 5000}
    doc.update(over)
    path = tmp_path / "options.json"
    path.write_text(json.dumps(doc))
    return path


def objects(fake, kind):
    return [o for o in fake.control("GET", "objects") if o["kind"] == kind]


def build(fake, context_file, opts, dest=DEST, policies=POLICIES):
    return probe("kaniko-build", policies, context_file, dest, opts, kubeconfig=fake.kc, timeout=60)


def created(fake, kind):
    plural = {"Pod": "pods", "ConfigMap": "configmaps", "Namespace": "namespaces"}[kind]
    return [r["body"] for r in fake.requests() if r["method"] == "POST" and r["path"].endswith("/" + plural)]


def test_success_reads_the_digest_and_leaves_nothing(fake, context, tmp_path):
    fake.control("POST", "pod", {"message": DIGEST + "\n"})
    rc, out, err = build(fake, context, options(tmp_path))
    assert rc == 0, err
    assert out[-1] == {"digest": DIGEST}

    # the build namespace was made from the policy, baseline enforced
    (ns,) = created(fake, "Namespace")
    assert ns["metadata"]["name"] == "hks-builds"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"

    # the context travelled byte for byte in an immutable ConfigMap
    (cm,) = created(fake, "ConfigMap")
    assert base64.b64decode(cm["binaryData"]["context.tar.gz"]) == context.read_bytes()
    assert cm["immutable"] is True
    name = cm["metadata"]["name"]
    assert name.startswith("hks-build-") and len(name) == len("hks-build-") + 20

    (pod,) = created(fake, "Pod")
    assert pod["metadata"]["name"] == name and pod["metadata"]["namespace"] == "hks-builds"
    assert pod["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "hksd", "hks.io/role": "build",
                                         "hks.io/build": name, "hks.io/function": "fn-0123456789abcdef0123"}
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == 120
    assert spec["automountServiceAccountToken"] is False
    (c,) = spec["containers"]
    assert c["image"].startswith("gcr.io/kaniko-project/executor:v1.24.0@sha256:")
    assert c["args"] == ["--context=tar:///hks-build/context.tar.gz", "--dockerfile=Dockerfile",
                         "--destination=" + DEST, "--digest-file=/dev/termination-log",
                         "--snapshot-mode=redo", "--verbosity=info"]
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert c["resources"]["limits"] == c["resources"]["requests"]
    assert c["securityContext"]["privileged"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"context": "/hks-build", "docker-config": "/kaniko/.docker"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["docker-config"]["secret"] == {"secretName": "regcred",
                                                  "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}
    assert volumes["context"]["configMap"]["name"] == name

    # deleted afterwards, and nothing the fake refused
    assert objects(fake, "Pod") == [] and objects(fake, "ConfigMap") == []
    deleted = {r["path"].rsplit("/", 2)[-2] for r in fake.requests() if r["method"] == "DELETE"}
    assert deleted == {"pods", "configmaps"}
    assert fake.invalid() == []


def test_executor_failure_is_a_clear_error_and_cleaned_up(fake, context, tmp_path):
    log = "INFO[0003] RUN pip install -r requirements.txt\nERROR: No matching distribution found for requests==99\nerror building image: exit status 1\n"
    fake.control("POST", "pod", {"message": log, "exit_code": 1})
    rc, out, err = build(fake, context, options(tmp_path))
    assert rc == 1
    msg = out[-1]["error"]
    assert out[-1]["errno"] == "EIO"
    assert "the executor failed with exit code 1 (Error)" in msg
    assert "No matching distribution found for requests==99" in msg and "\n" not in msg
    assert objects(fake, "Pod") == [] and objects(fake, "ConfigMap") == []
    assert fake.invalid() == []


def test_exit_zero_without_a_digest_is_refused(fake, context, tmp_path):
    fake.control("POST", "pod", {"message": "sha256:not-a-digest"})
    rc, out, _ = build(fake, context, options(tmp_path))
    assert rc == 1 and "without a digest" in out[-1]["error"]
    assert objects(fake, "Pod") == [] and objects(fake, "ConfigMap") == []


def test_deadline_exceeded_is_a_timeout(fake, context, tmp_path):
    fake.control("POST", "pod", {"deadline": True})
    rc, out, _ = build(fake, context, options(tmp_path))
    assert rc == 1 and out[-1]["errno"] == "ETIMEDOUT"
    assert "past its activeDeadlineSeconds" in out[-1]["error"]
    assert objects(fake, "Pod") == [] and objects(fake, "ConfigMap") == []


def test_our_wait_ends_and_deletes_the_pod(fake, context, tmp_path):
    # the Pod never terminates: hksd gives up after wait_ms and removes it
    rc, out, _ = build(fake, context, options(tmp_path, wait_ms=1500))
    assert rc == 1 and out[-1]["errno"] == "ETIMEDOUT"
    assert "no result within 1500 ms (last seen: phase Pending)" in out[-1]["error"]
    assert objects(fake, "Pod") == [] and objects(fake, "ConfigMap") == []


def test_oversized_context_is_refused_before_anything_is_created(fake, tmp_path):
    big = tmp_path / "big.tar.gz"
    big.write_bytes(b"\x1f\x8b" + b"\0" * (1 << 20))
    rc, out, _ = build(fake, big, options(tmp_path))
    assert rc == 1 and out[-1]["errno"] == "OTHER"  # EFBIG
    assert "is 1048578 bytes, more than the 1048576 bytes (1 MiB) a ConfigMap holds" in out[-1]["error"]
    assert fake.requests() == []


def test_bad_inputs_are_refused_before_anything_is_created(fake, context, tmp_path):
    not_gzip = tmp_path / "plain.tar"
    not_gzip.write_bytes(b"plain tar" * 10)
    rc, out, _ = build(fake, not_gzip, options(tmp_path))
    assert rc == 1 and "not a gzip-compressed tar" in out[-1]["error"]
    rc, out, _ = build(fake, context, options(tmp_path), dest="registry.local/fn@sha256:" + "0" * 64)
    assert rc == 1 and "invalid destination" in out[-1]["error"]
    rc, out, _ = build(fake, context, options(tmp_path, executor_image="gcr.io/kaniko-project/executor:latest"))
    assert rc == 1 and "invalid executor_image" in out[-1]["error"]
    rc, out, _ = build(fake, context, options(tmp_path, dockerfile="../Dockerfile"))
    assert rc == 1 and "invalid dockerfile" in out[-1]["error"]
    assert fake.requests() == []


def test_namespace_not_baseline_is_refused(fake, context, tmp_path):
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "loose", "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
    probe("create", "namespaces", "-", "-", kubeconfig=fake.kc, stdin=json.dumps(ns), check=True)
    fake.control("POST", "reset")
    rc, out, _ = build(fake, context, options(tmp_path, ns="loose"))
    assert rc == 1 and out[-1]["errno"] == "EACCES"
    assert 'namespace loose enforces Pod Security "privileged", not "baseline"' in out[-1]["error"]
    assert [r for r in fake.requests() if r["method"] == "POST"] == []
    # without a policy a missing namespace is not created
    rc, out, _ = build(fake, context, options(tmp_path, ns="absent"), policies="-")
    assert rc == 1 and out[-1]["errno"] == "ENOENT"


def test_pod_creation_failure_removes_the_config_map(fake, context, tmp_path):
    fake.control("POST", "fault", {"method": "POST", "path": "/api/v1/namespaces/hks-builds/pods", "status": 500, "times": 5})
    rc, out, _ = build(fake, context, options(tmp_path))
    assert rc == 1 and "HTTP 500" in out[-1]["error"]
    assert objects(fake, "ConfigMap") == [] and objects(fake, "Pod") == []


def test_reap_removes_leftovers_of_interrupted_builds(fake, context, tmp_path):
    # a build whose hksd went away: its objects stay until the reaper comes
    rendered = probe("kaniko-render", options(tmp_path), "hks-build-00000000000000000001", DEST, context,
                     kubeconfig=fake.kc, check=True)[1][-1]
    probe("create", "configmaps", "hks-builds", "-", kubeconfig=fake.kc, stdin=json.dumps(rendered["configMap"]), check=True)
    probe("create", "pods", "hks-builds", "-", kubeconfig=fake.kc, stdin=json.dumps(rendered["pod"]), check=True)
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine"}, "data": {"a": "b"}}
    probe("create", "configmaps", "hks-builds", "-", kubeconfig=fake.kc, stdin=json.dumps(other), check=True)
    assert probe("kaniko-reap", "hks-builds", "3600", kubeconfig=fake.kc, check=True)[1][-1] == {"deleted": 0}
    assert probe("kaniko-reap", "-", "-5", kubeconfig=fake.kc, check=True)[1][-1] == {"deleted": 2}
    assert [o["metadata"]["name"] for o in objects(fake, "ConfigMap")] == ["mine"]
    assert objects(fake, "Pod") == []
    assert fake.invalid() == []


def test_pod_logs(fake):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j1"},
           "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}]}}}}
    probe("create", "jobs", "p", "-", kubeconfig=fake.kc, stdin=json.dumps(job), check=True)
    fake.control("POST", "job", {"namespace": "p", "name": "j1", "log": "one\ntwo\nthree\n"})
    pod = objects(fake, "Pod")[0]["metadata"]["name"]
    assert probe("pod-logs", "p", pod, kubeconfig=fake.kc, check=True)[1][-1] == {"log": "one\ntwo\nthree\n"}
    assert probe("pod-logs", "p", pod, "1", kubeconfig=fake.kc, check=True)[1][-1] == {"log": "three\n"}
    assert probe("pod-logs", "p", pod, "0", "5", kubeconfig=fake.kc, check=True)[1][-1] == {"log": "one\nt"}
    logs = [r for r in fake.requests() if r["path"].endswith("/log")]
    assert logs[-1]["query"] == {"limitBytes": "5"}
    rc, out, _ = probe("pod-logs", "p", "nope", kubeconfig=fake.kc)
    assert rc == 1 and out[-1]["errno"] == "ENOENT"
