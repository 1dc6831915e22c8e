"""The kubernetes backend's Kaniko strategy: a function that brings dependencies to install
(python requirements.txt, node package.json dependencies) is built from its Dockerfile by a
Kaniko Pod in the build namespace instead of the layer strategy. A real hksd, the fake API server
(tests/kube/fake-apiserver.mjs, every object validated with kubernetes-models) playing the
kubelet: the build Pod terminates with the termination message Kaniko writes (the pushed image's
digest), or exits non-zero; the fake's own Knative controller makes Services Ready. The real
registry receives the layer-strategy pushes (the Kaniko push is the executor's, not hksd's).

Needs `make kube-deps` (tests/kube/node_modules); skips without it or without docker-registry.
"""

import os
import pathlib
import re

import pytest

from test_kube_backend import (  # noqa: F401 (fixtures)
    E2E, PY_ECHO, cluster, deploy, no_invalid_objects, start, stop_clean)

pytestmark = [pytest.mark.skipif(E2E, reason="needs the fake API server's controls"),
              *__import__("test_kube_backend").pytestmark]

BUILD_NS = "hks-builds"
REQUIREMENTS = "requests==2.31.0\n"


def build_objects(cluster):
    return [o for o in cluster.objects()
            if (o["metadata"].get("labels") or {}).get("hks.io/role") == "build"]


def function_objects(cluster):
    return [o for o in cluster.objects() if o["kind"] in ("Service", "ServiceAccount",
                                                          "NetworkPolicy")]


def pod_creates(cluster):
    return [r for r in cluster.fake.control("GET", "requests")
            if r.get("method") == "POST" and "/pods" in r.get("path", "")]


@pytest.fixture
def kaniko(cluster):
    """Knative Services made Ready by the fake (the player holds off: no image to run), build
    Pods terminated as Kaniko ends; restored afterwards for the other tests of the module."""
    cluster.player.hold.add("*")
    cluster.fake.control("POST", "knative", {"ready": True, "delay_ms": 10})
    yield cluster
    cluster.fake.control("POST", "pod", {"message": None})
    cluster.fake.control("POST", "knative", {"ready": False, "delay_ms": 10})
    cluster.player.hold.clear()


def py_with_requirements(**extra):
    return {"runtime": "python", "files": [
        {"name": "function/func.py", "content": PY_ECHO},
        {"name": "requirements.txt", "content": REQUIREMENTS}],
            **extra}


def test_dependencies_are_built_by_kaniko_and_deployed_by_its_digest(kaniko):
    cluster = kaniko
    digest = "sha256:" + os.urandom(32).hex()
    cluster.fake.control("POST", "pod", {"message": digest, "exit_code": 0})
    d = start(cluster)
    status, rec = deploy(d, py_with_requirements(name="deps-py"))
    assert status == 201, rec
    registry = cluster.config()["kubernetes"]["registry"]
    assert rec["image"] == f"{registry}/hks/functions/p1@{digest}", rec
    ksvc = [o for o in cluster.objects(rec["id"]) if o["kind"] == "Service"]
    assert len(ksvc) == 1
    assert ksvc[0]["spec"]["template"]["spec"]["containers"][0]["image"] == rec["image"]

    # the build ran as a Pod in the build namespace, with the context in a ConfigMap, both gone
    pods = [r for r in pod_creates(cluster) if f"/namespaces/{BUILD_NS}/pods" in r["path"]]
    assert len(pods) == 1, pod_creates(cluster)
    assert build_objects(cluster) == []
    assert not pathlib.Path(d.state, "kube", "build", rec["id"]).exists()

    # node: package.json with dependencies takes the same way
    status, rec = deploy(d, {"runtime": "node", "files": [
        {"name": "index.js", "content": "module.exports = { handle: async () => 'ok' };\n"},
        {"name": "package.json",
         "content": '{"name": "f", "dependencies": {"left-pad": "1.3.0"}}\n'}]})
    assert status == 201, rec
    assert rec["image"].endswith("@" + digest), rec
    assert len(pod_creates(cluster)) == 2
    assert build_objects(cluster) == []
    assert stop_clean(d) == []


def test_a_failed_build_answers_502_naming_it_and_leaves_nothing(kaniko):
    cluster = kaniko
    cluster.fake.control("POST", "pod", {"message": "error building image: pip install failed",
                                         "exit_code": 1})
    d = start(cluster)
    before = function_objects(cluster)
    status, body = deploy(d, py_with_requirements())
    assert status == 502, body
    message = body["error"]["message"]
    assert "with Kaniko" in message and re.search(r"kaniko build hks-build-[0-9a-f]+", message), \
        message
    assert "pip install failed" in message, message
    assert len(pod_creates(cluster)) == 1
    assert function_objects(cluster) == before, "a failed build left function objects"
    assert build_objects(cluster) == []
    assert list(pathlib.Path(d.state, "kube", "build").iterdir()) == []
    assert list(pathlib.Path(d.state, "kube", "functions").iterdir()) == []
    assert [e for e in stop_clean(d) if '"deploy failed: its objects removed"' not in e] == []


def test_without_dependencies_the_layer_strategy_is_kept(kaniko):
    cluster = kaniko
    cluster.fake.control("POST", "pod", {"message": "sha256:" + "0" * 64, "exit_code": 0})
    d = start(cluster)
    # a requirements.txt with nothing but comments asks for no install
    status, rec = deploy(d, {"runtime": "python", "files": [
        {"name": "function/func.py", "content": PY_ECHO},
        {"name": "requirements.txt", "content": "# nothing to install\n"}]})
    assert status == 201, rec
    assert pod_creates(cluster) == [], "a function without dependencies made a build Pod"
    assert "0" * 64 not in rec["image"]
    # the layer strategy pushed the image hksd names to the real registry
    assert re.search(r"/hks/functions/p1@sha256:[0-9a-f]{64}$", rec["image"]), rec
    assert stop_clean(d) == []


def test_a_build_past_its_deadline_answers_504(kaniko):
    cluster = kaniko
    cluster.fake.control("POST", "pod", {"deadline": True})
    d = start(cluster, kaniko_deadline_s=30)
    before = function_objects(cluster)
    try:
        status, body = deploy(d, py_with_requirements())
    finally:
        cluster.fake.control("POST", "pod", {"deadline": False, "message": None})
    assert status == 504, body
    assert "past its activeDeadlineSeconds" in body["error"]["message"], body
    assert build_objects(cluster) == [] and function_objects(cluster) == before
    assert [e for e in stop_clean(d) if '"deploy failed: its objects removed"' not in e] == []
