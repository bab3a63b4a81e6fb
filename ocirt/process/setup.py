"""Setting up a process that is about to execve inside the container: shared by the container's
init and by ``exec``. Every function runs in the forked child, after it entered the container;
what they import is imported here, since the host's Python library is out of reach after
pivot_root or setns into the container's mount namespace."""

from __future__ import annotations

import _signal as signal  # the C module: signal.py builds enums, milliseconds per command
import errno
import fcntl
import os
import resource
import stat
import termios

from .. import capabilities, console, seccomp
from ..errors import ConfigError, ExecError, SysError, strerror
from ..linux import syscalls as sc
from ..linux.mounts import make_in_root
from . import sealed_exec

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

    from ..spec import Process


def setup_console(console_fd: int, proc: Process, dev_console: bool) -> None:
    """A pty from the container's devpts as the controlling terminal and fds 0-2; its master
    goes to the caller. ``dev_console``: also bind the slave at /dev/console (the init does)."""
    slave, slave_path = console.create(console_fd, proc.console_size)
    if dev_console:
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            target = _dev_console(root)
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


def _dev_console(root: int) -> int:
    """An O_PATH fd of /dev/console, made if missing, to bind the pty on. A symlink there, or
    anything but a regular file or a character device, is refused: the bind must not land on
    what it points to, e.g. a file in /proc (CVE-2025-52565)."""
    dev = make_in_root(root, "/dev")
    try:
        try:
            os.close(os.open("console", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o644, dir_fd=dev))
        except FileExistsError:
            pass
        fd = sc.openat2(dev, "console", os.O_PATH, sc.RESOLVE_BENEATH | sc.RESOLVE_NO_SYMLINKS)
    finally:
        os.close(dev)
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file or a character device")
    return fd


def write_proc(path: str, value: str, what: str = "") -> None:
    """Write to ``path`` (under /proc) on the real procfs: /proc must be a procfs mount and
    the path may not leave it (no mount, magic link or symlink out), so that a container
    cannot redirect the write to another file (CVE-2025-52881)."""
    try:
        proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if sc.fstatfs_type(proc) != sc.PROC_SUPER_MAGIC:
                raise OSError(errno.EXDEV, "/proc is not a procfs")
            fd = sc.openat2(proc, path.removeprefix("/proc/"), os.O_WRONLY,
                            sc.RESOLVE_BENEATH | sc.RESOLVE_NO_XDEV | sc.RESOLVE_NO_MAGICLINKS)
        finally:
            os.close(proc)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise SysError(what or f"write {path}", exc.errno or 0) from None


def apply_privileged(proc: Process, lsms: frozenset[str]) -> None:
    """What needs privileges the process is about to lose: rlimits, scheduling, LSM labels,
    the owner of its stdio."""
    set_rlimits(proc)
    set_scheduling(proc)
    apply_lsm(proc, lsms)
    fix_stdio(proc.user.uid)


def become_user(proc: Process) -> None:
    """cwd, the user and capabilities, umask, no_new_privs.

    cwd is entered before the switch, so that the process can start in a directory only root
    could enter; where root may not (a root-squashed network filesystem, or a directory the
    container's user owns with root's access taken away), again after it, as runc does."""
    retry_cwd = not _chdir(proc.cwd, retry_on_denied=True)
    set_user(proc)
    os.umask(0o022 if proc.user.umask is None else proc.user.umask)
    if retry_cwd:
        _chdir(proc.cwd, retry_on_denied=False)
    if proc.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)


def _chdir(cwd: str, retry_on_denied: bool) -> bool:
    """chdir; False if denied and ``retry_on_denied``."""
    try:
        os.chdir(cwd)
    except OSError as exc:
        if retry_on_denied and exc.errno in (errno.EACCES, errno.EPERM):
            return False
        raise SysError(f"chdir to cwd ({cwd!r}) set in config.json failed",
                       exc.errno or 0) from None
    return True


def find_program(proc: Process, extra_env: list[str]) -> tuple[str, dict[str, str]]:
    """(path of args[0], environment): the lookup uses the process's own PATH."""
    env = environment(proc, extra_env)
    return find_executable(proc.args[0], env), env


def set_rlimits(proc: Process) -> None:
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


def apply_lsm(proc: Process, lsms: frozenset[str]) -> None:
    if proc.apparmor_profile:
        if "apparmor" not in lsms:
            raise ConfigError(f"apparmor profile {proc.apparmor_profile!r} is set but AppArmor "
                              "is not enabled on this host")
        attr = "/proc/self/attr/apparmor/exec"
        if not os.path.exists(attr):
            attr = "/proc/self/attr/exec"
        write_proc(attr, f"exec {proc.apparmor_profile}")
    if proc.selinux_label:
        if "selinux" not in lsms:
            raise ConfigError(f"selinux label {proc.selinux_label!r} is set but SELinux is not "
                              "enabled on this host")
        write_proc("/proc/self/attr/exec", proc.selinux_label)


def fix_stdio(uid: int) -> None:
    """Give fds 0-2 to the container's user, as runc does, unless they are /dev/null. Only the
    owner: the group stays (a pty keeps the tty group devpts gave it, gid=5)."""
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
            continue
        if st.st_uid == uid:
            continue
        try:
            os.fchown(fd, uid, -1)
        except OSError as exc:
            if exc.errno not in (1, 30, 22):  # EPERM, EROFS, EINVAL
                raise SysError(f"fchown fd {fd}", exc.errno or 0) from None


def set_user(proc: Process) -> None:
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
    # A uid change resets "dumpable" to fs.suid_dumpable: stay out of the container's reach
    # (/proc/<pid>/exe is the host's Python) until execve.
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
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


def environment(proc: Process, extra: list[str]) -> dict[str, str]:
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


def mark_fds_for_exec(keep_fds: int) -> None:
    """Keep stdio and the preserved fds open across execve, close every other fd on it.

    Done before the seccomp filter is loaded: the filter may deny close_range or fcntl, and
    after it nothing but the final execve may depend on what the profile allows. An fd opened
    later is close-on-exec from the start."""
    for fd in range(keep_fds):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    sc.close_range(keep_fds, 0xFFFFFFFF, sc.CLOSE_RANGE_CLOEXEC)


def exec_process(path: str, args: list[str], env: dict[str, str], stub_fd: int,
                 report: Callable[[str], None] | None = None) -> NoReturn:
    """execve through the sealed stub ``stub_fd`` (see sealed_exec.py), with the fds
    :func:`mark_fds_for_exec` left. If that fails, ``report`` the error (or print it) and exit
    255."""
    try:
        sealed_exec.execve(stub_fd, path, args, env)
    except OSError as exc:
        message = f"exec {path}: {strerror(exc.errno or 0)}"
        if report is not None:
            report(message)
        else:
            os.write(2, f"ocirt: {message}\n".encode())
    os._exit(255)


def load_seccomp(filt: seccomp.Filter, state: dict[str, Any], pid: int) -> None:
    seccomp.install(filt, state, pid)


def reset_signals() -> None:
    """Default dispositions and an empty mask, as a new program expects (Python ignores SIGPIPE
    and SIGXFSZ, a caller may ignore anything, and execve keeps ignored signals ignored)."""
    for sig in range(1, signal.NSIG):
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            sc.default_signal(sig)  # 32 and 33, which glibc keeps for itself
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


_IO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
             "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
_SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
                "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
                "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
                "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
_PERSONALITY = {"LINUX": 0x0000, "LINUX32": 0x0008}


def set_scheduling(proc: Process) -> None:
    """process.ioPriority and process.scheduler (before the privileges go)."""
    if proc.io_priority is not None:
        klass, priority = proc.io_priority
        if sc.ioprio_set(_IO_CLASSES[klass] << 13 | priority) < 0:
            raise SysError("set io priority", sc.last_errno())
    s = proc.scheduler
    if s is not None:
        flags = 0
        for name in s.get("flags") or []:
            if name not in _SCHED_FLAGS:
                raise ConfigError(f"process.scheduler.flags: unknown flag {name!r}")
            flags |= _SCHED_FLAGS[name]
        if sc.sched_setattr(_POLICIES[s["policy"]], flags, s.get("nice", 0),
                            s.get("priority", 0), s.get("runtime", 0), s.get("deadline", 0),
                            s.get("period", 0)) < 0:
            raise SysError(f"set scheduler policy {s['policy']}", sc.last_errno())


def set_personality(personality: dict[str, Any] | None) -> None:
    if personality is not None and sc.personality(_PERSONALITY[personality["domain"]]) < 0:
        raise SysError("set personality", sc.last_errno())


def set_cpu_affinity(proc: Process, which: str) -> None:
    """process.execCPUAffinity: ``initial`` on entering the container, ``final`` before execve."""
    cpus = (proc.exec_cpu_affinity or {}).get(which)
    if not cpus:
        return
    wanted: set[int] = set()
    try:
        for part in cpus.split(","):
            low, _, high = part.strip().partition("-")
            wanted.update(range(int(low), int(high or low) + 1))
        os.sched_setaffinity(0, wanted)
    except ValueError:
        raise ConfigError(f"process.execCPUAffinity.{which}: invalid cpu list {cpus!r}") from None
    except OSError as exc:
        raise SysError(f"set cpu affinity {cpus}", exc.errno or 0) from None
