"""Cgroups: v1 and v2 placement on this host's real hierarchies, v2 resource files on a fake
tree (this hybrid host's cgroup2 mount has no memory, cpu, io or pids controllers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ocirt.cgroups import detect, resources
from ocirt.cgroups.fs import Manager, resolve_paths
from ocirt.errors import ConfigError

HS = detect.hierarchies()
UNIFIED = next((h for h in HS if h.key == detect.UNIFIED), None)


def test_layout_detection() -> None:
    assert detect.layout(HS) in ("v1", "v2", "hybrid")
    fake = [detect.Hierarchy("memory", ("memory",), "/sys/fs/cgroup/memory", "/"),
            detect.Hierarchy("", (), "/sys/fs/cgroup/unified", "/")]
    assert detect.layout(fake) == "hybrid"
    assert detect.layout(fake[1:]) == "v2"
    assert detect.layout(fake[:1]) == "v1"


def test_mountinfo_parsing(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "31 25 0:27 /ctr /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
        "32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
        "33 25 0:29 / /tmp rw - tmpfs tmpfs rw\n")
    found = {h.key: h for h in detect.hierarchies(str(info))}
    assert set(found) == {"cpu,cpuacct", "name=systemd", ""}
    assert found["name=systemd"].root == "/ctr"
    paths = resolve_paths("/a/b", "c1", list(found.values()))
    assert paths["cpu,cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct/a/b"
    assert paths[""] == "/sys/fs/cgroup/unified/a/b"


def test_relative_and_default_paths_are_below_our_own_cgroup() -> None:
    own = detect.own_cgroups()
    paths = resolve_paths("", "c1", HS)
    for h in HS:
        assert paths[h.key] == os.path.join(h.mountpoint, own[h.key].lstrip("/"), "c1")
    with pytest.raises(Exception, match="invalid cgroupsPath"):
        resolve_paths("../../../x", "c1", [detect.Hierarchy("pids", ("pids",), "/p", "/")])


@pytest.mark.skipif(UNIFIED is None, reason="no cgroup2 hierarchy mounted on this host")
def test_v2_procs_freeze_and_kill_on_the_real_unified_mount() -> None:
    """The unified hierarchy alone, as on a pure v2 host: place, freeze, thaw, kill, remove."""
    assert UNIFIED is not None
    m = Manager({"": os.path.join(UNIFIED.mountpoint, f"ocirt-test-{os.getpid()}")})
    m.create()
    proc = subprocess.Popen(["sleep", "60"])
    try:
        m.add(proc.pid)
        assert m.pids() == [proc.pid]
        m.freeze()
        events = Path(m.paths[""], "cgroup.events")
        deadline = time.monotonic() + 5
        while "frozen 1" not in events.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert m.frozen() and "frozen 1" in events.read_text()
        m.thaw()
        assert not m.frozen()
        m.signal_all(signal.SIGKILL)
        assert proc.wait(timeout=5) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()
        m.destroy()
    assert not os.path.exists(m.paths[""])


def _fake_v2(tmp_path: Path) -> tuple[Path, Path]:
    mount = tmp_path / "cgroup"
    leaf = mount / "pod" / "c1"
    leaf.mkdir(parents=True)
    for d in (mount, mount / "pod"):
        (d / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
        (d / "cgroup.subtree_control").write_text("")
    for name in ("memory.max", "memory.low", "memory.swap.max", "cpu.weight", "cpu.max",
                 "cpuset.cpus", "pids.max", "io.weight", "io.max", "hugetlb.2MB.max",
                 "memory.high"):
        (leaf / name).write_text("")
    return mount, leaf


def test_v2_resources_on_a_fake_tree(tmp_path: Path) -> None:
    mount, leaf = _fake_v2(tmp_path)
    resources.apply({"": str(leaf)}, {
        "memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 10},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0,
                                                             "rate": 1048576}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.high": "50000000"},
    }, v2_mount=str(mount))
    read = {p.name: p.read_text() for p in leaf.iterdir()}
    assert read["memory.max"] == str(64 << 20)
    assert read["memory.swap.max"] == str(32 << 20)  # v2 swap excludes memory
    assert read["memory.low"] == str(32 << 20)
    assert read["cpu.weight"] == "39"                 # 1 + (1024-2)*9999/262142
    assert read["cpu.max"] == "50000 100000"
    assert read["cpuset.cpus"] == "0"
    assert read["pids.max"] == "10"
    assert read["io.weight"] == "default 4950"  # 1 + (500-10)*9999/990
    assert read["io.max"] == "8:0 rbps=1048576"
    assert read["hugetlb.2MB.max"] == "4194304"
    assert read["memory.high"] == "50000000"
    enabled = (mount / "cgroup.subtree_control").read_text().split()
    assert {"+memory", "+cpu", "+pids", "+io", "+hugetlb", "+cpuset"} <= set(enabled)
    assert (mount / "pod" / "cgroup.subtree_control").read_text()


def test_missing_files_name_the_field(tmp_path: Path) -> None:
    _, leaf = _fake_v2(tmp_path)
    with pytest.raises(ConfigError, match=r"linux.resources.rdma: rdma.max is not available"):
        resources.apply({"": str(leaf)}, {"rdma": {"mlx5_1": {"hcaHandles": 3}}},
                        v2_mount=str(tmp_path / "cgroup"))
    with pytest.raises(ConfigError, match="disableOOMKiller"):
        resources.v2_writes({"memory": {"disableOOMKiller": True}})


def test_v1_writes_order_swap_before_a_raised_limit() -> None:
    files = [w.file for w in resources.v1_writes({"memory": {"limit": 100, "swap": 200}})]
    assert files == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    rules = [w.value for w in resources.v1_writes({"devices": [{"allow": False,
                                                                "access": "rwm"}]})]
    assert rules[0] == "a *:* rwm" and "c 136:* rwm" in rules


def test_conversions() -> None:
    assert resources.shares_to_weight(2) == 1
    assert resources.shares_to_weight(262144) == 10000
    assert resources.blkio_to_io_weight(10) == 1
    assert resources.blkio_to_io_weight(1000) == 10000


def test_systemd_paths() -> None:
    from ocirt.cgroups import systemd

    assert systemd.expand_slice("machine.slice") == "/machine.slice"
    assert systemd.expand_slice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert systemd.expand_slice("-.slice") == "/"
    assert systemd.cgroup_path("machine.slice:libpod:abc", "x") == "/machine.slice/libpod-abc.scope"
    assert systemd.cgroup_path("kubepods-besteffort.slice:cri-containerd:id1", "x") == \
        "/kubepods.slice/kubepods-besteffort.slice/cri-containerd-id1.scope"
    assert systemd.cgroup_path("", "c1") == "/system.slice/ocirt-c1.scope"
    args = systemd.start_args("machine.slice", "libpod-abc.scope", 42, "abc")
    assert args[:6] == ["call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                        "org.freedesktop.systemd1.Manager", "StartTransientUnit",
                        "ssa(sv)a(sa(sv))"]
    props = args[8:-1]
    assert args[6:8] == ["libpod-abc.scope", "replace"] and args[-1] == "0"
    assert props[0] == "5" and props[1:5] == ["PIDs", "au", "1", "42"]
    assert props[5:8] == ["Slice", "s", "machine.slice"] and "Delegate" in props
    with pytest.raises(ConfigError, match="slice:prefix:name"):
        systemd.cgroup_path("/plain/path", "c1")
    with pytest.raises(ConfigError, match="invalid systemd slice"):
        systemd.expand_slice("a--b.slice")


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd runs on this host")
def test_systemd_driver_without_systemd_is_a_clear_error(tmp_path: Path) -> None:
    from conftest import REPO, ocirt

    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "rootfs").mkdir()
    config = json.loads((REPO / "bundles" / "busybox" / "config.json").read_text())
    config["linux"]["cgroupsPath"] = "machine.slice:ocirt:t1"
    (bundle / "config.json").write_text(json.dumps(config))
    res = ocirt(tmp_path / "state", "--systemd-cgroup", "create", "--bundle", str(bundle), "t1")
    assert res.returncode == 1
    assert res.stderr == ("ocirt: systemd cgroup driver requested (--systemd-cgroup), but systemd "
                          "is not running on this host\n")
    assert not (tmp_path / "state" / "t1").exists()


@pytest.mark.skipif(UNIFIED is None, reason="no cgroup2 hierarchy mounted on this host")
@pytest.mark.parametrize("rules, expect", [
    # the config's own rules, then the defaults (as create applies them)
    ([{"allow": False, "type": "c", "major": 1, "minor": 9, "access": "rwm"}],
     {"urandom_r": 1, "null_w": 0, "zero_r": 0}),
    ([{"allow": False, "access": "rwm"}], {"urandom_r": 0, "null_w": 0, "kmsg_r": 1}),
    ([{"allow": False, "access": "rwm"},
      {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "r"}],
     {"full_w": 1, "full_r": 0, "null_w": 0}),
    ([{"allow": False, "access": "rwm"},
      {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
      {"allow": False, "type": "c", "major": 1, "minor": 7, "access": "w"}],
     {"full_w": 1, "full_r": 0}),
])
def test_v2_device_program(rules: list[dict[str, object]], expect: dict[str, int]) -> None:
    """The eBPF device program on the real unified hierarchy: a process in the cgroup gets
    the same answers cgroup v1 would give (0: allowed, 1: refused)."""
    from ocirt.cgroups import devices_bpf

    assert UNIFIED is not None
    path = os.path.join(UNIFIED.mountpoint, f"ocirt-test-devices-{os.getpid()}")
    os.makedirs(path)
    checks = {"urandom_r": "true </dev/urandom", "zero_r": "true </dev/zero",
              "full_r": "true </dev/full", "kmsg_r": "true </dev/kmsg",
              "null_w": "true >/dev/null", "full_w": "true >/dev/full"}
    try:
        devices_bpf.apply(path, [*rules, *resources.default_device_rules(rules)])
        script = f"echo $$ > {path}/cgroup.procs; " + "; ".join(
            f"{{ {checks[name]}; }} 2>/dev/null; case $? in 0) echo {name}=0;; "
            f"*) echo {name}=1;; esac" for name in expect)
        out = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                             timeout=10).stdout
        got = dict(line.split("=") for line in out.split())
        assert {k: int(v) for k, v in got.items()} == expect
    finally:
        os.rmdir(path)
