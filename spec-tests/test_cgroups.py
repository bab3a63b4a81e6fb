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
    assert_failed_cleanly,
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


def test_kill_all_on_stopped_container_without_pid_namespace(ctr: Containers) -> None:
    """containerd and podman send `kill --all <id> 9` after the init of a container without
    its own pid namespace has exited: it must succeed and kill what is left in the cgroup."""
    b = ctr.bundle(["sh", "-c", "sleep 100 & echo $!"])
    b.drop_namespace("pid")
    run = ctr.run(b, delete=False)
    leftover = int(run.stdout.strip())  # no pid namespace: this is the host pid
    assert pid_alive(leftover), "the background sleep did not outlive the init"
    assert cgroup_procs(ctr, b.id) == [leftover]
    res = ctr.kill(b.id, "9", all=True, check=False)
    assert res.returncode == 0, res.describe()
    assert wait_pid_gone(leftover, 5), "kill --all left the orphaned sleep alive"
    assert ctr.state(b.id)["status"] == "stopped"
    ctr.delete(b.id)
    assert ctr.cgroup_dirs(b.id) == []


# --------------------------------------------------------------------------------------------
# Resource limits, checked in the cgroup files and by behaviour (v1 hierarchy)
# --------------------------------------------------------------------------------------------


def read_cg(ctr: Containers, cid: str, controller: str, name: str) -> str:
    return cgroup_file(controller, ctr.res.cgroup_path(cid), name).read_text().strip()


@pytest.mark.skipif(not V1, reason="host is not on cgroup v1")
@pytest.mark.needs_probe
def test_memory_limit_oom_kills_hog(ctr: Containers, probe: str) -> None:
    """A process allocating 100 MiB under a 32 MiB limit (no swap) is OOM-killed: `run` exits
    128+SIGKILL and the memory cgroup counts an OOM kill."""
    limit = 32 * 1024 * 1024
    b = ctr.bundle([probe, "alloc", "100"])
    b.linux["resources"] = {"memory": {"limit": limit, "swap": limit}}
    b.write()
    out = b.path / "run.out"
    with open(out, "wb") as f:
        res = ctr.rt("run", "--keep", "--bundle", str(b.path), b.id, stdout=f, stderr=f,
                     timeout=60)
    assert res.returncode == 137, f"{res.describe()}\noutput: {out.read_text()!r}"
    assert "allocated" not in out.read_text()
    assert read_cg(ctr, b.id, "memory", "memory.limit_in_bytes") == str(limit)
    assert read_cg(ctr, b.id, "memory", "memory.memsw.limit_in_bytes") == str(limit)
    assert int(read_cg(ctr, b.id, "memory", "memory.max_usage_in_bytes")) <= limit
    oom = dict(line.split() for line in
               read_cg(ctr, b.id, "memory", "memory.oom_control").splitlines())
    if "oom_kill" in oom:  # kernels >= 4.13
        assert int(oom["oom_kill"]) >= 1, oom
    ctr.delete(b.id)


@pytest.mark.skipif(not V1, reason="host is not on cgroup v1")
def test_cpu_quota_throttles(ctr: Containers) -> None:
    """cpu.quota/period land in cpu.cfs_quota_us/cpu.cfs_period_us, and a busy loop under a
    10% quota gets about 10% of a CPU (cpuacct.usage) and is throttled (cpu.stat)."""
    b = ctr.bundle(["sh", "-c", "while :; do :; done"])
    b.linux["resources"] = {"cpu": {"quota": 10000, "period": 100000}}
    ctr.create(b)
    assert read_cg(ctr, b.id, "cpu", "cpu.cfs_quota_us") == "10000"
    assert read_cg(ctr, b.id, "cpu", "cpu.cfs_period_us") == "100000"
    ctr.start(b.id)
    time.sleep(0.2)
    before, t0 = int(read_cg(ctr, b.id, "cpuacct", "cpuacct.usage")), time.monotonic()
    time.sleep(1.0)
    used = int(read_cg(ctr, b.id, "cpuacct", "cpuacct.usage")) - before
    elapsed = time.monotonic() - t0
    assert 0 < used / 1e9 < 0.35 * elapsed, f"{used / 1e9:.3f}s of CPU in {elapsed:.3f}s"
    stat = dict(line.split() for line in read_cg(ctr, b.id, "cpu", "cpu.stat").splitlines())
    assert int(stat["nr_throttled"]) > 0, stat
    ctr.kill(b.id, "9")
    ctr.wait_stopped(b.id)


@pytest.mark.skipif(not V1, reason="host is not on cgroup v1")
def test_cpuset_cpus(ctr: Containers) -> None:
    cpu = max(os.sched_getaffinity(0))
    b = ctr.bundle(["grep", "^Cpus_allowed_list:", "/proc/self/status"])
    b.linux["resources"] = {"cpu": {"cpus": str(cpu)}}
    ctr.create(b)
    assert read_cg(ctr, b.id, "cpuset", "cpuset.cpus") == str(cpu)
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    out = (b.path / f"{b.id}.stdout").read_text()
    assert out.split() == ["Cpus_allowed_list:", str(cpu)], out


DEVICE_PROBE = ("{ head -c1 /dev/urandom >/dev/null; } 2>&1; echo urandom=$?; "
                "{ echo x >/dev/null; } 2>&1; echo null=$?")


@pytest.mark.runc_xfail(
    reason="runc appends its default device allow-list (null, zero, full, random, urandom, tty, "
    "ptmx, ...) after linux.resources.devices, so a rule denying c 1:9 is overridden"
)
def test_device_rule_denies_urandom(ctr: Containers) -> None:
    """linux.resources.devices entries apply in the listed order: denying c 1:9 makes
    /dev/urandom unusable while /dev/null keeps working."""
    b = ctr.bundle(["sh", "-c", DEVICE_PROBE])
    b.linux["resources"] = {"devices": [
        {"allow": False, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    ]}
    out = ctr.output(b)
    assert "/dev/urandom: Operation not permitted" in out and "urandom=1" in out, out
    assert "null=0" in out, out


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse on this host")
@pytest.mark.parametrize("allowed", [False, True])
def test_device_allow_list(ctr: Containers, allowed: bool) -> None:
    """With `deny all` first, a device node from linux.devices (/dev/fuse, c 10:229) cannot be
    opened unless a later entry allows it; the default devices keep working."""
    b = ctr.bundle(["sh", "-c", "{ head -c0 /dev/fuse; } 2>&1; echo fuse=$?; "
                                "{ echo x >/dev/null; } 2>&1; echo null=$?"])
    b.linux["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                           "fileMode": 0o666, "uid": 0, "gid": 0}]
    rules = [{"allow": False, "access": "rwm"}]
    if allowed:
        rules.append({"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"})
    b.linux["resources"] = {"devices": rules}
    ctr.create(b)
    listed = read_cg(ctr, b.id, "devices", "devices.list").splitlines()
    assert "a *:* rwm" not in listed
    assert ("c 10:229 rw" in listed) == allowed, listed
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    out = (b.path / f"{b.id}.stdout").read_text()
    if allowed:
        assert "fuse=0" in out, out
    else:
        assert "/dev/fuse: Operation not permitted" in out and "fuse=1" in out, out
    assert "null=0" in out, out


@pytest.mark.skipif(not V1, reason="host is not on cgroup v1")
def test_update_individual_flags(ctr: Containers) -> None:
    """runc's per-resource `update` flags change the live limits of a running container."""
    b = ctr.bundle(["sleep", "100"])
    ctr.create(b)
    ctr.start(b.id)
    for args in (["--cpu-quota", "20000", "--cpu-period", "100000"],
                 ["--memory", "64m"],
                 ["--pids-limit", "30"]):
        res = ctr.rt("update", *args, b.id)
        assert res.returncode == 0, res.describe()
        assert res.stdout == "" and res.stderr == "", res.describe()
    assert read_cg(ctr, b.id, "cpu", "cpu.cfs_quota_us") == "20000"
    assert read_cg(ctr, b.id, "cpu", "cpu.cfs_period_us") == "100000"
    assert read_cg(ctr, b.id, "memory", "memory.limit_in_bytes") == str(64 * 1024 * 1024)
    assert read_cg(ctr, b.id, "pids", "pids.max") == "30"
    assert ctr.state(b.id)["status"] == "running"


UNLIMITED = "9223372036854771712"  # memory.limit_in_bytes when unlimited (page-rounded)


@pytest.mark.skipif(not V1, reason="host is not on cgroup v1")
def test_update_cpu_share_flag(ctr: Containers) -> None:
    """runc's flag is --cpu-share (singular)."""
    b = ctr.bundle(["sleep", "100"])
    ctr.create(b)
    ctr.start(b.id)
    res = ctr.rt("update", "--cpu-share", "512", b.id)
    assert res.ok and res.stderr == "", res.describe()
    assert read_cg(ctr, b.id, "cpu", "cpu.shares") == "512"


@pytest.mark.skipif(not (V1 and (CG / "memory" / "memory.memsw.limit_in_bytes").exists()),
                    reason="host is not on cgroup v1 with swap accounting")
def test_update_memory_unlimited_lifts_swap_limit(ctr: Containers) -> None:
    """`update --memory -1` on a container with a memory and a swap limit makes both
    unlimited (as runc): the old memory+swap limit would otherwise stay below the new one."""
    b = ctr.bundle(["sleep", "100"])
    b.linux["resources"] = {"memory": {"limit": 64 << 20, "swap": 128 << 20}}
    ctr.create(b)
    ctr.start(b.id)
    res = ctr.rt("update", "--memory", "-1", b.id)
    assert res.ok and res.stderr == "", res.describe()
    assert read_cg(ctr, b.id, "memory", "memory.limit_in_bytes") == UNLIMITED
    assert read_cg(ctr, b.id, "memory", "memory.memsw.limit_in_bytes") == UNLIMITED


@pytest.mark.skipif(not V1, reason="host is not on cgroup v1")
def test_update_shorter_period_and_quota_under_a_limited_parent(ctr: Containers) -> None:
    """Under a parent limited to one CPU, a quota of half a CPU moves to a 10x shorter period:
    the new period alone (old quota over it: 5 CPUs) is refused by the kernel, so the runtime
    writes it again after the quota, as runc does."""
    b = ctr.bundle(["sleep", "100"])
    parent = ctr.res.cgroup_path(b.id)
    b.linux["cgroupsPath"] = f"{parent}/ct"
    b.linux["resources"] = {"cpu": {"quota": 50000, "period": 100000}}
    parent_dir = cgroup_file("cpu", parent, "")
    parent_dir.mkdir(parents=True)
    try:
        (parent_dir / "cpu.cfs_quota_us").write_text("100000")
        ctr.create(b)
        ctr.start(b.id)
        res = ctr.rt("update", "--cpu-period", "10000", "--cpu-quota", "5000", b.id)
        assert res.ok and res.stderr == "", res.describe()
        assert (parent_dir / "ct" / "cpu.cfs_period_us").read_text().strip() == "10000"
        assert (parent_dir / "ct" / "cpu.cfs_quota_us").read_text().strip() == "5000"
    finally:
        ctr.delete(b.id, force=True, check=False)
        for root in cgroup_roots():  # the parent, made by us here and by the runtime elsewhere
            with contextlib.suppress(OSError):
                (root / parent.lstrip("/")).rmdir()


@pytest.mark.skipif(not V1, reason="host is not on cgroup v1")
def test_update_pids_limit_enforced(ctr: Containers) -> None:
    """A lowered pids limit applies to forks made after the update."""
    b = ctr.bundle(["sh", "-c", "echo ready; read x; "
                                "for i in 1 2 3 4 5 6; do sleep 5 & done 2>&1; echo forked"])
    b.write()
    r, w = os.pipe()
    try:
        ctr.create(b, stdin=r)
        os.close(r)
        r = -1
        ctr.start(b.id)
        wait_for_file_text(b.path / f"{b.id}.stdout", "ready")
        res = ctr.rt("update", "--pids-limit", "3", b.id)
        assert res.returncode == 0, res.describe()
        assert read_cg(ctr, b.id, "pids", "pids.max") == "3"
        os.write(w, b"go\n")
    finally:
        if r >= 0:
            os.close(r)
        os.close(w)
    ctr.wait_stopped(b.id, timeout=20)
    out = (b.path / f"{b.id}.stdout").read_text() + (b.path / f"{b.id}.stderr").read_text()
    assert "can't fork" in out or "Resource temporarily unavailable" in out, out


@pytest.mark.skipif(not V1, reason="host is not on cgroup v1")
def test_update_memory_below_usage_fails(ctr: Containers) -> None:
    """memory.checkBeforeUpdate: a new limit below what the container uses is refused (20 MiB
    held in a tmpfs file against a 4 MiB limit) and the old limit stays."""
    b = ctr.bundle(["sh", "-c", "head -c 20971520 /dev/zero > /tmp/hold && echo held; "
                                "sleep 100"])
    b.mount(destination="/tmp", type="tmpfs", source="tmpfs")
    b.linux["resources"] = {"memory": {"limit": 256 * 1024 * 1024}}
    ctr.create(b)
    ctr.start(b.id)
    wait_for_file_text(b.path / f"{b.id}.stdout", "held")
    res = ctr.rt("update", "--resources=-", b.id,
                 input='{"memory": {"limit": 4194304, "checkBeforeUpdate": true}}')
    assert res.returncode != 0
    assert "limit" in res.stderr and "Traceback" not in res.stderr, res.describe()
    assert read_cg(ctr, b.id, "memory", "memory.limit_in_bytes") == str(256 * 1024 * 1024)


@pytest.mark.skipif(not V1, reason="the devices controller's list exists on cgroup v1 only")
def test_device_rule_stray_access_letters_are_dropped(ctr: Containers) -> None:
    """A device rule's access letters other than r, w and m are dropped (as runc): "rwa" is
    "rw"; a rule with none of them fails create, leaving nothing."""
    b = ctr.bundle(["grep", "1:11 ", "/sys/fs/cgroup/devices/devices.list"])
    b.linux["resources"] = {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rwa"},
    ]}
    assert ctr.output(b) == "c 1:11 rw\n"
    bad = ctr.bundle(["true"])
    bad.linux["resources"] = {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "xyz"},
    ]}
    assert_failed_cleanly(ctr, bad, ctr.create(bad, check=False).result)
