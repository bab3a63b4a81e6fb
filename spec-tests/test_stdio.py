"""Container stdio: pass-through without a terminal, --console-socket ptys, --preserve-fds,
LISTEN_FDS socket activation, and no lingering holders of the caller's pipes."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from spec_support import ConsoleReceiver, Containers, read_pty


def read_until_eof(fd: int, timeout: float) -> tuple[bytes, bool]:
    """Read a pipe until EOF; returns (data, reached_eof)."""
    import select

    data = b""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return data, False
        r, _, _ = select.select([fd], [], [], remaining)
        if not r:
            return data, False
        chunk = os.read(fd, 65536)
        if not chunk:
            return data, True
        data += chunk


# --------------------------------------------------------------------------------------------
# pass-through without a terminal
# --------------------------------------------------------------------------------------------


def test_stdout_stderr_are_the_given_open_files(ctr: Containers, workdir: Path) -> None:
    """The container writes through the very open files given to create (shared offset)."""
    b = ctr.bundle(["sh", "-c", "echo out; echo err >&2; stat -L -c %d:%i /proc/self/fd/1"])
    out_path, err_path = workdir / "out", workdir / "err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        out.write(b"prefix\n")
        out.flush()
        err.write(b"eprefix\n")
        err.flush()
        created = ctr.create(b, stdout=out, stderr=err)
        st = os.fstat(out.fileno())
    ctr.start(created.id)
    ctr.wait_stopped(created.id)
    lines = out_path.read_text().splitlines()
    assert lines[:2] == ["prefix", "out"], lines
    assert lines[2] == f"{st.st_dev}:{st.st_ino}"
    assert err_path.read_text() == "eprefix\nerr\n"


def test_stdout_pipe_reaches_eof_when_container_exits(ctr: Containers) -> None:
    """Only the container holds the caller's pipe: EOF arrives once it exits."""
    b = ctr.bundle(["sh", "-c", "sleep 0.3; echo via-pipe"])
    r, w = os.pipe()
    try:
        with open(b.path / "err", "wb") as err:
            created = ctr.create(b, stdout=w, stderr=err)
        os.close(w)
        w = -1
        ctr.start(created.id)
        data, eof = read_until_eof(r, 10)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    assert eof, "stdout pipe still held open after the container exited"
    assert data == b"via-pipe\n"


def test_stdin_passthrough(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "cat; echo end"])
    r, w = os.pipe()
    try:
        created = ctr.create(b, stdin=r)
        os.close(r)
        r = -1
        os.write(w, b"data from host\n")
        os.close(w)
        w = -1
        ctr.start(created.id)
        ctr.wait_stopped(created.id)
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)
    assert (b.path / f"{created.id}.stdout").read_text() == "data from host\nend\n"


def test_commands_do_not_hold_output_pipes(ctr: Containers) -> None:
    """go-runc captures start/state/kill/delete output with pipes and waits for EOF: no
    process that outlives the command may keep them open."""
    b = ctr.bundle(["sleep", "100"])
    ctr.create(b)
    for args in (["start", b.id], ["state", b.id], ["kill", b.id, "KILL"]):
        proc = subprocess.run(ctr.rt.argv(*args), capture_output=True, timeout=15,
                              stdin=subprocess.DEVNULL, env=ctr.rt.environ())
        assert proc.returncode == 0, (args, proc.stderr)
    ctr.wait_stopped(b.id)
    proc = subprocess.run(ctr.rt.argv("delete", b.id), capture_output=True, timeout=15,
                          stdin=subprocess.DEVNULL, env=ctr.rt.environ())
    assert proc.returncode == 0, proc.stderr


def test_env_of_runtime_not_leaked(ctr: Containers) -> None:
    b = ctr.bundle(["env"])
    b.process["env"].append("FROM_CONFIG=yes")
    out = ctr.output(b)
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert env.get("FROM_CONFIG") == "yes"
    assert env.get("TERM") == "xterm"
    assert ctr.rt.env_marker not in env, "the runtime's own environment reached the container"


# --------------------------------------------------------------------------------------------
# terminal / console socket
# --------------------------------------------------------------------------------------------


def tty_bundle(ctr: Containers, args: list[str]):
    b = ctr.bundle(args)
    b.process["terminal"] = True
    return b


def test_console_socket_protocol(ctr: Containers, console: Callable[[], ConsoleReceiver]) -> None:
    """One message: a non-empty name payload and exactly one SCM_RIGHTS fd, the pty master."""
    recv = console()
    b = tty_bundle(ctr, ["tty"])
    created = ctr.create(b, console_socket=recv.path)
    assert created.result.stdout == "" and created.result.stderr == ""
    msg = recv.wait()
    assert 0 < len(msg.payload) < 4096
    assert msg.cmsg_count == 1
    assert len(msg.fds) == 1
    assert not msg.flags & socket.MSG_CTRUNC
    assert msg.extra_data == b""
    assert recv.connections == 1
    master = msg.fds[0]
    assert os.isatty(master)
    assert stat.S_ISCHR(os.fstat(master).st_mode)
    ctr.start(created.id)
    data = read_pty(master, timeout=10)
    ctr.wait_stopped(created.id)
    assert re.search(rb"^/dev/pts/\d+\r?$", data, re.M), data


def test_console_size(ctr: Containers, console: Callable[[], ConsoleReceiver]) -> None:
    recv = console()
    b = tty_bundle(ctr, ["stty", "size"])
    b.process["consoleSize"] = {"height": 30, "width": 100}
    created = ctr.create(b, console_socket=recv.path)
    master = recv.wait().fds[0]
    ctr.start(created.id)
    data = read_pty(master, timeout=10)
    assert data.strip() == b"30 100", data


def test_tty_stdio_and_dev_console(ctr: Containers, console: Callable[[], ConsoleReceiver]) -> None:
    """fds 0-2 are the pty slave and /dev/console is that pty (config-linux.md)."""
    recv = console()
    script = "for i in 0 1 2; do readlink /proc/self/fd/$i; done; stat -c '%F %t' /dev/console"
    b = tty_bundle(ctr, ["sh", "-c", script])
    created = ctr.create(b, console_socket=recv.path)
    master = recv.wait().fds[0]
    ctr.start(created.id)
    lines = read_pty(master, timeout=10).decode().replace("\r", "").splitlines()
    assert len(lines) >= 4, lines
    assert len(set(lines[:3])) == 1 and re.match(r"^/dev/pts/\d+$", lines[0]), lines
    assert lines[3] == "character special file 88", lines  # 136 = 0x88, the pts major


def test_console_owner_is_the_user_group_stays_devpts(
    ctr: Containers, console: Callable[[], ConsoleReceiver]
) -> None:
    """The pty is given to the process's user; its group stays the one devpts gave it (the
    mount's gid=5, tty), as runc leaves it."""
    recv = console()
    b = tty_bundle(ctr, ["stat", "-L", "-c", "%u:%g", "/proc/self/fd/0"])
    b.process["user"] = {"uid": 1000, "gid": 1000}
    created = ctr.create(b, console_socket=recv.path)
    master = recv.wait().fds[0]
    ctr.start(created.id)
    assert read_pty(master, timeout=10).strip() == b"1000:5"


def test_stdio_owner_is_the_user_group_unchanged(ctr: Containers) -> None:
    """The container's stdio files are given to its user, their group left as it is."""
    b = ctr.bundle(["true"])
    b.process["user"] = {"uid": 1000, "gid": 1000}
    ctr.create(b)
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    st = os.stat(b.path / f"{b.id}.stdout")
    assert (st.st_uid, st.st_gid) == (1000, 0)


def test_tty_input(ctr: Containers, console: Callable[[], ConsoleReceiver]) -> None:
    recv = console()
    b = tty_bundle(ctr, ["sh", "-c", 'stty -echo; echo ready; read line; echo "got:$line"'])
    created = ctr.create(b, console_socket=recv.path)
    master = recv.wait().fds[0]
    ctr.start(created.id)
    assert b"ready" in read_pty(master, timeout=10, until=b"ready")
    os.write(master, b"typed-line\n")
    data = read_pty(master, timeout=10, until=b"got:typed-line")
    assert b"got:typed-line" in data, data


def test_tty_create_does_not_hold_callers_pipes(
    ctr: Containers, console: Callable[[], ConsoleReceiver]
) -> None:
    """In terminal mode the init must not inherit the runtime's stdio: a caller that captures
    create's output with pipes (go-runc) gets EOF as soon as create exits."""
    recv = console()
    b = tty_bundle(ctr, ["sleep", "100"])
    b.write()
    argv = ctr.rt.argv("create", "--bundle", str(b.path), "--pid-file", str(b.path / "init.pid"),
                       "--console-socket", str(recv.path), b.id)
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=20, stdin=subprocess.DEVNULL,
                              env=ctr.rt.environ())
    except subprocess.TimeoutExpired:
        pytest.fail("create's stdout/stderr pipes stayed open after create exited")
    assert proc.returncode == 0, proc.stderr
    ctr.pids[b.id] = int((b.path / "init.pid").read_text())
    recv.wait()
    assert ctr.state(b.id)["status"] == "created"


# --------------------------------------------------------------------------------------------
# preserved fds and socket activation
# --------------------------------------------------------------------------------------------


def fd_lines(text: str) -> dict[int, str]:
    out = {}
    for line in text.splitlines():
        num, _, target = line.partition(" ")
        if num.isdigit():
            out[int(num)] = target
    return out


@pytest.mark.needs_probe
def test_preserve_fds(ctr: Containers, workdir: Path, probe: str) -> None:
    (workdir / "three").write_text("content-of-three\n")
    (workdir / "four").write_text("content-of-four\n")
    (workdir / "five").write_text("not preserved\n")
    b = ctr.bundle(["sh", "-c", f"{probe} fds; cat <&3; cat <&4"])
    with open(workdir / "three", "rb") as f3, open(workdir / "four", "rb") as f4, \
            open(workdir / "five", "rb") as f5:
        created = ctr.create(b, extra=["--preserve-fds", "2"],
                             fd_map={3: f3.fileno(), 4: f4.fileno(), 5: f5.fileno()})
    ctr.start(created.id)
    ctr.wait_stopped(created.id)
    out = (b.path / f"{created.id}.stdout").read_text()
    fds = fd_lines(out)
    assert sorted(fds) == [0, 1, 2, 3, 4], out
    assert fds[3].endswith("/three") and fds[4].endswith("/four"), fds
    assert "content-of-three\ncontent-of-four\n" in out


@pytest.mark.needs_probe
def test_inherited_fds_not_leaked(ctr: Containers, workdir: Path, probe: str) -> None:
    """Without --preserve-fds the container sees only 0, 1 and 2 (conmon leaks fds into the
    runtime; they must not reach the container)."""
    (workdir / "leak").write_text("x")
    b = ctr.bundle([probe, "fds"])
    s1, s2 = socket.socketpair()
    with s1, s2, open(workdir / "leak", "rb") as f:
        created = ctr.create(b, fd_map={3: f.fileno(), 4: s1.fileno(), 7: s2.fileno()})
    ctr.start(created.id)
    ctr.wait_stopped(created.id)
    fds = fd_lines((b.path / f"{created.id}.stdout").read_text())
    assert sorted(fds) == [0, 1, 2], fds


@pytest.mark.needs_probe
def test_listen_fds_socket_activation(ctr: Containers, workdir: Path, probe: str) -> None:
    """LISTEN_FDS/LISTEN_PID aimed at the runtime pass fds 3.. on, with LISTEN_PID=1."""
    sock_path = workdir / "act.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    listener.listen(1)
    b = ctr.bundle(["sh", "-c", f"{probe} sockname 3; env | grep ^LISTEN_ | sort"])
    b.write()
    argv = ["/bin/sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh",
            *ctr.rt.argv("create", "--bundle", str(b.path), "--pid-file",
                         str(b.path / "init.pid"), b.id)]
    src = listener.fileno()

    def place_fd() -> None:
        os.dup2(src, 3, inheritable=True)

    with listener, open(b.path / "out", "wb") as out:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                              pass_fds=(3,), preexec_fn=place_fd, timeout=30,
                              env=ctr.rt.environ())
    assert proc.returncode == 0, (b.path / "out").read_text()
    ctr.pids[b.id] = int((b.path / "init.pid").read_text())
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    lines = (b.path / "out").read_text().splitlines()
    assert f"unix {sock_path}" in lines, lines
    assert "LISTEN_FDS=1" in lines and "LISTEN_PID=1" in lines, lines


def test_preserve_fds_missing_fd_fails(ctr: Containers) -> None:
    b = ctr.bundle(["true"])
    created = ctr.create(b, extra=["--preserve-fds", "40"], check=False)
    assert created.result.returncode != 0
    assert "Traceback" not in created.result.stderr
    assert not (ctr.rt.root / b.id).exists()
    assert ctr.cgroup_dirs(b.id) == []
