"""linux.seccomp beyond a plain errno rule (config-linux.md "Seccomp"): architectures, argument
conditions, defaultErrnoRet, unknown syscall names, and SCMP_ACT_NOTIFY with a listener that
receives the container process state and the notify fd (then answers or drops it)."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import platform
import re
import select
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from spec_support import (
    Bundle,
    ConsoleReceiver,
    Containers,
    assert_failed_cleanly,
    wait_for_file_text,
)

X86_64 = platform.machine() == "x86_64"
# x86_64 syscall numbers of the calls the notify tests intercept.
NR_MKDIR, NR_MKDIRAT = 83, 258

MKDIR_PROBE = ("{ mkdir /tmp/d; } 2>&1; echo rc=$?; "
               "if test -d /tmp/d; then echo dir-exists; else echo no-dir; fi")


def with_tmp(b: Bundle) -> Bundle:
    b.mount(destination="/tmp", type="tmpfs", source="tmpfs", options=["size=1m"])
    return b


# --------------------------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(not X86_64, reason="the architecture list is written for x86_64")
def test_architectures_list(ctr: Containers) -> None:
    """A profile naming the native and the compat architectures filters the native calls."""
    b = with_tmp(ctr.bundle(["sh", "-c", "grep ^Seccomp: /proc/self/status; " + MKDIR_PROBE]))
    b.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }
    out = ctr.output(b)
    assert re.search(r"^Seccomp:\s+2$", out, re.M), out
    assert "Operation not permitted" in out and "rc=1" in out and "no-dir" in out, out


DENY_CLOSE_RANGE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO"}],
}


@pytest.mark.parametrize("nnp", [False, True])
def test_profile_denying_close_range_runs(ctr: Containers, nnp: bool) -> None:
    """The runtime's own last steps need nothing the profile might deny: a profile that denies
    close_range (as any allow-list written before it existed does) still runs the process, as
    the init and as an exec'd process, with and without no_new_privileges (which moves the
    filter to the last moment)."""
    b = ctr.bundle(["sh", "-c", "echo hello; sleep 100"])
    b.linux["seccomp"] = DENY_CLOSE_RANGE
    b.process["noNewPrivileges"] = nnp
    ctr.create(b)
    ctr.start(b.id)
    wait_for_file_text(b.path / f"{b.id}.stdout", "hello")
    res = ctr.rt("exec", b.id, "sh", "-c", "echo exec-hello", timeout=30)
    assert res.ok and res.stdout == "exec-hello\n", res.describe()


@pytest.mark.runc_xfail(reason="seccomp flags are not yet supported by runc 1.1.5 (create fails)")
@pytest.mark.parametrize("flags", [["SECCOMP_FILTER_FLAG_LOG"],
                                   ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                                   ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"]])
def test_filter_flags(ctr: Containers, flags: list[str]) -> None:
    """linux.seccomp.flags reach seccomp(2): the filter loads with them and still applies."""
    b = with_tmp(ctr.bundle(["sh", "-c", "grep ^Seccomp: /proc/self/status; " + MKDIR_PROBE]))
    b.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "flags": flags,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }
    out = ctr.output(b)
    assert re.search(r"^Seccomp:\s+2$", out, re.M), out
    assert "Operation not permitted" in out and "no-dir" in out, out


def test_arg_condition_masked_eq(ctr: Containers) -> None:
    """SCMP_CMP_MASKED_EQ on the mode argument: making a file world-writable is refused
    (mode & 0o002 == 0o002), any other chmod works."""
    b = with_tmp(ctr.bundle(["sh", "-c", "touch /tmp/f; { chmod 777 /tmp/f; } 2>&1; echo rc=$?; "
                                         "chmod 750 /tmp/f; echo rc=$?; stat -c %a /tmp/f"]))
    world_writable = {"value": 0o002, "valueTwo": 0o002, "op": "SCMP_CMP_MASKED_EQ"}
    b.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, **world_writable}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 2, **world_writable}]},
        ],
    }
    out = ctr.output(b)
    assert out.splitlines() == ["chmod: /tmp/f: Operation not permitted", "rc=1", "rc=0",
                                "750"], out


def test_arg_condition_eq(ctr: Containers) -> None:
    """SCMP_CMP_EQ on kill's signal argument: SIGUSR1 (10) is refused, SIGUSR2 gets through."""
    b = ctr.bundle(["sh", "-c", "trap 'echo got-usr1' USR1; trap 'echo got-usr2' USR2; "
                                "{ kill -USR1 $$; } 2>&1; echo rc=$?; kill -USR2 $$; echo rc=$?"])
    b.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}],
    }
    out = ctr.output(b)
    assert "got-usr1" not in out, out
    assert "Operation not permitted" in out, out
    assert out.splitlines()[-3:] == ["rc=1", "got-usr2", "rc=0"], out


def native_syscall_names() -> list[str]:
    for path in ["/usr/include/asm/unistd_64.h",
                 *glob.glob("/usr/include/*-linux-gnu/asm/unistd_64.h")]:
        with contextlib.suppress(OSError):
            text = Path(path).read_text()
            names = re.findall(r"^#define __NR_(\w+)\s+\d+", text, re.M)
            if names:
                return names
    return []


@pytest.mark.skipif(not X86_64, reason="the allow-list is built from the x86_64 syscall table")
def test_default_errno_ret(ctr: Containers) -> None:
    """defaultAction SCMP_ACT_ERRNO with defaultErrnoRet: every syscall not allowed by a rule
    fails with that errno (ENOSPC here) instead of EPERM."""
    names = [n for n in native_syscall_names() if n not in ("mkdir", "mkdirat")]
    if len(names) < 300:
        pytest.skip("kernel headers with the x86_64 syscall table (asm/unistd_64.h) not found")
    b = with_tmp(ctr.bundle(["sh", "-c", MKDIR_PROBE + "; touch /tmp/f && echo touched"]))
    b.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 28,  # ENOSPC
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    }
    out = ctr.output(b)
    assert "No space left on device" in out and "rc=1" in out and "no-dir" in out, out
    assert "touched" in out, out


@pytest.mark.skipif(not X86_64, reason="the allow-list is built from the x86_64 syscall table")
@pytest.mark.needs_probe
def test_syscall_newer_than_the_profile_gets_enosys(ctr: Containers, probe: str) -> None:
    """A syscall number above every syscall the profile names fails with ENOSYS, not with the
    default errno, so that programs fall back from syscalls the profile does not know (as
    runc); one the profile leaves out below that still gets the default errno."""
    names = [n for n in native_syscall_names() if n not in ("mkdir", "mkdirat")]
    if len(names) < 300:
        pytest.skip("kernel headers with the x86_64 syscall table (asm/unistd_64.h) not found")
    b = ctr.bundle([probe, "syscall", "1000", str(NR_MKDIR)])
    b.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    }
    assert ctr.output(b).splitlines() == ["1000 errno=38", f"{NR_MKDIR} errno=1"]


def test_unknown_syscall_name_is_skipped(ctr: Containers) -> None:
    """A syscall name the runtime's seccomp library does not know (a newer kernel's, or a
    typo) is skipped: the container starts and the rest of the rule applies."""
    b = with_tmp(ctr.bundle(["sh", "-c", MKDIR_PROBE]))
    b.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["st_no_such_syscall", "mkdir", "mkdirat"],
                      "action": "SCMP_ACT_ERRNO", "errnoRet": 38}],
    }
    out = ctr.output(b)
    assert "Function not implemented" in out and "rc=1" in out and "no-dir" in out, out


# --------------------------------------------------------------------------------------------
# SCMP_ACT_NOTIFY and the seccomp agent protocol
# --------------------------------------------------------------------------------------------

# <linux/seccomp.h>: struct seccomp_notif is 80 bytes, struct seccomp_notif_resp 24 bytes.
NOTIF = struct.Struct("<QII iIQ6Q")
NOTIF_RESP = struct.Struct("<QqiI")
SECCOMP_IOCTL_NOTIF_RECV = (3 << 30) | (NOTIF.size << 16) | (ord("!") << 8) | 0
SECCOMP_IOCTL_NOTIF_SEND = (3 << 30) | (NOTIF_RESP.size << 16) | (ord("!") << 8) | 1


class SeccompAgent:
    """Answers every notification on a seccomp notify fd with 'success, return 0' (so a
    notified mkdir claims success without creating anything) until stopped."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen: list[dict[str, int]] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                r, _, _ = select.select([self.fd], [], [], 0.05)
                if not r:
                    continue
                buf = bytearray(NOTIF.size)
                try:
                    fcntl.ioctl(self.fd, SECCOMP_IOCTL_NOTIF_RECV, buf, True)
                except OSError:
                    continue  # the target went away between poll and receive
                nid, pid, _flags, nr, _arch, _ip, *_args = NOTIF.unpack(buf)
                self.seen.append({"pid": pid, "nr": nr})
                resp = bytearray(NOTIF_RESP.pack(nid, 0, 0, 0))
                with contextlib.suppress(OSError):
                    fcntl.ioctl(self.fd, SECCOMP_IOCTL_NOTIF_SEND, resp, True)
        except BaseException as e:  # noqa: BLE001 - reported to the test
            self.error = e

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def notify_bundle(ctr: Containers, listener: Path, args: list[str]) -> Bundle:
    b = with_tmp(ctr.bundle(args))
    b.config["annotations"] = {"org.spec-tests.key": "value"}
    b.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": str(listener),
        "listenerMetadata": "spec-tests-metadata",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }
    return b


def container_process_state(msg: Any) -> dict[str, Any]:
    raw = msg.payload + msg.extra_data
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise AssertionError(f"listener payload is not one JSON object ({e}): {raw!r}") from None


@pytest.mark.skipif(not X86_64, reason="syscall numbers checked are x86_64's")
def test_notify_listener_gets_state_and_answers(
    ctr: Containers, console: Callable[[], ConsoleReceiver]
) -> None:
    """The runtime connects to listenerPath and sends, in one connection, the container
    process state (JSON) with the seccomp notify fd (SCM_RIGHTS); the agent's answers decide
    what the notified syscall returns in the container."""
    recv = console()
    b = notify_bundle(ctr, recv.path, ["sh", "-c", MKDIR_PROBE])
    created = ctr.create(b)
    # runc sends during create; a runtime that loads the filter at start may send then. Either
    # way the container blocks in mkdir until the agent below answers.
    ctr.start(b.id)
    msg = recv.wait(timeout=10)
    assert recv.connections == 1
    assert len(msg.fds) == 1 and msg.cmsg_count == 1, msg
    fd = msg.fds[0]
    assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:seccomp notify"
    state = container_process_state(msg)
    assert isinstance(state.get("ociVersion"), str) and state["ociVersion"], state
    assert state.get("fds") == ["seccompFd"], state
    assert state.get("pid") == created.pid, state
    assert state.get("metadata") == "spec-tests-metadata", state
    st = state.get("state") or {}
    assert st.get("id") == b.id and st.get("pid") == created.pid, state
    assert st.get("bundle") == str(b.path), state
    assert st.get("status") in ("creating", "created", "running"), state
    assert st.get("annotations") == {"org.spec-tests.key": "value"}, state
    assert isinstance(st.get("ociVersion"), str), state

    agent = SeccompAgent(fd)
    try:
        ctr.wait_stopped(b.id, timeout=10)
    finally:
        agent.stop()
    assert agent.error is None, agent.error
    out = (b.path / f"{b.id}.stdout").read_text()
    # The agent said "success" without creating anything.
    assert out.splitlines() == ["rc=0", "no-dir"], out
    assert agent.seen and all(n["nr"] in (NR_MKDIR, NR_MKDIRAT) for n in agent.seen), agent.seen


def test_notify_listener_closing_fd_fails_syscall(
    ctr: Containers, console: Callable[[], ConsoleReceiver]
) -> None:
    """Once the agent closes the notify fd, notified syscalls fail with ENOSYS and the
    container goes on."""
    recv = console()
    b = notify_bundle(ctr, recv.path, ["sh", "-c", MKDIR_PROBE + "; echo done"])
    ctr.create(b)
    ctr.start(b.id)
    msg = recv.wait(timeout=10)
    assert len(msg.fds) == 1, msg
    for fd in msg.fds:
        os.close(fd)
    msg.fds = []
    ctr.wait_stopped(b.id, timeout=10)
    out = (b.path / f"{b.id}.stdout").read_text()
    assert "Function not implemented" in out and "rc=1" in out and "done" in out, out


def test_notify_listener_unreachable_fails_create(ctr: Containers, workdir: Path) -> None:
    """If sending to listenerPath fails, the runtime MUST generate an error."""
    b = notify_bundle(ctr, workdir / "no-such-listener.sock", ["true"])
    created = ctr.create(b, check=False)
    assert_failed_cleanly(ctr, b, created.result)
