"""ocirt, runc and crun side by side in one run: what `make bench` prints.

    .venv/bin/python bench/compare.py [-n ROUNDS] [--warmup N] [--parallel N] [--workers W]
                                      [--quick] [--no-parallel] [--no-bisect] [--json FILE]

Times (median of the rounds; round i runs the runtimes in an order rotated by i, ocirt runc crun,
runc crun ocirt, crun ocirt runc, ..., so none always goes first):
`run true` with and without a network namespace and with a podman-like config (seccomp
profile bench/seccomp-default.json, podman's capabilities, masked/readonly paths, the usual
mounts), `create` / `start` / `delete` of a `true` container and their sum, `exec true` into a
running container.  Memory: the waiting init's Rss/Pss, the container cgroup's
memory.max_usage_in_bytes after it ran `true`, and the smallest memory limit at which
`echo hi` still works (bisection).  Then N containers (`sleep 30`) created and started at once
from a thread pool: time until all run, host memory while they run, time to delete them all.
crun runs through a wrapper (written into a temp dir) that drops the cgroup2 mount it refuses;
every round also times that wrapper alone (around crun --version and around /bin/true) and the
table prints it as its own rows: it is included in every crun figure.
See bench/README.md for what every figure means.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import (
    CGROUP_PARENT,
    DEFAULT_A,
    DEFAULT_B,
    SPAWNER,
    BenchError,
    Runtime,
    machine,
    resolve,
    teardown,
    version,
)

HERE = Path(__file__).resolve().parent
SECCOMP_PROFILE = HERE / "seccomp-default.json"
CRUN = "/usr/bin/crun"
MEMCG = Path("/sys/fs/cgroup/memory") / CGROUP_PARENT
WRAPPER = """#!/bin/sh
# crun refuses hybrid cgroups ("cgroups in hybrid mode not supported"): run each call in a
# private mount namespace without the cgroup2 'unified' mount (unshare without --fork keeps the pid)
exec unshare --mount sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec {crun} "$@"' sh "$@"
"""
KIB, MIB = 1024, 1024 * 1024

# podman 4.3's default_capabilities (containers.conf); Docker adds AUDIT_WRITE, MKNOD, NET_RAW
PODMAN_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
               "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
               "CAP_SYS_CHROOT"]
PODMAN_MASKED = ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                 "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                 "/sys/firmware", "/sys/fs/selinux", "/sys/dev/block"]
PODMAN_READONLY = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                   "/proc/sysrq-trigger"]
NOSUID = ["nosuid", "noexec", "nodev"]
PODMAN_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": NOSUID},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [*NOSUID, "ro"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": NOSUID},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["rprivate", *NOSUID, "ro"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": [*NOSUID, "mode=1777", "size=64000k"]},
]
# per-container files podman bind-mounts from its userdata dir (written into the bundle dir)
PODMAN_FILES = {"/etc/hosts": "127.0.0.1 localhost\n::1 localhost\n",
                "/etc/hostname": "bench\n", "/etc/resolv.conf": "nameserver 10.88.0.1\n",
                "/run/.containerenv": ""}
PODMAN_DEVICES = [{"allow": False, "access": "rwm"},
                  {"allow": True, "type": "c", "access": "m"},
                  {"allow": True, "type": "b", "access": "m"},
                  *({"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"}
                    for ma, mi in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2),
                                   (10, 200)]),
                  {"allow": True, "type": "c", "major": 136, "access": "rwm"}]

TIME_ROWS = ["run true", "run true, no netns", "run true, podman-like", "create", "start",
             "delete", "create+start+delete", "exec true"]
Row = tuple[str, str, str, float, int]  # printed name, metric, unit, scale, digits
MEM_ROWS: list[Row] = [("waiting init Rss", "init Rss", "MiB", 1 / KIB, 2),
                       ("waiting init Pss", "init Pss", "MiB", 1 / KIB, 2),
                       ("cgroup max_usage after `true`", "cgroup max_usage", "MiB", 1 / KIB, 2)]
PARALLEL_ROWS: list[Row] = [
    ("wall time until all running", "all running", "s", 1.0, 2),
    ("MemAvailable drop while running", "MemAvailable drop", "MiB", 1.0, 1),
    ("  per-CPU free lists growth", "per-CPU free lists growth", "MiB", 1.0, 1),
    ("  Slab growth", "Slab growth", "MiB", 1.0, 1),
    ("Pss of their processes", "Pss of their processes", "MiB", 1.0, 1),
    ("  (processes counted)", "processes", "", 1.0, 0),
    ("memory.usage_in_bytes of the parent", "cgroup usage", "MiB", 1.0, 1),
    ("wall time to delete --force all", "delete --force all", "s", 1.0, 2)]
TIME_ROW_SPECS: list[Row] = [(m, m, "ms", 1.0, 1) for m in TIME_ROWS]
TARGETS = [("run true", "time", 1.0), ("create+start+delete", "time", 1.0),
           ("exec true", "time", 1.0)]


def podmanize(cfg: dict, bundle: Path) -> None:
    """Turn the busybox config into what podman 4.3 (rootful, cgroupfs, v1) would pass."""
    proc = cfg["process"]
    proc["env"] += ["container=podman", "HOME=/root", "HOSTNAME=bench"]
    proc["capabilities"] = {k: list(PODMAN_CAPS) for k in ("bounding", "effective", "permitted")}
    # podman's own defaults (nofile 1048576, nproc 4194304) fail here: no CAP_SYS_RESOURCE
    proc["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 20000, "hard": 20000},
                       {"type": "RLIMIT_NPROC", "soft": 32768, "hard": 32768}]
    proc["noNewPrivileges"] = False
    proc["oomScoreAdj"] = 0
    cfg["root"]["readonly"] = False
    cfg["hostname"] = "bench"
    mounts = [dict(m) for m in PODMAN_MOUNTS]
    for dest, text in PODMAN_FILES.items():
        src = bundle / dest.rsplit("/", 1)[1].lstrip(".")
        src.write_text(text)
        opts = ["bind", "rprivate"] + (["ro"] if dest == "/run/.containerenv" else [])
        mounts.append({"destination": dest, "type": "bind", "source": str(src), "options": opts})
    cfg["mounts"] = mounts
    linux = cfg["linux"]
    linux["namespaces"] = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    linux["maskedPaths"] = list(PODMAN_MASKED)
    linux["readonlyPaths"] = list(PODMAN_READONLY)
    linux["sysctl"] = {"net.ipv4.ping_group_range": "0 0"}
    linux["resources"] = {"devices": PODMAN_DEVICES, "pids": {"limit": 2048}}
    linux["seccomp"] = json.loads(SECCOMP_PROFILE.read_text())


def bundle(rt: Runtime, cid: str, args: list[str], netns: bool = True, podman: bool = False,
           memory: int | None = None) -> str:
    """rt.bundle(), then the changes this benchmark needs; returns the bundle path."""
    path = Path(rt.bundle(cid, *args))
    cfg = json.loads((path / "config.json").read_text())
    cfg["ociVersion"] = "1.0.2"  # crun 1.8.1 refuses "1.2.0" ("unknown version specified")
    if not netns:
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                      if n["type"] != "network"]
    if podman:
        podmanize(cfg, path)
    if memory is not None:
        cfg["linux"].setdefault("resources", {})["memory"] = {"limit": memory, "swap": memory}
    (path / "config.json").write_text(json.dumps(cfg))
    return str(path)


def smaps(pid: int) -> dict[str, int]:
    """Rss and Pss of a process in KiB (smaps_rollup)."""
    got = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss"):
                    got[key] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return got


def cgroup_file(cid: str | None, name: str) -> int | None:
    path = (MEMCG / cid if cid else MEMCG) / name
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def meminfo_kb(field: str) -> int:
    """One field of /proc/meminfo, in KiB (MemAvailable; Slab: the kernel objects, namespaces,
    mounts, cgroups...)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def mem_available_kb() -> int:
    return meminfo_kb("MemAvailable")


def settled_mem_available_kb(limit_s: float = 8.0) -> int:
    """MemAvailable once it holds still (< 1 MiB change in 0.5 s, at most `limit_s`)."""
    deadline = time.monotonic() + limit_s
    last = mem_available_kb()
    while True:
        time.sleep(0.5)
        now = mem_available_kb()
        if abs(now - last) < 1024 or time.monotonic() > deadline:
            return now
        last = now


def pcp_free_kb() -> int:
    """KiB of free pages sitting on the per-CPU page lists (/proc/zoneinfo `count:` of every
    pageset). MemFree and MemAvailable do not count them: pages that many exiting processes
    free at once park there (the kernel grows the lists under such bursts) until drained."""
    total = 0
    with open("/proc/zoneinfo") as f:
        for line in f:
            key, _, value = line.strip().partition(":")
            if key == "count":
                total += int(value)
    return total * os.sysconf("SC_PAGE_SIZE") // KIB


class Samples:
    """samples[metric][runtime label] -> list of numbers."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        self.data: dict[str, dict[str, list[float]]] = {}
        self.limits: dict[str, str] = {}  # smallest memory limit for `echo hi`, as text

    def add(self, metric: str, label: str, value: float | None) -> None:
        if value is not None:
            self.data.setdefault(metric, {k: [] for k in self.labels})[label].append(value)

    def median(self, metric: str, label: str) -> float | None:
        vals = self.data.get(metric, {}).get(label)
        return statistics.median(vals) if vals else None


# ---------------------------------------------------------------- lifecycle rounds


def one_round(rt: Runtime, exec_cid: str, rec: Callable[[str, float | None], None]) -> None:
    """Every timed operation once on `rt`; state polls and file reads in between are untimed."""
    for metric, kw in (("run true", {}), ("run true, no netns", {"netns": False}),
                       ("run true, podman-like", {"podman": True})):
        cid = rt.new_id()
        rec(metric, rt.call("run", "--bundle", bundle(rt, cid, ["true"], **kw), cid).ms)

    cid, pidfile = rt.new_id(), rt.work / "init.pid"
    path = bundle(rt, cid, ["true"])
    create = rt.call("create", "--bundle", path, "--pid-file", str(pidfile), cid)
    mem = smaps(int(pidfile.read_text()))
    start = rt.call("start", cid)
    rt.wait_stopped(cid)
    peak = cgroup_file(cid, "memory.max_usage_in_bytes")
    delete = rt.call("delete", cid)
    rec("create", create.ms)
    rec("start", start.ms)
    rec("delete", delete.ms)
    rec("create+start+delete", create.ms + start.ms + delete.ms)
    rec("init Rss", mem.get("Rss"))
    rec("init Pss", mem.get("Pss"))
    rec("cgroup max_usage", None if peak is None else peak / KIB)
    rec("exec true", rt.call("exec", exec_cid, "true").ms)


def rotated(items: list[Runtime], k: int) -> list[Runtime]:
    """*items* rotated left by *k*: round k starts with runtime k (mod their number)."""
    k %= len(items)
    return items[k:] + items[:k]


def lifecycle(rts: list[Runtime], rounds: int, warmup: int, s: Samples, offset: int,
              wrap: Wrapper) -> None:
    """warmup + rounds rounds; round i runs the runtimes in the order rotated by offset + i
    (ocirt runc crun, runc crun ocirt, crun ocirt runc, ...), so none always goes first or
    always follows the same one."""
    exec_ids = {}
    for rt in rts:
        cid = rt.new_id()
        rt.call("create", "--bundle", bundle(rt, cid, ["sleep", "1000"]), cid)
        rt.call("start", cid)
        exec_ids[rt.label] = cid
    for i in range(warmup + rounds):
        keep = i >= warmup
        for rt in rotated(rts, offset + i):
            def rec(metric: str, value: float | None, rt: Runtime = rt, keep: bool = keep
                    ) -> None:
                if keep:
                    s.add(metric, rt.label, value)
            one_round(rt, exec_ids[rt.label], rec)
        for metric, ms in wrap.measure(reverse=(offset + i) % 2 == 1):
            if keep:
                s.add(metric, "crun", ms)
        progress(f"round {i + 1}/{warmup + rounds}")
    for rt in rts:
        rt.call("delete", "--force", exec_ids[rt.label])


class Wrapper:
    """crun's wrapper (WRAPPER) and what it costs: crun refuses this host's hybrid cgroup layout,
    so every crun call of this benchmark goes through `unshare --mount` + sh + umount first.
    The same wrapper around /bin/true measures the wrapper alone."""

    ROWS = [("crun --version, direct", "wrap: crun direct"),
            ("crun --version, through the wrapper", "wrap: crun wrapped"),
            ("/bin/true, direct", "wrap: true direct"),
            ("/bin/true, through the wrapper", "wrap: true wrapped"),
            ("wrapper cost (wrapped - direct crun)", "wrap: cost")]

    def __init__(self, crun: str, where: Path) -> None:
        self.crun = crun
        self.crun_wrapped = self._write(where / "crun", crun)
        self.true_wrapped = self._write(where / "true", "/bin/true")

    @staticmethod
    def _write(path: Path, target: str) -> str:
        path.write_text(WRAPPER.format(crun=target))
        path.chmod(0o755)
        return str(path)

    def measure(self, reverse: bool) -> list[tuple[str, float]]:
        """One sample of each row, in ms (direct and wrapped in turn, order flipped by
        *reverse*)."""
        pairs = [(("wrap: crun direct", [self.crun, "--version"]),
                  ("wrap: crun wrapped", [self.crun_wrapped, "--version"])),
                 (("wrap: true direct", ["/bin/true"]),
                  ("wrap: true wrapped", [self.true_wrapped]))]
        got: dict[str, float] = {}
        for pair in pairs:
            for metric, argv in reversed(pair) if reverse else pair:
                rc, ns, _ = SPAWNER.run(argv, os.devnull, os.devnull)
                if rc != 0:
                    raise BenchError(f"{' '.join(argv)} exited {rc}")
                got[metric] = ns / 1e6
        got["wrap: cost"] = got["wrap: crun wrapped"] - got["wrap: crun direct"]
        return list(got.items())


# ---------------------------------------------------------------- smallest memory limit


def echo_ok(rt: Runtime, limit: int, timeout: float = 30.0) -> bool:
    """Does `run` of `echo hi` print hi with memory limit = memory+swap limit = `limit`?"""
    cid = rt.new_id()
    path = bundle(rt, cid, ["echo", "hi"], memory=limit)
    out = rt.work / "echo.out"
    argv = [rt.path, "--root", str(rt.root)]
    with open(out, "w") as f:
        try:
            rc = subprocess.run([*argv, "run", "--bundle", path, cid], stdin=subprocess.DEVNULL,
                                stdout=f, stderr=subprocess.DEVNULL, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    ok = rc == 0 and out.read_text().strip() == "hi"
    if not ok:  # a failed run may leave the container behind
        subprocess.run([*argv, "delete", "--force", cid], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)
    return ok


def min_limit(rt: Runtime, lo: int, hi: int, step: int, tries: int) -> tuple[str, int | None]:
    """Bisect the smallest limit (multiple of `step`) passing `tries` times in a row."""
    def passes(limit: int) -> bool:
        return all(echo_ok(rt, limit) for _ in range(tries))
    if not passes(hi):
        return f"> {hi // KIB} KiB", None
    if passes(lo):
        return f"<= {lo // KIB} KiB", lo
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            break
        if passes(mid):
            hi = mid
        else:
            lo = mid
    return f"{hi // KIB} KiB", hi


# ---------------------------------------------------------------- N containers at once


def process_pss_kb(work: Path) -> tuple[int, int]:
    """(processes, sum of Pss KiB) of everything in our memory cgroup parent plus every
    process whose command line names our temp dir (runtime processes still around)."""
    pids: set[int] = set()
    for procs in MEMCG.rglob("cgroup.procs"):
        try:
            pids.update(int(p) for p in procs.read_text().split())
        except (OSError, ValueError):
            pass
    needle = str(work).encode()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    if needle in f.read():
                        pids.add(int(entry.name))
            except OSError:
                pass
    pids.discard(os.getpid())
    return len(pids), sum(smaps(pid).get("Pss", 0) for pid in pids)


def plain(rt: Runtime, *args: str) -> str:
    """Run a runtime command outside the timing helper (thread-safe); '' or an error line."""
    err = rt.work / f"err-{args[-1]}"
    with open(err, "w") as f:
        rc = subprocess.run([rt.path, "--root", str(rt.root), *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=f, timeout=120).returncode
    if rc == 0:
        return ""
    last = (err.read_text(errors="replace").strip().splitlines() or ["(no stderr)"])[-1]
    return f"{rt.label} {args[0]} exited {rc}: {last}"


def parallel(rt: Runtime, n: int, workers: int, s: Samples) -> None:
    jobs = []
    for _ in range(n):
        cid = rt.new_id()
        jobs.append((cid, bundle(rt, cid, ["sleep", "30"])))

    def up(job: tuple[str, str]) -> str:
        cid, path = job
        return plain(rt, "create", "--bundle", path, cid) or plain(rt, "start", cid)

    before = settled_mem_available_kb()
    pcp_before, slab_before = pcp_free_kb(), meminfo_kb("Slab")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        errors = [e for e in pool.map(up, jobs) if e]
    up_s = time.perf_counter() - t0
    if errors:
        raise BenchError(f"{len(errors)} of {n} containers failed; first: {errors[0]}")
    during = settled_mem_available_kb()
    pcp_during, slab_during = pcp_free_kb(), meminfo_kb("Slab")
    nproc, pss = process_pss_kb(rt.work)
    usage = cgroup_file(None, "memory.usage_in_bytes")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        errors = [e for e in pool.map(lambda j: plain(rt, "delete", "--force", j[0]), jobs) if e]
    down_s = time.perf_counter() - t0
    if errors:
        raise BenchError(f"{len(errors)} deletes failed; first: {errors[0]}")
    if nproc < n:
        print(f"warning: {rt.label}: only {nproc} of {n} containers' processes were counted "
              "(`sleep 30` over already?)", file=sys.stderr)
    s.add("all running", rt.label, up_s)
    s.add("delete --force all", rt.label, down_s)
    s.add("MemAvailable drop", rt.label, (before - during) / KIB)
    s.add("per-CPU free lists growth", rt.label, (pcp_during - pcp_before) / KIB)
    s.add("Slab growth", rt.label, (slab_during - slab_before) / KIB)
    s.add("Pss of their processes", rt.label, pss / KIB)
    s.add("processes", rt.label, nproc)
    s.add("cgroup usage", rt.label, None if usage is None else usage / MIB)


# ---------------------------------------------------------------- output


def progress(msg: str) -> None:
    if sys.stderr.isatty():
        print(f"\r{msg:<40}", end="", file=sys.stderr, flush=True)


def fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b is not None and a > 0 and b > 0 else "-"


def section(title: str, head: str, rows: list[Row],
            cells: Callable[[str, str, float, int], str]) -> None:
    """A titled table: per row its name, its unit and what cells(metric, unit, scale, digits)
    makes of it (shared by this report and runs.py's)."""
    print()
    print(title)
    print(head)
    for name, metric, unit, scale, digits in rows:
        print(f"{name:<34}{unit:>6}" + cells(metric, unit, scale, digits))


def report(s: Samples, facts: dict, notes: list[str], args: argparse.Namespace) -> None:
    labels = s.labels
    others = labels[1:]
    a = labels[0]
    print(" | ".join(f"{k}: {v}" for k, v in facts.items()))
    for note in notes:
        print(note)
    head = f"{'':<34}{'unit':>6}" + "".join(f"{x:>10}" for x in labels)
    head += "".join(f"{a + '/' + x:>13}" for x in others)

    def cells(metric: str, unit: str, scale: float, digits: int) -> str:
        meds = {x: s.median(metric, x) for x in labels}
        meds = {x: None if v is None else v * scale for x, v in meds.items()}
        line = "".join(f"{fmt(meds[x], digits):>10}" for x in labels)
        if unit:
            line += "".join(f"{ratio(meds[a], meds[x]):>13}" for x in others)
        return line

    section(f"time, median of {args.n} rounds", head, TIME_ROW_SPECS, cells)
    section(f"memory, median of {args.n} rounds", head, MEM_ROWS, cells)
    print()
    print(f"crun's wrapper (unshare --mount + sh + umount, see WRAPPER), median (min-max) of "
          f"{args.n} rounds, ms")
    for name, metric in Wrapper.ROWS:
        vals = s.data.get(metric, {}).get("crun", [])
        if vals:
            print(f"  {name:<40}{statistics.median(vals):8.2f}  "
                  f"({min(vals):.2f}-{max(vals):.2f})")
    if s.limits:
        print()
        print(f"smallest memory limit (= memory+swap) at which `echo hi` works, "
              f"{args.lo} KiB..{args.hi} KiB, step {args.step} KiB, {args.tries} passes in a row")
        for x in labels:
            print(f"  {x:<8}{s.limits[x]}")
    if "all running" in s.data:
        section(f"{args.parallel} containers (`sleep 30`) created+started by {args.workers} "
                f"threads", head, PARALLEL_ROWS, cells)
    print()
    print("targets (ocirt)")
    for metric, _, limit in TARGETS:
        mine, runc = s.median(metric, a), s.median(metric, "runc")
        if mine is not None and runc:
            verdict = "met" if mine / runc <= limit else "MISSED"
            print(f"  {metric + ' <= ' + f'{limit:.1f}x runc':<44}{mine / runc:8.2f}x  {verdict}")
    mine, runc = s.median("init Pss", a), s.median("init Pss", "runc")
    if mine is not None and runc is not None:
        verdict = "met" if mine <= runc else "MISSED"
        print(f"  {'waiting-init Pss <= runc':<44}{mine / KIB:6.2f} vs {runc / KIB:.2f} MiB  "
              f"{verdict}")
    peak = s.median("cgroup max_usage", a)
    if peak is not None:
        verdict = "met" if peak <= 1024 else "MISSED"
        print(f"  {'memory charged to the container <= 1 MiB':<44}{peak / KIB:6.2f} MiB  {verdict}")
    if a in s.limits:
        got = s.median("echo limit", a)
        verdict = "met" if got is not None and got <= 512 else "MISSED"
        print(f"  {'echo hi under a 512 KiB limit':<44}{s.limits[a]:>10}  {verdict}")


# ---------------------------------------------------------------- main


def seccomp_cache_file() -> Path:
    """Where ocirt caches the BPF compiled from our profile (see ocirt/seccomp.py program())."""
    profile = json.loads(SECCOMP_PROFILE.read_text())
    key = hashlib.sha256(json.dumps([os.uname().machine, profile], sort_keys=True).encode())
    return Path("/run/ocirt-cache/seccomp") / (key.hexdigest() + ".bpf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ocirt", default=DEFAULT_A, help="ocirt binary (default: %(default)s)")
    ap.add_argument("--runc", default=DEFAULT_B, help="runc binary (default: %(default)s)")
    ap.add_argument("--crun", default=CRUN, help="crun binary (default: %(default)s)")
    ap.add_argument("-n", type=int, default=int(os.environ.get("BENCH_ROUNDS", 25)),
                    help="timed rounds (default: $BENCH_ROUNDS or %(default)s)")
    ap.add_argument("--warmup", type=int, default=2, help="discarded rounds (default: %(default)s)")
    ap.add_argument("--parallel", type=int, default=int(os.environ.get("BENCH_PARALLEL", 100)),
                    help="containers started at once (default: $BENCH_PARALLEL or %(default)s)")
    ap.add_argument("--workers", type=int, default=0,
                    help="threads for them (default: one per container)")
    ap.add_argument("--lo", type=int, default=64, help="bisection low end, KiB (%(default)s)")
    ap.add_argument("--hi", type=int, default=16384, help="bisection high end, KiB (%(default)s)")
    ap.add_argument("--step", type=int, default=16, help="bisection step, KiB (%(default)s)")
    ap.add_argument("--tries", type=int, default=2,
                    help="runs that must all pass for a limit to pass (default: %(default)s)")
    ap.add_argument("--quick", action="store_true",
                    help="-n 5 --warmup 1 --parallel 20 --step 64 --tries 1")
    ap.add_argument("--no-parallel", action="store_true", help="skip the N-containers part")
    ap.add_argument("--no-bisect", action="store_true", help="skip the memory-limit bisection")
    ap.add_argument("--rotate", type=int, default=0,
                    help="start the rotation of the runtimes' order at this one: round i runs "
                         "them rotated by ROTATE + i, the bisection and the N containers rotated "
                         "by ROTATE (default: %(default)s = ocirt first)")
    ap.add_argument("--json", metavar="FILE", help="also write every sample here")
    args = ap.parse_args()
    if args.quick:
        args.n, args.warmup, args.parallel, args.step, args.tries = 5, 1, 20, 64, 1
    args.workers = args.workers or args.parallel
    if os.geteuid() != 0:
        sys.exit("compare.py: needs root (it creates real containers)")
    paths = {"ocirt": resolve(args.ocirt), "runc": resolve(args.runc), "crun": resolve(args.crun)}
    cache = seccomp_cache_file()
    cache_was_there = cache.exists()
    wrapdir = Path(tempfile.mkdtemp(prefix="ocirt-bench-crunwrap-"))
    wrap = Wrapper(paths["crun"], wrapdir)
    paths["crun"] = wrap.crun_wrapped
    s = Samples(list(paths))
    built: list[Runtime] = []
    t_start = time.monotonic()
    try:
        for label, path in paths.items():
            built.append(Runtime(label, path))
        versions = {rt.label: version(rt) for rt in built}
        facts = machine() | {"rounds": args.n, "warmup": args.warmup, "rotate": args.rotate,
                             "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}
        lifecycle(built, args.n, args.warmup, s, args.rotate, wrap)
        # one pass each: the runtime that goes first is the --rotate'th (runs.py varies it)
        if not args.no_bisect:
            for rt in rotated(built, args.rotate):
                progress(f"memory limit bisection: {rt.label}")
                text, value = min_limit(rt, args.lo * KIB, args.hi * KIB, args.step * KIB,
                                        args.tries)
                s.limits[rt.label] = text
                s.add("echo limit", rt.label, None if value is None else value / KIB)
        if not args.no_parallel:
            for rt in rotated(built, args.rotate):
                progress(f"{args.parallel} containers: {rt.label}")
                parallel(rt, args.parallel, args.workers, s)
        progress("")
    except BenchError as exc:
        sys.exit(f"compare.py: {exc}")
    finally:
        teardown(built, "compare.py")
        shutil.rmtree(wrapdir, ignore_errors=True)
        if not cache_was_there:
            cache.unlink(missing_ok=True)
        with open("/proc/self/mounts") as f:
            for line in f:
                if "/ocirt-bench-" in line.split()[1]:
                    print(f"compare.py: warning: mount left behind: {line.split()[1]}",
                          file=sys.stderr)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    facts["total_s"] = round(time.monotonic() - t_start)
    facts["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    notes = [f"{k}: {v}" + (" (through the unshare wrapper: its cost is measured below and is "
                            "in every crun time)" if k == "crun" else "")
             for k, v in versions.items()]
    report(s, facts, notes, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": facts, "versions": versions, "args": vars(args), "samples": s.data, "echo_limit": s.limits}, f,
                      indent=1)


if __name__ == "__main__":
    main()
