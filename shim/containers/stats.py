"""A running container's resource usage for ``ocish stats``, read from its cgroup (the
``linux.cgroupsPath`` of its config.json, which the runtime made) on cgroup v1 or v2, and
Docker's arithmetic on it (moby's CLI: calculateCPUPercentUnix, calculateMemUsageUnixNoCache).

cgroup v2 is read from the kernel's documented files (Documentation/admin-guide/cgroup-v2.rst):
cpu.stat usage_usec, memory.current/max/stat, io.stat rbytes/wbytes, pids.current.
"""

from __future__ import annotations

import os
from typing import Any

CGROUP_ROOT = "/sys/fs/cgroup"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _int(path: str) -> int:
    text = _read(path).strip()
    return int(text) if text.isdigit() else 0


def _keyed(path: str) -> dict[str, int]:
    out = {}
    for line in _read(path).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def host_memory() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def cgroups_path(bundle: str) -> str | None:
    """The container's cgroup path, from its config.json."""
    import json

    try:
        with open(os.path.join(bundle, "config.json")) as f:
            path = json.load(f)["linux"]["cgroupsPath"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if isinstance(path, str) and path.startswith("/") else None


def is_v2(root: str = CGROUP_ROOT) -> bool:
    """A unified hierarchy at the cgroup root (not the hybrid layout's /unified)."""
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


def sample_v1(root: str, path: str) -> dict[str, int]:
    """Usage of the cgroup *path* on a v1 hierarchy mounted per controller under *root*."""
    rel = path.lstrip("/")
    mem = os.path.join(root, "memory", rel)
    stat = _keyed(os.path.join(mem, "memory.stat"))
    usage = _int(os.path.join(mem, "memory.usage_in_bytes"))
    # Docker's CLI: usage minus the inactive page cache (total_inactive_file on v1)
    usage -= min(usage, stat.get("total_inactive_file", 0))
    limit = _int(os.path.join(mem, "memory.limit_in_bytes"))
    read = write = 0
    for line in _read(os.path.join(root, "blkio", rel,
                                   "blkio.throttle.io_service_bytes_recursive")).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "Read":
            read += int(parts[2])
        elif len(parts) == 3 and parts[1] == "Write":
            write += int(parts[2])
    return {"cpu_ns": _int(os.path.join(root, "cpuacct", rel, "cpuacct.usage")),
            "mem_usage": usage, "mem_limit": limit, "blk_read": read, "blk_write": write,
            "pids": _int(os.path.join(root, "pids", rel, "pids.current"))}


def sample_v2(root: str, path: str) -> dict[str, int]:
    """Usage of the cgroup *path* on the unified hierarchy mounted at *root*."""
    d = os.path.join(root, path.lstrip("/"))
    cpu = _keyed(os.path.join(d, "cpu.stat"))
    stat = _keyed(os.path.join(d, "memory.stat"))
    usage = _int(os.path.join(d, "memory.current"))
    usage -= min(usage, stat.get("inactive_file", 0))  # Docker's CLI, v2
    read = write = 0
    for line in _read(os.path.join(d, "io.stat")).splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes" and value.isdigit():
                read += int(value)
            elif key == "wbytes" and value.isdigit():
                write += int(value)
    return {"cpu_ns": cpu.get("usage_usec", 0) * 1000, "mem_usage": usage,
            "mem_limit": _int(os.path.join(d, "memory.max")),  # "max": 0, no limit
            "blk_read": read, "blk_write": write,
            "pids": _int(os.path.join(d, "pids.current"))}


def sample(path: str, pid: int) -> dict[str, int]:
    """The container's usage now: its cgroup's, its network namespace's, the host's CPU time."""
    out = sample_v2(CGROUP_ROOT, path) if is_v2() else sample_v1(CGROUP_ROOT, path)
    out["rx"], out["tx"] = net_bytes(pid) if pid > 0 else (0, 0)
    out["system_ns"] = system_ns()
    return out


def net_bytes(pid: int) -> tuple[int, int]:
    """Bytes received and sent on the interfaces of the process's network namespace but lo
    (the host's network: 0, as Docker shows for --network host)."""
    try:
        if os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            return 0, 0
    except OSError:
        return 0, 0
    rx = tx = 0
    for line in _read(f"/proc/{pid}/net/dev").splitlines()[2:]:
        name, _, fields = line.partition(":")
        values = fields.split()
        if name.strip() != "lo" and len(values) >= 9:
            rx, tx = rx + int(values[0]), tx + int(values[8])
    return rx, tx


def system_ns() -> int:
    """The host's total CPU time (/proc/stat's cpu line), in ns."""
    line = _read("/proc/stat").splitlines()[0]
    ticks = sum(int(v) for v in line.split()[1:8])
    return ticks * 10**9 // os.sysconf("SC_CLK_TCK")


def percentages(prev: dict[str, int] | None, cur: dict[str, int]) -> dict[str, Any]:
    """CPU % (over the two samples, scaled to the online CPUs as Docker's) and memory %,
    the limit being the host's memory when the cgroup has none."""
    cpu = 0.0
    if prev is not None:
        dc, ds = cur["cpu_ns"] - prev["cpu_ns"], cur["system_ns"] - prev["system_ns"]
        if dc > 0 and ds > 0:
            cpu = dc / ds * (os.cpu_count() or 1) * 100
    total = host_memory()
    limit = cur["mem_limit"]
    limit = total if not limit or (total and limit > total) else limit
    return {"cpu": cpu, "mem_limit": limit,
            "mem": cur["mem_usage"] / limit * 100 if limit else 0.0}
