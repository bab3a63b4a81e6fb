"""Reading processes through /proc."""

from __future__ import annotations


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from field 3 (state) on, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(b")") + 2:].decode().split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22), or None if it is gone."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[19])


def alive(pid: int, started: int) -> bool:
    """True if ``pid`` still names the same process (same start time) and it is not a zombie."""
    if pid <= 0:
        return False
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X") and int(fields[19]) == started
