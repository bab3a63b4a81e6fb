"""``start``: release the init waiting on exec.fifo, then run the poststart hooks."""

from __future__ import annotations

import errno
import os
import select

from .. import hooks
from ..errors import OcirtError, StatusError, SysError
from ..state import State, Store
from . import status as st

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from collections.abc import Callable


def start(store: Store, container_id: str, warn: Callable[[str], None] | None = None,
          trace: Callable[[str], None] | None = None) -> State:
    cdir = store.container(container_id)
    cdir.lock()
    try:
        state = cdir.load()
        current = st.status(cdir, state)
        if current == st.STOPPED:  # the init died waiting: say why, if it could
            raise StatusError("cannot start a container that has stopped"
                              + _why(cdir.init_error))
        st.require("start", current, container_id)
        _release(cdir.fifo, state.pid, cdir.init_error)
        if trace:
            trace(f"start {container_id}: init {state.pid} released and exec'd")
        try:
            os.unlink(cdir.fifo)
        except FileNotFoundError:
            pass
    finally:
        cdir.unlock()
    poststart = state.hooks.get("poststart", [])
    if poststart:
        doc = hooks.state_json(state.id, st.RUNNING, state.pid, state.bundle, state.oci_version,
                               state.annotations)
        hooks.run("poststart", poststart, doc, warn=warn or (lambda _msg: None),
                  cwd=state.bundle)
    return state


def _why(init_error: str) -> str:
    """": <what the init said failed>", if it left word in init.err."""
    try:
        with open(init_error, "rb") as f:
            said = f.read(4096).decode(errors="replace").strip()
    except OSError:
        return ""
    return f": {said}" if said else ""


def _read_rest(fd: int) -> str:
    os.set_blocking(fd, True)
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace").strip()


def _release(fifo: str, pid: int, init_error: str) -> None:
    """Open the fifo for reading (unblocking the init's open) and wait for its answer: "0"
    when its startContainer hooks passed, then end of file when it execs (the fifo is
    close-on-exec); "1" and a message when anything failed (see process/init.py); end of file
    alone when it died. The pidfd comes first: once the fifo is open the init may answer, exec
    and exit (and be reaped) before we look."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        raise OcirtError("cannot start a container that has stopped") from None
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        os.close(pidfd)
        if exc.errno == errno.ENOENT:
            raise OcirtError("cannot start an already running container") from None
        raise SysError(f"open exec fifo {fifo}", exc.errno or 0) from None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        while True:
            events = dict(poller.poll())
            if events.get(fd, 0) & select.POLLIN:
                first = os.read(fd, 1)
                if first == b"0":  # the hooks passed: what follows is the exec's outcome
                    rest = _read_rest(fd)
                    if rest.startswith("1"):
                        raise OcirtError(rest[1:] or "container init failed to start")
                    return
                if first == b"1":  # the init failed: its message follows
                    raise OcirtError(_read_rest(fd) or "container init failed to start")
            if pidfd in events or events.get(fd, 0) & select.POLLHUP:
                raise OcirtError("cannot start a container that has stopped"
                                 + _why(init_error))
    finally:
        os.close(fd)
        os.close(pidfd)
