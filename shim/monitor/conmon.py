"""conmon as each container's monitor.

conmon runs the runtime's ``create`` (so that it is the init's parent and, being a subreaper,
its reaper), holds the container's stdio, writes the log (``k8s-file``), serves the attach
socket, writes the exit file ``<exit dir>/<id>`` holding the exit status, and then runs the
exit command (``ocish container cleanup``). Its first process exits at once (double fork);
the result of ``create`` comes back on the sync pipe (``_OCI_SYNCPIPE``, conmon API 1):
``{"data": PID}`` or ``{"data": -1, "message": "..."}``.
"""

from __future__ import annotations

import os
import subprocess

from ..errors import OcishError

TYPE_CHECKING = False  # not typing's
if TYPE_CHECKING:
    from collections.abc import Callable

CONMON = "/usr/bin/conmon"


class Paths:
    """Where the monitor of one container keeps its files (all inside the container's dir)."""

    def __init__(self, ctr_dir: str, cid: str) -> None:
        self.bundle = os.path.join(ctr_dir, "bundle")
        self.log = os.path.join(ctr_dir, "ctr.log")
        self.exit_dir = os.path.join(ctr_dir, "exits")
        self.exit_file = os.path.join(self.exit_dir, cid)
        self.pidfile = os.path.join(ctr_dir, "pidfile")
        self.conmon_pidfile = os.path.join(ctr_dir, "conmon.pid")
        self.oci_log = os.path.join(ctr_dir, "oci-log")
        self.sockets = os.path.join(ctr_dir, "sockets")
        # conmon binds the socket in the bundle dir (through /proc/self/fd, so the length of
        # the path does not matter) and links <socket dir>/<id> to the bundle
        self.attach = os.path.join(self.bundle, "attach")


def spawn(cid: str, name: str, runtime: str, runtime_root: str, paths: Paths,
          exit_command: list[str], started: Callable[[int], None], log_driver: str = "k8s-file",
          log_size_max: int | None = None, terminal: bool = False, stdin: bool = False,
          leave_stdin_open: bool = False) -> int:
    """Start conmon for the container *cid* and wait for the runtime's ``create``; returns
    the container's init pid. *started* gets the monitor's pid as soon as it is known, before
    the runtime's create is done (so that a caller killed meanwhile has recorded it). On
    failure conmon has exited and the runtime has cleaned up; the error carries the runtime's
    message. *log_driver* 'none' writes no log; any other is conmon's k8s-file, at most
    *log_size_max* bytes (conmon truncates it when full). *terminal*: the container's stdio
    is a pty (conmon's console socket; stdin goes to it whenever an attached client writes);
    else *stdin*: a pipe fed from the attach socket, closed when a client that wrote leaves,
    unless *leave_stdin_open* (podman's choice: -i is only for the pipe, a terminal never has
    its stdin closed)."""
    if not os.access(CONMON, os.X_OK):
        raise OcishError(f"{CONMON} not found: install Debian's conmon package")
    for d in (paths.exit_dir, paths.sockets):
        os.makedirs(d, mode=0o700, exist_ok=True)
    cmd = [CONMON, "--api-version", "1", "-c", cid, "-u", cid, "-n", name, "-r", runtime,
           "-b", paths.bundle, "-p", paths.pidfile, "--exit-dir", paths.exit_dir,
           "--socket-dir-path", paths.sockets, "-l", "none:" if log_driver == "none" else f"k8s-file:{paths.log}",
           "--log-level", "error",
           "--conmon-pidfile", paths.conmon_pidfile,
           "--runtime-arg", "--root", "--runtime-arg", runtime_root,
           "--runtime-arg", "--log-format=json", "--runtime-arg", "--log",
           "--runtime-arg", paths.oci_log, "--exit-command", exit_command[0]]
    if log_size_max:
        cmd += ["--log-size-max", str(log_size_max)]
    for arg in exit_command[1:]:
        cmd += ["--exit-command-arg", arg]
    if terminal:
        cmd.append("-t")
    elif stdin:
        cmd += ["-i"] + (["--leave-stdin-open"] if leave_stdin_open else [])
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "_OCI_SYNCPIPE", "_OCI_STARTPIPE", "LISTEN_FDS",
                        "LISTEN_PID")}
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    env["_OCI_SYNCPIPE"] = str(wfd)
    try:
        try:
            proc = subprocess.Popen(cmd, env=env, pass_fds=(wfd,), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    start_new_session=True)
        finally:
            os.close(wfd)
        _, err = proc.communicate(timeout=60)  # the first process exits after forking
        if proc.returncode != 0:
            raise OcishError(f"conmon: {err.decode(errors='replace').strip() or 'failed'}")
        mpid = monitor_pid(paths)
        if mpid:
            started(mpid)
        return _read_sync(rfd)
    finally:
        os.close(rfd)


def _read_sync(fd: int) -> int:
    """The first message on the sync pipe: the init's pid, or the runtime's error."""
    import json

    buf = b""
    while b"\n" not in buf:
        chunk = os.read(fd, 4096)  # conmon writes it once create is done, or closes the pipe
        if not chunk:
            break
        buf += chunk
    if not buf.strip():
        raise OcishError("conmon exited without reporting the container's creation")
    try:
        msg = json.loads(buf.split(b"\n", 1)[0])
        pid = int(msg["data"])
    except (ValueError, KeyError, TypeError):
        raise OcishError(f"conmon: unexpected message {buf[:200]!r}") from None
    if pid <= 0:
        raise CreateError(str(msg.get("message") or "the runtime failed to create the container"))
    return pid


class CreateError(OcishError):
    """The runtime's ``create`` failed; the message is the runtime's."""


def read_exit_file(paths: Paths) -> int | None:
    """The exit status conmon recorded, or None if there is none (yet)."""
    try:
        with open(paths.exit_file) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def pid_start(pid: int) -> str | None:
    """The start time of a live (non-zombie) process, from /proc/PID/stat; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def monitor_pid(paths: Paths) -> int | None:
    """The pid conmon wrote to its pid file."""
    try:
        with open(paths.conmon_pidfile) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def find(cid: str) -> int | None:
    """The pid of a live conmon for the container *cid* (by its command line), for one whose
    spawner died before it could record it."""
    want = ["-c", cid]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv and argv[0] == CONMON and any(argv[i:i + 2] == want for i in range(len(argv))):
            if pid_start(int(entry)) is not None:
                return int(entry)
    return None


def attach(paths: Paths) -> object:
    """A connection to the attach socket (SOCK_SEQPACKET; each packet is one byte naming the
    stream, 2 stdout or 3 stderr, then the data), reached through an O_PATH fd of the bundle
    dir so that a long path is no problem."""
    import socket

    dfd = os.open(paths.bundle, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            s.connect(f"/proc/self/fd/{dfd}/attach")
        except OSError as exc:
            s.close()
            raise OcishError(f"attach: {exc.strerror}") from None
        return s
    finally:
        os.close(dfd)


def resize(paths: Paths, rows: int, cols: int) -> None:
    """Set the container's terminal size through conmon's ``winsz`` fifo in the bundle (what
    podman writes); nothing if no conmon reads it."""
    try:
        fd = os.open(os.path.join(paths.bundle, "winsz"), os.O_WRONLY | os.O_NONBLOCK |
                     os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, f"{rows} {cols}\n".encode())
    except OSError:
        pass
    finally:
        os.close(fd)
