"""``cp`` and ``export``: copying files out of and into a container's root filesystem.

The container's root is its overlayfs mount ``bundle/rootfs`` (the very mount the container
runs on, seen from the host): a running or created container has it mounted; for an exited
one it is mounted for the copy and unmounted after. The copy holds the container's lock, so
that the container's exit (its cleanup unmounts), a ``start`` or an ``rm`` waits for it.
Volumes and bind mounts inside the container are mounted in the container's own mount
namespace, not on the host's view of its root: a copy sees (and writes) what lies beneath them.

Every path inside the container is resolved inside its root only (inroot, fstree): ``..`` and
symlinks never lead out, the last component of what is created is never followed. Docker's rules
for SRC and DEST: a directory is copied into an existing directory DEST as its basename, its
contents only with ``SRC/.``; a DEST that does not exist is created with SRC's content; a
directory never replaces a file.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from ..errors import OcishError
from ..storage.root import Storage
from . import fstree, inroot, lifecycle, records
from .records import Container


@contextmanager
def root_of(st: Storage, name: str) -> Iterator[tuple[Container, int]]:
    """The container *name* and an O_PATH fd of its root, mounted meanwhile, under its lock."""
    ctr = records.find(st, name)
    with lifecycle.locked(st, ctr.id):
        cur = records.get(st, ctr.id)
        if cur is None:
            raise OcishError(f"No such container: {name}")
        rootfs = os.path.join(lifecycle.paths(st, cur).bundle, "rootfs")
        mounted = False
        if not os.path.ismount(rootfs):
            from ..images import records as images

            chains = images.layer_chains(images.image_config(st, cur.image_id))
            os.makedirs(rootfs, mode=0o755, exist_ok=True)
            st.snapshots.mount(chains, rootfs, os.path.join(cur.dir(st), "upper"),
                               os.path.join(cur.dir(st), "work"))
            mounted = True
        try:
            fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                yield cur, fd
            finally:
                os.close(fd)
        finally:
            if mounted:
                from ..storage.snapshots import unmount

                unmount(rootfs)


class _Side:
    """One end of a copy: the host (paths as the user means them) or a container's root."""

    def __init__(self, root_fd: int | None = None, name: str = "") -> None:
        self.root_fd, self.name = root_fd, name

    def open(self, path: str, follow: bool) -> int:
        """An O_PATH fd of *path*; OcishError when it is missing."""
        try:
            if self.root_fd is None:
                return os.open(path, os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
            return inroot.open_in(self.root_fd, path, follow)
        except (FileNotFoundError, NotADirectoryError) as exc:
            if self.root_fd is None:
                raise OcishError(f"lstat {path}: {(exc.strerror or 'not found').lower()}"
                                 ) from None
            raise OcishError(f"Could not find the file {path} in container {self.name}"
                             ) from None

    def where(self, fd: int, path: str) -> str:
        """The path of the inode *fd* opened from *path* (its symlinks resolved): inside the
        root for a container (a path to resolve there again, never used outside it)."""
        if self.root_fd is None:
            return os.path.realpath(path)
        root = os.readlink(f"/proc/self/fd/{self.root_fd}")
        got = os.readlink(f"/proc/self/fd/{fd}")
        if got != root and not got.startswith(root.rstrip("/") + "/"):
            raise OcishError(f"Could not find the file {path} in container {self.name}")
        return "/" + got[len(root):].lstrip("/")

    def writer(self, into: str, owner: tuple[int, int] | None) -> fstree.Writer:
        """A writer of members into the existing directory *into*."""
        if self.root_fd is None:  # the destination dir is the root: nothing goes above it
            dfd = self.open(into, True)
            os.close(dfd)
            root = os.open(into, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            w = fstree.Writer(root, "", None, chown=False)
            w.dirs[()] = root
            return w
        return fstree.Writer(self.root_fd, into, owner)


def _is_dir(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def _base(path: str) -> str:
    return os.path.basename(path.rstrip("/")) or "."


def copy(src: _Side, src_path: str, dst: _Side, dst_path: str, follow: bool,
         owner: tuple[int, int] | None) -> None:
    """Copy *src_path* of *src* to *dst_path* of *dst* with Docker's rules (see above)."""
    contents = src_path == "." or src_path.endswith(("/.", "/"))
    sfd = src.open(src_path, follow or contents)
    try:
        src_dir = _is_dir(sfd)
        if src_path.endswith("/") and not src_dir:
            raise OcishError(f"{src_path}: not a directory")
        contents = contents and src_dir and src_path.endswith("/.")
        try:
            dfd = dst.open(dst_path, True)
        except OcishError:
            dfd = None
        if dfd is None:
            if dst_path.endswith("/") and not src_dir:
                raise OcishError(f"destination directory {dst_path} does not exist")
            into, top = os.path.dirname(dst_path.rstrip("/")) or \
                ("/" if dst_path.startswith("/") else "."), _base(dst_path)
            os.close(dst.open(into, True))  # its error if the parent is missing
        else:
            try:
                dst_dir = _is_dir(dfd)
                resolved = dst.where(dfd, dst_path)  # a symlink is written through, as Docker
            finally:
                os.close(dfd)
            if dst_dir:
                into, top = resolved, "." if contents else _base(src_path)
            elif src_dir:
                raise OcishError(f"cannot copy a directory to a file: {dst_path}")
            else:
                into, top = os.path.dirname(resolved) or "/", _base(resolved)
        w = dst.writer(into, owner)
        try:
            for info, _st, fd in fstree.walk(sfd, top):
                w.member(info, _copier(fd))
            w.finish()
        finally:
            w.close()
    finally:
        os.close(sfd)


def _copier(src: int) -> Callable[[int, int], None]:
    """What copies the regular file *src* (O_PATH) to a member's fd."""
    def copy(out: int, n: int) -> None:
        def write(data: bytes) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(out, view):]
        fstree.copy_out(src, n, write)
    return copy


def cp_out(st: Storage, name: str, src_path: str, dst_path: str, follow: bool) -> None:
    """``cp CONTAINER:SRC DEST`` (DEST ``-``: a tar of SRC on stdout)."""
    with root_of(st, name) as (_ctr, root):
        side = _Side(root, name)
        if dst_path != "-":
            copy(side, src_path, _Side(), dst_path, follow, None)
            return
        sfd = side.open(src_path, follow or src_path.endswith(("/", "/.")))
        try:
            fstree.write_tar(fstree.walk(sfd, _base(src_path)), sys.stdout.buffer)
        finally:
            os.close(sfd)


def cp_in(st: Storage, src_path: str, name: str, dst_path: str, follow: bool,
          archive: bool, stdin: BinaryIO | None = None) -> None:
    """``cp SRC CONTAINER:DEST`` (SRC ``-``: a tar stream on stdin, unpacked in DEST, an
    existing directory). The files are root's, or with *archive* the source's owners."""
    owner = None if archive else (0, 0)
    with root_of(st, name) as (_ctr, root):
        side = _Side(root, name)
        if src_path != "-":
            copy(_Side(), src_path, side, dst_path, follow, owner)
            return
        dfd = side.open(dst_path, True)
        try:
            if not _is_dir(dfd):
                raise OcishError(f'destination "{name}:{dst_path}" must be a directory')
        finally:
            os.close(dfd)
        _untar(stdin or sys.stdin.buffer, side.writer(dst_path, owner))


def _untar(src: BinaryIO, w: fstree.Writer) -> None:
    import tarfile

    from ..storage.unpack import BadArchive, TarStream, decompressor

    stream = TarStream(decompressor(src))
    try:
        for m in stream.members():
            if m.sparse is not None:
                raise OcishError(f"{m.name}: sparse files are not supported")
            w.member(m, stream.copy)
        w.finish()
    except BadArchive as exc:
        raise OcishError(f"bad archive: {exc}") from None
    except tarfile.TarError as exc:
        raise OcishError(f"bad archive: tar: {exc}") from None
    finally:
        w.close()


def export(st: Storage, name: str, out: BinaryIO) -> None:
    """The container's whole filesystem as a tar (names without a leading ``/``)."""
    with root_of(st, name) as (_ctr, root):
        fstree.write_tar(fstree.walk(root, ""), out)
