"""Helpers for ocirt's own tests that run many containers: ocirt with its output in files,
bundles sharing one busybox rootfs (each with its own cgroupsPath), and a scan for anything
left behind."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import OCIRT, REPO

from ocirt import spec
from ocirt.cgroups.fs import resolve_paths
from ocirt.errors import ConfigError
from ocirt.lifecycle.create import validate_config


def run(root: Path | None, *args: str, stdin: bytes | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """ocirt with its output in files: a created container's init keeps the caller's stdio, so
    pipes would only close when the container dies."""
    cmd = [str(OCIRT)] + (["--root", str(root)] if root else []) + list(args)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        res = subprocess.run(cmd, input=stdin, stdout=out, stderr=err, timeout=timeout,
                             stdin=None if stdin is not None else subprocess.DEVNULL)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, res.returncode, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))


def make_rootfs(base: Path) -> Path:
    path = base / "rootfs"
    subprocess.run([str(REPO / "bundles" / "mkrootfs"), str(path)], check=True,
                   capture_output=True)
    return path


def busybox_bundle(path: Path, parent: str, **process: Any) -> Path:
    """A bundle in ``path``: its own busybox rootfs, bundles/busybox/config.json with
    ``process`` overrides, and cgroupsPath ``/<parent>/<path's name>``."""
    make_rootfs(path)
    config = json.loads((REPO / "bundles" / "busybox" / "config.json").read_text())
    config["process"].update(process)
    config["linux"]["cgroupsPath"] = f"/{parent}/{path.name}"
    (path / "config.json").write_text(json.dumps(config))
    return path


class Bundles:
    """Bundles on a shared rootfs, each under ``/<parent>/<base dir name>/`` in the cgroups."""

    def __init__(self, base: Path, rootfs: Path, parent: str) -> None:
        self.base = base
        self.rootfs = rootfs
        self.parent = parent
        self.cgroups: list[str] = []

    def make(self, name: str, **process: Any) -> Path:
        """A bundle running ``sleep 120`` (``process`` overrides); any name, even one no
        directory could have, since the directory is named by its hash."""
        short = hashlib.sha1(name.encode()).hexdigest()[:12]
        bundle = self.base / f"bundle-{short}"
        bundle.mkdir(exist_ok=True)
        config = json.loads((REPO / "bundles" / "busybox" / "config.json").read_text())
        config["root"]["path"] = str(self.rootfs)
        config["process"].update({"args": ["sleep", "120"], **process})
        cgroups_path = f"/{self.parent}/{self.base.name}/{short}"
        config["linux"]["cgroupsPath"] = cgroups_path
        self.cgroups.append(cgroups_path)
        (bundle / "config.json").write_text(json.dumps(config))
        return bundle

    def leftovers(self, root: Path) -> list[str]:
        """State dirs, cgroups, mounts and processes of these bundles still on the host."""
        left = [f"state: {p}" for p in (os.listdir(root) if root.exists() else [])]
        for cg in self.cgroups:
            left += [f"cgroup: {p}" for p in resolve_paths(cg, "x").values() if os.path.exists(p)]
        with open("/proc/self/mountinfo") as f:
            left += [f"mount: {line.strip()}" for line in f if str(self.base) in line]
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(self.base) in cmdline and int(pid) != os.getpid():
                left.append(f"process {pid}: {cmdline}")
        return left

    def remove_cgroups(self) -> None:
        """The containers' cgroups if still there, then the parents made for them."""
        for cg in self.cgroups:
            for path in resolve_paths(cg, "x").values():
                for p in (path, os.path.dirname(path)):
                    try:
                        os.rmdir(p)
                    except OSError:
                        pass


# -- config.json: the validator and its cross-check -------------------------------------------

def validator_verdict(doc: Any = None, bundle: str = "") -> str:
    """What the one validator (create's and check's: parse, then validate_config) says of a
    decoded config.json, or of a bundle's file: "" (taken) or its one line."""
    try:
        validate_config(spec.load(bundle)[0] if bundle else spec.parse(doc))
    except ConfigError as exc:
        return exc.message
    return ""


def without_nulls(value: Any) -> Any:
    """The document as the parser reads it (as Go's encoding/json does): a null member is an
    absent one. The schema alone would refuse ``"hostname": null``, that runc takes."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def json_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value in ``doc``, its own (``()``) first."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from json_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from json_paths(v, (*prefix, i))
