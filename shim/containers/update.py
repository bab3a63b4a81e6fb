"""``ocish update``: new resource limits (and restart policy) for a container, applied to a
running one through the runtime's ``update`` and recorded in its options, so that a restart
(which regenerates config.json from them, hostconfig.apply) keeps them."""

from __future__ import annotations

import json
from typing import Any

from ..errors import OcishError
from ..storage.db import transaction
from ..storage.root import Storage
from . import lifecycle, records, resources
from .records import Container

RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")


def check_restart(text: str) -> str:
    """Docker's --restart syntax: no, always, unless-stopped, on-failure[:N]."""
    name, sep, count = text.partition(":")
    if name not in RESTART_POLICIES or (sep and (name != "on-failure" or not count.isdigit())):
        raise OcishError(f"invalid restart policy {text!r}: want no, always, unless-stopped "
                         "or on-failure[:N]")
    return text


def update(st: Storage, ctr: Container, flags: dict[str, Any], restart: str | None) -> None:
    """Check the new values against the recorded ones, give them to the runtime if the
    container runs, and record them."""
    from .state import refresh

    if restart is not None:
        check_restart(restart)
    with lifecycle.locked(st, ctr.id):
        cur = records.get(st, ctr.id)
        if cur is None:
            raise OcishError(f"No such container: {ctr.id}")
        old = cur.options.get("resources") or {}
        new = resources.resources(flags, current=old)
        mem, old_mem = new.get("memory") or {}, old.get("memory") or {}
        if flags.get("memory") is not None and flags.get("memory_swap") is None and \
                old_mem.get("swap") and old_mem.get("swap") == 2 * old_mem.get("limit", 0):
            mem["swap"] = 2 * mem["limit"]  # the swap Docker gave by default follows memory
        cur = refresh(st, cur, locked=True)
        if cur.status in ("created", "running"):  # its cgroup exists: the runtime's update
            changed = {k: v for k, v in new.items() if v != old.get(k)}
            if "pids" in changed and not changed["pids"]:
                changed["pids"] = {"limit": -1}
            if changed:
                lifecycle.runtime_of(st, cur).update(cur.id, changed)
        opts = {**cur.options, "resources": new}
        if restart is not None:
            opts["restart"] = restart
        with transaction(st.db) as conn:
            conn.execute("UPDATE containers SET options = ? WHERE id = ?",
                         (json.dumps(opts), cur.id))
