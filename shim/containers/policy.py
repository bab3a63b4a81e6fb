"""Restart policies without a daemon (``--restart no|on-failure[:N]|always|unless-stopped``).

The monitor's exit command (``ocish container cleanup``, lifecycle.cleanup) decides once the
container has exited: ``on-failure`` restarts a non-zero exit up to N times (no limit without
N), ``always`` and ``unless-stopped`` restart whatever the status, and none restarts a
container its user stopped (``stop``, or ``kill`` with SIGKILL or the stop signal, as Docker's
``ExitOnNext``). Between the exit and the restart the container is ``restarting`` and the exit
command sleeps Docker's back-off (100 ms, doubled at each restart up to a minute, back to
100 ms after a run of 10 s or more) without holding the container's lock; it then takes the
lock and checks again, so that an ``rm -f``, ``stop`` or ``start`` during the delay wins.

The keys kept in the container's options: ``restart`` (the policy as given; ``update
--restart`` writes the same key), ``restart_count`` (inspect's RestartCount, reset by a start
of the user's), ``restart_delay`` (the last back-off) and ``user_stopped``.
"""

from __future__ import annotations

import time

from ..errors import OcishError
from ..storage.root import Storage
from . import records
from .records import Container

POLICIES = ("no", "always", "on-failure", "unless-stopped")
FIRST_DELAY, MAX_DELAY, RESET_AFTER = 0.1, 60.0, 10.0


def parse(text: str | None) -> tuple[str, int]:
    """``--restart`` as (name, maximum retry count); Docker's errors."""
    name, sep, count = (text or "no").partition(":")
    if sep and not name:
        raise OcishError("invalid restart policy format: no policy provided before colon",
                         status=125)
    n = 0
    if count:
        try:
            n = int(count)
        except ValueError:
            raise OcishError("invalid restart policy format: maximum retry count must be an "
                             "integer", status=125) from None
    if name not in POLICIES:
        raise OcishError(f"invalid restart policy: unknown policy '{name}'; use one of 'no', "
                         "'always', 'on-failure', or 'unless-stopped'", status=125)
    if n and name != "on-failure":
        raise OcishError("invalid restart policy: maximum retry count can only be used with "
                         "'on-failure'", status=125)
    if n < 0:
        raise OcishError("invalid restart policy: maximum retry count cannot be negative",
                         status=125)
    return name, n


def of(ctr: Container) -> tuple[str, int]:
    try:
        return parse(ctr.options.get("restart"))
    except OcishError:
        return "no", 0


def check(options: dict[str, object]) -> None:
    """Refuse what Docker's CLI refuses at create."""
    name, _ = parse(options.get("restart"))  # type: ignore[arg-type]
    if name != "no" and options.get("rm"):
        raise OcishError("Conflicting options: --restart and --rm", status=125)


def should_restart(ctr: Container, code: int) -> bool:
    """Whether the policy restarts the container after it exited with *code*."""
    name, limit = of(ctr)
    if name == "no" or ctr.options.get("user_stopped"):
        return False
    if name == "on-failure":
        return code != 0 and (limit == 0 or int(ctr.options.get("restart_count") or 0) < limit)
    return True


def next_delay(ctr: Container, ran: float) -> float:
    """Docker's back-off before the next restart, after a run of *ran* seconds."""
    last = float(ctr.options.get("restart_delay") or 0)
    if ran >= RESET_AFTER or last <= 0:
        return FIRST_DELAY
    return min(last * 2, MAX_DELAY)


def user_stopped(st: Storage, cid: str, stopped: bool) -> None:
    """Record that the user stopped the container (no restart) or started it again."""
    changes: dict[str, object] = {"user_stopped": True if stopped else None}
    if not stopped:
        changes.update(restart_count=None, restart_delay=None)
    records.update_options(st, cid, **changes)


def after_exit(st: Storage, cid: str, exit_command: list[str]) -> None:
    """Called by the exit command once the container is released (its lock not held): restart
    it after the back-off if its policy says so."""
    from . import lifecycle
    from .lifecycle import locked

    with locked(st, cid):
        ctr = records.get(st, cid)
        if ctr is None:
            lifecycle.drop_lock(st, cid)  # removed meanwhile: the lock this took goes too
            return
        if ctr.status != "exited" or not should_restart(ctr, ctr.exit_code):
            return
        ran = lifecycle.epoch(ctr.finished) - lifecycle.epoch(ctr.started)
        delay = next_delay(ctr, ran)
        records.update_options(st, cid, restart_delay=delay)
        records.update(st, cid, status="restarting")
        finished = ctr.finished
    time.sleep(delay)
    with locked(st, cid):
        ctr = records.get(st, cid)
        # removed, stopped or started by the user meanwhile: theirs is the last word
        if ctr is None:
            lifecycle.drop_lock(st, cid)
            return
        if ctr.status != "restarting" or ctr.finished != finished:
            return
        if ctr.options.get("user_stopped"):
            records.update(st, cid, status="exited")
            return
        records.update_options(st, cid, restart_count=int(ctr.options.get("restart_count")
                                                          or 0) + 1)
        ctr = records.get(st, cid) or ctr
        try:
            lifecycle.start_locked(st, ctr, exit_command, by_user=False)
        except OcishError as exc:
            records.update(st, cid, status="exited", error=str(exc))

