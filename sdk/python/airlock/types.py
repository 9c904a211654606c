"""What the SDK's calls return: exec results and chunks, file entries."""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExecResult:
    """A finished command. ``stdout``/``stderr`` are text (UTF-8, undecodable bytes
    replaced); the exact bytes are in ``stdout_bytes``/``stderr_bytes``. ``exit_code`` is
    128+N after death by signal N (``signal`` then says N)."""

    exit_code: int
    stdout: str
    stderr: str
    duration_ms: int
    signal: int | None = None
    signal_name: str | None = None
    timed_out: bool = False
    stdout_bytes: bytes = field(default=b"", repr=False)
    stderr_bytes: bytes = field(default=b"", repr=False)
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @classmethod
    def from_result(cls, r: dict[str, Any]) -> "ExecResult":
        out = base64.b64decode(r.get("stdout", ""))
        err = base64.b64decode(r.get("stderr", ""))
        return cls(exit_code=int(r.get("exit_code", -1)), stdout=out.decode("utf-8", "replace"),
                   stderr=err.decode("utf-8", "replace"), duration_ms=int(r.get("duration_ms", 0)),
                   signal=r.get("signal"), signal_name=r.get("signal_name"),
                   timed_out=bool(r.get("timed_out", False)), stdout_bytes=out, stderr_bytes=err,
                   stdout_truncated=bool(r.get("stdout_truncated", False)),
                   stderr_truncated=bool(r.get("stderr_truncated", False)))


@dataclass(frozen=True)
class Stdout:
    """A chunk of a streamed command's standard output (or its terminal, with tty)."""
    data: bytes


@dataclass(frozen=True)
class Stderr:
    """A chunk of a streamed command's standard error."""
    data: bytes


@dataclass(frozen=True)
class Exit:
    """The end of a streamed command; the last item of the stream."""
    exit_code: int
    duration_ms: int
    signal: int | None = None
    signal_name: str | None = None
    timed_out: bool = False
    error: str | None = None  # set when the sandbox stopped under the command

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> "Exit":
        return cls(exit_code=int(p.get("exit_code", -1)), duration_ms=int(p.get("duration_ms", 0)),
                   signal=p.get("signal"), signal_name=p.get("signal_name"),
                   timed_out=bool(p.get("timed_out", False)), error=p.get("error"))


Chunk = Stdout | Stderr | Exit


@dataclass(frozen=True)
class FileInfo:
    """One entry of a folder listing (symlinks are not followed)."""
    name: str
    size: int
    mode: int
    mod_time: int
    is_dir: bool
    type: str = "file"

    @classmethod
    def from_result(cls, r: dict[str, Any]) -> "FileInfo":
        return cls(name=str(r.get("name", "")), size=int(r.get("size", 0)), mode=int(r.get("mode", 0)),
                   mod_time=int(r.get("mod_time", 0)), is_dir=bool(r.get("is_dir", False)),
                   type=str(r.get("type", "file")))
