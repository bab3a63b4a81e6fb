"""``history``: the rows of an image's config history, newest first, with layer sizes.

As Docker shows it: the top row carries the image ID, the older ones ``<missing>`` (ocish keeps
no parent images); a row that made a layer (not ``empty_layer``) gets that layer's size. A
config without history gets one row per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..storage.root import Storage
from . import records

MISSING = "<missing>"


@dataclass
class Row:
    """One history entry."""

    id: str
    created: str
    created_by: str
    size: int
    comment: str


def _layer_sizes(st: Storage, chains: list[str]) -> list[int]:
    sizes = {r["chain_id"]: int(r["size"]) for r in st.db.execute(
        f"SELECT chain_id, size FROM snapshots WHERE chain_id IN ({','.join('?' * len(chains))})",
        chains)}
    return [sizes.get(c, 0) for c in chains]


def history(st: Storage, image_id: str) -> list[Row]:
    """The history of the image *image_id*, newest first."""
    config = records.image_config(st, image_id)
    sizes = _layer_sizes(st, records.layer_chains(config))
    entries = [h for h in config.get("history") or [] if isinstance(h, dict)]
    rows: list[Row] = []
    layer = 0
    for h in entries:
        size = 0
        if not h.get("empty_layer") and layer < len(sizes):
            size, layer = sizes[layer], layer + 1
        rows.append(Row(MISSING, str(h.get("created", "")), str(h.get("created_by", "")), size,
                        str(h.get("comment", ""))))
    if not entries:
        rows = [Row(MISSING, str(config.get("created", "")), "", size, "") for size in sizes]
    rows.reverse()
    if rows:
        rows[0].id = image_id
    return rows
