"""The default seccomp profile: the containers-common one Debian ships (podman's, in Docker's
profile format), turned into the runtime spec's form for this container's capabilities and
the host's architecture, as Docker and podman do.

A profile's rule applies when its ``includes`` hold (every capability named is the
container's, the host's architecture is listed, the kernel is at least ``minKernel``) and its
``excludes`` do not (none of the capabilities named is the container's, the architecture is not
listed).
"""

from __future__ import annotations

import json
import os

from ..errors import OcishError

TYPE_CHECKING = False  # not typing's: it costs the run path ms
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PROFILE = "/usr/share/containers/seccomp.json"

_ARCHES = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64",
           "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X",
           "riscv64": "SCMP_ARCH_RISCV64"}


def load(path: str) -> dict[str, Any]:
    """A profile file in Docker's format."""
    try:
        with open(path) as f:
            profile = json.load(f)
    except OSError as exc:
        raise OcishError(f"seccomp profile {path}: {exc.strerror}", status=125) from None
    except ValueError as exc:
        raise OcishError(f"seccomp profile {path}: not JSON: {exc}", status=125) from None
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise OcishError(f"seccomp profile {path}: no defaultAction", status=125)
    return profile


def _kernel() -> tuple[int, ...]:
    parts = os.uname().release.split("-")[0].split(".")
    return tuple(int(p) for p in parts[:2] if p.isdigit())


def _applies(rule: dict[str, Any], caps: set[str], arch: str) -> bool:
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("caps") and not set(inc["caps"]) <= caps:
        return False
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    if inc.get("minKernel"):
        want = tuple(int(p) for p in str(inc["minKernel"]).split(".")[:2])
        if _kernel() < want:
            return False
    if exc.get("caps") and set(exc["caps"]) & caps:
        return False
    return not (exc.get("arches") and arch in exc["arches"])


def to_spec(profile: dict[str, Any], caps: list[str]) -> dict[str, Any]:
    """``linux.seccomp`` of config.json for a container with *caps*."""
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    scmp = _ARCHES.get(machine)
    architectures: list[str] = []
    for entry in profile.get("archMap") or []:
        if scmp is not None and entry.get("architecture") == scmp:
            architectures = [scmp, *(entry.get("subArchitectures") or [])]
    capset = set(caps)
    syscalls = []
    for rule in profile.get("syscalls") or []:
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        if not names or not _applies(rule, capset, arch):
            continue
        out: dict[str, Any] = {"names": names, "action": rule["action"]}
        if rule.get("args"):
            out["args"] = rule["args"]
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        syscalls.append(out)
    spec: dict[str, Any] = {"defaultAction": profile["defaultAction"],
                            "architectures": architectures, "syscalls": syscalls}
    if profile.get("defaultErrnoRet") is not None:
        spec["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return spec
