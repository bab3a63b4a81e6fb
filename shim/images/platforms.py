"""Platforms (``os/arch[/variant]``): the host's, parsing, and picking one from an index."""

from __future__ import annotations

import os

from ..errors import OcishError

TYPE_CHECKING = False  # not typing's: pull imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any

_MACHINES = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "i386": ("386", ""), "i686": ("386", ""),
    "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"), "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"), "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""), "mips64": ("mips64", ""),
}


class Platform:
    """An OCI platform, compared by value; never changed once made (not a dataclass: see
    reference.Reference)."""

    __slots__ = ("os", "architecture", "variant")

    def __init__(self, os: str, architecture: str, variant: str = "") -> None:
        self.os, self.architecture, self.variant = os, architecture, variant

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Platform) and (self.os, self.architecture, self.variant) == \
            (other.os, other.architecture, other.variant)

    def __hash__(self) -> int:
        return hash((self.os, self.architecture, self.variant))

    def __repr__(self) -> str:
        return f"Platform({self.os!r}, {self.architecture!r}, {self.variant!r})"

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def host() -> Platform:
    """The platform of this machine."""
    machine = os.uname().machine  # what platform.machine() says, without importing platform
    arch, variant = _MACHINES.get(machine, (machine, ""))
    return Platform("linux", arch, variant)


def parse(text: str) -> Platform:
    """``linux/arm64/v8`` -> Platform; the os and arch are required."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise OcishError(f"invalid platform {text!r}: want os/arch[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def _variant(arch: str, variant: str) -> str:
    return "v8" if arch == "arm64" and not variant else variant


def matches(want: Platform, os_name: str, arch: str, variant: str) -> bool:
    """Whether an image for os/arch/variant runs as *want* (arm64 means arm64/v8)."""
    if os_name != want.os or arch != want.architecture:
        return False
    if not want.variant or (want == host() and not variant):
        return True
    return _variant(arch, variant) == _variant(want.architecture, want.variant)


def select(index: dict[str, Any], want: Platform) -> dict[str, Any]:
    """The descriptor in an image index / manifest list that best fits *want*."""
    found: list[dict[str, Any]] = []
    for desc in index.get("manifests") or []:
        plat = desc.get("platform") or {}
        if matches(want, plat.get("os", ""), plat.get("architecture", ""),
                   plat.get("variant", "")):
            found.append(desc)
    if not found:
        raise OcishError(f"no matching manifest for {want} in the manifest list entries")
    # an exact variant match first, then the first listed
    found.sort(key=lambda d: (d.get("platform") or {}).get("variant", "") != want.variant)
    return found[0]
