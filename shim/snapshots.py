"""Snapshots: each layer unpacked once, by chain ID, into ``<root>/snapshots/<hex>/fs``.

A snapshot is unpacked in a private ``tmp-<pid>-<rand>`` dir and renamed into place, so a
snapshot dir that exists is complete; ``info.json`` beside ``fs`` records what it holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass

from .errors import OcishError
from .store import Readable, pid_alive, split_digest
from .unpack import unpack


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain ID of each layer: ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n))."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


@dataclass
class SnapshotInfo:
    """What ``info.json`` records."""

    chain_id: str
    parent: str
    diff_id: str
    size: int


class Snapshots:
    """The snapshot dirs of one storage root."""

    def __init__(self, root: str) -> None:
        self.root = os.path.join(root, "snapshots")
        os.makedirs(self.root, mode=0o711, exist_ok=True)

    def dir(self, chain_id: str) -> str:
        """The snapshot's own dir (holding ``fs`` and ``info.json``)."""
        return os.path.join(self.root, split_digest(chain_id)[1])

    def fs(self, chain_id: str) -> str:
        """The dir to give overlayfs as a lower dir."""
        return os.path.join(self.dir(chain_id), "fs")

    def exists(self, chain_id: str) -> bool:
        """Whether the snapshot is there (and so complete)."""
        return os.path.isdir(self.fs(chain_id))

    def info(self, chain_id: str) -> SnapshotInfo:
        """The recorded facts about a present snapshot."""
        with open(os.path.join(self.dir(chain_id), "info.json")) as f:
            return SnapshotInfo(**json.load(f))

    def create(self, chain_id: str, parent: str, diff_id: str, blob: Readable) -> SnapshotInfo:
        """Unpack *blob* as snapshot *chain_id*, checking its diff ID; idempotent."""
        if self.exists(chain_id):
            return self.info(chain_id)
        tmp = os.path.join(self.root, f"tmp-{os.getpid()}-{secrets.token_hex(8)}")
        os.mkdir(tmp, 0o700)
        try:
            fs = os.path.join(tmp, "fs")
            os.mkdir(fs, 0o755)
            got = unpack(blob, fs)
            if got.diff_id != diff_id:
                raise OcishError(f"layer {diff_id}: the unpacked content has diff ID "
                                 f"{got.diff_id}")
            info = SnapshotInfo(chain_id, parent, diff_id, got.size)
            with open(os.path.join(tmp, "info.json"), "w") as f:
                json.dump(info.__dict__, f)
            os.chmod(tmp, 0o711)
            try:
                os.rename(tmp, self.dir(chain_id))
            except OSError:
                if not self.exists(chain_id):  # else: a concurrent pull made it first
                    raise
            return info
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)

    def remove(self, chain_id: str) -> None:
        """Delete a snapshot: renamed away first, so it is never seen half removed."""
        path = self.dir(chain_id)
        if not os.path.exists(path):
            return
        doomed = os.path.join(self.root, f"tmp-{os.getpid()}-{secrets.token_hex(8)}")
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def chain_ids(self) -> list[str]:
        """Every present snapshot."""
        return ["sha256:" + n for n in os.listdir(self.root)
                if not n.startswith("tmp-") and len(n) == 64]

    def clean_tmp(self) -> None:
        """Remove the temp dirs of unpackers that died."""
        for name in os.listdir(self.root):
            if name.startswith("tmp-"):
                pid = name.split("-")[1]
                if not pid.isdigit() or not pid_alive(int(pid)):
                    shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
