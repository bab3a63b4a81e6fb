"""``commit``: a new image, the container's image plus one layer of the container's changes.

The image config is the container's: its image's, with the Env, Cmd, Entrypoint, WorkingDir
and User the container was created with (as Docker's container config holds them), then the
``--change`` instructions (images.changes, what ``import --change`` takes). The layer
(layer.write_layer) is stored gzip-compressed like an imported one and the image goes through
the same install as pulled and loaded ones. With ``pause`` a running container is frozen
(the runtime's ``pause``) while its layer is read, as Docker does by default.
"""

from __future__ import annotations

import json
import tempfile
from typing import Any

from ..errors import OcishError
from ..images import changes
from ..images.importer import GZIP_LAYER, LayerWriter, now_rfc3339
from ..images.install import install, new_image
from ..storage.root import Storage
from . import layer, lifecycle, records
from .records import Container
from .state import refresh


def container_config(ctr: Container) -> dict[str, Any]:
    """The ``config`` of the container, Docker's way: the image's with the run options."""
    opts = ctr.options
    base: dict[str, Any] = dict(opts.get("image_config") or {})
    cfg = dict(base)
    image_env = {str(e).partition("=")[0] for e in base.get("Env") or []}
    # HOSTNAME is set for each container, never kept in an image (unless it came from it)
    cfg["Env"] = [e for e in opts.get("env") or []
                  if e.partition("=")[0] != "HOSTNAME" or "HOSTNAME" in image_env]
    if opts.get("entrypoint") is not None:
        cfg["Entrypoint"] = [opts["entrypoint"]] if opts["entrypoint"] else None
        cfg["Cmd"] = list(opts.get("cmd") or []) or None
    elif opts.get("cmd"):
        cfg["Cmd"] = list(opts["cmd"])
    workdir = opts.get("workdir") or ""
    if workdir != "/" or base.get("WorkingDir"):
        cfg["WorkingDir"] = workdir
    cfg["User"] = opts.get("user") or ""
    labels = opts.get("labels")
    if isinstance(labels, dict) and labels:
        cfg["Labels"] = {**(base.get("Labels") or {}), **labels}
    return cfg


def _layers(st: Storage, image_id: str) -> list[tuple[str, int, str]]:
    """The layer descriptors of the image's (first) manifest."""
    from ..images import records as images

    manifest = images.first_manifest(st, image_id)
    if manifest is None:
        raise OcishError(f"image {image_id} has no manifest")
    return [(r["blob_digest"], int(r["size"]), r["media_type"]) for r in st.db.execute(
        "SELECT blob_digest, size, media_type FROM manifest_layers WHERE manifest_digest = ? "
        "ORDER BY idx", (manifest,))]


def commit(st: Storage, name: str, tags: list[tuple[str, str]], author: str, message: str,
           change: list[str], pause: bool) -> str:
    """Make and record the image; returns its ID."""
    from ..images import records as images

    ctr = records.find(st, name)
    with lifecycle.locked(st, ctr.id):
        cur = records.get(st, ctr.id)
        if cur is None:
            raise OcishError(f"No such container: {name}")
        ctr = refresh(st, cur, locked=True)
        config = changes.apply(container_config(ctr), change)
        base = images.image_config(st, ctr.image_id)
        layers = _layers(st, ctr.image_id)
        with st.lock(exclusive=False), tempfile.TemporaryFile(dir=st.root) as tmp:
            out = LayerWriter(tmp)
            paused = pause and ctr.status == "running"
            rt = lifecycle.runtime_of(st, ctr)
            if paused:
                rt._run("pause", ctr.id)  # noqa: SLF001 - the runtime CLI's verb, as is
            try:
                layer.write_layer(st, ctr, out)
            finally:
                if paused:
                    rt._run("resume", ctr.id)  # noqa: SLF001
            blob, size, diff_id = out.store(st)
            created = now_rfc3339()
            entry = {"created": created, "created_by": " ".join(ctr.options.get("args") or []),
                     **({"author": author} if author else {}),
                     **({"comment": message} if message else {})}
            new = {k: v for k, v in base.items() if k not in ("container", "container_config")}
            new.update({
                "created": created, "config": config,
                "rootfs": {"type": "layers",
                           "diff_ids": [*((base.get("rootfs") or {}).get("diff_ids") or []),
                                        diff_id]},
                "history": [*(base.get("history") or []), entry],
            })
            if author:
                new["author"] = author
            else:
                new.pop("author", None)
            p = new_image(st, json.dumps(new, separators=(",", ":")).encode(),
                          [*layers, (blob, size, GZIP_LAYER)])
            install(st, p, tags, [])
    return p.config_digest
