"""Pushing a local image: its blobs (unless the repository has them, or can mount them from
another repository of the same registry), then its manifest, byte for byte as stored.

Blobs larger than the chunk size go up in chunks. ``OCISH_PUSH_CHUNK_SIZE`` (bytes, default
16 MiB) sets it; ``OCISH_PUSH_UPLOAD=monolithic`` or ``chunked`` forces one way for every blob.
"""

from __future__ import annotations

import os
import sys
from functools import partial

from ..errors import OcishError
from ..registry import upload
from ..registry.client import RegistryClient
from ..storage.db import transaction
from ..storage.root import Storage
from ..threads import run_all
from . import records, reference
from .pull import Progress, _descriptor, _json
from .reference import Reference

TYPE_CHECKING = False  # not typing's: typing costs ms
if TYPE_CHECKING:
    from typing import TextIO

DEFAULT_CHUNK = 16 << 20
FOREIGN_TYPES = {
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}


class Pushed:
    """The outcome of a push: the manifest's digest and what happened to each blob."""

    def __init__(self, digest: str, size: int) -> None:
        self.digest, self.size = digest, size
        self.blobs: dict[str, str] = {}  # digest -> exists|mounted|uploaded


def upload_plan() -> tuple[str, int]:
    """(mode, chunk size) from the environment: mode is auto, monolithic or chunked."""
    mode = os.environ.get("OCISH_PUSH_UPLOAD") or "auto"
    if mode not in ("auto", "monolithic", "chunked"):
        raise OcishError(f"OCISH_PUSH_UPLOAD={mode!r}: want auto, monolithic or chunked")
    text = os.environ.get("OCISH_PUSH_CHUNK_SIZE") or str(DEFAULT_CHUNK)
    if not text.isdigit() or int(text) < 1:
        raise OcishError(f"OCISH_PUSH_CHUNK_SIZE={text!r}: want a number of bytes")
    return mode, int(text)


def local_manifest(st: Storage, text: str) -> tuple[str, str, bytes, str]:
    """The manifest *text* names locally: (digest, media type, bytes, image ID)."""
    image_id = records.resolve(st, text)
    row = None
    try:
        ref: Reference | None = reference.parse(text)
    except OcishError:
        ref = None
    if ref is not None and ref.digest:
        row = st.db.execute("SELECT manifest_digest FROM repo_digests WHERE name = ? AND "
                            "digest = ?", (ref.name, ref.digest)).fetchone()
    elif ref is not None:
        row = st.db.execute("SELECT manifest_digest FROM tags WHERE name = ? AND tag = ?",
                            (ref.name, ref.tag)).fetchone()
    if row is None:
        row = st.db.execute("SELECT digest FROM manifests WHERE image_id = ? ORDER BY digest",
                            (image_id,)).fetchone()
    if row is None:
        raise OcishError(f"{text}: image has no manifest")
    digest = str(row[0])
    mrow = st.db.execute("SELECT media_type FROM manifests WHERE digest = ?",
                         (digest,)).fetchone()
    data = st.content.read(digest)
    media_type = (mrow[0] if mrow else "") or str(_json(data, digest).get("mediaType", ""))
    if not media_type:
        raise OcishError(f"{text}: manifest {digest} has no media type")
    return digest, media_type, data, image_id


def named_locally(st: Storage, ref: Reference) -> bool:
    """Whether *ref* is a local tag or name@digest (not an image ID that parses as a name)."""
    if ref.digest:
        query, args = "SELECT 1 FROM repo_digests WHERE name = ? AND digest = ?", ref.digest
    else:
        query, args = "SELECT 1 FROM tags WHERE name = ? AND tag = ?", ref.tag or ""
    return st.db.execute(query, (ref.name, args)).fetchone() is not None


def mount_source(st: Storage, dest: Reference, digest: str) -> str | None:
    """Another repository of *dest*'s registry known to hold blob *digest* (it was pulled from
    or pushed to it), to mount the blob from."""
    prefix = dest.registry + "/"
    for row in st.db.execute(
            "SELECT DISTINCT r.name FROM repo_digests r JOIN manifests m ON m.digest = "
            "r.manifest_digest WHERE m.image_id = ? OR EXISTS (SELECT 1 FROM manifest_layers l "
            "WHERE l.manifest_digest = m.digest AND l.blob_digest = ?) ORDER BY r.name",
            (digest, digest)):
        name = str(row[0])
        if name.startswith(prefix) and name != dest.name:
            return name[len(prefix):]
    return None


def _push_blob(st: Storage, client: RegistryClient, dest: Reference, digest: str, size: int,
               plan: tuple[str, int]) -> str:
    """Make *dest*'s repository hold the blob; returns exists, mounted or uploaded."""
    repo = dest.repository
    if upload.blob_exists(client, repo, digest):
        return "exists"
    source = mount_source(st, dest, digest)
    location = upload.start_upload(client, repo, digest, source)
    if location is None:
        return f"mounted from {source}"
    if not st.content.has(digest):
        # only an image pulled before pulls fetched the blobs of layers unpacked already
        raise OcishError(f"{dest}: blob {digest} is not in the local store (pull the image "
                         "again to fetch it)")
    mode, chunk = plan
    with st.content.open(digest) as blob:
        if mode == "chunked" or (mode == "auto" and size > chunk):
            upload.upload_chunked(client, repo, location, digest, blob, size, chunk)
        else:
            upload.upload_monolithic(client, repo, location, digest, blob, size)
    return "uploaded"


STATUS = {"exists": "Layer already exists", "uploaded": "Pushed"}


def push(st: Storage, client: RegistryClient, source: str, dest: Reference,
         out: TextIO | None = sys.stdout, workers: int = 3) -> Pushed:
    """Push the local image *source* to *dest* (which has a tag)."""
    if dest.digest or not dest.tag:
        raise OcishError(f"{dest}: push to a tag, not a digest")
    plan = upload_plan()
    progress = Progress(out)
    with st.lock(exclusive=False):
        digest, media_type, data, image_id = local_manifest(st, source)
        manifest = _json(data, digest)
        if "layers" not in manifest or "config" not in manifest:
            raise OcishError(f"{source}: manifest {digest} is not an image manifest")
        config = _descriptor(manifest["config"], f"{digest} config")
        layers = [(_descriptor(d, f"{digest} layer"), d) for d in manifest["layers"] or []]
        progress.line(f"The push refers to repository [{dest.name}]")
        result = Pushed(digest, len(data))

        def one(blob: tuple[str, int, str], shown: bool) -> None:
            status = _push_blob(st, client, dest, blob[0], blob[1], plan)
            result.blobs[blob[0]] = status
            if shown:
                progress.layer(blob[0], STATUS.get(status, status.capitalize()))

        todo = [((d, s, t), True) for (d, s, t), raw in layers
                if not (t in FOREIGN_TYPES and raw.get("urls"))]
        run_all([partial(one, blob, shown) for blob, shown in todo], workers)
        one(config, False)
        got = upload.put_manifest(client, dest.repository, dest.tag, data, media_type)
        if got and got != digest:
            raise OcishError(f"{dest}: the registry stored the manifest as {got}, not {digest}")
        with transaction(st.db) as conn:
            conn.execute("INSERT OR IGNORE INTO repo_digests (name, digest, manifest_digest, "
                         "image_id) VALUES (?, ?, ?, ?)", (dest.name, digest, digest, image_id))
    progress.line(f"{dest.tag}: digest: {digest} size: {len(data)}")
    return result
