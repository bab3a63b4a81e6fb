"""The volumes of a storage root: a row each in the ``volumes`` table and a dir
``<root>/volumes/<name>/_data`` (the mountpoint containers bind). Changes that depend on which
containers use a volume (rm, prune, and a create that claims volumes for a container) hold the
volumes lock, so a prune never removes a volume a container is being created with.

``--opt type=tmpfs|bind`` volumes are mounted per container, by the runtime, in the
container's own mount namespace (attach.py): the host never holds their mounts, so nothing is
left to unmount and two containers do not share a tmpfs volume's content.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import OcishError
from ..storage.db import transaction
from ..storage.root import Storage
from ..storage.treesize import tree_size

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # what Docker (>= 23) marks them with
OPT_KEYS = ("type", "device", "o")


class Volume:
    """One row."""

    def __init__(self, name: str, driver: str, created: str, labels: str, options: str,
                 anonymous: int, needs_copy: int) -> None:
        self.name, self.driver, self.created = name, driver, created
        self.labels: dict[str, str] = json.loads(labels)
        self.options: dict[str, str] = json.loads(options)
        self.anonymous, self.needs_copy = bool(anonymous), bool(needs_copy)

    def mountpoint(self, st: Storage) -> str:
        return os.path.join(volumes_dir(st), self.name, "_data")


def volumes_dir(st: Storage) -> str:
    return os.path.join(st.root, "volumes")


@contextmanager
def lock(st: Storage) -> Iterator[None]:
    """The volumes lock (an flock on ``<root>/volumes/.lock``)."""
    import fcntl

    os.makedirs(volumes_dir(st), mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(volumes_dir(st), ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                 | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise OcishError(f'create {name}: "{name}" includes invalid characters for a local '
                         'volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you '
                         "intended to pass a host directory, use absolute path", status=125)


def check_options(options: dict[str, str]) -> None:
    """The local driver's ``--opt``s: type=tmpfs with device and o, or a bind of device (type
    bind, or Docker's type=none with o=bind)."""
    for key in options:
        if key not in OPT_KEYS:
            raise OcishError(f'invalid option key: "{key}"')
    kind = options.get("type")
    if kind is None:
        if options:
            raise OcishError('missing required option: "type"')
        return
    if "device" not in options:
        raise OcishError('missing required option: "device"')
    if bind_device(options) is not None:
        if not os.path.isabs(options["device"]):
            raise OcishError(f"bind device {options['device']!r}: must be an absolute path")
    elif kind != "tmpfs":
        raise OcishError(f"volume type {kind!r}: only tmpfs and bind volumes are supported")


def bind_device(options: dict[str, str]) -> str | None:
    """The host path a bind-type volume binds (None for other volumes)."""
    o = options.get("o", "").split(",")
    if options.get("type") == "bind" or (options.get("type") == "none" and
                                         ("bind" in o or "rbind" in o)):
        return options.get("device")
    return None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def create(st: Storage, name: str | None, labels: dict[str, str] | None = None,
           options: dict[str, str] | None = None) -> tuple[Volume, bool]:
    """The volume *name* (a new anonymous one without a name), made if it is not there;
    whether this made it. An existing volume is returned as it is (Docker's)."""
    options = options or {}
    labels = dict(labels or {})
    if name is None:
        name = os.urandom(32).hex()
        labels[ANONYMOUS_LABEL] = ""
    check_name(name)
    check_options(options)
    found = get(st, name)
    if found is not None:
        return found, False
    path = os.path.join(volumes_dir(st), name)
    os.makedirs(volumes_dir(st), mode=0o700, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:  # a dir without its row (a create killed half way): reused
        pass
    data = os.path.join(path, "_data")
    if not os.path.isdir(data) or os.path.islink(data):
        os.mkdir(data, 0o755)
    with transaction(st.db) as conn:
        conn.execute("INSERT INTO volumes (name, created, labels, options, anonymous) "
                     "VALUES (?, ?, ?, ?, ?)", (name, _now(), json.dumps(labels),
                                                json.dumps(options), int(ANONYMOUS_LABEL in
                                                                         labels)))
    vol = get(st, name)
    assert vol is not None
    return vol, True


def get(st: Storage, name: str) -> Volume | None:
    row = st.db.execute("SELECT name, driver, created, labels, options, anonymous, needs_copy "
                        "FROM volumes WHERE name = ?", (name,)).fetchone()
    return Volume(*row) if row else None


def find(st: Storage, name: str) -> Volume:
    vol = get(st, name)
    if vol is None:
        raise OcishError(f"get {name}: no such volume")
    return vol


def all_volumes(st: Storage) -> list[Volume]:
    return [Volume(*r) for r in st.db.execute(
        "SELECT name, driver, created, labels, options, anonymous, needs_copy FROM volumes "
        "ORDER BY name")]


def copied(st: Storage, name: str) -> None:
    """The volume had its first use: no copy-up from an image any more."""
    with transaction(st.db) as conn:
        conn.execute("UPDATE volumes SET needs_copy = 0 WHERE name = ?", (name,))


def users(st: Storage) -> dict[str, list[str]]:
    """Volume name -> the IDs of the containers (any state) whose mounts name it."""
    out: dict[str, list[str]] = {}
    for cid, options in st.db.execute("SELECT id, options FROM containers ORDER BY created"):
        for m in json.loads(options).get("mounts") or []:
            if m.get("type") == "volume":
                out.setdefault(m["source"], []).append(cid)
    return out


def remove(st: Storage, name: str) -> None:
    """Remove an unused volume: its row, then its dir (call with the lock held)."""
    used = users(st).get(name)
    if used:
        raise OcishError(f"remove {name}: volume is in use - [{', '.join(used)}]")
    with transaction(st.db) as conn:
        conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
    _remove_dir(os.path.join(volumes_dir(st), name))


def _remove_dir(path: str) -> None:
    """The volume's dir (shutil.rmtree works through dir fds: a symlink a container planted
    in the volume is removed, never followed)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def prune(st: Storage, everything: bool) -> tuple[list[str], int]:
    """Remove the unused volumes (anonymous ones only, unless *everything*): their names and
    the bytes freed."""
    gone: list[str] = []
    freed = 0
    with lock(st):
        used = users(st)
        for vol in all_volumes(st):
            if vol.name in used or not (everything or vol.anonymous):
                continue
            n = tree_size(vol.mountpoint(st))
            remove(st, vol.name)
            gone.append(vol.name)
            freed += n
    return gone, freed


def inspect(st: Storage, vol: Volume) -> dict[str, Any]:
    """Docker's volume JSON."""
    return {"CreatedAt": vol.created, "Driver": vol.driver, "Labels": vol.labels,
            "Mountpoint": vol.mountpoint(st), "Name": vol.name, "Options": vol.options,
            "Scope": "local"}
