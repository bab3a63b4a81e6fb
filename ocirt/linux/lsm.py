"""Linux security modules: which are active on the host."""

from __future__ import annotations


def active_lsms() -> frozenset[str]:
    """The host's active LSMs; read by the runtime, since pivot_root hides securityfs."""
    try:
        with open("/sys/kernel/security/lsm") as f:
            return frozenset(f.read().strip().split(","))
    except OSError:
        return frozenset()
