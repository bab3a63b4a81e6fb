"""A container's mounts: claimed at create (the volumes made, under the volumes lock, so that
no prune takes them before the container's row names them), turned into config.json mounts at
each start (with the first use's copy-up from the image), shown by inspect, and its anonymous
volumes removed with ``rm -v`` and ``--rm``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..storage.root import Storage
from . import store
from .specs import parse_all


@contextmanager
def claimed(st: Storage, options: dict[str, Any], image_config: dict[str, Any]
            ) -> Iterator[list[str]]:
    """Parse the container's mounts into ``options["mounts"]`` and make their volumes; yields
    the names this made. Insert the container's row inside: if that fails, the volumes made
    go again."""
    mounts = parse_all(options.get("volumes") or [], options.get("mount") or [],
                       options.get("tmpfs") or [], list(image_config.get("Volumes") or {}))
    made: list[str] = []
    with store.lock(st):
        try:
            for m in mounts:
                if m["type"] != "volume":
                    continue
                vol, new = store.create(st, m["source"] or None)
                m["source"] = vol.name
                if new:
                    made.append(vol.name)
            options["mounts"] = mounts
            yield made
        except BaseException:
            drop(st, made, locked=True)
            raise


def drop(st: Storage, names: list[str], locked: bool = False) -> None:
    """Remove the volumes *names* that no container uses (best effort)."""
    if not names:
        return
    if not locked:
        with store.lock(st):
            drop(st, names, locked=True)
        return
    for name in names:
        try:
            store.remove(st, name)
        except Exception:  # noqa: BLE001 - in use again, or gone: left as it is
            pass


def remove_anonymous(st: Storage, options: dict[str, Any]) -> None:
    """``rm -v`` and ``--rm``: the container's anonymous volumes go (named ones stay)."""
    names = [m["source"] for m in options.get("mounts") or []
             if m["type"] == "volume" and _anonymous(st, m["source"])]
    drop(st, names)


def _anonymous(st: Storage, name: str) -> bool:
    vol = store.get(st, name)
    return vol is not None and vol.anonymous


def oci_mounts(st: Storage, mounts: list[dict[str, Any]], rootfs: str) -> list[dict[str, Any]]:
    """config.json mounts for the container's mounts (parents before children); a volume's
    first use copies the image's content at its destination into it (unless nocopy)."""
    out = []
    for m in sorted(mounts, key=lambda m: m["destination"].count("/")):
        ro = [] if m["rw"] else ["ro"]
        if m["type"] == "tmpfs":
            out.append({"destination": m["destination"], "type": "tmpfs", "source": "tmpfs",
                        "options": m["options"] + ro})
            continue
        src, prop = m["source"], m["propagation"] or "rprivate"
        if m["type"] == "volume":
            vol = store.find(st, m["source"])
            src = vol.mountpoint(st)
            if vol.options.get("type"):
                out.append(_driver_mount(vol.options, m["destination"], ro))
                continue
            if vol.needs_copy:
                with store.lock(st):
                    if not m["nocopy"] and not os.listdir(src):
                        from .inroot import copy_up

                        copy_up(rootfs, m["destination"], src)
                    store.copied(st, vol.name)
        out.append({"destination": m["destination"], "type": "bind", "source": src,
                    "options": ["rbind", prop, *ro]})
    return out


def _driver_mount(opts: dict[str, str], dst: str, ro: list[str]) -> dict[str, Any]:
    """A ``--opt type=...`` volume, mounted by the runtime in the container's namespace."""
    o = [x for x in opts.get("o", "").split(",") if x]
    device = store.bind_device(opts)
    if device is not None:
        return {"destination": dst, "type": "bind", "source": device,
                "options": ["rbind", "rprivate", *[x for x in o if x not in ("bind", "rbind")],
                            *ro]}
    return {"destination": dst, "type": opts["type"], "source": opts.get("device", "tmpfs"),
            "options": ["nosuid", "nodev", *o, *ro]}


def inspect_mounts(st: Storage, options: dict[str, Any]) -> list[dict[str, Any]]:
    """Docker's inspect "Mounts" (--tmpfs ones are only in HostConfig.Tmpfs, as Docker's)."""
    out = []
    for m in options.get("mounts") or []:
        if m["origin"] == "tmpfs":
            continue
        entry: dict[str, Any] = {"Type": m["type"]}
        if m["type"] == "volume":
            entry.update(Name=m["source"], Source=os.path.join(store.volumes_dir(st),
                                                               m["source"], "_data"))
        else:
            entry["Source"] = m["source"]
        entry["Destination"] = m["destination"]
        if m["type"] == "volume":
            entry["Driver"] = "local"
        entry.update(Mode=m["mode"], RW=m["rw"], Propagation=m["propagation"])
        out.append(entry)
    return out


def host_config(options: dict[str, Any]) -> dict[str, Any]:
    """HostConfig's Binds, Mounts and Tmpfs, as the command line gave them."""
    mounts = options.get("mounts") or []
    binds = [m["spec"] for m in mounts if m["origin"] == "volume" and
             (m["type"] == "bind" or ":" in m["spec"])]
    hc_mounts = [{"Type": m["type"], "Source": m["source"] if m["type"] != "tmpfs" else "",
                  "Target": m["destination"], "ReadOnly": not m["rw"]}
                 for m in mounts if m["origin"] == "mount"]
    tmpfs = {m["destination"]: m["mode"] for m in mounts if m["origin"] == "tmpfs"}
    return {"Binds": binds or None, "Mounts": hc_mounts or None, "Tmpfs": tmpfs or None}


def config_volumes(options: dict[str, Any]) -> dict[str, Any] | None:
    """Config.Volumes: the anonymous volumes' destinations (the image's and ``-v /dst``)."""
    vols: dict[str, Any] = {m["destination"]: {} for m in options.get("mounts") or []
            if m["origin"] == "image" or (m["origin"] == "volume" and ":" not in m["spec"])}
    return vols or None
