"""Local images: finding one by name or ID, listing, tagging, removing, inspecting, GC."""

from __future__ import annotations

import re

from ..errors import OcishError
from ..storage.db import transaction
from ..storage.root import Storage
from ..storage.snapshots import chain_ids
from . import reference

TYPE_CHECKING = False  # not typing's: `ocish images` imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any

_ID_RE = re.compile(r"^(?:sha256:)?([a-f0-9]{1,64})$")


class Image:
    """One image and the names that point at it: ``tags`` (name, tag), ``digests``
    (name, digest)."""

    def __init__(self, id: str, created: str, os: str, architecture: str, variant: str,
                 size: int, added: float, tags: list[tuple[str, str]] | None = None,
                 digests: list[tuple[str, str]] | None = None) -> None:
        self.id, self.created, self.os, self.architecture = id, created, os, architecture
        self.variant, self.size, self.added = variant, size, added
        self.tags: list[tuple[str, str]] = tags if tags is not None else []
        self.digests: list[tuple[str, str]] = digests if digests is not None else []


_IMAGE_COLUMNS = "id, created, os, architecture, variant, size, added"
_TAGS = "SELECT image_id, name, tag FROM tags {} ORDER BY updated, name, tag"
_DIGESTS = "SELECT image_id, name, digest FROM repo_digests {} ORDER BY name, digest"


def _images(st: Storage, where: str, args: tuple[str, ...]) -> list[Image]:
    """The images *where* selects (newest first), with their tags and digests: three queries
    however many images."""
    found = [Image(*row) for row in st.db.execute(
        f"SELECT {_IMAGE_COLUMNS} FROM images {where} ORDER BY added DESC, id", args)]
    by_id = {img.id: img for img in found}
    if by_id:
        cond = "WHERE image_id = ?" if where else ""
        for image_id, name, tag in st.db.execute(_TAGS.format(cond), args):
            if image_id in by_id:
                by_id[image_id].tags.append((name, tag))
        for image_id, name, digest in st.db.execute(_DIGESTS.format(cond), args):
            if image_id in by_id:
                by_id[image_id].digests.append((name, digest))
    return found


def _load(st: Storage, image_id: str) -> Image:
    found = _images(st, "WHERE id = ?", (image_id,))
    if not found:
        raise OcishError(f"No such image: {image_id}")
    return found[0]


def list_images(st: Storage) -> list[Image]:
    """Every image, newest first."""
    return _images(st, "", ())


def resolve(st: Storage, text: str) -> str:
    """The image ID that *text* (name[:tag], name@digest, full or short ID) names."""
    try:
        ref = reference.parse(text)
    except OcishError:
        ref = None
    if ref is not None:
        if ref.digest:
            row = st.db.execute("SELECT image_id FROM repo_digests WHERE name = ? AND digest = ?",
                                (ref.name, ref.digest)).fetchone()
            if row is None:
                row = st.db.execute(
                    "SELECT m.image_id FROM manifests m JOIN repo_digests r "
                    "ON r.manifest_digest = m.digest WHERE r.name = ? AND m.digest = ?",
                    (ref.name, ref.digest)).fetchone()
        else:
            row = st.db.execute("SELECT image_id FROM tags WHERE name = ? AND tag = ?",
                                (ref.name, ref.tag)).fetchone()
        if row is not None:
            return str(row["image_id"])
    m = _ID_RE.match(text)
    if m and (text.startswith("sha256:") or ":" not in text):
        rows = st.db.execute("SELECT id FROM images WHERE id LIKE ?",
                             (f"sha256:{m.group(1)}%",)).fetchall()
        if len(rows) == 1:
            return str(rows[0]["id"])
        if len(rows) > 1:
            raise OcishError(f"{text}: ambiguous image ID prefix ({len(rows)} images)")
    raise OcishError(f"No such image: {text}")


def get(st: Storage, text: str) -> Image:
    """The image *text* names."""
    return _load(st, resolve(st, text))


def tag(st: Storage, src: str, dst: str) -> None:
    """Point the tag *dst* at the image *src* names."""
    target = reference.parse(dst)
    if target.digest:
        raise OcishError(f"{dst}: a tag cannot contain a digest")
    with transaction(st.db) as conn:
        image_id = resolve(st, src)
        row = conn.execute("SELECT digest FROM manifests WHERE image_id = ? ORDER BY digest",
                           (image_id,)).fetchone()
        if row is None:
            raise OcishError(f"{src}: image has no manifest")
        conn.execute("INSERT OR REPLACE INTO tags (name, tag, manifest_digest, image_id, updated)"
                     " VALUES (?, ?, ?, ?, strftime('%s','now'))",
                     (target.name, target.tag, row["digest"], image_id))


def remove(st: Storage, text: str, force: bool = False) -> list[str]:
    """``rmi``: untag, and delete the image when nothing names it any more (then GC)."""
    out: list[str] = []
    with st.lock(exclusive=True):
        with transaction(st.db) as conn:
            image_id = resolve(st, text)
            img = _load(st, image_id)
            ref = None
            try:
                ref = reference.parse(text)
            except OcishError:
                pass
            if ref is not None and not ref.digest and (ref.name, ref.tag or "") in img.tags:
                conn.execute("DELETE FROM tags WHERE name = ? AND tag = ?", (ref.name, ref.tag))
                img.tags.remove((ref.name, ref.tag or ""))
                out.append(f"Untagged: {reference.familiar(ref.name)}:{ref.tag}")
                if img.tags:
                    return out
            elif ref is not None and ref.digest and (ref.name, ref.digest) in img.digests:
                conn.execute("DELETE FROM repo_digests WHERE name = ? AND digest = ?",
                             (ref.name, ref.digest))
                img.digests.remove((ref.name, ref.digest))
                out.append(f"Untagged: {reference.familiar(ref.name)}@{ref.digest}")
                if img.tags or img.digests:
                    return out
            elif len({n for n, _ in img.tags}) > 1 and not force:
                raise OcishError(f"conflict: unable to delete {image_id[7:19]} (must be forced)"
                                 " - image is referenced in multiple repositories")
            users = in_use(st, image_id)
            if users:  # its snapshots are the lower dirs of their root filesystems
                raise OcishError(f"conflict: unable to delete {image_id[7:19]} (cannot be "
                                 f"forced) - image is being used by container {users[0][:12]}")
            for name, t in img.tags:
                out.append(f"Untagged: {reference.familiar(name)}:{t}")
            for name, d in img.digests:
                out.append(f"Untagged: {reference.familiar(name)}@{d}")
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
            out.append(f"Deleted: {image_id}")
        gc(st)
    return out


def in_use(st: Storage, image_id: str) -> list[str]:
    """The IDs of the containers made from the image (the containers table is storage's:
    the image service reads it without importing the container service)."""
    return [r[0] for r in st.db.execute("SELECT id FROM containers WHERE image_id = ?",
                                        (image_id,))]


class Collected:
    """What a garbage collection removed: blob count, snapshots (chain IDs) and the bytes of
    layer content those held (the measure ``images`` and ``system df`` show)."""

    def __init__(self) -> None:
        self.blobs = 0
        self.snapshots: list[str] = []
        self.reclaimed = 0


def gc(st: Storage) -> Collected:
    """Remove blobs and snapshots no image uses; the caller holds the exclusive lock."""
    with transaction(st.db) as conn:
        conn.execute("DELETE FROM manifests WHERE image_id NOT IN (SELECT id FROM images)")
        conn.execute("DELETE FROM snapshots WHERE chain_id NOT IN "
                     "(SELECT chain_id FROM manifest_layers)")
        keep_chains = {r[0] for r in conn.execute("SELECT chain_id FROM snapshots")}
        keep_blobs: set[str] = set()
        for query in ("SELECT id FROM images", "SELECT digest FROM manifests",
                      "SELECT blob_digest FROM manifest_layers", "SELECT digest FROM repo_digests"):
            keep_blobs.update(r[0] for r in conn.execute(query))
    out = Collected()
    for digest in list(st.content.digests()):
        if digest not in keep_blobs:
            st.content.delete(digest)
            out.blobs += 1
    for chain in st.snapshots.chain_ids():
        if chain not in keep_chains:
            try:
                out.reclaimed += st.snapshots.info(chain).size
            except (OSError, ValueError, TypeError):
                pass  # no readable info.json: nothing to count
            st.snapshots.remove(chain)
            out.snapshots.append(chain)
    st.content.clean_ingest()
    st.snapshots.clean_tmp()
    return out


def first_manifest(st: Storage, image_id: str) -> str | None:
    """The digest of one manifest of the image (the first by digest), if it has any."""
    row = st.db.execute("SELECT digest FROM manifests WHERE image_id = ? ORDER BY digest",
                        (image_id,)).fetchone()
    return str(row["digest"]) if row else None


def image_config(st: Storage, image_id: str) -> dict[str, Any]:
    """The config of a stored image (its ID is the config's digest)."""
    import json

    config = json.loads(st.content.read(image_id))
    return config if isinstance(config, dict) else {}


def layer_chains(config: dict[str, Any]) -> list[str]:
    """The chain IDs of an image's layers, bottom first (from its config's diff IDs)."""
    return chain_ids(list((config.get("rootfs") or {}).get("diff_ids") or []))


def inspect(st: Storage, image_id: str) -> dict[str, Any]:
    """Docker-like ``image inspect`` data for one image."""
    img = _load(st, image_id)
    config = image_config(st, image_id)
    chains = layer_chains(config)
    lowers = [st.snapshots.fs(c) for c in reversed(chains)]
    last_tag = st.db.execute("SELECT MAX(updated) FROM tags WHERE image_id = ?",
                             (image_id,)).fetchone()[0]
    return {
        "Id": img.id,
        "RepoTags": [f"{reference.familiar(n)}:{t}" for n, t in img.tags],
        "RepoDigests": [f"{reference.familiar(n)}@{d}" for n, d in img.digests],
        "Parent": "",
        "Comment": _comment(config),
        "Created": config.get("created", ""),
        "Author": config.get("author", ""),
        "Config": config.get("config") or {},
        "Architecture": config.get("architecture", ""),
        **({"Variant": config["variant"]} if config.get("variant") else {}),
        "Os": config.get("os", ""),
        "Size": img.size,
        "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": ":".join(lowers)}},
        "RootFS": {"Type": "layers", "Layers": (config.get("rootfs") or {}).get("diff_ids", [])},
        "Metadata": {"LastTagTime": _rfc3339(last_tag) if last_tag else ""},
    }


def _comment(config: dict[str, Any]) -> str:
    history = config.get("history") or []
    return str(history[-1].get("comment", "")) if history and isinstance(history[-1], dict) \
        else ""


def _rfc3339(ts: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(float(ts), datetime.UTC).isoformat().replace(
        "+00:00", "Z")
