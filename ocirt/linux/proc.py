"""Reading processes through /proc."""

from __future__ import annotations

import _signal as signal  # the C module: signal.py builds enums, milliseconds per command
import os


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


_PF_EXITING = 0x4


def alive(pid: int, started: int) -> bool:
    """True if ``pid`` still names the same process (same start time) and it is neither a
    zombie nor exiting (once killed, it closes its fds before it becomes a zombie: a status
    read from them then would be a lie)."""
    if pid <= 0:
        return False
    fields = stat_fields(pid)
    return (fields is not None and fields[0] not in ("Z", "X")
            and not int(fields[6]) & _PF_EXITING and int(fields[19]) == started)


def kill_and_wait(pid: int, timeout: float = 10.0) -> None:
    """SIGKILL ``pid`` and wait until it has exited (it need not be our child)."""
    if pid <= 0:
        return
    import select

    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except ProcessLookupError:
            return
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll(int(timeout * 1000))
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    finally:
        os.close(pidfd)


def holds_open(pid: int, path: str) -> bool:
    """True if ``pid`` has an fd open on the file at ``path`` (compared by inode), or if its fds
    cannot be read (the caller's answer must then not depend on it)."""
    try:
        wanted = os.stat(path)
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    except OSError:
        return True
    for fd in fds:
        try:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if st.st_ino == wanted.st_ino and st.st_dev == wanted.st_dev:
            return True
    return False
