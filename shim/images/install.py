"""Installing an image whose blobs are in the content store: checks, snapshots, records.

Pull, load and import end here alike: the manifest and config are checked the same way, each
missing layer snapshot is unpacked from its stored blob (its diff ID checked), and the image,
its manifest, layers, snapshots, tags and repo digests are recorded in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time

from ..errors import OcishError
from ..storage.content import digest_of
from ..storage.db import transaction
from ..storage.root import Storage
from ..storage.snapshots import chain_ids

TYPE_CHECKING = False  # not typing's: pull imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any

LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
MAX_CONFIG = 8 << 20
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

Descriptor = tuple[str, int, str]   # (digest, size, media type)


def parse_json(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object, or a one-line error naming *what*."""
    try:
        obj = json.loads(data)
    except ValueError:
        raise OcishError(f"{what}: not valid JSON") from None
    if not isinstance(obj, dict):
        raise OcishError(f"{what}: not a JSON object")
    return obj


def descriptor(desc: Any, what: str) -> Descriptor:
    """A checked OCI descriptor."""
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise OcishError(f"{what}: bad descriptor")
    size = desc.get("size")
    if not isinstance(size, int) or size < 0:
        raise OcishError(f"{what}: bad descriptor size")
    return desc["digest"], size, str(desc.get("mediaType", ""))


def manifest_parts(manifest: dict[str, Any], digest: str, media_type: str
                   ) -> tuple[Descriptor, list[Descriptor]]:
    """The config and layer descriptors of an image manifest (OCI or Docker schema 2)."""
    if "layers" not in manifest or "config" not in manifest:
        raise OcishError(f"{digest}: unsupported manifest (schemaVersion "
                         f"{manifest.get('schemaVersion')}, type {media_type!r})")
    config = descriptor(manifest["config"], f"{digest} config")
    if config[1] > MAX_CONFIG:
        raise OcishError(f"{digest}: config larger than {MAX_CONFIG} bytes")
    layers = [descriptor(d, f"{digest} layer") for d in manifest["layers"] or []]
    for _, _, lt in layers:
        if lt and lt not in LAYER_TYPES:
            raise OcishError(f"{digest}: unsupported layer type {lt!r}")
    return config, layers


class Parts:
    """Everything about one image to install, its blobs in the content store (layers may come
    later: see ``unpack_layer``)."""

    def __init__(self, manifest_digest: str, media_type: str, manifest_size: int,
                 config_digest: str, config: dict[str, Any], layers: list[Descriptor],
                 diff_ids: list[str], chains: list[str]) -> None:
        self.manifest_digest, self.media_type = manifest_digest, media_type
        self.manifest_size, self.config_digest, self.config = manifest_size, config_digest, config
        self.layers, self.diff_ids, self.chains = layers, diff_ids, chains


def parts(manifest_digest: str, media_type: str, manifest_size: int, config_digest: str,
          config: dict[str, Any], layers: list[Descriptor]) -> Parts:
    """Check that the config's diff IDs match the layers and work out the chain IDs."""
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    if len(diff_ids) != len(layers) or not all(isinstance(d, str) for d in diff_ids):
        raise OcishError(f"{config_digest}: {len(diff_ids)} diff IDs for {len(layers)} layers")
    return Parts(manifest_digest, media_type, manifest_size, config_digest, config, layers,
                 diff_ids, chain_ids(diff_ids))


def new_image(st: Storage, config_data: bytes, layers: list[Descriptor]) -> Parts:
    """Store *config_data* and a new OCI manifest naming it and *layers* (their blobs stored
    already or to be stored before ``install``)."""
    from ..registry.client import (
        OCI_MANIFEST,  # here: the HTTP client is no import of every command
    )

    config_digest = digest_of(config_data)
    config = parse_json(config_data, config_digest)
    st.content.write(config_digest, config_data)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_data)},
        "layers": [{"mediaType": t, "digest": d, "size": s} for d, s, t in layers],
    }, separators=(",", ":")).encode()
    digest = digest_of(manifest)
    st.content.write(digest, manifest)
    return parts(digest, OCI_MANIFEST, len(manifest), config_digest, config, layers)


def install(st: Storage, p: Parts, tags: list[tuple[str, str]],
            repo_digests: list[tuple[str, str]]) -> None:
    """Unpack the missing snapshots from the stored layer blobs, then ``record``."""
    for i in missing_layers(st, p):
        unpack_layer(st, p, i)
    record(st, p, tags, repo_digests)


def unpack_layer(st: Storage, p: Parts, i: int) -> None:
    """Make the snapshot of layer *i* from its stored blob (nothing if it exists)."""
    with st.content.open(p.layers[i][0]) as blob:
        st.snapshots.create(p.chains[i], p.chains[i - 1] if i else "", p.diff_ids[i], blob)


def missing_layers(st: Storage, p: Parts) -> list[int]:
    """The layers whose snapshots are not there yet."""
    return [i for i in range(len(p.layers)) if not st.snapshots.exists(p.chains[i])]


def record(st: Storage, p: Parts, tags: list[tuple[str, str]],
           repo_digests: list[tuple[str, str]]) -> None:
    """Record the image, its manifest, layers and snapshots, and point *tags* (name, tag) and
    *repo_digests* (name, digest) at it; every snapshot must exist."""
    now = time.time()
    infos = [st.snapshots.info(c) for c in p.chains]
    size = sum(i.size for i in infos)
    config = p.config
    with transaction(st.db) as conn:
        conn.execute(
            "INSERT OR IGNORE INTO images (id, created, os, architecture, variant, size, added)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (p.config_digest, str(config.get("created", "")), str(config.get("os", "")),
             str(config.get("architecture", "")), str(config.get("variant", "")), size, now))
        conn.execute("INSERT OR IGNORE INTO manifests (digest, image_id, media_type, size) "
                     "VALUES (?, ?, ?, ?)",
                     (p.manifest_digest, p.config_digest, p.media_type, p.manifest_size))
        for i, (bdigest, bsize, btype) in enumerate(p.layers):
            conn.execute(
                "INSERT OR IGNORE INTO manifest_layers (manifest_digest, idx, blob_digest, "
                "media_type, size, diff_id, chain_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (p.manifest_digest, i, bdigest, btype, bsize, p.diff_ids[i], p.chains[i]))
        for info in infos:
            conn.execute("INSERT OR IGNORE INTO snapshots (chain_id, parent, diff_id, size, "
                         "created) VALUES (?, ?, ?, ?, ?)",
                         (info.chain_id, info.parent, info.diff_id, info.size, now))
        _tag(conn, p.manifest_digest, p.config_digest, tags, now)
        for name, digest in repo_digests:
            conn.execute("INSERT OR REPLACE INTO repo_digests (name, digest, manifest_digest, "
                         "image_id) VALUES (?, ?, ?, ?)",
                         (name, digest, p.manifest_digest, p.config_digest))


def _tag(conn: sqlite3.Connection, manifest_digest: str, image_id: str,
         tags: list[tuple[str, str]], now: float) -> None:
    for name, tag in tags:
        conn.execute("INSERT OR REPLACE INTO tags (name, tag, manifest_digest, image_id, "
                     "updated) VALUES (?, ?, ?, ?, ?)", (name, tag, manifest_digest, image_id, now))


def tag_recorded(st: Storage, manifest_digest: str, image_id: str,
                 tags: list[tuple[str, str]]) -> None:
    """Point *tags* at an image already recorded with that manifest."""
    with transaction(st.db) as conn:
        _tag(conn, manifest_digest, image_id, tags, time.time())
