"""Kill a process at an exact point of its run, from outside it: a minimal ptrace tracer.

`kill_at` starts a command as its tracee and stops it at every system call, on the way in and on
the way out. At the first stop a `Point` matches, it calls ``inspect`` (the process is frozen
there, so what is on disk is what it had done up to that point) and SIGKILLs it. Only the
process started is traced: its children (a runtime's intermediate processes and container init)
run untraced and are never the ones killed.

A point is a system call and, optionally, a file it names: a path argument, or the file an fd
argument is open on (``close(fd)`` of the exec fifo). ``after=True`` kills when the call has
returned successfully (the rename is done), otherwise when it is entered (it never runs).

Needs root (CAP_SYS_PTRACE) and Linux >= 5.3 (PTRACE_GET_SYSCALL_INFO). System call numbers
come from libseccomp, so any architecture it knows works; a point lists every spelling of a call
(``rename``, ``renameat``, ``renameat2``), those this architecture lacks never match.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

PTRACE_TRACEME = 0
PTRACE_SYSCALL = 24
PTRACE_SETOPTIONS = 0x4200
PTRACE_GET_SYSCALL_INFO = 0x420E
PTRACE_O_TRACESYSGOOD = 0x1
PTRACE_O_TRACEEXEC = 0x10  # an execve stops with an event, not with a SIGTRAP to pass on
PTRACE_O_EXITKILL = 0x100000  # if the tracer dies, so does the tracee
SYSCALL_INFO_ENTRY, SYSCALL_INFO_EXIT = 1, 2
AT_FDCWD = -100

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long
_seccomp = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
_seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
_seccomp.seccomp_syscall_resolve_name.restype = ctypes.c_int

#: The arguments of the calls a point may name: "p" a path, "d" the dirfd a relative path after
#: it is resolved against, "f" an fd, "-" anything else.
ARGS = {
    "open": "p", "openat": "dp", "openat2": "dp", "mknod": "p", "mknodat": "dp",
    "mkdir": "p", "mkdirat": "dp", "rmdir": "p", "unlink": "p", "unlinkat": "dp",
    "rename": "pp", "renameat": "dpdp", "renameat2": "dpdp",
    "close": "f", "flock": "f", "read": "f", "write": "f",
    "clone": "", "clone3": "", "fork": "", "vfork": "",
}
RENAME = ("rename", "renameat", "renameat2")
UNLINK = ("unlink", "unlinkat")
RMDIR = ("rmdir", "unlinkat")
FORK = ("clone", "clone3", "fork", "vfork")


class _Entry(ctypes.Structure):
    _fields_ = [("nr", ctypes.c_uint64), ("args", ctypes.c_uint64 * 6)]


class _Exit(ctypes.Structure):
    _fields_ = [("rval", ctypes.c_int64), ("is_error", ctypes.c_uint8)]


class _Seccomp(ctypes.Structure):
    _fields_ = [("nr", ctypes.c_uint64), ("args", ctypes.c_uint64 * 6),
                ("ret_data", ctypes.c_uint32)]


class _Op(ctypes.Union):
    _fields_ = [("entry", _Entry), ("exit", _Exit), ("seccomp", _Seccomp)]


class _SyscallInfo(ctypes.Structure):
    """struct ptrace_syscall_info (linux/ptrace.h)."""

    _fields_ = [("op", ctypes.c_uint8), ("pad", ctypes.c_uint8 * 3), ("arch", ctypes.c_uint32),
                ("instruction_pointer", ctypes.c_uint64), ("stack_pointer", ctypes.c_uint64),
                ("u", _Op)]


def _ptrace(request: int, pid: int, addr: int = 0, data: int | ctypes.c_void_p = 0) -> int:
    res = _libc.ptrace(request, pid, addr, data)
    if res == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"ptrace({request}, {pid}): {os.strerror(err)}")
    return int(res)


def _traceme() -> None:  # in the child, between fork and exec
    _ptrace(PTRACE_TRACEME, 0)


def _number(name: str) -> int:
    """The system call's number here; negative (never matched) if this architecture lacks it."""
    return int(_seccomp.seccomp_syscall_resolve_name(name.encode()))


@dataclass(frozen=True)
class Point:
    """The ``nth`` time (counting only calls that name ``path``, if given) the process enters one
    of the system calls ``names`` or, with ``after``, returns from one without an error."""

    names: Sequence[str]
    path: str = ""
    after: bool = False
    nth: int = 1

    def __post_init__(self) -> None:
        unknown = [n for n in self.names if n not in ARGS]
        assert not unknown, f"no argument layout for {unknown}: add them to ARGS"

    def __str__(self) -> str:
        where = f" of {self.path}" if self.path else ""
        return f"{'after' if self.after else 'before'} {'/'.join(self.names)}{where} #{self.nth}"


@dataclass
class Killed:
    """How the traced run ended."""

    returncode: int  #: as subprocess has it: -9 when killed
    hit: bool  #: whether it reached the point (and was killed there)
    seen: Any = None  #: what ``inspect`` returned at the point
    stderr: str = ""
    calls: list[str] = field(default_factory=list)  #: the calls matching the point's names


class _Matcher:
    """Follows the tracee's syscall stops and says when the point is reached."""

    def __init__(self, pid: int, point: Point) -> None:
        self.pid, self.point = pid, point
        self.names = {_number(n): n for n in point.names}
        self.count = 0
        self.pending = False  # entered a matching call; kill when it returns (point.after)
        self.calls: list[str] = []  # the calls of those names seen, with their files

    def _string(self, addr: int) -> str:
        data = b""
        with open(f"/proc/{self.pid}/mem", "rb", buffering=0) as mem:
            while b"\0" not in data and len(data) < 4096:
                chunk = os.pread(mem.fileno(), 4096 - addr % 4096, addr)  # up to the page end
                if not chunk:
                    break
                data, addr = data + chunk, addr + len(chunk)
        return data.split(b"\0", 1)[0].decode(errors="surrogateescape")

    def _fd_path(self, fd: int) -> str:
        try:
            return os.readlink(f"/proc/{self.pid}/fd/{fd}" if fd != AT_FDCWD
                               else f"/proc/{self.pid}/cwd")
        except OSError:
            return ""

    def _files(self, kinds: str, args: Sequence[int]) -> list[str]:
        files, base = [], self._fd_path(AT_FDCWD)
        for kind, arg in zip(kinds, args, strict=False):
            fd = ctypes.c_int(arg & 0xFFFFFFFF).value
            if kind == "d":
                base = self._fd_path(fd)
            elif kind == "f":
                files.append(self._fd_path(fd))
            elif kind == "p":
                files.append(os.path.normpath(os.path.join(base, self._string(arg))))
                base = self._fd_path(AT_FDCWD)
        return files

    def reached(self, info: _SyscallInfo) -> bool:
        if info.op == SYSCALL_INFO_EXIT:
            hit = self.pending and info.u.exit.rval >= 0 and self._counts()
            self.pending = False
            return hit
        name = self.names.get(info.u.entry.nr) if info.op == SYSCALL_INFO_ENTRY else None
        if name is None:
            return False
        files = self._files(ARGS[name], info.u.entry.args)
        self.calls.append(f"{name}({', '.join(files)})")
        if self.point.path and self.point.path not in files:
            return False
        if self.point.after:
            self.pending = True
            return False
        return self._counts()

    def _counts(self) -> bool:
        self.count += 1
        return self.count == self.point.nth


def kill_at(argv: Sequence[str], point: Point, inspect: Callable[[], Any] = lambda: None,
            env: dict[str, str] | None = None, timeout: float = 120) -> Killed:
    """Run *argv* (stdin and stdout /dev/null) until *point*, where it is SIGKILLed after
    *inspect* ran; or to its end if it never gets there. After *timeout* seconds it is killed
    wherever it is (a hung run fails its test instead of hanging it)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=env, preexec_fn=_traceme)
        pidfd = os.pidfd_open(proc.pid)

        def kill() -> None:  # by pidfd: never another process, even once this one is reaped
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:  # already gone
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        tracer = _Tracer(proc.pid, point)
        try:
            hit, seen = tracer.run(inspect)
        finally:
            timer.cancel()
            timer.join()
            if tracer.status is None:  # an exception on the way: killed, not left behind
                kill()
                tracer.reap()
            os.close(pidfd)
        assert tracer.status is not None
        proc.returncode = os.waitstatus_to_exitcode(tracer.status)
        err.seek(0)
        return Killed(proc.returncode, hit, seen, err.read().decode(errors="replace"),
                      tracer.matcher.calls)


class _Tracer:
    """Drives the tracee from the stop after its execve to the point, or to its end."""

    def __init__(self, pid: int, point: Point) -> None:
        self.pid = pid
        self.matcher = _Matcher(pid, point)
        self.status: int | None = None  # the wait status once reaped
        self.last_stop = 0  # the wait status of the latest stop

    def _wait(self) -> bool:
        """Wait for the next stop (True) or the end (False: reaped, status set)."""
        _, status = os.waitpid(self.pid, 0)
        if os.WIFSTOPPED(status):
            self.last_stop = status
            return True
        self.status = status
        return False

    def reap(self) -> None:
        """After a SIGKILL: wait for the end, through any stop before it."""
        while self.status is None and self._wait():
            pass

    def run(self, inspect: Callable[[], Any]) -> tuple[bool, Any]:
        if not self._wait():  # the execve failed
            return False, None
        _ptrace(PTRACE_SETOPTIONS, self.pid, 0,
                PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)
        info = _SyscallInfo()
        deliver = 0
        while True:
            try:
                _ptrace(PTRACE_SYSCALL, self.pid, 0, deliver)
            except ProcessLookupError:
                pass  # killed meanwhile (the timeout): the wait reports it
            if not self._wait():
                return False, None
            sig, deliver = os.WSTOPSIG(self.last_stop), 0
            if sig != signal.SIGTRAP | 0x80:  # not a syscall stop
                if self.last_stop >> 16 == 0:  # a signal for it (not a ptrace event): pass it on
                    deliver = sig
                continue
            _ptrace(PTRACE_GET_SYSCALL_INFO, self.pid, ctypes.sizeof(info),
                    ctypes.addressof(info))
            if self.matcher.reached(info):
                break
        try:
            return True, inspect()
        finally:
            os.kill(self.pid, signal.SIGKILL)  # stopped, not reaped: the pid is still its own
            self.reap()
