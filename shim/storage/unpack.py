"""Unpacking one layer tar into a directory usable as an overlayfs lower dir.

Every path is resolved inside the destination: ``..`` and absolute names are clamped to it,
symlinks met on the way are followed as if the destination were ``/``, and the last component
is never followed (it is replaced). Whiteouts become overlayfs whiteouts: ``.wh.NAME`` a 0/0
character device, ``.wh..wh..opq`` the ``trusted.overlay.opaque`` xattr on its directory.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zlib

from ..errors import OcishError

TYPE_CHECKING = False  # not typing's
if TYPE_CHECKING:
    from collections.abc import Iterator

    from .content import Readable

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_SYMLINKS = 255
CHUNK = 1 << 20  # what each read of the compressed and the decompressed stream asks for
MAX_HEADER = 16 << 20  # pax records and long names are read whole: no larger than this


class BadArchive(OcishError):
    """The compressed data is corrupt or ends early."""


class Unpacked:
    """What unpacking a layer measured: its diff ID and the bytes of its regular files."""

    def __init__(self, diff_id: str, size: int) -> None:
        self.diff_id = diff_id
        self.size = size


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


class _Gunzip:
    """gzip decompression on large pieces (zlib directly: GzipFile reads 8 KiB at a time).

    Members follow one another as in GzipFile; zero padding after the last is allowed, any
    other trailing data is an error. Each member's CRC and length are checked by zlib.
    """

    def __init__(self, src: Readable) -> None:
        self.src = src
        self.z = zlib.decompressobj(31)
        self.pending = b""  # compressed bytes read but not given to zlib yet

    def _more(self) -> bytes:
        data, self.pending = self.pending or self.src.read(CHUNK), b""
        return data

    def read(self, n: int = -1, /) -> bytes:
        limit = n if n > 0 else CHUNK
        while True:
            if self.z.eof:
                rest = self.z.unused_data or self.src.read(CHUNK)
                while rest and not rest.strip(b"\0"):
                    rest = self.src.read(CHUNK)
                rest = rest.lstrip(b"\0") if rest[:1] == b"\0" else rest
                if not rest:
                    return b""
                if rest[:2] != b"\x1f\x8b" and len(rest) >= 2:
                    raise BadArchive("gzip: trailing data after the compressed stream")
                self.z = zlib.decompressobj(31)
                self.pending = rest
            data = self.z.unconsumed_tail or self._more()
            if not data:
                raise BadArchive("gzip: the compressed data ends early")
            try:
                out = self.z.decompress(data, limit)
            except zlib.error as exc:
                raise BadArchive(f"gzip: {exc}") from None
            if out:
                return out


class _Wrapped:
    """A decompressing reader whose own exceptions become `BadArchive`."""

    def __init__(self, reader: Readable, kind: str, errors: tuple[type[BaseException], ...]
                 ) -> None:
        self.reader = reader
        self.kind = kind
        self.errors = errors

    def read(self, n: int = -1, /) -> bytes:
        try:
            return self.reader.read(n if n > 0 else CHUNK)
        except self.errors as exc:
            raise BadArchive(f"{self.kind}: {exc or type(exc).__name__}") from None


def decompressor(src: Readable) -> Readable:
    """Wrap *src* in the decompressor its magic bytes call for (gzip, zstd, bzip2, xz or none).

    The reader returned gives decompressed bytes (up to n a call, b"" at the end) and raises
    `BadArchive` for corrupt or truncated data.
    """
    head = b""
    while len(head) < 6:
        chunk = src.read(6 - len(head))
        if not chunk:
            break
        head += chunk
    raw = _Prefixed(head, src)
    if head[:2] == b"\x1f\x8b":
        return _Gunzip(raw)
    if head[:4] == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard
        except ImportError:
            raise OcishError("zstd-compressed layer: install the 'zstandard' module") from None
        reader = zstandard.ZstdDecompressor().stream_reader(
            raw, read_size=CHUNK, read_across_frames=True)  # type: ignore[arg-type]
        return _Wrapped(reader, "zstd", (zstandard.ZstdError, EOFError))
    if head[:3] == b"BZh":
        import bz2

        return _Wrapped(bz2.BZ2File(raw, mode="rb"),  # type: ignore[call-overload]
                        "bzip2", (OSError, EOFError))
    if head == b"\xfd7zXZ\x00":
        import lzma

        return _Wrapped(lzma.LZMAFile(raw, mode="rb"),  # type: ignore[arg-type]
                        "xz", (lzma.LZMAError, EOFError))
    return raw


class TarStream:
    """The decompressed tar stream for tarfile's header parser (``read``, ``tell``) and for
    copying member data straight out of large buffers; sha256 of every byte is the diff ID.

    It also stands in for the TarFile object that `tarfile.TarInfo.fromtarfile` reads from.
    """

    encoding = "utf-8"
    errors = "surrogateescape"

    def __init__(self, src: Readable) -> None:
        import hashlib

        self.src = src
        self.hash = hashlib.sha256()
        self.buf = b""
        self.pos = 0    # of the next byte within buf
        self.base = 0   # stream offset of buf[0]
        self.fileobj = self
        self.offset = 0  # set by tarfile: where the next header starts
        self.pax_headers: dict[str, str] = {}

    def _next(self) -> bool:
        """Move on to the next decompressed piece; False at the end of the stream."""
        data = self.src.read(CHUNK)
        self.base += len(self.buf)
        self.buf, self.pos = data, 0
        if not data:
            return False
        self.hash.update(data)
        return True

    def tell(self) -> int:
        return self.base + self.pos

    def read(self, n: int) -> bytes:
        """Up to *n* bytes (fewer only at the end): tarfile's headers."""
        if n > MAX_HEADER:
            raise BadArchive(f"tar: a {n}-byte header (pax or long name)")
        end = self.pos + n
        if end <= len(self.buf):
            out = self.buf[self.pos:end]
            self.pos = end
            return out
        parts = [self.buf[self.pos:]]
        got = len(parts[0])
        self.pos = len(self.buf)
        while got < n and self._next():
            take = self.buf[:n - got]
            parts.append(take)
            got += len(take)
            self.pos = len(take)
        return b"".join(parts)

    def copy(self, fd: int | None, n: int) -> None:
        """Write the next *n* bytes to *fd* (skip them if None)."""
        while n > 0:
            if self.pos >= len(self.buf) and not self._next():
                raise BadArchive("tar: unexpected end of data")
            k = min(n, len(self.buf) - self.pos)
            if fd is not None:
                view = memoryview(self.buf)[self.pos:self.pos + k]
                while view:
                    view = view[os.write(fd, view):]
            self.pos += k
            n -= k

    def skip_to(self, offset: int) -> None:
        """Skip to stream offset *offset* (tarfile's ``offset``: the next header)."""
        if offset > self.tell():
            self.copy(None, offset - self.tell())

    def drain(self) -> None:
        """Read (and hash) whatever follows the end of the archive."""
        while self._next():
            pass

    def members(self) -> Iterator[tarfile.TarInfo]:
        """The archive's members, as TarFile.next() finds them (without ignore_zeros)."""
        while True:
            self.skip_to(self.offset)
            at = self.tell()
            try:
                m = tarfile.TarInfo.fromtarfile(self)  # type: ignore[arg-type]
            except tarfile.EOFHeaderError:  # type: ignore[attr-defined]
                return
            except (tarfile.EmptyHeaderError,  # type: ignore[attr-defined]
                    tarfile.TruncatedHeaderError,  # type: ignore[attr-defined]
                    tarfile.InvalidHeaderError) as exc:  # type: ignore[attr-defined]
                if at == 0:
                    raise tarfile.ReadError(str(exc) or "empty file") from None
                return
            except tarfile.HeaderError as exc:  # a bad header after a pax or GNU long one
                raise tarfile.ReadError(str(exc)) from None
            yield m


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


class _Extractor:
    def __init__(self, root: str) -> None:
        self.root = root
        self.is_root = os.geteuid() == 0
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []
        self.size = 0
        # resolved (and made) parent dirs by their cleaned path: one lstat walk per dir, not per
        # member; dropped whenever a dir or symlink is removed (the only way one can change)
        self.parents: dict[str, str] = {}

    def locate(self, name: str) -> tuple[str, str]:
        """(resolved parent directory, created if missing; last component) of *name*."""
        parts = clean_parts(name)
        if not parts:
            return self.root, ""
        key = "/".join(parts[:-1])
        parent = self.parents.get(key)
        if parent is None:
            parent = resolve_in(self.root, parts[:-1])
            _mkdirs(self.root, parent)
            self.parents[key] = parent
        return parent, parts[-1]

    def remove(self, path: str) -> None:
        """Remove whatever is at *path* (never following a symlink)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self.parents.clear()

    def member(self, stream: TarStream, m: tarfile.TarInfo) -> None:
        parent, base = self.locate(m.name)
        if base == OPAQUE:
            self._xattr(parent, "trusted.overlay.opaque", b"y", trusted_ok=True)
            return
        if base.startswith(WHITEOUT):
            victim = base[len(WHITEOUT):]
            if victim in ("", ".", "..") or victim.startswith(WHITEOUT):
                return
            dest = os.path.join(parent, victim)
            self.remove(dest)
            os.mknod(dest, stat.S_IFCHR | 0o600, os.makedev(0, 0))
            return
        dest = os.path.join(parent, base) if base else self.root
        if m.isdir():
            if not os.path.isdir(dest) or os.path.islink(dest):
                self.remove(dest)
                os.mkdir(dest, 0o755)
            self.dirs.append((dest, m))
            self._owner_mode(dest, m)
            return
        if dest == self.root:
            raise OcishError("layer: the root entry is not a directory")
        self.remove(dest)
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
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
            try:
                if m.sparse is None:
                    stream.copy(fd, m.size)
                else:
                    sparse: list[tuple[int, int]] = m.sparse  # type: ignore[assignment]
                    for offset, length in sparse:
                        os.lseek(fd, offset, os.SEEK_SET)
                        stream.copy(fd, length)
                    os.ftruncate(fd, m.size)
            finally:
                os.close(fd)
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
        os.utime(dest, ns=(member_mtime_ns(m),) * 2, follow_symlinks=False)

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
                os.utime(path, ns=(member_mtime_ns(m),) * 2, follow_symlinks=False)
            except FileNotFoundError:
                pass


def member_mtime_ns(m: tarfile.TarInfo) -> int:
    """The member's mtime in ns: exact from a pax ``mtime`` record (a float loses digits)."""
    text = m.pax_headers.get("mtime")
    if text:
        whole, _, frac = text.partition(".")
        try:
            ns = int(whole) * 1_000_000_000
            digits = (frac + "000000000")[:9]
            return ns - int(digits) if whole.startswith("-") else ns + int(digits)
        except ValueError:
            pass
    return int(m.mtime * 1_000_000_000)


def unpack(src: Readable, dest: str) -> Unpacked:
    """Unpack the (possibly compressed) layer *src* into the existing, empty dir *dest*."""
    stream = TarStream(decompressor(src))
    ex = _Extractor(os.path.realpath(dest))
    try:
        for m in stream.members():
            ex.member(stream, m)
        stream.drain()
    except BadArchive as exc:
        raise OcishError(f"layer: bad archive: {exc}") from None
    except tarfile.TarError as exc:
        raise OcishError(f"layer: bad archive: tar: {exc}") from None
    ex.finish()
    return Unpacked("sha256:" + stream.hash.hexdigest(), ex.size)
