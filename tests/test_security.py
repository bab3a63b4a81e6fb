"""The container cannot reach the runtime: the waiting init is non-dumpable (its /proc entries
belong to root, so a container user cannot open /proc/<pid>/exe, the host's Python) and holds
no host fd but stdio and the O_PATH handle of its exec.fifo. And the runtime writes no file
through a symlink planted at a path its caller gave."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ocirt
from support import busybox_bundle


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return busybox_bundle(tmp_path, "ocirt-test-security", args=["sleep", "30"],
                          user={"uid": 1000, "gid": 1000})


def _can_open_exe_as(uid: int, pid: int) -> bool:
    """Whether a process of ``uid`` can open /proc/<pid>/exe (the check runs in a child)."""
    child = os.fork()
    if child == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.close(os.open(f"/proc/{pid}/exe", os.O_RDONLY))
            os._exit(0)
        except PermissionError:
            os._exit(1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1), code
    return code == 0


def test_waiting_init_is_not_dumpable_and_holds_no_host_fd(root: Path, bundle: Path) -> None:
    leaked = os.open("/etc/hostname", os.O_RDONLY)  # inheritable: a careless runtime passes it
    os.set_inheritable(leaked, True)
    try:
        # the container's stdio must not be our pipes, or run() would wait for the container
        res = ocirt(root, "create", "--bundle", str(bundle), "sec1", pass_fds=(leaked,),
                    capture_output=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        os.close(leaked)
    assert res.returncode == 0
    try:
        pid = json.loads(ocirt(root, "state", "sec1").stdout)["pid"]
        assert os.stat(f"/proc/{pid}/status").st_uid == 0  # non-dumpable: owned by root
        assert not _can_open_exe_as(1000, pid)  # the container's user cannot reach our Python
        fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        extra = {fd: target for fd, target in fds.items() if fd > 2}
        # the fifo start opens, init.err (why it failed, for start), and the sealed exec stub
        # the init's execve goes through: all in the state dir or sealed, all close-on-exec
        assert sorted(extra.values()) == ["/memfd:ocirt-exec (deleted)",
                                          str(root / "sec1" / "exec.fifo"),
                                          str(root / "sec1" / "init.err")], fds
        stub = next(fd for fd, target in extra.items() if target.startswith("/memfd:"))
        stub_fd = os.open(f"/proc/{pid}/fd/{stub}", os.O_RDWR)
        try:
            seals = fcntl.fcntl(stub_fd, fcntl.F_GET_SEALS)
            want = (fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
                    | fcntl.F_SEAL_WRITE)
            assert seals & want == want, seals
            with pytest.raises(PermissionError):
                os.pwrite(stub_fd, b"x", 0)
        finally:
            os.close(stub_fd)
        assert ocirt(root, "start", "sec1").returncode == 0
        deadline = time.monotonic() + 10
        while "sleep" not in Path(f"/proc/{pid}/cmdline").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # after execve the process is the container's own: dumpable, owned by its user
        assert os.stat(f"/proc/{pid}/status").st_uid == 1000
        assert _can_open_exe_as(1000, pid)
        assert sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd")) == [0, 1, 2]
    finally:
        ocirt(root, "delete", "--force", "sec1")


def test_log_file_is_never_written_through_a_symlink(tmp_path: Path, root: Path) -> None:
    """--log names a file in a directory others may write: a symlink planted there must not
    make root append to (or create) another file. runc follows it; ocirt does not: a log it
    cannot open fails the command, in one line on stderr."""
    target = tmp_path / "target"
    target.write_text("host file\n")
    log = tmp_path / "log.json"
    log.symlink_to(target)
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "created-through-link")
    for path in (log, dangling):
        res = ocirt(root, "--log", str(path), "--log-format", "json", "state", "no-such-ctr")
        assert res.returncode != 0
        assert res.stderr.splitlines() == [
            f"ocirt: open {path}: too many levels of symbolic links"], res.stderr
        assert path.is_symlink()
    assert target.read_text() == "host file\n"
    assert not (tmp_path / "created-through-link").exists()
