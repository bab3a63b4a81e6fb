"""Linux capabilities: the five sets of process.capabilities.

The bounding set is dropped while still root (prctl PR_CAPBSET_DROP); the effective, permitted
and inheritable sets are set together by one capset(2) after the uid switch (with keep-caps on
across it); the ambient set through prctl(PR_CAP_AMBIENT). These three calls are all of it, so
they are made directly: a library (python-prctl, libcap) would cost an import of about a
millisecond in every create and exec, and would not know capabilities newer than its table.
"""

from __future__ import annotations

import errno

from .linux import syscalls as sc
from .spec import Capabilities

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: i for i, name in enumerate(NAMES)}


def last_cap() -> int:
    """The highest capability this kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def numbers(names: list[str], top: int) -> set[int]:
    """Capability numbers for ``names``; names unknown to this kernel are skipped, as runc does."""
    return {NUMBERS[n] for n in names if n in NUMBERS and NUMBERS[n] <= top}


def drop_bounding(caps: Capabilities) -> None:
    """Drop from the bounding set everything not listed. Needs CAP_SETPCAP: call as root."""
    top = last_cap()
    keep = numbers(caps.bounding, top)
    for cap in range(top + 1):
        if cap not in keep:
            sc.prctl(24, cap)  # PR_CAPBSET_DROP


def apply(caps: Capabilities) -> None:
    """Set effective, permitted, inheritable and ambient sets (after the uid switch)."""
    top = last_cap()
    eff, perm, inh = (_mask(numbers(s, top)) for s in
                      (caps.effective, caps.permitted, caps.inheritable))
    sc.capset(eff, perm, inh)
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in sorted(numbers(caps.ambient, top)):
        # An ambient capability must be permitted and inheritable, or raising it fails with
        # EPERM; runc only warns about that, and buildah's RUN steps list ambient capabilities
        # with an empty inheritable set: skip it, as runc ends up doing.
        try:
            sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, cap)
        except OSError as exc:
            if exc.errno != errno.EPERM:
                raise


def _mask(caps: set[int]) -> int:
    return sum(1 << c for c in caps)
