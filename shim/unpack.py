"""Unpacking one layer tar into a directory usable as an overlayfs lower dir.

Every path is resolved inside the destination: ``..`` and absolute names are clamped to it,
symlinks met on the way are followed as if the destination were ``/``, and the last component
is never followed (it is replaced). Whiteouts become overlayfs whiteouts: ``.wh.NAME`` a 0/0
character device, ``.wh..wh..opq`` the ``trusted.overlay.opaque`` xattr on its directory.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import os
import shutil
import stat
import tarfile
import zlib
from dataclasses import dataclass
from typing import Any, cast

from .errors import OcishError
from .store import Readable

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_SYMLINKS = 255


@dataclass
class Unpacked:
    """What unpacking a layer measured: its diff ID and the bytes of its regular files."""

    diff_id: str
    size: int


class _Hashing:
    """Hash (sha256) and pass through everything read: the diff ID of the tar stream."""

    def __init__(self, src: Readable) -> None:
        self.src = src
        self.hash = hashlib.sha256()

    def read(self, n: int = -1, /) -> bytes:
        data = self.src.read(n)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 16):
            pass


class _Prefixed:
    """A reader giving back *head* (already read from *src*) before the rest of *src*."""

    def __init__(self, head: bytes, src: Readable) -> None:
        self.head = head
        self.src = src

    def read(self, n: int = -1, /) -> bytes:
        if self.head:
            if n < 0:
                out, self.head = self.head + self.src.read(), b""
                return out
            out, self.head = self.head[:n], self.head[n:]
            return out
        return self.src.read(n)


def decompressor(src: Readable) -> Readable:
    """Wrap *src* in the decompressor its magic bytes call for (gzip, zstd, bzip2, xz or none)."""
    head = b""
    while len(head) < 6:
        chunk = src.read(6 - len(head))
        if not chunk:
            break
        head += chunk
    raw = _Prefixed(head, src)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=cast(Any, raw), mode="rb")
    if head[:4] == b"\x28\xb5\x2f\xfd":
        try:
            zstandard = importlib.import_module("zstandard")
        except ImportError:
            raise OcishError("zstd-compressed layer: install the 'zstandard' module") from None
        return zstandard.ZstdDecompressor().stream_reader(raw)
    if head[:3] == b"BZh":
        import bz2

        return bz2.BZ2File(cast(Any, raw), mode="rb")
    if head == b"\xfd7zXZ\x00":
        import lzma

        return lzma.LZMAFile(cast(Any, raw), mode="rb")
    return raw


def clean_parts(name: str) -> list[str]:
    """Lexically clean a tar member name into components, clamped at the root."""
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            continue
        parts.append(comp)
    return parts


def resolve_in(root: str, parts: list[str]) -> str:
    """Resolve *parts* under *root* following symlinks as if *root* were ``/``.

    Missing components are kept as they are (the caller creates them); the result is
    always *root* or below it.
    """
    todo = list(parts)
    done: list[str] = []
    links = 0
    while todo:
        comp = todo.pop(0)
        if comp in ("", "."):
            continue
        if comp == "..":
            if done:
                done.pop()
            continue
        path = os.path.join(root, *done, comp)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            done.append(comp)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                raise OcishError(f"layer: too many levels of symlinks at {'/'.join(parts)}")
            target = os.readlink(path)
            if target.startswith("/"):
                done = []
            todo = target.split("/") + todo
            continue
        done.append(comp)
    return os.path.join(root, *done)


def _mkdirs(root: str, path: str) -> None:
    """Create the missing directories of *path* (already resolved inside *root*)."""
    rel = os.path.relpath(path, root)
    if rel == ".":
        return
    cur = root
    for comp in rel.split("/"):
        cur = os.path.join(cur, comp)
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise OcishError(f"layer: {rel}: {comp} is not a directory")


def _remove(path: str) -> None:
    """Remove whatever is at *path* (never following a symlink)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


class _Extractor:
    def __init__(self, root: str) -> None:
        self.root = root
        self.is_root = os.geteuid() == 0
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []
        self.size = 0

    def locate(self, name: str) -> tuple[str, str]:
        """(resolved parent directory, created if missing; last component) of *name*."""
        parts = clean_parts(name)
        if not parts:
            return self.root, ""
        parent = resolve_in(self.root, parts[:-1])
        _mkdirs(self.root, parent)
        return parent, parts[-1]

    def member(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parent, base = self.locate(m.name)
        if base == OPAQUE:
            self._xattr(parent, "trusted.overlay.opaque", b"y", trusted_ok=True)
            return
        if base.startswith(WHITEOUT):
            victim = base[len(WHITEOUT):]
            if victim in ("", ".", "..") or victim.startswith(WHITEOUT):
                return
            dest = os.path.join(parent, victim)
            _remove(dest)
            os.mknod(dest, stat.S_IFCHR | 0o600, os.makedev(0, 0))
            return
        dest = os.path.join(parent, base) if base else self.root
        if m.isdir():
            if not os.path.isdir(dest) or os.path.islink(dest):
                _remove(dest)
                os.mkdir(dest, 0o755)
            self.dirs.append((dest, m))
            self._owner_mode(dest, m)
            return
        if dest == self.root:
            raise OcishError("layer: the root entry is not a directory")
        _remove(dest)
        if m.islnk():
            lparent = resolve_in(self.root, clean_parts(m.linkname)[:-1])
            lparts = clean_parts(m.linkname)
            if not lparts:
                raise OcishError(f"layer: hardlink {m.name} to the root")
            target = os.path.join(lparent, lparts[-1])
            try:
                st = os.lstat(target)
            except FileNotFoundError:
                raise OcishError(f"layer: hardlink {m.name}: target {m.linkname} is not in "
                                 "the layer") from None
            if stat.S_ISDIR(st.st_mode):
                raise OcishError(f"layer: hardlink {m.name} to a directory")
            os.link(target, dest, follow_symlinks=False)
            return
        if m.issym():
            os.symlink(m.linkname, dest)
        elif m.isreg():
            src = tf.extractfile(m)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                if src is not None:
                    shutil.copyfileobj(src, out, 1 << 16)
            self.size += m.size
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            try:
                os.mknod(dest, kind | 0o600, os.makedev(m.devmajor, m.devminor))
            except PermissionError:
                return  # not root: device nodes cannot be made, as in rootless engines
        else:
            return
        self._owner_mode(dest, m)
        os.utime(dest, (m.mtime, m.mtime), follow_symlinks=False)

    def _owner_mode(self, dest: str, m: tarfile.TarInfo) -> None:
        if self.is_root:
            os.chown(dest, m.uid, m.gid, follow_symlinks=False)
        if not m.issym():
            os.chmod(dest, m.mode & 0o7777)
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                self._xattr(dest, key[len("SCHILY.xattr."):],
                            value.encode("utf-8", "surrogateescape"))

    def _xattr(self, path: str, name: str, value: bytes, trusted_ok: bool = False) -> None:
        if name.startswith("trusted.overlay.") and not trusted_ok:
            return  # a layer does not get to steer overlayfs
        try:
            os.setxattr(path, name, value, follow_symlinks=False)
        except OSError:
            pass  # unsupported here: as containerd does, go on without it

    def finish(self) -> None:
        for path, m in sorted(self.dirs, key=lambda d: -d[0].count("/")):
            try:
                os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)
            except FileNotFoundError:
                pass


def unpack(src: Readable, dest: str) -> Unpacked:
    """Unpack the (possibly compressed) layer *src* into the existing, empty dir *dest*."""
    hashing = _Hashing(decompressor(src))
    ex = _Extractor(os.path.realpath(dest))
    try:
        with tarfile.open(fileobj=cast(Any, hashing), mode="r|") as tf:
            for m in tf:
                ex.member(tf, m)
        hashing.drain()
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise OcishError(f"layer: bad archive: {exc}") from None
    ex.finish()
    return Unpacked("sha256:" + hashing.hash.hexdigest(), ex.size)

