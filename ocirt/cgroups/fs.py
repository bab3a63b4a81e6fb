"""The cgroupfs manager: a container's cgroup in every mounted hierarchy (v1, hybrid or v2).

Resource limits are the job of a later layer; this places processes, lists and signals them,
reads the freezer, and removes the cgroups.
"""

from __future__ import annotations

import errno
import os
import time

from ..errors import OcirtError, SysError
from . import detect


def resolve_paths(cgroups_path: str, container_id: str,
                  hs: list[detect.Hierarchy] | None = None) -> dict[str, str]:
    """Absolute cgroup directories for the container, keyed by hierarchy.

    An absolute ``cgroupsPath`` is taken below each hierarchy's root; a relative one (or the
    default, the container id) below the calling process's own cgroup, as runc does.
    """
    hs = detect.hierarchies() if hs is None else hs
    rel = cgroups_path or container_id
    own = detect.own_cgroups() if not rel.startswith("/") else {}
    paths = {}
    for h in hs:
        if rel.startswith("/"):
            cg = os.path.normpath(rel)
            if h.root != "/" and (cg + "/").startswith(h.root + "/"):
                cg = cg[len(h.root):] or "/"
        else:
            base = own.get(h.key, "/")
            if h.root != "/" and (base + "/").startswith(h.root + "/"):
                base = base[len(h.root):] or "/"
            cg = os.path.normpath(os.path.join(base, rel))
        if ".." in rel.split("/"):
            raise OcirtError(f"invalid cgroupsPath {cgroups_path!r}: '..' is not allowed")
        paths[h.key] = os.path.join(h.mountpoint, cg.lstrip("/"))
    return paths


def _write(path: str, value: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise SysError(f"write {path}", exc.errno or 0) from None


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


class Manager:
    """One container's cgroups; ``paths`` maps hierarchy key to directory."""

    def __init__(self, paths: dict[str, str]) -> None:
        self.paths = paths

    def create(self) -> None:
        """Make the directories (and parents); cpuset ones inherit cpus and mems from above."""
        for key, path in self.paths.items():
            if "cpuset" in key.split(","):
                self._make_cpuset(path)
            else:
                try:
                    os.makedirs(path, exist_ok=True)
                except OSError as exc:
                    raise SysError(f"mkdir {path}", exc.errno or 0) from None

    def _make_cpuset(self, path: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise SysError(f"mkdir {path}", exc.errno or 0) from None
        self._fill_cpuset(path)

    def _fill_cpuset(self, path: str) -> None:
        """A new cpuset has no cpus or mems and takes no process: give it its parent's, filling
        the parent first, since a create racing us may have made it without filling it yet."""
        for name in ("cpuset.cpus", "cpuset.mems"):
            mine = os.path.join(path, name)
            if os.path.exists(mine) and not _read(mine).strip():
                parent = os.path.dirname(path)
                self._fill_cpuset(parent)
                _write(mine, _read(os.path.join(parent, name)).strip())

    def add(self, pid: int) -> None:
        """Move process ``pid`` into every hierarchy."""
        for path in self.paths.values():
            _write(os.path.join(path, "cgroup.procs"), str(pid))

    # Moving a process takes the kernel's global threadgroup lock, whose RCU grace period makes
    # each such move cost 5-15 ms. A thread that moves itself ("0" to a v1 ``tasks`` file)
    # skips that lock, and for a single-threaded process that moves the whole process. The
    # kernel checks the rights of whoever opened the file, so the runtime's children open the
    # files on the host and write them later, from wherever they are by then (a user or mount
    # namespace of the container's). cgroup2 has no such path (its cgroup.threads is only for
    # threaded subtrees), so the spawn chain clones processes straight into their cgroup2
    # (open_v2), or else moves them there from the runtime: see process/spawn.py.

    def open_v1_tasks(self) -> list[int]:
        """Open (close-on-exec) each cgroup v1 hierarchy's ``tasks`` file, for :func:`enter`."""
        fds: list[int] = []
        try:
            for key, path in self.paths.items():
                if key != detect.UNIFIED:
                    fds.append(os.open(os.path.join(path, "tasks"), os.O_WRONLY | os.O_CLOEXEC))
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            raise SysError(f"open {exc.filename}", exc.errno or 0) from None
        return fds

    def open_v2(self) -> int:
        """An fd of the container's cgroup2 directory (for clone3's CLONE_INTO_CGROUP), or -1
        if it has none or it cannot be opened (the caller then moves processes there)."""
        path = self.paths.get(detect.UNIFIED)
        if path is None:
            return -1
        try:
            return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return -1

    def add_v2(self, pid: int) -> None:
        """Move process ``pid`` into the cgroup2 hierarchy, if the container has one."""
        path = self.paths.get(detect.UNIFIED)
        if path is not None:
            _write(os.path.join(path, "cgroup.procs"), str(pid))

    def pids(self) -> list[int]:
        """Every process in the container's cgroups (deduplicated, sorted)."""
        found: set[int] = set()
        for path in self.paths.values():
            try:
                found.update(int(p) for p in _read(os.path.join(path, "cgroup.procs")).split())
            except OSError:
                continue
        return sorted(found)

    def frozen(self) -> bool:
        for key, path in self.paths.items():
            try:
                if key == detect.UNIFIED:
                    if _read(os.path.join(path, "cgroup.freeze")).strip() == "1":
                        return True
                elif "freezer" in key.split(","):
                    if _read(os.path.join(path, "freezer.state")).strip() != "THAWED":
                        return True
            except OSError:
                continue
        return False

    def signal_all(self, sig: int) -> None:
        """Signal every process in the cgroups; SIGKILL through cgroup.kill where v2 has it."""
        unified = self.paths.get(detect.UNIFIED)
        if sig == 9 and unified and os.path.exists(os.path.join(unified, "cgroup.kill")):
            try:
                _write(os.path.join(unified, "cgroup.kill"), "1")
            except SysError:
                pass
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def destroy(self, timeout: float = 5.0) -> None:
        """Remove the container's cgroup directories (children first), waiting for the last
        processes to leave. Directories that are already gone are fine."""
        deadline = time.monotonic() + timeout
        for path in self.paths.values():
            self._remove_tree(path, deadline)

    def _remove_tree(self, path: str, deadline: float) -> None:
        try:
            children = [e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
                return  # gone, or a path that cannot exist (create failed to make it)
            raise SysError(f"remove cgroup {path}", exc.errno or 0) from None
        for child in children:
            self._remove_tree(child, deadline)
        delay = 0.001
        while True:
            try:
                os.rmdir(path)
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise SysError(f"remove cgroup {path}", exc.errno or 0) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def freeze(self) -> None:
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def _set_frozen(self, frozen: bool) -> None:
        for key, path in self.paths.items():
            if key == detect.UNIFIED:
                target = os.path.join(path, "cgroup.freeze")
                if os.path.exists(target):
                    _write(target, "1" if frozen else "0")
            elif "freezer" in key.split(","):
                _write(os.path.join(path, "freezer.state"), "FROZEN" if frozen else "THAWED")


def enter(tasks_fds: list[int]) -> None:
    """Move the calling thread (the caller must be single-threaded) into the hierarchies whose
    ``tasks`` files these are (from :meth:`Manager.open_v1_tasks`), and close them."""
    try:
        for fd in tasks_fds:
            os.write(fd, b"0")
    except OSError as exc:
        raise SysError("join the container's cgroups", exc.errno or 0) from None
    finally:
        for fd in tasks_fds:
            os.close(fd)
