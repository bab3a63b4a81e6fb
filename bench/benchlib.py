"""Shared plumbing for the ocirt-vs-runc benchmarks in bench/.

A `Runtime` wraps one runtime binary with its own temp dir: a busybox rootfs built once with
bundles/mkrootfs, a private `--root` state dir, and one small bundle dir per container whose
config.json (derived from bundles/busybox/config.json) gives the container its own cgroupsPath
under a per-benchmark parent cgroup.  `Runtime.call` runs the runtime with os.posix_spawn and
reaps it with os.wait4, so each call yields wall time (perf_counter_ns) and the peak RSS of the
runtime process (ru_maxrss, which also covers any children it waited for).
"""

from __future__ import annotations

import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASE_CONFIG = REPO / "bundles" / "busybox" / "config.json"
MKROOTFS = REPO / "bundles" / "mkrootfs"
DEFAULT_A = str(REPO / ".venv" / "bin" / "ocirt")
DEFAULT_B = "/usr/sbin/runc"
CGROUP_PARENT = f"ocirt-bench-{os.getpid()}"


class BenchError(Exception):
    """A runtime call or setup step failed; the message is one line."""


@dataclass
class Result:
    rc: int
    ns: int
    maxrss_kb: int
    out: str
    err: str

    @property
    def ms(self) -> float:
        return self.ns / 1e6


def resolve(runtime: str) -> str:
    """Absolute path of a runtime binary; exit with a one-line message if it is missing."""
    path = shutil.which(runtime)
    if path is None:
        sys.exit(f"{Path(sys.argv[0]).name}: runtime not found or not executable: {runtime}")
    return os.path.abspath(path)


def labels(a: str, b: str) -> tuple[str, str]:
    la, lb = Path(a).name, Path(b).name
    return (la, lb) if la != lb else (f"{la}(A)", f"{lb}(B)")


@dataclass
class Runtime:
    label: str
    path: str
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ocirt-bench-")))
    count: int = 0

    def __post_init__(self) -> None:
        self.root = self.work / "state"
        self.list_root = self.work / "state-list"
        self.rootfs = self.work / "rootfs"
        done = subprocess.run([str(MKROOTFS), str(self.rootfs)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            shutil.rmtree(self.work, ignore_errors=True)
            raise BenchError(f"mkrootfs failed: {done.stderr.strip()}")

    def new_id(self) -> str:
        self.count += 1
        return f"bench-{os.getpid()}-{self.label}-{self.count}".replace("(", "").replace(")", "")

    def bundle(self, cid: str, *args: str) -> str:
        """Write a bundle dir for container `cid` running `args`; return its path."""
        config = json.loads(BASE_CONFIG.read_text())
        config["process"]["args"] = list(args)
        config["process"]["terminal"] = False
        config["root"] = {"path": str(self.rootfs), "readonly": True}
        config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{cid}"
        path = self.work / "bundles" / cid
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(config))
        return str(path)

    def call(self, *args: str, root: Path | None = None, check: bool = True) -> Result:
        """Run `runtime --root ROOT args...` (stdin /dev/null, output to files); time and reap it."""
        out, err = str(self.work / "stdout"), str(self.work / "stderr")
        wr = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, out, wr, 0o644),
            (os.POSIX_SPAWN_OPEN, 2, err, wr, 0o644),
        ]
        argv = [self.path, "--root", str(root or self.root), *args]
        start = time.perf_counter_ns()
        pid = os.posix_spawn(self.path, argv, os.environ, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        ns = time.perf_counter_ns() - start
        res = Result(os.waitstatus_to_exitcode(status), ns, usage.ru_maxrss,
                     Path(out).read_text(errors="replace"), Path(err).read_text(errors="replace"))
        if check and res.rc != 0:
            last = (res.err.strip().splitlines() or ["(no stderr)"])[-1]
            raise BenchError(f"{self.label} {' '.join(args)} exited {res.rc}: {last}")
        return res

    def create(self, *args: str, root: Path | None = None) -> tuple[str, Result]:
        cid = self.new_id()
        return cid, self.call("create", "--bundle", self.bundle(cid, *args), cid, root=root)

    def state(self, cid: str) -> dict[str, object]:
        return dict(json.loads(self.call("state", cid).out))

    def wait_stopped(self, cid: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.state(cid).get("status") != "stopped":
            if time.monotonic() > deadline:
                raise BenchError(f"{self.label}: {cid} did not stop within {timeout}s")
            time.sleep(0.005)

    def cleanup(self) -> None:
        """delete --force every container in every state dir of ours, then drop the temp dir."""
        for root in (r for r in (self.root, self.list_root) if r.is_dir()):
            res = self.call("list", "--quiet", root=root, check=False)
            for cid in res.out.split():
                self.call("delete", "--force", cid, root=root, check=False)
        shutil.rmtree(self.work, ignore_errors=True)


def remove_cgroups(parent: str = CGROUP_PARENT) -> list[str]:
    """rmdir `parent` (children first) in every cgroup hierarchy; return what could not go."""
    left = []
    for top in glob.glob(f"/sys/fs/cgroup/{parent}") + glob.glob(f"/sys/fs/cgroup/*/{parent}"):
        for dirpath, _, _ in os.walk(top, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError as exc:
                left.append(f"{dirpath}: {exc.strerror}")
    return left


def machine() -> dict[str, object]:
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "cgroup": "v2" if v2 else "v1",
        "python": platform.python_version(),
    }


def version(rt: Runtime) -> str:
    return rt.call("--version").out.splitlines()[0]
