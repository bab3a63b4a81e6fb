"""``kill``: send a signal to the init, or with ``all`` to every process in the cgroup."""

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
    if all_processes:
        # Also for a stopped init: processes may survive it when there is no own pid namespace.
        manager.signal_all(sig)
        if current == st.STOPPED:
            return
    st.require("kill", current, container_id)
    try:
        os.kill(state.pid, sig)
    except ProcessLookupError:
        if not all_processes:
            raise SysError("kill", 3) from None
    if current == st.PAUSED and sig == 9:
        manager.thaw()
