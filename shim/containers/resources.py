"""Resource options of ``run``/``create``/``update`` with Docker's syntax and checks:
memory and CPU limits (the runtime spec's ``linux.resources``), ``--ulimit``, ``--sysctl``,
``--device`` and ``--shm-size``. Everything is checked before anything is made; a bad value is
one line and exit status 125."""

from __future__ import annotations

import os
from typing import Any

from ..errors import OcishError

MIN_MEMORY = 6 * 1024 * 1024  # Docker's linuxMinMemory
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
           "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", "as")
# Docker's ValidateSysctl: namespaced sysctls only
_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
            "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
_SYSCTL_PREFIXES = ("fs.mqueue.", "net.")


def _fail(message: str) -> OcishError:
    return OcishError(message, status=125)


def size(text: str, flag: str) -> int:
    """Docker's RAMInBytes: ``512m``, ``1g``, ``1.5GB``, ``100`` (bytes); binary units."""
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?", text.strip().lower())
    if m is None:
        raise _fail(f"invalid argument {text!r} for \"{flag}\" flag: invalid size: "
                    f"{text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def swap_accounted() -> bool:
    """Whether the host limits swap per cgroup (v1 needs swapaccount; v2 always does): Docker
    gives the default swap limit only then, as a runtime would fail to write it otherwise."""
    return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") or \
        os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def _swap(text: str) -> int:
    return -1 if text.strip() == "-1" else size(text, "--memory-swap")


def host_cpus() -> int:
    return os.cpu_count() or 1


def _online(path: str) -> set[int]:
    try:
        with open(path) as f:
            return cpu_list(f.read().strip(), "")
    except OSError:
        return set()


def cpu_list(text: str, flag: str) -> set[int]:
    """``0-2,4`` -> {0, 1, 2, 4}."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            if not part:
                continue
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise _fail(f"invalid argument {text!r} for \"{flag}\" flag: invalid format") from None
    if not out and flag:
        raise _fail(f"invalid argument {text!r} for \"{flag}\" flag: invalid format")
    return out


def resources(opts: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """``linux.resources`` (without devices) for the flags in *opts* (strings as given on the
    command line; None when absent), checked as Docker checks them against each other and
    against what *current* (the container's recorded resources, for ``update``) already
    holds."""
    res: dict[str, Any] = {k: dict(v) for k, v in (current or {}).items()}
    mem = res.setdefault("memory", {})
    cpu = res.setdefault("cpu", {})
    if opts.get("memory") is not None:
        mem["limit"] = size(opts["memory"], "--memory")
        if 0 < mem["limit"] < MIN_MEMORY:
            raise _fail("Minimum memory limit allowed is 6MB")
        if opts.get("memory_swap") is None and current is None and swap_accounted():
            mem["swap"] = mem["limit"] * 2  # Docker: as much swap as memory
    if opts.get("memory_swap") is not None:
        mem["swap"] = _swap(opts["memory_swap"])
        if mem["swap"] == 0:
            del mem["swap"]
    if opts.get("memory_reservation") is not None:
        mem["reservation"] = size(opts["memory_reservation"], "--memory-reservation")
    limit = mem.get("limit", 0)
    if mem.get("swap", 0) > 0:
        if not limit:
            raise _fail("You should always set the Memory limit when using Memoryswap limit, "
                        "see usage")
        if mem["swap"] < limit:
            raise _fail("Minimum memoryswap limit should be larger than memory limit, see "
                        "usage")
    if limit and mem.get("reservation", 0) > limit:
        raise _fail("Minimum memory limit can not be less than memory reservation limit, see "
                    "usage")
    if opts.get("cpus") is not None:
        try:
            cpus = float(opts["cpus"])
        except ValueError:
            raise _fail(f"invalid argument {opts['cpus']!r} for \"--cpus\" flag: failed to "
                        "parse as a rational number") from None
        if not 0.01 <= cpus <= host_cpus():
            raise _fail(f"range of CPUs is from 0.01 to {host_cpus():.2f}, as there are only "
                        f"{host_cpus()} CPUs available")
        cpu["period"], cpu["quota"] = 100000, int(cpus * 100000)
    for flag, key, lo, hi in (("cpu_period", "period", 1000, 1000000),
                              ("cpu_quota", "quota", 1000, None)):
        if opts.get(flag) is not None:
            value = _int(opts[flag], flag)
            if opts.get("cpus") is not None:
                raise _fail(f"Conflicting options: --{flag.replace('_', '-')} and --cpus "
                            "cannot both be set")
            if value and (value < lo or (hi is not None and value > hi)):
                raise _fail(f"CPU cfs {key} can not be less than 1ms (i.e. 1000) or larger "
                            "than 1s (i.e. 1000000)" if key == "period" else
                            "CPU cfs quota can not be less than 1ms (i.e. 1000)")
            cpu[key] = value
    if opts.get("cpu_shares") is not None:
        shares = _int(opts["cpu_shares"], "cpu_shares")
        if shares and not 2 <= shares <= 262144:
            raise _fail(f"invalid --cpu-shares {shares}: want 2 to 262144 (0: the default)")
        if shares:
            cpu["shares"] = shares
    for flag, key, online in (("cpuset_cpus", "cpus", "/sys/devices/system/cpu/online"),
                              ("cpuset_mems", "mems", "/sys/devices/system/node/online")):
        if opts.get(flag):
            want = cpu_list(opts[flag], "--" + flag.replace("_", "-"))
            have = _online(online) or {0}
            if not want <= have:
                kind = "CPUs" if key == "cpus" else "memory nodes"
                raise _fail(f"Requested {kind} are not available - requested {opts[flag]}, "
                            f"available: {_ranges(have)}")
            cpu[key] = opts[flag]
    if opts.get("pids_limit") is not None:
        n = _int(opts["pids_limit"], "pids_limit")
        if n > 0:
            res["pids"] = {"limit": n}
        else:  # Docker: 0 or -1 is unlimited
            res["pids"] = {"limit": -1} if current else {}
            if not res["pids"]:
                del res["pids"]
    if opts.get("oom_kill_disable"):
        mem["disableOOMKiller"] = True
    return {k: v for k, v in res.items() if v}


def _ranges(cpus: set[int]) -> str:
    out: list[list[int]] = []
    run: list[int] = []
    for c in sorted(cpus):
        if run and c != run[-1] + 1:
            out.append(run)
            run = []
        run.append(c)
    if run:
        out.append(run)
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in out)


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise _fail(f"invalid argument {text!r} for \"--{flag.replace('_', '-')}\" flag: "
                    "invalid syntax") from None


def ulimits(specs: list[str]) -> list[dict[str, Any]]:
    """``--ulimit name=soft[:hard]`` -> process.rlimits."""
    out: dict[str, dict[str, Any]] = {}
    for text in specs:
        name, sep, value = text.partition("=")
        if not sep:
            raise _fail(f"invalid ulimit argument: {text}")
        if name not in ULIMITS:
            raise _fail(f"invalid ulimit type: {name}")
        soft_s, _, hard_s = value.partition(":")
        soft, hard = _int(soft_s, "ulimit"), _int(hard_s or soft_s, "ulimit")
        if soft > hard and hard != -1:
            raise _fail(f"ulimit soft limit must be less than or equal to hard limit: {soft} > "
                        f"{hard}")
        unlimited = 2**64 - 1  # RLIM_INFINITY, what -1 means
        out[name] = {"type": f"RLIMIT_{name.upper()}",
                     "soft": unlimited if soft == -1 else soft,
                     "hard": unlimited if hard == -1 else hard}
    return list(out.values())


def sysctls(specs: list[str], network: str) -> dict[str, str]:
    """``--sysctl key=value``: namespaced ones only (Docker's ValidateSysctl), and net.* not on
    the host's network."""
    out = {}
    for text in specs:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise _fail(f"invalid argument {text!r} for \"--sysctl\" flag: sysctl must be in "
                        "the format KEY=VALUE")
        if not (key in _SYSCTLS or key.startswith(_SYSCTL_PREFIXES)):
            raise _fail(f"sysctl '{key}' is not allowed")
        if key.startswith("net.") and network == "host":
            raise _fail(f"sysctl '{key}' not allowed in host network namespace")
        out[key] = value
    return out


def devices(specs: list[str]) -> list[dict[str, Any]]:
    """``--device /dev/x[:/dev/y][:rwm]`` -> [{"host", "path", "access"}], checked now (the
    node is looked at again when the container is made)."""
    from .security import device_entry

    out = []
    for text in specs:
        parts = text.split(":")
        access = "rwm"
        if len(parts) > 1 and parts[-1] and set(parts[-1]) <= set("rwm") and \
                not parts[-1].startswith("/"):
            access = parts.pop()
        if len(parts) > 2 or not parts[0]:
            raise _fail(f"invalid device specification: {text}")
        host, dest = parts[0], parts[1] if len(parts) == 2 else parts[0]
        if not dest.startswith("/"):
            raise _fail(f"invalid device specification: {text}: the path in the container "
                        "must be absolute")
        if device_entry(host, dest) is None:
            raise _fail(f"error gathering device information while adding custom device "
                        f"\"{host}\": not a device node")
        out.append({"host": host, "path": dest, "access": access})
    return out


def device_rules(devs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                      list[dict[str, Any]]]:
    """(linux.devices entries, linux.resources.devices allow rules) for --device's."""
    from .security import device_entry

    nodes, rules = [], []
    for d in devs:
        entry = device_entry(d["host"], d["path"])
        if entry is None:
            raise _fail(f"error gathering device information while adding custom device "
                        f"\"{d['host']}\": not a device node")
        nodes.append(entry)
        rules.append({"allow": True, "type": entry["type"], "major": entry["major"],
                      "minor": entry["minor"], "access": d["access"]})
    return nodes, rules
