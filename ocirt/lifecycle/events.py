"""``events``: resource statistics once (``--stats``) or as a stream, with OOM notices."""

from __future__ import annotations

import sys
import time

from .. import jsonio
from ..cgroups import stats as cgstats
from ..errors import StatusError
from ..state import Store
from . import status as st


def events(store: Store, container_id: str, interval: float, once: bool) -> None:
    cdir = store.container(container_id)
    state = cdir.load()

    def running() -> bool:
        return st.status(cdir, state) != st.STOPPED

    if not running():
        raise StatusError(f"container with id {container_id} is not running")
    paths = state.cgroup_paths
    if once:
        _emit({"type": "stats", "id": container_id, "data": cgstats.stats(paths)})
        return
    import gc

    gc.enable()  # a stream runs for as long as the container: collect what its loop leaves
    ooms = cgstats.oom_kills(paths)
    next_stats = time.monotonic()
    while running():
        now = time.monotonic()
        if now >= next_stats:
            _emit({"type": "stats", "id": container_id, "data": cgstats.stats(paths)})
            next_stats = now + interval
        seen = cgstats.oom_kills(paths)
        if seen > ooms:
            _emit({"type": "oom", "id": container_id})
            ooms = seen
        time.sleep(min(0.1, max(0.0, next_stats - time.monotonic())))


def _emit(event: dict[str, object]) -> None:
    sys.stdout.write(jsonio.dumps(event, compact=True) + "\n")
    sys.stdout.flush()
