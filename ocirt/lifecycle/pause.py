"""``pause`` and ``resume``: freeze and thaw the container's cgroup."""

from __future__ import annotations

from ..cgroups.fs import Manager
from ..state import Store
from . import status as st


def pause(store: Store, container_id: str) -> None:
    _set_frozen(store, container_id, "pause", True)


def resume(store: Store, container_id: str) -> None:
    _set_frozen(store, container_id, "resume", False)


def _set_frozen(store: Store, container_id: str, operation: str, frozen: bool) -> None:
    cdir = store.container(container_id)
    cdir.lock()
    try:
        state = cdir.load()
        st.require(operation, st.status(cdir, state), container_id)
        manager = Manager(state.cgroup_paths)
        manager.freeze() if frozen else manager.thaw()
    finally:
        cdir.unlock()


def pids(store: Store, container_id: str) -> list[int]:
    cdir = store.container(container_id)
    return Manager(cdir.load().cgroup_paths).pids()
