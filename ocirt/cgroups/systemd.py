"""``--systemd-cgroup``: ``linux.cgroupsPath`` in systemd's ``slice:prefix:name`` form.

The container gets a transient scope unit ``<prefix>-<name>.scope`` in the slice, started
through systemd's D-Bus API (with busctl, systemd's own client) for the process that becomes
the container, with Delegate=yes so that the runtime may then write the resource files below
``<slice path>/<unit>`` itself, as it does with cgroupfs. ``delete`` stops the unit. On a host
where systemd does not run (no /run/systemd/system) this is an error, as with runc.
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


def unit_of(cgroups_path: str, container_id: str) -> tuple[str, str]:
    """(slice, unit) for a ``slice:prefix:name`` path (runc's default when empty:
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
    return slice_name or "system.slice", unit


def cgroup_path(cgroups_path: str, container_id: str) -> str:
    """The cgroup the unit gets: ``<slice path>/<unit>``."""
    slice_name, unit = unit_of(cgroups_path, container_id)
    return os.path.join(expand_slice(slice_name), unit)


_MANAGER = ["org.freedesktop.systemd1", "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager"]


def start_args(slice_name: str, unit: str, pid: int, container_id: str) -> list[str]:
    """busctl's arguments for StartTransientUnit of the container's scope."""
    return ["call", *_MANAGER, "StartTransientUnit", "ssa(sv)a(sa(sv))", unit, "replace", "5",
            "PIDs", "au", "1", str(pid), "Slice", "s", slice_name, "Delegate", "b", "true",
            "DefaultDependencies", "b", "false",
            "Description", "s", f"ocirt container {container_id}", "0"]


def _busctl(args: list[str]) -> None:
    import subprocess

    busctl = next((p for p in ("/usr/bin/busctl", "/bin/busctl") if os.path.exists(p)), None)
    if busctl is None:
        raise ConfigError("--systemd-cgroup needs busctl (systemd's D-Bus client)")
    result = subprocess.run([busctl, *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise ConfigError(f"systemd: {' '.join(result.stderr.split()) or 'busctl failed'}")


def start_scope(cgroups_path: str, container_id: str, pid: int) -> None:
    """Put ``pid`` into the container's new scope unit and wait until systemd moved it."""
    import time

    slice_name, unit = unit_of(cgroups_path, container_id)
    _busctl(start_args(slice_name, unit, pid, container_id))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/cgroup") as f:
            if f"/{unit}" in f.read():
                return
        time.sleep(0.005)
    raise ConfigError(f"systemd did not move the container into {unit}")


def stop_scope(cgroups_path: str, container_id: str) -> None:
    """Stop the unit (its processes are gone already); failures only mean it is gone."""
    _, unit = unit_of(cgroups_path, container_id)
    for method in (["StopUnit", "ss", unit, "replace"], ["ResetFailedUnit", "s", unit]):
        try:
            _busctl(["call", *_MANAGER, *method])
        except ConfigError:
            pass


def require_systemd() -> None:
    if not systemd_running():
        raise ConfigError("systemd cgroup driver requested (--systemd-cgroup), but systemd is "
                          "not running on this host")
