"""``start``: release the init waiting on exec.fifo, then run the poststart hooks."""

from __future__ import annotations

import os
import select

from .. import hooks
from ..errors import OcirtError, SysError
from ..linux import syscalls as sc
from ..state import State, Store
from . import status as st


def start(store: Store, container_id: str, warn: object = None) -> State:
    cdir = store.container(container_id)
    cdir.lock()
    try:
        state = cdir.load()
        st.require("start", st.status(cdir, state), container_id)
        _release(cdir.fifo, state.pid)
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
        try:
            hooks.run("poststart", poststart, doc)
        except OcirtError as exc:
            if callable(warn):
                warn(str(exc))
    return state


def _release(fifo: str, pid: int) -> None:
    """Open the fifo for reading (unblocking the init's open) and wait for its byte, or for the
    init to die."""
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OcirtError("cannot start an already running container") from None
    except OSError as exc:
        raise SysError(f"open exec fifo {fifo}", exc.errno or 0) from None
    try:
        pidfd = sc.pidfd_open(pid)
    except OSError:
        os.close(fd)
        raise OcirtError("cannot start a container that has stopped") from None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        while True:
            events = dict(poller.poll())
            if events.get(fd, 0) & select.POLLIN:
                if os.read(fd, 1) == b"0":
                    return
            if pidfd in events or events.get(fd, 0) & select.POLLHUP:
                raise OcirtError("cannot start a container that has stopped")
    finally:
        os.close(fd)
        os.close(pidfd)
