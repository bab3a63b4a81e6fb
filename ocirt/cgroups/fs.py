"""The cgroupfs manager: a container's cgroup in every mounted hierarchy (v1, hybrid or v2).

Resource limits are the job of a later layer; this places processes, lists and signals them,
reads the freezer, and removes the cgroups.
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py builds enums, milliseconds per command
import errno
import os
import time

from ..errors import ConfigError, SysError
from . import detect


def resolve_paths(cgroups_path: str, container_id: str,
                  hs: list[detect.Hierarchy] | None = None) -> dict[str, str]:
    """Absolute cgroup directories for the container, keyed by hierarchy.

    An absolute ``cgroupsPath`` is taken below each hierarchy's root; a relative one (or the
    default, the container id) below the calling process's own cgroup, as runc does. A path
    that names no cgroup of the container's own is refused before anything is made: the root
    of a hierarchy (``/``, ``//``, ``/a/..``: it holds every process of the host, which a
    container's kill or delete would then reach) or the runtime's own cgroup (``.``).
    """
    hs = detect.hierarchies() if hs is None else hs
    rel = cgroups_path or container_id
    absolute = rel.startswith("/")
    norm = "/" + os.path.normpath(rel).lstrip("/") if absolute else os.path.normpath(rel)
    if norm in ("/", "."):
        raise ConfigError(f"invalid cgroupsPath {cgroups_path!r}: "
                          + ("it names the root of the cgroup hierarchy" if absolute else
                             "it names the runtime's own cgroup")
                          + ", not a cgroup of the container's own")
    if ".." in rel.split("/"):
        raise ConfigError(f"invalid cgroupsPath {cgroups_path!r}: '..' is not allowed")
    own = detect.own_cgroups() if not absolute else {}
    paths = {}
    for h in hs:
        if absolute:
            cg = norm
            if h.root != "/" and (cg + "/").startswith(h.root + "/"):
                cg = cg[len(h.root):] or "/"
            if cg == "/":  # the root of a hierarchy mounted from below its own root
                raise ConfigError(f"invalid cgroupsPath {cgroups_path!r}: it names the root "
                                  f"of the cgroup hierarchy at {h.mountpoint}")
        else:
            base = own.get(h.key, "/")
            if h.root != "/" and (base + "/").startswith(h.root + "/"):
                base = base[len(h.root):] or "/"
            cg = os.path.normpath(os.path.join(base, norm))
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
    """One container's cgroups; ``paths`` maps hierarchy key to directory.

    ``created`` lists the directories this container made, the only ones it may remove: a
    cgroup that existed before ``create`` (one the caller prepared, or shares) is joined,
    never removed.
    """

    def __init__(self, paths: dict[str, str], created: list[str] | None = None) -> None:
        self.paths = paths
        self.created: list[str] = [] if created is None else created

    def missing(self) -> list[str]:
        """The directories :meth:`create` is about to make (recorded in the state first)."""
        return [path for path in self.paths.values() if not os.path.lexists(path)]

    def create(self) -> None:
        """Make the directories (and parents), adding each one made to ``created``; cpuset
        ones inherit cpus and mems from above. Then refuse, before any process moves in, a
        cgroup that existed with processes in it, and a frozen one (see :meth:`_check`)."""
        existing = []
        for key, path in self.paths.items():
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            except OSError as exc:
                raise SysError(f"mkdir {os.path.dirname(path)}", exc.errno or 0) from None
            try:
                os.mkdir(path)
                self.created.append(path)
            except FileExistsError:
                existing.append(path)
            except OSError as exc:
                raise SysError(f"mkdir {path}", exc.errno or 0) from None
            if "cpuset" in key.split(","):
                self._fill_cpuset(path)
        self._check(existing)

    def _check(self, existing: list[str]) -> None:
        """Refuse a cgroup that held processes before the container: runc 1.1 only warns
        ("container's cgroup is not empty", deprecated there, to be refused later); ocirt
        refuses it, since ``delete`` or ``kill --all`` of a container without a pid namespace
        of its own signals every process in its cgroup, and these are not the container's.
        Refuse a frozen cgroup (v1 freezer.state FROZEN or FREEZING, also when a parent is
        frozen; v2 cgroup.events "frozen 1"), as runc does: the init would freeze the moment
        it moved in, and create wait for it forever. A read or two for a new cgroup."""
        for path in existing:
            count = _process_count(path)
            if count:
                raise ConfigError(f"container's cgroup is not empty: {count} process(es) found "
                                  f"in {path} (a container needs a cgroup of its own)")
        for key, path in self.paths.items():
            if frozen_now(key, path):
                raise ConfigError(f"container's cgroup unexpectedly frozen: {path}")

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
        """Every process in the container's cgroups and the sub-cgroups made in them (with
        ``exec --cgroup``, or by the container in its cgroup namespace): the subtree is the
        container's, as runc counts it. Deduplicated, sorted."""
        found: set[int] = set()
        for path in self.paths.values():
            for directory, _, _ in os.walk(path):
                try:
                    found.update(int(p) for p in
                                 _read(os.path.join(directory, "cgroup.procs")).split())
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

    def signal_all(self, sig: int) -> set[int]:
        """Signal every process in the cgroups (SIGKILL through cgroup.kill where v2 has it);
        returns the pids signalled. Only for a container without a pid namespace of its own,
        whose processes nothing else tells apart: see :meth:`signal_pidns`."""
        unified = self.paths.get(detect.UNIFIED)
        if sig == 9 and unified and os.path.exists(os.path.join(unified, "cgroup.kill")):
            try:
                _write(os.path.join(unified, "cgroup.kill"), "1")
            except SysError:
                pass
        signalled = set()
        for pid in self.pids():
            try:
                os.kill(pid, sig)
                signalled.add(pid)
            except ProcessLookupError:
                pass
        return signalled

    def signal_pidns(self, sig: int, init_pid: int) -> set[int]:
        """Signal the processes of the cgroups that are in the pid namespace of ``init_pid``,
        the container's own: only the container's processes are there, whoever else was put
        in its cgroups. Each is held by a pidfd while its namespace is checked, so that a pid
        reused meanwhile is not signalled. Returns the pids signalled."""
        signalled: set[int] = set()
        try:
            own_ns = os.readlink(f"/proc/{init_pid}/ns/pid")
        except OSError:
            return signalled  # the init is gone, and its pid namespace with it
        for pid in self.pids():
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") == own_ns:
                    signal.pidfd_send_signal(pidfd, sig)
                    signalled.add(pid)
            except OSError:
                pass  # it exited meanwhile
            finally:
                os.close(pidfd)
        return signalled

    def destroy(self, timeout: float = 5.0) -> None:
        """Remove the cgroup directories this container created, with the sub-cgroups made in
        them since (children first), waiting for their last processes to leave. rmdir removes
        only an empty cgroup, and nothing here signals; a cgroup the container joined stays.
        Directories that are already gone are fine."""
        deadline = time.monotonic() + timeout
        failed: SysError | None = None
        for path in self.created:
            try:
                self._remove_tree(path, deadline)
            except SysError as exc:
                failed = failed or exc  # the others are still removed
        if failed is not None:
            raise failed

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


def _process_count(path: str) -> int:
    """How many processes the cgroup ``path`` and its sub-cgroups hold (symlinks are not
    followed: cgroupfs has none)."""
    try:
        count = len(_read(os.path.join(path, "cgroup.procs")).split())
        children = [e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except OSError as exc:
        raise SysError(f"read {path}", exc.errno or 0) from None
    return count + sum(_process_count(child) for child in children)


def frozen_now(key: str, path: str) -> bool:
    """Whether the cgroup is frozen now, by itself or through a parent. (:meth:`Manager.frozen`
    asks whether the container was paused: on v2 its own cgroup.freeze.)"""
    try:
        if key == detect.UNIFIED:
            return "frozen 1" in _read(os.path.join(path, "cgroup.events")).splitlines()
        if "freezer" in key.split(","):
            return _read(os.path.join(path, "freezer.state")).strip() != "THAWED"
    except FileNotFoundError:
        pass  # no v2 freezer before Linux 5.2
    except OSError as exc:
        raise SysError(f"read the freezer state of {path}", exc.errno or 0) from None
    return False


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
