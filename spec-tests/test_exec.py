"""`exec` into a running container, the way conmon and containerd-shim call it
(`exec --process F --detach --pid-file P [--console-socket S] <id>`) and by hand."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from spec_support import (
    CAP_NUMBERS,
    DEFAULT_CAPS,
    Bundle,
    ConsoleReceiver,
    Containers,
    cap_mask,
    kill_and_reap,
    ns_link,
    parse_proc_cgroup,
    parse_status,
    pid_alive,
    placement_hierarchies,
    proc_status,
    read_pty,
    wait_for_file_text,
)


def running(ctr: Containers) -> tuple[Bundle, int]:
    b = ctr.bundle(["sleep", "100"])
    created = ctr.create(b)
    ctr.start(b.id)
    assert created.pid
    return b, created.pid


def process_file(b: Bundle, args: list[str], **overrides) -> Path:
    proc = copy.deepcopy(b.process)
    proc["args"] = args
    proc.update(overrides)
    path = b.path / f"process-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(proc))
    return path


def test_exec_detached_with_process_file(ctr: Containers) -> None:
    b, init = running(ctr)
    pf = process_file(b, ["sh", "-c", "echo exec-out; exec sleep 100"])
    pid_file = b.path / "exec.pid"
    out = b.path / "exec.out"
    with open(out, "wb") as f:
        res = ctr.rt("exec", "--process", str(pf), "--detach", "--pid-file", str(pid_file),
                     b.id, stdout=f, stderr=f)
    assert res.returncode == 0, out.read_text()
    raw = pid_file.read_bytes()
    assert raw.isdigit(), raw
    pid = int(raw)
    assert pid_alive(pid)
    assert wait_for_file_text(out, "exec-out") == "exec-out\n"
    for kind in ("mnt", "pid", "net", "ipc", "uts"):
        assert ns_link(pid, kind) == ns_link(init, kind), kind
    paths = parse_proc_cgroup(Path(f"/proc/{pid}/cgroup").read_text())
    for key in placement_hierarchies():
        assert paths.get(key) == b.linux["cgroupsPath"], (key, paths)
    assert int(proc_status(pid)["PPid"]) != res.pid
    assert not pid_alive(res.pid)


def test_exec_foreground_exit_status(ctr: Containers) -> None:
    b, _ = running(ctr)
    out = b.path / "exec.out"
    with open(out, "wb") as f:
        res = ctr.rt("exec", b.id, "sh", "-c", "echo hi; exit 5", stdout=f, stderr=f)
    assert res.returncode == 5
    assert out.read_text() == "hi\n"


def test_exec_env_cwd_user(ctr: Containers) -> None:
    b, _ = running(ctr)
    out = b.path / "exec.out"
    with open(out, "wb") as f:
        res = ctr.rt("exec", "--env", "FOO=bar", "--cwd", "/etc", "--user", "1000:1000", b.id,
                     "sh", "-c", 'echo "$FOO $(pwd) $(id -u) $(id -g)"', stdout=f, stderr=f)
    assert res.returncode == 0, out.read_text()
    assert out.read_text() == "bar /etc 1000 1000\n"


def test_exec_cwd_only_root_can_enter(ctr: Containers) -> None:
    """exec --user into a directory only root can enter works, as for the init."""
    b = ctr.bundle(["sleep", "100"])
    caps = [c for c in DEFAULT_CAPS if c not in ("CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH")]
    b.process["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    secret = b.rootfs / "secret"
    secret.mkdir(mode=0o700)
    os.chmod(secret, 0o700)
    ctr.create(b)
    ctr.start(b.id)
    res = ctr.rt("exec", "--cwd", "/secret", "--user", "1000:1000", b.id, "sh", "-c", "pwd",
                 timeout=30)
    assert res.ok and res.stdout == "/secret\n", res.describe()


@pytest.mark.parametrize("tty", [False, True])
def test_exec_process_leads_its_own_session(
    ctr: Containers, tty: bool, console: Callable[[], ConsoleReceiver]
) -> None:
    """Every exec'd process is the leader of a new session and process group, with a terminal
    or without: without one it would otherwise stay in the caller's process group, which does
    not exist in the container's pid namespace."""
    b, _ = running(ctr)
    script = "read pid comm state ppid pgrp sid rest < /proc/$$/stat; echo $pid $pgrp $sid"
    if not tty:
        res = ctr.rt("exec", b.id, "sh", "-c", script, timeout=30)
        assert res.ok, res.describe()
        out = res.stdout
    else:
        receiver = console()
        res = ctr.rt("exec", "-t", "-d", "--console-socket", str(receiver.path), b.id,
                     "sh", "-c", script, timeout=30)
        assert res.ok, res.describe()
        msg = receiver.wait()
        out = read_pty(msg.fds[0], timeout=10).decode().replace("\r", "")
    pid, pgrp, sid = out.split()
    assert pid == pgrp == sid, out


_DEFAULTS_SHOWN = 'echo "$FROM $(pwd) $(id -u) $(id -g)"; grep -E "^Cap(Eff|Bnd)" /proc/self/status'


@pytest.mark.runc_xfail(reason="exec without --process takes its defaults from the bundle's "
                               "config.json as it is at exec time, and fails once it is gone")
@pytest.mark.parametrize("change", ["edited", "deleted"])
def test_exec_defaults_are_the_config_create_read(ctr: Containers, change: str) -> None:
    """exec without --process runs with the env, cwd, user and capabilities of config.json's
    process as `create` read it: editing the bundle's config.json afterwards (here to another
    env, cwd, user and every capability) or deleting it changes nothing."""
    b = ctr.bundle(["sleep", "100"])
    b.process["env"] = [*b.process["env"], "FROM=create"]
    b.process["cwd"] = "/tmp"
    ctr.create(b)
    ctr.start(b.id)
    before = ctr.rt("exec", b.id, "sh", "-c", _DEFAULTS_SHOWN)
    assert before.ok and before.stdout.startswith("create /tmp 0 0\n"), before.describe()
    if change == "edited":
        everything = sorted(CAP_NUMBERS)
        b.process["env"] = [*b.process["env"][:-1], "FROM=edited"]
        b.process["cwd"] = "/etc"
        b.process["user"] = {"uid": 1000, "gid": 1000}
        b.process["capabilities"] = {k: everything for k in ("bounding", "effective",
                                                             "permitted")}
        b.process["noNewPrivileges"] = False
        b.write()
    else:
        b.config_path.unlink()
    after = ctr.rt("exec", b.id, "sh", "-c", _DEFAULTS_SHOWN)
    assert after.ok, after.describe()
    assert after.stdout == before.stdout


def test_exec_process_capabilities(ctr: Containers) -> None:
    b, _ = running(ctr)
    few = ["CAP_KILL", "CAP_CHOWN"]
    pf = process_file(b, ["cat", "/proc/self/status"],
                      capabilities={"bounding": few, "effective": few, "permitted": few},
                      noNewPrivileges=True)
    out = b.path / "exec.out"
    with open(out, "wb") as f:
        res = ctr.rt("exec", "--process", str(pf), b.id, stdout=f, stderr=f)
    assert res.returncode == 0, out.read_text()
    st = parse_status(out.read_text())
    assert int(st["CapBnd"], 16) == cap_mask(few)
    assert int(st["CapEff"], 16) == cap_mask(few)
    assert st["NoNewPrivs"] == "1"


def test_exec_missing_binary_fails_without_pid_file(ctr: Containers) -> None:
    """conmon decides exec success by the pid file's existence."""
    b, _ = running(ctr)
    pf = process_file(b, ["no-such-command-xyz"])
    pid_file = b.path / "exec.pid"
    res = ctr.rt("exec", "--process", str(pf), "--detach", "--pid-file", str(pid_file), b.id)
    assert res.returncode != 0
    assert "executable file not found" in res.stderr
    assert "Traceback" not in res.stderr
    assert not pid_file.exists()
    assert ctr.state(b.id)["status"] == "running"


def test_exec_into_stopped_container_fails(ctr: Containers) -> None:
    b = ctr.bundle(["true"])
    ctr.create(b)
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    res = ctr.rt("exec", b.id, "true")
    assert res.returncode != 0
    assert res.error_lines() and "Traceback" not in res.stderr


def test_exec_missing_container_fails(ctr: Containers) -> None:
    res = ctr.rt("exec", "st-never-created", "true")
    assert res.returncode != 0
    assert "does not exist" in res.stderr


def test_exec_tty_console_socket(ctr: Containers, console: Callable[[], ConsoleReceiver]) -> None:
    b, _ = running(ctr)
    recv = console()
    pf = process_file(b, ["sh", "-c", "tty; stty size"], terminal=True,
                      consoleSize={"height": 25, "width": 90})
    pid_file = b.path / "exec.pid"
    res = ctr.rt("exec", "--process", str(pf), "--detach", "--pid-file", str(pid_file),
                 "--console-socket", str(recv.path), b.id)
    assert res.returncode == 0, res.describe()
    msg = recv.wait()
    assert len(msg.fds) == 1 and msg.payload
    data = read_pty(msg.fds[0], timeout=10).decode().replace("\r", "")
    lines = data.split()
    assert re.match(r"^/dev/pts/\d+$", lines[0]), data
    assert lines[1:3] == ["25", "90"], data


# --------------------------------------------------------------------------------------------
# exec flags given by hand: --cap, --no-new-privs, --preserve-fds, --cgroup, paused containers
# --------------------------------------------------------------------------------------------


def exec_out(ctr: Containers, b: Bundle, *args: str, **kw) -> tuple[int, str]:
    out = b.path / f"exec-{time.monotonic_ns()}.out"
    with open(out, "wb") as f:
        res = ctr.rt("exec", *args, stdout=f, stderr=f, **kw)
    return res.returncode, out.read_text()


def test_exec_cap_adds_capability(ctr: Containers) -> None:
    """`exec --cap CAP_SYS_ADMIN` gives that exec (and only it) the extra capability."""
    b = ctr.bundle(["sleep", "100"])
    only = ["CAP_NET_BIND_SERVICE"]
    b.process["capabilities"] = {k: list(only) for k in ("bounding", "effective", "permitted")}
    created = ctr.create(b)
    ctr.start(b.id)
    show = ["sh", "-c", "grep ^CapEff /proc/self/status; "
                        "{ hostname st-renamed; } 2>&1; echo rc=$?"]
    rc, plain = exec_out(ctr, b, b.id, *show)
    assert rc == 0, plain
    assert int(parse_status(plain)["CapEff"], 16) == cap_mask(only)
    assert "Operation not permitted" in plain and "rc=1" in plain, plain
    rc, added = exec_out(ctr, b, "--cap", "CAP_SYS_ADMIN", b.id, *show)
    assert rc == 0, added
    assert int(parse_status(added)["CapEff"], 16) == cap_mask(only + ["CAP_SYS_ADMIN"])
    assert "rc=0" in added, added
    assert int(proc_status(created.pid)["CapEff"], 16) == cap_mask(only)


def test_exec_no_new_privs_flag(ctr: Containers) -> None:
    b = ctr.bundle(["sleep", "100"])
    b.process["noNewPrivileges"] = False
    ctr.create(b)
    ctr.start(b.id)
    rc, plain = exec_out(ctr, b, b.id, "cat", "/proc/self/status")
    assert rc == 0, plain
    assert parse_status(plain)["NoNewPrivs"] == "0"
    rc, nnp = exec_out(ctr, b, "--no-new-privs", b.id, "cat", "/proc/self/status")
    assert rc == 0, nnp
    assert parse_status(nnp)["NoNewPrivs"] == "1"


@pytest.mark.needs_probe
def test_exec_preserve_fds(ctr: Containers, probe: str) -> None:
    """`exec --preserve-fds 1` passes the caller's fd 3 to the exec'd process (and no more)."""
    b, _ = running(ctr)
    (b.path / "three").write_text("content-of-three\n")
    (b.path / "four").write_text("not preserved\n")
    with open(b.path / "three", "rb") as f3, open(b.path / "four", "rb") as f4:
        rc, out = exec_out(ctr, b, "--preserve-fds", "1", b.id, "sh", "-c",
                           f"{probe} fds; cat <&3", fd_map={3: f3.fileno(), 4: f4.fileno()})
    assert rc == 0, out
    fds = {}
    for line in out.splitlines():
        num, _, target = line.partition(" ")
        if num.isdigit():
            fds[int(num)] = target
    assert sorted(fds) == [0, 1, 2, 3], out
    assert fds[3].endswith("/three"), fds
    assert "content-of-three" in out


@pytest.mark.skipif(not Path("/sys/fs/cgroup/pids").is_dir(), reason="no v1 pids hierarchy")
def test_exec_cgroup_sub_cgroup(ctr: Containers) -> None:
    """`exec --cgroup pids:sub` runs the process in an existing sub-cgroup of the container."""
    b, _ = running(ctr)
    sub = Path("/sys/fs/cgroup/pids") / b.linux["cgroupsPath"].lstrip("/") / "sub"
    sub.mkdir()
    try:
        rc, out = exec_out(ctr, b, "--cgroup", "pids:sub", b.id, "cat", "/proc/self/cgroup")
        assert rc == 0, out
        paths = parse_proc_cgroup(out)
        assert paths["pids"] == b.linux["cgroupsPath"] + "/sub", out
        assert paths["memory"] == b.linux["cgroupsPath"], out
    finally:
        sub.rmdir()


def test_exec_into_paused_container_fails(ctr: Containers) -> None:
    b, init = running(ctr)
    ctr.rt("pause", b.id).check()
    pid_file = b.path / "exec.pid"
    res = ctr.rt("exec", "--detach", "--pid-file", str(pid_file), b.id, "sleep", "100")
    assert res.returncode != 0, res.describe()
    assert "paused" in res.stderr, res.describe()
    assert "Traceback" not in res.stderr
    assert not pid_file.exists()
    ctr.rt("resume", b.id).check()
    assert json.loads(ctr.rt("ps", "--format", "json", b.id).check().stdout) == [init]


def test_exec_into_paused_container_with_ignore_paused(ctr: Containers) -> None:
    """With --ignore-paused the exec is accepted; the new process runs once resumed (runc's
    exec only returns after the resume, so the resume happens while exec may still wait)."""
    b, init = running(ctr)
    ctr.rt("pause", b.id).check()
    pid_file = b.path / "exec.pid"
    out = b.path / "exec.out"
    with open(out, "wb") as f:
        proc = ctr.rt.popen("exec", "--ignore-paused", "--detach", "--pid-file", str(pid_file),
                            b.id, "sh", "-c", "echo exec-ran; exec sleep 100",
                            stdout=f, stderr=f)
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)
        assert proc.returncode in (None, 0), out.read_text()
        assert "exec-ran" not in out.read_text(), "the exec'd process ran in a paused container"
        ctr.rt("resume", b.id).check()
        rc = proc.wait(timeout=10)
    finally:
        kill_and_reap(proc)
    assert rc == 0, out.read_text()
    pid = int(pid_file.read_text())
    assert wait_for_file_text(out, "exec-ran")
    assert pid_alive(pid)
    assert parse_proc_cgroup(Path(f"/proc/{pid}/cgroup").read_text())["freezer"] == \
        b.linux["cgroupsPath"]
    assert sorted(json.loads(ctr.rt("ps", "--format", "json", b.id).check().stdout)) == \
        sorted([init, pid])


# --------------------------------------------------------------------------------------------
# ps lists exec'd processes
# --------------------------------------------------------------------------------------------


def test_ps_lists_exec_processes(ctr: Containers) -> None:
    b, init = running(ctr)
    pid_file = b.path / "exec.pid"
    ctr.rt("exec", "-d", "--pid-file", str(pid_file), b.id, "sleep", "99").check()
    pid = int(pid_file.read_text())
    res = ctr.rt("ps", "--format", "json", b.id).check()
    assert sorted(json.loads(res.stdout)) == sorted([init, pid]), res.describe()
    table = ctr.rt("ps", b.id).check()
    lines = [line for line in table.stdout.splitlines() if line.strip()]
    header = lines[0].split()
    assert "PID" in header, table.describe()
    col = header.index("PID")
    listed = sorted(int(line.split()[col]) for line in lines[1:])
    assert listed == sorted([init, pid]), table.describe()
    assert any(line.split()[col] == str(pid) and "sleep 99" in line for line in lines[1:]), \
        table.describe()
