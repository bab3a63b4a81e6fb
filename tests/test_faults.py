"""ocirt SIGKILLed at each step of create, start, exec and delete (``OCIRT_TEST_FAULT``): then
`state` still answers in one line or JSON, `delete --force` succeeds, and nothing is left: no
state dir, no cgroup, no container process. A container whose init dies is `stopped`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import OCIRT, ocirt
from support import busybox_bundle

from ocirt.faults import STEPS


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return busybox_bundle(tmp_path, "ocirt-test-faults", args=["sleep", "60"])


def _run(root: Path, *args: str, fault: str = "") -> int:
    env = dict(os.environ, OCIRT_TEST_FAULT=fault)
    return subprocess.run([str(OCIRT), "--root", str(root), *args], env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=60).returncode


def _cgroup_dirs(bundle: Path) -> list[str]:
    from ocirt.cgroups import detect

    return [os.path.join(h.mountpoint, "ocirt-test-faults", bundle.name)
            for h in detect.hierarchies()
            if os.path.isdir(os.path.join(h.mountpoint, "ocirt-test-faults", bundle.name))]


def _container_pids(bundle: Path) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/root") == str(bundle / "rootfs"):
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("step", STEPS)
def test_killed_at_each_step_recovers(root: Path, bundle: Path, step: str) -> None:
    cid = "f1"
    pid_file = bundle / "pid"
    operation = step.split(":")[0]
    if operation == "create":
        assert _run(root, "create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid,
                    fault=step) == -signal.SIGKILL
    else:
        assert _run(root, "create", "--bundle", str(bundle), cid) == 0
        if operation in ("exec", "delete"):
            assert _run(root, "start", cid) == 0
        args = {"start": ["start", cid], "exec": ["exec", "-d", cid, "sleep", "60"],
                "delete": ["delete", "--force", cid]}[operation]
        assert _run(root, *args, fault=step) == -signal.SIGKILL
    res = ocirt(root, "state", cid)
    if res.returncode == 0:
        assert json.loads(res.stdout)["status"] in ("creating", "created", "running", "stopped")
    else:
        assert res.stderr.count("\n") == 1 and "does not exist" in res.stderr, res.stderr
    assert ocirt(root, "delete", "--force", cid).returncode == 0
    assert not (root / cid).exists()
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
