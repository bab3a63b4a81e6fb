"""``create``: from a bundle to a container whose init waits for ``start``.

The order follows runtime.md's lifecycle: validate the bundle, record the container, create its
cgroups, spawn the init (namespaces, prestart/createRuntime hooks, rootfs, createContainer hooks,
process setup), write the state and the pid file. Any failure undoes every step.
"""

from __future__ import annotations

import os
import stat
import time

from .. import hooks
from .. import spec as spec_mod
from ..cgroups.fs import Manager, resolve_paths
from ..errors import ConfigError, ExistsError, OcirtError, SysError, strerror
from ..linux import proc
from ..linux.proc import kill_and_wait
from ..process import channel
from ..process.spawn import InitRequest, spawn
from ..state import ContainerDir, State, Store, write_atomic
from .delete import undo_mounts

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..seccomp import Filter

# sysctl prefixes and the namespace that makes them container-local (as runc validates).
_SYSCTL_NAMESPACES = (("net.", "network"), ("kernel.msg", "ipc"), ("kernel.sem", "ipc"),
                      ("kernel.shm", "ipc"), ("fs.mqueue.", "ipc"), ("kernel.hostname", "uts"),
                      ("kernel.domainname", "uts"))


class Options:
    """The create-time flags of ``create`` and ``run``."""

    def __init__(self, bundle: str = ".", pid_file: str = "", console_socket: str = "",
                 no_pivot: bool = False, no_new_keyring: bool = False, preserve_fds: int = 0,
                 systemd_cgroup: bool = False, console_fd: int = -1,
                 trace: Callable[[str], None] | None = None) -> None:
        self.bundle = os.path.abspath(bundle)
        self.pid_file = os.path.abspath(pid_file) if pid_file else ""
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.systemd_cgroup = systemd_cgroup
        #: an already connected console socket (``run`` in the foreground makes its own)
        self.console_fd = console_fd
        #: told each step, with --debug
        self.trace = trace or _quiet


def _quiet(_step: str) -> None:
    pass


def validate(spec: spec_mod.Spec, opts: Options) -> None:
    """What makes a config unusable for create, beyond what parsing checks: first the config
    alone (what ``ocirt check`` reports too), then the config with create's flags."""
    validate_config(spec)
    process = spec.process
    has_console = bool(opts.console_socket) or opts.console_fd >= 0
    if process is not None and process.terminal and not has_console:
        raise ConfigError("cannot allocate tty if ocirt will detach without setting console socket")
    if process is not None and has_console and not process.terminal:
        raise ConfigError("cannot use console socket if ocirt will not detach or allocate tty")


def validate_config(spec: spec_mod.Spec) -> None:
    """The config's own contradictions, whatever the flags (``ocirt check`` runs this too)."""
    if spec.process is None:
        raise ConfigError("config.json: /process: is required to create a container")
    linux = spec.linux
    if linux.namespace("mount") is None and (linux.masked_paths or linux.readonly_paths):
        raise ConfigError("unable to restrict sys entries without a private MNT namespace")
    userns = linux.namespace("user")
    if userns is not None and not userns.path and not (linux.uid_mappings and linux.gid_mappings):
        raise ConfigError("user namespace enabled, but no uid/gid mappings set")
    if userns is None and (linux.uid_mappings or linux.gid_mappings):
        raise ConfigError("uid/gid mappings set, but no user namespace in linux.namespaces")
    uts = linux.namespace("uts")
    if (spec.hostname or spec.domainname) and (uts is None):
        raise ConfigError("unable to set hostname without a private UTS namespace")
    if linux.intel_rdt is not None:
        if not os.path.isdir("/sys/fs/resctrl/info"):
            raise ConfigError("linux.intelRdt is set but resctrl is not mounted on this host "
                              "(/sys/fs/resctrl)")
        raise ConfigError("linux.intelRdt is not supported by this version of ocirt")
    if linux.time_offsets and linux.namespace("time") is None:
        raise ConfigError("time offsets set, but no time namespace in linux.namespaces")
    for key in linux.sysctl:
        for prefix, ns in _SYSCTL_NAMESPACES:
            if key.startswith(prefix):
                if linux.namespace(ns) is None:
                    raise ConfigError(f"sysctl {key!r} is not allowed without a {ns} namespace")
                break
        else:
            raise ConfigError(f"sysctl {key!r} is not in a separate kernel namespace")


def shares_mount_ns(spec: spec_mod.Spec) -> bool:
    """Whether the container stays in our mount namespace: no ``mount`` entry, or one whose
    path is our own namespace (joined as such, it would be pivoted: the caller's root changed
    for every process in it)."""
    ns = spec.linux.namespace("mount")
    if ns is None:
        return True
    if not ns.path:
        return False
    try:
        theirs, ours = os.stat(ns.path), os.stat("/proc/self/ns/mnt")
    except OSError as exc:
        raise SysError(f"open {ns.path} for the mount namespace", exc.errno or 0) from None
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


def _seccomp(spec: spec_mod.Spec) -> Filter | None:
    if spec.linux.seccomp is None:
        return None
    from .. import seccomp

    return seccomp.prepare(spec.linux.seccomp, spec.oci_version)


def _rootfs(bundle: str, spec: spec_mod.Spec) -> str:
    """root.path (relative to the bundle's real path): a directory whose path has no symlink in
    it. A symlinked rootfs is refused, with runc's words: the rootfs must be what the bundle's
    owner made it, not where a link planted in it (or along its path) leads."""
    path = os.path.normpath(os.path.join(os.path.realpath(bundle), spec.root.path))
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"invalid rootfs: stat {path}: {strerror(exc.errno or 0)}") from None
    if os.path.realpath(path) != path:
        raise ConfigError("invalid rootfs: not an absolute path, or a symlink")
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"invalid rootfs: {path}: not a directory")
    return path


def _passed_fds(preserve: int) -> tuple[int, list[str]]:
    """Socket activation (LISTEN_FDS for our pid) plus --preserve-fds: (first fd not kept, env)."""
    extra_env: list[str] = []
    listen = 0
    if os.environ.get("LISTEN_PID") == str(os.getpid()):
        try:
            listen = int(os.environ.get("LISTEN_FDS", "0"))
        except ValueError:
            listen = 0
        if listen > 0:
            extra_env = [f"LISTEN_FDS={listen}", "LISTEN_PID=1"]
    total = listen + preserve
    for fd in range(3, 3 + total):
        try:
            os.fstat(fd)
        except OSError:
            raise ConfigError(f"unable to stat preserved-fd {fd - 3} (of {total}): "
                              "bad file descriptor") from None
    return 3 + total, extra_env


def _created_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def create(store: Store, container_id: str, opts: Options,
           loaded: tuple[spec_mod.Spec, dict[str, Any]] | None = None) -> State:
    """Create the container; on return its init waits for ``start``. ``loaded``: the bundle's
    config.json (parsed, and as read) if the caller has read it already."""
    cdir = store.container(container_id)
    spec, doc = loaded or spec_mod.load(opts.bundle)
    validate(spec, opts)
    rootfs = _rootfs(opts.bundle, spec)
    keep_fds, extra_env = _passed_fds(opts.preserve_fds)
    store.ensure()
    try:
        os.mkdir(cdir.path, 0o711)
    except FileExistsError:
        raise ExistsError(container_id) from None
    except OSError as exc:
        raise SysError(f"mkdir {cdir.path}", exc.errno or 0) from None
    cdir.lock()
    trace = opts.trace
    trace(f"create {container_id}: bundle {opts.bundle}, rootfs {rootfs}, state {cdir.path}")
    manager: Manager | None = None
    init_pid = 0
    spawned = False
    hook_json = {kind: hooks.to_json(entries) for kind, entries in spec.hooks.items()}
    try:
        fifo_fd = _make_fifo(cdir, spec)
        error_fd = _open_init_error(cdir)
        cgroups_path = spec.linux.cgroups_path
        if opts.systemd_cgroup:
            from ..cgroups import systemd

            systemd.require_systemd()
            cgroups_path = systemd.cgroup_path(cgroups_path, container_id)
        manager = Manager(resolve_paths(cgroups_path, container_id))
        # Recorded before anything is made, so that a create killed half-way can be deleted:
        # pid 0 reads as "creating", and delete then knows which cgroups are the container's
        # to remove: those missing now (one made meanwhile by someone else is put right below).
        planned = manager.missing()
        early = State(id=container_id, bundle=opts.bundle, rootfs=rootfs,
                      oci_version=spec.oci_version, cgroup_paths=manager.paths,
                      cgroups_created=planned, cgroups_path=spec.linux.cgroups_path,
                      systemd_cgroup=opts.systemd_cgroup, owner=os.geteuid())
        cdir.save(early)
        try:
            manager.create()
        finally:
            if manager.created != planned:
                early.cgroups_created = manager.created
                cdir.save(early)
        trace(f"cgroups made: {' '.join(sorted(set(manager.paths.values())))}")
        console_fd = os.dup(opts.console_fd) if opts.console_fd >= 0 else -1
        if opts.console_socket:
            from .. import console

            console_fd = console.connect(opts.console_socket)
        lsms: frozenset[str] = frozenset()
        if spec.process and (spec.process.apparmor_profile or spec.process.selinux_label):
            from ..linux.lsm import active_lsms

            lsms = active_lsms()
        request = InitRequest(
            spec=spec, rootfs=rootfs, bundle=opts.bundle, cgroup_paths=manager.paths,
            hooks=hook_json, fifo_fd=fifo_fd, error_fd=error_fd, console_fd=console_fd,
            keep_fds=keep_fds,
            extra_env=extra_env, no_pivot=opts.no_pivot, new_keyring=not opts.no_new_keyring,
            lsms=lsms, seccomp=_seccomp(spec), container_id=container_id,
            systemd_cgroup=opts.systemd_cgroup, shared_mountns=shares_mount_ns(spec))
        if request.shared_mountns:
            trace("no mount namespace of its own: the mounts are made in ours, recorded in "
                  f"{cdir.path}")

        def runtime_hooks(pid: int, state: bytes) -> None:
            """The init has its mounts and devices: limit it, then run the runtime's hooks."""
            nonlocal init_pid
            init_pid = pid
            trace(f"init {pid} has its mounts and devices")
            if spec.linux.resources:
                from ..cgroups.resources import apply

                apply(manager.paths, spec.linux.resources)
                trace("resources set")
            hooks.run("prestart", hook_json.get("prestart", []), state, cwd=opts.bundle)
            hooks.run("createRuntime", hook_json.get("createRuntime", []), state,
                      cwd=opts.bundle)

        spawned = True
        init_pid, ch = spawn(request, runtime_hooks, cdir.record_mount)
        trace(f"init {init_pid} is ready and waits for start")
        os.close(fifo_fd)
        os.close(error_fd)
        if request.seccomp is not None and request.seccomp.listener_fd >= 0:
            os.close(request.seccomp.listener_fd)
        if console_fd >= 0:
            os.close(console_fd)
        try:
            started = proc.start_time(init_pid)
            if started is None:
                raise OcirtError("container init exited before it was ready")
            pidns = spec.linux.namespace("pid")
            state = State(
                id=container_id, pid=init_pid, start_time=started, bundle=opts.bundle,
                rootfs=rootfs, created=_created_now(), oci_version=spec.oci_version,
                annotations=spec.annotations, cgroup_paths=manager.paths,
                cgroups_created=manager.created, cgroups_path=spec.linux.cgroups_path,
                systemd_cgroup=opts.systemd_cgroup,
                own_pidns=pidns is not None and not pidns.path,
                hooks={k: v for k, v in hook_json.items() if k in ("poststart", "poststop")},
                owner=os.geteuid(), seccomp=spec.linux.seccomp, process=doc.get("process"))
            cdir.save(state)
            if opts.pid_file:
                write_atomic(opts.pid_file, str(init_pid).encode(), 0o644)
            ch.send(channel.COMMITTED)
            trace("state saved" + (f", pid file {opts.pid_file}" if opts.pid_file else ""))
        finally:
            ch.close()
        return state
    except BaseException:
        _undo(cdir, manager, init_pid, hook_json, container_id, opts, spec, rootfs, spawned)
        raise
    finally:
        cdir.unlock()


def _open_init_error(cdir: ContainerDir) -> int:
    """init.err, empty, open for the init to append why it failed after create returned (it
    cannot reach the state dir by path once in the container; the fd is close-on-exec)."""
    try:
        return os.open(cdir.init_error, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
                       | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise SysError(f"create {cdir.init_error}", exc.errno or 0) from None


def _make_fifo(cdir: ContainerDir, spec: spec_mod.Spec) -> int:
    """exec.fifo, owned by the container's root, and an O_PATH fd to it for the init."""
    try:
        os.mkfifo(cdir.fifo, 0o622)
        os.chmod(cdir.fifo, 0o622)
        uid = _host_id(spec.linux.uid_mappings)
        gid = _host_id(spec.linux.gid_mappings)
        if uid or gid:
            os.chown(cdir.fifo, uid, gid)
        return os.open(cdir.fifo, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise SysError(f"create exec fifo {cdir.fifo}", exc.errno or 0) from None


def _host_id(mappings: list[spec_mod.IDMapping]) -> int:
    for m in mappings:
        if m.container_id == 0:
            return m.host_id
    return 0


def _undo(cdir: ContainerDir, manager: Manager | None, init_pid: int,
          hook_json: dict[str, list[dict[str, object]]], container_id: str, opts: Options,
          spec: spec_mod.Spec, rootfs: str, spawned: bool) -> None:
    """Leave nothing behind: the init, its cgroups (and scope), its mounts in our mount
    namespace, the state dir; poststop hooks if the init ran. Only the container's processes
    are signalled: with a pid namespace of its own, killing the init kills them all (spawn
    killed an init it had not reported yet); without one, those left in its cgroups, once the
    init was spawned (before that, nothing in them is the container's)."""
    kill_and_wait(init_pid)
    bundle = opts.bundle
    undo_mounts(cdir, rootfs)
    if manager is not None:
        pidns = spec.linux.namespace("pid")
        if spawned and (pidns is None or pidns.path):
            manager.signal_all(9)
        if opts.systemd_cgroup:
            from ..cgroups import systemd

            if systemd.systemd_running():
                systemd.stop_scope(spec.linux.cgroups_path, container_id)
        try:
            manager.destroy()
        except OcirtError:
            pass
    if init_pid and hook_json.get("poststop"):
        state = hooks.state_json(container_id, "stopped", 0, bundle, spec.oci_version,
                                 spec.annotations)
        try:
            hooks.run("poststop", hook_json["poststop"], state, cwd=bundle)
        except OcirtError:
            pass
    cdir.remove()
