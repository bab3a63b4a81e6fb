"""Foreground `run` and `exec -t` in a real terminal (tmux): the container gets a pty of the
terminal's size, keystrokes reach it, and the exit status comes back."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import termios
import time
from pathlib import Path

import pytest
from conftest import OCIRT, REPO, ocirt

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (make deps installs it)")


def _in_tmux(tmp_path: Path, command: str, keys: str, width: int = 90,
             height: int = 25) -> tuple[str, str]:
    """Run ``command`` in a new tmux window, type ``keys``; (screen, exit status)."""
    session = f"ocirt-test-{tmp_path.name}"
    rc = tmp_path / "rc"
    subprocess.run(["tmux", "new", "-d", "-s", session, "-x", str(width), "-y", str(height),
                    f"{command}; echo $? > {rc}; sleep 30"], check=True)
    try:
        deadline = time.monotonic() + 15
        screen = ""
        while "/ #" not in screen:
            assert time.monotonic() < deadline, screen
            time.sleep(0.05)
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True).stdout
        subprocess.run(["tmux", "send-keys", "-t", session, keys, "Enter"], check=True)
        while not (rc.exists() and rc.read_text().strip()):
            assert time.monotonic() < deadline, "the command did not end"
            time.sleep(0.05)
        screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                capture_output=True, text=True).stdout
        return screen, rc.read_text().strip()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.fixture
def tty_bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    subprocess.run([str(REPO / "bundles" / "mkrootfs"), str(bundle / "rootfs")], check=True,
                   capture_output=True)
    config = json.loads((REPO / "bundles" / "tty" / "config.json").read_text())
    config["linux"]["cgroupsPath"] = f"/ocirt-test-terminal/{tmp_path.name}"
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def test_run_in_the_foreground_with_a_terminal(tmp_path: Path, root: Path,
                                               tty_bundle: Path) -> None:
    screen, rc = _in_tmux(tmp_path, f"{OCIRT} --root {root} run -b {tty_bundle} tty1",
                          "stty size; tty; exit 5", width=90, height=25)
    assert "25 90" in screen and "/dev/pts/0" in screen, screen
    assert rc == "5"
    assert ocirt(root, "list", "-q").stdout == ""  # run deletes the container


def test_exec_with_a_terminal(tmp_path: Path, root: Path, tty_bundle: Path) -> None:
    config = json.loads((tty_bundle / "config.json").read_text())
    config["process"].update(terminal=False, args=["sleep", "60"])
    (tty_bundle / "config.json").write_text(json.dumps(config))
    res = ocirt(root, "run", "-d", "-b", str(tty_bundle), "ex1", capture_output=False,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert res.returncode == 0
    try:
        screen, rc = _in_tmux(tmp_path, f"{OCIRT} --root {root} exec -t ex1 sh",
                              "stty size; exit 4", width=70, height=20)
        assert "20 70" in screen, screen
        assert rc == "4"
    finally:
        ocirt(root, "delete", "--force", "ex1")


def test_run_on_a_terminal_it_cannot_set_raw_fails_in_one_line(tmp_path: Path, root: Path,
                                                               tty_bundle: Path) -> None:
    """`run` whose stdin is a terminal it may not change (in an orphaned background process
    group the kernel refuses with EIO): one error line, no traceback, nothing left."""
    master, slave = os.openpty()
    rc_file = tmp_path / "rc"
    leader = os.fork()
    if leader == 0:  # a session whose terminal is the pty, kept while ocirt runs
        try:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            middle = os.fork()
            if middle == 0:  # a background group, orphaned as soon as its first member exits
                os.setpgid(0, 0)
                if os.fork() == 0:
                    while os.getppid() == middle:
                        time.sleep(0.01)
                    for fd in (0, 1, 2):
                        os.dup2(slave, fd)
                    os.close(master)
                    rc = subprocess.call([str(OCIRT), "--root", str(root), "run", "-b",
                                          str(tty_bundle), "orphan1"])
                    rc_file.write_text(str(rc))
                os._exit(0)
            os.waitpid(middle, 0)
            deadline = time.monotonic() + 30
            while not rc_file.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            os._exit(0)
        except BaseException:
            os._exit(1)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 30
    while not (rc_file.exists() and rc_file.read_text()):
        assert time.monotonic() < deadline, output
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                output += os.read(master, 4096)
            except OSError:
                break
    os.close(master)
    os.waitpid(leader, 0)
    text = output.decode(errors="replace").replace("\r", "")
    assert rc_file.read_text() == "1", text
    assert text.count("\n") == 1 and text.startswith("ocirt: "), text
    assert "raw mode" in text and "input/output error" in text, text
    assert ocirt(root, "list", "-q").stdout == ""
