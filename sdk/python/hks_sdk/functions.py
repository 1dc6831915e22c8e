"""Module-level one-liners on a client configured from the environment (``$HKS_URL``,
``$HKS_TOKEN``, ``$HKS_PROJECT``)::

    import hks_sdk
    print(hks_sdk.functions.execute(code="print('hi')").stdout)

    with hks_sdk.functions.temporary(code=HANDLER) as fn:
        print(fn.invoke({"x": 1}).json())

Each call builds a fresh ``Client()`` (and closes its idle connection afterwards), so a token
renewed in the environment is picked up. For other settings (url, token, timeout, retries) and to
keep connections open across calls, use ``Client(...).functions``: it has the same methods.
"""

import builtins
import contextlib
from typing import Any, Iterator, Optional

from .client import Client, FilesArg
from .models import ExecutionResult, Function, InvocationResult

__all__ = ["execute", "deploy", "temporary", "get", "list", "delete", "invoke"]


@contextlib.contextmanager
def _functions() -> Iterator[Any]:
    client = Client()
    try:
        yield client.functions
    finally:
        client.close()  # a Function returned stays usable: its client reconnects


def execute(code: Optional[str] = None, runtime: str = "python", files: Optional[FilesArg] = None,
            **kwargs: Any) -> ExecutionResult:
    """``Client().functions.execute(...)``: run code once in a fresh sandbox."""
    with _functions() as f:
        return f.execute(code, runtime=runtime, files=files, **kwargs)


def deploy(code: Optional[str] = None, runtime: str = "python", **kwargs: Any) -> Function:
    """``Client().functions.deploy(...)``: deploy a function and return it."""
    with _functions() as f:
        return f.deploy(code, runtime=runtime, **kwargs)


@contextlib.contextmanager
def temporary(**deploy_kwargs: Any) -> Iterator[Function]:
    """``with hks_sdk.functions.temporary(code=...) as fn:``: deployed for the block, deleted at
    its end (also when it raises)."""
    with _functions() as f, f.temporary(**deploy_kwargs) as fn:
        yield fn


def get(id: str) -> Function:
    """``Client().functions.get(id)``."""
    with _functions() as f:
        return f.get(id)


def list() -> "builtins.list[Function]":  # noqa: A001 - mirrors client.functions.list
    """``Client().functions.list()``: the functions of the token's project."""
    with _functions() as f:
        return f.list()


def delete(id: str, missing_ok: bool = False) -> bool:
    """``Client().functions.delete(id)``."""
    with _functions() as f:
        return f.delete(id, missing_ok=missing_ok)


def invoke(id: str, body: Any = None, **kwargs: Any) -> InvocationResult:
    """``Client().functions.invoke(id, ...)``: one HTTP request to a deployed function."""
    with _functions() as f:
        return f.invoke(id, body, **kwargs)
