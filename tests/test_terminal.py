"""Foreground `run` and `exec -t` in a real terminal (tmux): the container gets a pty of the
terminal's size, keystrokes reach it, and the exit status comes back."""

from __future__ import annotations

import json
import shutil
import subprocess
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
