"""``--cap-add``/``--cap-drop``, ``--privileged``, ``--read-only`` and the LSM options of
``--security-opt`` (apparmor=, label=), applied to a generated config.json as Docker and
podman do."""

from __future__ import annotations

import os
import stat
from typing import Any

from ..errors import OcishError

# by number (linux/capability.h), for the bounding set's bits; ocirt has the same table,
# but ocish drives any runtime and imports nothing of ocirt's
CAP_NAMES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]
APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
# Docker's HostDevices skips these dirs of /dev (and /dev/console)
_SKIP_DEV = ("/dev/pts", "/dev/shm", "/dev/fd", "/dev/mqueue", "/dev/.lxc", "/dev/.udev")


def _cap_mask(field: str) -> int | None:
    """A capability set of this process (CapBnd, CapEff) from /proc/self/status."""
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1], 16) for ln in f if ln.startswith(field + ":"))
    except (OSError, StopIteration, ValueError):
        return None


def has_cap(number: int) -> bool:
    """Whether this process holds capability *number* (effective)."""
    eff = _cap_mask("CapEff")
    return eff is None or bool(eff >> number & 1)


def all_caps() -> list[str]:
    """Every capability this process can give (its bounding set), as podman's privileged: the
    kernel may know more than the engine holds (here CAP_SYS_RESOURCE is missing)."""
    bnd = _cap_mask("CapBnd")
    if bnd is None:
        return list(CAP_NAMES)
    return [name for i, name in enumerate(CAP_NAMES) if bnd >> i & 1]


def _cap_name(text: str) -> str:
    name = text.strip().upper()
    name = name if name.startswith("CAP_") else "CAP_" + name
    if name != "CAP_ALL" and name not in CAP_NAMES:
        raise OcishError(f'unknown capability: "{text}"', status=125)
    return name


def check_caps(adds: list[str], drops: list[str]) -> None:
    """Refuse an unknown capability name before anything is made."""
    for c in adds + drops:
        _cap_name(c)


def capabilities(default: list[str], adds: list[str], drops: list[str],
                 privileged: bool) -> list[str]:
    """Docker's rule (moby oci/caps.TweakCapabilities): ALL in --cap-add gives every
    capability but the dropped; ALL in --cap-drop leaves only the added; case and the CAP_
    prefix do not matter."""
    add = [_cap_name(c) for c in adds]
    drop = [_cap_name(c) for c in drops]
    if privileged or "CAP_ALL" in add:
        base = all_caps()
    elif "CAP_ALL" in drop:
        base = []
    else:
        base = list(default)
    base = [c for c in base if c not in drop or c in add]
    base += [c for c in add if c != "CAP_ALL" and c not in base]
    return base


def lsm_options(opts: list[str]) -> tuple[list[str], list[str]]:
    """Take ``apparmor=`` and ``label=`` out of --security-opt (the rest is spec's); returns
    (the rest, warnings). apparmor=unconfined is always fine; a profile needs the LSM;
    label= needs SELinux, which this host does not have: accepted with a warning, as podman
    does."""
    rest, warnings = [], []
    for opt in opts:
        key, sep, value = opt.replace(":", "=", 1).partition("=")
        if key == "apparmor" and sep and value:
            if value != "unconfined" and not _apparmor_enabled():
                # podman's words
                raise OcishError(f'apparmor profile "{value}" specified, but Apparmor is not '
                                 "enabled on this system", status=125)
            if value != "unconfined":
                warnings.append(f"--security-opt {opt}: AppArmor profiles are not applied by "
                                "ocish; ignored")
        elif key == "label" and sep and value:
            if value.split(":", 1)[0] not in ("disable", "user", "role", "type", "level",
                                              "filetype", "nested"):
                raise OcishError(f"--security-opt {opt}: invalid label option", status=125)
            if not os.path.isdir("/sys/fs/selinux"):
                warnings.append(f"--security-opt {opt}: SELinux is not enabled on this host; "
                                "ignored")
        else:
            rest.append(opt)
    return rest, warnings


def _apparmor_enabled() -> bool:
    try:
        with open(APPARMOR_ENABLED) as f:
            return f.read().strip().upper().startswith("Y")
    except OSError:
        return False


def host_devices() -> list[dict[str, Any]]:
    """Every device node of the host's /dev (for --privileged), as Docker's HostDevices."""
    out = []
    for dirpath, dirnames, filenames in os.walk("/dev"):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in _SKIP_DEV]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path == "/dev/console":
                continue
            dev = device_entry(path, path)
            if dev is not None:
                out.append(dev)
    return out


def device_entry(host: str, dest: str) -> dict[str, Any] | None:
    """linux.devices' entry for the host's device node *host* at *dest*; None if it is not
    one (lstat: a symlink in /dev is not a device)."""
    try:
        st = os.lstat(host)
    except OSError:
        return None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return {"path": dest, "type": kind, "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}


def make_privileged(config: dict[str, Any]) -> None:
    """--privileged: every device, no masked or read-only paths, a read-write /sys, no
    seccomp (what Docker's privileged gives; the capabilities are set by the caller)."""
    linux = config["linux"]
    linux["maskedPaths"], linux["readonlyPaths"] = [], []
    linux.pop("seccomp", None)
    for m in config["mounts"]:
        if m["destination"] == "/sys":
            m["options"] = [o for o in m["options"] if o != "ro"]
    have = {d["path"] for d in linux.get("devices") or []}
    linux["devices"] = (linux.get("devices") or []) + [d for d in host_devices()
                                                        if d["path"] not in have]
    linux["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
