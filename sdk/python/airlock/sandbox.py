"""The synchronous Sandbox: one policed microVM, and everything you can do in it."""
from __future__ import annotations

import base64
import os
import queue
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from . import _protocol
from ._client import _END, Client, default_client
from .errors import ConnectionLost, Timeout, error_from_rpc
from .types import Chunk, ExecResult, Exit, FileInfo, Stderr, Stdout


class ExecStream:
    """A running command: iterate it for ``Stdout``/``Stderr`` chunks and a final
    ``Exit``. With ``stdin=True`` write to it, then ``close_stdin()``."""

    def __init__(self, client: Client, exec_id: str, stream: "queue.Queue[Any]") -> None:
        self._client = client
        self.exec_id = exec_id
        self._stream = stream
        self.exit: Exit | None = None

    def __iter__(self) -> Iterator[Chunk]:
        while self.exit is None:
            item = self._stream.get()
            if item is _END:
                raise ConnectionLost("the connection to airlock ended while the command ran")
            method, params = item
            if method == "exec.stdout":
                yield Stdout(base64.b64decode(params.get("data", "")))
            elif method == "exec.stderr":
                yield Stderr(base64.b64decode(params.get("data", "")))
            elif method == "exec.exit":
                self.exit = Exit.from_params(params)
                self._client.forget_stream(self.exec_id)
                yield self.exit

    def write(self, data: bytes | str) -> None:
        self._client.call("exec.stdin", {"exec_id": self.exec_id, "data": _protocol.encode(data)})

    def close_stdin(self) -> None:
        self._client.call("exec.stdin", {"exec_id": self.exec_id, "eof": True})

    def signal(self, signal: int | str = "SIGTERM") -> None:
        self._client.call("exec.signal", {"exec_id": self.exec_id, "signal": signal})

    def resize(self, rows: int, cols: int) -> None:
        self._client.call("exec.resize", {"exec_id": self.exec_id, "rows": rows, "cols": cols})

    def wait(self) -> Exit:
        """Reads to the end (discarding output) and returns the Exit."""
        for _ in self:
            pass
        assert self.exit is not None
        return self.exit


class Sandbox:
    """A sandbox: created and booted by the constructor, removed by ``close()`` (or at the
    end of a ``with`` block, or when the client's connection ends if ``auto_remove``).

    ``policy`` is a policy file (YAML or JSON); ``config`` the same shape as a dict,
    merged over it; ``secrets`` maps NAME to ``{"value" | "value_from_env": ..., "hosts":
    [...]}`` (or ``(value, [hosts])``); ``env`` adds variables every command gets. Pass
    ``id=`` to attach to an existing sandbox instead of creating one."""

    def __init__(self, policy: str | os.PathLike[str] | None = None, *, config: Mapping[str, Any] | None = None,
                 image: str | None = None, secrets: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None, network: bool = True, hostname: str | None = None,
                 add_hosts: Sequence[str] | None = None, auto_remove: bool = True, client: Client | None = None,
                 id: str | None = None) -> None:
        self._client = client or default_client()
        self._removed = False
        if id is not None:
            self.id = id
            self.boot_ms = None
            return
        params = _protocol.create_params(policy, config, image, secrets, env, network, hostname, add_hosts,
                                         auto_remove)
        result = self._client.call("sandbox.create", params)
        self.id: str = result["id"]
        self.boot_ms: int | None = result.get("boot_ms")

    # ---- lifecycle ------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The sandbox as ``sandbox.get`` reports it (status, image, config, ...)."""
        return self._client.call("sandbox.get", {"id": self.id})

    def stop(self) -> None:
        """Stops the VM, keeping its disk (``start()`` boots it again)."""
        self._client.call("sandbox.stop", {"id": self.id})

    def start(self, secrets: Mapping[str, str] | None = None) -> None:
        """Boots a stopped sandbox again. Secrets given as values at create must be given
        again (values are never stored)."""
        self._client.call("sandbox.start", {"id": self.id, "secrets": dict(secrets or {})})

    def close(self) -> None:
        """Stops and deletes the sandbox."""
        if self._removed:
            return
        self._removed = True
        self._client.call("sandbox.remove", {"id": self.id})

    remove = close

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def policy(self) -> dict[str, Any]:
        """The sandbox's policy, normalised, with secret and env values redacted."""
        return self._client.call("policy.get", {"id": self.id})["policy"]

    # ---- commands -----------------------------------------------------------------------

    def exec(self, command: str | Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
             user: str | int | None = None, stdin: bytes | str | None = None, timeout: float | None = None,
             tty: bool = False, privileged: bool = False) -> ExecResult:
        """Runs a command to its end. A list is an argv, a string a shell command line.
        Raises ``airlock.Timeout`` (with ``.result``) when ``timeout`` seconds pass."""
        params = _protocol.exec_params(self.id, command, env=env, cwd=cwd, user=user, stdin=stdin, timeout=timeout,
                                       tty=tty, privileged=privileged)
        try:
            return ExecResult.from_result(self._client.call("exec.run", params))
        except Timeout as e:
            e.result = ExecResult.from_result(e.data)
            raise

    def exec_stream(self, command: str | Sequence[str], *, env: Mapping[str, str] | None = None,
                    cwd: str | None = None, user: str | int | None = None, stdin: bytes | str | bool | None = None,
                    timeout: float | None = None, tty: bool = False, privileged: bool = False) -> ExecStream:
        """Starts a command and streams its output: iterate the result for chunks, then an
        Exit. ``stdin=True`` keeps stdin open for ``write()``; bytes are sent at once."""
        params = _protocol.exec_params(self.id, command, env=env, cwd=cwd, user=user, stdin=stdin, timeout=timeout,
                                       tty=tty, privileged=privileged)
        result, stream = self._client.call_stream("exec.start", params, "exec_id")
        return ExecStream(self._client, result["exec_id"], stream)

    # ---- files --------------------------------------------------------------------------

    def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        self._client.call("file.write", {"id": self.id, "path": path, "data": _protocol.encode(data), "mode": mode})

    def read_file(self, path: str) -> bytes:
        return base64.b64decode(self._client.call("file.read", {"id": self.id, "path": path})["data"])

    def list_files(self, path: str) -> list[FileInfo]:
        return [FileInfo.from_result(e) for e in self._client.call("file.list", {"id": self.id, "path": path})]

    def stat(self, path: str, follow: bool = True) -> FileInfo:
        return FileInfo.from_result(self._client.call("file.stat", {"id": self.id, "path": path, "follow": follow}))

    def mkdir(self, path: str, mode: int = 0o755, parents: bool = True) -> None:
        self._client.call("file.mkdir", {"id": self.id, "path": path, "mode": mode, "parents": parents})

    def remove_file(self, path: str, recursive: bool = False) -> None:
        self._client.call("file.remove", {"id": self.id, "path": path, "recursive": recursive})

    def upload(self, local: str | os.PathLike[str], remote: str) -> dict[str, int]:
        """Copies a host file or folder to ``remote`` (a folder keeps modes and symlinks;
        no link is followed below it on either side). Returns the counts."""
        return self._client.call("file.upload", {"id": self.id, "src": os.path.abspath(local), "dst": remote})

    def download(self, remote: str, local: str | os.PathLike[str]) -> dict[str, int]:
        """Copies a guest file or folder to the host path ``local``."""
        return self._client.call("file.download", {"id": self.id, "src": remote, "dst": os.path.abspath(local)})

    # ---- events -------------------------------------------------------------------------

    def events(self, from_seq: int = 0, follow: bool = True) -> Iterator[dict[str, Any]]:
        """The audit events from ``from_seq`` on, in seq order with no gaps: the history,
        then (with ``follow``) live ones until the sandbox stops. Stop iterating whenever
        you like; the subscription ends with the generator."""
        result, stream = self._client.call_stream("events.subscribe",
                                                  {"id": self.id, "from_seq": from_seq, "follow": follow},
                                                  "subscription_id")
        sub = result["subscription_id"]
        try:
            while True:
                item = stream.get()
                if item is _END:
                    return
                method, params = item
                if method == "events.end":
                    return
                if method == "event":
                    yield params["event"]
        finally:
            self._client.forget_stream(sub)
            try:
                self._client.call("events.unsubscribe", {"subscription_id": sub})
            except Exception:  # already ended, or the connection is gone: nothing to undo
                pass


def sandboxes(client: Client | None = None) -> list[dict[str, Any]]:
    """Every sandbox of the airlock home, as ``sandbox.list`` reports them."""
    return (client or default_client()).call("sandbox.list")


__all__ = ["Sandbox", "ExecStream", "sandboxes", "error_from_rpc"]
