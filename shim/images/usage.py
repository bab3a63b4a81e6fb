"""Disk usage of images (``system df``) and pruning them (``image prune``).

Sizes are those ``images`` shows: the bytes of layer content in the snapshots, each snapshot
counted once however many images share it. No containers exist yet, so no image is in use:
every image is reclaimable, and ``prune -a`` removes every image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..storage.db import transaction
from ..storage.root import Storage
from . import records, reference


@dataclass
class ImageUsage:
    """One image: its size, the part shared with other images, the part only it uses."""

    image: records.Image
    size: int
    shared: int
    unique: int
    containers: int = 0


@dataclass
class Usage:
    """The images' totals, as ``system df`` shows them."""

    images: list[ImageUsage]
    size: int          # every snapshot any image uses, once
    active: int        # images used by a container
    reclaimable: int   # what removing the unused images would free


def usage(st: Storage, in_use: frozenset[str] = frozenset()) -> Usage:
    """Per image and total sizes; *in_use* are the IDs of images containers use."""
    imgs = records.list_images(st)
    chains: dict[str, set[str]] = {i.id: set() for i in imgs}
    for r in st.db.execute("SELECT m.image_id, l.chain_id FROM manifest_layers l "
                           "JOIN manifests m ON m.digest = l.manifest_digest"):
        chains.setdefault(r[0], set()).add(r[1])
    sizes = {r[0]: int(r[1]) for r in st.db.execute("SELECT chain_id, size FROM snapshots")}
    users: dict[str, int] = {}
    for cs in chains.values():
        for c in cs:
            users[c] = users.get(c, 0) + 1
    out: list[ImageUsage] = []
    for img in imgs:
        size = sum(sizes.get(c, 0) for c in chains[img.id])
        unique = sum(sizes.get(c, 0) for c in chains[img.id] if users[c] == 1)
        out.append(ImageUsage(img, size, size - unique, unique, int(img.id in in_use)))
    total = sum(sizes.get(c, 0) for c in users)
    used = {c for i in imgs if i.id in in_use for c in chains[i.id]}
    return Usage(out, total, sum(1 for u in out if u.containers),
                 total - sum(sizes.get(c, 0) for c in used))


@dataclass
class Pruned:
    """What ``image prune`` did: Docker's ``untagged:``/``deleted:`` lines, bytes freed."""

    lines: list[str] = field(default_factory=list)
    reclaimed: int = 0


def dangling(img: records.Image) -> bool:
    """An image nothing names: no tag, no repo digest."""
    return not img.tags and not img.digests


def prune(st: Storage, every: bool) -> Pruned:
    """Remove dangling images (*every*: every image no container uses), then GC."""
    out = Pruned()
    with st.lock(exclusive=True):
        with transaction(st.db) as conn:
            for img in records.list_images(st):
                if not (every or dangling(img)) or records.in_use(st, img.id):
                    continue
                out.lines += [f"untagged: {reference.familiar(n)}:{t}" for n, t in img.tags]
                out.lines += [f"untagged: {reference.familiar(n)}@{d}" for n, d in img.digests]
                conn.execute("DELETE FROM images WHERE id = ?", (img.id,))
                out.lines.append(f"deleted: {img.id}")
        collected = records.gc(st)
    out.lines += [f"deleted: {c}" for c in collected.snapshots]
    out.reclaimed = collected.reclaimed
    return out
