"""A process in the foreground: forward signals to it, relay its terminal, return its status.

Used by ``run`` and ``exec`` without ``--detach``. The caller is a subreaper, so the process
(re-parented to it when the intermediate exits) and any orphans are reaped here.
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py builds enums, milliseconds per command
import os

from ..errors import SysError

_NOT_FORWARDED = (signal.SIGCHLD, signal.SIGWINCH, signal.SIGURG, signal.SIGKILL, signal.SIGSTOP)


class Forwarder:
    """Catches every signal from construction on, so none is lost before :meth:`wait`."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.wakeup, wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        for sig in range(1, signal.NSIG):
            if sig in (signal.SIGKILL, signal.SIGSTOP, 32, 33):
                continue
            try:
                signal.signal(sig, self._remember)
            except (OSError, ValueError):
                pass
        signal.set_wakeup_fd(wakeup_w)

    def _remember(self, signum: int, _frame: object) -> None:
        self.pending.append(signum)

    def wait(self, pid: int, master: int = -1) -> int:
        return _wait(pid, self.pending, self.wakeup, master)


def _wait(pid: int, pending: list[int], wakeup: int, master: int) -> int:
    """Forward signals to the init and relay its terminal until it exits; its exit status."""
    import select

    raw = _Raw(0) if master >= 0 else None
    if master >= 0:
        _copy_winsize(master)
    readers = [wakeup] + ([0, master] if master >= 0 else [])
    try:
        while True:
            while pending:
                sig = pending.pop(0)
                if sig == signal.SIGCHLD:
                    status = _reap(pid)
                    if status is not None:
                        if master >= 0:
                            _drain(master)
                        return status
                elif sig == signal.SIGWINCH and master >= 0:
                    _copy_winsize(master)
                elif sig not in _NOT_FORWARDED:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            status = _reap(pid)
            if status is not None:
                if master >= 0:
                    _drain(master)
                return status
            try:
                ready, _, _ = select.select(readers, [], [], 1.0)
            except InterruptedError:
                continue
            for fd in ready:
                if fd == wakeup:
                    try:
                        os.read(wakeup, 512)
                    except BlockingIOError:
                        pass
                elif fd == 0:
                    data = os.read(0, 65536)
                    if data:
                        os.write(master, data)
                    else:
                        readers.remove(0)
                elif fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if data:
                        _write_all(1, data)
                    else:
                        readers.remove(master)
    finally:
        if raw is not None:
            raw.restore()


def _reap(pid: int) -> int | None:
    """Reap every exited child (orphans are ours as subreaper); the init's status if it exited."""
    result = None
    while True:
        try:
            child, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return result
        if child == 0:
            return result
        if child == pid:
            result = os.waitstatus_to_exitcode(status)
            if result < 0:
                result = 128 - result


def _drain(master: int) -> None:
    import select

    while select.select([master], [], [], 0.05)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        _write_all(1, data)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _copy_winsize(master: int) -> None:
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)
    except OSError:
        pass


class _Raw:
    """Put a terminal in raw mode and give it back as it was."""

    def __init__(self, fd: int) -> None:
        import termios
        import tty

        self.fd = fd
        self.saved = None
        if os.isatty(fd):
            try:
                self.saved = termios.tcgetattr(fd)
                tty.setraw(fd)
            except termios.error as exc:  # e.g. EIO in an orphaned background process group
                raise SysError("set the terminal on stdin to raw mode",
                               exc.args[0] if exc.args else 0) from None

    def restore(self) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
