"""Which cgroup hierarchies the host has mounted: v1, hybrid (v1 plus a cgroup2 mount), or v2."""

from __future__ import annotations

UNIFIED = ""  # the key of the cgroup2 hierarchy, as in /proc/<pid>/cgroup's "0::" line


class Hierarchy:
    """One mounted hierarchy. (A plain class: dataclasses cost 12 ms to import on the hot path.)"""

    __slots__ = ("key", "controllers", "mountpoint", "root")

    def __init__(self, key: str, controllers: tuple[str, ...], mountpoint: str, root: str) -> None:
        self.key = key                  # "memory", "cpu,cpuacct", "name=systemd"; UNIFIED for v2
        self.controllers = controllers
        self.mountpoint = mountpoint
        self.root = root                # the cgroup at the mount's root ("/" on the host)


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


def hierarchies(mountinfo: str = "/proc/self/mountinfo") -> list[Hierarchy]:
    """Every mounted cgroup hierarchy, one entry each (the first mount of a hierarchy wins)."""
    found: dict[str, Hierarchy] = {}
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
                continue
            root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
            controllers: tuple[str, ...] = ()
            if rfields[0] == "cgroup2":
                key = UNIFIED
            else:
                opts = rfields[2].split(",")
                names = [o for o in opts if o.startswith("name=")]
                controllers = tuple(o for o in opts if o in _V1_CONTROLLERS)
                key = ",".join(controllers + tuple(names))
            if key not in found:
                found[key] = Hierarchy(key, controllers, mountpoint, root)
    return list(found.values())


def layout(hs: list[Hierarchy]) -> str:
    """'v2', 'v1', 'hybrid' (v1 controllers and a cgroup2 mount), or 'none'."""
    v2 = any(h.key == UNIFIED for h in hs)
    v1 = any(h.key != UNIFIED for h in hs)
    return "hybrid" if v1 and v2 else "v2" if v2 else "v1" if v1 else "none"


def own_cgroups(pid: int | str = "self") -> dict[str, str]:
    """The process's cgroup per hierarchy key, from /proc/<pid>/cgroup."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, key, path = line.rstrip("\n").split(":", 2)
            out[key] = path
    return out


_V1_CONTROLLERS = frozenset((
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "net_cls",
    "net_prio", "perf_event", "hugetlb", "rdma", "misc"))
