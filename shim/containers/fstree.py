"""Reading a file tree into tar entries and writing tar entries into a tree, fd by fd.

Both work on trees a hostile container can change while ocish looks at them, so nothing is
ever resolved by a path that could be swapped: the walk opens each entry with O_PATH |
O_NOFOLLOW relative to its parent's fd (a symlink is an entry, never followed) and reads a
regular file through that very inode; the writer resolves each member's parent dir with
`inroot.open_in` (inside its root, whatever the symlinks say) and creates the last component
relative to that fd, without following it (O_EXCL | O_NOFOLLOW, *at calls with
AT_SYMLINK_NOFOLLOW).
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import OcishError
from ..storage.unpack import clean_parts
from ..storage.unpack import member_mtime_ns as _mtime_ns
from . import inroot

# a walked entry: its tar header, its lstat and its O_PATH fd (valid until the next entry)
Entry = tuple[tarfile.TarInfo, os.stat_result, int]
Prune = Callable[[str, os.stat_result], bool]
CHUNK = 1 << 20


def _xattrs(fd: int) -> dict[str, str]:
    """The PAX records of the xattrs of the inode *fd* (a regular file's or a directory's:
    our own /proc/self/fd link leads to that inode, nothing else)."""
    from ..images.export import pax_xattrs

    return pax_xattrs(f"/proc/self/fd/{fd}", follow=True)


def header(st: os.stat_result, name: str, fd: int) -> tarfile.TarInfo | None:
    """The tar header of the inode *fd* (an O_PATH fd) with lstat *st*; None for a socket."""
    info = tarfile.TarInfo(name)
    mode = st.st_mode
    info.mode, info.uid, info.gid = stat.S_IMODE(mode), st.st_uid, st.st_gid
    sec, ns = divmod(st.st_mtime_ns, 1_000_000_000)
    info.mtime = sec
    pax: dict[str, str] = {}
    if ns:
        pax["mtime"] = f"{sec}.{ns:09d}"
    if stat.S_ISREG(mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink("", dir_fd=fd)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        pax.update(_xattrs(fd))
    info.pax_headers = pax
    return info


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def walk(fd: int, arcname: str, prune: Prune | None = None,
         links: dict[tuple[int, int], str] | None = None) -> Iterator[Entry]:
    """The entries of the tree at the O_PATH fd *fd*, named *arcname* (children below it;
    with "" the top itself is left out and its children named without prefix), parents before
    children, names sorted. *prune*(name, lstat) True leaves an entry and what is below it
    out. A regular file met again (hard links) becomes a link to its first name."""
    links = {} if links is None else links
    st = os.fstat(fd)
    if prune is not None and arcname and prune(arcname, st):
        return
    if arcname:
        info = header(st, arcname, fd)
        if info is None:
            return
        if info.isreg() and st.st_nlink > 1:
            first = links.setdefault((st.st_dev, st.st_ino), arcname)
            if first != arcname:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
        yield info, st, fd
    if not stat.S_ISDIR(st.st_mode):
        return
    dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    try:
        for child in sorted(os.listdir(dfd)):
            try:
                cfd = os.open(child, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            except FileNotFoundError:
                continue  # gone meanwhile
            try:
                yield from walk(cfd, _join(arcname, child), prune, links)
            finally:
                os.close(cfd)
    finally:
        os.close(dfd)


def copy_out(fd: int, size: int, write: Callable[[bytes], object]) -> None:
    """*size* bytes of the regular file *fd* (O_PATH) to *write*: a file that shrank
    meanwhile is padded with zeros, one that grew cut, so that the tar stays well formed."""
    rfd = inroot.reopen(fd, os.O_RDONLY | os.O_NONBLOCK)
    try:
        left = size
        while left > 0:
            data = os.read(rfd, min(CHUNK, left)) or b"\0" * min(CHUNK, left)
            write(data)
            left -= len(data)
    finally:
        os.close(rfd)


class _Reader:
    """A file object of exactly *size* bytes of a regular file, for TarFile.addfile."""

    def __init__(self, fd: int, size: int) -> None:
        self.rfd = inroot.reopen(fd, os.O_RDONLY | os.O_NONBLOCK)
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = os.read(self.rfd, n) if n else b""
        if n and not data:
            data = b"\0" * n
        self.left -= len(data)
        return data

    def close(self) -> None:
        os.close(self.rfd)


def write_tar(entries: Iterator[Entry], out: Any) -> None:
    """Write *entries* to *out* as a PAX tar stream."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for info, _st, fd in entries:
            if info.isreg() and info.size:
                reader = _Reader(fd, info.size)
                try:
                    tf.addfile(info, reader)
                finally:
                    reader.close()
            else:
                tf.addfile(info)


class Writer:
    """Creates tar members under *base* (a path inside the root *root_fd*, resolved there).

    *owner*: the (uid, gid) every member gets, or None to keep the members' own (``cp -a``);
    *chown* False leaves the owner to the creating process (what ``docker cp`` does on the
    host). Like Docker's cp, a directory never replaces a non-directory nor the reverse.
    """

    def __init__(self, root_fd: int, base: str, owner: tuple[int, int] | None,
                 chown: bool = True) -> None:
        self.root_fd, self.base = root_fd, clean_parts(base)
        self.owner, self.chown = owner, chown
        self.dirs: dict[tuple[str, ...], int] = {}  # resolved parent dirs (O_PATH fds)
        self.mtimes: list[tuple[list[str], int]] = []

    def close(self) -> None:
        for fd in self.dirs.values():
            os.close(fd)
        self.dirs.clear()

    def _forget(self) -> None:
        """Drop the resolved dirs: a dir or symlink was replaced, they may lead elsewhere."""
        self.close()

    def _dir(self, parts: list[str]) -> int:
        """The dir *parts* (inside the root), made if missing."""
        key = tuple(parts)
        fd = self.dirs.get(key)
        if fd is not None:
            return fd
        path = "/".join(parts)
        try:
            fd = inroot.open_in(self.root_fd, path, flags=os.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            if not parts:
                raise
            try:
                os.mkdir(parts[-1], 0o755, dir_fd=self._dir(parts[:-1]))
            except FileExistsError:
                pass
            try:
                fd = inroot.open_in(self.root_fd, path, flags=os.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:  # a symlink to nothing
                raise OcishError(f"/{path}: not a directory") from None
        except NotADirectoryError:
            raise OcishError(f"/{path}: not a directory") from None
        self.dirs[key] = fd
        return fd

    def _ids(self, info: tarfile.TarInfo) -> tuple[int, int]:
        return self.owner if self.owner is not None else (info.uid, info.gid)

    def member(self, info: tarfile.TarInfo, copy: Callable[[int, int], None]) -> None:
        """Create *info* (*copy*(fd, n) writes its n bytes of data to fd)."""
        parts = self.base + clean_parts(info.name)
        if len(parts) == len(self.base) or parts[-1].startswith(".wh."):
            return  # the destination itself, or a whiteout (layer-only)
        parent, name = self._dir(parts[:-1]), parts[-1]
        shown = "/" + "/".join(parts)
        try:
            old: os.stat_result | None = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if info.isdir():
            if old is not None and not stat.S_ISDIR(old.st_mode):
                raise OcishError(f'cannot overwrite non-directory "{shown}" with directory')
            if old is None:
                os.mkdir(name, 0o700, dir_fd=parent)
            dfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=parent)
            try:
                self._attrs_fd(dfd, info)
            finally:
                os.close(dfd)
            self.mtimes.append((parts, _mtime_ns(info)))
            return
        if old is not None:
            if stat.S_ISDIR(old.st_mode):
                raise OcishError(f'cannot overwrite directory "{shown}" with non-directory')
            os.unlink(name, dir_fd=parent)
            if stat.S_ISLNK(old.st_mode):
                self._forget()
                parent = self._dir(parts[:-1])
        if info.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                         os.O_CLOEXEC, 0o600, dir_fd=parent)
            try:
                copy(fd, info.size)
                self._attrs_fd(fd, info)
                os.utime(fd, ns=(_mtime_ns(info),) * 2)
            finally:
                os.close(fd)
            return
        if info.islnk():
            target = self.base + clean_parts(info.linkname)
            if len(target) == len(self.base):
                raise OcishError(f"{shown}: a hard link to the destination itself")
            os.link(target[-1], name, src_dir_fd=self._dir(target[:-1]), dst_dir_fd=parent,
                    follow_symlinks=False)
            return
        if info.issym():
            os.symlink(info.linkname, name, dir_fd=parent)
        elif info.ischr() or info.isblk() or info.isfifo():
            kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK if info.isblk() else \
                stat.S_IFIFO
            # the mode at creation (umask 0): a chmod by name could follow a swapped symlink
            mask = os.umask(0)
            try:
                os.mknod(name, kind | (info.mode & 0o777), os.makedev(info.devmajor,
                                                                      info.devminor),
                         dir_fd=parent)
            finally:
                os.umask(mask)
        else:
            return
        if self.chown:
            os.chown(name, *self._ids(info), dir_fd=parent, follow_symlinks=False)
        os.utime(name, ns=(_mtime_ns(info),) * 2, dir_fd=parent, follow_symlinks=False)

    def _attrs_fd(self, fd: int, info: tarfile.TarInfo) -> None:
        """Owner, then mode (a chown clears set-id bits), then xattrs, through an open fd."""
        if self.chown:
            os.fchown(fd, *self._ids(info))
        os.fchmod(fd, info.mode & 0o7777)
        for key, value in info.pax_headers.items():
            if key.startswith("SCHILY.xattr.") and not key.startswith("SCHILY.xattr.trusted."):
                try:
                    os.setxattr(fd, key[len("SCHILY.xattr."):],
                                value.encode("utf-8", "surrogateescape"))
                except OSError:
                    pass  # unsupported here: go on without it, as Docker does

    def finish(self) -> None:
        """The directories' mtimes, once nothing more is created in them."""
        for parts, ns in reversed(self.mtimes):
            try:
                fd = inroot.open_in(self.root_fd, "/".join(parts), follow=False,
                                    flags=os.O_PATH | os.O_DIRECTORY)
            except OSError:
                continue
            try:
                os.utime(f"/proc/self/fd/{fd}", ns=(ns, ns))
            finally:
                os.close(fd)
        self.close()


