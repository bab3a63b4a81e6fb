"""The system calls of :mod:`.syscalls`, through ctypes (imported only when one is made)."""

from __future__ import annotations

import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)

_NR = {  # x86_64 and aarch64 share none of these numbers; pick by machine.
    "x86_64": {"ioprio_set": 251, "sched_setattr": 314, "rt_sigaction": 13, "pivot_root": 155, "setns": 308, "unshare": 272, "openat2": 437, "pidfd_open": 434,
               "pidfd_send_signal": 424, "close_range": 436, "clone3": 435, "mount_setattr": 442,
               "open_tree": 428, "move_mount": 429, "statx": 332},
    "aarch64": {"ioprio_set": 30, "sched_setattr": 274, "rt_sigaction": 134, "pivot_root": 41, "setns": 268, "unshare": 97, "openat2": 437, "pidfd_open": 434,
                "pidfd_send_signal": 424, "close_range": 436, "clone3": 435, "mount_setattr": 442,
                "open_tree": 428, "move_mount": 429, "statx": 291},
}[os.uname().machine]


def _check(result: int, what: str = "") -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), what or None)
    return result


def _b(path: str | bytes | None) -> bytes | None:
    if path is None:
        return None
    return os.fsencode(path)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
           target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), target)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_NR["pivot_root"], _b(new_root), _b(put_old)), new_root)


def unshare(flags: int) -> None:
    _check(_libc.syscall(_NR["unshare"], flags))


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.syscall(_NR["setns"], fd, nstype))


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) for the calling thread: the three sets as 64-bit masks, in one call."""
    header = struct.pack("=Ii", _LINUX_CAPABILITY_VERSION_3, 0)
    data = struct.pack("=6I", *(part for shift in (0, 32)
                                for part in ((effective >> shift) & 0xFFFFFFFF,
                                             (permitted >> shift) & 0xFFFFFFFF,
                                             (inheritable >> shift) & 0xFFFFFFFF)))
    _check(_libc.capset(header, data), "capset")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)))


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)))


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open ``path`` below ``dirfd`` under the ``resolve`` restrictions."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return _check(_libc.syscall(_NR["openat2"], dirfd, _b(path), ctypes.byref(how),
                                ctypes.sizeof(how)), path)


def fstatfs_type(fd: int) -> int:
    """f_type of fstatfs(2): the filesystem ``fd`` is on (the first field, a long)."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on x86_64/aarch64
    _check(_libc.fstatfs(fd, buf))
    return ctypes.c_long.from_buffer(buf).value


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                              ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)))


def last_errno() -> int:
    return ctypes.get_errno()


def ioprio_set(ioprio: int) -> int:
    """ioprio_set(IOPRIO_WHO_PROCESS, self); -1 with errno on failure."""
    return int(_libc.syscall(_NR["ioprio_set"], 1, 0, ioprio))


def personality(persona: int) -> int:
    return int(_libc.personality(ctypes.c_ulong(persona)))


class _SchedAttr(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("policy", ctypes.c_uint32),
                ("flags", ctypes.c_uint64), ("nice", ctypes.c_int32),
                ("priority", ctypes.c_uint32), ("runtime", ctypes.c_uint64),
                ("deadline", ctypes.c_uint64), ("period", ctypes.c_uint64)]


def sched_setattr(policy: int, flags: int, nice: int, priority: int, runtime: int,
                  deadline: int, period: int) -> int:
    attr = _SchedAttr(ctypes.sizeof(_SchedAttr), policy, flags, nice, priority, runtime,
                      deadline, period)
    return int(_libc.syscall(_NR["sched_setattr"], 0, ctypes.byref(attr), 0))


def default_signal(sig: int) -> None:
    """rt_sigaction(sig, SIG_DFL) straight to the kernel, for the signals libc refuses."""
    act = ctypes.create_string_buffer(32)  # handler SIG_DFL (0), no flags, empty mask
    _libc.syscall(_NR["rt_sigaction"], sig, act, None, 8)


_AT_EMPTY_PATH, _AT_RECURSIVE = 0x1000, 0x8000


def mount_setattr_recursive(fd: int, attr_set: int, attr_clr: int) -> None:
    """mount_setattr(2) on the mount ``fd`` is the root of and every mount below it."""
    attr = struct.pack("=QQQQ", attr_set, attr_clr, 0, 0)  # struct mount_attr
    _check(_libc.syscall(_NR["mount_setattr"], fd, b"", _AT_EMPTY_PATH | _AT_RECURSIVE, attr,
                         ctypes.c_size_t(len(attr))), "mount_setattr")


_OPEN_TREE_CLONE, _OPEN_TREE_CLOEXEC = 1, 0o2000000
_MOVE_MOUNT_F_EMPTY_PATH, _MOVE_MOUNT_T_EMPTY_PATH = 0x4, 0x40


def open_tree_clone(path: str, recursive: bool) -> int:
    """open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at ``path`` (and of the
    mounts below it if ``recursive``), as a close-on-exec fd. A detached tree can be attached
    with :func:`move_mount` in any mount namespace, even one whose owner could not reach
    ``path`` (a user namespace's)."""
    flags = _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC | (_AT_RECURSIVE if recursive else 0)
    return _check(_libc.syscall(_NR["open_tree"], -100, _b(path), flags), path)  # AT_FDCWD


def move_mount(tree_fd: int, target_fd: int) -> None:
    """move_mount(2): attach the detached tree ``tree_fd`` on the file open as ``target_fd``."""
    _check(_libc.syscall(_NR["move_mount"], tree_fd, b"", target_fd, b"",
                         _MOVE_MOUNT_F_EMPTY_PATH | _MOVE_MOUNT_T_EMPTY_PATH), "move_mount")


_STX_MNT_ID, _STX_MNT_ID_UNIQUE = 0x1000, 0x4000


def mount_id(fd: int) -> int:
    """The id of the mount ``fd`` is on: statx's 64-bit unique id, never reused (Linux 6.8),
    else the classic one of /proc/self/mountinfo."""
    buf = ctypes.create_string_buffer(256)  # struct statx
    _check(_libc.syscall(_NR["statx"], fd, b"", _AT_EMPTY_PATH,
                         _STX_MNT_ID | _STX_MNT_ID_UNIQUE, buf), "statx")
    mask, = struct.unpack_from("=I", buf.raw, 0)
    if not mask & (_STX_MNT_ID | _STX_MNT_ID_UNIQUE):
        raise OSError(95, os.strerror(95), "statx mount id")  # EOPNOTSUPP
    mnt_id: int = struct.unpack_from("=Q", buf.raw, 0x90)[0]  # stx_mnt_id
    return mnt_id


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    _check(_libc.syscall(_NR["close_range"], first, ctypes.c_uint(last), flags))


class _CloneArgs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls",
        "set_tid", "set_tid_size", "cgroup")]


_CLONE_INTO_CGROUP = 0x200000000


def fork_into_cgroup(cgroup_fd: int, flags: int = 0) -> int:
    """os.fork(), except that the child starts in the cgroup2 directory open as ``cgroup_fd``
    (clone3's CLONE_INTO_CGROUP), and in the new namespaces of ``flags`` (CLONE_NEW*): it is
    never moved there afterwards, so it never waits for the RCU grace period of a move.
    Python's own fork bookkeeping (PyOS_BeforeFork and PyOS_AfterFork_*, as os.fork does)
    surrounds the system call, made holding the GIL."""
    args = _CloneArgs(flags=_CLONE_INTO_CGROUP | flags, exit_signal=17,  # SIGCHLD
                      cgroup=cgroup_fd)
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    pid = _pylibc.syscall(_NR["clone3"], ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, os.strerror(err), "clone3")
    return int(pid)


_pylibc = ctypes.PyDLL(None, use_errno=True)  # calls that keep the GIL (a fork must)
