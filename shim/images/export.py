"""``image export``: an image's root filesystem, flattened, as one tar.

The snapshots are merged the way overlayfs merges them as lower dirs, without mounting
anything: the topmost layer holding a name wins; a whiteout (a 0/0 character device) hides the
name in the layers below; a directory goes on merging with the directories of the same name
below it until one is opaque (``trusted.overlay.opaque=y``) or a lower layer has something other
than a directory there. Whiteouts and overlayfs xattrs never reach the tar; other xattrs
(``security.capability``, ``user.*``) do, as PAX ``SCHILY.xattr`` records, which ``import``
and layer unpacking read back. Hard links within a layer stay hard links.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import IO, BinaryIO

from ..storage.root import Storage
from . import records

OPAQUE_XATTR = "trusted.overlay.opaque"


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def pax_xattrs(path: str, follow: bool = False) -> dict[str, str]:
    """The PAX records of *path*'s xattrs, overlayfs' own (trusted.*) left out."""
    out: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=follow)
    except OSError:
        return out
    for name in names:
        if name.startswith("trusted."):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=follow)
        except OSError:
            continue
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def _add(tf: tarfile.TarFile, path: str, arcname: str) -> None:
    info = tf.gettarinfo(path, arcname)
    if info is None:  # a socket: tar has no such entry
        return
    info.uname = info.gname = ""
    info.pax_headers = pax_xattrs(path)
    sec, ns = divmod(os.lstat(path).st_mtime_ns, 1_000_000_000)
    info.mtime = sec  # whole seconds: no pax record unless there is a fraction to keep
    if ns:
        info.pax_headers["mtime"] = f"{sec}.{ns:09d}"
    if info.isreg():
        with open(path, "rb") as f:
            tf.addfile(info, f)
    else:
        tf.addfile(info)


def _merge(tf: tarfile.TarFile, prefix: str, dirs: list[str]) -> None:
    """Add the merged contents of the directory *prefix*; *dirs* are its layers, top first."""
    listings = [set(os.listdir(d)) for d in dirs]
    for name in sorted(set().union(*listings)):
        top = ""
        below: list[str] = []
        for d, listing in zip(dirs, listings, strict=True):
            if name not in listing:
                continue
            path = os.path.join(d, name)
            st = os.lstat(path)
            if not top and _whiteout(st):
                break
            if not stat.S_ISDIR(st.st_mode):
                top = top or path
                break
            top = top or path
            below.append(path)
            if _opaque(path):
                break
        if not top:
            continue
        _add(tf, top, prefix + name)
        if below and stat.S_ISDIR(os.lstat(top).st_mode):
            _merge(tf, prefix + name + "/", below)


def write_rootfs(lowers: list[str], out: IO[bytes] | BinaryIO) -> None:
    """Write the merged view of *lowers* (layer dirs, top first) to *out* as a tar."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        if lowers:
            _merge(tf, "", lowers)


def export(st: Storage, image_id: str, out: IO[bytes] | BinaryIO) -> None:
    """Write the root filesystem of the image *image_id* to *out*."""
    with st.lock(exclusive=False):
        chains = records.layer_chains(records.image_config(st, image_id))
        write_rootfs([st.snapshots.fs(c) for c in reversed(chains)], out)
