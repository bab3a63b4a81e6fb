"""ocish's interaction with containers, for real on ocirt and runc: exec (output, status,
-e/-u/-w, -d, -it under a pty), run -i/-t, attach and detach keys, start -ai, --sig-proxy."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

from container_support import CGROUP_PARENT, Ocish, wait_for
from shim_support import one_line_error

pytest_plugins = ["shim_fixtures", "container_fixtures"]


def _pty_run(argv: list[str], steps: list[tuple[bytes, bytes]], rows: int = 33,
             cols: int = 77) -> tuple[int, bytes]:
    """Run *argv* with a new pty of *rows* x *cols* as its terminal; for each (until, feed)
    of *steps*, type *feed* once *until* has been output; read until it exits;
    (status, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdio is the pty's other side
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    out = b""
    steps = list(steps)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            while steps and steps[0][0] in out:
                os.write(fd, steps.pop(0)[1])
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
    # a name, looked up in the container's own /etc/passwd, as run -u does
    assert oc("exec", "-u", "nobody", "web", "id", "-un").stdout == "nobody\n"
    res = oc("exec", "-u", "nosuchuser", "web", "true", check=False)
    assert res.returncode != 0 and "unable to find user nosuchuser" in one_line_error(res)
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
                           [(b"#", b"tty; stty size; exit 5\n")])
    assert status == 5, out
    assert b"/dev/pts/" in out and b"33 77" in out
    oc("rm", "-f", "web")


def test_run_i_piped_stdin(oc: Ocish) -> None:
    res = subprocess.run([*oc.argv(), "run", "--rm", "-i", "--tls-verify=false", oc.image,
                          "sh", "-c", "cat; echo end"], input="hi\n", capture_output=True,
                         text=True, timeout=300)
    assert (res.returncode, res.stdout) == (0, "hi\nend\n"), res.stderr


def _run_argv(oc: Ocish, *args: str) -> list[str]:
    return [*oc.argv(), "run", "--tls-verify=false", "--cgroup-parent", CGROUP_PARENT, *args]


def test_run_t_under_a_pty(oc: Ocish) -> None:
    oc("pull", "--tls-verify=false", oc.image)
    status, out = _pty_run(_run_argv(oc, "--rm", "-t", oc.image, "sh", "-c",
                                     "tty; stty size; exit 4"), [])
    assert status == 4, out
    assert b"/dev/pts/0" in out and b"33 77" in out


def test_run_it_exit_status(oc: Ocish) -> None:
    oc("pull", "--tls-verify=false", oc.image)
    status, out = _pty_run(_run_argv(oc, "--rm", "-it", oc.image, "sh"),
                           [(b"#", b"echo $((6*7)); exit 6\n")])
    assert status == 6 and b"42" in out, out


def test_it_without_a_terminal(oc: Ocish) -> None:
    res = oc.run("--rm", "-it", "IMAGE", "true", check=False)
    assert res.returncode == 1
    assert one_line_error(res) == "ocish: the input device is not a TTY"


def test_attach_and_detach_keys(oc: Ocish) -> None:
    oc.run("-dit", "--name", "box", "IMAGE", "sh")
    status, out = _pty_run([*oc.argv(), "attach", "--detach-keys", "ctrl-a,x", "box"],
                           [(b"", b"echo hel''lo\n"), (b"hello", b"\x01x")])
    assert status == 1 and b"read escape sequence" in out, out
    assert "Up " in oc("ps").stdout  # still running
    # again, with the default keys, and the container's input still open
    status, out = _pty_run([*oc.argv(), "attach", "box"],
                           [(b"", b"echo ag''ain\n"), (b"again", b"\x10\x11")])
    assert status == 1 and b"again" in out, out
    status, out = _pty_run([*oc.argv(), "attach", "box"], [(b"", b"exit 9\n")])
    assert status == 9, out
    assert oc("wait", "box").stdout == "9\n"
    oc("rm", "box")


def test_attach_stopped(oc: Ocish) -> None:
    oc.run("--name", "done", "IMAGE", "true")
    res = oc("attach", "done", check=False)
    assert res.returncode == 1 and "start it first" in one_line_error(res)
    oc("rm", "done")


def test_start_ai(oc: Ocish) -> None:
    oc("pull", "--tls-verify=false", oc.image)
    oc("create", "-it", "--name", "c", "--tls-verify=false", "--cgroup-parent", CGROUP_PARENT,
       oc.image, "sh")
    status, out = _pty_run([*oc.argv(), "start", "-ai", "c"],
                           [(b"#", b"echo $((5*5)); exit 7\n")])
    assert status == 7 and b"25" in out, out
    # again: an exited container gets a new monitor, attached to as soon as it runs
    status, out = _pty_run([*oc.argv(), "start", "-ai", "c"],
                           [(b"#", b"echo $((4*4)); exit 8\n")])
    assert status == 8 and b"16" in out, out
    oc("rm", "c")


def test_sig_proxy_false(oc: Ocish) -> None:
    """(the default, signals forwarded, is in test_shim_containers)"""
    oc("pull", "--tls-verify=false", oc.image)
    script = 'trap "echo got; exit 5" TERM; echo ready; while :; do sleep 0.1; done'
    with subprocess.Popen(_run_argv(oc, "--sig-proxy=false", "--name", "sp", oc.image, "sh",
                                    "-c", script), stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)  # ocish's own: it ends, the container runs on
        assert proc.wait(timeout=120) == -signal.SIGTERM
    assert "Up " in oc("ps").stdout
    assert oc("logs", "sp").stdout == "ready\n"  # no "got": the trap did not run
    oc("rm", "-f", "sp")
