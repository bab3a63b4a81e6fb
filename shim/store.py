"""The content store: blobs by digest under ``<root>/blobs/<alg>/<hex>``.

A blob is written to a private file under ``<root>/ingest``, fsynced, checked against its
digest and size, then renamed into place: a blob file that exists is always complete and
correct, whatever killed the writer.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol

from .errors import OcishError
from .reference import DIGEST_RE

CHUNK = 1 << 16
ALGORITHMS = ("sha256", "sha512")


class Readable(Protocol):
    """Anything with ``read(n) -> bytes``: a file, an HTTP response, a decompressor."""

    def read(self, n: int = -1, /) -> bytes: ...


def digest_of(data: bytes) -> str:
    """The sha256 digest of *data*, as ``sha256:<hex>``."""
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
        self.ingest(digest, len(data), io.BytesIO(data))

    def ingest(self, digest: str, size: int | None, src: Readable,
               progress: Callable[[int], None] | None = None) -> None:
        """Copy *src* into the store as *digest*, verifying digest and (if known) size."""
        alg, hexpart = split_digest(digest)
        final = self.path(digest)
        if os.path.isfile(final):
            return
        tmp = os.path.join(self.ingest_dir, f"{os.getpid()}-{secrets.token_hex(8)}")
        delay = float(os.environ.get("OCISH_TEST_DOWNLOAD_DELAY", "0") or 0)
        h = hashlib.new(alg)
        got = 0
        try:
            with open(tmp, "wb") as out:
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    h.update(chunk)
                    out.write(chunk)
                    got += len(chunk)
                    if size is not None and got > size:
                        raise OcishError(f"blob {digest}: more data than the {size} bytes expected")
                    if progress:
                        progress(got)
                    if delay:
                        time.sleep(delay)
                out.flush()
                os.fsync(out.fileno())
            if size is not None and got != size:
                raise OcishError(f"blob {digest}: got {got} bytes, expected {size}")
            if h.hexdigest() != hexpart:
                raise OcishError(f"blob {digest}: digest mismatch (got {alg}:{h.hexdigest()})")
            os.chmod(tmp, 0o644)
            os.rename(tmp, final)
            _fsync_dir(os.path.dirname(final))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

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
