"""``update``: change a live container's resource limits."""

from __future__ import annotations

from .. import spec, specraw
from ..cgroups.resources import apply
from ..errors import ConfigError, StatusError
from ..specread import Reader
from ..state import Store
from . import status as st

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any


def _check_memory(paths: dict[str, str], resources: dict[str, Any]) -> None:
    """memory.checkBeforeUpdate: refuse a limit below what the container already uses."""
    memory = resources.get("memory") or {}
    limit = memory.get("limit") if isinstance(memory, dict) else None
    if not isinstance(limit, int) or limit < 0 or not memory.get("checkBeforeUpdate"):
        return
    from ..cgroups.stats import stats

    usage = stats(paths)["memory"]["usage"]["usage"]
    if usage > limit:
        raise ConfigError(f"linux.resources.memory.limit: {limit} is below the current "
                          f"usage {usage} (checkBeforeUpdate)")


def update(store: Store, container_id: str, resources: dict[str, Any]) -> None:
    cdir = store.container(container_id)
    cdir.lock()
    try:
        state = cdir.load()
        if st.status(cdir, state) == st.STOPPED:
            raise StatusError("container not running")
        # checked as create checks linux.resources, so that apply() meets only good values
        spec.check_strings(resources, "", "resources")
        specraw.resources(Reader(resources, "", source="resources"))
        _check_memory(state.cgroup_paths, resources)
        apply(state.cgroup_paths, resources)
    finally:
        cdir.unlock()
