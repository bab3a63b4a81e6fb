"""The spawn chain: runtime -> intermediate -> init.

The runtime forks an intermediate process that enters or creates the container's namespaces
(the user namespace first, its id maps written by the runtime) and forks again: a new pid
namespace only applies to children, so that grandchild is the container's PID 1. The
intermediate exits at once, so the init is re-parented to the caller's subreaper (conmon,
containerd's shim) or PID 1, as the callers require. Messages go over :mod:`.channel`.

Cgroups: the init moves itself into the v1 hierarchies (quick: see cgroups/fs.py), as late as
it can: before it makes its cgroup namespace (rooted in its new cgroup) or else just before the
limits and hooks step, so that its own set-up (and the fork's page tables) is not charged to
the container. A cgroup2 move waits for an RCU grace period (5-15 ms, the longest step of a
create), so the intermediate clones the init straight into its cgroup2 (clone3's
CLONE_INTO_CGROUP: the intermediate itself, and what it imported, stay charged to the caller);
where the kernel cannot, the runtime moves the init while it works. The init waits for that
(JOINED) at the same point.
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py builds enums, milliseconds per command
import os

from .. import hooks
from ..cgroups.fs import Manager
from ..errors import OcirtError, SysError
from ..linux import syscalls as sc
from ..linux.proc import kill_and_wait
from . import channel, sealed_exec

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..seccomp import Filter
    from ..spec import Spec

NAMESPACE_FLAGS = {
    "user": sc.CLONE_NEWUSER, "ipc": sc.CLONE_NEWIPC, "uts": sc.CLONE_NEWUTS,
    "network": sc.CLONE_NEWNET, "pid": sc.CLONE_NEWPID, "cgroup": sc.CLONE_NEWCGROUP,
    "time": sc.CLONE_NEWTIME, "mount": sc.CLONE_NEWNS,
}
#: The order namespaces are joined in: the user namespace first (it grants the rights to join
#: the others), the mount namespace last (the other paths are resolved in the runtime's).
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")
_CLOCKS = {"monotonic": 1, "boottime": 7}


class InitRequest:
    """Everything the intermediate and the init need, decided by ``create`` before forking."""

    def __init__(self, *, spec: Spec, rootfs: str, bundle: str, cgroup_paths: dict[str, str],
                 hooks: dict[str, list[dict[str, Any]]], fifo_fd: int, error_fd: int,
                 console_fd: int,
                 keep_fds: int, extra_env: list[str], no_pivot: bool, new_keyring: bool,
                 lsms: frozenset[str], seccomp: Filter | None = None,
                 container_id: str = "", systemd_cgroup: bool = False,
                 shared_mountns: bool = False) -> None:
        self.spec = spec
        self.rootfs = rootfs
        self.bundle = bundle
        self.cgroup_paths = cgroup_paths
        self.hooks = hooks
        self.fifo_fd = fifo_fd
        self.error_fd = error_fd  # init.err: why the init failed after create returned
        self.console_fd = console_fd
        self.keep_fds = keep_fds
        self.extra_env = extra_env
        self.no_pivot = no_pivot
        self.new_keyring = new_keyring
        self.lsms = lsms
        self.seccomp = seccomp
        self.container_id = container_id
        self.systemd_cgroup = systemd_cgroup  # start a systemd scope for the container
        self.stub_fd = -1  # the sealed exec stub, made by spawn()
        #: the container stays in the caller's mount namespace (see rootfs.py)
        self.shared_mountns = shared_mountns
        #: detached copies of the bind sources, by index in mounts (see rootfs.py)
        self.bind_trees: dict[int, int] = {}
        linux = spec.linux
        self.userns = linux.namespace("user") is not None
        cgroupns = linux.namespace("cgroup")
        self.new_cgroupns = cgroupns is not None and not cgroupns.path


def spawn(req: InitRequest, on_hooks: Callable[[int, bytes], None],
          on_mount: Callable[[int, int, str], None] | None = None
          ) -> tuple[int, channel.Channel]:
    """Start the init; return its host pid once it waits for ``start``, with the channel on
    which the caller must send COMMITTED (after recording the container) and then close.

    ``on_hooks(pid, state)`` runs when the init has its mounts and devices, before pivot_root: it
    sets the cgroups' limits (as runc does then: a devices rule must not stop the init making
    its /dev) and runs the prestart and createRuntime hooks. ``on_mount(ns, id, path)`` records
    a mount the init made in the caller's mount namespace (``req.shared_mountns``). On failure
    nothing of the init is left running.
    """
    sc.prctl(sc.PR_SET_DUMPABLE, 0)  # our /proc/<pid>/exe is the host's interpreter
    req.stub_fd = sealed_exec.sealed_stub()
    ns_fds: dict[str, int] = {}
    cgroup2_fd = -1
    try:
        ns_fds = _open_namespace_paths(req.spec, req.shared_mountns)
        cgroup2_fd = Manager(req.cgroup_paths).open_v2()
        stage1, parent = channel.fork_child(
            lambda ch: _intermediate(req, ch, ns_fds, cgroup2_fd))
    finally:
        for fd in [*ns_fds.values(), cgroup2_fd, req.stub_fd]:
            if fd >= 0:
                os.close(fd)
    init_pid = 0
    state = b""
    stage1_reaped = False
    try:
        while True:
            msg = parent.recv()
            kind = msg["type"]
            if kind == channel.USERNS:
                _write_id_maps(stage1, req.spec)
                parent.send(channel.USERNS_DONE)
            elif kind == channel.PID:
                init_pid = msg["pid"]
                _set_oom_score_adj(init_pid, req.spec)
                os.waitpid(stage1, 0)
                stage1_reaped = True
                _join_cgroups(req, init_pid, msg["placed"])
                state = hooks.state_json(req.container_id, "creating", init_pid, req.bundle,
                                         req.spec.oci_version, req.spec.annotations)
                parent.send(channel.JOINED, state=state.decode())
            elif kind == channel.MOUNTED and on_mount is not None:
                on_mount(msg["ns"], msg["id"], msg["path"])
            elif kind == channel.HOOKS:
                on_hooks(init_pid, state)
                parent.send(channel.HOOKS_DONE)
            elif kind == channel.READY:
                return init_pid, parent
    except BaseException:
        parent.close()
        kill_and_wait(init_pid)
        raise
    finally:
        if not stage1_reaped:
            channel.reap(stage1)


def _join_cgroups(req: InitRequest, pid: int, placed: bool) -> None:
    """Start the container's systemd scope when asked, and move the init into its cgroup2
    unless it was ``placed`` there when cloned (a slow move: see the module's docstring)."""
    if req.systemd_cgroup:
        from ..cgroups import systemd

        systemd.start_scope(req.spec.linux.cgroups_path, req.container_id, pid)
    if not placed:
        Manager(req.cgroup_paths).add_v2(pid)


def preload(req: InitRequest) -> None:
    """Import everything the init will need, before entering any namespace: once in a user
    namespace or past pivot_root, the host's Python files may be out of its reach."""
    from . import init  # noqa: F401

    process = req.spec.process
    if (process is not None and process.terminal) or req.seccomp is not None:
        import socket  # noqa: F401
    if req.systemd_cgroup or req.hooks.get("createContainer") or req.hooks.get("startContainer"):
        import subprocess  # noqa: F401


def _open_namespace_paths(spec: Spec, shared_mountns: bool) -> dict[str, int]:
    """The namespaces to join, by type; not the mount namespace when it is our own."""
    fds = {}
    try:
        for ns in spec.linux.namespaces:
            if ns.path and not (ns.type == "mount" and shared_mountns):
                fds[ns.type] = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        for fd in fds.values():
            os.close(fd)
        raise SysError(f"open {exc.filename} for the {ns.type} namespace", exc.errno or 0) \
            from None
    return fds


def _set_oom_score_adj(pid: int, spec: Spec) -> None:
    """Written by the runtime: inside a user namespace the init could not write its own."""
    if spec.process is None or spec.process.oom_score_adj is None:
        return
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w") as f:
            f.write(str(spec.process.oom_score_adj))
    except OSError as exc:
        raise SysError(f"set oom_score_adj to {spec.process.oom_score_adj}",
                       exc.errno or 0) from None


def _write_id_maps(pid: int, spec: Spec) -> None:
    for name, mappings in (("uid_map", spec.linux.uid_mappings),
                           ("gid_map", spec.linux.gid_mappings)):
        data = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(data)
        except OSError as exc:
            raise SysError(f"write {name} for the user namespace", exc.errno or 0) from None


def _intermediate(req: InitRequest, ch: channel.Channel, ns_fds: dict[str, int],
                  cgroup2_fd: int) -> None:
    """Enter the namespaces, fork the init (into its cgroup2), report its pid, exit."""
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)  # non-dumpable since the runtime
    preload(req)
    listener = req.seccomp.listener_fd if req.seccomp is not None else -1
    tasks_fds = Manager(req.cgroup_paths).open_v1_tasks()  # as host root, in the host's mounts
    close_fds_except(req.keep_fds, {ch.rfd, ch.wfd, req.fifo_fd, req.error_fd,
                                     req.console_fd, listener,
                                     req.stub_fd, cgroup2_fd, *ns_fds.values(), *tasks_fds})
    linux = req.spec.linux
    if req.userns:
        # While we are still the host's root: the user namespace's may not reach the sources.
        from .. import rootfs

        req.bind_trees = rootfs.open_bind_sources(req.spec, req.bundle)
    joined_user, joined_cgroupns = "user" in ns_fds, "cgroup" in ns_fds
    if "user" in ns_fds:
        join_namespace(ns_fds.pop("user"), "user")
    elif req.userns:
        _unshare(sc.CLONE_NEWUSER, "user")
        ch.send(channel.USERNS)
        ch.expect(channel.USERNS_DONE)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    for kind in JOIN_ORDER:
        if kind in ns_fds:
            join_namespace(ns_fds.pop(kind), kind)
    flags = 0
    for ns in linux.namespaces:
        if not ns.path and ns.type not in ("user", "cgroup"):  # the init makes its cgroupns
            flags |= NAMESPACE_FLAGS[ns.type]
    # The pid namespace is made by the clone of the init when that can go straight into the
    # cgroup2 (a clone that failed in a namespace unshared beforehand would leave it unusable:
    # its pid 1 gone); not as a user namespace's root (no rights over the host's cgroups).
    into_cgroup = cgroup2_fd >= 0 and not (req.userns or joined_user or joined_cgroupns)
    clone_pidns = flags & sc.CLONE_NEWPID if into_cgroup else 0
    if flags & ~clone_pidns:
        _unshare(flags & ~clone_pidns, "namespaces")
    if linux.time_offsets and flags & sc.CLONE_NEWTIME:
        lines = "".join(f"{_CLOCKS[clock]} {secs} {nanos}\n"
                        for clock, (secs, nanos) in linux.time_offsets.items())
        try:
            with open("/proc/self/timens_offsets", "w") as f:
                f.write(lines)
        except OSError as exc:
            raise SysError("write time namespace offsets", exc.errno or 0) from None
    pid, placed = fork_into(cgroup2_fd if into_cgroup else -1, clone_pidns)
    if cgroup2_fd >= 0:
        os.close(cgroup2_fd)  # the host's cgroupfs must not reach the container
    if pid == 0:
        from . import init  # imported by preload(), before any namespace was entered

        init.run(req, ch, tasks_fds)
    ch.send(channel.PID, pid=pid, placed=placed)
    os._exit(0)


def fork_into(cgroup2_fd: int, new_pidns: int = 0) -> tuple[int, bool]:
    """os.fork(), the child starting in the cgroup2 directory ``cgroup2_fd`` if there is one and
    the kernel can (clone3's CLONE_INTO_CGROUP, from 5.7; not as a user namespace's root, nor
    from inside a joined cgroup namespace), and in a new pid namespace if ``new_pidns``
    (CLONE_NEWPID). Returns (pid, whether the child was placed in the cgroup)."""
    if cgroup2_fd >= 0:
        try:
            return sc.fork_into_cgroup(cgroup2_fd, new_pidns), True
        except OSError:
            pass  # the runtime moves the child (and fails if it must)
    if new_pidns:
        _unshare(new_pidns, "namespaces")
    return os.fork(), False


def close_fds_except(first: int, keep: set[int]) -> None:
    """Close every inherited fd from ``first`` on (the caller's leaks, our own state-dir lock)
    but those in ``keep``: nothing of the host may reach the container through an fd."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def join_namespace(fd: int, kind: str) -> None:
    """setns(2) into the ``kind`` namespace open as ``fd``, and close it."""
    try:
        sc.setns(fd, NAMESPACE_FLAGS[kind])
    except OSError as exc:
        raise SysError(f"join the {kind} namespace", exc.errno or 0) from None
    finally:
        os.close(fd)


def _unshare(flags: int, what: str) -> None:
    try:
        sc.unshare(flags)
    except OSError as exc:
        raise SysError(f"unshare {what}", exc.errno or 0) from None


__all__ = ["InitRequest", "spawn", "OcirtError"]
