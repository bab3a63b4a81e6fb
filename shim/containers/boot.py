"""``ocish system boot``: run once when the host starts.

After a reboot no monitor is left and the runtime's state and the mounts may be stale (a
storage root on a persistent disk keeps the runtime's state dirs). Each container that was
created, running, paused or restarting is ended as state.refresh ends one whose monitor died
(marked exited, its runtime state deleted, its rootfs unmounted), and then the containers
whose restart policy asks for it are started: ``always`` ones, and ``unless-stopped`` ones
their user had not stopped (Docker's rules at a daemon's start).
"""

from __future__ import annotations

from ..errors import OcishError
from ..storage.root import Storage
from . import lifecycle, policy, records
from .state import refresh


def boot(st: Storage, exit_command: list[str]) -> list[str]:
    """End the stale containers, start those their policy restarts; returns the errors."""
    errors = []
    for ctr in records.all_containers(st):
        if ctr.status == "restarting":  # its exit command died with the host
            with lifecycle.locked(st, ctr.id):
                lifecycle.release(st, ctr)
                records.update(st, ctr.id, status="exited")
        ctr = refresh(st, ctr)
        if ctr.status != "exited":
            continue  # alive (ocish system boot run twice): nothing to do
        name, _ = policy.of(ctr)
        if name == "always" or (name == "unless-stopped" and
                                not ctr.options.get("user_stopped")):
            try:
                lifecycle.start(st, ctr, exit_command)
            except OcishError as exc:
                errors.append(f"{ctr.name}: {exc}")
    return errors
