"""Shared plumbing for the ocirt-vs-runc benchmarks in bench/.

A `Runtime` wraps one runtime binary with its own temp dir: a busybox rootfs built once with
bundles/mkrootfs, a private `--root` state dir, and one small bundle dir per container whose
config.json (derived from bundles/busybox/config.json) gives the container its own cgroupsPath
under a per-benchmark parent cgroup.

`Runtime.call` hands the command to a `Spawner`: a minimal helper Python (-I -S) that forks,
execs the runtime and reaps it with os.wait4, returning the wall time (perf_counter_ns around
fork..wait4) and ru_maxrss.  Why a helper: Linux folds the hiwater RSS of the memory image a
process had before execve into its ru_maxrss, and a child posix_spawn'ed (vfork) from this
benchmark would inherit our whole ~15 MiB peak, hiding runc's own ~8-10 MiB.  A fork of the
small helper costs only its few MiB of anonymous pages; `Spawner.floor_kb` measures that floor
(the ru_maxrss of /bin/true through the helper) so the output can show it.
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
# the installed commands (make bench runs make test-install first: the recipe of make install)
INSTALLED_BIN = REPO / "build" / "prefix" / "bin"
DEFAULT_A = str(INSTALLED_BIN / "ocirt")
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


HELPER = r"""
import os, sys, time
W = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
for line in sys.stdin.buffer:
    out, err, *argv = line.rstrip(b"\n").split(b"\0")
    start = time.perf_counter_ns()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(os.open(out, W, 0o644), 1)
            os.dup2(os.open(err, W, 0o644), 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    ns = time.perf_counter_ns() - start
    sys.stdout.write(f"{os.waitstatus_to_exitcode(status)} {ns} {usage.ru_maxrss}\n")
    sys.stdout.flush()
"""


class Spawner:
    """The fork/exec/wait4 helper process (see the module docstring); started on first use."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.floor_kb = 0

    def run(self, argv: list[str], out: str, err: str) -> tuple[int, int, int]:
        """Run argv (stdin /dev/null, stdout/stderr to files); return (rc, ns, ru_maxrss KiB)."""
        if self.proc is None:
            self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", HELPER],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self.floor_kb = self.run(["/bin/true"], os.devnull, os.devnull)[2]
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(b"\0".join(a.encode() for a in [out, err, *argv]) + b"\n")
        self.proc.stdin.flush()
        rc, ns, maxrss = self.proc.stdout.readline().split()
        return int(rc), int(ns), int(maxrss)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.communicate()
            self.proc = None


SPAWNER = Spawner()


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
        out, err = self.work / "stdout", self.work / "stderr"
        argv = [self.path, "--root", str(root or self.root), *args]
        rc, ns, maxrss = SPAWNER.run(argv, str(out), str(err))
        res = Result(rc, ns, maxrss, out.read_text(errors="replace"), err.read_text(errors="replace"))
        if check and res.rc != 0:
            last = (res.err.strip().splitlines() or ["(no stderr)"])[-1]
            raise BenchError(f"{self.label} {' '.join(args)} exited {res.rc}: {last}")
        return res

    def create(self, *args: str, root: Path | None = None) -> tuple[str, Result]:
        cid = self.new_id()
        return cid, self.call("create", "--bundle", self.bundle(cid, *args), cid, root=root)

    def state(self, cid: str) -> dict[str, object]:
        out = self.call("state", cid).out
        try:
            return dict(json.loads(out))
        except ValueError:
            raise BenchError(f"{self.label} state {cid}: not JSON: {out[:60]!r}") from None

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


def teardown(built: list[Runtime], script: str) -> None:
    """Every container of every runtime, the spawner, and the cgroup parent (warning on stderr
    for whatever could not be removed)."""
    for rt in built:
        rt.cleanup()
    SPAWNER.close()
    for left in remove_cgroups():
        print(f"{script}: warning: cgroup left behind: {left}", file=sys.stderr)


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
    return (rt.call("--version").out.splitlines() or ["(no version output)"])[0]
