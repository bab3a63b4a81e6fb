"""Reading a container's log, which conmon writes in the k8s-file format: one line per
record, ``<RFC 3339 time> <stdout|stderr> <F|P> <text>`` (P: a partial line that the next
record continues)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator


def records(f: object, follow: Callable[[], bool] | None = None) -> Iterator[tuple[str, str, bytes]]:
    """(time, stream, bytes) of each whole line of the open log *f*, partial records joined;
    with *follow*, keep reading until it returns False and nothing more comes."""
    pending: dict[str, bytes] = {}
    buf = b""
    while True:
        chunk = f.read(65536)  # type: ignore[attr-defined]
        if chunk:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                parts = line.split(b" ", 3)
                if len(parts) < 3:
                    continue
                ts, stream, tag = parts[0].decode(), parts[1].decode(), parts[2]
                text = pending.pop(stream, b"") + (parts[3] if len(parts) > 3 else b"")
                if tag == b"P":
                    pending[stream] = text
                    continue
                yield ts, stream, text + b"\n"
            continue
        if follow is None or not follow():
            if follow is not None:
                # the container has ended: what it wrote last may have come meanwhile
                rest = f.read()  # type: ignore[attr-defined]
                if rest:
                    buf += rest
                    follow = None
                    continue
            for stream, text in pending.items():
                yield "", stream, text
            return
        time.sleep(0.05)


def tail(path: str, n: int) -> int:
    """The offset in the log from which the last *n* lines start (cheap for big logs: read
    backwards in blocks)."""
    size = os.path.getsize(path)
    if n < 0:
        return 0
    with open(path, "rb") as f:
        # a log that does not end with a newline ends with a record cut short (by a full
        # disk): it is no line, so the last n lines begin one newline further back
        f.seek(max(size - 1, 0))
        want = n if f.read(1) in (b"\n", b"") else n + 1
        pos, count = size, 0
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            block = f.read(step)
            for i in range(len(block) - 1, -1, -1):
                if block[i] == 0x0A and pos + i != size - 1:
                    count += 1
                    if count == want:
                        return pos + i + 1
        return 0
