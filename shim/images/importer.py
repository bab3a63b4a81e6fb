"""``import``: a one-layer image from a rootfs tarball (plain, gzip, bzip2, xz or zstd).

As ``docker import`` does, the tar is the layer as it is: its diff ID is the sha256 of the
uncompressed stream. The layer is stored gzip-compressed (an OCI ``tar+gzip`` blob), unpacked
into its snapshot like a pulled layer, and described by a new config whose one history entry
has the comment ``Imported from SOURCE`` (or ``--message``).
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import tempfile
from typing import Any

from ..storage.content import Readable
from ..storage.root import Storage
from ..storage.unpack import decompressor
from . import changes, platforms
from .install import install, new_image

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class _HashingWriter:
    """Hash (sha256) everything written through to *out*."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return int(self.out.write(data))

    def flush(self) -> None:
        self.out.flush()


class LayerWriter:
    """Takes a layer's uncompressed tar stream: gzips it into *tmp*, hashing both, for
    `store` to put the blob in the content store (import's layer, commit's)."""

    def __init__(self, tmp: Any) -> None:
        self.tmp = tmp
        self.diff = hashlib.sha256()
        self.packed = _HashingWriter(tmp)
        self.gz = gzip.GzipFile(fileobj=self.packed, mode="wb", mtime=0)

    def write(self, data: bytes) -> int:
        self.diff.update(data)
        self.gz.write(data)
        return len(data)

    def flush(self) -> None:
        pass

    def store(self, st: Storage) -> tuple[str, int, str]:
        """Ingest the compressed layer: (blob digest, blob size, diff ID)."""
        self.gz.close()
        blob = "sha256:" + self.packed.hash.hexdigest()
        self.tmp.seek(0)
        st.content.ingest(blob, self.packed.size, self.tmp)
        return blob, self.packed.size, "sha256:" + self.diff.hexdigest()


def now_rfc3339() -> str:
    """The current time as Docker writes ``created``."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


def import_rootfs(st: Storage, src: Readable, source: str, tags: list[tuple[str, str]],
                  change: list[str], message: str, platform: platforms.Platform) -> str:
    """Make and record the image; returns its ID."""
    with st.lock(exclusive=False), tempfile.TemporaryFile(dir=st.root) as tmp:
        plain = decompressor(src)
        layer = LayerWriter(tmp)
        while chunk := plain.read(1 << 16):
            layer.write(chunk)
        blob, size, diff_id = layer.store(st)
        created = now_rfc3339()
        config = {
            "architecture": platform.architecture,
            **({"variant": platform.variant} if platform.variant else {}),
            "os": platform.os, "created": created,
            "config": changes.apply({}, change),
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "comment": message or f"Imported from {source}"}],
        }
        p = new_image(st, json.dumps(config, separators=(",", ":")).encode(),
                      [(blob, size, GZIP_LAYER)])
        install(st, p, tags, [])
    return p.config_digest
