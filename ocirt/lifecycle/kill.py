"""``kill``: send a signal to the init, or with ``all`` to every process of the container."""

from __future__ import annotations

import os

from ..cgroups.fs import Manager
from ..errors import SysError
from ..state import Store
from . import status as st


def kill(store: Store, container_id: str, sig: int, all_processes: bool = False) -> None:
    cdir = store.container(container_id)
    state = cdir.load()
    current = st.status(cdir, state)
    manager = Manager(state.cgroup_paths)
    if all_processes and current == st.STOPPED:
        if not state.own_pidns:
            manager.signal_all(sig)  # processes may outlive the init without a pid namespace
        return  # with one, they died with the init
    st.require("kill", current, container_id)
    signalled: set[int] = set()
    if all_processes:
        # Without a pid namespace of its own, the container's processes are told apart only by
        # its cgroups; with one, only those in it: whatever else shares its cgroups is not the
        # container's.
        signalled = manager.signal_all(sig) if not state.own_pidns else \
            manager.signal_pidns(sig, state.pid)
    if state.pid not in signalled:
        try:
            os.kill(state.pid, sig)
        except ProcessLookupError:
            if not all_processes:
                raise SysError("kill", 3) from None
    if current == st.PAUSED and sig == 9:
        manager.thaw()
