"""linux.resources written to cgroup files, for cgroup v1 controllers and for cgroup v2.

Each setting becomes (hierarchy, file, value, field); a file this host lacks is an error that
names the config field (``linux.resources.blockIO.weight: blkio.weight is not available``), as
runc fails on it. On v2 the v1 values are converted as runc and crun convert them.
"""

from __future__ import annotations

import errno
import os

from ..errors import ConfigError, SysError
from . import detect

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

#: Device rules every container gets after its own (runc's defaults): mknod of any device, and
#: the standard nodes and ptys.
DEFAULT_DEVICE_RULES: list[dict[str, Any]] = [
    {"allow": True, "type": "c", "access": "m"}, {"allow": True, "type": "b", "access": "m"},
    *({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
      for major, minor in ((1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9), (5, 1), (136, None),
                           (5, 2))),
]

MAX = (1 << 63) - 1


def default_device_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The defaults that come after the config's own rules, less those for a device the
    config names itself: the config's rules apply in their order (a denied /dev/urandom stays
    denied), and a plain "deny all" still leaves the standard devices usable."""
    named = {(r.get("type"), r.get("major"), r.get("minor")) for r in rules}
    return [d for d in DEFAULT_DEVICE_RULES
            if (d["type"], d.get("major"), d.get("minor")) not in named]


class Write:
    __slots__ = ("key", "file", "value", "field")

    def __init__(self, key: str, file: str, value: str, field: str) -> None:
        self.key = key          # hierarchy: a v1 controller name, or detect.UNIFIED
        self.file = file
        self.value = value
        self.field = field      # the config field, for error messages


def device_access(rule: dict[str, Any]) -> str:
    """A rule's access letters as the kernel takes them: r, w and m, in that order; others
    are dropped, as runc drops them ("rwa" is "rw"). None of them is a config error."""
    given = rule.get("access") or "rwm"
    access = "".join(c for c in "rwm" if c in given)
    if not access:
        raise ConfigError(f"linux.resources.devices: access {given!r} has none of r, w, m")
    return access


def _device_rule(rule: dict[str, Any]) -> str:
    kind = rule.get("type") or "a"
    major = rule.get("major")
    minor = rule.get("minor")
    access = device_access(rule)
    if kind == "a":
        return f"a *:* {access}"
    return (f"{kind} {'*' if major is None or major < 0 else major}:"
            f"{'*' if minor is None or minor < 0 else minor} {access}")


def v1_writes(r: dict[str, Any], current_limit: int | None = None,
              swap_accounting: bool = False) -> list[Write]:
    """The v1 writes; ``current_limit`` is the cgroup's memory.limit_in_bytes now (unknown:
    taken as the new limit, so a swap limit above it is written first); ``swap_accounting``:
    the cgroup has memory.memsw files."""
    out: list[Write] = []

    def add(ctrl: str, file: str, value: object, field: str) -> None:
        out.append(Write(ctrl, file, str(value), f"linux.resources.{field}"))

    mem = r.get("memory") or {}
    # memory+swap must never be below the memory limit while both change: as runc, write
    # memsw first only when the current limit is already below it (a new cgroup's is unlimited).
    limit, swap = mem.get("limit"), mem.get("swap")
    if limit == -1 and swap is None and swap_accounting:
        swap = -1  # an unlimited memory limit lifts an earlier swap limit too (as runc)
    if swap is not None and limit is not None and (
            swap == -1 or (limit if current_limit is None else current_limit) < swap):
        add("memory", "memory.memsw.limit_in_bytes", swap, "memory.swap")
        add("memory", "memory.limit_in_bytes", limit, "memory.limit")
    else:
        if limit is not None:
            add("memory", "memory.limit_in_bytes", limit, "memory.limit")
        if swap is not None:
            add("memory", "memory.memsw.limit_in_bytes", swap, "memory.swap")
    for key, file in (("reservation", "memory.soft_limit_in_bytes"),
                      ("kernel", "memory.kmem.limit_in_bytes"),
                      ("kernelTCP", "memory.kmem.tcp.limit_in_bytes"),
                      ("swappiness", "memory.swappiness")):
        if mem.get(key) is not None:
            add("memory", file, mem[key], f"memory.{key}")
    if mem.get("disableOOMKiller"):
        add("memory", "memory.oom_control", 1, "memory.disableOOMKiller")
    cpu = r.get("cpu") or {}
    # as runc, 0 leaves these unchanged (dockerd's update sends period and quota 0 when unset)
    zero_is_unset = {"shares", "period", "quota", "realtimePeriod", "realtimeRuntime"}
    for key, ctrl, file in (("shares", "cpu", "cpu.shares"), ("period", "cpu", "cpu.cfs_period_us"),
                            ("quota", "cpu", "cpu.cfs_quota_us"), ("burst", "cpu", "cpu.cfs_burst_us"),
                            ("realtimePeriod", "cpu", "cpu.rt_period_us"),
                            ("realtimeRuntime", "cpu", "cpu.rt_runtime_us"),
                            ("idle", "cpu", "cpu.idle"),
                            ("cpus", "cpuset", "cpuset.cpus"), ("mems", "cpuset", "cpuset.mems")):
        if cpu.get(key) not in (None, "") and not (cpu[key] == 0 and key in zero_is_unset):
            add(ctrl, file, cpu[key], f"cpu.{key}")
    pids = r.get("pids") or {}
    if pids.get("limit") is not None:
        add("pids", "pids.max", "max" if pids["limit"] <= 0 else pids["limit"], "pids.limit")
    bio = r.get("blockIO") or {}
    if bio.get("weight"):
        add("blkio", "blkio.weight", bio["weight"], "blockIO.weight")
    if bio.get("leafWeight"):
        add("blkio", "blkio.leaf_weight", bio["leafWeight"], "blockIO.leafWeight")
    for dev in bio.get("weightDevice") or []:
        if dev.get("weight") is not None:
            add("blkio", "blkio.weight_device", f"{dev['major']}:{dev['minor']} {dev['weight']}",
                "blockIO.weightDevice")
        if dev.get("leafWeight") is not None:
            add("blkio", "blkio.leaf_weight_device",
                f"{dev['major']}:{dev['minor']} {dev['leafWeight']}", "blockIO.weightDevice")
    for key, file in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                      ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                      ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                      ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for dev in bio.get(key) or []:
            add("blkio", file, f"{dev['major']}:{dev['minor']} {dev['rate']}", f"blockIO.{key}")
    for page in r.get("hugepageLimits") or []:
        add("hugetlb", f"hugetlb.{page['pageSize']}.limit_in_bytes", page["limit"],
            "hugepageLimits")
    net = r.get("network") or {}
    if net.get("classID") is not None:
        add("net_cls", "net_cls.classid", net["classID"], "network.classID")
    for prio in net.get("priorities") or []:
        add("net_prio", "net_prio.ifpriomap", f"{prio['name']} {prio['priority']}",
            "network.priorities")
    for name, limits in (r.get("rdma") or {}).items():
        add("rdma", "rdma.max", _rdma(name, limits), "rdma")
    if r.get("devices") is not None:
        for rule in [*r["devices"], *default_device_rules(r["devices"])]:
            file = "devices.allow" if rule.get("allow") else "devices.deny"
            add("devices", file, _device_rule(rule), "devices")
    return out


def _rdma(name: str, limits: dict[str, Any]) -> str:
    parts = [name]
    for key, file_key in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")):
        if limits.get(key) is not None:
            parts.append(f"{file_key}={limits[key]}")
    return " ".join(parts)


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares (2-262144) to v2 cpu.weight (1-10000)."""
    return 0 if shares == 0 else 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """cgroup v1 blkio.weight (10-1000) to v2 io.weight (1-10000)."""
    return 0 if weight == 0 else 1 + ((weight - 10) * 9999) // 990


def v2_writes(r: dict[str, Any]) -> list[Write]:
    out: list[Write] = []
    u = detect.UNIFIED

    def add(file: str, value: object, field: str) -> None:
        out.append(Write(u, file, str(value), f"linux.resources.{field}"))

    def v2max(value: int) -> str:
        return "max" if value < 0 else str(value)

    mem = r.get("memory") or {}
    if mem.get("limit") is not None:
        add("memory.max", v2max(mem["limit"]), "memory.limit")
    if mem.get("reservation") is not None:
        add("memory.low", v2max(mem["reservation"]), "memory.reservation")
    if mem.get("swap") is not None:
        swap = mem["swap"]
        if swap < 0:
            add("memory.swap.max", "max", "memory.swap")
        elif mem.get("limit") is None or mem["limit"] < 0:
            raise ConfigError("linux.resources.memory.swap: on cgroup v2 a swap limit needs "
                              "a memory limit")
        else:
            if swap < mem["limit"]:
                raise ConfigError("linux.resources.memory.swap: must not be below memory.limit")
            add("memory.swap.max", swap - mem["limit"], "memory.swap")
    if mem.get("disableOOMKiller"):
        raise ConfigError("linux.resources.memory.disableOOMKiller: not supported on cgroup v2")
    cpu = r.get("cpu") or {}
    if cpu.get("shares"):
        add("cpu.weight", shares_to_weight(cpu["shares"]), "cpu.shares")
    if cpu.get("quota") is not None or cpu.get("period") is not None:
        quota = cpu.get("quota")
        period = cpu.get("period") or 100000
        add("cpu.max", f"{'max' if quota is None or quota <= 0 else quota} {period}",
            "cpu.quota")
    if cpu.get("burst") is not None:
        add("cpu.max.burst", cpu["burst"], "cpu.burst")
    if cpu.get("idle") is not None:
        add("cpu.idle", cpu["idle"], "cpu.idle")
    if cpu.get("realtimeRuntime") or cpu.get("realtimePeriod"):
        raise ConfigError("linux.resources.cpu.realtime*: not supported on cgroup v2")
    for key, file in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key):
            add(file, cpu[key], f"cpu.{key}")
    pids = r.get("pids") or {}
    if pids.get("limit") is not None:
        add("pids.max", "max" if pids["limit"] <= 0 else pids["limit"], "pids.limit")
    bio = r.get("blockIO") or {}
    if bio.get("weight"):
        add("io.weight", f"default {blkio_to_io_weight(bio['weight'])}", "blockIO.weight")
    for dev in bio.get("weightDevice") or []:
        if dev.get("weight") is not None:
            add("io.weight", f"{dev['major']}:{dev['minor']} "
                f"{blkio_to_io_weight(dev['weight'])}", "blockIO.weightDevice")
    for key, name in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                      ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for dev in bio.get(key) or []:
            add("io.max", f"{dev['major']}:{dev['minor']} {name}={dev['rate']}",
                f"blockIO.{key}")
    for page in r.get("hugepageLimits") or []:
        add(f"hugetlb.{page['pageSize']}.max", page["limit"], "hugepageLimits")
    for name, limits in (r.get("rdma") or {}).items():
        add("rdma.max", _rdma(name, limits), "rdma")
    for file, value in (r.get("unified") or {}).items():
        if "/" in file or file.startswith("."):
            raise ConfigError(f"linux.resources.unified: invalid file name {file!r}")
        add(file, value, f"unified.{file}")
    return out


def writes_for(paths: dict[str, str], r: dict[str, Any]) -> list[Write]:
    """The writes for this host: v1 controllers where mounted, v2 otherwise (pure v2 host)."""
    v1_keys = {c for key in paths if key != detect.UNIFIED for c in key.split(",")}
    if v1_keys:
        memory = controller_path(paths, "memory")
        writes = v1_writes(r, _current_memory_limit(paths), memory is not None and
                           os.path.exists(os.path.join(memory, "memory.memsw.limit_in_bytes")))
        if r.get("unified"):
            if detect.UNIFIED not in paths:
                raise ConfigError("linux.resources.unified: needs cgroup v2")
            writes += [w for w in v2_writes({"unified": r["unified"]})]
        # hugetlb lives only in the unified hierarchy on some hybrid hosts
        if "hugetlb" not in v1_keys and r.get("hugepageLimits") and detect.UNIFIED in paths:
            writes = [w for w in writes if w.key != "hugetlb"]
            writes += v2_writes({"hugepageLimits": r["hugepageLimits"]})
        return writes
    return v2_writes(r)


def _current_memory_limit(paths: dict[str, str]) -> int | None:
    """The v1 memory cgroup's limit now, None when there is none to read."""
    directory = controller_path(paths, "memory")
    if directory is None:
        return None
    try:
        with open(os.path.join(directory, "memory.limit_in_bytes")) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def controller_path(paths: dict[str, str], key: str) -> str | None:
    if key in paths:
        return paths[key]
    for hierarchy, path in paths.items():
        if key in hierarchy.split(","):
            return path
    return None


def apply(paths: dict[str, str], r: dict[str, Any], v2_mount: str | None = None) -> None:
    """Write every resource setting into the container's cgroups. ``v2_mount``: where the
    cgroup2 hierarchy is mounted (found in mountinfo when not given)."""
    if not r:
        return
    # r was checked when parsed (ocirt.specraw.resources, for create and update alike): every
    # member has its type and range, so building the writes cannot fail on a wrong value
    writes = writes_for(paths, r)
    v1 = any(key != detect.UNIFIED for key in paths)
    if r.get("devices") is not None and not v1 and detect.UNIFIED in paths:
        from . import devices_bpf  # cgroup v2 has no devices controller: an eBPF program

        devices_bpf.apply(paths[detect.UNIFIED],
                          [{**rule, "access": device_access(rule)}
                           for rule in [*r["devices"], *default_device_rules(r["devices"])]])
    if detect.UNIFIED in paths and any(w.key == detect.UNIFIED for w in writes):
        mount = v2_mount or _mount_of(paths[detect.UNIFIED])
        if mount:
            enable_controllers(mount, paths[detect.UNIFIED],
                               {w.file.split(".", 1)[0] for w in writes
                                if w.key == detect.UNIFIED})
    deferred: Write | None = None
    for i, w in enumerate(writes):
        try:
            _write(paths, w)
        except SysError as exc:
            # A shorter period can be refused (EINVAL) while the old quota, over the new
            # period, exceeds the parent's ratio: as runc, try it again after the new quota.
            if (w.file == "cpu.cfs_period_us" and exc.errno == errno.EINVAL
                    and any(later.file == "cpu.cfs_quota_us" for later in writes[i + 1:])):
                deferred = w
                continue
            raise
        if w.file == "cpu.cfs_quota_us" and deferred is not None:
            _write(paths, deferred)
            deferred = None


def _write(paths: dict[str, str], w: Write) -> None:
    """One write into the container's cgroup; errors in the config's words."""
    directory = controller_path(paths, w.key)
    if directory is None:
        raise ConfigError(f"{w.field}: the {w.key} cgroup controller is not available on "
                          "this host")
    target = os.path.join(directory, w.file)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)  # never create: cgroupfs has it
        try:
            os.write(fd, w.value.encode())
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise ConfigError(f"{w.field}: {w.file} is not available on this host") from None
    except ValueError:  # a NUL byte in a file name taken from the JSON
        raise ConfigError(f"{w.field}: invalid file name {w.file!r}") from None
    except OSError as exc:
        if exc.errno == errno.EBUSY and w.file == "memory.limit_in_bytes":
            raise SysError(f"{w.field}: set {w.file} to {w.value} (memory usage above it)",
                           exc.errno) from None
        raise SysError(f"{w.field}: write {w.value!r} to {target}", exc.errno or 0) \
            from None


def enable_controllers(mount: str, path: str, wanted: set[str]) -> None:
    """Enable ``wanted`` controllers in cgroup.subtree_control of every ancestor of ``path``
    from the cgroup2 ``mount`` down, so that the container's cgroup gets their files."""
    rel = os.path.relpath(path, mount)
    parts = [] if rel == "." else rel.split("/")
    current = mount
    for part in parts:
        try:
            with open(os.path.join(current, "cgroup.controllers")) as f:
                available = set(f.read().split())
        except OSError:
            return
        todo = wanted & available
        if todo:
            try:
                with open(os.path.join(current, "cgroup.subtree_control"), "w") as f:
                    f.write(" ".join(f"+{c}" for c in sorted(todo)))
            except OSError:
                pass
        current = os.path.join(current, part)


def _mount_of(path: str) -> str | None:
    for h in detect.hierarchies():
        if h.key == detect.UNIFIED and (path + "/").startswith(h.mountpoint.rstrip("/") + "/"):
            return h.mountpoint
    return None
