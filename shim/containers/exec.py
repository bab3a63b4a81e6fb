"""``exec``: a new process in a running container, through the runtime's ``exec``.

The runtime is run directly (not through ``conmon --exec``) with ``--detach --pid-file``,
ocish being a child subreaper: the runtime starts the process and returns, the process is
re-parented to ocish, which relays its stdio and reaps it for its exit status. Why not
conmon: an exec session lives only as long as the ``ocish exec`` that asked for it, so
nothing needs a monitor, and ocish keeps the runtime's error apart from the process's
output: the process's stdio are pipes (never the user's own terminal or files, so nothing of
the host's leaks in), and on a failed start what came on them is the runtime's message,
reported as one line from its ``--log``. With ``-t`` the runtime sends the pty master to a
console socket of ocish's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Any

from ..errors import OcishError
from ..runtime.driver import error_text, exit_status_of_error
from ..storage.root import Storage
from . import lifecycle, spec
from .records import Container

# every capability up to CAP_CHECKPOINT_RESTORE (40); cut at the kernel's cap_last_cap
ALL_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
            "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
            "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
            "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
            "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN",
            "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
            "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
            "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
            "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]


def all_caps() -> list[str]:
    """``--privileged``: every capability ocish itself may pass on (its bounding set: a host
    can withhold some, as this one withholds CAP_SYS_RESOURCE)."""
    bnd = (1 << len(ALL_CAPS)) - 1
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    bnd = int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return [c for i, c in enumerate(ALL_CAPS) if bnd >> i & 1]


def resolve_user(st: Storage, ctr: Container, user_spec: str) -> dict[str, Any]:
    """``-u``: the process.user for *user_spec*, names looked up in the container's own
    /etc/passwd and /etc/group (read inside its root, as at create)."""
    from . import users

    rootfs = os.path.join(lifecycle.paths(st, ctr).bundle, "rootfs")
    user = users.resolve(rootfs, user_spec, [])
    user.pop("home", None)
    return user


def read_env_file(path: str) -> list[str]:
    """Docker's --env-file: NAME=VALUE or NAME lines; blank lines and # comments skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise OcishError(f"--env-file {path}: {exc.strerror}") from None
    return [ln.lstrip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def process_spec(st: Storage, ctr: Container, args: list[str], opts: dict[str, Any]
                 ) -> dict[str, Any]:
    """The container's own process (config.json) with the exec's args, env, user, cwd,
    terminal and capabilities."""
    with open(os.path.join(lifecycle.paths(st, ctr).bundle, "config.json")) as f:
        proc: dict[str, Any] = json.load(f)["process"]
    env = {}
    for item in proc.get("env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    spec.apply_env(env, opts.get("env") or [])
    proc.update(args=args, env=[f"{k}={v}" for k, v in env.items()],
                terminal=bool(opts.get("tty")))
    if opts.get("user"):
        proc["user"] = resolve_user(st, ctr, opts["user"])
    if opts.get("workdir"):
        if not opts["workdir"].startswith("/"):
            raise OcishError(f"--workdir {opts['workdir']!r}: the working directory must be "
                             "absolute")
        proc["cwd"] = opts["workdir"]
    if opts.get("privileged"):
        caps = all_caps()
        proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
    if opts.get("console_size"):
        rows, cols = opts["console_size"]
        proc["consoleSize"] = {"height": rows, "width": cols}
    return proc


def _subreaper() -> None:
    """Become a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so that the detached exec's
    process is re-parented to this ocish, which reaps it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:
        raise OcishError(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")


class Session:
    """One exec'd process: its pid and the host ends of its stdio (a pty master, or pipes)."""

    def __init__(self, pid: int, master: int | None, stdin: int | None, stdout: int | None,
                 stderr: int | None) -> None:
        self.pid, self.master = pid, master
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr

    def wait(self) -> int:
        """The process's exit status (128+N for a signal), as Docker reports it."""
        while True:
            try:
                _, status = os.waitpid(self.pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:
                return 137  # not ours to reap (should not happen): unknown, killed
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else \
                128 + os.WTERMSIG(status)


def start(st: Storage, ctr: Container, args: list[str], opts: dict[str, Any]) -> Session | None:
    """Start the process *args* in the running container *ctr*; None with ``detach`` (the
    process then belongs to nobody here and runs on)."""
    from .state import refresh

    ctr = refresh(st, ctr)
    if ctr.status != "running":
        raise OcishError(f"container {ctr.id} is not running")
    if not args:
        raise OcishError("exec: no command specified", status=125)
    proc = process_spec(st, ctr, args, opts)
    rt = lifecycle.runtime_of(st, ctr)
    tmp = tempfile.mkdtemp(prefix="ocish-exec-")  # 0700, ours: short paths for the socket
    ours: list[int] = []  # the container-side ends, closed once the runtime has them
    host: list[int] = []
    sock = None
    try:
        pfile, pidfile, log = (os.path.join(tmp, n) for n in ("process.json", "pid", "log"))
        fd = os.open(pfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(proc, f)
        cmd = [rt.path, "--root", rt.root, "--log", log, "--log-format", "json", "exec",
               "--process", pfile, "--detach", "--pid-file", pidfile]
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        ours.append(devnull)
        stdio = [devnull, devnull, devnull]
        pipes: list[int | None] = [None, None, None]
        if opts.get("tty"):
            import socket

            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            sock.bind(os.path.join(tmp, "console.sock"))
            sock.listen(1)
            cmd += ["--console-socket", os.path.join(tmp, "console.sock")]
        elif not opts.get("detach"):
            for i in range(3):
                if i == 0 and not opts.get("interactive"):
                    continue
                r, w = os.pipe2(os.O_CLOEXEC)
                inner, outer = (r, w) if i == 0 else (w, r)
                ours.append(inner)
                host.append(outer)
                stdio[i], pipes[i] = inner, outer
        if not opts.get("detach"):
            _subreaper()
        res = subprocess.run([*cmd, ctr.id], stdin=stdio[0], stdout=stdio[1],
                             stderr=stdio[2] if stdio[2] != devnull else subprocess.PIPE,
                             timeout=120)
        for fd in ours:
            os.close(fd)
        ours.clear()
        if res.returncode != 0 or not os.path.exists(pidfile):
            msg = _runtime_error(log, res.stderr, pipes[2])
            raise OcishError(f"OCI runtime exec failed: {msg}",
                             status=exit_status_of_error(msg))
        with open(pidfile) as f:
            pid = int(f.read().strip())
        if opts.get("detach"):
            return None
        master = None
        if sock is not None:
            conn, _ = sock.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
            if not fds:
                raise OcishError("exec: the runtime did not send the terminal")
            master = fds[0]
            os.set_inheritable(master, False)
            host.append(master)
        host.clear()
        return Session(pid, master, pipes[0], pipes[1], pipes[2])
    except subprocess.TimeoutExpired:
        raise OcishError("OCI runtime exec: timed out") from None
    finally:
        for fd in ours + host:
            os.close(fd)
        if sock is not None:
            sock.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _runtime_error(log: str, stderr: bytes | None, pipe: int | None) -> str:
    """The runtime's error: the last error of its JSON log, else the last line it wrote."""
    try:
        with open(log) as f:
            for line in reversed(f.read().splitlines()):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
                    return str(entry.get("msg", "")).strip() or "failed"
    except OSError:
        pass
    text = stderr or b""
    if pipe is not None:
        os.set_blocking(pipe, False)
        try:
            text += os.read(pipe, 65536)
        except OSError:
            pass
    return error_text(text.decode(errors="replace"))
