"""Result types of the HKS SDK."""

from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional


@dataclass
class ExecutionResult:
    """The result of one execution. The program's fate is in ``status`` (``ok``, ``error``,
    ``timeout``, ``oom``, ``output_limit``, ``killed``, ``internal_error``), never an exception."""

    id: str = ""
    runtime: str = ""
    status: str = ""
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    timeout_reason: Optional[str] = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    peak_memory_bytes: int = 0
    oom_killed: bool = False
    message: Optional[str] = None
    warm: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ExecutionResult":
        names = {f.name for f in fields(cls)} - {"raw"}
        kw = {k: v for k, v in d.items() if k in names}
        return cls(raw=dict(d), **kw)
