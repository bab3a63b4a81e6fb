"""The ``run``/``create`` flags for users, security and resources (``add_options``) and their
checked, recorded form (``options``): every value is checked here, before an image is pulled
or anything is made, so that a bad one is one line and exit status 125 with nothing left."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # not typing's: every command imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any


# the flags of the resources that ``update`` can change too (their dest: RESOURCE_FLAGS)
RESOURCE_FLAGS = ("memory", "memory_swap", "memory_reservation", "cpus", "cpu_shares",
                  "cpu_period", "cpu_quota", "cpuset_cpus", "cpuset_mems", "pids_limit")


def add_resource_options(p: Any) -> None:
    """The resource flags of run, create and update."""
    a = p.add_argument
    a("-m", "--memory", help="memory limit (e.g. 512m, 1g; at least 6m)")
    a("--memory-swap", help="memory plus swap limit (-1: unlimited swap)")
    a("--memory-reservation", help="memory soft limit")
    a("--cpus", help="number of CPUs (e.g. 1.5)")
    a("-c", "--cpu-shares", help="CPU shares (relative weight)")
    a("--cpu-period", help="CPU CFS period (us)")
    a("--cpu-quota", help="CPU CFS quota (us)")
    a("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    a("--cpuset-mems", help="memory nodes in which to allow execution (0-3, 0,1)")
    a("--pids-limit", help="process limit (-1: unlimited)")


def add_options(p: Any) -> None:
    a = p.add_argument
    a("--group-add", action="append", metavar="GROUP", help="an additional group (name in the "
      "image's /etc/group, or GID)")
    a("--read-only", action="store_true", help="mount the container's root read-only")
    a("--cap-add", action="append", metavar="CAP", help="add a capability (ALL: every one)")
    a("--cap-drop", action="append", metavar="CAP", help="drop a capability (ALL: every one)")
    a("--privileged", action="store_true", help="every capability and device, no seccomp, no "
      "masked paths, a read-write /sys")
    a("--ulimit", action="append", metavar="NAME=SOFT[:HARD]", help="a resource limit")
    add_resource_options(p)
    a("--oom-kill-disable", action="store_true", help="disable the OOM killer")
    a("--oom-score-adj", help="the OOM score adjustment (-1000 to 1000; lowering it needs "
      "CAP_SYS_RESOURCE)")
    a("--shm-size", help="size of /dev/shm (default 64m)")
    a("--sysctl", action="append", metavar="KEY=VALUE", help="a namespaced kernel parameter")
    a("--device", action="append", metavar="HOST[:CONTAINER][:RWM]", help="add a host device")
    a("--init", action="store_true", help="run tini as PID 1, forwarding signals and reaping")
    a("-l", "--label", action="append", metavar="KEY=VALUE", help="set metadata")
    a("--label-file", action="append", metavar="FILE", help="read labels from a file")
    a("--add-host", action="append", metavar="HOST:IP", help="add a line to /etc/hosts")
    a("--env-file", action="append", metavar="FILE", help="read environment variables")
    a("--platform", help="pull the image for this platform (os/arch[/variant])")


def _lines(path: str, flag: str) -> list[str]:
    """The lines of an env/label file (Docker's: blank lines and # comments skipped)."""
    from ..errors import OcishError

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise OcishError(f"{flag} {path}: {exc.strerror}", status=125) from None
    except UnicodeDecodeError:
        raise OcishError(f"{flag} {path}: not UTF-8 text", status=125) from None
    out = []
    for line in text.splitlines():
        line = line.lstrip()
        if line and not line.startswith("#"):
            key = line.partition("=")[0]
            if not key or any(c.isspace() for c in key):
                raise OcishError(f"{flag} {path}: variable '{key}' contains whitespaces",
                                 status=125)
            out.append(line)
    return out


def _add_hosts(specs: list[str]) -> list[list[str]]:
    import ipaddress

    from ..errors import OcishError

    out = []
    for text in specs:
        sep = "=" if "=" in text else ":"
        name, _, ip = text.partition(sep)
        try:
            ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            raise OcishError(f"invalid argument {text!r} for \"--add-host\" flag: invalid IP "
                             f"address in add-host: {ip!r}", status=125) from None
        if not name:
            raise OcishError(f"invalid argument {text!r} for \"--add-host\" flag: bad format",
                             status=125)
        out.append([name, ip.strip("[]")])
    return out


def options(args: argparse.Namespace, warn: Any) -> dict[str, Any]:
    """The recorded form of the flags, checked; *warn* prints a warning line."""
    from ..containers import resources, security
    from ..errors import OcishError

    security.check_caps(args.cap_add or [], args.cap_drop or [])
    rest, warnings = security.lsm_options(args.security_opt or [])
    for w in warnings:
        warn(w)
    network = args.network or "none"
    labels: dict[str, str] = {}
    for path in args.label_file or []:
        for line in _lines(path, "--label-file"):
            k, _, v = line.partition("=")
            labels[k] = v
    for item in args.label or []:
        k, _, v = item.partition("=")
        labels[k] = v
    env = [line for path in args.env_file or [] for line in _lines(path, "--env-file")]
    oom = None
    if args.oom_score_adj is not None:
        try:
            oom = int(args.oom_score_adj)
        except ValueError:
            oom = -10000
        if not -1000 <= oom <= 1000:
            raise OcishError(f"Invalid value {args.oom_score_adj}, range for oom score adj is "
                             "[-1000, 1000]", status=125)
        _check_oom_lowering(oom)
    shm = None
    if args.shm_size is not None:
        shm = resources.size(args.shm_size, "--shm-size")
        if shm <= 0:
            raise OcishError(f"invalid argument {args.shm_size!r} for \"--shm-size\" flag: "
                             "must be greater than 0", status=125)
    if args.init:
        import os

        from ..containers.hostconfig import INIT_BINARY

        if not os.path.isfile(INIT_BINARY):
            raise OcishError(f"--init: {INIT_BINARY} not found (apt-get install tini)",
                             status=125)
    if args.platform:
        from ..images import platforms

        platforms.parse(args.platform)
    return {
        "security_opt": rest, "group_add": args.group_add or [],
        "read_only": args.read_only, "cap_add": args.cap_add or [],
        "cap_drop": args.cap_drop or [], "privileged": args.privileged,
        "ulimits": resources.ulimits(args.ulimit or []),
        "resources": resources.resources(vars(args)),
        "oom_score_adj": oom, "shm_size": shm,
        "sysctls": resources.sysctls(args.sysctl or [], network),
        "devices": resources.devices(args.device or []), "init": args.init,
        "labels": labels, "add_hosts": _add_hosts(args.add_host or []),
        "env": env + (args.env or []), "platform": args.platform,
    }


def _check_oom_lowering(value: int) -> None:
    """The kernel lets a process set oom_score_adj below its own only with CAP_SYS_RESOURCE
    (a host without it, as this project's test VM: the runtimes fail with EPERM, runc with an
    obscure message): refused here, clearly."""
    from ..containers.security import CAP_NAMES, has_cap
    from ..errors import OcishError

    try:
        with open("/proc/self/oom_score_adj") as f:
            own = int(f.read())
    except (OSError, ValueError):
        return
    if value < own and not has_cap(CAP_NAMES.index("CAP_SYS_RESOURCE")):
        raise OcishError(f"--oom-score-adj {value}: lowering the OOM score adjustment below "
                         f"ocish's own ({own}) needs CAP_SYS_RESOURCE, which ocish does not "
                         "have here", status=125)


def check_platform(st: Any, image_id: str, image: str, wanted: str | None) -> None:
    """Refuse an image of another platform than --platform asked for (as Docker's), and one
    of another architecture than the host's: ocish runs no emulator."""
    from ..errors import OcishError
    from ..images import platforms
    from ..images import records as images

    cfg = images.image_config(st, image_id)
    host = platforms.host()
    have = platforms.Platform(str(cfg.get("os") or "linux"),
                              str(cfg.get("architecture") or host.architecture),
                              str(cfg.get("variant") or ""))
    if wanted:
        want = platforms.parse(wanted)
        if (have.os, have.architecture) != (want.os, want.architecture):
            raise OcishError(f"image with reference {image} was found but does not match the "
                             f"specified platform: wanted {want}, actual: {have}", status=125)
    if (have.os, have.architecture) != (host.os, host.architecture):
        raise OcishError(f"image {image} is for {have}, this host is {host}: it cannot run "
                         "here (no emulation)", status=125)
