"""``run``: create and start; in the foreground, also wait for the init, forward signals to it,
relay its terminal, exit with its status, and delete the container unless ``keep``."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

from ..linux import syscalls as sc
from . import create as create_mod
from .delete import delete
from .start import start

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..state import Store

_NOT_FORWARDED = (signal.SIGCHLD, signal.SIGWINCH, signal.SIGURG, signal.SIGKILL, signal.SIGSTOP)


def run(store: Store, container_id: str, opts: create_mod.Options, detach: bool, keep: bool,
        subreaper: bool = True, warn: Callable[[str], None] | None = None) -> int:
    if detach:
        create_mod.create(store, container_id, opts)
        try:
            start(store, container_id, warn=warn)
        except BaseException:
            delete(store, container_id, force=True)
            raise
        return 0
    if subreaper:
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    own_console = -1
    if not opts.console_socket:
        spec_terminal = _wants_terminal(opts.bundle)
        if spec_terminal:
            import socket

            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            own_console = ours.detach()
            opts.console_fd = theirs.detach()
    try:
        state = create_mod.create(store, container_id, opts)
    finally:
        if opts.console_fd >= 0:
            os.close(opts.console_fd)
            opts.console_fd = -1
    master = -1
    if own_console >= 0:
        import socket

        with socket.socket(fileno=own_console) as sock:
            _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
        master = fds[0]
    try:
        wakeup_r, wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        pending: list[int] = []

        def remember(signum: int, _frame: object) -> None:
            pending.append(signum)

        for sig in range(1, signal.NSIG):
            if sig in (signal.SIGKILL, signal.SIGSTOP, 32, 33):
                continue
            try:
                signal.signal(sig, remember)
            except (OSError, ValueError):
                pass
        signal.set_wakeup_fd(wakeup_w)
        start(store, container_id, warn=warn)
        status = _wait(state.pid, pending, wakeup_r, master)
    except BaseException:
        if not keep:
            delete(store, container_id, force=True)
        raise
    finally:
        if master >= 0:
            os.close(master)
    if not keep:
        delete(store, container_id, force=True, warn=warn)
    return status


def _wants_terminal(bundle: str) -> bool:
    from ..spec import load

    spec, _ = load(bundle)
    return spec.process is not None and spec.process.terminal


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
            self.saved = termios.tcgetattr(fd)
            tty.setraw(fd)

    def restore(self) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
