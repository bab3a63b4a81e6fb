"""A private containerd (own config, root, state and sockets under a temporary directory) for the
engine tests, plus the leftover checks: shims, runtime processes, mounts, cgroups and the runtime's
state directory that belong to one containerd namespace."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

SHIM = "io.containerd.runc.v2"
CGROUP_ROOT = Path("/sys/fs/cgroup")
RUNC_ROOT = Path("/run/containerd/runc")   # the shim's default --root parent (no Root option)
SHIM_SOCKETS = Path("/run/containerd/s")   # where every runc v2 shim puts its socket


def cri_snippet(handler: str, binary: str, root: str = "") -> str:
    """The containerd 1.x (config version 2) CRI runtime handler that routes a RuntimeClass
    ``handler`` to ``binary`` through the runc v2 shim."""
    base = f'[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{handler}]'
    opts = f'[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{handler}.options]'
    text = f'{base}\n  runtime_type = "{SHIM}"\n{opts}\n  BinaryName = "{binary}"\n'
    if root:
        text += f'  Root = "{root}"\n'
    return text


class Containerd:
    """One containerd daemon started with its own config.toml; every path lives under ``base``."""

    def __init__(self, base: Path, namespace: str, cri: str = "") -> None:
        self.base = base
        self.namespace = namespace
        self.address = str(base / "containerd.sock")
        self.config = base / "config.toml"
        self.log = base / "containerd.log"
        self.state = base / "state"
        self.proc: subprocess.Popen[bytes] | None = None
        disabled = "" if cri else 'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "version = 2\n"
            f'root = "{base / "root"}"\n'
            f'state = "{self.state}"\n'
            + disabled +
            f'[grpc]\n  address = "{self.address}"\n'
            f'[ttrpc]\n  address = "{base / "containerd.sock.ttrpc"}"\n'
            f'[debug]\n  address = "{base / "debug.sock"}"\n  level = "info"\n'
            + cri)

    def start(self, timeout: float = 30) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["containerd", "--config", str(self.config)],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited {self.proc.returncode}:\n{self.log_tail()}")
            if os.path.exists(self.address) and self.ctr("version").returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"containerd did not come up:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def ctr(self, *args: str, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", "-a", self.address, "-n", self.namespace, *args],
                              capture_output=True, text=True, timeout=timeout,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)

    def ctr_cmd(self, *args: str) -> list[str]:
        return ["ctr", "-a", self.address, "-n", self.namespace, *args]

    def bundle(self, cid: str) -> Path:
        return self.state / "io.containerd.runtime.v2.task" / self.namespace / cid

    def task_status(self, cid: str) -> str:
        out = self.ctr("task", "ls").stdout
        for line in out.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == cid:
                return fields[-1]
        return ""

    def wait_status(self, cid: str, status: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        now = self.task_status(cid)
        while now != status and time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.task_status(cid)
        return now

    def remove_all(self) -> None:
        """Kill and delete every task and container of our namespace (best effort)."""
        for cid in self.ctr("c", "ls", "-q").stdout.split():
            self.ctr("task", "kill", "-a", "-s", "KILL", cid)
            self.wait_status(cid, "STOPPED", timeout=10)
            self.ctr("task", "rm", "-f", cid)
            self.ctr("c", "rm", cid)

    def shim_socket(self, cid: str) -> Path:
        """The runc v2 shim's socket (containerd 1.6 ``shim.SocketAddress``)."""
        digest = hashlib.sha256(os.path.join(self.address, self.namespace, cid).encode())
        return SHIM_SOCKETS / digest.hexdigest()


def _cmdline(pid: str) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def shim_pids(ctrd: Containerd) -> list[int]:
    """runc v2 shims that talk to this containerd."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        args = _cmdline(pid)
        if args and os.path.basename(args[0]).startswith("containerd-shim") \
                and ctrd.address in args:
            found.append(int(pid))
    return found


def runtime_pids(namespace: str) -> list[int]:
    """Runtime invocations for this namespace: they carry --root /run/containerd/runc/<ns>."""
    root = str(RUNC_ROOT / namespace)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        args = _cmdline(pid)
        if root in args or f"--root={root}" in args:
            found.append(int(pid))
    return found


def namespace_cgroups(namespace: str) -> list[Path]:
    """Every /sys/fs/cgroup/<hierarchy>/<namespace> directory (the parent ctr puts containers in)."""
    found = []
    for h in CGROUP_ROOT.iterdir():
        p = h / namespace
        if p.is_dir():
            found.append(p)
    return found


def cgroup_children(namespace: str) -> list[Path]:
    return [c for p in namespace_cgroups(namespace) for c in p.iterdir() if c.is_dir()]


def mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix) or point == str(path):
                found.append(point)
    return found


def leftovers(ctrd: Containerd, ids: set[str]) -> list[str]:
    """What a namespace whose containers were all removed must not keep."""
    problems = []
    if ctrd.proc is not None and ctrd.proc.poll() is None:
        cids = ctrd.ctr("c", "ls", "-q").stdout.split()
        if cids:
            problems.append(f"containers: {cids}")
    shims = shim_pids(ctrd)
    if shims:
        problems.append(f"shims: {[' '.join(_cmdline(str(p))) for p in shims]}")
    rt = runtime_pids(ctrd.namespace)
    if rt:
        problems.append(f"runtime processes: {[' '.join(_cmdline(str(p))) for p in rt]}")
    mounts = mounts_under(ctrd.base)
    if mounts:
        problems.append(f"mounts: {mounts}")
    cgroups = cgroup_children(ctrd.namespace)
    if cgroups:
        problems.append(f"cgroups: {[str(c) for c in cgroups]}")
    state = RUNC_ROOT / ctrd.namespace
    if state.is_dir() and os.listdir(state):
        problems.append(f"runtime state: {sorted(os.listdir(state))}")
    sockets = [str(ctrd.shim_socket(c)) for c in sorted(ids) if ctrd.shim_socket(c).exists()]
    if sockets:
        problems.append(f"shim sockets: {sockets}")
    return problems


def force_clean(ctrd: Containerd) -> None:
    """Last resort after a failure: kill what is ours by PID, unmount, remove empty dirs."""
    for pid in shim_pids(ctrd) + runtime_pids(ctrd.namespace):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for cg in cgroup_children(ctrd.namespace):
        procs = cg / "cgroup.procs"
        if procs.exists():
            for task in procs.read_text().split():
                try:
                    os.kill(int(task), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    time.sleep(0.5)
    for point in sorted(mounts_under(ctrd.base), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    for cg in cgroup_children(ctrd.namespace):
        for sub in sorted(cg.rglob("*"), key=lambda p: len(str(p)), reverse=True):
            if sub.is_dir():
                try:
                    sub.rmdir()
                except OSError:
                    pass
        try:
            cg.rmdir()
        except OSError:
            pass


def remove_namespace_dirs(namespace: str) -> list[str]:
    """Remove the empty parents the runtime created for the namespace; return what stays."""
    stays = []
    for p in namespace_cgroups(namespace) + [RUNC_ROOT / namespace]:
        if p.is_dir():
            try:
                p.rmdir()
            except OSError:
                stays.append(str(p))
    return stays


def read_log_json(path: Path) -> list[dict[str, object]]:
    """Parse the runtime's log.json the way containerd does: every line one JSON object with a
    level, a msg and an RFC 3339 time that carries a zone. Raises on any bad line."""
    entries = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        entry = json.loads(line)
        if not isinstance(entry, dict) or not {"level", "msg", "time"} <= entry.keys():
            raise ValueError(f"{path}:{n}: not a level/msg/time object: {line!r}")
        stamp = re.sub(r"(\.\d{6})\d+", r"\1", str(entry["time"])).replace("Z", "+00:00")
        if datetime.fromisoformat(stamp).tzinfo is None:
            raise ValueError(f"{path}:{n}: time without a zone: {line!r}")
        entries.append(entry)
    return entries


def rmtree(path: Path) -> None:
    if not mounts_under(path):
        shutil.rmtree(path, ignore_errors=True)
