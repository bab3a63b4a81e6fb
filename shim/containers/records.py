"""Container rows in the database, found by full ID, unique ID prefix or name."""

from __future__ import annotations

import json
import os
import re

from ..errors import OcishError
from ..storage.db import transaction
from ..storage.root import Storage

TYPE_CHECKING = False  # not typing's: it costs the run path ms
if TYPE_CHECKING:
    from typing import Any

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_COLUMNS = ("id, name, image_id, image, created, options, runtime, status, pid, monitor_pid, "
            "monitor_start, exit_code, started, finished, error")


class Container:
    """One row. ``options`` holds what the command line asked for (see lifecycle.create);
    status is one of created, running, exited (as last derived, see state.refresh)."""

    def __init__(self, id: str, name: str, image_id: str, image: str, created: str,
                 options: str, runtime: str, status: str, pid: int, monitor_pid: int,
                 monitor_start: str, exit_code: int, started: str, finished: str,
                 error: str) -> None:
        self.id, self.name, self.image_id, self.image = id, name, image_id, image
        self.created, self.runtime, self.status, self.pid = created, runtime, status, pid
        self.options: dict[str, Any] = json.loads(options)
        self.monitor_pid, self.monitor_start, self.exit_code = monitor_pid, monitor_start, \
            exit_code
        self.started, self.finished, self.error = started, finished, error

    def dir(self, st: Storage) -> str:
        """The container's own dir: bundle, upper dir, logs, exit file, monitor files."""
        return container_dir(st, self.id)


def container_dir(st: Storage, cid: str) -> str:
    return os.path.join(st.root, "containers", cid)


def check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise OcishError(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                         "are allowed", status=125)


def insert(st: Storage, ctr: dict[str, Any]) -> None:
    """Add a new container's row; the name must be free."""
    with transaction(st.db) as conn:
        row = conn.execute("SELECT id FROM containers WHERE name = ?", (ctr["name"],)
                           ).fetchone()
        if row is not None:
            raise OcishError(f'Conflict. The container name "/{ctr["name"]}" is already in use '
                             f'by container "{row["id"]}". You have to remove (or rename) that '
                             "container to be able to reuse that name.", status=125)
        conn.execute("INSERT INTO containers (id, name, image_id, image, created, options, "
                     "runtime, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (ctr["id"], ctr["name"], ctr["image_id"], ctr["image"], ctr["created"],
                      json.dumps(ctr["options"]), ctr["runtime"], "created"))


def update(st: Storage, cid: str, **fields: object) -> None:
    """Set some columns of a row."""
    cols = ", ".join(f"{k} = ?" for k in fields)
    with transaction(st.db) as conn:
        conn.execute(f"UPDATE containers SET {cols} WHERE id = ?", (*fields.values(), cid))


def delete(st: Storage, cid: str) -> None:
    with transaction(st.db) as conn:
        conn.execute("DELETE FROM containers WHERE id = ?", (cid,))


def all_containers(st: Storage) -> list[Container]:
    """Every container, newest first."""
    return [Container(*r) for r in st.db.execute(
        f"SELECT {_COLUMNS} FROM containers ORDER BY created DESC, id")]


def find(st: Storage, text: str) -> Container:
    """The container *text* names: a name, a full ID or a unique ID prefix."""
    row = st.db.execute(f"SELECT {_COLUMNS} FROM containers WHERE name = ? OR id = ?",
                        (text.lstrip("/"), text)).fetchone()
    if row is None and text and all(c in "0123456789abcdef" for c in text):
        rows = st.db.execute(f"SELECT {_COLUMNS} FROM containers WHERE id LIKE ?",
                             (text + "%",)).fetchall()
        if len(rows) > 1:
            raise OcishError(f"multiple IDs found with provided prefix: {text}")
        row = rows[0] if rows else None
    if row is None:
        raise OcishError(f"No such container: {text}")
    return Container(*row)


def get(st: Storage, cid: str) -> Container | None:
    row = st.db.execute(f"SELECT {_COLUMNS} FROM containers WHERE id = ?", (cid,)).fetchone()
    return Container(*row) if row else None


def record_exit(st: Storage, cid: str, code: int) -> None:
    """Keep a removed container's exit status for 5 minutes (what ``run --rm`` waits for)."""
    import time

    with transaction(st.db) as conn:
        conn.execute("DELETE FROM container_exits WHERE recorded < ?", (time.time() - 300,))
        conn.execute("INSERT OR REPLACE INTO container_exits VALUES (?, ?, ?)",
                     (cid, code, time.time()))


def recorded_exit(st: Storage, cid: str) -> int | None:
    row = st.db.execute("SELECT exit_code FROM container_exits WHERE id = ?", (cid,)).fetchone()
    return int(row[0]) if row else None


_ADJECTIVES = ("admiring", "brave", "clever", "dazzling", "eager", "focused", "gallant",
               "happy", "jolly", "keen", "loving", "modest", "nifty", "optimistic", "quirky",
               "relaxed", "serene", "tender", "upbeat", "vibrant", "wizardly", "zealous")
_NAMES = ("turing", "hopper", "lovelace", "curie", "noether", "ritchie", "thompson", "knuth",
          "dijkstra", "hamilton", "liskov", "torvalds", "babbage", "shannon", "goldberg",
          "kare", "allen", "bell", "euler", "gauss", "hypatia", "wozniak")


def random_name(st: Storage) -> str:
    """Docker-style ``adjective_name``, with a number if that is taken."""
    def pick(seq: tuple[str, ...]) -> str:
        # os.urandom, not secrets: secrets imports hmac and _hashlib, ~5 ms of every run
        # (a name needs no cryptographic quality, only to differ)
        return seq[int.from_bytes(os.urandom(4), "big") % len(seq)]

    for attempt in range(20):
        name = f"{pick(_ADJECTIVES)}_{pick(_NAMES)}"
        if attempt > 4:
            name += str(int.from_bytes(os.urandom(2), "big") % 100)
        if st.db.execute("SELECT 1 FROM containers WHERE name = ?", (name,)).fetchone() is None:
            return name
    return f"ocish_{os.urandom(6).hex()}"


def update_options(st: Storage, cid: str, **changes: object) -> dict[str, Any] | None:
    """Change some keys of a row's options in one transaction (a read-modify-write that no
    other writer can interleave with); the new options, None if the row is gone. A value of
    None removes its key."""
    with transaction(st.db) as conn:
        row = conn.execute("SELECT options FROM containers WHERE id = ?", (cid,)).fetchone()
        if row is None:
            return None
        options: dict[str, Any] = json.loads(row[0])
        for k, v in changes.items():
            if v is None:
                options.pop(k, None)
            else:
                options[k] = v
        conn.execute("UPDATE containers SET options = ? WHERE id = ?",
                     (json.dumps(options), cid))
    return options
