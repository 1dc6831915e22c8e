"""Print the python runtime manifest (JSON, one line) on stdout.

    python3 /hks/runtime/manifest.py [--all]

{"name":"python","version":"3.11.2",
 "entry":{"oneshot":"main.py (any .py file)","serve":"function/func.py with new()"},
 "modules":[...]}

"modules" lists the top-level modules a program can import: the standard library
(sys.stdlib_module_names, kept only when the interpreter can find it: Debian, for one, ships
tkinter, venv, lib2to3 ... in separate packages) and what the interpreter's site directories
hold (site-packages, dist-packages and other sys.path entries outside the standard library).
Nothing is imported: modules are found by the import system's finders. Names starting with "_"
(private modules such as _abc, _socket) are left out unless --all is given. Standard library
only, Python 3.9+; meant to run inside the sandbox at daemon start.
"""

import json
import os
import sys


def _version():
    return "%d.%d.%d" % tuple(sys.version_info[:3])


def _stdlib_dirs():
    import sysconfig
    paths = sysconfig.get_paths()
    dirs = set()
    for key in ("stdlib", "platstdlib"):
        p = paths.get(key)
        if p:
            dirs.add(os.path.realpath(p))
            dirs.add(os.path.realpath(os.path.join(p, "lib-dynload")))
    return dirs


def _stdlib_names():
    names = getattr(sys, "stdlib_module_names", None)
    if names is not None:
        return set(names)
    # Python 3.9: what the standard library directories and the builtins hold
    import pkgutil
    found = set(sys.builtin_module_names)
    for d in _stdlib_dirs():
        if os.path.isdir(d):
            found.update(m.name for m in pkgutil.iter_modules([d]))
    found.discard("site-packages")
    return found


def _findable(name, finders):
    if name in sys.builtin_module_names or name in sys.modules:
        return True
    from importlib.machinery import FrozenImporter, PathFinder
    try:
        if FrozenImporter.find_spec(name) is not None:
            return True
        return PathFinder.find_spec(name, finders) is not None
    except (ImportError, ValueError, OSError):
        return False


def _site_dirs(stdlib):
    """sys.path entries outside the standard library (site-packages, dist-packages, .pth
    additions, PYTHONPATH), without this script's own directory."""
    here = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
    out = []
    for p in sys.path[1:]:
        if not p:
            continue
        rp = os.path.realpath(p)
        if rp == here or rp in stdlib or not os.path.isdir(rp):
            continue
        if any(rp.startswith(s + os.sep) for s in stdlib if not s.endswith("lib-dynload")) \
                and "-packages" not in rp:
            continue
        if rp not in out:
            out.append(rp)
    try:
        import site
        for p in site.getsitepackages() + ([site.getusersitepackages()]
                                           if site.ENABLE_USER_SITE else []):
            rp = os.path.realpath(p)
            if os.path.isdir(rp) and rp not in out:
                out.append(rp)
    except Exception:
        pass
    return out


def _site_modules(dirs):
    import pkgutil
    names = set()
    for d in dirs:
        try:
            for m in pkgutil.iter_modules([d]):
                if m.name.isidentifier():
                    names.add(m.name)
        except OSError:
            continue
    return names


def manifest(include_private=False):
    stdlib = _stdlib_dirs()
    search = [p for p in sys.path[1:] if p]
    modules = {n for n in _stdlib_names() if _findable(n, search)}
    modules.update(_site_modules(_site_dirs(stdlib)))
    modules.discard("__main__")
    modules.discard("__phello__")
    if not include_private:
        modules = {n for n in modules if not n.startswith("_")}
    return {
        "name": "python",
        "version": _version(),
        "entry": {"oneshot": "main.py (any .py file)", "serve": "function/func.py with new()"},
        "modules": sorted(modules),
    }


if __name__ == "__main__":
    json.dump(manifest("--all" in sys.argv[1:]), sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
