"""A container's state, derived from the monitor's exit file and the monitor's liveness, never
taken from the database on trust: a monitor killed, an init killed or a host rebooted leaves a
container that reports ``exited``, not a ghost that says ``running``.

The cheap facts come first (the exit file, the monitor's /proc entry with the start time
recorded at spawn), so that ``ps`` asks the runtime nothing while the monitors are alive.
"""

from __future__ import annotations

from ..errors import OcishError
from ..monitor import conmon
from ..storage.root import Storage
from . import lifecycle, records
from .records import Container


def refresh(st: Storage, ctr: Container, locked: bool = False) -> Container:
    """The container as it is now (its row updated if what ocish knew has changed)."""
    if ctr.status not in ("created", "running"):
        return ctr
    p = lifecycle.paths(st, ctr)
    code = conmon.read_exit_file(p)
    if code is None and (lifecycle.monitor_alive(ctr, p) or not ctr.monitor_start):
        # alive; or a create that is under way or was cut short before its monitor ran,
        # which shows as created and which rm removes
        if ctr.status == "created" and ctr.started and not locked:
            return _started(st, ctr)
        return ctr
    if code is not None:
        # exited under its monitor: the exit command cleans up; record the status now
        records.update(st, ctr.id, status="exited", exit_code=code,
                       finished=lifecycle.exit_time(p))
    else:
        # the monitor is gone and left no exit status: the container cannot go on without it
        # (nobody holds its stdio or would record its end), so it is ended and cleaned up
        if locked:
            records.update(st, ctr.id, status="exited", exit_code=137,
                           finished=lifecycle.now(), error="the monitor (conmon) died")
            lifecycle.release(st, ctr)
        else:
            try:
                lifecycle.cleanup(st, ctr.id, exit_code=137)
            except OcishError:
                pass  # shown as recorded; rm -f tries again
    return records.get(st, ctr.id) or ctr


def _started(st: Storage, ctr: Container) -> Container:
    """A created container whose start began (and may have been cut short with its ocish):
    running if the runtime says so. Only such rows cost a runtime call; a start under way
    holds the lock, so the lock is taken to wait for it."""
    with lifecycle.locked(st, ctr.id):
        now = records.get(st, ctr.id)
        if now is None or now.status != "created":
            return now or ctr
        state = lifecycle.runtime_of(st, now).state(now.id)
        if state is not None and state.get("status") == "running":
            records.update(st, now.id, status="running")
            return records.get(st, now.id) or now
        return now
