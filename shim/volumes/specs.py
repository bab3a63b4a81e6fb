"""``-v/--volume``, ``--mount`` and ``--tmpfs`` as Docker reads them, into mount dicts:

    {"type": "volume"|"bind"|"tmpfs", "source": volume name ("" for an anonymous volume
     until it is made), host path or "", "destination": absolute path, "rw": bool,
     "mode": Docker's Mode string, "propagation": str, "nocopy": bool,
     "options": extra mount options (tmpfs), "origin": "volume"|"mount"|"tmpfs"|"image",
     "spec": what the command line said}

Every bad spec is an OcishError (status 125) with Docker's wording, raised before anything is
made. Unlike Docker's ``-v``, a bind source that does not exist is refused rather than made
(podman's choice: a typo should not create a dir on the host).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ..errors import OcishError
from .store import check_name

PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_V_MODES = ("ro", "rw", "z", "Z", "nocopy", *PROPAGATIONS)


def _bad(text: str, why: str = "") -> OcishError:
    return OcishError(f"invalid volume specification: '{text}'" + (f": {why}" if why else ""),
                      status=125)


def _check_destination(kind: str, dst: str, text: str, flag: str = "volume") -> str:
    if not dst.startswith("/"):
        why = (f'invalid mount config for type "{kind}": invalid mount path: \'{dst}\' mount '
               "path must be absolute")
        raise _bad(text, why) if flag == "volume" else OcishError(why, status=125)
    dst = os.path.normpath(dst)
    if dst.startswith("//"):
        dst = dst[1:]
    if dst == "/":
        why = f'invalid mount config for type "{kind}": invalid specification: destination ' \
            "can't be '/'"
        raise _bad(text, why) if flag == "volume" else OcishError(why, status=125)
    return dst


def _check_bind_source(src: str) -> str:
    src = os.path.abspath(src)
    if not os.path.exists(src):
        raise OcishError('invalid mount config for type "bind": bind source path does not '
                         f"exist: {src}", status=125)
    return src


def _warn_selinux(modes: list[str]) -> None:
    if "z" in modes or "Z" in modes:
        sys.stderr.write("ocish: warning: the z and Z volume options relabel for SELinux, "
                         "which this host does not have: ignored\n")


def parse_volume(text: str) -> dict[str, Any]:
    """``-v [SOURCE:]DESTINATION[:MODES]``: a named volume, a bind (an absolute or ./ path),
    or with a destination alone an anonymous volume."""
    parts = text.split(":")
    if len(parts) > 3 or "" in parts:
        raise _bad(text)
    if len(parts) == 1:
        src, dst, mode = "", parts[0], ""
    elif len(parts) == 2 and parts[1] and (parts[1].startswith("/") or not
                                          set(parts[1].split(",")) <= set(_V_MODES)):
        src, dst, mode = parts[0], parts[1], ""
    elif len(parts) == 2:  # DESTINATION:MODES
        src, dst, mode = "", parts[0], parts[1]
    else:
        src, dst, mode = parts
    modes = mode.split(",") if mode else []
    for m in modes:
        if m not in _V_MODES:
            raise OcishError(f"invalid mode: {mode}", status=125)
    props = [m for m in modes if m in PROPAGATIONS]
    if len(props) > 1 or ("ro" in modes and "rw" in modes):
        raise OcishError(f"invalid mode: {mode}", status=125)
    bind = src.startswith(("/", "."))
    kind = "bind" if bind else "volume"
    dst = _check_destination(kind, dst, text)
    if bind:
        if "nocopy" in modes:
            raise OcishError(f"invalid mode: {mode}", status=125)
        src = _check_bind_source(src)
    elif src:
        check_name(src)
    _warn_selinux(modes)
    return {"type": kind, "source": src, "destination": dst, "rw": "ro" not in modes,
            "mode": mode or ("" if bind else "z"),
            "propagation": props[0] if props else ("rprivate" if bind else ""),
            "nocopy": "nocopy" in modes, "options": [], "origin": "volume", "spec": text}


_MOUNT_KEYS = {"type", "source", "src", "target", "destination", "dst", "readonly", "ro",
               "volume-nocopy", "tmpfs-size", "tmpfs-mode", "bind-propagation",
               "consistency", "volume-driver", "volume-opt", "volume-label"}


def _bool(key: str, value: str | None) -> bool:
    if value is None:
        return True
    if value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise OcishError(f'invalid value for {key}: {value}', status=125)


def parse_mount(text: str) -> dict[str, Any]:
    """``--mount type=bind|volume|tmpfs,source=,target=,readonly,...`` (Docker's keys)."""
    fields: dict[str, str | None] = {}
    for item in text.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key not in _MOUNT_KEYS:
            if not eq and key not in _MOUNT_KEYS:
                raise OcishError(f"invalid field '{item}' must be a key=value pair",
                                 status=125)
            raise OcishError(f"unexpected key '{key}' in '{item}'", status=125)
        fields[key] = value if eq else None
    kind = fields.get("type") or "volume"
    if kind not in ("bind", "volume", "tmpfs"):
        raise OcishError(f"invalid mount config: unknown mount type: {kind!r} (bind, volume "
                         "or tmpfs)", status=125)
    src = fields.get("source") or fields.get("src") or ""
    dst = fields.get("target") or fields.get("destination") or fields.get("dst") or ""
    if not dst:
        raise OcishError(f'invalid mount config for type "{kind}": field Target must not be '
                         "empty", status=125)
    dst = _check_destination(kind, dst, text, flag="mount")
    ro = _bool("readonly", fields["readonly"]) if "readonly" in fields else \
        _bool("ro", fields["ro"]) if "ro" in fields else False

    def only(*keys: str) -> None:
        for k in fields:
            if k.startswith(("tmpfs-", "bind-", "volume-")) and k not in keys:
                raise OcishError(f'invalid mount config for type "{kind}": field {k} not '
                                 f"allowed for type {kind}", status=125)

    mount = {"type": kind, "source": src, "destination": dst, "rw": not ro, "mode": "",
             "propagation": "", "nocopy": False, "options": [], "origin": "mount",
             "spec": text}
    if kind == "bind":
        only("bind-propagation")
        if not src:
            raise OcishError('invalid mount config for type "bind": field Source must not be '
                             "empty", status=125)
        prop = fields.get("bind-propagation") or "rprivate"
        if prop not in PROPAGATIONS:
            raise OcishError(f"invalid propagation mode: {prop}", status=125)
        mount.update(source=_check_bind_source(src), propagation=prop)
    elif kind == "volume":
        only("volume-nocopy")
        if src:
            check_name(src)
        mount["nocopy"] = _bool("volume-nocopy", fields["volume-nocopy"]) \
            if "volume-nocopy" in fields else False
    else:
        only("tmpfs-size", "tmpfs-mode")
        if src:
            raise OcishError('invalid mount config for type "tmpfs": field Source must be '
                             "empty", status=125)
        opts = ["nosuid", "nodev", "noexec"]
        if fields.get("tmpfs-size"):
            opts.append(f"size={_size(fields['tmpfs-size'] or '')}")
        if fields.get("tmpfs-mode"):
            mode = fields["tmpfs-mode"] or ""
            try:
                int(mode, 8)
            except ValueError:
                raise OcishError(f"invalid value for tmpfs-mode: {mode}", status=125) from None
            opts.append(f"mode={mode}")
        mount["options"] = opts
    return mount


def _size(text: str) -> int:
    """tmpfs-size: bytes, or with a unit (k, m, g: binary, as Docker's RAMInBytes)."""
    t = text.strip().lower().rstrip("b")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}.get(t[-1:], 1)
    num = t[:-1] if mult > 1 else t
    try:
        value = float(num)
    except ValueError:
        raise OcishError(f"invalid value for tmpfs-size: {text}", status=125) from None
    if value < 0:
        raise OcishError(f"invalid value for tmpfs-size: {text}", status=125)
    return int(value * mult)


def parse_tmpfs(text: str) -> dict[str, Any]:
    """``--tmpfs DESTINATION[:OPTIONS]`` (mount(8) options, e.g. ``size=64m,mode=1777``)."""
    dst, _, opts = text.partition(":")
    dst = _check_destination("tmpfs", dst, text, flag="tmpfs")
    extra = [o for o in opts.split(",") if o]
    return {"type": "tmpfs", "source": "", "destination": dst, "rw": "ro" not in extra,
            "mode": opts, "propagation": "", "nocopy": False,
            "options": ["nosuid", "nodev", "noexec", *extra], "origin": "tmpfs", "spec": text}


def parse_all(volumes: list[str], mounts: list[str], tmpfs: list[str],
              image_volumes: list[str]) -> list[dict[str, Any]]:
    """Every mount of a container, the image's VOLUMEs (anonymous volumes) where nothing on
    the command line takes their destination; duplicates refused as Docker does."""
    out = [parse_volume(v) for v in volumes] + [parse_mount(m) for m in mounts] + \
        [parse_tmpfs(t) for t in tmpfs]
    seen: set[str] = set()
    for m in out:
        if m["destination"] in seen:
            raise OcishError(f"Duplicate mount point: {m['destination']}", status=125)
        seen.add(m["destination"])
    for path in image_volumes:
        dst = os.path.normpath("/" + path.lstrip("/"))
        if dst != "/" and dst not in seen:
            seen.add(dst)
            out.append({"type": "volume", "source": "", "destination": dst, "rw": True,
                        "mode": "", "propagation": "", "nocopy": False, "options": [],
                        "origin": "image", "spec": path})
    return out
