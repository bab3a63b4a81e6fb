"""Docker's container JSON (``inspect``), for the parts ocish has."""

from __future__ import annotations

from typing import Any

from ..storage.root import Storage
from . import lifecycle
from .records import Container

ZERO_TIME = "0001-01-01T00:00:00Z"


def inspect(st: Storage, ctr: Container) -> dict[str, Any]:
    """One container as ``docker inspect`` shows it."""
    o = ctr.options
    running = ctr.status == "running"
    p = lifecycle.paths(st, ctr)
    image_config = o.get("image_config") or {}
    from .control import inspect_state

    return inspect_state(st, ctr, {
        "Id": ctr.id,
        "Created": ctr.created,
        "Path": o["args"][0],
        "Args": o["args"][1:],
        "State": {
            "Status": ctr.status, "Running": running, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": ctr.pid if running else 0,
            "ExitCode": ctr.exit_code, "Error": ctr.error,
            "StartedAt": ctr.started or ZERO_TIME, "FinishedAt": ctr.finished or ZERO_TIME,
        },
        "Image": ctr.image_id,
        "ResolvConfPath": f"{ctr.dir(st)}/userdata/resolv.conf",
        "HostnamePath": f"{ctr.dir(st)}/userdata/hostname",
        "HostsPath": f"{ctr.dir(st)}/userdata/hosts",
        "LogPath": p.log,
        "Name": "/" + ctr.name,
        "RestartCount": 0,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "NetworkMode": o.get("network") or "none", "AutoRemove": bool(o.get("rm")),
            "Runtime": ctr.runtime, "LogConfig": {"Type": "k8s-file", "Config": {}},
            "CgroupParent": o.get("cgroup_parent") or "", "RestartPolicy": {
                "Name": "no", "MaximumRetryCount": 0},
            "CapAdd": None, "CapDrop": None, "Privileged": False, "ReadonlyRootfs": False,
            "SecurityOpt": [f"seccomp={o.get('seccomp')}"] +
            (["no-new-privileges"] if o.get("no_new_privileges") else []),
        },
        "GraphDriver": {"Name": "overlay", "Data": {
            "UpperDir": f"{ctr.dir(st)}/upper", "WorkDir": f"{ctr.dir(st)}/work",
            "MergedDir": f"{p.bundle}/rootfs"}},
        "Mounts": [],
        "Config": {
            "Hostname": o["hostname"], "Domainname": "", "User": o.get("user") or "",
            "AttachStdin": False, "AttachStdout": not o.get("detach"),
            "AttachStderr": not o.get("detach"), "Tty": False, "OpenStdin": False,
            "StdinOnce": False, "Env": o["env"], "Cmd": o.get("cmd") or image_config.get("Cmd"),
            "Image": ctr.image, "Volumes": None, "WorkingDir": o["workdir"],
            "Entrypoint": [o["entrypoint"]] if o.get("entrypoint") else
            image_config.get("Entrypoint"),
            "Labels": image_config.get("Labels") or {}, "StopSignal": o.get("stop_signal"),
        },
        "NetworkSettings": {"Networks": {o.get("network") or "none": {}}, "Ports": {},
                            "IPAddress": "", "Gateway": "", "MacAddress": ""},
    })
