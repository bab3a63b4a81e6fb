"""``pause`` and ``resume``: freeze and thaw the container's cgroup."""

from __future__ import annotations

from ..cgroups.fs import Manager
from ..state import Store
from . import status as st


def pause(store: Store, container_id: str) -> None:
    cdir = store.container(container_id)
    cdir.lock()
    try:
        state = cdir.load()
        st.require("pause", st.status(cdir, state), container_id)
        Manager(state.cgroup_paths).freeze()
    finally:
        cdir.unlock()


def resume(store: Store, container_id: str) -> None:
    cdir = store.container(container_id)
    cdir.lock()
    try:
        state = cdir.load()
        st.require("resume", st.status(cdir, state), container_id)
        Manager(state.cgroup_paths).thaw()
    finally:
        cdir.unlock()


def pids(store: Store, container_id: str) -> list[int]:
    cdir = store.container(container_id)
    return Manager(cdir.load().cgroup_paths).pids()
