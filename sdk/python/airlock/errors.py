"""Exceptions, one per API error kind (docs/api.md), all under AirlockError.

A JSON-RPC error's ``data.kind`` picks the class; ``data.code`` (when there is one) is
kept on the exception, and guest refusals with a familiar meaning also derive from the
matching built-in (``NotFound`` is a ``FileNotFoundError``, ``PermissionDenied`` a
``PermissionError``), so ordinary ``except`` clauses work.
"""
from __future__ import annotations

from typing import Any


class AirlockError(Exception):
    """Any failure reported by airlock. ``kind`` is the API's error kind."""

    kind = "internal"

    def __init__(self, message: str, *, code: str | None = None, data: dict[str, Any] | None = None,
                 rpc_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data or {}
        self.rpc_code = rpc_code


class Blocked(AirlockError):
    """The policy refused the operation."""
    kind = "blocked"


class HostNotAllowed(AirlockError):
    """A host that is not in the allowlist."""
    kind = "host_not_allowed"


class SecretLeak(AirlockError):
    """A secret's placeholder was sent to a host it may not reach."""
    kind = "secret_leak"


class VMNotRunning(AirlockError):
    """The sandbox exists but is not running (stopped, or still starting)."""
    kind = "vm_not_running"


class VMNotFound(AirlockError):
    """No sandbox with that id."""
    kind = "vm_not_found"


class Timeout(AirlockError):
    """The operation ran out of time. For an exec, ``result`` holds what it printed."""
    kind = "timeout"

    def __init__(self, message: str, *, result: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.result = result


class InvalidConfig(AirlockError):
    """The request was wrong: a bad config or parameter, a path that does not exist..."""
    kind = "invalid_config"


class NotFound(InvalidConfig, FileNotFoundError):
    """A guest path or command that does not exist."""


class PermissionDenied(InvalidConfig, PermissionError):
    """The guest refused access to a path."""


class InternalError(AirlockError):
    """airlock itself failed (I/O, a VM that won't boot), or the feature is not there yet."""
    kind = "internal"


class ConnectionLost(InternalError):
    """The connection to the airlock server ended."""


_BY_KIND: dict[str, type[AirlockError]] = {
    cls.kind: cls
    for cls in (Blocked, HostNotAllowed, SecretLeak, VMNotRunning, VMNotFound, Timeout, InvalidConfig, InternalError)
}


def error_from_rpc(error: dict[str, Any]) -> AirlockError:
    """The exception for a JSON-RPC error object."""
    data = error.get("data") if isinstance(error.get("data"), dict) else {}
    kind = data.get("kind", "internal")
    code = data.get("code")
    message = str(error.get("message", "request failed"))
    cls = _BY_KIND.get(kind, InternalError)
    if cls is InvalidConfig and code == "not_found":
        cls = NotFound
    elif cls is InvalidConfig and code == "permission_denied":
        cls = PermissionDenied
    return cls(message, code=code, data=data, rpc_code=error.get("code"))
