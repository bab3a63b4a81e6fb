"""Writing and reading the event log ``<root>/events/events.log``.

Each event is one JSON line in Docker's message shape (``status``, ``id``, ``from``, ``Type``,
``Action``, ``Actor`` {``ID``, ``Attributes``}, ``scope``, ``time``, ``timeNano``), written with
one ``write`` on an O_APPEND fd: lines up to PIPE_BUF-ish sizes from concurrent ocish
processes do not interleave. Past ``ROTATE_AT`` bytes the file is renamed to
``events.log.1`` (replacing the older one), so the log stays below twice that size; a reader
that follows notices the new file by its inode.

Emitting never fails the operation that emits: an event log that cannot be written (a full
disk) loses the event, not the container.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # not typing's: lifecycle commands import this module
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from ..containers.records import Container
    from ..storage.root import Storage

ROTATE_AT = 1 << 20


def path(root: str) -> str:
    return os.path.join(root, "events", "events.log")


def emit(st: Storage, type_: str, action: str, actor: str, attributes: dict[str, str],
         from_: str = "") -> None:
    """Append one event."""
    import json

    ns = time.time_ns()
    event: dict[str, Any] = {"status": action, "id": actor}
    if from_:
        event["from"] = from_
    event.update({"Type": type_, "Action": action,
                  "Actor": {"ID": actor, "Attributes": attributes}, "scope": "local",
                  "time": ns // 10**9, "timeNano": ns})
    line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
    p = path(st.root)
    try:
        os.makedirs(os.path.dirname(p), mode=0o700, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            os.write(fd, line)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > ROTATE_AT:
            os.replace(p, p + ".1")  # whoever renames first wins; the others find it gone
    except OSError:
        pass


def labels(ctr: Container) -> dict[str, str]:
    """A container's labels: the image's, overridden by its own (``--label``)."""
    out = dict((ctr.options.get("image_config") or {}).get("Labels") or {})
    own = ctr.options.get("labels") or {}
    if isinstance(own, list):  # KEY=VALUE strings
        own = dict(item.partition("=")[::2] for item in own)
    out.update(own)
    return {str(k): str(v) for k, v in out.items()}


def container(st: Storage, ctr: Container, action: str, **extra: str) -> None:
    """A container event, with Docker's attributes: its labels, image and name (and
    *extra*, such as exitCode)."""
    attrs = {**labels(ctr), "image": ctr.image, "name": ctr.name, **extra}
    emit(st, "container", action, ctr.id, attrs, from_=ctr.image)


def image(st: Storage, action: str, ref: str) -> None:
    """An image event (pull, tag, untag, delete) about *ref* (a name or an image ID)."""
    emit(st, "image", action, ref, {"name": ref})


def read(root: str, follow: Callable[[], bool] | None = None) -> Iterator[dict[str, Any]]:
    """The events in the log, oldest first; with *follow*, then the new ones as they come,
    until *follow()* is false (it is asked whenever there is nothing new)."""
    import json

    p = path(root)
    old, _ = _open(p + ".1")
    if old is not None:
        with old:
            yield from _parsed(old.read().split(b"\n")[:-1], json)
    f, ino = _open(p)
    buf = b""
    while True:
        if f is not None:
            chunk = f.read()
            if chunk:
                buf += chunk
                *whole, buf = buf.split(b"\n")  # a line being written waits for its end
                yield from _parsed(whole, json)
                continue
        try:
            cur: int | None = os.stat(p).st_ino
        except FileNotFoundError:
            cur = None
        if cur is not None and cur != ino:  # rotated (the old file was read to its end)
            if f is not None:
                f.close()
            f, ino = _open(p)
            buf = b""
            continue
        if follow is None or not follow():
            break
        time.sleep(0.1)
    if f is not None:
        f.close()


def _open(p: str) -> tuple[Any, int | None]:
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, None
    return os.fdopen(fd, "rb"), os.fstat(fd).st_ino


def _parsed(lines: list[bytes], json: Any) -> Iterator[dict[str, Any]]:
    for line in lines:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
            yield ev
