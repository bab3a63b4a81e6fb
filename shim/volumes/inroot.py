"""Copy-up: an image's content at a volume's destination copied into the new volume.

The container's rootfs is hostile: the destination is opened with openat2(RESOLVE_IN_ROOT),
so a symlink anywhere along it resolves inside the rootfs, never on the host; the tree below
is then walked through dir fds, every entry opened with O_NOFOLLOW and symlinks copied as
symlinks, and every entry of the volume made new (O_EXCL, mkdir, symlink) in dir fds of ours.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

from ..errors import OcishError

_NR_OPENAT2 = 437  # the same on x86_64 and aarch64 (generic syscall table)
_RESOLVE_NO_MAGICLINKS, _RESOLVE_IN_ROOT = 0x02, 0x10
MAX_DEPTH = 128


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def open_in_root(root: str, path: str, flags: int) -> int:
    """An fd of *path* resolved as if *root* were ``/``."""
    libc = ctypes.CDLL(None, use_errno=True)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        how = _OpenHow(flags | os.O_CLOEXEC, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
        fd = libc.syscall(_NR_OPENAT2, root_fd, (path.lstrip("/") or ".").encode(),
                          ctypes.byref(how), ctypes.sizeof(how))
    finally:
        os.close(root_fd)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def copy_up(rootfs: str, path: str, dest: str) -> bool:
    """Copy the dir *path* of *rootfs* into the (empty) dir *dest*, with owners, modes and
    times; False if there is no such dir in the rootfs."""
    try:
        src = open_in_root(rootfs, path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        raise OcishError(f"copy-up of {path}: {exc.strerror}") from None
    try:
        dst = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _copy_dir(src, dst, 0, {})
            _attrs(os.fstat(src), dst)
        finally:
            os.close(dst)
    except OSError as exc:
        raise OcishError(f"copy-up of {path}: {exc.strerror or exc}") from None
    finally:
        os.close(src)
    return True


def _attrs(st: os.stat_result, fd: int) -> None:
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_dir(src: int, dst: int, depth: int, links: dict[tuple[int, int], tuple[int, str]]
              ) -> None:
    if depth > MAX_DEPTH:
        raise OcishError(f"copy-up: directories nested deeper than {MAX_DEPTH}")
    for name in os.listdir(src):
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            s = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                        dir_fd=src)
            try:
                d = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                            dir_fd=dst)
                try:
                    _copy_dir(s, d, depth + 1, links)
                    _attrs(st, d)
                finally:
                    os.close(d)
            finally:
                os.close(s)
            continue
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:  # a hard link to a file copied already
            dfd, dname = links[key]
            try:
                os.link(dname, name, src_dir_fd=dfd, dst_dir_fd=dst, follow_symlinks=False)
                continue
            except OSError:
                pass
        if stat.S_ISREG(mode):
            _copy_file(src, dst, name, st)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            continue
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(name, mode, st.st_rdev, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        else:
            continue  # sockets are not copied
        if st.st_nlink > 1 and depth == 0:
            links[key] = (dst, name)  # only the top dir's fd lives long enough


def _copy_file(src: int, dst: int, name: str, st: os.stat_result) -> None:
    s = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
    try:
        d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600, dir_fd=dst)
        try:
            while os.sendfile(d, s, None, 1 << 20) > 0:
                pass
            _attrs(st, d)
        finally:
            os.close(d)
    finally:
        os.close(s)
