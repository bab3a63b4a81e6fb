"""Lifecycle hooks: run each with the container state on stdin, its args, env and timeout."""

from __future__ import annotations

import os

from . import jsonio
from .errors import HookError

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def state_json(container_id: str, status: str, pid: int, bundle: str, oci_version: str,
               annotations: dict[str, str]) -> bytes:
    state: dict[str, Any] = {"ociVersion": oci_version, "id": container_id, "status": status,
                             "pid": pid, "bundle": bundle}
    if annotations:
        state["annotations"] = annotations
    return jsonio.dumps(state).encode()


def run(kind: str, hooks: list[dict[str, Any]], state: bytes,
        warn: Callable[[str], None] | None = None, cwd: str | None = None) -> None:
    """Run ``hooks`` (config.json hook objects) in order. The first failure raises HookError;
    with ``warn`` (poststart, poststop) each failure is only reported and the rest still run.
    ``cwd``: their working directory where runc gives them one (the bundle for the runtime's
    hooks, the rootfs for createContainer), if it still exists."""
    if cwd is not None and not os.path.isdir(cwd):
        cwd = None
    for i, hook in enumerate(hooks):
        try:
            _run_one(kind, i, hook, state, cwd)
        except HookError as exc:
            if warn is None:
                raise
            warn(str(exc))


def _run_one(kind: str, i: int, hook: dict[str, Any], state: bytes, cwd: str | None) -> None:
    import subprocess

    path = hook["path"]
    args = hook.get("args") or [path]
    env = hook.get("env")
    timeout = hook.get("timeout")
    try:
        proc = subprocess.run(
            args, executable=path, input=state, capture_output=True, timeout=timeout,
            env=None if env is None else dict(_split_env(env)), close_fds=True, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise HookError(f"error running {kind} hook #{i}: timeout after {timeout}s") from None
    except OSError as exc:
        raise HookError(f"error running {kind} hook #{i}: fork/exec {path}: "
                        f"{(exc.strerror or str(exc)).lower()}") from None
    if proc.returncode != 0:
        status = (f"exit status {proc.returncode}" if proc.returncode > 0
                  else f"signal: {-proc.returncode}")
        raise HookError(f"error running {kind} hook #{i}: {status}, stdout: "
                        f"{_one_line(proc.stdout)}, stderr: {_one_line(proc.stderr)}")


def _split_env(env: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in env:
        key, _, value = item.partition("=")
        out.append((key, value))
    return out


def _one_line(data: bytes) -> str:
    return " ".join(data.decode(errors="replace").split())


def to_json(hooks: list[Any]) -> list[dict[str, Any]]:
    """Spec Hook objects as plain dicts (what :func:`run` and state.json take)."""
    return [h.to_json() for h in hooks]

