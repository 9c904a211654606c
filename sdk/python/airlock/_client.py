"""The synchronous JSON-RPC client: one connection to an airlock API server, shared by
every Sandbox that uses it.

The connection is either a spawned ``airlock rpc`` (its stdin/stdout) or a Unix socket
of ``airlock serve``. A reader thread takes every line: a response completes the call
waiting for it, a notification goes to the stream (exec or event subscription) it
names. A stream is registered by the reader thread itself as it hands over the response
that created it, so no notification can arrive for a stream nobody has registered yet.
"""
from __future__ import annotations

import itertools
import json
import os
import queue
import socket as socketlib
import subprocess
import threading
from collections.abc import Mapping
from typing import IO, Any, Callable

from . import _protocol
from .errors import ConnectionLost, error_from_rpc

_END = object()  # put on a stream's queue when the connection is gone


class _Pending:
    def __init__(self, stream_key: str | None) -> None:
        self.event = threading.Event()
        self.response: dict[str, Any] | None = None
        self.stream_key = stream_key
        self.stream: queue.Queue[Any] | None = None


class Client:
    """A connection to airlock's sandbox API. ``Client()`` spawns ``airlock rpc`` (the
    binary from ``binary``, $AIRLOCK_BIN or PATH) unless ``socket`` (or $AIRLOCK_SOCKET)
    names a running ``airlock serve``."""

    def __init__(self, *, binary: str | os.PathLike[str] | None = None,
                 socket: str | os.PathLike[str] | None = None, home: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None, stderr: int | IO[Any] | None = None) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._streams: dict[str, queue.Queue[Any]] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socketlib.socket | None = None
        path = _protocol.server_socket(socket)
        if path:
            self._sock = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
            self._sock.connect(path)
            self._reader = self._sock.makefile("rb")
            self._writer = self._sock.makefile("wb")
        else:
            child_env = dict(os.environ if env is None else env)
            if home is not None:
                child_env["AIRLOCK_HOME"] = os.fspath(home)
            self._process = subprocess.Popen([_protocol.airlock_binary(binary), "rpc"], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=stderr, env=child_env)
            assert self._process.stdin is not None and self._process.stdout is not None
            self._reader = self._process.stdout
            self._writer = self._process.stdin
        self._thread = threading.Thread(target=self._read_loop, name="airlock-rpc-reader", daemon=True)
        self._thread.start()

    # ---- calls ------------------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Runs one API method and returns its result, or raises its error."""
        result, _ = self._request(method, params, None, timeout)
        return result

    def call_stream(self, method: str, params: Mapping[str, Any], stream_key: str,
                    timeout: float | None = None) -> tuple[Any, "queue.Queue[Any]"]:
        """A call whose result names a stream (result[stream_key]); returns the result and
        the queue that stream's notifications arrive on."""
        result, stream = self._request(method, params, stream_key, timeout)
        assert stream is not None
        return result, stream

    def notify(self, method: str, params: Mapping[str, Any]) -> None:
        """A notification: no reply, no wait."""
        self._send({"jsonrpc": "2.0", "method": method, "params": dict(params)})

    def forget_stream(self, key: str) -> None:
        with self._lock:
            self._streams.pop(key, None)

    def close(self) -> None:
        """Ends the connection. With a spawned ``airlock rpc`` this also removes the
        sandboxes created with auto_remove (the server does it as it exits)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._writer.close()
        except OSError:
            pass
        if self._sock is not None:
            try:
                self._sock.shutdown(socketlib.SHUT_WR)
            except OSError:
                pass
        if self._process is not None:
            try:
                self._process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._thread.join(timeout=120)
        try:
            self._reader.close()
        except OSError:
            pass
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ----------------------------------------------------------------------

    def _request(self, method: str, params: Mapping[str, Any] | None, stream_key: str | None,
                 timeout: float | None) -> tuple[Any, "queue.Queue[Any] | None"]:
        request_id = next(self._ids)
        pending = _Pending(stream_key)
        with self._lock:
            if self._closed:
                raise ConnectionLost("the client is closed")
            self._pending[request_id] = pending
        self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": dict(params or {})})
        if not pending.event.wait(timeout):
            with self._lock:
                self._pending.pop(request_id, None)
            raise TimeoutError(f"{method}: no answer within {timeout} s")
        response = pending.response or {}
        if "error" in response:
            raise error_from_rpc(response["error"])
        return response.get("result"), pending.stream

    def _send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self._write_lock:
            try:
                self._writer.write(line)
                self._writer.flush()
            except (OSError, ValueError) as e:
                raise ConnectionLost(f"the airlock server went away: {e}") from e

    def _read_loop(self) -> None:
        try:
            for line in self._reader:
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                for m in message if isinstance(message, list) else [message]:
                    if isinstance(m, dict):
                        self._dispatch(m)
        except (OSError, ValueError):
            pass
        finally:
            self._lost()

    def _dispatch(self, m: dict[str, Any]) -> None:
        if "id" in m and ("result" in m or "error" in m):
            with self._lock:
                pending = self._pending.pop(m["id"], None) if isinstance(m["id"], int) else None
                if pending is None:
                    return
                result = m.get("result")
                if pending.stream_key and isinstance(result, dict) and pending.stream_key in result:
                    pending.stream = queue.Queue()
                    self._streams[str(result[pending.stream_key])] = pending.stream
            pending.response = m
            pending.event.set()
            return
        params = m.get("params")
        if not isinstance(params, dict):
            return
        key = params.get("exec_id") or params.get("subscription_id")
        with self._lock:
            stream = self._streams.get(str(key)) if key else None
        if stream is not None:
            stream.put((m.get("method"), params))

    def _lost(self) -> None:
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
            streams = list(self._streams.values())
            self._streams.clear()
        for p in pending:
            p.response = {"error": {"code": -32008, "message": "the connection to airlock ended",
                                    "data": {"kind": "internal", "code": "connection_lost"}}}
            p.event.set()
        for s in streams:
            s.put(_END)


_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The process-wide client every Sandbox uses unless given one (spawned on first use,
    closed at exit)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            import atexit
            _default = Client()
            atexit.register(_default.close)
        return _default


Callback = Callable[[Any], None]
