"""``ocirt features``: what this runtime really implements, in runtime-spec features.md form.

containerd enables user-namespaced pods, idmapped mounts and recursive read-only mounts from this
report, so nothing is listed here that does not work.
"""

from __future__ import annotations

from . import SPEC_VERSION, __version__
from .capabilities import NAMES, last_cap
from .linux.mounts import _FLAGS, PROPAGATION, RECURSIVE
from .spec import HOOK_KINDS, NAMESPACE_TYPES

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any


def _seccomp() -> dict[str, Any]:
    from . import seccomp

    try:
        with open("/proc/self/status") as f:
            enabled = any(line.startswith("Seccomp:") for line in f)
    except OSError:
        enabled = False
    return {"enabled": enabled, "actions": sorted(seccomp.ACTIONS),
            "operators": sorted(seccomp.OPERATORS), "archs": sorted(seccomp.ARCHES),
            "knownFlags": sorted([*seccomp.FLAGS, "SECCOMP_FILTER_FLAG_NEW_LISTENER"]),
            "supportedFlags": sorted(seccomp.FLAGS)}


def features() -> dict[str, Any]:
    from .linux.lsm import active_lsms

    lsms = active_lsms()
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": sorted([*_FLAGS, *PROPAGATION, *RECURSIVE, "tmpcopyup"]),
        "linux": {
            "namespaces": list(NAMESPACE_TYPES),
            "capabilities": list(NAMES[: last_cap() + 1]),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": False},
            "seccomp": _seccomp(),
            "apparmor": {"enabled": "apparmor" in lsms},
            "selinux": {"enabled": "selinux" in lsms},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {"org.opencontainers.ocirt.version": __version__},
    }
