"""``save``: images as a docker-archive (what ``docker save`` writes) or an oci-archive (an OCI
image layout in a tar, what ``podman save --format oci-archive`` writes).

docker-archive: ``manifest.json`` (Config, RepoTags, Layers), the config as ``<hex>.json`` and
each layer uncompressed as ``<diff ID hex>.tar``, so that its digest is its diff ID. RepoTags
are full names (``docker.io/library/busybox:latest``, as skopeo writes them): Docker reads them
the same as short ones, and podman would file a short one under ``localhost/``.
oci-archive: ``oci-layout``, ``index.json`` (one entry per name, annotated with
``org.opencontainers.image.ref.name``) and the stored blobs as they are, so manifest digests
are kept. Every member gets mtime 0 and owner 0:0: saving the same images twice gives the same
bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

from ..errors import OcishError
from ..storage.content import split_digest
from ..storage.root import Storage
from ..storage.unpack import decompressor
from . import records, reference
from .install import manifest_parts, parse_json

FORMATS = ("docker-archive", "oci-archive")
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass
class Selected:
    """One image to save: which of its manifests, and the names to give it."""

    image_id: str
    manifest: str
    tags: list[tuple[str, str]] = field(default_factory=list)   # (name, tag)


def _has_tag(text: str) -> bool:
    rest = text.split("@", 1)[0]
    return rest.rfind(":") > rest.rfind("/")


def _one(st: Storage, text: str) -> list[Selected]:
    """What *text* names: a name:tag, every tag of a bare repository name (as Docker does), or
    one image by name@digest or ID (saved without a name)."""
    try:
        ref: reference.Reference | None = reference.parse(text)
    except OcishError:
        ref = None
    if ref is not None and not ref.digest:
        if _has_tag(text):
            rows = st.db.execute("SELECT name, tag, manifest_digest, image_id FROM tags "
                                 "WHERE name = ? AND tag = ?", (ref.name, ref.tag)).fetchall()
        else:
            rows = st.db.execute("SELECT name, tag, manifest_digest, image_id FROM tags "
                                 "WHERE name = ? ORDER BY tag", (ref.name,)).fetchall()
        if rows:
            return [Selected(r["image_id"], r["manifest_digest"], [(r["name"], r["tag"])])
                    for r in rows]
    image_id = records.resolve(st, text)
    manifest = None
    if ref is not None and ref.digest:
        row = st.db.execute("SELECT manifest_digest FROM repo_digests WHERE name = ? AND "
                            "digest = ?", (ref.name, ref.digest)).fetchone()
        manifest = row["manifest_digest"] if row else None
    manifest = manifest or records.first_manifest(st, image_id)
    if manifest is None:
        raise OcishError(f"{text}: image has no manifest")
    return [Selected(image_id, manifest)]


def select(st: Storage, texts: list[str]) -> list[Selected]:
    """The images *texts* name, each (image, manifest) once with all the names asked for."""
    out: dict[tuple[str, str], Selected] = {}
    for text in texts:
        for sel in _one(st, text):
            have = out.setdefault((sel.image_id, sel.manifest), Selected(sel.image_id,
                                                                         sel.manifest))
            have.tags += [t for t in sel.tags if t not in have.tags]
    return list(out.values())


def _info(name: str, size: int, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.uid, info.gid = size, 0, 0, 0
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.mode = 0o644
    return info


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    tf.addfile(_info(name, len(data)), io.BytesIO(data))


def _add_blob(tf: tarfile.TarFile, st: Storage, name: str, digest: str) -> None:
    with st.content.open(digest) as f:
        tf.addfile(_info(name, st.content.size(digest)), f)


def _add_layer_tar(tf: tarfile.TarFile, st: Storage, name: str, blob: str, diff_id: str) -> None:
    """The layer *blob* uncompressed, checked against its diff ID."""
    if blob == diff_id:
        _add_blob(tf, st, name, blob)
        return
    h = hashlib.new(split_digest(diff_id)[0])
    with tempfile.TemporaryFile(dir=st.root) as tmp, st.content.open(blob) as f:
        src = decompressor(f)
        while chunk := src.read(1 << 16):
            h.update(chunk)
            tmp.write(chunk)
        if f"{h.name}:{h.hexdigest()}" != diff_id:
            raise OcishError(f"layer {blob}: its content does not match diff ID {diff_id}")
        size = tmp.tell()
        tmp.seek(0)
        tf.addfile(_info(name, size), tmp)


def _layers(st: Storage, manifest: str) -> list[str]:
    data = st.content.read(manifest)
    return [d for d, _, _ in manifest_parts(parse_json(data, manifest), manifest, "")[1]]


def _docker_archive(st: Storage, sel: list[Selected], tf: tarfile.TarFile) -> None:
    by_image: dict[str, Selected] = {}
    for s in sel:
        have = by_image.setdefault(s.image_id, Selected(s.image_id, s.manifest))
        have.tags += [t for t in s.tags if t not in have.tags]
    entries: list[dict[str, Any]] = []
    written: set[str] = set()
    for s in by_image.values():
        config = records.image_config(st, s.image_id)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        blobs = _layers(st, s.manifest)
        if len(blobs) != len(diff_ids):
            raise OcishError(f"{s.image_id}: {len(diff_ids)} diff IDs for {len(blobs)} layers")
        config_name = split_digest(s.image_id)[1] + ".json"
        _add_blob(tf, st, config_name, s.image_id)
        names = []
        for blob, diff_id in zip(blobs, diff_ids, strict=True):
            name = split_digest(diff_id)[1] + ".tar"
            if name not in written:
                _add_layer_tar(tf, st, name, blob, diff_id)
                written.add(name)
            names.append(name)
        entries.append({"Config": config_name,
                        "RepoTags": [f"{n}:{t}" for n, t in s.tags],
                        "Layers": names})
    _add_bytes(tf, "manifest.json", json.dumps(entries, separators=(",", ":")).encode())


def _oci_archive(st: Storage, sel: list[Selected], tf: tarfile.TarFile) -> None:
    _add_bytes(tf, "oci-layout", OCI_LAYOUT)
    tf.addfile(_info("blobs", 0, directory=True))
    dirs: set[str] = set()
    written: set[str] = set()
    entries: list[dict[str, Any]] = []
    for s in sel:
        row = st.db.execute("SELECT media_type, size FROM manifests WHERE digest = ?",
                            (s.manifest,)).fetchone()
        for digest in [s.manifest, s.image_id, *_layers(st, s.manifest)]:
            if digest in written:
                continue
            alg, hexpart = split_digest(digest)
            if alg not in dirs:
                tf.addfile(_info(f"blobs/{alg}", 0, directory=True))
                dirs.add(alg)
            _add_blob(tf, st, f"blobs/{alg}/{hexpart}", digest)
            written.add(digest)
        desc = {"mediaType": row["media_type"], "digest": s.manifest, "size": row["size"]}
        entries += [{**desc, "annotations": {REF_NAME: f"{n}:{t}"}} for n, t in s.tags] or [desc]
    index = {"schemaVersion": 2, "manifests": entries}
    _add_bytes(tf, "index.json", json.dumps(index, separators=(",", ":")).encode())


def save(st: Storage, texts: list[str], out: IO[bytes] | BinaryIO, fmt: str) -> None:
    """Write the images *texts* name to *out* (any writable stream) as a *fmt* tar."""
    if fmt not in FORMATS:
        raise OcishError(f"--format {fmt!r}: want one of {', '.join(FORMATS)}")
    with st.lock(exclusive=False):
        sel = select(st, texts)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            if fmt == "docker-archive":
                _docker_archive(st, sel, tf)
            else:
                _oci_archive(st, sel, tf)

