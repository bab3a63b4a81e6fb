"""The content store: blobs by digest under ``<root>/blobs/<alg>/<hex>``.

A blob is written to a private file under ``<root>/ingest``, fsynced, checked against its
digest and size, then renamed into place: a blob file that exists is always complete and
correct, whatever killed the writer.
"""

from __future__ import annotations

import os

from ..digests import DIGEST_RE
from ..errors import OcishError

TYPE_CHECKING = False  # not typing's: `ocish images` imports this module, typing costs ms
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import BinaryIO, Protocol

    class Readable(Protocol):
        """Anything with ``read(n) -> bytes``: a file, an HTTP response, a decompressor."""

        def read(self, n: int = -1, /) -> bytes: ...
else:
    Readable = object  # for `from .store import Readable`: annotations are all that use it


CHUNK = 1 << 20
ALGORITHMS = ("sha256", "sha512")


def digest_of(data: bytes) -> str:
    """The sha256 digest of *data*, as ``sha256:<hex>``."""
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def split_digest(digest: str) -> tuple[str, str]:
    """``alg:hex`` -> (alg, hex), refusing anything that could escape the store."""
    alg, _, hexpart = digest.partition(":")
    if alg == "sha256" and DIGEST_RE.match(digest):
        return alg, hexpart
    if alg == "sha512" and len(hexpart) == 128 and all(c in "0123456789abcdef" for c in hexpart):
        return alg, hexpart
    raise OcishError(f"unsupported or invalid digest {digest!r}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """One blob on its way into the store, written to a private file under ``ingest``.

    `feed` takes its bytes in order (hashing them, checking the size), `commit` checks the
    digest and size, fsyncs and renames it into place; `tee` reads a source through it. A writer
    left without a commit (``with`` block ended, process killed) never becomes a blob.
    """

    def __init__(self, store: ContentStore, digest: str, size: int | None,
                 progress: Callable[[int], None] | None = None) -> None:
        self.alg, self.hex = split_digest(digest)
        self.digest, self.size, self.progress = digest, size, progress
        self.final = store.path(digest)
        self.tmp = os.path.join(store.ingest_dir, f"{os.getpid()}-{os.urandom(8).hex()}")
        import hashlib

        self.hash = hashlib.new(self.alg)
        self.got = 0
        self.out: BinaryIO | None = open(self.tmp, "wb", buffering=0)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def feed(self, chunk: bytes) -> int:
        """Add *chunk* (the next bytes of the blob); returns its length (0: nothing to add)."""
        if not chunk:
            return 0
        assert self.out is not None, "blob writer already closed"
        self.got += len(chunk)
        if self.size is not None and self.got > self.size:
            raise OcishError(f"blob {self.digest}: more data than the {self.size} bytes expected")
        self.hash.update(chunk)
        self.out.write(chunk)
        if self.progress:
            self.progress(self.got)
        return len(chunk)

    @property
    def closed(self) -> bool:
        """Whether the writer is done (committed, failed its checks, or closed)."""
        return self.out is None

    def tee(self, src: Readable) -> Readable:
        """A reader of *src* that feeds this writer everything it reads."""
        return _Tee(src, self)

    def commit(self, rest: Readable | None = None) -> None:
        """Feed what is left of *rest*, then verify, fsync and move the blob into place."""
        if rest is not None:
            while self.feed(rest.read(CHUNK)):
                pass
        assert self.out is not None, "blob writer already closed"
        try:
            os.fsync(self.out.fileno())
        finally:
            self.out.close()
            self.out = None
        if self.size is not None and self.got != self.size:
            raise OcishError(f"blob {self.digest}: got {self.got} bytes, expected {self.size}")
        if self.hash.hexdigest() != self.hex:
            raise OcishError(f"blob {self.digest}: digest mismatch "
                             f"(got {self.alg}:{self.hash.hexdigest()})")
        os.chmod(self.tmp, 0o644)
        os.rename(self.tmp, self.final)
        _fsync_dir(os.path.dirname(self.final))

    def close(self) -> None:
        """Drop the temp file (after a commit there is none)."""
        if self.out is not None:
            self.out.close()
            self.out = None
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


class _Tee:
    """Reads from *src* in large pieces, feeding them to a `BlobWriter` on the way."""

    def __init__(self, src: Readable, writer: BlobWriter) -> None:
        self.src = src
        self.writer = writer

    def read(self, n: int = -1, /) -> bytes:
        data = self.src.read(n if 0 < n else CHUNK)
        self.writer.feed(data)
        return data


class ContentStore:
    """Verified, immutable blobs addressed by digest."""

    def __init__(self, root: str) -> None:
        self.root = os.path.join(root, "blobs")
        self.ingest_dir = os.path.join(root, "ingest")
        for alg in ALGORITHMS:
            os.makedirs(os.path.join(self.root, alg), mode=0o700, exist_ok=True)
        os.makedirs(self.ingest_dir, mode=0o700, exist_ok=True)

    def path(self, digest: str) -> str:
        """Where the blob *digest* lives (whether or not it is there)."""
        alg, hexpart = split_digest(digest)
        return os.path.join(self.root, alg, hexpart)

    def has(self, digest: str) -> bool:
        """Whether the blob is present (present blobs are always verified ones)."""
        return os.path.isfile(self.path(digest))

    def size(self, digest: str) -> int:
        """The size of a present blob."""
        return os.stat(self.path(digest)).st_size

    def open(self, digest: str) -> BinaryIO:
        """Open a present blob for reading."""
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise OcishError(f"blob {digest} not found in the content store") from None

    def read(self, digest: str) -> bytes:
        """The content of a present blob (manifests and configs: small ones)."""
        with self.open(digest) as f:
            return f.read()

    def write(self, digest: str, data: bytes) -> None:
        """Store *data*, which must match *digest*."""
        if not os.path.isfile(self.path(digest)):
            with self.writer(digest, len(data)) as w:
                w.feed(data)
                w.commit()

    def ingest(self, digest: str, size: int | None, src: Readable,
               progress: Callable[[int], None] | None = None) -> None:
        """Copy *src* into the store as *digest*, verifying digest and (if known) size."""
        if os.path.isfile(self.path(digest)):
            return
        with self.writer(digest, size, progress) as w:
            while w.feed(src.read(CHUNK)):
                pass
            w.commit()

    def writer(self, digest: str, size: int | None,
               progress: Callable[[int], None] | None = None) -> BlobWriter:
        """A `BlobWriter` for *digest*: feed it, then commit; used as a context manager, it
        removes its temp file if it was not committed."""
        return BlobWriter(self, digest, size, progress)

    def digests(self) -> Iterator[str]:
        """Every blob in the store."""
        for alg in ALGORITHMS:
            for name in os.listdir(os.path.join(self.root, alg)):
                yield f"{alg}:{name}"

    def delete(self, digest: str) -> None:
        """Remove a blob if present."""
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def clean_ingest(self) -> None:
        """Remove temp files left by writers that have died."""
        for name in os.listdir(self.ingest_dir):
            pid = name.split("-", 1)[0]
            if not pid.isdigit() or not pid_alive(int(pid)):
                try:
                    os.unlink(os.path.join(self.ingest_dir, name))
                except FileNotFoundError:
                    pass
