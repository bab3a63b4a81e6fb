"""The container's init: everything between the namespaces and execve, in the spec's order.

Runs in the process that becomes the container's PID 1 (a fork of the runtime, so no second
interpreter starts). It stays non-dumpable until execve so that the container cannot reach the
runtime through /proc/<pid>/exe or its fds, and it closes every fd not meant for the container.
"""

from __future__ import annotations

# Everything the init needs after pivot_root must be imported before it: the host's Python
# library is out of reach from inside the rootfs.
import fcntl
import os
import resource
import signal
import stat
import termios
from typing import TYPE_CHECKING, NoReturn

from .. import capabilities, console, hooks, rootfs
from ..errors import ConfigError, ExecError, OcirtError, SysError, strerror
from ..linux import syscalls as sc
from . import channel

if TYPE_CHECKING:
    from ..spec import Process
    from .spawn import InitRequest

# Signals the waiting init dies of (as PID 1 of a pid namespace it would otherwise ignore them).
_FATAL_WHILE_WAITING = (1, 2, 3, 10, 12, 15)  # HUP INT QUIT USR1 USR2 TERM


def run(req: InitRequest, ch: channel.Channel) -> NoReturn:
    """Never returns: a forked child must not unwind into the runtime's stack."""
    try:
        _init(req, ch)
    except BaseException as exc:  # noqa: B036 - the parent must hear of every failure
        ch.send_error(exc)
    finally:
        os._exit(1)


def _init(req: InitRequest, ch: channel.Channel) -> None:
    spec = req.spec
    proc = spec.process
    assert proc is not None
    os.setsid()
    os.umask(0)
    _join_session_keyring(req.new_keyring)

    # 1. The filesystem: mounts, /dev and devices inside the new mount namespace.
    ctx = rootfs.Context(spec, req.rootfs, req.bundle, req.cgroup_paths, req.userns,
                         req.new_cgroupns)
    rootfs.prepare(ctx)

    # 2. prestart and createRuntime hooks, run by the runtime in its own namespaces.
    ch.send(channel.HOOKS)
    state = ch.expect(channel.HOOKS_DONE)["state"].encode()

    # 3. createContainer hooks: in the container's namespaces, before pivot_root.
    hooks.run("createContainer", req.hooks.get("createContainer", []), state)

    _preload(proc, req)

    # 4. pivot_root into the rootfs.
    rootfs.pivot(req.rootfs, req.no_pivot)

    # 5. The console, when process.terminal asks for one.
    if proc.terminal:
        _setup_console(req.console_fd, proc)

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

    # 7. Process attributes that need privilege: rlimits, oom_score_adj, LSM labels, stdio owner.
    _set_rlimits(proc)
    if proc.oom_score_adj is not None:
        _write_proc("/proc/self/oom_score_adj", str(proc.oom_score_adj))
    _apply_lsm(proc, req.lsms)
    _fix_stdio(proc.user.uid, proc.user.gid)

    # 8. The user, capabilities, umask, cwd and no_new_privs.
    _set_user(proc)
    umask = proc.user.umask
    os.umask(0o022 if umask is None else umask)
    try:
        os.chdir(proc.cwd)
    except OSError as exc:
        raise SysError(f"chdir to cwd ({proc.cwd!r}) set in config.json failed",
                       exc.errno or 0) from None
    if proc.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)

    # 9. The executable must exist now, so that "not found" is a create error.
    env = _environment(proc, req.extra_env)
    path = find_executable(proc.args[0], env)

    # 10. Ready: the runtime records the container and returns; we wait for start.
    ch.send(channel.READY)
    ch.expect(channel.COMMITTED)
    ch.close()
    fifo = _wait_for_start(req.fifo_fd)

    # 11. startContainer hooks, inside the container; their result goes to ``start``; exec.
    state = state.replace(b'"status": "creating"', b'"status": "created"')
    try:
        hooks.run("startContainer", req.hooks.get("startContainer", []), state)
    except OcirtError as exc:
        os.write(fifo, b"1" + exc.message.encode())
        os._exit(1)
    os.write(fifo, b"0")
    os.close(fifo)
    _exec(path, proc.args, env, req.keep_fds)


def _preload(proc: Process, req: InitRequest) -> None:
    """Import now what later steps load lazily; after pivot_root it could not be found."""
    if proc.capabilities is not None:
        import prctl  # noqa: F401
    if proc.terminal:
        import socket  # noqa: F401

        from ..linux import mounts  # noqa: F401
    if req.hooks.get("startContainer"):
        import subprocess  # noqa: F401


def _call(fn, *args, what: str) -> None:  # type: ignore[no-untyped-def]
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


def _setup_console(console_fd: int, proc: Process) -> None:
    from ..linux.mounts import make_in_root

    slave, slave_path = console.create(console_fd, proc.console_size)
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        target = make_in_root(root, "/dev/console", directory=False)
        try:
            sc.mount(slave_path, f"/proc/self/fd/{target}", None, sc.MS_BIND)
        finally:
            os.close(target)
    except OSError as exc:
        raise SysError("bind mount /dev/console", exc.errno or 0) from None
    finally:
        os.close(root)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    if slave > 2:
        os.close(slave)


def _write_proc(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise SysError(f"write {path}", exc.errno or 0) from None


def _write_sysctl(key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    if ".." in key.split(".") or "/" in key:
        raise ConfigError(f"sysctl {key!r} is not a valid key")
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise SysError(f"write sysctl key {key}", exc.errno or 0) from None


def _set_rlimits(proc: Process) -> None:
    if not proc.rlimits:
        return
    infinity = (1 << 64) - 1
    for rl in proc.rlimits:
        which = getattr(resource, rl.type, None)
        if which is None:
            raise ConfigError(f"unknown rlimit type {rl.type!r}")
        soft = resource.RLIM_INFINITY if rl.soft == infinity else rl.soft
        hard = resource.RLIM_INFINITY if rl.hard == infinity else rl.hard
        try:
            resource.setrlimit(which, (soft, hard))
        except (OSError, ValueError) as exc:
            err = getattr(exc, "errno", None) or 1
            raise SysError(f"error setting rlimit {rl.type} (soft {rl.soft}, hard {rl.hard})",
                           err) from None


def _apply_lsm(proc: Process, lsms: frozenset[str]) -> None:
    if proc.apparmor_profile:
        if "apparmor" not in lsms:
            raise ConfigError(f"apparmor profile {proc.apparmor_profile!r} is set but AppArmor "
                              "is not enabled on this host")
        attr = "/proc/self/attr/apparmor/exec"
        if not os.path.exists(attr):
            attr = "/proc/self/attr/exec"
        _write_proc(attr, f"exec {proc.apparmor_profile}")
    if proc.selinux_label:
        if "selinux" not in lsms:
            raise ConfigError(f"selinux label {proc.selinux_label!r} is set but SELinux is not "
                              "enabled on this host")
        _write_proc("/proc/self/attr/exec", proc.selinux_label)


def active_lsms() -> frozenset[str]:
    """The host's active LSMs; read by the runtime, since pivot_root hides securityfs."""
    try:
        with open("/sys/kernel/security/lsm") as f:
            return frozenset(f.read().strip().split(","))
    except OSError:
        return frozenset()


def _fix_stdio(uid: int, gid: int) -> None:
    """Give fds 0-2 to the container's user, as runc does, unless they are /dev/null."""
    if uid == 0 and gid == 0:
        return
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
            continue
        if st.st_uid == uid and st.st_gid == gid:
            continue
        try:
            os.fchown(fd, uid, gid)
        except OSError as exc:
            if exc.errno not in (1, 30, 22):  # EPERM, EROFS, EINVAL
                raise SysError(f"fchown fd {fd}", exc.errno or 0) from None


def _set_user(proc: Process) -> None:
    caps = proc.capabilities
    user = proc.user
    if caps is not None:
        capabilities.drop_bounding(caps)
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)
    try:
        if _setgroups_allowed():
            os.setgroups(user.additional_gids)
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)
    except OSError as exc:
        raise SysError(f"set user {user.uid}:{user.gid}", exc.errno or 0) from None
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)
    if caps is not None:
        try:
            capabilities.apply(caps)
        except OSError as exc:
            raise SysError("set capabilities", exc.errno or 0) from None


def _setgroups_allowed() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() != "deny"
    except OSError:
        return True


def _environment(proc: Process, extra: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in [*proc.env, *extra]:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    if "HOME" not in env:
        env["HOME"] = _home_of(proc.user.uid)
    return env


def _home_of(uid: int) -> str:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def find_executable(name: str, env: dict[str, str]) -> str:
    """Resolve args[0] like Go's exec.LookPath, with the same error wording."""
    def executable(path: str) -> OSError | None:
        try:
            st = os.stat(path)
        except OSError as exc:
            return exc
        if stat.S_ISDIR(st.st_mode) or not os.access(path, os.X_OK):
            return PermissionError(13, "permission denied")
        return None

    if "/" in name:
        err = executable(name)
        if err is None:
            return name
        if isinstance(err, PermissionError):
            raise ExecError(f'exec: "{name}": permission denied')
        raise ExecError(f'exec: "{name}": stat {name}: {strerror(err.errno or 2)}')
    for directory in env.get("PATH", "").split(":"):
        candidate = os.path.join(directory or ".", name)
        if executable(candidate) is None:
            return candidate
    raise ExecError(f'exec: "{name}": executable file not found in $PATH')


def _wait_for_start(fifo_fd: int) -> int:
    """Block until ``start`` opens exec.fifo; return the fifo open for writing our result."""
    def die(signum: int, _frame: object) -> None:
        os._exit(128 + signum)

    for sig in _FATAL_WHILE_WAITING:
        signal.signal(sig, die)
    try:
        fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise SysError("open exec fifo", exc.errno or 0) from None
    os.close(fifo_fd)
    for sig in range(1, signal.NSIG):
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    return fd


def _exec(path: str, args: list[str], env: dict[str, str], keep_fds: int) -> NoReturn:
    sc.close_range(keep_fds)
    try:
        os.execve(path, args, env)
    except OSError as exc:
        os.write(2, f"ocirt: exec {path}: {strerror(exc.errno or 0)}\n".encode())
    os._exit(255)

