"""The container's status, derived from the live system and never trusted from disk.

    init gone, or its pid reused (start time differs)       -> stopped
    cgroup frozen                                           -> paused
    exec.fifo present and held open by the init (it waits
    for start, or runs the startContainer hooks)            -> created
    otherwise                                               -> running

The table below says which operation is legal in which status; every operation checks it here.
"""

from __future__ import annotations

import os

from ..cgroups.fs import Manager
from ..errors import StatusError
from ..linux import proc
from ..state import ContainerDir, State

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"

#: operation -> statuses in which it is allowed
ALLOWED = {
    "start": (CREATED,),
    "kill": (CREATED, RUNNING, PAUSED),
    "delete": (CREATED, STOPPED),
    "exec": (CREATED, RUNNING),
    "pause": (CREATED, RUNNING),
    "resume": (PAUSED,),
}

_REFUSALS = {
    ("start", RUNNING): "cannot start an already running container",
    ("start", PAUSED): "cannot start an already running container",
    ("start", STOPPED): "cannot start a container that has stopped",
    ("exec", STOPPED): "cannot exec in a stopped container",
    ("exec", PAUSED): "cannot exec in a paused container (use --ignore-paused to override)",
    ("resume", RUNNING): "container not paused",
    ("resume", CREATED): "container not paused",
}


def status(cdir: ContainerDir, state: State) -> str:
    if state.pid <= 0:
        return CREATING
    if not proc.alive(state.pid, state.start_time):
        return STOPPED
    if state.cgroup_paths and Manager(state.cgroup_paths).frozen():
        return PAUSED
    # The fifo alone is not proof: a start killed after the init answered leaves it behind.
    if os.path.lexists(cdir.fifo) and proc.holds_open(state.pid, cdir.fifo):
        return CREATED
    return RUNNING


def require(operation: str, current: str, container_id: str) -> None:
    """Raise StatusError unless ``operation`` is legal in status ``current``."""
    if current in ALLOWED[operation]:
        return
    message = _REFUSALS.get((operation, current))
    if message is None:
        if operation == "delete":
            message = f"cannot delete container {container_id} that is not stopped: {current}"
        else:
            message = "container not running"
    raise StatusError(message)
