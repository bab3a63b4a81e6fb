"""Every failure of the container's init after `create` has returned reaches someone: a seccomp
profile (with no_new_privileges, so it is loaded before create returns, as runc does) denies, one
at a time, each system call the init makes from then on. The init says what failed in one line
on the container's stderr, `start` fails in one line (with that message once it has opened the
fifo), nothing prints a traceback, and `delete --force` leaves nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import OCIRT, ocirt
from support import busybox_bundle

STOPPED = "cannot start a container that has stopped: "
# syscall denied -> (start's error, the init's line on the container's stderr); an init that
# died before start came says why through init.err
CASES = {
    # the wait for start: opening exec.fifo (blocks until start opens it)
    "openat": (STOPPED + "open exec fifo: operation not permitted",
               "open exec fifo: operation not permitted"),
    # the signal dispositions reset for the container's process
    "rt_sigaction": (STOPPED + "wait for start: operation not permitted",
                     "wait for start: operation not permitted"),
    # create's "committed" message
    "read": (STOPPED + "wait for the runtime: operation not permitted",
             "wait for the runtime: operation not permitted"),
    # the execve (through the sealed stub), after start was told the hooks passed
    "execveat": ("exec /bin/echo: operation not permitted",
                 "exec /bin/echo: operation not permitted"),
}


@pytest.mark.parametrize("syscall", sorted(CASES))
def test_denied_syscall_after_create_is_reported(tmp_path: Path, root: Path,
                                                 syscall: str) -> None:
    start_error, init_line = CASES[syscall]
    bundle = busybox_bundle(tmp_path / "b", "ocirt-test-init-failures", args=["echo", "hello"],
                            noNewPrivileges=True)
    config = json.loads((bundle / "config.json").read_text())
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": [syscall], "action": "SCMP_ACT_ERRNO"}],
    }
    (bundle / "config.json").write_text(json.dumps(config))
    log = tmp_path / "log.json"
    container_out = tmp_path / "container.out"
    with open(container_out, "wb") as out:
        created = subprocess.run([str(OCIRT), "--root", str(root), "create", "-b", str(bundle),
                                  "f1"], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 timeout=60)
    if created.returncode != 0:
        # Denied at once, the init's wait for create's "committed" can end (and the init with
        # it) before create has recorded the container: then create fails, in one line.
        assert syscall == "read", container_out.read_text()
        assert container_out.read_text().splitlines() == [
            f"ocirt: {init_line}", "ocirt: container init exited before it was ready"]
        assert ocirt(root, "state", "f1").returncode != 0  # nothing left
        return
    started = ocirt(root, "--log", str(log), "--log-format", "json", "start", "f1")
    assert started.returncode == 1
    assert started.stderr == f"ocirt: {start_error}\n", started.stderr
    assert json.loads(log.read_text().splitlines()[-1])["msg"] == start_error
    status = json.loads(ocirt(root, "state", "f1").stdout)["status"]
    assert status == "stopped"
    lines = container_out.read_text().splitlines()
    assert lines == [f"ocirt: {init_line}"], lines
    assert ocirt(root, "delete", "--force", "f1").returncode == 0


def test_close_denied_is_harmless(tmp_path: Path, root: Path) -> None:
    """The init's closes before execve only tidy up (every fd it keeps is close-on-exec)."""
    bundle = busybox_bundle(tmp_path / "b", "ocirt-test-init-failures", args=["echo", "hello"],
                            noNewPrivileges=True)
    config = json.loads((bundle / "config.json").read_text())
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["close"], "action": "SCMP_ACT_ERRNO"}],
    }
    (bundle / "config.json").write_text(json.dumps(config))
    res = ocirt(root, "run", "-b", str(bundle), "f2")
    assert res.returncode == 0 and res.stdout == "hello\n", res
