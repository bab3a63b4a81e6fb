"""Snapshots: each layer unpacked once, by chain ID, into ``<root>/snapshots/<hex>/fs``.

A snapshot is unpacked in a private ``tmp-<pid>-<rand>`` dir and renamed into place, so a
snapshot dir that exists is complete; ``info.json`` beside ``fs`` records what it holds.

`Snapshots.mount` stacks snapshots into an overlayfs mount. mount(2) takes at most one page of
options, and ``lowerdir=`` with 100 absolute snapshot paths is ~9 KB: as Docker's overlay2 does,
the lower dirs are named by short symlinks ``l/<12 hex>`` -> ``../<hex>/fs`` (made on first use)
relative to the snapshots dir, the mounting process's working dir for that one call, which
fits ~260 layers (overlayfs itself stops at 500).
"""

from __future__ import annotations

import os

from ..errors import OcishError
from .content import pid_alive, split_digest

TYPE_CHECKING = False  # not typing's: `ocish images` imports this module, typing costs ms
if TYPE_CHECKING:
    from collections.abc import Callable

    from .content import Readable

LINKS = "l"
MAX_OPTIONS = 4095  # mount(2) copies one page of options, NUL included
MS_RDONLY, MS_REMOUNT, MS_BIND = 0x1, 0x20, 0x1000


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain ID of each layer: ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n))."""
    import hashlib

    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


class SnapshotInfo:
    """What ``info.json`` records."""

    def __init__(self, chain_id: str, parent: str, diff_id: str, size: int) -> None:
        self.chain_id, self.parent, self.diff_id, self.size = chain_id, parent, diff_id, size


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
        import json

        with open(os.path.join(self.dir(chain_id), "info.json")) as f:
            return SnapshotInfo(**json.load(f))

    def create(self, chain_id: str, parent: str, diff_id: str, blob: Readable,
               verify: Callable[[], None] | None = None) -> SnapshotInfo:
        """Unpack *blob* as snapshot *chain_id*, checking its diff ID; idempotent.

        *verify*, if given, runs once the layer is unpacked and before the snapshot is put in
        place: an error there (a blob streamed from a registry that fails its digest) discards it.
        """
        if self.exists(chain_id):
            return self.info(chain_id)
        import json
        import shutil

        from .unpack import unpack

        tmp = os.path.join(self.root, f"tmp-{os.getpid()}-{os.urandom(8).hex()}")
        os.mkdir(tmp, 0o700)
        try:
            fs = os.path.join(tmp, "fs")
            os.mkdir(fs, 0o755)
            got = unpack(blob, fs)
            if got.diff_id != diff_id:
                raise OcishError(f"layer {diff_id}: the unpacked content has diff ID "
                                 f"{got.diff_id}")
            if verify is not None:
                verify()
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
        hexpart = split_digest(chain_id)[1]
        for name in self._link_names(hexpart):
            try:
                if os.readlink(os.path.join(self.root, name)) == f"../{hexpart}/fs":
                    os.unlink(os.path.join(self.root, name))
            except OSError:
                pass
        import shutil

        doomed = os.path.join(self.root, f"tmp-{os.getpid()}-{os.urandom(8).hex()}")
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def chain_ids(self) -> list[str]:
        """Every present snapshot."""
        return ["sha256:" + n for n in os.listdir(self.root)
                if not n.startswith("tmp-") and len(n) == 64]

    def clean_tmp(self) -> None:
        """Remove the temp dirs of unpackers that died."""
        import shutil

        for name in os.listdir(self.root):
            if name.startswith("tmp-"):
                pid = name.split("-")[1]
                if not pid.isdigit() or not pid_alive(int(pid)):
                    shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)

    @staticmethod
    def _link_names(hexpart: str) -> list[str]:
        return [f"{LINKS}/{hexpart[:n]}" for n in (12, 20, 32, 64)]

    def link(self, chain_id: str) -> str:
        """The short name of a present snapshot's ``fs`` relative to the snapshots dir:
        ``l/<first 12 hex>``, longer only if another snapshot holds that prefix."""
        if not self.exists(chain_id):
            raise OcishError(f"snapshot {chain_id} not found")
        hexpart = split_digest(chain_id)[1]
        target = f"../{hexpart}/fs"
        os.makedirs(os.path.join(self.root, LINKS), mode=0o700, exist_ok=True)
        for name in self._link_names(hexpart):
            path = os.path.join(self.root, name)
            try:
                os.symlink(target, path)
                return name
            except FileExistsError:
                pass
            try:
                if os.readlink(path) == target:
                    return name
            except OSError:
                pass
        raise OcishError(f"snapshot {chain_id}: {LINKS}/{hexpart} is taken")

    def mount(self, chain_ids: list[str], target: str, upper: str | None = None,
              work: str | None = None) -> None:
        """Mount the snapshots *chain_ids* (an image's layers, bottom first) on *target* as one
        overlayfs: read-only, or with *upper* and *work* (dirs on one filesystem) writable.

        A read-only view of one layer is a read-only bind mount (overlayfs needs two lower dirs
        without an upper one).
        """
        if not chain_ids:
            raise OcishError("nothing to mount: the image has no layers")
        target = os.path.abspath(target)
        if upper is None and len(chain_ids) == 1:
            fs = self.fs(chain_ids[0])
            if not self.exists(chain_ids[0]):
                raise OcishError(f"snapshot {chain_ids[0]} not found")
            _mount(fs, target, None, MS_BIND, None)
            try:
                _mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
            except OcishError:
                unmount(target)
                raise
            return
        opts = "lowerdir=" + ":".join(self.link(c) for c in reversed(chain_ids))
        if upper is not None:
            if work is None:
                raise OcishError("a writable overlay needs a work dir")
            for path in (upper, work):
                if any(c in path for c in ",:\\"):
                    raise OcishError(f"{path}: overlay dirs cannot contain ',', ':' or '\\'")
            opts += f",upperdir={os.path.abspath(upper)},workdir={os.path.abspath(work)}"
        if len(opts.encode()) > MAX_OPTIONS:
            raise OcishError(f"{len(chain_ids)} layers: too many for one overlay mount "
                             f"({len(opts.encode())} bytes of options, at most {MAX_OPTIONS})")
        cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(self.root)  # the short lower dir names are relative to it
            _mount("overlay", target, "overlay", 0 if upper else MS_RDONLY, opts)
        finally:
            os.fchdir(cwd)
            os.close(cwd)


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                  ctypes.c_ulong(flags), data.encode() if data is not None else None) != 0:
        err = ctypes.get_errno()
        raise OcishError(f"mount {fstype or 'bind'} on {target}: {os.strerror(err)}")


def unmount(target: str) -> None:
    """Unmount what `Snapshots.mount` mounted on *target*."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(os.path.abspath(target).encode(), 0) != 0:
        err = ctypes.get_errno()
        raise OcishError(f"unmount {target}: {os.strerror(err)}")
