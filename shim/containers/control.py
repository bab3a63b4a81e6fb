"""Docker's lifecycle commands beyond create/start/stop/kill/rm: pause and unpause (the
runtime's ``pause``/``resume``), restart, rename and ``container prune``.

A paused container stays ``running`` in the database (it is, frozen) with ``paused`` in its
options: every command that asks whether a container runs keeps working, and ``ps``/``inspect``
show Docker's ``Up 3 seconds (Paused)`` / State.Status ``paused``. The flag is cleared when the
container is started again, and means nothing once it has exited.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ..errors import OcishError
from ..events import log as events
from ..storage.root import Storage
from . import lifecycle, records
from .records import Container
from .state import refresh


def is_paused(ctr: Container) -> bool:
    return ctr.status == "running" and bool(ctr.options.get("paused"))


def status(ctr: Container) -> str:
    """Docker's State.Status: created, running, paused, restarting, exited."""
    return "paused" if is_paused(ctr) else ctr.status


def status_suffix(st: Storage, ctr: Container) -> str:
    """What Docker's ps adds to ``Up 5 seconds`` of a running container: `` (Paused)``, or
    its health: `` (health: starting)``, `` (healthy)``, `` (unhealthy)``."""
    from .health import state

    if is_paused(ctr):
        return " (Paused)"
    h = state(st, ctr)
    if h is None:
        return ""
    return " (health: starting)" if h["Status"] == "starting" else f" ({h['Status']})"


def inspect_state(st: Storage, ctr: Container, out: dict[str, Any]) -> dict[str, Any]:
    """Add to inspect's JSON what this module and the restart policies and healthchecks
    know: State.Status/Paused/Restarting/Health, RestartCount, HostConfig.RestartPolicy,
    Config.Healthcheck."""
    from . import health, policy

    s = out["State"]
    s["Status"] = status(ctr)
    s["Paused"] = is_paused(ctr)
    s["Restarting"] = ctr.status == "restarting"
    s["Running"] = s["Running"] or s["Restarting"]
    h = health.state(st, ctr) if ctr.status != "created" else None
    if h is not None:
        s["Health"] = h
    out["RestartCount"] = int(ctr.options.get("restart_count") or 0)
    name, n = policy.of(ctr)
    out["HostConfig"]["RestartPolicy"] = {"Name": name, "MaximumRetryCount": n}
    if ctr.options.get("healthcheck"):
        out["Config"]["Healthcheck"] = ctr.options["healthcheck"]
    return out


def pause(st: Storage, ctr: Container) -> None:
    with lifecycle.locked(st, ctr.id):
        ctr = refresh(st, ctr, locked=True)
        if ctr.status != "running":
            raise OcishError(f"Container {ctr.id} is not running")
        if is_paused(ctr):
            raise OcishError(f"Container {ctr.id} is already paused")
        lifecycle.runtime_of(st, ctr).pause(ctr.id)
        records.update_options(st, ctr.id, paused=True)
    events.container(st, ctr, "pause")


def unpause(st: Storage, ctr: Container) -> None:
    with lifecycle.locked(st, ctr.id):
        ctr = refresh(st, ctr, locked=True)
        if not is_paused(ctr):
            raise OcishError(f"Container {ctr.id} is not paused")
        lifecycle.runtime_of(st, ctr).resume(ctr.id)
        records.update_options(st, ctr.id, paused=None)
    events.container(st, ctr, "unpause")


def thaw(st: Storage, ctr: Container) -> None:
    """After a signal to a paused container: thaw it so that the signal is acted on (what
    Docker's kill and stop do). The container may be gone already: best effort."""
    cur = records.get(st, ctr.id)
    if cur is None or not cur.options.get("paused"):
        return
    try:
        lifecycle.runtime_of(st, cur).resume(cur.id)
    except OcishError:
        pass
    records.update_options(st, cur.id, paused=None)


def restart(st: Storage, ctr: Container, timeout: int | None,
            exit_command: list[str]) -> None:
    """Docker's restart: stop (if it runs), then start; the same container, its ID kept."""
    lifecycle.stop(st, ctr, timeout)
    lifecycle.start(st, records.get(st, ctr.id) or ctr, exit_command)
    events.container(st, ctr, "restart")


def rename(st: Storage, ctr: Container, new: str) -> None:
    from ..storage.db import transaction

    records.check_name(new)
    if new == ctr.name:
        raise OcishError("Renaming a container with the same name as its current name")
    with transaction(st.db) as conn:
        row = conn.execute("SELECT id FROM containers WHERE name = ?", (new,)).fetchone()
        if row is not None:
            raise OcishError(f'Conflict. The container name "/{new}" is already in use by '
                             f'container "{row["id"]}". You have to remove (or rename) that '
                             "container to be able to reuse that name.")
        conn.execute("UPDATE containers SET name = ? WHERE id = ?", (new, ctr.id))
    records.update_options(st, ctr.id, name=new)
    old = ctr.name
    ctr.name = new
    events.container(st, ctr, "rename", oldName="/" + old)


def size_of(path: str) -> int:
    """Bytes used by the files under *path* (not following symlinks; hard links once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                s = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if (s.st_dev, s.st_ino) not in seen:
                seen.add((s.st_dev, s.st_ino))
                total += s.st_size if name in files else 0
    return total


def prune(st: Storage, until: float | None, label_filters: list[tuple[str, str | None, bool]]
          ) -> tuple[list[str], int]:
    """Remove the containers that do not run (created, exited) and match the filters: created
    before *until*, and each ``(key, value or None, wanted)`` label filter (``label=`` wants
    it, ``label!=`` does not). Returns the IDs removed and the bytes their upper dirs held."""
    removed, space = [], 0
    for ctr in records.all_containers(st):
        ctr = refresh(st, ctr)
        if ctr.status not in ("created", "exited"):
            continue
        if until is not None and _created(ctr) >= until:
            continue
        labels = events.labels(ctr)
        if not all(((key in labels) if value is None else (labels.get(key) == value)) == want
                   for key, value, want in label_filters):
            continue
        size = size_of(os.path.join(ctr.dir(st), "upper"))
        try:
            lifecycle.remove(st, ctr, force=False)
        except OcishError:
            continue  # started meanwhile
        removed.append(ctr.id)
        space += size
    return removed, space


def _created(ctr: Container) -> float:
    return lifecycle.epoch(ctr.created) or time.time()
