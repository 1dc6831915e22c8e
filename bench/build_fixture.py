#!/usr/bin/python3
"""Inputs for bench/build.sh (standard library only).

  build_fixture.py base DIR     an OCI image layout at DIR: one layer with Debian's static busybox
                                (/bin/busybox, /bin/sh -> busybox), ref name "base"; the same
                                base image the integration tests make (tests/integration/
                                test_build.py make_base)
  build_fixture.py code DIR     a 10-file node function at DIR (handler, helpers, package.json
                                without dependencies, func.yaml, a README; about 16 KiB)
  build_fixture.py touch FILE   change exactly one byte of FILE (the function's lib/version.js),
                                to content it never had before: the 32 characters between the
                                quotes count up, one position per call, so the n-th call gives
                                the n-th state (good for 32 * 63 calls)
"""

import gzip
import hashlib
import io
import json
import pathlib
import sys
import tarfile

BUSYBOX = "/bin/busybox"
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
SLOTS = 32
VERSION_PREFIX = b'module.exports = "'
VERSION_SUFFIX = b'";\n'


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(layout, data):
    digest = sha256(data)
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    return digest


def make_base(layout):
    (layout / "blobs" / "sha256").mkdir(parents=True)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("bin")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        data = pathlib.Path(BUSYBOX).read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("bin/sh")
        info.type, info.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(info)
    tar_bytes = raw.getvalue()
    gz = gzip.compress(tar_bytes, mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-05-01T10:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar_bytes)]},
        "history": [{"created": "2024-05-01T10:00:00Z", "created_by": "bench: busybox"}],
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put_blob(layout, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": put_blob(layout, gz), "size": len(gz)}],
    }).encode()
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": put_blob(layout, manifest), "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": "base"}}]}))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def helper(name, n):
    body = "".join(f"    if (x === {i}) return '{name}-{i}';\n" for i in range(n))
    return (f"'use strict';\n// {name}: a helper of the benchmark's function\n"
            f"exports.{name} = (x) => {{\n{body}    return null;\n}};\n")


def make_code(d):
    files = {
        "index.js": "'use strict';\nconst { route } = require('./lib/route');\n"
                    "const version = require('./lib/version');\n"
                    "module.exports = { handle: async (context, body) => "
                    "({ version, answer: route(body) }) };\n",
        "package.json": json.dumps({"name": "bench-fn", "version": "1.0.0", "main": "index.js",
                                    "license": "MIT"}, indent=2) + "\n",
        "func.yaml": "specVersion: 0.36.0\nname: bench-fn\nruntime: node\n"
                     "invoke: http\n",
        "README.md": "# bench-fn\n\nThe function bench/build.sh builds and pushes.\n" * 20,
        "lib/version.js": (VERSION_PREFIX + b"0" * SLOTS + VERSION_SUFFIX).decode(),
        "lib/route.js": "'use strict';\nconst a = require('./alpha');\n"
                        "const b = require('./beta');\nexports.route = (body) => "
                        "a.alpha(body && body.x) || b.beta(body && body.y);\n",
    }
    for name, n in (("alpha", 60), ("beta", 50), ("gamma", 40), ("delta", 30)):
        files[f"lib/{name}.js"] = helper(name, n)
    assert len(files) == 10
    for name, text in files.items():
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def touch(path):
    data = path.read_bytes()
    if not (data.startswith(VERSION_PREFIX) and data.endswith(VERSION_SUFFIX) and
            len(data) == len(VERSION_PREFIX) + SLOTS + len(VERSION_SUFFIX)):
        sys.exit(f"build_fixture.py: {path} is not a version file made by 'code'")
    slots = bytearray(data[len(VERSION_PREFIX):-len(VERSION_SUFFIX)])
    values = [ALPHABET.index(chr(c)) for c in slots]
    n = sum(values)  # calls so far: each one adds 1 at position n % SLOTS
    pos = n % SLOTS
    if values[pos] + 1 >= len(ALPHABET):
        sys.exit(f"build_fixture.py: {path} has used up its {SLOTS * (len(ALPHABET) - 1)} states")
    slots[pos] = ord(ALPHABET[values[pos] + 1])
    path.write_bytes(VERSION_PREFIX + bytes(slots) + VERSION_SUFFIX)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("base", "code", "touch"):
        sys.exit(__doc__)
    what, path = sys.argv[1], pathlib.Path(sys.argv[2])
    {"base": make_base, "code": make_code, "touch": touch}[what](path)


if __name__ == "__main__":
    main()
