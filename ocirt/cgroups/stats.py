"""Resource usage read from the container's cgroups, in the shape of runc's ``events`` data."""

from __future__ import annotations

import os

from . import detect
from .resources import controller_path

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK")


def _read(directory: str | None, name: str) -> str | None:
    if directory is None:
        return None
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read()
    except OSError:
        return None


def _int(directory: str | None, name: str) -> int:
    text = _read(directory, name)
    if text is None or not text.strip() or text.strip() == "max":
        return 0
    try:
        return int(text.split()[0])
    except ValueError:
        return 0


def _keyed(directory: str | None, name: str) -> dict[str, int]:
    out = {}
    for line in (_read(directory, name) or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def stats(paths: dict[str, str]) -> dict[str, Any]:
    v1 = any(key != detect.UNIFIED for key in paths)
    return _stats_v1(paths) if v1 else _stats_v2(paths[detect.UNIFIED])


def _stats_v1(paths: dict[str, str]) -> dict[str, Any]:
    cpuacct = controller_path(paths, "cpuacct")
    cpu = controller_path(paths, "cpu")
    memory = controller_path(paths, "memory")
    pids = controller_path(paths, "pids")
    blkio = controller_path(paths, "blkio")
    acct = _keyed(cpuacct, "cpuacct.stat")
    throttle = _keyed(cpu, "cpu.stat")
    percpu = [int(v) for v in (_read(cpuacct, "cpuacct.usage_percpu") or "").split()]
    raw = _keyed(memory, "memory.stat")

    def mem(prefix: str) -> dict[str, int]:
        return {"limit": _int(memory, f"{prefix}limit_in_bytes"),
                "usage": _int(memory, f"{prefix}usage_in_bytes"),
                "max": _int(memory, f"{prefix}max_usage_in_bytes"),
                "failcnt": _int(memory, f"{prefix}failcnt")}

    return {
        "cpu": {"usage": {"total": _int(cpuacct, "cpuacct.usage"), "percpu": percpu,
                          "kernel": acct.get("system", 0) * 10**9 // _TICKS,
                          "user": acct.get("user", 0) * 10**9 // _TICKS},
                "throttling": {"periods": throttle.get("nr_periods", 0),
                               "throttled_periods": throttle.get("nr_throttled", 0),
                               "throttled_time": throttle.get("throttled_time", 0)}},
        "memory": {"cache": raw.get("total_cache", raw.get("cache", 0)),
                   "usage": mem("memory."), "swap": mem("memory.memsw."),
                   "kernel": mem("memory.kmem."), "kernelTCP": mem("memory.kmem.tcp."),
                   "raw": raw},
        "pids": {"current": _int(pids, "pids.current"), "limit": _int(pids, "pids.max")},
        "blkio": {"ioServiceBytesRecursive": _blkio(blkio, "blkio.throttle.io_service_bytes"),
                  "ioServicedRecursive": _blkio(blkio, "blkio.throttle.io_serviced")},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": None,
    }


def _blkio(directory: str | None, name: str) -> list[dict[str, Any]]:
    out = []
    for line in (_read(directory, name) or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, minor = parts[0].split(":")
            out.append({"major": int(major), "minor": int(minor), "op": parts[1],
                        "value": int(parts[2])})
    return out


def _stats_v2(path: str) -> dict[str, Any]:
    cpu = _keyed(path, "cpu.stat")
    mem = _keyed(path, "memory.stat")
    return {
        "cpu": {"usage": {"total": cpu.get("usage_usec", 0) * 1000,
                          "kernel": cpu.get("system_usec", 0) * 1000,
                          "user": cpu.get("user_usec", 0) * 1000, "percpu": []},
                "throttling": {"periods": cpu.get("nr_periods", 0),
                               "throttled_periods": cpu.get("nr_throttled", 0),
                               "throttled_time": cpu.get("throttled_usec", 0) * 1000}},
        "memory": {"cache": mem.get("file", 0),
                   "usage": {"limit": _int(path, "memory.max"), "usage": _int(path, "memory.current"),
                             "max": _int(path, "memory.peak"),
                             "failcnt": _keyed(path, "memory.events").get("max", 0)},
                   "swap": {"limit": _int(path, "memory.swap.max"),
                            "usage": _int(path, "memory.swap.current"), "max": 0, "failcnt": 0},
                   "raw": mem},
        "pids": {"current": _int(path, "pids.current"), "limit": _int(path, "pids.max")},
        "blkio": {}, "hugetlb": {}, "intel_rdt": {}, "network_interfaces": None,
    }


def oom_kills(paths: dict[str, str]) -> int:
    """How many times the OOM killer has killed in the container's memory cgroup."""
    memory = controller_path(paths, "memory")
    if memory is not None and memory != paths.get(detect.UNIFIED):
        return _keyed(memory, "memory.oom_control").get("oom_kill", 0)
    return _keyed(paths.get(detect.UNIFIED), "memory.events").get("oom_kill", 0)
