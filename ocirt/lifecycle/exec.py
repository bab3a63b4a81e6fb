"""``exec``: run another process inside a created or running container."""

from __future__ import annotations

import os

from .. import jsonio
from .. import spec as spec_mod
from ..cgroups.fs import frozen_now
from ..errors import ConfigError, ExecError, OcirtError
from ..linux import syscalls as sc
from ..process.execute import ExecRequest, spawn_exec
from ..state import Store, write_atomic
from . import query
from . import status as st

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..spec import Process
    from ..state import State


class ExecOptions:
    def __init__(self, *, process_file: str = "", args: list[str] | None = None,
                 tty: bool = False, console_socket: str = "", detach: bool = False,
                 pid_file: str = "", cwd: str = "", env: list[str] | None = None,
                 user: str = "", additional_gids: list[str] | None = None,
                 caps: list[str] | None = None, no_new_privs: bool = False,
                 apparmor: str = "", process_label: str = "", preserve_fds: int = 0,
                 ignore_paused: bool = False, cgroup: list[str] | None = None,
                 pidfd_socket: str = "", trace: Callable[[str], None] | None = None) -> None:
        self.process_file = process_file
        self.args = args or []
        self.tty = tty
        self.console_socket = console_socket
        self.detach = detach
        self.pid_file = os.path.abspath(pid_file) if pid_file else ""
        self.cwd = cwd
        self.env = env or []
        self.user = user
        self.additional_gids = additional_gids or []
        self.caps = caps or []
        self.no_new_privs = no_new_privs
        self.apparmor = apparmor
        self.process_label = process_label
        self.preserve_fds = preserve_fds
        self.ignore_paused = ignore_paused
        self.cgroup = cgroup or []  # ``--cgroup`` arguments, as given
        self.pidfd_socket = pidfd_socket
        self.trace = trace  # told each step, with --debug


def build_process(state: State, opts: ExecOptions) -> Process:
    """The process to run: ``--process`` as given, or config.json's process as ``create``
    recorded it, with the command line's args and overrides (as runc builds it)."""
    if opts.process_file:
        try:
            with open(opts.process_file, "rb") as f:
                return spec_mod.parse_process(jsonio.loads(f.read()), "", opts.process_file)
        except OSError as exc:
            raise ConfigError(f"open {opts.process_file}: {(exc.strerror or '').lower()}") \
                from None
        except ValueError as exc:
            raise ConfigError(f"{opts.process_file}: invalid JSON: {exc}") from None
    if not opts.args:
        raise ConfigError("exec requires a command, or --process")
    if state.process is not None:
        proc = spec_mod.parse_process(state.process)
    else:  # created by an ocirt that did not record it: the bundle's is all there is
        spec, _ = spec_mod.load(state.bundle)
        if spec.process is None:
            raise ConfigError("config.json has no process to take defaults from")
        proc = spec.process
    proc.args = opts.args
    proc.terminal = opts.tty
    proc.console_size = None
    if opts.cwd:
        proc.cwd = opts.cwd
    proc.env = [*proc.env, *opts.env]
    if opts.user:
        uid, _, gid = opts.user.partition(":")
        try:
            proc.user.uid = int(uid)
            proc.user.gid = int(gid) if gid else proc.user.gid
        except ValueError:
            raise ConfigError(f"invalid --user {opts.user!r}: want uid[:gid]") from None
    if opts.additional_gids:
        try:
            proc.user.additional_gids = [int(g) for g in opts.additional_gids]
        except ValueError:
            raise ConfigError("invalid --additional-gids: want numbers") from None
    if opts.caps:
        caps = proc.capabilities or spec_mod.Capabilities()
        for name in opts.caps:
            for group in (caps.bounding, caps.effective, caps.permitted):
                if name not in group:
                    group.append(name)
        proc.capabilities = caps
    if opts.no_new_privs:
        proc.no_new_privileges = True
    if opts.apparmor:
        proc.apparmor_profile = opts.apparmor
    if opts.process_label:
        proc.selinux_label = opts.process_label
    return proc


def exec_process(store: Store, container_id: str, opts: ExecOptions) -> int:
    """Start the process; with ``detach`` return 0 at once, else wait and return its status."""
    cdir = store.container(container_id)
    state = cdir.load()
    current = st.status(cdir, state)
    if current == st.PAUSED and opts.ignore_paused:
        current = st.RUNNING
    st.require("exec", current, container_id)
    proc = build_process(state, opts)
    if opts.process_file and opts.tty:
        proc.terminal = True
    if proc.terminal and not opts.console_socket and opts.detach:
        raise ConfigError("cannot allocate tty if ocirt will detach without setting console socket")
    if opts.console_socket and not proc.terminal:
        raise ConfigError("cannot use console socket if ocirt will not detach or allocate tty")
    paths = state.cgroup_paths
    if opts.cgroup:
        paths = _sub_cgroups(paths, opts.cgroup, opts.ignore_paused)
    keep_fds = 3 + opts.preserve_fds
    for fd in range(3, keep_fds):
        try:
            os.fstat(fd)
        except OSError:
            raise ConfigError(f"unable to stat preserved-fd {fd - 3} (of {opts.preserve_fds}): "
                              "bad file descriptor") from None
    lsms: frozenset[str] = frozenset()
    if proc.apparmor_profile or proc.selinux_label:
        from ..linux.lsm import active_lsms

        lsms = active_lsms()
    console_fd, own_console = -1, -1
    if opts.console_socket:
        from .. import console

        console_fd = console.connect(opts.console_socket)
    elif proc.terminal:
        from .. import console

        own_console, console_fd = console.socket_pair()
    if not opts.detach:
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    from .foreground import Forwarder

    forwarder = None if opts.detach else Forwarder()
    filt = None
    if state.seccomp is not None:
        from .. import seccomp

        filt = seccomp.prepare(state.seccomp, state.oci_version)
    try:
        pid = spawn_exec(ExecRequest(init_pid=state.pid, process=proc, cgroup_paths=paths,
                                     console_fd=console_fd, keep_fds=keep_fds, extra_env=[],
                                     lsms=lsms, seccomp=filt,
                                     state=query.document(cdir, state)))
    finally:
        if console_fd >= 0:
            os.close(console_fd)
        if filt is not None and filt.listener_fd >= 0:
            os.close(filt.listener_fd)
    if opts.trace:
        opts.trace(f"exec in {container_id}: process {pid} runs {proc.args[0]!r}")
    if opts.pid_file:
        write_atomic(opts.pid_file, str(pid).encode(), 0o644)
    if opts.pidfd_socket:
        from .pidfd import send_pidfd

        send_pidfd(opts.pidfd_socket, pid, b"exec")
    if forwarder is None:
        return 0
    master = -1
    if own_console >= 0:
        from .. import console

        master = console.receive_master(own_console)
    try:
        return forwarder.wait(pid, master)
    finally:
        if master >= 0:
            os.close(master)


def _sub_cgroups(paths: dict[str, str], args: list[str], ignore_paused: bool) -> dict[str, str]:
    """``--cgroup path`` (every hierarchy) or ``--cgroup controller[,controller]:path``
    (repeatable), parsed as runc parses them: the process goes to an existing sub-cgroup of
    the container's. The path is taken below the container's cgroup (a leading "/" too) and
    must stay there: no ".." out of it (not even into a sibling whose name begins with the
    container's), no symlink (cgroupfs has none), and no frozen cgroup unless
    ``--ignore-paused`` (the process would hang there, and this command with it)."""
    subs: dict[str, str] = {}
    for arg in args:
        parts = arg.split(":")
        if len(parts) > 2:
            raise ExecError(f"invalid --cgroup argument: {arg}")
        if len(parts) == 1:
            if len(args) != 1:
                raise ExecError(f"invalid --cgroup argument: {arg} (missing <controller>: prefix)")
            subs[""] = arg
            continue
        for ctrl in parts[0].split(","):
            if not ctrl:
                raise ExecError(f"invalid --cgroup argument: {arg} (empty <controller> prefix)")
            subs[ctrl] = parts[1]
    out = dict(paths)
    for ctrl, sub in subs.items():
        keys = list(paths) if ctrl == "" else [k for k in paths if ctrl in k.split(",")]
        if not keys:
            raise ExecError(f"unknown controller {ctrl} in --cgroup")
        for key in keys:
            base = os.path.realpath(paths[key])
            candidate = os.path.realpath(os.path.join(base, sub.lstrip("/")))
            if not (candidate + "/").startswith(base + "/"):
                raise ExecError(f"{sub} is not a sub cgroup path")
            if not os.path.isdir(candidate):
                raise ExecError(f"--cgroup: {candidate} does not exist")
            if not ignore_paused and frozen_now(key, candidate):
                raise ExecError(f"--cgroup: {candidate} is frozen")
            out[key] = candidate
    return out


__all__ = ["ExecOptions", "exec_process", "OcirtError"]
