"""ocish's interaction with containers, for real on ocirt and runc: exec (output, status,
-e/-u/-w, -d, -it under a pty), run -i with piped stdin."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time

from container_support import Ocish, wait_for
from shim_support import one_line_error

pytest_plugins = ["shim_fixtures", "container_fixtures"]


def _pty_run(argv: list[str], feed: bytes, rows: int = 33, cols: int = 77,
             until: bytes = b"") -> tuple[int, bytes]:
    """Run *argv* with a new pty as its terminal (of *rows* x *cols*), type *feed* once
    *until* has been output, and read until it exits; (status, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdio is the pty's other side
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    out = b""
    fed = not feed
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if not fed and until in out:
                os.write(fd, feed)
                fed = True
            r, _, _ = select.select([fd], [], [], 1)
            if r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out


def _web(oc: Ocish) -> str:
    return oc.run("-d", "--name", "web", "-e", "BASE=1", "IMAGE", "sleep", "1000"
                  ).stdout.strip()


def test_exec_output_and_status(oc: Ocish) -> None:
    _web(oc)
    res = oc("exec", "web", "sh", "-c", "echo out; echo err >&2; echo $BASE; exit 3",
             check=False)
    assert (res.returncode, res.stdout, res.stderr) == (3, "out\n1\n", "err\n")
    assert oc("exec", "web", "true").returncode == 0
    for cmd, status in (("nosuchcmd", 127), ("/etc/passwd", 126)):
        res = oc("exec", "web", cmd, check=False)
        assert res.returncode == status, res.stderr
        assert "OCI runtime exec failed" in one_line_error(res)
    oc("rm", "-f", "web")


def test_exec_env_user_workdir_privileged(oc: Ocish) -> None:
    _web(oc)
    res = oc("exec", "-e", "FOO=bar", "-u", "1000:1001", "-w", "/tmp", "web", "sh", "-c",
             "echo $FOO $BASE; id -u; id -g; pwd; grep CapEff /proc/self/status")
    lines = res.stdout.splitlines()
    assert lines[:4] == ["bar 1", "1000", "1001", "/tmp"]
    assert lines[4].split()[1] == "0000000000000000"  # a non-root user: no effective caps
    res = oc("exec", "web", "grep", "CapEff", "/proc/self/status")
    assert res.stdout.split()[1] == "00000000a80425fb"  # the container's own set
    res = oc("exec", "--privileged", "web", "grep", "CapBnd", "/proc/self/status")
    assert res.stdout.split()[1] != "00000000a80425fb"
    oc("rm", "-f", "web")


def test_exec_detached_and_stopped(oc: Ocish) -> None:
    _web(oc)
    assert oc("exec", "-d", "web", "sh", "-c", "sleep 1; echo done > /tmp/flag").stdout == ""
    wait_for(lambda: oc("exec", "web", "cat", "/tmp/flag", check=False).stdout == "done\n",
             "exec -d's file")
    oc("stop", "-t", "0", "web")
    res = oc("exec", "web", "true", check=False)
    assert res.returncode == 1
    assert "is not running" in one_line_error(res)
    oc("rm", "web")


def test_exec_interactive_pipe(oc: Ocish) -> None:
    _web(oc)
    res = oc("exec", "-i", "web", "sh", "-c", "cat; echo end", input="line1\nline2\n")
    assert res.stdout == "line1\nline2\nend\n"
    res = oc("exec", "web", "cat", input="ignored\n")  # no -i: stdin is not given
    assert res.stdout == ""
    oc("rm", "-f", "web")


def test_exec_it_under_a_pty(oc: Ocish) -> None:
    _web(oc)
    status, out = _pty_run([*oc.argv(), "exec", "-it", "web", "sh"],
                           b"tty; stty size; exit 5\n", until=b"#")
    assert status == 5, out
    assert b"/dev/pts/" in out and b"33 77" in out
    oc("rm", "-f", "web")


def test_run_i_piped_stdin(oc: Ocish) -> None:
    res = subprocess.run([*oc.argv(), "run", "--rm", "-i", "--tls-verify=false", oc.image,
                          "sh", "-c", "cat; echo end"], input="hi\n", capture_output=True,
                         text=True, timeout=300)
    assert (res.returncode, res.stdout) == (0, "hi\nend\n"), res.stderr
