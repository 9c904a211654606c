"""The SDK on asyncio: the same surface as ``airlock.Sandbox``, with coroutines.

    async with airlock.aio.Sandbox(policy="agent.yaml") as sb:
        r = await sb.exec(["python3", "-c", "print(6*7)"])
        async for chunk in await sb.exec_stream(["make"]): ...
        async for ev in sb.events(): ...

``Sandbox(...)`` only records its arguments; the sandbox is created by ``async with``
or ``await sb.create()``. Every Sandbox uses one shared ``Client`` per event loop unless
given one; a Client spawns ``airlock rpc`` or connects to an ``airlock serve`` socket.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from . import _protocol
from .errors import ConnectionLost, Timeout, error_from_rpc
from .types import Chunk, ExecResult, Exit, FileInfo, Stderr, Stdout

_END = object()


class Client:
    """An asyncio connection to airlock's sandbox API; see ``airlock.Client``."""

    def __init__(self, *, binary: str | os.PathLike[str] | None = None,
                 socket: str | os.PathLike[str] | None = None, home: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self._binary = binary
        self._socket = socket
        self._home = home
        self._env = env
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[dict[str, Any]], str | None]] = {}
        self._streams: dict[str, asyncio.Queue[Any]] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()
        self._closed = False

    async def connect(self) -> "Client":
        async with self._connect_lock:
            if self._reader is not None:
                return self
            path = _protocol.server_socket(self._socket)
            if path:
                self._reader, self._writer = await asyncio.open_unix_connection(path, limit=_protocol.MAX_LINE)
            else:
                env = dict(os.environ if self._env is None else self._env)
                if self._home is not None:
                    env["AIRLOCK_HOME"] = os.fspath(self._home)
                self._process = await asyncio.create_subprocess_exec(
                    _protocol.airlock_binary(self._binary), "rpc", stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE, env=env, limit=_protocol.MAX_LINE)
                assert self._process.stdout is not None and self._process.stdin is not None
                self._reader = self._process.stdout
                self._writer = self._process.stdin  # type: ignore[assignment]
            self._task = asyncio.create_task(self._read_loop())
            return self

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        result, _ = await self._request(method, params, None)
        return result

    async def call_stream(self, method: str, params: Mapping[str, Any],
                          stream_key: str) -> tuple[Any, "asyncio.Queue[Any]"]:
        result, stream = await self._request(method, params, stream_key)
        assert stream is not None
        return result, stream

    def forget_stream(self, key: str) -> None:
        self._streams.pop(key, None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.close()
        if self._process is not None:
            await self._process.wait()
        if self._task is not None:
            await self._task

    async def __aenter__(self) -> "Client":
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _request(self, method: str, params: Mapping[str, Any] | None,
                       stream_key: str | None) -> tuple[Any, "asyncio.Queue[Any] | None"]:
        await self.connect()
        if self._closed:
            raise ConnectionLost("the client is closed")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (future, stream_key)
        line = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": dict(params or {})},
                          separators=(",", ":")).encode() + b"\n"
        assert self._writer is not None
        try:
            self._writer.write(line)
            await self._writer.drain()
        except (OSError, RuntimeError) as e:
            self._pending.pop(request_id, None)
            raise ConnectionLost(f"the airlock server went away: {e}") from e
        response = await future
        if "error" in response:
            raise error_from_rpc(response["error"])
        result = response.get("result")
        stream = None
        if stream_key and isinstance(result, dict):
            stream = self._streams.get(str(result.get(stream_key)))
        return result, stream

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                for m in message if isinstance(message, list) else [message]:
                    if isinstance(m, dict):
                        self._dispatch(m)
        except (OSError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            for future, _ in self._pending.values():
                if not future.done():
                    future.set_result({"error": {"code": -32008, "message": "the connection to airlock ended",
                                                 "data": {"kind": "internal", "code": "connection_lost"}}})
            self._pending.clear()
            for stream in self._streams.values():
                stream.put_nowait(_END)
            self._streams.clear()

    def _dispatch(self, m: dict[str, Any]) -> None:
        if "id" in m and ("result" in m or "error" in m):
            entry = self._pending.pop(m["id"], None) if isinstance(m["id"], int) else None
            if entry is None:
                return
            future, stream_key = entry
            result = m.get("result")
            # Registered here, before any later line is read: no notification is missed.
            if stream_key and isinstance(result, dict) and stream_key in result:
                self._streams[str(result[stream_key])] = asyncio.Queue()
            if not future.done():
                future.set_result(m)
            return
        params = m.get("params")
        if not isinstance(params, dict):
            return
        key = params.get("exec_id") or params.get("subscription_id")
        stream = self._streams.get(str(key)) if key else None
        if stream is not None:
            stream.put_nowait((m.get("method"), params))


_clients: dict[int, Client] = {}


def default_client() -> Client:
    """The shared client of the running event loop."""
    loop = asyncio.get_running_loop()
    client = _clients.get(id(loop))
    if client is None or client._closed:
        client = Client()
        _clients[id(loop)] = client
    return client


class ExecStream:
    """A running command: ``async for`` its chunks (then an Exit); write to its stdin."""

    def __init__(self, client: Client, exec_id: str, stream: "asyncio.Queue[Any]") -> None:
        self._client = client
        self.exec_id = exec_id
        self._stream = stream
        self.exit: Exit | None = None

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[Chunk]:
        while self.exit is None:
            item = await self._stream.get()
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

    async def write(self, data: bytes | str) -> None:
        await self._client.call("exec.stdin", {"exec_id": self.exec_id, "data": _protocol.encode(data)})

    async def close_stdin(self) -> None:
        await self._client.call("exec.stdin", {"exec_id": self.exec_id, "eof": True})

    async def signal(self, signal: int | str = "SIGTERM") -> None:
        await self._client.call("exec.signal", {"exec_id": self.exec_id, "signal": signal})

    async def resize(self, rows: int, cols: int) -> None:
        await self._client.call("exec.resize", {"exec_id": self.exec_id, "rows": rows, "cols": cols})

    async def wait(self) -> Exit:
        async for _ in self:
            pass
        assert self.exit is not None
        return self.exit


class Sandbox:
    """A sandbox on asyncio; arguments as for ``airlock.Sandbox``."""

    def __init__(self, policy: str | os.PathLike[str] | None = None, *, config: Mapping[str, Any] | None = None,
                 image: str | None = None, secrets: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None, network: bool = True, hostname: str | None = None,
                 add_hosts: Sequence[str] | None = None, auto_remove: bool = True, client: Client | None = None,
                 id: str | None = None) -> None:
        self._client_arg = client
        self._client: Client | None = client
        self._params = _protocol.create_params(policy, config, image, secrets, env, network, hostname, add_hosts,
                                               auto_remove)
        self.id: str | None = id
        self.boot_ms: int | None = None
        self._removed = False

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = default_client()
        return self._client

    async def create(self) -> "Sandbox":
        if self.id is None:
            result = await self.client.call("sandbox.create", self._params)
            self.id = result["id"]
            self.boot_ms = result.get("boot_ms")
        return self

    async def __aenter__(self) -> "Sandbox":
        return await self.create()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def info(self) -> dict[str, Any]:
        return await self.client.call("sandbox.get", {"id": self.id})

    async def stop(self) -> None:
        await self.client.call("sandbox.stop", {"id": self.id})

    async def start(self, secrets: Mapping[str, str] | None = None) -> None:
        await self.client.call("sandbox.start", {"id": self.id, "secrets": dict(secrets or {})})

    async def close(self) -> None:
        if self._removed or self.id is None:
            return
        self._removed = True
        await self.client.call("sandbox.remove", {"id": self.id})

    remove = close

    async def policy(self) -> dict[str, Any]:
        return (await self.client.call("policy.get", {"id": self.id}))["policy"]

    async def exec(self, command: str | Sequence[str], *, env: Mapping[str, str] | None = None,
                   cwd: str | None = None, user: str | int | None = None, stdin: bytes | str | None = None,
                   timeout: float | None = None, tty: bool = False, privileged: bool = False) -> ExecResult:
        params = _protocol.exec_params(self._id(), command, env=env, cwd=cwd, user=user, stdin=stdin,
                                       timeout=timeout, tty=tty, privileged=privileged)
        try:
            return ExecResult.from_result(await self.client.call("exec.run", params))
        except Timeout as e:
            e.result = ExecResult.from_result(e.data)
            raise

    async def exec_stream(self, command: str | Sequence[str], *, env: Mapping[str, str] | None = None,
                          cwd: str | None = None, user: str | int | None = None,
                          stdin: bytes | str | bool | None = None, timeout: float | None = None,
                          tty: bool = False, privileged: bool = False) -> ExecStream:
        params = _protocol.exec_params(self._id(), command, env=env, cwd=cwd, user=user, stdin=stdin,
                                       timeout=timeout, tty=tty, privileged=privileged)
        result, stream = await self.client.call_stream("exec.start", params, "exec_id")
        return ExecStream(self.client, result["exec_id"], stream)

    async def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        await self.client.call("file.write", {"id": self._id(), "path": path, "data": _protocol.encode(data),
                                              "mode": mode})

    async def read_file(self, path: str) -> bytes:
        return base64.b64decode((await self.client.call("file.read", {"id": self._id(), "path": path}))["data"])

    async def list_files(self, path: str) -> list[FileInfo]:
        return [FileInfo.from_result(e) for e in await self.client.call("file.list", {"id": self._id(), "path": path})]

    async def stat(self, path: str, follow: bool = True) -> FileInfo:
        return FileInfo.from_result(await self.client.call("file.stat", {"id": self._id(), "path": path,
                                                                         "follow": follow}))

    async def mkdir(self, path: str, mode: int = 0o755, parents: bool = True) -> None:
        await self.client.call("file.mkdir", {"id": self._id(), "path": path, "mode": mode, "parents": parents})

    async def remove_file(self, path: str, recursive: bool = False) -> None:
        await self.client.call("file.remove", {"id": self._id(), "path": path, "recursive": recursive})

    async def upload(self, local: str | os.PathLike[str], remote: str) -> dict[str, int]:
        return await self.client.call("file.upload", {"id": self._id(), "src": os.path.abspath(local), "dst": remote})

    async def download(self, remote: str, local: str | os.PathLike[str]) -> dict[str, int]:
        return await self.client.call("file.download", {"id": self._id(), "src": remote,
                                                        "dst": os.path.abspath(local)})

    async def events(self, from_seq: int = 0, follow: bool = True) -> AsyncIterator[dict[str, Any]]:
        result, stream = await self.client.call_stream("events.subscribe",
                                                       {"id": self._id(), "from_seq": from_seq, "follow": follow},
                                                       "subscription_id")
        sub = result["subscription_id"]
        try:
            while True:
                item = await stream.get()
                if item is _END:
                    return
                method, params = item
                if method == "events.end":
                    return
                if method == "event":
                    yield params["event"]
        finally:
            self.client.forget_stream(sub)
            try:
                await self.client.call("events.unsubscribe", {"subscription_id": sub})
            except Exception:  # already ended, or the connection is gone: nothing to undo
                pass

    def _id(self) -> str:
        if self.id is None:
            raise RuntimeError("the sandbox is not created yet: use `async with` or `await sb.create()`")
        return self.id


__all__ = ["Client", "Sandbox", "ExecStream", "default_client", "error_from_rpc"]
