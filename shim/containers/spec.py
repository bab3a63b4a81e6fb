"""config.json for a container: the image's config, the command line's options and the
security defaults Docker and podman give (Docker's default capabilities, masked and read-only
paths, a private /dev, generated /etc/hostname, /etc/hosts and /etc/resolv.conf).

The seccomp profile comes from seccomp.py; user names, capabilities, resource limits and the
other flags of hostconfig.py are applied to what ``generate`` makes.
"""

from __future__ import annotations

from ..errors import OcishError

TYPE_CHECKING = False  # not typing's: it costs the run path ms
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's default capability set (moby oci/caps/defaults.go)
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]

# Docker's (moby oci/defaults.go)
MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

NETWORKS = ("none", "host")


def command(image_config: dict[str, Any], entrypoint: str | None, cmd: list[str]) -> list[str]:
    """Docker's rule: ENTRYPOINT + CMD, where ``--entrypoint`` replaces the entrypoint (and
    then drops the image's CMD) and arguments after the image replace CMD."""
    if entrypoint is not None:
        ep = [entrypoint] if entrypoint else []
        args = ep + cmd
    else:
        ep = list(image_config.get("Entrypoint") or [])
        args = ep + (cmd or list(image_config.get("Cmd") or []))
    if not args:
        raise OcishError("no command specified", status=125)
    return args


def env(image_config: dict[str, Any], extra: list[str], hostname: str) -> list[str]:
    """The image's Env overridden by ``-e`` (``NAME`` alone takes ocish's own value, as
    Docker's does), with PATH and HOSTNAME as Docker sets them."""
    out: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    for item in list(image_config.get("Env") or []):
        k, _, v = str(item).partition("=")
        out[k] = v
    apply_env(out, extra)
    return [f"{k}={v}" for k, v in out.items()]


def apply_env(out: dict[str, str], extra: list[str]) -> None:
    """``-e NAME=VALUE`` sets, ``-e NAME`` takes ocish's own value (if it has one)."""
    import os

    for item in extra:
        k, sep, v = item.partition("=")
        if not k:
            raise OcishError(f"invalid environment variable: {item!r}", status=125)
        if sep:
            out[k] = v
        elif k in os.environ:
            out[k] = os.environ[k]


def user(spec: str) -> dict[str, Any]:
    """``uid[:gid]`` when numeric; a name is resolved in the image's /etc/passwd once the
    rootfs is mounted (hostconfig.apply), root until then."""
    uid, _, gid = (spec or "0").partition(":")
    return {"uid": int(uid) if uid.isdigit() else 0, "gid": int(gid) if gid.isdigit() else 0}


def generate(*, args: list[str], env_list: list[str], cwd: str, user_spec: str,
             hostname: str, network: str, rootfs: str, etc_files: dict[str, str],
             cgroups_path: str, seccomp_profile: dict[str, Any] | None = None,
             no_new_privileges: bool = False,
             extra_mounts: list[dict[str, Any]] | None = None, terminal: bool = False,
             console_size: list[int] | None = None) -> dict[str, Any]:
    """The runtime spec (config.json) of a container; *extra_mounts* (volumes, binds, tmpfs)
    come last and replace the defaults and generated /etc files at their destinations;
    *console_size*: the terminal's rows and columns when it starts."""
    if network not in NETWORKS:
        raise OcishError(f"--network {network!r}: only 'none' and 'host' exist yet "
                         "(bridge networks are not implemented)", status=125)
    if not cwd.startswith("/"):
        raise OcishError(f"--workdir {cwd!r}: the working directory must be absolute",
                         status=125)
    caps = list(DEFAULT_CAPS)
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if network == "none":
        namespaces.append({"type": "network"})
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        # a sysfs of its own needs a network namespace of its own; with the host's, the
        # host's /sys read-only (what runc does in that case)
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]} if network == "none" else
        {"destination": "/sys", "type": "bind", "source": "/sys",
         "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]},
    ]
    for dest, src in sorted(etc_files.items()):
        mounts.append({"destination": dest, "type": "bind", "source": src,
                       "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]})
    if extra_mounts:
        taken = {m["destination"] for m in extra_mounts}
        mounts = [m for m in mounts if m["destination"] not in taken] + extra_mounts
    devices = [{"allow": False, "access": "rwm"}] + [
        {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
        for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2),
                             (136, -1))]
    for d in devices[1:]:
        if d["minor"] == -1:
            del d["minor"]  # every minor (/dev/pts/*)
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path,
        "resources": {"devices": devices},
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
    }
    if seccomp_profile is not None:
        from .seccomp import to_spec

        linux["seccomp"] = to_spec(seccomp_profile, caps)
    config: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": terminal, "user": user(user_spec), "args": args, "env": env_list,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": no_new_privileges,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    }
    if terminal and console_size:
        config["process"]["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
    return config


def etc_hosts(hostname: str, network: str) -> str:
    """/etc/hosts: localhost and the container's own name (the host's entries too on the
    host's network)."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if network == "host":
        try:
            with open("/etc/hosts") as f:
                lines = [ln.rstrip("\n") for ln in f]
        except OSError:
            pass
    lines.append(f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"


def resolv_conf() -> str:
    """/etc/resolv.conf: a copy of the host's, as Docker makes it (whatever the network)."""
    try:
        with open("/etc/resolv.conf") as f:
            return f.read()
    except OSError:
        return ""


def security_options(opts: list[str]) -> dict[str, Any]:
    """``--security-opt``: ``seccomp=unconfined|FILE`` (default: Debian's containers-common
    profile, where installed) and ``no-new-privileges[=true|false]``."""
    import os

    from .seccomp import DEFAULT_PROFILE, load

    out: dict[str, Any] = {"seccomp": DEFAULT_PROFILE if os.path.exists(DEFAULT_PROFILE)
                           else "unconfined", "no_new_privileges": False}
    for opt in opts:
        key, sep, value = opt.replace(":", "=", 1).partition("=")
        if key == "seccomp" and sep and value:
            out["seccomp"] = value if value == "unconfined" else os.path.abspath(value)
        elif key == "no-new-privileges" and value in ("", "true", "false"):
            out["no_new_privileges"] = value != "false"
        else:
            raise OcishError(f"--security-opt {opt!r}: only seccomp=unconfined|FILE and "
                             "no-new-privileges are supported", status=125)
    if out["seccomp"] != "unconfined":
        load(out["seccomp"])  # refused now rather than at start
    return out
