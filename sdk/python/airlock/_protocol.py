"""What the sync and asyncio clients share: how to reach airlock, and how SDK arguments
become API params (docs/api.md)."""
from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

MAX_LINE = 512 * 1024 * 1024  # a little over the server's message cap


def airlock_binary(binary: str | os.PathLike[str] | None = None) -> str:
    """The airlock executable: the argument, else $AIRLOCK_BIN, else airlock on PATH."""
    chosen = binary or os.environ.get("AIRLOCK_BIN") or shutil.which("airlock")
    if not chosen:
        raise FileNotFoundError("airlock not found: install it, put it on PATH or set AIRLOCK_BIN")
    return os.fspath(chosen)


def server_socket(socket: str | os.PathLike[str] | None = None) -> str | None:
    """An `airlock serve` socket to connect to instead of spawning: the argument, else
    $AIRLOCK_SOCKET."""
    chosen = socket or os.environ.get("AIRLOCK_SOCKET")
    return os.fspath(chosen) if chosen else None


def encode(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")


def normalize_secrets(secrets: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"NAME": {"value"|"value_from_env": ..., "hosts": [...]}}``, also accepting the
    shorthand ``{"NAME": ("value", ["host", ...])}``."""
    out: dict[str, Any] = {}
    for name, spec in (secrets or {}).items():
        if isinstance(spec, Mapping):
            out[name] = dict(spec)
        elif isinstance(spec, tuple) and len(spec) == 2:
            value, hosts = spec
            out[name] = {"value": value, "hosts": [hosts] if isinstance(hosts, str) else list(hosts)}
        else:
            raise TypeError(f"secret {name}: give {{'value': ..., 'hosts': [...]}} or (value, [hosts])")
    return out


def create_params(policy: str | os.PathLike[str] | None, config: Mapping[str, Any] | None,
                  image: str | None, secrets: Mapping[str, Any] | None, env: Mapping[str, str] | None,
                  network: bool, hostname: str | None, add_hosts: Sequence[str] | None,
                  auto_remove: bool) -> dict[str, Any]:
    params: dict[str, Any] = {"network": network, "auto_remove": auto_remove, "base_dir": os.getcwd()}
    cfg = dict(config or {})
    if env:
        cfg["env"] = {**cfg.get("env", {}), **env}
    if cfg:
        params["config"] = cfg
    if policy is not None:
        params["policy_file"] = os.path.abspath(os.fspath(policy))
    if image:
        params["image"] = image
    if secrets:
        params["secrets"] = normalize_secrets(secrets)
    if hostname:
        params["hostname"] = hostname
    if add_hosts:
        params["add_hosts"] = list(add_hosts)
    return params


def exec_params(sandbox_id: str, command: str | Sequence[str], *, env: Mapping[str, str] | None,
                cwd: str | None, user: str | int | None, stdin: bytes | str | bool | None,
                timeout: float | None, tty: bool, privileged: bool = False) -> dict[str, Any]:
    params: dict[str, Any] = {"id": sandbox_id}
    if isinstance(command, str):
        params["command"] = command
    else:
        params["argv"] = [os.fspath(a) for a in command]
    if env:
        params["env"] = dict(env)
    if cwd:
        params["cwd"] = cwd
    if user is not None:
        params["user"] = user
    if tty:
        params["tty"] = True
    if stdin is True:
        params["stdin"] = True
    elif stdin not in (None, False):
        params["stdin"] = encode(stdin)  # type: ignore[arg-type]
    if timeout is not None:
        params["timeout_seconds"] = timeout
    if privileged:
        params["privileged"] = True
    return params
