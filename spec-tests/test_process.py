"""The container process (config.md "Process"): args, env, cwd, user and groups, umask,
rlimits, capabilities, noNewPrivileges, oomScoreAdj, signal state, seccomp and LSM labels."""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
from pathlib import Path

import pytest
from spec_support import DEFAULT_CAPS, Bundle, Containers, cap_mask, parse_status


@functools.cache
def active_lsms() -> list[str]:
    """The kernel's active LSMs, from securityfs (mounted privately if not mounted)."""
    lsm = Path("/sys/kernel/security/lsm")
    if lsm.exists():
        return lsm.read_text().strip().split(",")
    proc = subprocess.run(
        ["unshare", "--mount", "sh", "-c",
         "mount -t securityfs securityfs /sys/kernel/security && cat /sys/kernel/security/lsm"],
        capture_output=True, text=True, timeout=10,
    )
    if proc.returncode != 0:
        return []
    return proc.stdout.strip().split(",")


def status_of(ctr: Containers, b) -> dict[str, str]:
    return parse_status(ctr.output(b))


# --------------------------------------------------------------------------------------------
# args, env, cwd
# --------------------------------------------------------------------------------------------


def test_args_env_cwd(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", 'echo "$0|$1|$FOO|$(pwd)"', "zero", "one two"])
    b.process["env"].append("FOO=bar with spaces")
    b.process["cwd"] = "/etc"
    assert ctr.output(b) == "zero|one two|bar with spaces|/etc\n"


def test_cwd_only_root_can_enter(ctr: Containers) -> None:
    """A non-root process starts in a directory its user could not enter: the runtime enters
    cwd before it drops privileges (as runc)."""
    b = ctr.bundle(["sh", "-c", "pwd; id -u"])
    secret = b.rootfs / "secret"
    secret.mkdir(mode=0o700)
    os.chmod(secret, 0o700)
    b.process["cwd"] = "/secret"
    b.process["user"] = {"uid": 1000, "gid": 1000}
    without_dac_caps(b)
    assert ctr.output(b) == "/secret\n1000\n"


def without_dac_caps(b: Bundle) -> None:
    """No capability that lets the process itself into a directory it has no rights on."""
    caps = [c for c in DEFAULT_CAPS if c not in ("CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH")]
    b.process["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}


def test_args0_looked_up_in_process_path(ctr: Containers) -> None:
    """args[0] without a slash is searched in the PATH of process.env, not the runtime's."""
    b = ctr.bundle(["st-tool"])
    tool_dir = b.rootfs / "opt" / "st-bin"
    tool_dir.mkdir(parents=True)
    (tool_dir / "st-tool").write_text("#!/bin/sh\necho tool-ran\n")
    (tool_dir / "st-tool").chmod(0o755)
    b.process["env"] = ["PATH=/opt/st-bin:/bin"]
    assert ctr.output(b) == "tool-ran\n"


# --------------------------------------------------------------------------------------------
# user
# --------------------------------------------------------------------------------------------


def test_user_uid_gid_additional_gids(ctr: Containers) -> None:
    b = ctr.bundle(["cat", "/proc/self/status"])
    b.process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 20]}
    st = status_of(ctr, b)
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1000"] * 4
    assert sorted(int(g) for g in st["Groups"].split()) == [10, 20]


def test_user_id_output(ctr: Containers) -> None:
    b = ctr.bundle(["id"])
    b.process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [20]}
    assert ctr.output(b).strip() == "uid=1000(user) gid=1000(user) groups=20(dialout)"


def test_root_has_no_inherited_supplementary_groups(ctr: Containers) -> None:
    b = ctr.bundle(["cat", "/proc/self/status"])
    st = status_of(ctr, b)
    assert st["Uid"].split() == ["0"] * 4
    assert st["Groups"] == ""


def test_umask(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "umask"])
    b.process["user"]["umask"] = 0o027
    assert ctr.output(b).strip() == "0027"


@pytest.mark.needs_probe
def test_umask_default_0022(ctr: Containers, probe: str) -> None:
    """Without process.user.umask a container started the usual way (caller umask 0022) runs
    with 0022: new files come out 0644 and new directories 0755."""
    b = ctr.bundle(["sh", "-c", f"umask; {probe} umask; touch /tmp/f; mkdir /tmp/d; "
                                "stat -c %a /tmp/f /tmp/d"])
    b.mount(destination="/tmp", type="tmpfs", source="tmpfs", options=["size=1m", "mode=1777"])
    assert "umask" not in b.process["user"]
    created = ctr.create(b, preexec=lambda: os.umask(0o022))
    ctr.start(created.id)
    ctr.wait_stopped(created.id)
    assert (b.path / f"{created.id}.stderr").read_text() == ""
    assert (b.path / f"{created.id}.stdout").read_text().split() == [
        "0022", "0022", "644", "755"]


# --------------------------------------------------------------------------------------------
# rlimits
# --------------------------------------------------------------------------------------------


def test_rlimit_nofile_shell(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "ulimit -n; ulimit -Hn"])
    assert ctr.output(b).split() == ["1024", "1024"]


@pytest.mark.needs_probe
def test_rlimits(ctr: Containers, probe: str) -> None:
    b = ctr.bundle([probe, "rlimits"])
    b.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 4096},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 1048576},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
    ]
    limits = {line.split()[0]: line.split()[1:] for line in ctr.output(b).splitlines()}
    assert limits["RLIMIT_NOFILE"] == ["512", "4096"]
    assert limits["RLIMIT_CORE"] == ["0", "1048576"]
    assert limits["RLIMIT_NPROC"] == ["300", "400"]


# --------------------------------------------------------------------------------------------
# capabilities and privileges
# --------------------------------------------------------------------------------------------


def caps(st: dict[str, str]) -> dict[str, int]:
    return {k: int(st[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def test_capabilities_root(ctr: Containers) -> None:
    b = ctr.bundle(["cat", "/proc/self/status"])
    got = caps(status_of(ctr, b))
    want = cap_mask(DEFAULT_CAPS)
    assert got == {"CapInh": 0, "CapPrm": want, "CapEff": want, "CapBnd": want, "CapAmb": 0}


def test_capabilities_non_root_ambient(ctr: Containers) -> None:
    """A non-root process keeps exactly its ambient set across execve."""
    b = ctr.bundle(["cat", "/proc/self/status"])
    few = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.process["capabilities"] = {
        "bounding": list(DEFAULT_CAPS),
        "effective": few,
        "permitted": few,
        "inheritable": few,
        "ambient": few,
    }
    got = caps(status_of(ctr, b))
    m = cap_mask(few)
    assert got == {"CapInh": m, "CapPrm": m, "CapEff": m, "CapBnd": cap_mask(DEFAULT_CAPS),
                   "CapAmb": m}


def test_capabilities_none(ctr: Containers) -> None:
    b = ctr.bundle(["cat", "/proc/self/status"])
    b.process["capabilities"] = {"bounding": [], "effective": [], "permitted": []}
    got = caps(status_of(ctr, b))
    assert got == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}


def test_capabilities_only_net_bind_service(ctr: Containers) -> None:
    """A root process given only CAP_NET_BIND_SERVICE has exactly that bit everywhere (the
    default set's other capabilities are gone) and cannot do what the others allow."""
    b = ctr.bundle(["sh", "-c", "grep ^Cap /proc/self/status; touch /tmp/f; "
                                "{ chown 1000 /tmp/f; } 2>&1; echo chown=$?"])
    b.mount(destination="/tmp", type="tmpfs", source="tmpfs", options=["size=1m"])
    only = ["CAP_NET_BIND_SERVICE"]
    b.process["capabilities"] = {k: list(only) for k in ("bounding", "effective", "permitted")}
    out = ctr.output(b)
    got = caps(parse_status(out))
    m = cap_mask(only)
    assert m == 1 << 10
    assert got == {"CapInh": 0, "CapPrm": m, "CapEff": m, "CapBnd": m, "CapAmb": 0}, out
    assert "Operation not permitted" in out and "chown=1" in out, out


def test_capability_really_dropped(ctr: Containers) -> None:
    """Without CAP_CHOWN, root cannot give its file away."""
    b = ctr.bundle(["sh", "-c", "touch /tmp/f; { chown 1000 /tmp/f; } 2>&1; echo rc=$?"])
    b.mount(destination="/tmp", type="tmpfs", source="tmpfs", options=["size=1m"])
    b.process["capabilities"] = {k: [c for c in DEFAULT_CAPS if c != "CAP_CHOWN"]
                                 for k in ("bounding", "effective", "permitted")}
    out = ctr.output(b)
    assert "Operation not permitted" in out and "rc=1" in out, out


def test_capability_kept_works(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "touch /tmp/f; chown 1000 /tmp/f; stat -c %u /tmp/f"])
    b.mount(destination="/tmp", type="tmpfs", source="tmpfs", options=["size=1m"])
    assert ctr.output(b) == "1000\n"


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(ctr: Containers, nnp: bool) -> None:
    b = ctr.bundle(["cat", "/proc/self/status"])
    b.process["noNewPrivileges"] = nnp
    assert status_of(ctr, b)["NoNewPrivs"] == ("1" if nnp else "0")


def test_oom_score_adj(ctr: Containers) -> None:
    b = ctr.bundle(["cat", "/proc/self/oom_score_adj"])
    b.process["oomScoreAdj"] = 500
    assert ctr.output(b).strip() == "500"


def _all_signals_default() -> None:
    """Every signal's disposition to SIG_DFL, 32 and 33 included (libc refuses those, so
    rt_sigaction is called directly): the test alone decides what the runtime inherits."""
    nr = {"x86_64": 13, "aarch64": 134}[os.uname().machine]
    libc = ctypes.CDLL(None, use_errno=True)
    act = ctypes.create_string_buffer(32)  # SIG_DFL, no flags, empty mask
    for sig in range(1, 65):
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            libc.syscall(nr, sig, act, None, 8)


def _container_status_with_caller_state(ctr: Containers, setup) -> dict[str, str]:
    b = ctr.bundle(["cat", "/proc/self/status"])

    def caller_state() -> None:
        _all_signals_default()
        setup()

    created = ctr.create(b, preexec=caller_state)
    ctr.start(created.id)
    ctr.wait_stopped(created.id)
    return parse_status((b.path / f"{created.id}.stdout").read_text())


def test_no_ignored_signals_inherited(ctr: Containers) -> None:
    """Signals ignored by the runtime's caller (SIGHUP, SIGINT, SIGUSR1) are not ignored in
    the container process."""

    def ignore() -> None:
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_IGN)

    st = _container_status_with_caller_state(ctr, ignore)
    assert int(st["SigIgn"], 16) == 0, st["SigIgn"]
    assert int(st["SigBlk"], 16) == 0, st["SigBlk"]


@pytest.mark.runc_xfail(
    reason="a signal blocked in the caller's mask (SIGUSR2) stays blocked in the container"
)
def test_no_blocked_signals_inherited(ctr: Containers) -> None:
    """The container process starts with an empty signal mask whatever the caller blocked."""

    def block() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2, signal.SIGTERM, signal.SIGHUP})

    st = _container_status_with_caller_state(ctr, block)
    assert int(st["SigBlk"], 16) == 0, st["SigBlk"]
    assert int(st["SigIgn"], 16) == 0, st["SigIgn"]


# --------------------------------------------------------------------------------------------
# seccomp
# --------------------------------------------------------------------------------------------


def test_seccomp_errno_rule(ctr: Containers) -> None:
    """linux.seccomp: the filter is installed (Seccomp: 2) and a rule's errnoRet is returned."""
    b = ctr.bundle(["sh", "-c", "grep ^Seccomp: /proc/self/status; { mkdir /tmp/d; } 2>&1; "
                                "echo rc=$?; touch /tmp/f && echo touched"])
    b.mount(destination="/tmp", type="tmpfs", source="tmpfs", options=["size=1m"])
    b.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        ],
    }
    out = ctr.output(b)
    assert "Seccomp:\t2" in out or "Seccomp: 2" in out, out
    assert "Function not implemented" in out and "rc=1" in out, out  # ENOSYS = 38
    assert "touched" in out


def test_seccomp_default_errno_is_eperm(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "{ mkdir /tmp/d; } 2>&1; echo rc=$?"])
    b.mount(destination="/tmp", type="tmpfs", source="tmpfs", options=["size=1m"])
    b.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }
    out = ctr.output(b)
    assert "Operation not permitted" in out and "rc=1" in out, out


# --------------------------------------------------------------------------------------------
# LSM labels
# --------------------------------------------------------------------------------------------


def test_apparmor_profile_without_apparmor_fails(ctr: Containers) -> None:
    """runtime.md: if the runtime cannot create the environment in config.json it MUST
    generate an error; an AppArmor profile cannot be applied without AppArmor."""
    if "apparmor" in active_lsms():
        pytest.skip("AppArmor is enabled on this host")
    b = ctr.bundle(["true"])
    b.process["apparmorProfile"] = "spec-tests-profile"
    created = ctr.create(b, check=False)
    assert created.result.returncode != 0
    assert len(created.result.error_lines()) == 1
    assert "Traceback" not in created.result.stderr
    assert not (ctr.rt.root / b.id).exists()


def test_selinux_label_without_selinux_fails(ctr: Containers) -> None:
    if "selinux" in active_lsms():
        pytest.skip("SELinux is enabled on this host")
    b = ctr.bundle(["true"])
    b.process["selinuxLabel"] = "system_u:system_r:container_t:s0:c1,c2"
    created = ctr.create(b, check=False)
    assert created.result.returncode != 0
    assert len(created.result.error_lines()) == 1
    assert "Traceback" not in created.result.stderr
    assert not (ctr.rt.root / b.id).exists()
