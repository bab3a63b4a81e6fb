"""A container's own layer, its overlayfs upper dir: ``diff``'s changes and ``commit``'s layer.

In the upper dir a deleted name is a whiteout (a 0/0 character device) and a directory
removed and made again is opaque (``trusted.overlay.opaque=y``). ``diff`` reports them as
Docker's overlay2 driver does (pkg/archive changes): ``D`` for a whiteout and for an opaque
directory that exists in the image, ``A`` for a name the image does not have, ``C`` for one it
has (a directory only when its size, mode or mtime differ), and the parent directory of each
``A``/``D`` as ``C``. In the layer tar they become OCI whiteout files (``.wh.NAME``,
``.wh..wh..opq``).

Docker keeps the mount points it makes (``/etc/hostname``, ``/etc/hosts``,
``/etc/resolv.conf``, ``/dev``, ``/proc``, ``/sys``) in an init layer below the container's
own; the runtimes make the missing ones in the upper dir, so they are left out here.

The container may change the upper dir meanwhile: it is walked fd by fd (fstree.walk).
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator

from ..storage.root import Storage
from . import fstree, inroot
from .records import Container

MOUNT_POINTS = ("etc/hostname", "etc/hosts", "etc/resolv.conf", "dev", "proc", "sys")
OPAQUE_XATTR = "trusted.overlay.opaque"


def _excluded(name: str, st: os.stat_result) -> bool:
    return any(name == m or name.startswith(m + "/") for m in MOUNT_POINTS)


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(fd: int) -> bool:
    try:
        return os.getxattr(f"/proc/self/fd/{fd}", OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def _upper(st: Storage, ctr: Container) -> int:
    return os.open(os.path.join(ctr.dir(st), "upper"),
                   os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _lowers(st: Storage, ctr: Container) -> list[int]:
    """O_PATH fds of the image's layer dirs, top first."""
    from ..images import records as images

    chains = images.layer_chains(images.image_config(st, ctr.image_id))
    return [os.open(st.snapshots.fs(c), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            for c in reversed(chains)]


def _below(lowers: list[int], name: str) -> os.stat_result | None:
    """The stat of *name* in the topmost image layer that has it (resolved in that layer)."""
    for lfd in lowers:
        try:
            fd = inroot.open_in(lfd, name, follow=True)
        except OSError:
            continue
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)
    return None


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    if not (stat.S_ISDIR(a.st_mode) and stat.S_ISDIR(b.st_mode)):
        return False
    sec_a, ns_a = divmod(a.st_mtime_ns, 10**9)
    sec_b, ns_b = divmod(b.st_mtime_ns, 10**9)
    return a.st_size == b.st_size and a.st_mode == b.st_mode and sec_a == sec_b and \
        (ns_a == ns_b or ns_a == 0 or ns_b == 0)


def _only_mount_points(fd: int, name: str, lst: os.stat_result, below: os.stat_result,
                       lowers: list[int]) -> bool:
    """Whether a directory changed only by the mount points the runtime made in it (Docker
    has them in its init layer: the directory is the same as the image's there)."""
    if not stat.S_ISDIR(lst.st_mode) or (lst.st_mode, lst.st_uid, lst.st_gid) != \
            (below.st_mode, below.st_uid, below.st_gid):
        return False
    made = False
    dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    try:
        for child in os.listdir(dfd):
            path = posixpath.join(name, child)
            if _excluded(path, lst):
                made = True
                continue
            try:
                cst = os.stat(child, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if _whiteout(cst) or _below(lowers, path) is None:
                return False
    finally:
        os.close(dfd)
    return made


def changes(st: Storage, ctr: Container) -> list[tuple[str, str]]:
    """``(kind, path)`` for each change, as Docker lists them (walk order)."""
    upper, lowers = _upper(st, ctr), _lowers(st, ctr)
    out: list[tuple[str, str]] = []
    changed_dirs: set[str] = set()
    try:
        for info, lst, fd in fstree.walk(upper, "", prune=_excluded):
            path = "/" + info.name
            below = _below(lowers, info.name)
            if _whiteout(lst) or (info.isdir() and below is not None and _opaque(fd)):
                kind = "D"
            elif below is None:
                kind = "A"
            elif _same_dir(lst, below) or _only_mount_points(fd, info.name, lst, below, lowers):
                continue
            else:
                kind = "C"
            if info.isdir():
                changed_dirs.add(path)
            parent = posixpath.dirname(path)
            if kind != "C" and parent != "/" and parent not in changed_dirs:
                out.append(("C", parent))
                changed_dirs.add(parent)
            out.append((kind, path))
    finally:
        for fd in (upper, *lowers):
            os.close(fd)
    return out


def _layer_entries(upper: int) -> Iterator[fstree.Entry]:
    """The upper dir's entries, whiteouts as OCI whiteout files."""
    for info, lst, fd in fstree.walk(upper, "", prune=_excluded):
        if _whiteout(lst):
            head, base = posixpath.split(info.name)
            wh = tarfile.TarInfo(posixpath.join(head, ".wh." + base))
            wh.mtime = info.mtime
            yield wh, lst, fd
            continue
        yield info, lst, fd
        if info.isdir() and _opaque(fd):
            opq = tarfile.TarInfo(posixpath.join(info.name, ".wh..wh..opq"))
            opq.mtime = info.mtime
            yield opq, lst, fd


def write_layer(st: Storage, ctr: Container, out: object) -> None:
    """The container's layer (its changes to the image) as an OCI layer tar to *out*."""
    upper = _upper(st, ctr)
    try:
        fstree.write_tar(_layer_entries(upper), out)
    finally:
        os.close(upper)
