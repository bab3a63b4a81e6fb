"""``load``: images from a docker-archive or an oci-archive (plain or compressed tar).

What ``docker save``, ``podman save`` (both formats), ``skopeo copy`` (``docker-archive:`` and
``oci-archive:``) and ``ocish save`` write are all read. An archive with an ``index.json`` is read
as an OCI layout (Docker 25+ archives carry one besides ``manifest.json``); names come from the
``io.containerd.image.name`` or a full ``org.opencontainers.image.ref.name`` annotation. A
docker-archive has no manifests: one (OCI) is made from its config and layers.

Every blob goes through the content store (digest and size checked), every layer is unpacked
into its snapshot with its diff ID checked, and the image is recorded as pull records it.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from typing import IO, Any

from ..errors import OcishError
from ..registry.client import INDEX_TYPES, MAX_MANIFEST
from ..storage.content import digest_of, split_digest
from ..storage.root import Storage
from ..storage.unpack import clean_parts
from . import platforms, records, reference
from .install import (
    MAX_CONFIG,
    Descriptor,
    Parts,
    descriptor,
    install,
    manifest_parts,
    new_image,
    parse_json,
    parts,
    tag_recorded,
)

NAME_KEYS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
MAX_LINKS = 40
# the magic bytes of compressed layers -> their OCI media type (None: not storable as a layer)
COMPRESSED: list[tuple[bytes, str | None]] = [
    (b"\x1f\x8b", "application/vnd.oci.image.layer.v1.tar+gzip"),
    (b"\x28\xb5\x2f\xfd", "application/vnd.oci.image.layer.v1.tar+zstd"),
    (b"BZh", None),
    (b"\xfd7zXZ\x00", None),
]


@dataclass
class Loaded:
    """One image loaded: its ID and the names (name, tag) it got."""

    image_id: str
    tags: list[tuple[str, str]]


class Archive:
    """Random access to the members of a (seekable) tar, compressed or not."""

    def __init__(self, f: IO[bytes]) -> None:
        try:
            self.tf = tarfile.open(fileobj=f, mode="r:*")
            members = self.tf.getmembers()
        except tarfile.ReadError:
            raise OcishError("archive: not a readable tar archive (plain, gzip, bzip2 or "
                             "xz)") from None
        except (tarfile.TarError, EOFError, OSError) as exc:
            detail = " ".join(str(exc).split())
            raise OcishError(f"archive: not a readable tar archive: {detail}") from None
        self.members = {"/".join(clean_parts(m.name)): m for m in members}

    def has(self, name: str) -> bool:
        return name in self.members

    def member(self, name: str) -> tarfile.TarInfo:
        """The regular file *name* names, following links inside the archive."""
        key = "/".join(clean_parts(name))
        for _ in range(MAX_LINKS):
            m = self.members.get(key)
            if m is None:
                raise OcishError(f"archive: {name}: not in the archive")
            if m.isreg():
                return m
            if m.issym():
                base = [] if m.linkname.startswith("/") else clean_parts(key)[:-1]
                key = "/".join(clean_parts("/".join([*base, m.linkname])))
            elif m.islnk():
                key = "/".join(clean_parts(m.linkname))
            else:
                raise OcishError(f"archive: {name}: not a regular file")
        raise OcishError(f"archive: {name}: too many levels of links")

    def open(self, name: str) -> IO[bytes]:
        f = self.tf.extractfile(self.member(name))
        assert f is not None  # a regular file always has data
        return f

    def read(self, name: str, limit: int) -> bytes:
        m = self.member(name)
        if m.size > limit:
            raise OcishError(f"archive: {name}: larger than {limit} bytes")
        with self.open(name) as f:
            return f.read()


def _ingest(st: Storage, arc: Archive, name: str, digest: str, size: int | None) -> None:
    if not st.content.has(digest):
        with arc.open(name) as f:
            st.content.ingest(digest, size, f)


def _install(st: Storage, arc: Archive, p: Parts, paths: list[str],
             tags: list[tuple[str, str]]) -> Loaded:
    """Store the layers from *paths*, unpack the missing snapshots, record the image."""
    for (digest, size, _), path in zip(p.layers, paths, strict=True):
        _ingest(st, arc, path, digest, size)
    install(st, p, tags, [])
    return Loaded(p.config_digest, tags)


def _blob_path(digest: str) -> str:
    alg, hexpart = split_digest(digest)
    return f"blobs/{alg}/{hexpart}"


def _blob(st: Storage, arc: Archive, desc: Descriptor, limit: int) -> bytes:
    digest, size, _ = desc
    if size > limit:
        raise OcishError(f"{digest}: larger than {limit} bytes")
    _ingest(st, arc, _blob_path(digest), digest, size)
    return st.content.read(digest)


def _oci_names(annotations: Any) -> list[tuple[str, str]]:
    """The name an index entry's annotations give, when it is a full name:tag."""
    if not isinstance(annotations, dict):
        return []
    for key in NAME_KEYS:
        text = annotations.get(key)
        if isinstance(text, str) and ("/" in text or ":" in text):
            try:
                ref = reference.parse(text)
            except OcishError:
                continue
            if ref.tag and not ref.digest:
                return [(ref.name, ref.tag)]
    return []


def _load_oci(st: Storage, arc: Archive) -> list[Loaded]:
    index = parse_json(arc.read("index.json", MAX_MANIFEST), "index.json")
    out: list[Loaded] = []
    for entry in index.get("manifests") or []:
        desc = descriptor(entry, "index.json")
        data = _blob(st, arc, desc, MAX_MANIFEST)
        if desc[2] in INDEX_TYPES or "manifests" in parse_json(data, desc[0]):
            desc = descriptor(platforms.select(parse_json(data, desc[0]), platforms.host()),
                              desc[0])
            data = _blob(st, arc, desc, MAX_MANIFEST)
        digest, msize, media_type = desc
        cdesc, layers = manifest_parts(parse_json(data, digest), digest, media_type)
        config = parse_json(_blob(st, arc, cdesc, MAX_CONFIG), cdesc[0])
        p = parts(digest, media_type, msize, cdesc[0], config, layers)
        paths = [_blob_path(d) for d, _, _ in layers]
        out.append(_install(st, arc, p, paths, _oci_names(entry.get("annotations"))))
    return out


def _docker_tags(entry: dict[str, Any]) -> list[tuple[str, str]]:
    tags: list[tuple[str, str]] = []
    for text in entry.get("RepoTags") or []:
        ref = reference.parse(str(text))
        if ref.digest or not ref.tag:
            raise OcishError(f"manifest.json: {text}: not a name:tag")
        tags.append((ref.name, ref.tag))
    return tags


def _layer_descriptor(arc: Archive, path: str, diff_id: str) -> Descriptor:
    """How a docker-archive layer file is stored: as it is, its digest its diff ID if it is
    a plain tar, else hashed here."""
    size = arc.member(path).size
    with arc.open(path) as f:
        head = f.read(6)
        for magic, media_type in COMPRESSED:
            if head.startswith(magic):
                if media_type is None:
                    raise OcishError(f"archive: {path}: unsupported layer compression")
                h = hashlib.sha256(head)
                while chunk := f.read(1 << 16):
                    h.update(chunk)
                return "sha256:" + h.hexdigest(), size, media_type
    return diff_id, size, "application/vnd.oci.image.layer.v1.tar"


def _load_docker(st: Storage, arc: Archive) -> list[Loaded]:
    entries = json.loads(arc.read("manifest.json", MAX_MANIFEST) or b"null")
    if not isinstance(entries, list):
        raise OcishError("manifest.json: not a JSON array")
    out: list[Loaded] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers"), list):
            raise OcishError("manifest.json: an entry lacks Config or Layers")
        data = arc.read(entry["Config"], MAX_CONFIG)
        config_digest = digest_of(data)
        config = parse_json(data, entry["Config"])
        tags = _docker_tags(entry)
        paths = [str(p) for p in entry["Layers"]]
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        have = records.first_manifest(st, config_digest)
        if have is not None:  # the same image (its config names every diff ID): only names
            tag_recorded(st, have, config_digest, tags)
            out.append(Loaded(config_digest, tags))
            continue
        if len(diff_ids) != len(paths):
            raise OcishError(f"{entry['Config']}: {len(diff_ids)} diff IDs for "
                             f"{len(paths)} layers")
        layers = [_layer_descriptor(arc, p, d) for p, d in zip(paths, diff_ids, strict=True)]
        out.append(_install(st, arc, new_image(st, data, layers), paths, tags))
    return out


def load(st: Storage, f: IO[bytes]) -> list[Loaded]:
    """Load every image of the archive *f* (seekable)."""
    arc = Archive(f)
    with st.lock(exclusive=False):
        st.content.clean_ingest()
        st.snapshots.clean_tmp()
        if arc.has("index.json"):
            return _load_oci(st, arc)
        if arc.has("manifest.json"):
            return _load_docker(st, arc)
    if arc.has("repositories"):
        raise OcishError("archive: the legacy format without manifest.json is not supported")
    raise OcishError("archive: neither an oci-archive (index.json) nor a docker-archive "
                     "(manifest.json)")
