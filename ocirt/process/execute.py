"""Spawning a process inside a running container (``exec``).

The runtime forks an intermediate that joins the container's cgroups and then its namespaces,
read from the init's /proc/<pid>/ns (the user namespace first); it forks the process itself,
which sets up its terminal, limits, labels, user and capabilities and execs. As for the init
(see spawn.py), the process moves itself into the v1 hierarchies, through files the
intermediate opened on the host, and is cloned straight into cgroup2 (or moved there by the
runtime). The channel is close-on-exec: end of file after READY means execve succeeded, an
error message that it failed.
Until execve every process here is non-dumpable and holds no host fd beyond stdio and the
preserved ones, so the container cannot reach the runtime through /proc (CVE-2019-5736,
CVE-2024-21626).
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py builds enums, milliseconds per command
import os

from ..cgroups import fs as cgroups
from ..cgroups.fs import Manager
from ..errors import ExecError, OcirtError, SysError
from ..linux import syscalls as sc
from . import channel, sealed_exec
from .spawn import JOIN_ORDER, close_fds_except, fork_into, join_namespace

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

    from ..seccomp import Filter
    from ..spec import Process

_PROC_NS = {"user": "user", "ipc": "ipc", "uts": "uts", "network": "net", "pid": "pid",
            "cgroup": "cgroup", "time": "time", "mount": "mnt"}


class ExecRequest:
    def __init__(self, *, init_pid: int, process: Process, cgroup_paths: dict[str, str],
                 console_fd: int, keep_fds: int, extra_env: list[str],
                 lsms: frozenset[str], seccomp: Filter | None = None,
                 state: dict[str, Any] | None = None) -> None:
        self.init_pid = init_pid
        self.process = process
        self.cgroup_paths = cgroup_paths
        self.console_fd = console_fd
        self.keep_fds = keep_fds
        self.extra_env = extra_env
        self.lsms = lsms
        self.seccomp = seccomp
        self.state = state or {}  # the container's state, for a seccomp listener
        self.stub_fd = -1  # the sealed exec stub, made by spawn_exec()


def _namespaces_of(pid: int) -> dict[str, int]:
    """fds of the init's namespaces that differ from ours, by spec name."""
    fds = {}
    try:
        for kind in JOIN_ORDER:
            name = _PROC_NS[kind]
            theirs = f"/proc/{pid}/ns/{name}"
            try:
                if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                    continue
            except FileNotFoundError:
                continue  # a namespace type this kernel lacks
            fds[kind] = os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        for fd in fds.values():
            os.close(fd)
        raise SysError(f"open the namespaces of pid {pid}", exc.errno or 0) from None
    return fds


def spawn_exec(req: ExecRequest) -> int:
    """Start the process; its host pid once it has exec'd. Raises ExecError if it could not."""
    if req.process.terminal or req.seccomp is not None:
        import socket  # noqa: F401
    sc.prctl(sc.PR_SET_DUMPABLE, 0)  # our /proc/<pid>/exe is the host's interpreter
    req.stub_fd = sealed_exec.sealed_stub()
    ns_fds: dict[str, int] = {}
    cgroup2_fd = -1
    try:
        ns_fds = _namespaces_of(req.init_pid)
        cgroup2_fd = Manager(req.cgroup_paths).open_v2()
        stage1, parent = channel.fork_child(
            lambda ch: _intermediate(req, ch, ns_fds, cgroup2_fd))
    finally:
        for fd in [*ns_fds.values(), cgroup2_fd, req.stub_fd]:
            if fd >= 0:
                os.close(fd)
    pid = 0
    try:
        msg = parent.expect(channel.PID)
        pid = msg["pid"]
        if not msg["placed"]:
            Manager(req.cgroup_paths).add_v2(pid)  # slow: see spawn.py
        parent.send(channel.PID, pid=pid)  # the process learns its host pid, and is in place
        os.waitpid(stage1, 0)
        stage1 = 0
        parent.expect(channel.READY)
        try:
            parent.recv()
        except channel.ChannelClosed:
            return pid  # the channel closed on execve
        raise ExecError("internal error: unexpected message after ready")
    except OcirtError as exc:
        if pid:
            _reap(pid)
        raise ExecError(exc.message) from None
    finally:
        parent.close()
        if stage1:
            channel.reap(stage1)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _intermediate(req: ExecRequest, ch: channel.Channel, ns_fds: dict[str, int],
                  cgroup2_fd: int) -> None:
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)  # non-dumpable since the runtime
    # Imported here rather than by the runtime (whose start it would slow), and before setns
    # (after which the host's Python library is out of reach).
    from . import setup
    listener = req.seccomp.listener_fd if req.seccomp is not None else -1
    close_fds_except(req.keep_fds, {ch.rfd, ch.wfd, req.console_fd, listener, req.stub_fd,
                                     cgroup2_fd, *ns_fds.values()})
    tasks_fds = Manager(req.cgroup_paths).open_v1_tasks()  # before setns: see cgroups/fs.py
    if req.process.oom_score_adj is not None:
        # On the host's procfs, before joining the container (whose /proc could redirect the
        # write, CVE-2025-52881) and while privileged enough to lower it; the fork inherits it.
        setup.write_proc("/proc/self/oom_score_adj", str(req.process.oom_score_adj))
    # The cgroup namespace is joined by the process itself: from inside it the clone into the
    # container's cgroup2 would not be allowed (our cgroup is outside its root).
    cgroupns_fd = ns_fds.pop("cgroup", -1)
    into_cgroup = "user" not in ns_fds  # a user namespace's root has no rights over the host's
    # A container in our own mount namespace (none of its own) is chrooted: so are we, into
    # its root (opened from the host, before the joins; entered after them: a chrooted
    # process may not join a user namespace).
    root_fd = -1 if "mount" in ns_fds else _open_root(req.init_pid)
    for kind in JOIN_ORDER:
        if kind in ns_fds:
            join_namespace(ns_fds.pop(kind), kind)
    if root_fd >= 0:
        try:
            os.fchdir(root_fd)
            os.chroot(".")
        except OSError as exc:
            raise SysError("chroot into the container's root", exc.errno or 0) from None
        finally:
            os.close(root_fd)
    pid, placed = fork_into(cgroup2_fd if into_cgroup else -1)
    if cgroup2_fd >= 0:
        os.close(cgroup2_fd)  # the host's cgroupfs must not reach the container
    if pid == 0:
        try:
            if cgroupns_fd >= 0:
                join_namespace(cgroupns_fd, "cgroup")
            _process(req, ch, tasks_fds)
        except BaseException as exc:  # noqa: B036
            ch.send_error(exc)
        finally:
            os._exit(255)
    ch.send(channel.PID, pid=pid, placed=placed)
    os._exit(0)



def _open_root(pid: int) -> int:
    """The root directory of the process ``pid`` (its chroot), as an fd."""
    try:
        return os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise SysError(f"open the root of pid {pid}", exc.errno or 0) from None


def _process(req: ExecRequest, ch: channel.Channel, tasks_fds: list[int]) -> None:
    """In the container: terminal, limits, labels, user, cwd, then execve."""
    from . import setup  # imported by _intermediate, on the host
    proc = req.process
    os.chdir("/")
    os.setsid()  # a session and process group of its own, as the init's (and runc's)
    if proc.terminal:
        setup.setup_console(req.console_fd, proc, dev_console=False)
    setup.set_cpu_affinity(proc, "initial")
    setup.apply_privileged(proc, req.lsms)
    # From here on we must be in the cgroups: v1 by ourselves, cgroup2 by the runtime.
    cgroups.enter(tasks_fds)
    my_pid = ch.expect(channel.PID)["pid"]
    setup.mark_fds_for_exec(req.keep_fds)  # before the filter: it may deny close_range
    if req.seccomp is not None and not proc.no_new_privileges:
        setup.load_seccomp(req.seccomp, req.state, my_pid)
    setup.become_user(proc)
    path, env = setup.find_program(proc, req.extra_env)
    setup.reset_signals()
    setup.set_cpu_affinity(proc, "final")
    if req.seccomp is not None and proc.no_new_privileges:
        setup.load_seccomp(req.seccomp, req.state, my_pid)
    ch.send(channel.READY)
    setup.exec_process(path, proc.args, env, req.stub_fd,
                       report=lambda message: ch.send_error(ExecError(message)))
