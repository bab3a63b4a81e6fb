"""Opening paths inside a container's root filesystem, which the container may change at any
time (it is hostile): openat2(2) with RESOLVE_IN_ROOT, so that ``..`` and symlinks, absolute or
relative, resolve as if the root were ``/`` and never lead out of it, even when they are
swapped while ocish looks; RESOLVE_NO_MAGICLINKS keeps ``/proc/*/fd``-style links out.

What is opened is an O_PATH fd: every later operation is relative to it, the last component
never followed (see fstree), so no path is resolved a second time.
"""

from __future__ import annotations

import ctypes
import errno
import os

from ..errors import OcishError

SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "armv7l": 437, "ppc64le": 437,
               "s390x": 437, "riscv64": 437}
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)


def openat2(dir_fd: int, path: str, flags: int, resolve: int) -> int:
    """openat2(2); raises OSError as os.open does."""
    nr = SYS_OPENAT2.get(os.uname().machine)
    if nr is None:
        raise OcishError(f"openat2: unsupported architecture {os.uname().machine}")
    how = _OpenHow(flags | os.O_CLOEXEC, 0, resolve)
    while True:
        fd = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(dir_fd),
                           ctypes.c_char_p(os.fsencode(path)), ctypes.byref(how),
                           ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err not in (errno.EINTR, errno.EAGAIN):  # EAGAIN: a rename raced the lookup
            raise OSError(err, os.strerror(err), path)


def open_in(root_fd: int, path: str, follow: bool = True, flags: int = os.O_PATH) -> int:
    """An fd of *path* (absolute or relative: both from the root *root_fd*) resolved inside
    the root; with *follow* False a symlink at the end is opened itself."""
    rel = path.lstrip("/") or "."
    return openat2(root_fd, rel, flags | (0 if follow else os.O_NOFOLLOW),
                   RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)


def reopen(fd: int, flags: int) -> int:
    """Open again, with *flags*, the very inode an O_PATH fd refers to (through our own
    /proc/self/fd link: that inode, nothing resolved by name)."""
    return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC)
