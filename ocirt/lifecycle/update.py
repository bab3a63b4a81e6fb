"""``update``: change a live container's resource limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..cgroups.resources import apply
from ..errors import StatusError
from ..state import Store
from . import status as st

if TYPE_CHECKING:
    from typing import Any


def update(store: Store, container_id: str, resources: dict[str, Any]) -> None:
    cdir = store.container(container_id)
    cdir.lock()
    try:
        state = cdir.load()
        if st.status(cdir, state) == st.STOPPED:
            raise StatusError("container not running")
        apply(state.cgroup_paths, resources)
    finally:
        cdir.unlock()
