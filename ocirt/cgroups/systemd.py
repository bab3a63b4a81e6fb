"""``--systemd-cgroup``: ``linux.cgroupsPath`` in systemd's ``slice:prefix:name`` form.

The path is laid out where systemd would put the unit: ``<slice path>/<prefix>-<name>.scope``.
On a host where systemd is not PID 1's manager (no /run/systemd/system) this is an error, as
with runc; the cgroups are then managed through the cgroup filesystem below that path.
"""

from __future__ import annotations

import os

from ..errors import ConfigError


def systemd_running() -> bool:
    return os.path.isdir("/run/systemd/system")


def expand_slice(slice_name: str) -> str:
    """``a-b-c.slice`` -> ``/a.slice/a-b.slice/a-b-c.slice``; ``-.slice`` is the root."""
    if slice_name in ("", "-.slice"):
        return "/"
    if not slice_name.endswith(".slice") or "/" in slice_name:
        raise ConfigError(f"invalid systemd slice name {slice_name!r}")
    stem = slice_name[: -len(".slice")]
    if not stem or stem.startswith("-") or stem.endswith("-") or "--" in stem:
        raise ConfigError(f"invalid systemd slice name {slice_name!r}")
    parts = stem.split("-")
    return "/" + "/".join("-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def cgroup_path(cgroups_path: str, container_id: str) -> str:
    """The cgroup a ``slice:prefix:name`` path stands for (runc's default when empty:
    ``system.slice:ocirt:<id>``)."""
    if not cgroups_path:
        cgroups_path = f"system.slice:ocirt:{container_id}"
    fields = cgroups_path.split(":")
    if len(fields) != 3:
        raise ConfigError(f"expected cgroupsPath to be of format \"slice:prefix:name\" for "
                          f"systemd cgroups, got {cgroups_path!r} instead")
    slice_name, prefix, name = fields
    unit = name if name.endswith(".slice") else f"{prefix}-{name}.scope" if prefix else \
        f"{name}.scope"
    return os.path.join(expand_slice(slice_name or "system.slice"), unit)


def require_systemd() -> None:
    if not systemd_running():
        raise ConfigError("systemd cgroup driver requested (--systemd-cgroup), but systemd is "
                          "not running on this host")
