"""Docker's container JSON (``inspect``), for the parts ocish has.

One function per section, each taking the storage and the container, so that a part of the
engine that adds a feature (volumes, resources, health, restart policies) adds its fields in
its section with one line. Keys come in Docker's order; values Docker would show for a
feature ocish does not have are Docker's zero values.
"""

from __future__ import annotations

import os

from ..storage.root import Storage
from ..volumes import attach
from . import lifecycle
from .records import Container

TYPE_CHECKING = False  # not typing's: ps imports this module for sizes, labels and mounts
if TYPE_CHECKING:
    from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"
DRIVER = "overlay2"  # what Docker calls an overlayfs graph driver; ocish's is one


def inspect(st: Storage, ctr: Container, size: bool = False) -> dict[str, Any]:
    """One container as ``docker inspect`` shows it (``-s``: with SizeRw and SizeRootFs)."""
    o = ctr.options
    base = ctr.dir(st)
    out: dict[str, Any] = {
        "Id": ctr.id,
        "Created": ctr.created,
        "Path": o["args"][0],
        "Args": o["args"][1:],
        "State": state(st, ctr),
        "Image": "sha256:" + ctr.image_id.removeprefix("sha256:"),
        "ResolvConfPath": f"{base}/userdata/resolv.conf",
        "HostnamePath": f"{base}/userdata/hostname",
        "HostsPath": f"{base}/userdata/hosts",
        "LogPath": lifecycle.paths(st, ctr).log if log_driver(ctr) != "none" else "",
        "Name": "/" + ctr.name,
        "RestartCount": int(o.get("restart_count") or 0),
        "Driver": DRIVER,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config(st, ctr),
        "GraphDriver": graph_driver(st, ctr),
    }
    if size:
        rw, rootfs = sizes(st, ctr)
        out.update(SizeRw=rw, SizeRootFs=rootfs)
    out.update(Mounts=mounts(st, ctr), Config=config(st, ctr),
               NetworkSettings=network_settings(st, ctr))
    from .control import inspect_state

    return inspect_state(st, ctr, out)


def state(st: Storage, ctr: Container) -> dict[str, Any]:
    running = ctr.status in ("running", "paused")
    return {
        "Status": ctr.status, "Running": running, "Paused": ctr.status == "paused",
        "Restarting": ctr.status == "restarting", "OOMKilled": False, "Dead": False,
        "Pid": ctr.pid if running else 0, "ExitCode": ctr.exit_code, "Error": ctr.error,
        "StartedAt": ctr.started or ZERO_TIME, "FinishedAt": ctr.finished or ZERO_TIME,
    }


def log_driver(ctr: Container) -> str:
    return str(ctr.options.get("log_driver") or "k8s-file")


def host_config(st: Storage, ctr: Container) -> dict[str, Any]:
    o = ctr.options
    return {
        "Binds": None, "ContainerIDFile": "",
        "LogConfig": {"Type": log_driver(ctr), "Config": dict(o.get("log_opts") or {})},
        "NetworkMode": o.get("network") or "none", "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": bool(o.get("rm")), "VolumeDriver": "", "VolumesFrom": None,
        "CapAdd": None, "CapDrop": None, "CgroupnsMode": "host", "Dns": [], "DnsOptions": [],
        "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private",
        "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
        "PublishAllPorts": False, "ReadonlyRootfs": False,
        "SecurityOpt": [f"seccomp={o.get('seccomp')}"] +
        (["no-new-privileges"] if o.get("no_new_privileges") else []),
        "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864, "Runtime": ctr.runtime,
        "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
        "CgroupParent": o.get("cgroup_parent") or "", "CpusetCpus": "", "CpusetMems": "",
        "Devices": [], "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None,
        "OomKillDisable": False, "PidsLimit": None, "Ulimits": None,
        "MaskedPaths": list(_spec_list("MASKED_PATHS")),
        "ReadonlyPaths": list(_spec_list("READONLY_PATHS")),
        **attach.host_config(o),
    }


def _spec_list(name: str) -> list[str]:
    from . import spec

    return list(getattr(spec, name))


def graph_driver(st: Storage, ctr: Container) -> dict[str, Any]:
    """The overlayfs layers: the image's snapshots (top first), the container's upper and
    work dirs and the mount point."""
    from ..errors import OcishError
    from ..images import records as images

    try:
        chains = images.layer_chains(images.image_config(st, ctr.image_id))
    except (OSError, OcishError, ValueError):
        chains = []
    base = ctr.dir(st)
    return {"Data": {"LowerDir": ":".join(st.snapshots.fs(c) for c in reversed(chains)),
                     "MergedDir": f"{lifecycle.paths(st, ctr).bundle}/rootfs",
                     "UpperDir": f"{base}/upper", "WorkDir": f"{base}/work"},
            "Name": DRIVER}


def sizes(st: Storage, ctr: Container) -> tuple[int, int]:
    """(SizeRw, SizeRootFs): the bytes of the files in the container's upper dir, and those
    plus the image's."""
    from ..errors import OcishError
    from ..images import records as images
    from ..storage.treesize import tree_size

    rw = tree_size(os.path.join(ctr.dir(st), "upper"))
    try:
        image = images.get(st, ctr.image_id).size
    except OcishError:
        image = 0
    return rw, rw + image


def mounts(st: Storage, ctr: Container) -> list[dict[str, Any]]:
    """Docker's Mounts: the container's volumes, binds and tmpfs mounts."""
    return attach.inspect_mounts(st, ctr.options)


def labels(ctr: Container) -> dict[str, str]:
    """The image's labels overridden by ``--label``."""
    out = dict((ctr.options.get("image_config") or {}).get("Labels") or {})
    out.update(ctr.options.get("labels") or {})
    return out


def config(st: Storage, ctr: Container) -> dict[str, Any]:
    o = ctr.options
    image_config = o.get("image_config") or {}
    out: dict[str, Any] = {
        "Hostname": o["hostname"], "Domainname": "", "User": o.get("user") or "",
        "AttachStdin": bool(o.get("interactive")) and not o.get("detach"),
        "AttachStdout": not o.get("detach"), "AttachStderr": not o.get("detach"),
        "Tty": bool(o.get("tty")), "OpenStdin": bool(o.get("interactive")),
        "StdinOnce": bool(o.get("interactive")) and not o.get("detach"), "Env": o["env"],
        "Cmd": o.get("cmd") or image_config.get("Cmd"), "Image": ctr.image,
        "Volumes": attach.config_volumes(o), "WorkingDir": o["workdir"],
        "Entrypoint": [o["entrypoint"]] if o.get("entrypoint") else
        image_config.get("Entrypoint"),
        "OnBuild": None, "Labels": labels(ctr), "StopSignal": o.get("stop_signal"),
        # Docker omits it when unset; podman shows the one in effect, which is more useful
        "StopTimeout": lifecycle.DEFAULT_STOP_TIMEOUT if o.get("stop_timeout") is None
        else o["stop_timeout"],
    }
    return out


def network_settings(st: Storage, ctr: Container) -> dict[str, Any]:
    """As Docker shows a container on the ``none`` or ``host`` network: no addresses, no
    ports, the one network by its name."""
    network = ctr.options.get("network") or "none"
    endpoint = {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "",
                "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "MacAddress": "", "DriverOpts": None}
    return {"Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "",
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "",
            "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
            "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": {network: endpoint}}
