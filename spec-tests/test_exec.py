"""`exec` into a running container, the way conmon and containerd-shim call it
(`exec --process F --detach --pid-file P [--console-socket S] <id>`) and by hand."""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from spec_support import (
    Bundle,
    ConsoleReceiver,
    Containers,
    cap_mask,
    ns_link,
    parse_proc_cgroup,
    parse_status,
    pid_alive,
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
    assert paths.get("memory") == b.linux["cgroupsPath"]
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
