"""The container's init: everything between the namespaces and execve, in the spec's order.

Runs in the process that becomes the container's PID 1 (a fork of the runtime, so no second
interpreter starts). It stays non-dumpable until execve so that the container cannot reach the
runtime through /proc/<pid>/exe or its fds, and it closes every fd not meant for the container.
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py builds enums, milliseconds per command

# Everything the init needs after pivot_root must be imported before it: the host's Python
# library is out of reach from inside the rootfs.
import os

from .. import hooks, jsonio, rootfs
from ..cgroups import fs as cgroups
from ..errors import ConfigError, OcirtError, SysError, strerror
from ..linux import netdev
from ..linux import syscalls as sc
from ..linux.mounts import unmount_recorded
from . import channel, setup

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

    from ..seccomp import Filter
    from .spawn import InitRequest

# Signals the waiting init dies of (as PID 1 of a pid namespace it would otherwise ignore them).
_FATAL_WHILE_WAITING = (1, 2, 3, 10, 12, 15)  # HUP INT QUIT USR1 USR2 TERM


def run(req: InitRequest, ch: channel.Channel, tasks_fds: list[int]) -> NoReturn:
    """Never returns: a forked child must not unwind into the runtime's stack. ``tasks_fds``:
    the container's cgroup v1 ``tasks`` files, opened on the host, to move ourselves with."""
    made = _Mounts(ch, req.rootfs) if req.shared_mountns else None
    try:
        _init(req, ch, tasks_fds, made)
    except BaseException as exc:  # noqa: B036 - the parent must hear of every failure
        if made is not None:
            made.undo()
        ch.send_error(exc)
    finally:
        os._exit(1)


def _init(req: InitRequest, ch: channel.Channel, tasks_fds: list[int],
          made: _Mounts | None) -> None:
    spec = req.spec
    proc = spec.process
    assert proc is not None
    os.setsid()
    os.umask(0)
    _join_session_keyring(req.new_keyring)
    network = spec.linux.namespace("network")
    if network is not None and not network.path:
        _call(netdev.loopback_up, what="bring up the loopback interface")

    # 1. The filesystem: mounts, /dev and devices inside the new mount namespace (a cgroup
    #    mount in a new cgroup namespace needs us in our cgroups first: see _CgroupsJoined).
    joined = _CgroupsJoined(ch, tasks_fds, req.new_cgroupns)
    ctx = rootfs.Context(spec, req.rootfs, req.bundle, req.cgroup_paths, req.userns,
                         req.new_cgroupns, cgroupns_ready=joined,
                         on_mount=made.add if made is not None else None,
                         bind_trees=req.bind_trees)
    try:
        rootfs.prepare(ctx)
    finally:
        for fd in req.bind_trees.values():
            os.close(fd)
        req.bind_trees.clear()

    # 2. Into our cgroups, if not yet; the runtime sets their limits and runs the prestart and
    #    createRuntime hooks in its own namespaces.
    state = joined()
    ch.send(channel.HOOKS)
    ch.expect(channel.HOOKS_DONE)

    # 3. createContainer hooks: in the container's namespaces, before pivot_root.
    hooks.run("createContainer", req.hooks.get("createContainer", []), state, cwd=req.rootfs)

    # 4. pivot_root into the rootfs (chroot in the caller's mount namespace).
    rootfs.pivot(req.rootfs, req.no_pivot, req.shared_mountns)
    if made is not None:
        made.root = ctx.rootfs = "/"

    # 5. The console, when process.terminal asks for one.
    if proc.terminal:
        ctx.tracked("/dev/console",
                    lambda: setup.setup_console(req.console_fd, proc, dev_console=True))

    # 6. Read-only root, hostname, domainname, sysctl, read-only and masked paths.
    if spec.root.readonly:
        rootfs.readonly_root()
    if spec.hostname:
        _call(sc.sethostname, spec.hostname, what="sethostname")
    if spec.domainname:
        _call(sc.setdomainname, spec.domainname, what="setdomainname")
    for key, value in spec.linux.sysctl.items():
        _write_sysctl(key, value)
    rootfs.readonly_paths(spec.linux.readonly_paths)
    rootfs.masked_paths(spec.linux.masked_paths)

    # 7. Process attributes that need privilege: rlimits, LSM labels, stdio owner.
    #    (oom_score_adj is written by the runtime, which can even in a user namespace.)
    setup.apply_privileged(proc, req.lsms)
    setup.set_personality(spec.linux.personality)
    setup.set_cpu_affinity(proc, "final")

    # 8. Which fds the container gets (before the filter: it may deny close_range); the
    #    seccomp filter (without no_new_privs loading it needs privileges we are about to
    #    drop, so now), the user, capabilities, umask, cwd and no_new_privs.
    setup.mark_fds_for_exec(req.keep_fds)
    if req.seccomp is not None and not proc.no_new_privileges:
        _load_seccomp(req.seccomp, state)
    setup.become_user(proc)

    # 9. The executable must exist now, so that "not found" is a create error. With
    #    no_new_privs the filter comes last, as close to execve as create allows (as runc: the
    #    wait for start and the startContainer hooks run under it, and a filter that cannot be
    #    loaded fails create, not the container after start).
    path, env = setup.find_program(proc, req.extra_env)
    if req.seccomp is not None and proc.no_new_privileges:
        _load_seccomp(req.seccomp, state)

    # 10. Ready: the runtime records the container and returns; we wait for start.
    ch.send(channel.READY)
    try:
        ch.expect(channel.COMMITTED)
    except channel.ChannelClosed:
        os._exit(1)  # create failed after all, and undoes us: it has its own error to tell
    except BaseException as exc:  # noqa: B036 - create may have returned: tell the container
        _report(f"wait for the runtime: {_describe(exc)}", -1, req.error_fd)
        os._exit(1)
    ch.close()
    _start(req, path, env, state.replace(b'"status": "creating"', b'"status": "created"'))


def _start(req: InitRequest, path: str, env: dict[str, str], state: bytes) -> NoReturn:
    """11. Wait for start, run the startContainer hooks inside the container, exec.

    create has returned, so a failure from here on has no channel to travel: it is written
    on the container's stderr, in init.err (for a ``start`` that finds us dead) and, once
    ``start`` has opened exec.fifo, sent to it there ("1" and the message; "0" means the hooks
    passed), where ``start`` reads until the fifo closes on execve."""
    proc = req.spec.process
    assert proc is not None
    fifo = -1
    step = "wait for start"
    try:
        fifo = _wait_for_start(req.fifo_fd)
        step = "startContainer hook"
        hooks.run("startContainer", req.hooks.get("startContainer", []), state)
        step = "report to start"
        os.write(fifo, b"0")
        step = "exec"
        setup.exec_process(path, proc.args, env, req.stub_fd,
                           report=lambda message: _report(message, fifo, req.error_fd))
    except OcirtError as exc:
        _report(exc.message, fifo, req.error_fd)
    except BaseException as exc:  # noqa: B036 - no traceback, and the process must end here
        _report(f"{step}: {_describe(exc)}", fifo, req.error_fd)
    os._exit(1)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OcirtError):
        return exc.message
    if isinstance(exc, OSError) and exc.errno:
        return strerror(exc.errno)
    return type(exc).__name__


def _report(message: str, fifo: int, error_fd: int) -> None:
    for fd, data in ((2, f"ocirt: {message}\n".encode()), (fifo, b"1" + message.encode()),
                     (error_fd, message.encode())):
        if fd >= 0:
            try:
                os.write(fd, data)
            except OSError:
                pass


def _load_seccomp(filt: Filter, state: bytes) -> None:
    doc = jsonio.loads(state)
    setup.load_seccomp(filt, doc, doc["pid"])


class _Mounts:
    """The mounts the init made in the caller's mount namespace (a container without its own):
    each is reported to the runtime, which records it for delete, as soon as it is made; if the
    init fails, it unmounts them itself (the runtime may be gone: killed half-way)."""

    def __init__(self, ch: channel.Channel, rootfs: str) -> None:
        self.ch = ch
        self.ns = os.stat("/proc/self/ns/mnt").st_ino
        self.records: list[tuple[int, str]] = []
        self.root = rootfs  # where the paths are: "/" once chrooted

    def add(self, mnt_id: int, path: str) -> None:
        self.records.append((mnt_id, path))
        self.ch.send(channel.MOUNTED, ns=self.ns, id=mnt_id, path=path)

    def undo(self) -> None:
        if self.records:
            unmount_recorded(self.root, self.records)


class _CgroupsJoined:
    """Once: moves the init into its cgroup v1 hierarchies and waits for the runtime's JOINED
    (cgroup2). From then on the init is in the container's cgroups, so a new cgroup namespace
    made now is rooted there. Returns the state JSON."""

    def __init__(self, ch: channel.Channel, tasks_fds: list[int], new_cgroupns: bool) -> None:
        self.ch = ch
        self.tasks_fds = tasks_fds
        self.new_cgroupns = new_cgroupns
        self.state = b""

    def __call__(self) -> bytes:
        if not self.state:
            cgroups.enter(self.tasks_fds)
            self.state = self.ch.expect(channel.JOINED)["state"].encode()
            if self.new_cgroupns:
                _call(sc.unshare, sc.CLONE_NEWCGROUP, what="unshare the cgroup namespace")
        return self.state


def _call(fn: Callable[..., object], *args: object, what: str) -> None:
    try:
        fn(*args)
    except OSError as exc:
        raise SysError(what, exc.errno or 0) from None


def _join_session_keyring(new_keyring: bool) -> None:
    if not new_keyring:
        return
    import ctypes

    nr = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine)
    if nr is None:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(nr, 1, None) < 0:  # KEYCTL_JOIN_SESSION_KEYRING, anonymous
        err = ctypes.get_errno()
        if err not in (38, 13, 1):  # ENOSYS, EACCES, EPERM: keyrings unavailable here
            raise SysError("join session keyring", err)


def _write_sysctl(key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    if ".." in key.split(".") or "/" in key:
        raise ConfigError(f"sysctl {key!r} is not a valid key")
    setup.write_proc(path, value, what=f"write sysctl key {key}")


def _wait_for_start(fifo_fd: int) -> int:
    """Block until ``start`` opens exec.fifo; return the fifo open for writing our result.

    Signal dispositions are reset for the container's process before the wait, so that after
    it (while ``start`` waits for our answer) only the few set for the wait need restoring."""
    def die(signum: int, _frame: object) -> None:
        os._exit(128 + signum)

    setup.reset_signals()
    for sig in _FATAL_WHILE_WAITING:
        signal.signal(sig, die)
    try:
        fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise SysError("open exec fifo", exc.errno or 0) from None
    try:
        for sig in _FATAL_WHILE_WAITING:
            signal.signal(sig, signal.SIG_DFL)
        os.close(fifo_fd)
    except OSError:
        pass  # both only tidy up before execve (the O_PATH fd is close-on-exec)
    return fd
