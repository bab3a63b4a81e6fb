"""Typed messages between the runtime and the processes it spawns, over a pair of pipes.

Each message is a JSON object with a ``type`` framed by a 4-byte length. The child side reports
an error as ``{"type": "error", "kind": ..., "message": ...}``, which :meth:`Channel.expect`
turns back into the same kind of :class:`~ocirt.errors.OcirtError` in the parent.
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py builds enums, milliseconds per command
import os
import struct

from .. import errors, jsonio

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# The messages, in the order a create exchanges them.
USERNS = "userns"            # child -> parent: write my uid/gid maps
USERNS_DONE = "userns-done"  # parent -> child
PID = "pid"                  # intermediate -> parent: the init's host pid
MOUNTED = "mounted"          # init -> parent, any time before READY, no answer: a mount made
                             # in the caller's mount namespace, for delete to undo
JOINED = "joined"            # parent -> init: in the container's cgroups; the state JSON
HOOKS = "hooks"              # init -> parent: set limits, run prestart/createRuntime hooks
HOOKS_DONE = "hooks-done"    # parent -> init
READY = "ready"              # init -> parent: set up, about to wait for start
COMMITTED = "committed"      # parent -> init: state and pid file written; wait for start
ERROR = "error"              # child -> parent

_KINDS = {cls.__name__: cls for cls in (errors.OcirtError, errors.ConfigError, errors.ExecError,
                                       errors.HookError, errors.StatusError)}


class ChannelClosed(errors.OcirtError):
    pass


class Channel:
    """One end: ``rfd`` to read the peer's messages, ``wfd`` to write ours."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd

    def send(self, msg_type: str, **fields: Any) -> None:
        payload = jsonio.dumps({"type": msg_type, **fields}).encode()
        try:
            os.write(self.wfd, struct.pack("=I", len(payload)) + payload)
        except BrokenPipeError:
            # The peer failed and exited while we were answering it: its error is still in
            # the pipe, and it, not "broken pipe", is what the caller must hear.
            self.recv()
            raise ChannelClosed("container init exited before it was ready") from None

    def send_error(self, exc: BaseException) -> None:
        if isinstance(exc, errors.OcirtError):
            kind, message = type(exc).__name__, exc.message
        elif isinstance(exc, OSError):
            kind = "OcirtError"
            message = errors.strerror(exc.errno or 0) if exc.errno else str(exc)
            if exc.filename:
                message = f"{exc.filename}: {message}"
        else:
            # a bug of ours, not something to show the caller in Python's words
            kind, message = "OcirtError", "container init failed: internal error"
        try:
            self.send(ERROR, kind=kind if kind in _KINDS else "OcirtError", message=message)
        except Exception:  # noqa: BLE001 - the peer may be gone; nothing is left to tell
            pass

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = os.read(self.rfd, n - len(buf))
            if not chunk:
                raise ChannelClosed("container init exited before it was ready")
            buf += chunk
        return buf

    def recv(self) -> dict[str, Any]:
        (size,) = struct.unpack("=I", self._read(4))
        msg: dict[str, Any] = jsonio.loads(self._read(size))
        if msg["type"] == ERROR:
            raise _KINDS.get(msg.get("kind", ""), errors.OcirtError)(msg["message"])
        return msg

    def expect(self, kind: str) -> dict[str, Any]:
        msg = self.recv()
        if msg["type"] != kind:
            raise errors.OcirtError(f"internal error: expected {kind!r}, got {msg['type']!r}")
        return msg

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass


def fork_child(target: Callable[[Channel], object]) -> tuple[int, Channel]:
    """Fork; the child runs ``target(child end)`` and exits, reporting any exception on the
    channel (it never returns: a forked child must not unwind into the runtime's stack).
    Returns (child pid, parent end)."""
    parent, child = pair()
    try:
        pid = os.fork()
    except OSError as exc:
        parent.close()
        child.close()
        raise errors.SysError("fork", exc.errno or 0) from None
    if pid == 0:
        try:
            # The caller's wakeup fd (a foreground Forwarder's) is closed with the other fds:
            # a signal must not make the interpreter report a failed write to it on stderr.
            signal.set_wakeup_fd(-1)
            parent.close()
            target(child)
        except BaseException as exc:  # noqa: B036 - the parent must hear of every failure
            child.send_error(exc)
        finally:
            os._exit(1)
    child.close()
    return pid, parent


def reap(pid: int) -> None:
    """SIGKILL and reap a child of ours (an intermediate that must not outlive a failure)."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def pair() -> tuple[Channel, Channel]:
    """(parent end, child end). All four fds are close-on-exec."""
    r1, w1 = os.pipe2(os.O_CLOEXEC)
    r2, w2 = os.pipe2(os.O_CLOEXEC)
    return Channel(r1, w2), Channel(r2, w1)
