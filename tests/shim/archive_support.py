"""Helpers for the ocish archive, rootfs and image-admin tests: a private podman, a private
dockerd (the engine tests' own helper), tar listings, aligned-table checks.

The podman keeps its storage (vfs: no mounts), run dir, tmp dir and network config under one
temporary directory, and writes no events; ``close()`` removes its images and the directory and
reports what it could not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from shim_support import REPO, ocish

sys.path.insert(0, str(REPO / "tests" / "engines"))
from docker_support import Dockerd, entry_name  # noqa: E402  (the engine tests' dockerd)

__all__ = ["Dockerd", "PrivatePodman", "aligned", "entry_name", "inspect", "listing",
           "mounts_under", "tar_members"]


def mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(prefix) or p == str(path)]


class PrivatePodman:
    """podman with everything of its own under *base* (nothing global written)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        for d in ("root", "run", "tmp", "net"):
            (base / d).mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, TMPDIR=str(base / "tmp"))

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = ["podman", "--root", str(self.base / "root"), "--runroot", str(self.base / "run"),
               "--tmpdir", str(self.base / "tmp"), "--network-config-dir",
               str(self.base / "net"), "--storage-driver", "vfs", "--events-backend", "none",
               "--cgroup-manager", "cgroupfs", *args]
        res = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        if check:
            assert res.returncode == 0, f"{' '.join(cmd)}: {res.stderr}"
        return res

    def close(self) -> list[str]:
        problems = []
        self("rmi", "-af", check=False)
        if mounts := mounts_under(self.base):
            problems.append(f"podman left mounts: {mounts}")
            for m in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)
        return problems


def inspect(root: Path, ref: str) -> dict[str, Any]:
    out = json.loads(ocish(root, "image", "inspect", ref).stdout)
    assert isinstance(out, list) and len(out) == 1
    return out[0]  # type: ignore[no-any-return]


def tar_members(path: Path) -> dict[str, bytes]:
    """The regular files of a tar, by name."""
    with tarfile.open(path) as tf:
        out = {}
        for m in tf.getmembers():
            f = tf.extractfile(m) if m.isreg() else None
            if f is not None:
                out[m.name] = f.read()
        return out


def listing(src: Path | bytes) -> dict[str, tuple[Any, ...]]:
    """What a rootfs tar holds, by cleaned name: type, mode, owner, mtime, link, content hash,
    xattrs (hard links by the name they point at)."""
    import io

    tf = tarfile.open(src) if isinstance(src, Path) else tarfile.open(fileobj=io.BytesIO(src))
    out: dict[str, tuple[Any, ...]] = {}
    with tf:
        for m in tf.getmembers():
            name = os.path.normpath(m.name).lstrip("/")
            if name == ".":
                continue
            f = tf.extractfile(m) if m.isreg() else None
            digest = hashlib.sha256(f.read()).hexdigest() if f is not None else ""
            link = os.path.normpath(m.linkname).lstrip("/") if m.islnk() else m.linkname
            xattrs = sorted((k, v) for k, v in m.pax_headers.items()
                            if k.startswith("SCHILY.xattr."))
            out[name] = (m.type, m.mode, m.uid, m.gid, int(m.mtime), link, digest,
                         (m.devmajor, m.devminor) if m.ischr() or m.isblk() else None, xattrs)
    return out


def aligned(text: str, headers: list[str]) -> list[list[str]]:
    """Check a table's cells start under their headers; return its rows split on the
    3-space gaps."""
    lines = text.rstrip("\n").splitlines()
    cols = [lines[0].index(h) for h in headers]
    assert cols == sorted(cols), lines[0]
    rows = []
    bounds = list(zip(cols, cols[1:] + [None], strict=True))
    for line in lines[1:]:
        cells = [line[a:b] for a, b in bounds]
        for (a, _), cell in zip(bounds, cells, strict=True):
            assert a == 0 or len(line) < a or line[a - 1] == " ", (line, a, lines)
            assert not cell[:1].isspace() or not cell.strip(), (line, a, lines)
        rows.append([c.strip() for c in cells])
    return rows
