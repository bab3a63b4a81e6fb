"""Pulling an image: manifest (via the index if any), config, layers, snapshots, records."""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TextIO

from . import platforms
from .db import transaction
from .errors import OcishError
from .reference import Reference
from .registry import INDEX_TYPES, RegistryClient
from .snapshots import chain_ids
from .storage import Storage

LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
MAX_CONFIG = 8 << 20


class Progress:
    """Docker-like progress lines (``abc123def456: Pull complete``), one thread at a time."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.lock = threading.Lock()

    def line(self, text: str) -> None:
        if self.out is None:
            return
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()

    def layer(self, digest: str, status: str) -> None:
        self.line(f"{digest.split(':', 1)[-1][:12]}: {status}")


@dataclass
class Pulled:
    """The outcome of a pull."""

    image_id: str
    manifest_digest: str
    repo_digest: str
    downloaded: bool


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except ValueError:
        raise OcishError(f"{what}: not valid JSON") from None
    if not isinstance(obj, dict):
        raise OcishError(f"{what}: not a JSON object")
    return obj


def _manifest(st: Storage, client: RegistryClient, repo: str, ref: str) -> tuple[bytes, str, str]:
    """A manifest by tag (always asked) or digest (from the store when there)."""
    if ref.startswith("sha256:") and st.content.has(ref):
        data = st.content.read(ref)
        return data, _json(data, ref).get("mediaType", ""), ref
    data, media_type, digest = client.get_manifest(repo, ref)
    st.content.write(digest, data)
    return data, media_type, digest


def _descriptor(desc: Any, what: str) -> tuple[str, int, str]:
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise OcishError(f"{what}: bad descriptor")
    size = desc.get("size")
    if not isinstance(size, int) or size < 0:
        raise OcishError(f"{what}: bad descriptor size")
    return desc["digest"], size, str(desc.get("mediaType", ""))


def pull(st: Storage, client: RegistryClient, ref: Reference, want: platforms.Platform,
         out: TextIO | None = sys.stdout, workers: int = 3) -> Pulled:
    """Pull *ref* into *st*; blobs and snapshots already there are not fetched again."""
    progress = Progress(out)
    repo = ref.repository
    with st.lock(exclusive=False):
        st.content.clean_ingest()
        st.snapshots.clean_tmp()
        data, media_type, top = _manifest(st, client, repo, ref.reference)
        if ref.tag and not ref.digest:
            progress.line(f"{ref.tag}: Pulling from {repo}")
        digest = top
        if media_type in INDEX_TYPES or "manifests" in _json(data, top):
            chosen = platforms.select(_json(data, top), want)
            digest = _descriptor(chosen, top)[0]
            data, media_type, _ = _manifest(st, client, repo, digest)
        manifest = _json(data, digest)
        if "layers" not in manifest or "config" not in manifest:
            raise OcishError(f"{ref}: unsupported manifest (schemaVersion "
                             f"{manifest.get('schemaVersion')}, type {media_type!r})")
        cdigest, csize, _ = _descriptor(manifest["config"], f"{digest} config")
        if csize > MAX_CONFIG:
            raise OcishError(f"{digest}: config larger than {MAX_CONFIG} bytes")
        if not st.content.has(cdigest):
            with client.open_blob(repo, cdigest) as resp:
                st.content.ingest(cdigest, csize, resp)
        config = _json(st.content.read(cdigest), cdigest)
        layers = [_descriptor(d, f"{digest} layer") for d in manifest["layers"] or []]
        for _, _, lt in layers:
            if lt and lt not in LAYER_TYPES:
                raise OcishError(f"{digest}: unsupported layer type {lt!r}")
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(layers):
            raise OcishError(f"{cdigest}: {len(diff_ids)} diff IDs for {len(layers)} layers")
        chains = chain_ids(diff_ids)
        downloaded = _fetch_layers(st, client, repo, layers, diff_ids, chains, progress, workers)
        _record(st, ref, top, digest, media_type, len(data), cdigest, config, layers, diff_ids,
                chains)
    progress.line(f"Digest: {top}")
    status = "Downloaded newer image" if downloaded else "Image is up to date"
    progress.line(f"Status: {status} for {ref}")
    return Pulled(cdigest, digest, f"{ref.name}@{top}", downloaded)


def _fetch_layers(st: Storage, client: RegistryClient, repo: str,
                  layers: list[tuple[str, int, str]], diff_ids: list[str], chains: list[str],
                  progress: Progress, workers: int) -> bool:
    """Download (concurrently) and unpack the layers whose snapshots are missing."""
    todo = [i for i in range(len(layers)) if not st.snapshots.exists(chains[i])]
    for i in range(len(layers)):
        if i not in todo:
            progress.layer(layers[i][0], "Already exists")

    def one(i: int) -> None:
        bdigest, bsize, _ = layers[i]
        if not st.content.has(bdigest):
            progress.layer(bdigest, "Pulling fs layer")
            with client.open_blob(repo, bdigest) as resp:
                st.content.ingest(bdigest, bsize, resp)
            progress.layer(bdigest, "Download complete")
        with st.content.open(bdigest) as blob:
            st.snapshots.create(chains[i], chains[i - 1] if i else "", diff_ids[i], blob)
        progress.layer(bdigest, "Pull complete")

    if todo:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for fut in [pool.submit(one, i) for i in todo]:
                fut.result()
    return bool(todo)


def _record(st: Storage, ref: Reference, top: str, digest: str, media_type: str, msize: int,
            cdigest: str, config: dict[str, Any], layers: list[tuple[str, int, str]],
            diff_ids: list[str], chains: list[str]) -> None:
    now = time.time()
    infos = [st.snapshots.info(c) for c in chains]
    size = sum(i.size for i in infos)
    with transaction(st.db) as conn:
        conn.execute(
            "INSERT OR IGNORE INTO images (id, created, os, architecture, variant, size, added)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (cdigest, str(config.get("created", "")), str(config.get("os", "")),
             str(config.get("architecture", "")), str(config.get("variant", "")), size, now))
        conn.execute("INSERT OR IGNORE INTO manifests (digest, image_id, media_type, size) "
                     "VALUES (?, ?, ?, ?)", (digest, cdigest, media_type, msize))
        for i, (bdigest, bsize, btype) in enumerate(layers):
            conn.execute(
                "INSERT OR IGNORE INTO manifest_layers (manifest_digest, idx, blob_digest, "
                "media_type, size, diff_id, chain_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (digest, i, bdigest, btype, bsize, diff_ids[i], chains[i]))
        for info in infos:
            conn.execute("INSERT OR IGNORE INTO snapshots (chain_id, parent, diff_id, size, "
                         "created) VALUES (?, ?, ?, ?, ?)",
                         (info.chain_id, info.parent, info.diff_id, info.size, now))
        if ref.tag and not ref.digest:
            conn.execute("INSERT OR REPLACE INTO tags (name, tag, manifest_digest, image_id, "
                         "updated) VALUES (?, ?, ?, ?, ?)",
                         (ref.name, ref.tag, digest, cdigest, now))
        conn.execute("INSERT OR REPLACE INTO repo_digests (name, digest, manifest_digest, "
                     "image_id) VALUES (?, ?, ?, ?)", (ref.name, top, digest, cdigest))
