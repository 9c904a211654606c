"""airlock: run untrusted code in policed QEMU microVM sandboxes, from Python.

    import airlock

    with airlock.Sandbox(policy="agent.yaml") as sb:
        r = sb.exec(["python3", "-c", "print(6*7)"])
        print(r.exit_code, r.stdout)

The SDK talks JSON-RPC to ``airlock rpc`` (spawned; the binary from $AIRLOCK_BIN or
PATH) or to an ``airlock serve`` socket ($AIRLOCK_SOCKET). ``airlock.aio`` has the same
surface on asyncio. Standard library only.
"""
from ._client import Client, default_client
from .errors import (AirlockError, Blocked, ConnectionLost, HostNotAllowed, InternalError, InvalidConfig, NotFound,
                     PermissionDenied, SecretLeak, Timeout, VMNotFound, VMNotRunning)
from .sandbox import ExecStream, Sandbox, sandboxes
from .types import Chunk, ExecResult, Exit, FileInfo, Stderr, Stdout

__version__ = "0.1.0"

__all__ = [
    "AirlockError", "Blocked", "Chunk", "Client", "ConnectionLost", "ExecResult", "ExecStream", "Exit", "FileInfo",
    "HostNotAllowed", "InternalError", "InvalidConfig", "NotFound", "PermissionDenied", "Sandbox", "SecretLeak",
    "Stderr", "Stdout", "Timeout", "VMNotFound", "VMNotRunning", "default_client", "sandboxes",
]
