"""Linux namespaces (config-linux.md "Namespaces"): new ones, shared ones, joined by path,
user namespaces with id mappings, the cgroup and time namespaces."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from spec_support import (
    NAMESPACE_PROC_NAMES,
    Containers,
    MountNamespace,
    assert_failed_cleanly,
    kill_and_reap,
    mountinfo_lines,
    ns_link,
    parse_proc_cgroup,
    placement_hierarchies,
    proc_status,
    wait_for_file_text,
)

SLEEP = ["sleep", "100"]


def started(ctr: Containers, b) -> int:
    created = ctr.create(b)
    ctr.start(b.id)
    assert created.pid
    return created.pid


def test_requested_namespaces_are_new(ctr: Containers) -> None:
    b = ctr.bundle(SLEEP)
    b.add_namespace("cgroup")
    pid = started(ctr, b)
    for kind in ("pid", "network", "ipc", "uts", "mount", "cgroup"):
        proc_name = NAMESPACE_PROC_NAMES[kind]
        assert ns_link(pid, proc_name) != ns_link("self", proc_name), f"{kind} namespace shared"


def test_unrequested_namespaces_are_shared(ctr: Containers) -> None:
    b = ctr.bundle(SLEEP)
    for kind in ("uts", "ipc", "network"):
        b.drop_namespace(kind)
    b.config.pop("hostname")
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/sys"]
    pid = started(ctr, b)
    for kind in ("uts", "ipc", "net", "user", "cgroup"):
        assert ns_link(pid, kind) == ns_link("self", kind), f"{kind} namespace not shared"
    for kind in ("pid", "mnt"):
        assert ns_link(pid, kind) != ns_link("self", kind)


def test_pid_namespace(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"])
    lines = ctr.output(b).split()
    assert lines[0] == "1"
    assert int(lines[1]) <= 3, "the container's /proc shows host processes"


def test_uts_namespace_hostname(ctr: Containers) -> None:
    host_name = socket.gethostname()
    b = ctr.bundle(["hostname"], hostname="st-uts-host")
    assert ctr.output(b) == "st-uts-host\n"
    assert socket.gethostname() == host_name


def test_network_namespace_has_only_lo(ctr: Containers) -> None:
    b = ctr.bundle(["cat", "/proc/net/dev"])
    out = ctr.output(b)
    ifaces = [line.split(":")[0].strip() for line in out.splitlines() if ":" in line]
    assert ifaces == ["lo"], out


def test_join_network_namespace_by_path(ctr: Containers) -> None:
    holder = subprocess.Popen(["unshare", "--net", "sleep", "100"], stdin=subprocess.DEVNULL)
    try:
        host_net = ns_link("self", "net")
        deadline = time.monotonic() + 5
        while ns_link(holder.pid, "net") == host_net and time.monotonic() < deadline:
            time.sleep(0.01)
        target = ns_link(holder.pid, "net")
        assert target != host_net
        b = ctr.bundle(SLEEP)
        b.add_namespace("network", f"/proc/{holder.pid}/ns/net")
        pid = started(ctr, b)
        assert ns_link(pid, "net") == target
        ctr.delete(b.id, force=True)
    finally:
        kill_and_reap(holder)


def test_join_another_containers_namespaces(ctr: Containers) -> None:
    """Pod style: the second container joins the first one's net, ipc and uts namespaces."""
    first = ctr.bundle(SLEEP, hostname="st-pod-host")
    p1 = started(ctr, first)
    second = ctr.bundle(["hostname"])
    second.config.pop("hostname")
    for kind, proc_name in (("network", "net"), ("ipc", "ipc"), ("uts", "uts")):
        second.add_namespace(kind, f"/proc/{p1}/ns/{proc_name}")
    created = ctr.create(second)
    assert created.pid
    for proc_name in ("net", "ipc", "uts"):
        assert ns_link(created.pid, proc_name) == ns_link(p1, proc_name)
    assert ns_link(created.pid, "pid") != ns_link(p1, "pid")
    ctr.start(second.id)
    ctr.wait_stopped(second.id)
    assert (second.path / f"{second.id}.stdout").read_text() == "st-pod-host\n"


def userns_bundle(ctr: Containers, args: list[str]):
    b = ctr.bundle(args)
    b.add_namespace("user")
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    return b


def test_user_namespace_mappings(ctr: Containers) -> None:
    b = userns_bundle(
        ctr, ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; echo ready; sleep 100"]
    )
    pid = started(ctr, b)
    out = wait_for_file_text(b.path / f"{b.id}.stdout", "ready")
    rows = [line.split() for line in out.splitlines()[:2]]
    assert rows == [["0", "100000", "65536"], ["0", "100000", "65536"]], out
    assert out.splitlines()[2] == "0"
    status = proc_status(pid)
    assert status["Uid"].split() == ["100000"] * 4
    assert status["Gid"].split() == ["100000"] * 4
    assert ns_link(pid, "user") != ns_link("self", "user")


def test_user_namespace_cgroup_placement(ctr: Containers) -> None:
    """A user namespace's root has no rights over the host's cgroups: the runtime still puts
    the init, and a process exec'd into the container, in cgroupsPath everywhere."""
    b = userns_bundle(ctr, ["sleep", "100"])
    pid = started(ctr, b)
    pid_file = b.path / "exec.pid"
    res = ctr.rt("exec", "--detach", "--pid-file", str(pid_file), b.id, "sleep", "100")
    assert res.returncode == 0, res.stderr
    for who in (pid, int(pid_file.read_text())):
        paths = parse_proc_cgroup(Path(f"/proc/{who}/cgroup").read_text())
        for key in placement_hierarchies():
            assert paths.get(key) == b.linux["cgroupsPath"], (who, key, paths)


def test_user_namespace_file_ownership(ctr: Containers) -> None:
    """Files owned by host root are unmapped (overflow id) inside; the mapped root can still
    run from a world-readable rootfs, and its writes land as the mapped host id."""
    b = userns_bundle(ctr, ["sh", "-c", "stat -c %u /etc/passwd; touch /mnt/w/new"])
    shared = b.path / "shared"
    shared.mkdir()
    os.chown(shared, 100000, 100000)
    (b.rootfs / "mnt" / "w").mkdir()  # host root owns the rootfs: the mapped root can't mkdir
    b.mount(destination="/mnt/w", type="bind", source=str(shared), options=["rbind", "rw"])
    out = ctr.output(b)
    assert out.split() == ["65534"], out
    st = (shared / "new").stat()
    assert (st.st_uid, st.st_gid) == (100000, 100000)


def test_cgroup_namespace(ctr: Containers) -> None:
    b = ctr.bundle(["cat", "/proc/self/cgroup"])
    b.add_namespace("cgroup")
    out = ctr.output(b)
    paths = parse_proc_cgroup(out)
    assert paths, out
    assert all(p == "/" for p in paths.values()), out


@pytest.mark.runc_xfail(reason="the time namespace (linux.timeOffsets) is not supported")
def test_time_namespace_offsets(ctr: Containers) -> None:
    if not Path("/proc/self/ns/time").exists():
        pytest.skip("kernel without time namespaces")
    b = ctr.bundle(["sh", "-c", "cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime"])
    b.add_namespace("time")
    b.linux["timeOffsets"] = {
        "monotonic": {"secs": 7 * 86400, "nanosecs": 0},
        "boottime": {"secs": 1000 * 86400, "nanosecs": 0},
    }
    lines = ctr.output(b).splitlines()
    offsets = {line.split()[0]: line.split()[1:] for line in lines[:2]}
    assert offsets["monotonic"] == [str(7 * 86400), "0"]
    assert offsets["boottime"] == [str(1000 * 86400), "0"]
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert int(lines[2]) >= host_uptime + 1000 * 86400 - 5


def test_loopback_is_up_in_a_new_network_namespace(ctr: Containers) -> None:
    """In a new network namespace lo is up (IFF_UP), as runc leaves it: 127.0.0.1 works."""
    b = ctr.bundle(["cat", "/sys/class/net/lo/flags"])
    assert int(ctr.output(b).strip(), 16) & 0x1, "lo is down"


# --------------------------------------------------------------------------------------------
# The mount namespace: joined by path, or the caller's own (no "mount" entry)
# --------------------------------------------------------------------------------------------


def no_mount_ns_bundle(ctr: Containers, args: list[str]):
    b = ctr.bundle(args)
    b.drop_namespace("mount")
    del b.linux["maskedPaths"], b.linux["readonlyPaths"]  # refused without a mount namespace
    (b.rootfs / "only-in-rootfs").write_text("")
    return b


@pytest.mark.runc_xfail(reason="leaves the rootfs bind and every config mount in the caller's "
                        "mount namespace after delete")
def test_no_mount_entry_shares_the_callers_mount_namespace(
        ctr: Containers, own_mntns: MountNamespace) -> None:
    """No "mount" entry: the container is in its caller's mount namespace, sees only its
    rootfs, and delete leaves that namespace's mount table as it found it."""
    b = no_mount_ns_bundle(ctr, ["sh", "-c", "ls /; head -1 /proc/self/mountinfo"])
    before = own_mntns.mountinfo()
    try:
        created = ctr.create(b, preexec=own_mntns.enter)
        assert ns_link(created.pid, "mnt") == ns_link(own_mntns.proc.pid, "mnt")
        assert any(f" {b.rootfs}/proc " in line for line in own_mntns.mountinfo())
        ctr.start(b.id)
        ctr.wait_stopped(b.id)
        out = (b.path / f"{b.id}.stdout").read_text()
        assert "only-in-rootfs" in out.split() and "work" not in out.split(), out
    finally:
        res = ctr.rt("delete", "--force", b.id, preexec=own_mntns.enter)
    assert res.returncode == 0, res.describe()
    assert own_mntns.mountinfo() == before


def test_no_mount_entry_with_masked_paths_is_refused(
        ctr: Containers, own_mntns: MountNamespace) -> None:
    b = ctr.bundle(["true"])
    b.drop_namespace("mount")
    before = own_mntns.mountinfo()
    res = ctr.create(b, preexec=own_mntns.enter, check=False).result
    assert_failed_cleanly(ctr, b, res,
                          "unable to restrict sys entries without a private MNT namespace")
    assert own_mntns.mountinfo() == before


def test_join_mount_namespace_by_path(ctr: Containers, own_mntns: MountNamespace) -> None:
    b = ctr.bundle(["cat", "/marker"])
    (b.rootfs / "marker").write_text("in the joined namespace\n")
    b.drop_namespace("mount")
    b.add_namespace("mount", own_mntns.path)
    created = ctr.create(b)
    assert ns_link(created.pid, "mnt") == ns_link(own_mntns.proc.pid, "mnt")
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    assert (b.path / f"{b.id}.stdout").read_text() == "in the joined namespace\n"
    assert not [line for line in mountinfo_lines() if str(b.path) in line]


def test_user_namespace_bind_source_out_of_its_reach(ctr: Containers) -> None:
    """A bind source below a directory only the host's root may enter is opened by the runtime
    before the user namespace exists: the container's root still gets it."""
    b = userns_bundle(ctr, ["cat", "/mnt/src/file", "/mnt/file"])
    secret = b.path / "secret"
    (secret / "src").mkdir(parents=True)
    secret.chmod(0o700)
    (secret / "src" / "file").write_text("from a directory\n")
    (secret / "file").write_text("a file\n")
    (secret / "file").chmod(0o644)
    (b.rootfs / "mnt" / "src").mkdir()
    (b.rootfs / "mnt" / "file").write_text("")
    b.mount(destination="/mnt/src", type="bind", source=str(secret / "src"),
            options=["rbind", "ro"])
    b.mount(destination="/mnt/file", type="bind", source=str(secret / "file"),
            options=["bind", "ro"])
    assert ctr.output(b) == "from a directory\na file\n"
