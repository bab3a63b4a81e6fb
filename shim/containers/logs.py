"""Reading a container's log, which conmon writes in the k8s-file format: one line per
record, ``<RFC 3339 time> <stdout|stderr> <F|P> <text>`` (P: a partial line that the next
record continues). ``--log-driver json-file`` is written in that format too (podman does the
same); ``none`` has no log. Also the times ``logs --since/--until`` take, as Docker's."""

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


DRIVERS = ("k8s-file", "json-file", "none")


def log_options(driver: str | None, opts: list[str]) -> tuple[str, dict[str, str]]:
    """``--log-driver`` and ``--log-opt KEY=VALUE`` checked: (driver, options). Only
    ``max-size`` is an option (conmon's --log-size-max)."""
    from ..errors import OcishError

    driver = driver or "k8s-file"
    if driver not in DRIVERS:
        raise OcishError(f"--log-driver {driver!r}: only {', '.join(DRIVERS)} are supported",
                         status=125)
    out: dict[str, str] = {}
    for opt in opts:
        key, sep, value = opt.partition("=")
        if key != "max-size" or not sep:
            raise OcishError(f"--log-opt {opt!r}: only max-size=SIZE is supported",
                             status=125)
        if driver == "none":
            raise OcishError(f"--log-opt {opt!r}: the none log driver takes no options",
                             status=125)
        size_bytes(value)
        out[key] = value
    return driver, out


def size_bytes(text: str) -> int:
    """Docker's RAMInBytes: '10m' -> 10485760 (b, k, m, g, t, p; binary multiples)."""
    from ..errors import OcishError

    t = text.strip().lower().removesuffix("b").removesuffix("i")
    mult = 1
    if t and t[-1] in "kmgtp":
        mult = 1024 ** ("kmgtp".index(t[-1]) + 1)
        t = t[:-1]
    try:
        value = float(t)
    except ValueError:
        value = -1
    if value < 0 or not text.strip():
        raise OcishError(f"invalid size: {text!r}", status=125)
    return int(value * mult)


def time_ns(ts: str) -> int | None:
    """An RFC 3339 time with up to nanoseconds (conmon's) -> ns since the epoch."""
    import calendar

    try:
        date, clock = ts[:10], ts[11:19]
        year, month, day = int(date[:4]), int(date[5:7]), int(date[8:10])
        hour, minute, sec = int(clock[:2]), int(clock[3:5]), int(clock[6:8])
        rest = ts[19:]
        frac = ""
        if rest.startswith("."):
            i = 1
            while i < len(rest) and rest[i].isdigit():
                i += 1
            frac, rest = rest[1:i], rest[i:]
        if rest in ("Z", "z"):
            offset = 0
        else:
            sign = -1 if rest[0] == "-" else 1
            offset = sign * (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60)
        secs = calendar.timegm((year, month, day, hour, minute, sec)) - offset
    except (ValueError, IndexError):
        return None
    return secs * 10**9 + int((frac + "000000000")[:9])


def docker_time(ts: str) -> str:
    """A log record's time as Docker's ``logs -t`` prints it (RFC 3339, UTC, 9 digits)."""
    from .lifecycle import rfc3339

    ns = time_ns(ts)
    return ts if ns is None else rfc3339(ns)


_UNITS_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
             "h": 3600 * 10**9}


def _duration_ns(text: str) -> int | None:
    """A Go duration ('10m', '1h30m', '1.5s') -> ns; None if *text* is not one."""
    import re

    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return int(sum(float(n) * _UNITS_NS[u] for n, u in parts))


def time_arg(text: str, now_ns: int, what: str = "since") -> int:
    """``--since``/``--until`` as Docker takes them -> ns since the epoch: a duration before
    now ('10m'), a Unix time ('1700000000', '1700000000.5'), or an RFC 3339 time (a date or
    a time without a zone is local time)."""
    import re
    import time

    from ..errors import OcishError

    text = text.strip()
    neg = text.startswith("-")
    dur = _duration_ns(text.lstrip("-"))
    if dur is not None:
        return now_ns + dur if neg else now_ns - dur
    if re.fullmatch(r"-?\d+(\.\d{1,9})?", text):
        sec, _, frac = text.partition(".")
        return int(sec) * 10**9 + int((frac + "000000000")[:9])
    ns = time_ns(text)
    if ns is not None:
        return ns
    for fmt, size in (("%Y-%m-%dT%H:%M:%S", 19), ("%Y-%m-%dT%H:%M", 16), ("%Y-%m-%d", 10)):
        try:
            local = time.mktime(time.strptime(text[:size], fmt))
        except ValueError:
            continue
        rest = text[size:]
        frac = rest[1:] if rest.startswith(".") and rest[1:].isdigit() else ""
        if rest and not frac:
            continue
        return int(local) * 10**9 + int((frac + "000000000")[:9])
    raise OcishError(f'invalid value for "{what}": failed to parse value as time or '
                     f'duration: "{text}"')
