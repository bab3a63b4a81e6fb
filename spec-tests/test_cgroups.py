"""Control groups (config-linux.md "Control groups"): placement at create time, removal at
delete, `kill --all` and forced delete without a pid namespace, and resource limits (read
back from the host's v1 hierarchy)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest
from spec_support import (
    Containers,
    cgroup_roots,
    host_cgroup_controllers,
    parse_proc_cgroup,
    pid_alive,
    wait_for_file_text,
    wait_pid_gone,
)

CG = Path("/sys/fs/cgroup")
V1 = not (CG / "cgroup.controllers").exists()


def controller_hierarchies() -> list[str]:
    """Hierarchy keys of /proc/self/cgroup that carry resource controllers (v1)."""
    return [k for k in host_cgroup_controllers() if k and not k.startswith("name=")]


def cgroup_file(controller: str, cgpath: str, name: str) -> Path:
    return CG / controller / cgpath.lstrip("/") / name


def cgroup_procs(ctr: Containers, cid: str) -> list[int]:
    path = cgroup_file("pids", ctr.res.cgroup_path(cid), "cgroup.procs")
    return [int(x) for x in path.read_text().split()]


def test_cgroup_placement_at_create(ctr: Containers) -> None:
    """Right after create (containerd and conmon read /proc/<pid>/cgroup at once) the init is
    in cgroupsPath in every controller hierarchy."""
    b = ctr.bundle(["sleep", "100"])
    created = ctr.create(b)
    want = b.linux["cgroupsPath"]
    paths = parse_proc_cgroup(Path(f"/proc/{created.pid}/cgroup").read_text())
    keys = controller_hierarchies()
    assert keys
    for key in keys:
        assert paths.get(key) == want, f"{key}: {paths.get(key)!r} != {want!r}"


@pytest.mark.skipif(not (CG / "unified").is_dir(), reason="no hybrid cgroup2 mount on this host")
def test_cgroup_unified_hierarchy_on_hybrid_host(ctr: Containers) -> None:
    b = ctr.bundle(["sleep", "100"])
    created = ctr.create(b)
    paths = parse_proc_cgroup(Path(f"/proc/{created.pid}/cgroup").read_text())
    assert paths.get("") == b.linux["cgroupsPath"], paths


def test_cgroup_removed_on_delete(ctr: Containers) -> None:
    b = ctr.bundle(["true"])
    ctr.create(b)
    assert ctr.cgroup_dirs(b.id)
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    ctr.delete(b.id)
    assert ctr.cgroup_dirs(b.id) == []


def test_default_cgroup_location_cleaned_up(ctr: Containers) -> None:
    """Without linux.cgroupsPath the runtime picks a place, and delete removes it."""
    b = ctr.bundle(["sleep", "100"])
    del b.linux["cgroupsPath"]
    created = ctr.create(b)
    paths = parse_proc_cgroup(Path(f"/proc/{created.pid}/cgroup").read_text())
    mem = paths.get("memory")
    assert mem and mem != host_cgroup_controllers().get("memory"), paths
    mem_dir = CG / "memory" / mem.lstrip("/")
    try:
        assert mem_dir.is_dir()
        ctr.delete(b.id, force=True)
        assert not mem_dir.exists()
    finally:
        for root in cgroup_roots():
            with contextlib.suppress(OSError):
                (root / mem.lstrip("/")).rmdir()


def no_pidns_bundle(ctr: Containers):
    b = ctr.bundle(["sh", "-c", "sleep 100 & sleep 100 & echo ready; exec sleep 100"])
    b.drop_namespace("pid")
    return b


def test_kill_all_without_pid_namespace(ctr: Containers) -> None:
    """kill --all signals every process in the container's cgroup, not only the init."""
    b = no_pidns_bundle(ctr)
    ctr.create(b)
    ctr.start(b.id)
    wait_for_file_text(b.path / f"{b.id}.stdout", "ready")
    pids = cgroup_procs(ctr, b.id)
    assert len(pids) == 3, pids
    ctr.kill(b.id, "9", all=True)
    for pid in pids:
        assert wait_pid_gone(pid, 5), f"pid {pid} survived kill --all"
    ctr.wait_stopped(b.id)


def test_kill_without_all_signals_only_init(ctr: Containers) -> None:
    b = no_pidns_bundle(ctr)
    created = ctr.create(b)
    ctr.start(b.id)
    wait_for_file_text(b.path / f"{b.id}.stdout", "ready")
    pids = cgroup_procs(ctr, b.id)
    ctr.kill(b.id, "9")
    assert wait_pid_gone(created.pid, 5)
    time.sleep(0.1)
    others = [p for p in pids if p != created.pid]
    assert others and all(pid_alive(p) for p in others)


def test_delete_force_without_pid_namespace_kills_all(ctr: Containers) -> None:
    b = no_pidns_bundle(ctr)
    ctr.create(b)
    ctr.start(b.id)
    wait_for_file_text(b.path / f"{b.id}.stdout", "ready")
    pids = cgroup_procs(ctr, b.id)
    assert len(pids) == 3
    ctr.delete(b.id, force=True)
    for pid in pids:
        assert wait_pid_gone(pid, 5), f"pid {pid} survived delete --force"
    assert ctr.cgroup_dirs(b.id) == []


@pytest.mark.skipif(not V1, reason="host is not on cgroup v1")
def test_resource_limits_v1(ctr: Containers) -> None:
    b = ctr.bundle(["sleep", "100"])
    b.linux["resources"] = {
        "memory": {"limit": 64 * 1024 * 1024},
        "pids": {"limit": 20},
        "cpu": {"shares": 512},
        "devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        ],
    }
    ctr.create(b)
    cgpath = b.linux["cgroupsPath"]
    assert cgroup_file("memory", cgpath, "memory.limit_in_bytes").read_text().strip() == str(
        64 * 1024 * 1024
    )
    assert cgroup_file("pids", cgpath, "pids.max").read_text().strip() == "20"
    assert cgroup_file("cpu", cgpath, "cpu.shares").read_text().strip() == "512"
    devices = cgroup_file("devices", cgpath, "devices.list").read_text().splitlines()
    assert "a *:* rwm" not in devices
    assert "c 1:3 rwm" in devices


def test_pids_limit_enforced(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done"])
    b.linux["resources"] = {"pids": {"limit": 4}}
    run = ctr.run(b, timeout=20)
    out = run.stdout + run.stderr
    assert "can't fork" in out or "Resource temporarily unavailable" in out, out


def test_processes_stay_in_cgroup(ctr: Containers) -> None:
    """Children forked in the container are in the same cgroup as the init."""
    b = ctr.bundle(["sh", "-c", "sleep 100 & echo ready; wait"])
    created = ctr.create(b)
    ctr.start(b.id)
    wait_for_file_text(b.path / f"{b.id}.stdout", "ready")
    pids = cgroup_procs(ctr, b.id)
    assert created.pid in pids and len(pids) == 2
    for pid in pids:
        assert os.path.exists(f"/proc/{pid}")


@pytest.mark.skipif(not V1, reason="host is not on cgroup v1")
def test_update_resources_from_stdin(ctr: Containers) -> None:
    """containerd: `update --resources=- <id>` with a LinuxResources object on stdin."""
    b = ctr.bundle(["sleep", "100"])
    b.linux["resources"] = {"pids": {"limit": 20}}
    ctr.create(b)
    ctr.start(b.id)
    cgpath = b.linux["cgroupsPath"]
    res = ctr.rt("update", "--resources=-", b.id,
                 input='{"pids": {"limit": 50}, "memory": {"limit": 33554432}}')
    assert res.returncode == 0, res.describe()
    assert cgroup_file("pids", cgpath, "pids.max").read_text().strip() == "50"
    assert cgroup_file("memory", cgpath, "memory.limit_in_bytes").read_text().strip() == str(
        32 * 1024 * 1024
    )
