"""`create` options that containerd (go-runc) and conmon pass besides --bundle/--pid-file:
`--no-pivot`, `--no-new-keyring` and `--pidfd-socket` (runtime-cli-contract.md §2.1, §3)."""

from __future__ import annotations

import os
import select
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from spec_support import ConsoleReceiver, Containers, wait_pid_gone

# --------------------------------------------------------------------------------------------
# --no-pivot
# --------------------------------------------------------------------------------------------


def test_no_pivot_root_is_the_rootfs(ctr: Containers) -> None:
    """With --no-pivot (rootfs on a ramdisk, where pivot_root is impossible) the container
    still runs with the bundle's rootfs as its root, cannot climb above it, and gets the
    configured mounts."""
    b = ctr.bundle(["sh", "-c", "ls -a / /..; echo ---; cat /proc/self/mountinfo"])
    (b.rootfs / "only-in-rootfs").write_text("")
    created = ctr.create(b, extra=["--no-pivot"])
    # From the host: the init's root directory is the rootfs directory itself.
    root_st = os.stat(f"/proc/{created.pid}/root")
    want = os.stat(b.rootfs)
    assert (root_st.st_dev, root_st.st_ino) == (want.st_dev, want.st_ino)
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    out = (b.path / f"{b.id}.stdout").read_text()
    assert (b.path / f"{b.id}.stderr").read_text() == ""
    listing, _, mountinfo = out.partition("---\n")
    names = listing.split()
    assert "only-in-rootfs" in names, out
    assert "work" not in names and "usr" not in names, out
    points = [line.split()[4] for line in mountinfo.splitlines() if len(line.split()) > 4]
    assert points and points[0] == "/", mountinfo
    for point in ("/proc", "/dev", "/dev/pts", "/sys"):
        assert point in points, mountinfo


# --------------------------------------------------------------------------------------------
# --no-new-keyring
# --------------------------------------------------------------------------------------------


def host_session_keyring(ctr: Containers) -> str:
    assert ctr.res.probe is not None
    proc = subprocess.run([str(ctr.res.probe), "keyring"], capture_output=True, text=True,
                          timeout=10)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.needs_probe
def test_new_session_keyring_per_container(ctr: Containers, probe: str) -> None:
    """By default every container gets its own session keyring (not the caller's)."""
    ids = []
    for _ in range(2):
        b = ctr.bundle([probe, "keyring"])
        ids.append(ctr.output(b).strip())
    assert all(i.isdigit() for i in ids), ids
    assert ids[0] != ids[1], ids
    assert host_session_keyring(ctr) not in ids


@pytest.mark.needs_probe
def test_no_new_keyring_inherits_callers_keyring(ctr: Containers, probe: str) -> None:
    """`--no-new-keyring` (conmon with keyring=false, containerd NoNewKeyring) is accepted and
    the container keeps the session keyring of the calling process."""
    b = ctr.bundle([probe, "keyring"])
    got = ctr.output(b, extra=["--no-new-keyring"]).strip()
    assert got == host_session_keyring(ctr)


# --------------------------------------------------------------------------------------------
# --pidfd-socket
# --------------------------------------------------------------------------------------------


def fdinfo_pid(fd: int) -> int | None:
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "Pid":
            return int(value)
    return None


@pytest.mark.runc_xfail(reason="`create --pidfd-socket` is not supported (runc >= 1.2 has it)")
def test_pidfd_socket_receives_pidfd_of_init(
    ctr: Containers, console: Callable[[], ConsoleReceiver]
) -> None:
    """go-runc may pass `--pidfd-socket S`: S receives, with the console-socket framing, exactly
    one fd that is a pidfd of the container's init, before create returns."""
    recv = console()
    b = ctr.bundle(["sleep", "100"])
    created = ctr.create(b, extra=["--pidfd-socket", str(recv.path)])
    msg = recv.wait(timeout=5)
    assert len(msg.fds) == 1 and msg.cmsg_count == 1, msg
    fd = msg.fds[0]
    assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[pidfd]"
    assert fdinfo_pid(fd) == created.pid
    # It really tracks the init: it becomes readable when the init exits.
    ctr.start(b.id)
    r, _, _ = select.select([fd], [], [], 0.2)
    assert not r, "pidfd readable while the init is running"
    ctr.kill(b.id, "9")
    assert wait_pid_gone(created.pid, 5)
    r, _, _ = select.select([fd], [], [], 5)
    assert r, "pidfd did not become readable after the init exited"
