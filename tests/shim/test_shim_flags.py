"""ocish run/create flags for users, security and resources, ``update`` and ``stats``, for real:
real containers on ocirt and on runc (container_fixtures.oc), limits read back from the
container's cgroup and seen in its behaviour. The last tests are parser tests on files written
to a tmp dir (the in-root /etc/passwd reader, the cgroup v2 arithmetic)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from container_support import CGROUP_PARENT, CGROUP_ROOT, Ocish, assert_nothing_left
from shim_support import one_line_error

from shim.containers import stats, users
from shim.errors import OcishError

pytest_plugins = ["shim_fixtures", "container_fixtures"]

DEFAULT_CAPS = 0xA80425FB  # Docker's default set, as CapEff shows it


def _cap_eff(text: str) -> int:
    line = next(ln for ln in text.splitlines() if ln.startswith("CapEff:"))
    return int(line.split()[1], 16)


def _cgroup(cid: str, controller: str, name: str) -> str:
    return (CGROUP_ROOT / controller / CGROUP_PARENT.lstrip("/") / cid / name).read_text()


def test_user_by_name_and_groups(oc: Ocish) -> None:
    res = oc.run("--rm", "-u", "user", "--group-add", "tty", "--group-add", "42", "IMAGE",
                 "sh", "-c", "id -u; id -g; id -G; echo $HOME")
    assert res.stdout.splitlines() == ["1000", "1000", "1000 5 42", "/home/user"]
    res = oc.run("--rm", "-u", "nobody:tty", "IMAGE", "sh", "-c", "id -u; id -g")
    assert res.stdout.splitlines() == ["65534", "5"]
    res = oc.run("--rm", "-u", "4242", "IMAGE", "sh", "-c", "id -u; id -g; echo $HOME")
    assert res.stdout.splitlines() == ["4242", "0", "/"]


def test_unknown_user_or_group(oc: Ocish) -> None:
    oc("pull", "--tls-verify=false", oc.image)
    res = oc.run("--rm", "-u", "nosuchuser", "IMAGE", "true", check=False)
    assert res.returncode == 125
    assert one_line_error(res) == ("ocish: unable to find user nosuchuser: no matching "
                                   "entries in passwd file")
    assert_nothing_left(oc.root)
    res = oc.run("--rm", "-u", "user:nosuchgroup", "IMAGE", "true", check=False)
    assert res.returncode == 125
    assert "unable to find group nosuchgroup" in one_line_error(res)
    assert_nothing_left(oc.root)


def test_capabilities(oc: Ocish) -> None:
    status = "cat /proc/self/status"
    res = oc.run("--rm", "--cap-drop", "ALL", "--cap-add", "net_admin", "IMAGE", "sh", "-c",
                 status)
    assert _cap_eff(res.stdout) == 1 << 12
    res = oc.run("--rm", "--cap-drop", "CAP_CHOWN", "--cap-add", "Sys_Ptrace", "IMAGE", "sh",
                 "-c", status)
    assert _cap_eff(res.stdout) == (DEFAULT_CAPS & ~1) | 1 << 19
    res = oc.run("--rm", "--cap-drop", "chown", "IMAGE", "chown", "1:1", "/tmp", check=False)
    assert res.returncode != 0 and "Operation not permitted" in res.stderr


def test_privileged(oc: Ocish) -> None:
    res = oc.run("--rm", "--privileged", "IMAGE", "sh", "-c",
                 "cat /proc/self/status; ls /dev; grep ' /sys ' /proc/mounts; "
                 "echo x > /proc/sys/kernel/domainname && echo writable")
    bnd = next(int(ln.split()[1], 16) for ln in Path("/proc/self/status").read_text()
               .splitlines() if ln.startswith("CapBnd:"))
    assert _cap_eff(res.stdout) == bnd  # every capability the engine has
    host_devs = {p.name for p in Path("/dev").iterdir() if p.is_char_device()}
    for dev in ("kmsg", "mem", "tty0"):
        if dev in host_devs:
            assert f"\n{dev}\n" in res.stdout
    assert " rw," in next(ln for ln in res.stdout.splitlines() if " /sys " in ln)
    assert "writable" in res.stdout  # no read-only /proc/sys
    res = oc.run("--rm", "IMAGE", "ls", "/dev")
    assert "kmsg" not in res.stdout.split()
    res = oc.run("--rm", "--privileged", "--device", "/dev/null:/dev/zero", "IMAGE", "sh", "-c",
                 "head -c 3 /dev/zero | wc -c")  # --device's node replaces the host's
    assert res.stdout.strip() == "0"


def test_read_only(oc: Ocish) -> None:
    res = oc.run("--rm", "--read-only", "IMAGE", "sh", "-c",
                 "touch /x 2>&1; touch /dev/shm/ok && echo shm-ok")
    assert "Read-only file system" in res.stdout and "shm-ok" in res.stdout


def test_ulimit_sysctl_shm_hosts_env_labels(oc: Ocish, scratch: Path) -> None:
    env_file = scratch / "env"
    env_file.write_text("# comment\nA=from-file\n\nB=file-b\n")
    labels = scratch / "labels"
    labels.write_text("tier=db\n")
    res = oc.run("--rm", "--ulimit", "nofile=1024:2048", "--sysctl", "net.ipv4.ip_forward=1",
                 "--sysctl", "kernel.msgmax=12345", "--shm-size", "8m",
                 "--add-host", "db.example:10.1.2.3", "--env-file", str(env_file),
                 "-e", "B=flag-b", "--oom-score-adj", "500", "--label", "a=b",
                 "--label-file", str(labels), "IMAGE", "sh", "-c",
                 "ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward "
                 "/proc/sys/kernel/msgmax; df -k /dev/shm | tail -1; grep db.example /etc/hosts; "
                 "echo $A $B; cat /proc/self/oom_score_adj")
    lines = res.stdout.splitlines()
    assert lines[:4] == ["1024", "2048", "1", "12345"]
    assert lines[4].split()[1] == "8192"
    assert lines[5].split() == ["10.1.2.3", "db.example"]
    assert lines[6:] == ["from-file flag-b", "500"]


def test_device(oc: Ocish) -> None:
    """/dev/loop-control (10:237) is not among the default devices: only --device gives it, with
    the access asked for (the device cgroup's rule, not the node's mode)."""
    opener = "exec 3<>/dev/myloopctl && echo opened"
    res = oc.run("--rm", "--device", "/dev/loop-control:/dev/myloopctl", "IMAGE", "sh", "-c",
                 "ls -l /dev/myloopctl; " + opener)
    lines = res.stdout.splitlines()
    assert lines[0].startswith("c") and "10, 237" in lines[0] and lines[1] == "opened"
    res = oc.run("--rm", "IMAGE", "sh", "-c", "mknod /dev/myloopctl c 10 237 && " + opener,
                 check=False)
    assert res.returncode != 0 and "Operation not permitted" in res.stderr


def test_device_access(oc: Ocish) -> None:
    """--device's access (here r only) is the device cgroup's rule ocish writes."""
    oc("create", "--tls-verify=false", "--name", "dev", "--cgroup-parent", CGROUP_PARENT,
       "--device", "/dev/loop-control:/dev/myloopctl:r", oc.image, "true")
    config = json.loads((oc.root / "containers" / oc.inspect("dev")["Id"] / "bundle" /
                         "config.json").read_text())
    assert {"allow": True, "type": "c", "major": 10, "minor": 237, "access": "r"} in \
        config["linux"]["resources"]["devices"]
    oc("rm", "dev")
    res = oc.run("--rm", "--device", "/dev/loop-control:/dev/myloopctl:r", "IMAGE", "sh", "-c",
                 "exec 3<>/dev/myloopctl && echo opened", check=False)
    assert res.returncode != 0 and "Operation not permitted" in res.stderr


def test_init_is_pid1_and_reaps(oc: Ocish) -> None:
    res = oc.run("--rm", "--init", "IMAGE", "sh", "-c",
                 "tr '\\0' ' ' < /proc/1/cmdline; echo; (sleep 0.2 &); sleep 1; "
                 "ps -o pid,stat,comm")
    lines = res.stdout.splitlines()
    assert lines[0].startswith("/run/ocish-init -- sh -c")
    assert not [ln for ln in lines[1:] if ln.split()[1:2] == ["Z"]], res.stdout
    # the mount point of tini is made before the root is read-only
    res = oc.run("--rm", "--init", "--read-only", "IMAGE", "cat", "/proc/1/cmdline")
    assert res.stdout.startswith("/run/ocish-init\0--\0cat")


def test_limits_update_and_stats(oc: Ocish) -> None:
    cid = oc.run("-d", "--name", "lim", "-m", "64m", "--memory-swap", "128m", "--cpus", "0.5",
                 "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "20",
                 "--memory-reservation", "32m", "IMAGE", "sleep", "1000").stdout.strip()
    assert int(_cgroup(cid, "memory", "memory.limit_in_bytes")) == 64 << 20
    assert int(_cgroup(cid, "memory", "memory.memsw.limit_in_bytes")) == 128 << 20
    assert int(_cgroup(cid, "memory", "memory.soft_limit_in_bytes")) == 32 << 20
    assert int(_cgroup(cid, "cpu", "cpu.cfs_quota_us")) == 50000
    assert int(_cgroup(cid, "cpu", "cpu.shares")) == 512
    assert _cgroup(cid, "cpuset", "cpuset.cpus").strip() == "0"
    assert _cgroup(cid, "pids", "pids.max").strip() == "20"
    res = oc("stats", "--no-stream", "lim")
    head, row = res.stdout.splitlines()
    assert head.split("   ")[:2] == ["CONTAINER ID", "NAME"] and "MEM USAGE / LIMIT" in head
    cells = [c.strip() for c in row.split("   ") if c.strip()]
    assert cells[:2] == [cid[:12], "lim"]
    used, limit = cells[3].split(" / ")
    assert limit == "64MiB" and used.endswith(("B", "KiB", "MiB"))
    assert cells[-1] == "1" and cells[5] == "0B / 0B"  # one process; --network none
    fmt = oc("stats", "--no-stream", "--format", "{{.Name}}:{{.PIDs}}", "lim").stdout
    assert fmt == "lim:1\n"
    js = json.loads(oc("stats", "--no-stream", "--format", "json", "lim").stdout)
    assert js["Name"] == "lim" and js["MemUsage"].endswith("/ 64MiB")

    assert oc("update", "--memory", "96m", "--memory-swap", "192m", "--cpus", "1",
              "--pids-limit", "30", "--cpu-shares", "256", "--restart", "on-failure:3",
              "lim").stdout == "lim\n"
    after_update = {
        ("memory", "memory.limit_in_bytes"): str(96 << 20),
        ("memory", "memory.memsw.limit_in_bytes"): str(192 << 20),
        ("cpu", "cpu.cfs_quota_us"): "100000", ("cpu", "cpu.shares"): "256",
        ("pids", "pids.max"): "30"}
    for (ctl, name), want in after_update.items():
        assert _cgroup(cid, ctl, name).strip() == want, name
    res = oc("update", "--memory", "4m", "lim", check=False)
    assert res.returncode != 0 and "Minimum memory limit" in one_line_error(res)
    oc("stop", "-t", "0", "lim")
    oc("start", "lim")  # recreated from the recorded options: the update is kept
    for (ctl, name), want in after_update.items():
        assert _cgroup(cid, ctl, name).strip() == want, name
    assert oc.inspect("lim")["Id"] == cid
    oc("rm", "-f", "lim")


def test_cpu_quota_oom_and_stats_all_live(oc: Ocish) -> None:
    cid = oc.run("-d", "--name", "quota", "--cpu-period", "50000", "--cpu-quota", "25000",
                 "--cpuset-mems", "0", "-m", "32m", "--oom-kill-disable", "IMAGE",
                 "sleep", "1000").stdout.strip()
    assert _cgroup(cid, "cpu", "cpu.cfs_period_us").strip() == "50000"
    assert _cgroup(cid, "cpu", "cpu.cfs_quota_us").strip() == "25000"
    assert _cgroup(cid, "cpuset", "cpuset.mems").strip() == "0"
    assert "oom_kill_disable 1" in _cgroup(cid, "memory", "memory.oom_control")
    # -m alone: as much swap as memory, as Docker gives (this host accounts swap)
    assert int(_cgroup(cid, "memory", "memory.memsw.limit_in_bytes")) == 64 << 20
    idle = oc("create", "--tls-verify=false", "--name", "idle", "--cgroup-parent",
              CGROUP_PARENT, oc.image, "true").stdout.strip()
    oc("update", "--pids-limit", "7", "idle")  # created: its cgroup has it at once
    assert _cgroup(idle, "pids", "pids.max").strip() == "7"
    running = oc("stats", "--no-stream").stdout
    assert "quota" in running and "idle" not in running
    rows = oc("stats", "--no-stream", "-a", "--no-trunc").stdout.splitlines()[1:]
    by_id = {r.split()[0]: r for r in rows}
    assert set(by_id) == {cid, idle}
    assert "0B / 0B" in by_id[idle] and by_id[idle].split()[-1] == "0"
    live = subprocess.Popen([*oc.argv(), "stats", "quota"], stdout=subprocess.PIPE)
    try:
        assert live.stdout is not None
        seen = b""
        while seen.count(b"\x1b[2J") < 2:  # two frames: it redraws
            chunk = live.stdout.read1(4096)
            assert chunk, "stats ended by itself"
            seen += chunk
        assert b"quota" in seen.split(b"\x1b[2J")[1]
        live.send_signal(signal.SIGINT)
        assert live.wait() == 0
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()
    oc("rm", "-f", "quota", "idle")


def test_pull_always(oc: Ocish) -> None:
    oc("pull", "--tls-verify=false", oc.image)
    res = oc.run("--rm", "--pull", "always", "IMAGE", "echo", "hi")
    assert res.stdout == "hi\n" and "Pulling from" in res.stderr
    res = oc.run("--rm", "IMAGE", "echo", "hi")
    assert "Pulling from" not in res.stderr


def test_pids_limit_stops_fork(oc: Ocish) -> None:
    res = oc.run("--rm", "--pids-limit", "4", "IMAGE", "sh", "-c",
                 "for i in 1 2 3 4 5 6; do sleep 3 & done; wait", check=False)
    assert "can't fork" in res.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["-m", "4m"], "Minimum memory limit allowed is 6MB"),
    (["-m", "lots"], "invalid size"),
    (["-m", "64m", "--memory-swap", "32m"], "Minimum memoryswap limit"),
    (["--cpus", "99"], "range of CPUs is from 0.01 to"),
    (["--cpuset-cpus", "0-63"], "Requested CPUs are not available"),
    (["--ulimit", "nofiles=1"], "invalid ulimit type: nofiles"),
    (["--ulimit", "nofile=10:5"], "soft limit must be less than or equal to hard limit"),
    (["--sysctl", "vm.swappiness=1"], "sysctl 'vm.swappiness' is not allowed"),
    (["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"],
     "not allowed in host network"),
    (["--device", "/etc/passwd"], "not a device node"),
    (["--cap-add", "BOGUS"], 'unknown capability: "BOGUS"'),
    (["--security-opt", "apparmor=myprofile"],
     'apparmor profile "myprofile" specified, but Apparmor is not enabled on this system'),
    (["--add-host", "db:not-an-ip"], "invalid IP address"),
    (["--oom-score-adj", "5000"], "range for oom score adj is [-1000, 1000]"),
    (["--shm-size", "0"], "must be greater than 0"),
    (["--platform", "linux/arm64", "--pull", "never"], "does not match the specified platform"),
])
def test_bad_values(oc: Ocish, args: list[str], message: str) -> None:
    if args[-1] == "never":
        oc("pull", "--tls-verify=false", oc.image)
    res = oc.run(*args, "IMAGE", "true", check=False)
    assert res.returncode == 125
    assert message in one_line_error(res)
    assert_nothing_left(oc.root)


def test_lsm_options_accepted(oc: Ocish) -> None:
    oc("pull", "--tls-verify=false", oc.image)
    res = oc.run("--rm", "--security-opt", "apparmor=unconfined", "--security-opt",
                 "label=disable", "IMAGE", "echo", "ran")
    assert res.stdout == "ran\n"
    assert "WARNING: --security-opt label=disable: SELinux is not enabled" in res.stderr


# --- parser tests: real files in a tmp dir, no container -------------------------------------

def test_passwd_read_inside_rootfs_only(tmp_path: Path) -> None:
    """A hostile image's /etc/passwd symlinks are resolved inside its rootfs, never the host's;
    a FIFO is not read (it would hang)."""
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "real").mkdir()
    (root / "real" / "passwd").write_text("app:x:7:8:app:/srv:/bin/sh\n")
    (root / "real" / "group").write_text("staff:x:50:app\nother:x:51:root\n")
    # absolute and ../.. targets: both stay in the rootfs
    os.symlink("/../../../../real/passwd", root / "etc" / "passwd")
    os.symlink("../../../real/group", root / "etc" / "group")
    assert users.resolve(str(root), "app", []) == {"uid": 7, "gid": 8, "home": "/srv",
                                                   "additionalGids": [50]}
    (root / "etc" / "passwd").unlink()
    os.symlink("/etc/passwd", root / "etc" / "passwd")  # a loop to itself, not the host's
    with pytest.raises(OcishError, match="unable to find user root"):
        users.resolve(str(root), "root", [])
    (root / "etc" / "passwd").unlink()
    os.mkfifo(root / "etc" / "passwd")
    with pytest.raises(OcishError, match="no matching entries in passwd file"):
        users.resolve(str(root), "app", [])


def test_cgroup_v2_parser(tmp_path: Path) -> None:
    """The v2 reader on files shaped as a v2 cgroup's (this host's cgroups are v1)."""
    d = tmp_path / "ocish" / "abc"
    d.mkdir(parents=True)
    (d / "cpu.stat").write_text("usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n")
    (d / "memory.current").write_text("10485760\n")
    (d / "memory.max").write_text("max\n")
    (d / "memory.stat").write_text("anon 1048576\nfile 2097152\ninactive_file 2097152\n")
    (d / "io.stat").write_text("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
                               "8:16 rbytes=1000 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n")
    (d / "pids.current").write_text("3\n")
    got = stats.sample_v2(str(tmp_path), "/ocish/abc")
    assert got == {"cpu_ns": 2_500_000, "mem_usage": 10485760 - 2097152, "mem_limit": 0,
                   "blk_read": 5096, "blk_write": 8192, "pids": 3}
    (d / "memory.max").write_text("20971520\n")
    cur = stats.sample_v2(str(tmp_path), "/ocish/abc")
    pct = stats.percentages(None, {**cur, "system_ns": 0})
    assert pct["mem_limit"] == 20971520 and pct["mem"] == pytest.approx(40.0)


@pytest.mark.skipif(bool(_cap_eff(Path("/proc/self/status").read_text()) >> 24 & 1),
                    reason="this host's engine has CAP_SYS_RESOURCE: a negative "
                           "--oom-score-adj is allowed here")
def test_negative_oom_score_adj_needs_cap_sys_resource(oc: Ocish) -> None:
    """Lowering oom_score_adj needs CAP_SYS_RESOURCE, which this host's engine lacks: refused
    before anything is made, in one line that says why."""
    oc("pull", "--tls-verify=false", oc.image)
    res = oc.run("--rm", "--oom-score-adj", "-100", "IMAGE", "cat", "/proc/self/oom_score_adj",
                 check=False)
    assert res.returncode == 125
    assert "needs CAP_SYS_RESOURCE" in one_line_error(res)
    assert_nothing_left(oc.root)
