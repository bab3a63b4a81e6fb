"""ocirt SIGKILLed at each step of create, start, exec and delete, from outside: a ptrace tracer
(tests/ptrace_support.py) stops it at the system call that marks the step, records what is on
disk and running there (which proves the step), and kills it. Then `state` still answers in one
line or JSON, `delete --force` succeeds, and nothing is left: no state dir, no cgroup, no
container process. A container whose init dies is `stopped`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import OCIRT, ocirt
from ptrace_support import FORK, RENAME, RMDIR, UNLINK, Point, kill_at
from support import busybox_bundle

PARENT = "ocirt-test-faults"
CID = "f1"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return busybox_bundle(tmp_path, PARENT, args=["sleep", "60"])


def _run(root: Path, *args: str) -> int:
    return subprocess.run([str(OCIRT), "--root", str(root), *args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=60).returncode


def _cgroup_dirs(bundle: Path) -> list[str]:
    """The container's cgroup in each mounted hierarchy (v1 and v2) that has it."""
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[2] in ("cgroup", "cgroup2")]
    return [d for d in (os.path.join(m, PARENT, bundle.name) for m in mounts) if os.path.isdir(d)]


def _container_pids(bundle: Path) -> list[int]:
    """Processes whose root is the bundle's rootfs (the same inode: reading the link would
    give "/" once the root is pivoted in another mount namespace)."""
    rootfs = os.stat(bundle / "rootfs")
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            st = os.stat(f"/proc/{pid}/root")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (rootfs.st_dev, rootfs.st_ino):
            found.append(int(pid))
    return sorted(found)


@dataclass
class Seen:
    """What ocirt had done when it was stopped at the step."""

    state: dict[str, object] | None  # state.json (None: not there)
    fifo: bool  # exec.fifo is there
    cgroups: list[str]
    pids: list[int]  # the container's processes
    pid_file: str | None  # what --pid-file holds (None: not written)

    @classmethod
    def now(cls, cdir: Path, bundle: Path, pid_file: Path) -> Seen:
        state = cdir / "state.json"
        return cls(json.loads(state.read_text()) if state.exists() else None,
                   (cdir / "exec.fifo").exists(), _cgroup_dirs(bundle), _container_pids(bundle),
                   pid_file.read_text() if pid_file.exists() else None)


# Each step: the call ocirt is stopped at (path: the file it names, or an fd of it names), and
# what that point has left: state.json's pid ("-": no state.json, 0: recorded as "creating",
# "init": the init's), exec.fifo, the cgroups (all or none), the container's processes, the
# pid file of the operation killed (create's, exec's; "-": not written).
STEPS = {
    # made and locked its state dir: stopped as it makes exec.fifo
    "create:state-dir": (Point(("mknod", "mknodat"), "{cdir}/exec.fifo"),
                         ("-", False, False, 0, "-")),
    # recorded the container as creating and made its cgroups: stopped as it forks the init
    "create:cgroups": (Point(FORK), (0, True, True, 0, "-")),
    # the init is ready: stopped as it closes its fd of exec.fifo, the first thing after spawning
    "create:spawned": (Point(("close",), "{cdir}/exec.fifo"), (0, True, True, 1, "-")),
    # the init's pid is in state.json (its second save): killed when the rename is done
    "create:state-saved": (Point(RENAME, "{cdir}/state.json", after=True, nth=2),
                           ("init", True, True, 1, "-")),
    # the pid file is in place, the init not yet told so: killed when its rename is done
    "create:pid-file": (Point(RENAME, "{pid_file}", after=True), ("init", True, True, 1, "init")),
    # the init has read the fifo and runs the container's process: stopped as it removes the fifo
    "start:released": (Point(UNLINK, "{cdir}/exec.fifo"), ("init", True, True, 1, "-")),
    # the exec'd process runs: stopped as it moves exec's pid file into place
    "exec:spawned": (Point(RENAME, "{pid_file}"), ("init", False, True, 2, "-")),
    # the container's processes are dead: stopped as it removes the first cgroup
    "delete:killed": (Point(RMDIR), ("init", False, True, 0, "-")),
    # the cgroups are gone: stopped as it removes state.json
    "delete:cgroups-removed": (Point(UNLINK, "{cdir}/state.json"), ("init", False, False, 0, "-")),
}


def _check(seen: Seen, expected: tuple[object, bool, bool, int, object]) -> None:
    state_pid, fifo, cgroups, procs, pid_file = expected
    if state_pid == "-":
        assert seen.state is None
    elif state_pid == 0:
        assert seen.state is not None and seen.state["pid"] == 0
    else:
        assert seen.state is not None and isinstance(seen.state["pid"], int)
        assert seen.state["pid"] > 0
        if procs:
            assert seen.state["pid"] == seen.pids[0]  # the init, the oldest
    assert seen.fifo == fifo
    if cgroups:
        assert seen.state is not None and isinstance(seen.state["cgroup_paths"], dict)
        assert sorted(seen.cgroups) == sorted(seen.state["cgroup_paths"].values())
    else:
        assert seen.cgroups == []
    assert len(seen.pids) == procs
    assert seen.pid_file == (None if pid_file == "-" else str(seen.pids[0]))


@pytest.mark.parametrize("step", STEPS)
def test_killed_at_each_step_recovers(root: Path, bundle: Path, step: str) -> None:
    cdir = root / CID
    operation = step.split(":")[0]
    pid_file = bundle / f"{operation}.pid"
    if operation != "create":
        assert _run(root, "create", "--bundle", str(bundle), CID) == 0
        if operation in ("exec", "delete"):
            assert _run(root, "start", CID) == 0
    args = {"create": ["create", "--bundle", str(bundle), "--pid-file", str(pid_file), CID],
            "start": ["start", CID], "exec": ["exec", "-d", "--pid-file", str(pid_file), CID,
                                              "sleep", "60"],
            "delete": ["delete", "--force", CID]}[operation]
    at, expected = STEPS[step]
    point = Point(at.names, at.path.format(cdir=cdir, pid_file=pid_file), at.after, at.nth)
    killed = kill_at([str(OCIRT), "--root", str(root), *args], point,
                     lambda: Seen.now(cdir, bundle, pid_file))
    assert killed.hit and killed.returncode == -signal.SIGKILL, \
        (f"never {point}", killed.returncode, killed.stderr, killed.calls)
    _check(killed.seen, expected)
    if step == "start:released":  # released indeed: the init runs the container's process
        deadline = time.monotonic() + 10
        while Path(f"/proc/{killed.seen.pids[0]}/cmdline").read_bytes() != b"sleep\x0060\x00":
            assert time.monotonic() < deadline
            time.sleep(0.02)

    res = ocirt(root, "state", CID)
    if step == "start:released":  # the fifo is left, but the init no longer waits on it
        assert res.returncode == 0 and json.loads(res.stdout)["status"] == "running", res
    elif res.returncode == 0:
        assert json.loads(res.stdout)["status"] in ("creating", "created", "running", "stopped")
    else:
        assert res.stderr.count("\n") == 1 and "does not exist" in res.stderr, res.stderr
    assert ocirt(root, "delete", "--force", CID).returncode == 0
    assert not cdir.exists()
    deadline = time.monotonic() + 10
    while _container_pids(bundle) or _cgroup_dirs(bundle):
        assert time.monotonic() < deadline, (_container_pids(bundle), _cgroup_dirs(bundle))
        time.sleep(0.05)


def test_a_dead_init_is_stopped(root: Path, bundle: Path) -> None:
    for started in (False, True):
        cid = f"dead{int(started)}"
        assert _run(root, "create", "--bundle", str(bundle), cid) == 0
        if started:
            assert _run(root, "start", cid) == 0
        pid = json.loads(ocirt(root, "state", cid).stdout)["pid"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while json.loads(ocirt(root, "state", cid).stdout)["status"] != "stopped":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert json.loads(ocirt(root, "state", cid).stdout)["pid"] == 0
        assert ocirt(root, "delete", cid).returncode == 0
