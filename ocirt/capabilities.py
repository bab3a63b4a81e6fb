"""Linux capabilities: the five sets of process.capabilities.

The bounding set is dropped while still root; the effective, permitted and inheritable sets are
set through python-prctl after the uid switch (with keep-caps on across it); the ambient set,
which python-prctl does not cover, through prctl(PR_CAP_AMBIENT) directly.
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
    import prctl

    top = last_cap()
    known = set(prctl.ALL_CAPS)
    every = [c for c in range(top + 1) if c in known]
    eff, perm, inh = (numbers(s, top) for s in (caps.effective, caps.permitted, caps.inheritable))
    prctl.set_caps((sorted(eff & known), prctl.CAP_EFFECTIVE, True),
                   ([c for c in every if c not in eff], prctl.CAP_EFFECTIVE, False),
                   (sorted(perm & known), prctl.CAP_PERMITTED, True),
                   ([c for c in every if c not in perm], prctl.CAP_PERMITTED, False),
                   (sorted(inh & known), prctl.CAP_INHERITABLE, True),
                   ([c for c in every if c not in inh], prctl.CAP_INHERITABLE, False))
    _set_unnamed(eff, perm, inh, known, top)
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


def _set_unnamed(eff: set[int], perm: set[int], inh: set[int], known: set[int], top: int) -> None:
    """Capabilities newer than python-prctl's table (e.g. CAP_CHECKPOINT_RESTORE) via capset(2)."""
    if all(c in known for c in range(top + 1)):
        return
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    def mask(s: set[int]) -> int:
        return sum(1 << c for c in s)

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (mask(eff) >> shift) & 0xFFFFFFFF
        data[i].permitted = (mask(perm) >> shift) & 0xFFFFFFFF
        data[i].inheritable = (mask(inh) >> shift) & 0xFFFFFFFF
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "capset")
