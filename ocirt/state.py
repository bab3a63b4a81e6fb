"""The state directory: one directory per container under ``--root``.

``<root>/<id>/state.json`` records what ``create`` decided (init pid and its start time, bundle,
cgroup paths, the settings later commands must reuse); ``<root>/<id>/exec.fifo`` exists while the
init waits for ``start``; ``<root>/<id>/mounts`` lists the mounts made in the caller's mount
namespace for a container without one of its own, for ``delete`` to undo. Status is never stored: :mod:`ocirt.lifecycle.status` derives it.
Writes are atomic (temp file + rename); mutating commands hold a per-container flock.
"""

from __future__ import annotations

import errno
import fcntl
import os

from . import jsonio
from .errors import InvalidIDError, NotExistError, SysError

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

STATE_FILE = "state.json"
FIFO = "exec.fifo"
INIT_ERROR = "init.err"
MOUNTS = "mounts"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-")


def default_root(name: str = "ocirt") -> str:
    """runc's rule: ``$XDG_RUNTIME_DIR/<name>`` for unprivileged users (and for root inside a user
    namespace whose $USER is not root), else ``/run/<name>``. An empty variable counts as unset."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and (os.geteuid() != 0 or (_in_userns() and os.environ.get("USER", "") != "root")):
        return os.path.join(xdg, name)
    return f"/run/{name}"


def _in_userns() -> bool:
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


def mount_ns() -> int:
    """The inode of our mount namespace: what a record of a mount made in it is valid in."""
    return os.stat("/proc/self/ns/mnt").st_ino


def validate_id(container_id: str) -> str:
    """runc's characters; at most NAME_MAX (255) of them, since the id names the state dir."""
    if not container_id or container_id in (".", "..") or not set(container_id) <= _ID_CHARS \
            or len(container_id) > 255:
        raise InvalidIDError(container_id)
    return container_id


def write_atomic(path: str, data: bytes, mode: int = 0o600, dir_fd: int | None = None) -> None:
    """Write ``data`` to ``path`` through a new temporary file in the same directory and a
    rename; with ``dir_fd``, ``path`` is relative to that directory.

    The path may be the caller's (a pid file) in a directory others can write: the temporary
    is created O_EXCL|O_NOFOLLOW under an unpredictable name, so that a file or symlink
    planted there fails the write instead of redirecting it, and rename(2) replaces the final
    name itself, a symlink included. Nothing is ever written through a symlink."""
    directory, name = os.path.split(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = -1
    for _ in range(8):
        tmp = os.path.join(directory, f".{name}.{os.urandom(6).hex()}")
        try:
            fd = os.open(tmp, flags, mode, dir_fd=dir_fd)
            break
        except FileExistsError:
            continue  # someone else's file: another name, never theirs
        except OSError as exc:
            raise SysError(f"write {path}", exc.errno or 0) from None
    if fd < 0:
        raise SysError(f"write {path}", errno.EEXIST)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.rename(tmp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise SysError(f"write {path}", exc.errno or 0) from None


class State:
    """What ``create`` recorded about a container (the contents of state.json)."""

    __slots__ = ("id", "pid", "start_time", "bundle", "rootfs", "created", "oci_version",
                 "annotations", "cgroup_paths", "cgroups_created", "cgroups_path",
                 "systemd_cgroup", "own_pidns", "hooks", "owner", "seccomp", "process")

    def __init__(self, **fields: Any) -> None:
        self.id: str = fields["id"]
        self.pid: int = fields.get("pid", 0)
        self.start_time: int = fields.get("start_time", 0)
        self.bundle: str = fields.get("bundle", "")
        self.rootfs: str = fields.get("rootfs", "")
        self.created: str = fields.get("created", "")
        self.oci_version: str = fields.get("oci_version", "")
        self.annotations: dict[str, str] = fields.get("annotations") or {}
        self.cgroup_paths: dict[str, str] = fields.get("cgroup_paths") or {}
        #: the cgroup directories create made (or was about to make, for a create cut short),
        #: the only ones delete removes: a cgroup that existed before is never removed
        self.cgroups_created: list[str] = fields.get("cgroups_created") or []
        self.cgroups_path: str = fields.get("cgroups_path", "")
        self.systemd_cgroup: bool = fields.get("systemd_cgroup", False)
        self.own_pidns: bool = fields.get("own_pidns", True)
        self.hooks: dict[str, list[dict[str, Any]]] = fields.get("hooks") or {}
        self.owner: int = fields.get("owner", 0)
        self.seccomp: dict[str, Any] | None = fields.get("seccomp")  # linux.seccomp, for exec
        #: config.json's process as create read it: exec's defaults, whatever the bundle's
        #: config.json has become since (None: a state written before it was recorded)
        self.process: dict[str, Any] | None = fields.get("process")

    def to_json(self) -> bytes:
        return jsonio.dumps({k: getattr(self, k) for k in self.__slots__}).encode()


class ContainerDir:
    """``<root>/<id>``: its state file, its fifo, its lock."""

    def __init__(self, root: str, container_id: str) -> None:
        self.root = root
        self.id = container_id
        self.path = os.path.join(root, container_id)
        self._lock_fd = -1

    @property
    def fifo(self) -> str:
        return os.path.join(self.path, FIFO)

    @property
    def init_error(self) -> str:
        """Where the init writes why it failed once create has returned (for start to say)."""
        return os.path.join(self.path, INIT_ERROR)

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def lock(self) -> None:
        """Take the container's exclusive lock (released by :meth:`unlock` or at exit)."""
        try:
            self._lock_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):  # the root's parent may be a file
            raise NotExistError(self.id) from None
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def unlock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def load(self) -> State:
        try:
            with open(os.path.join(self.path, STATE_FILE), "rb") as f:
                return State(**jsonio.loads(f.read()))
        except (FileNotFoundError, NotADirectoryError, ValueError, KeyError, TypeError):
            raise NotExistError(self.id) from None

    def save(self, state: State) -> None:
        write_atomic(os.path.join(self.path, STATE_FILE), state.to_json())

    def record_mount(self, mount_ns: int, mnt_id: int, path: str) -> None:
        """Append one mount made in the mount namespace ``mount_ns`` (its inode) at ``path``
        inside the rootfs: a line of JSON, so that a create killed half-way leaves every
        mount it made listed."""
        line = jsonio.dumps([mount_ns, mnt_id, path]).encode() + b"\n"
        try:
            fd = os.open(os.path.join(self.path, MOUNTS), os.O_WRONLY | os.O_APPEND | os.O_CREAT
                         | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            raise SysError("record mount", exc.errno or 0) from None

    def mounts(self) -> list[tuple[int, int, str]]:
        """What :meth:`record_mount` recorded, oldest first."""
        try:
            with open(os.path.join(self.path, MOUNTS), "rb") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        records = []
        for line in lines:
            try:
                ns, mnt_id, path = jsonio.loads(line)
            except ValueError:
                continue  # a line cut short by a kill: its mount is the init's to undo
            records.append((int(ns), int(mnt_id), str(path)))
        return records

    def remove(self) -> None:
        """Delete the directory; it only ever holds plain files and the fifo."""
        try:
            for entry in os.scandir(self.path):
                os.unlink(entry.path)
            os.rmdir(self.path)
        except FileNotFoundError:
            pass


class Store:
    """The state root given by ``--root``."""

    def __init__(self, root: str) -> None:
        self.root = root

    def container(self, container_id: str) -> ContainerDir:
        return ContainerDir(self.root, validate_id(container_id))

    def ensure(self) -> None:
        try:
            os.makedirs(self.root, mode=0o711, exist_ok=True)
        except OSError as exc:
            raise SysError(f"mkdir {self.root}", exc.errno or 0) from None

    def ids(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        except FileNotFoundError:
            return []
