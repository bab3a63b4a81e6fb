"""Interactive commands: ``exec`` and ``attach`` (also under ``ocish container``), and the
attached side of ``run`` and ``start -a``."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import OcishError
from . import groups

TYPE_CHECKING = False  # not typing's: every command imports this module
if TYPE_CHECKING:
    from typing import Any

    from ..containers.records import Container
    from ..storage.root import Storage


def cmd_exec(args: argparse.Namespace) -> int:
    """Run a command in a running container; exit with its status."""
    from ..containers import exec as execs
    from ..containers import interact, records
    from .containercmds import _storage

    stdin = sys.stdin.fileno() if args.interactive else None
    if args.tty and stdin is not None and not os.isatty(stdin):
        raise OcishError("the input device is not a TTY")
    keys = interact.detach_keys(args.detach_keys)
    env = list(args.env or [])
    for path in args.env_file or []:
        env = execs.read_env_file(path) + env
    st = _storage(args)
    ctr = records.find(st, args.container)
    tty_fd = stdin if stdin is not None else sys.stdout.fileno()
    opts = {"tty": args.tty, "interactive": args.interactive, "detach": args.detach,
            "env": env, "user": args.user, "workdir": args.workdir,
            "privileged": args.privileged,
            "console_size": interact.terminal_size(tty_fd) if args.tty else None}
    session = execs.start(st, ctr, args.cmd, opts)
    if session is None:
        return 0
    out = sys.stdout.buffer
    try:
        if session.master is not None:
            master = session.master

            def resize(rows: int, cols: int) -> None:
                import fcntl
                import struct
                import termios

                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

            interact.follow_window(tty_fd, resize)
            with interact.raw_terminal(stdin):
                if interact.pump({master: interact.copier(master, out)}, stdin,
                                 lambda data: _write_all(master, data), None, keys):
                    return 0  # detached: the process runs on
        else:
            outputs = {fd: interact.copier(fd, stream) for fd, stream in
                       ((session.stdout, out), (session.stderr, sys.stderr.buffer))
                       if fd is not None}
            pin = session.stdin

            def close_stdin() -> None:
                nonlocal pin
                if pin is not None:
                    os.close(pin)
                    pin = None

            interact.pump(outputs, stdin, lambda data: _write_all(pin, data)
                          if pin is not None else None, close_stdin, b"")
            close_stdin()
        return session.wait()
    finally:
        for fd in (session.master, session.stdout, session.stderr, session.stdin):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


def check_interactive(args: argparse.Namespace, stdin: bool, tty: bool) -> bytes:
    """Refuse -it without a terminal to read (Docker's error); the detach keys."""
    from ..containers import interact

    if stdin and tty and not os.isatty(sys.stdin.fileno()):
        raise OcishError("the input device is not a TTY")
    return interact.detach_keys(args.detach_keys)


def attach_container(st: Storage, ctr: Container, sock: Any, *, stdin: bool, keys: bytes,
                     sig_proxy: bool) -> bool:
    """Relay between the user and the container's attach socket *sock* (closed here) until
    the container's output ends; True if the user detached. ocish's stdin goes to the
    container if it was created with -i and *stdin*; with -t the user's terminal is in raw
    mode meanwhile and the window size follows it."""
    import socket

    from ..containers import interact, lifecycle
    from ..monitor import conmon
    from .containercmds import _proxy_signals

    tty = bool(ctr.options.get("tty"))
    stdin_fd = sys.stdin.fileno() if stdin and ctr.options.get("interactive") else None
    if sig_proxy:
        _proxy_signals(st, ctr)
    if tty:
        p = lifecycle.paths(st, ctr)
        interact.follow_window(stdin_fd if stdin_fd is not None else sys.stdout.fileno(),
                               lambda rows, cols: conmon.resize(p, rows, cols))

    def send(data: bytes) -> None:
        for i in range(0, len(data), 8192):  # conmon reads a packet into a 32 KiB buffer
            sock.send(data[i:i + 8192])

    with sock, interact.raw_terminal(stdin_fd if tty else None):
        return interact.pump({sock.fileno(): interact.framed(sock)}, stdin_fd, send,
                             lambda: sock.shutdown(socket.SHUT_WR), keys)


def start_attached(args: argparse.Namespace, st: Storage) -> int:
    """``start -a``/``-ai``: start one container attached; its exit status."""
    from ..containers import lifecycle, records
    from ..monitor import conmon
    from .containercmds import _exit_command

    if len(args.containers) > 1:
        raise OcishError("you cannot start and attach multiple containers at once")
    ctr = records.find(st, args.containers[0])
    keys = check_interactive(args, bool(args.interactive and ctr.options.get("interactive")),
                             bool(ctr.options.get("tty")))
    sock = None
    if ctr.status == "created":  # its monitor's socket is there: attached before it runs
        sock = conmon.attach(lifecycle.paths(st, ctr))
    try:
        ctr = lifecycle.start(st, ctr, _exit_command(st, bool(ctr.options.get("rm"))))
        if sock is None:  # a new monitor: attached as soon as it runs
            sock = conmon.attach(lifecycle.paths(st, ctr))
    except OcishError:
        if sock is not None:
            sock.close()  # type: ignore[attr-defined]
        raise
    if attach_container(st, ctr, sock, stdin=args.interactive, keys=keys, sig_proxy=True):
        return 0
    code = lifecycle.wait(st, ctr.id)
    return 0 if code is None else code


def cmd_attach(args: argparse.Namespace) -> int:
    """Attach to a running container's stdio; its exit status, or Docker's 1 with "read
    escape sequence" when the user detaches."""
    from ..containers import lifecycle, records
    from ..containers.state import refresh
    from ..monitor import conmon
    from .containercmds import _storage

    st = _storage(args)
    ctr = refresh(st, records.find(st, args.container))
    keys = check_interactive(args, bool(not args.no_stdin and ctr.options.get("interactive")),
                             bool(ctr.options.get("tty")))
    if ctr.status != "running":
        raise OcishError("You cannot attach to a stopped container, start it first")
    sock = conmon.attach(lifecycle.paths(st, ctr))
    if attach_container(st, ctr, sock, stdin=not args.no_stdin, keys=keys,
                        sig_proxy=args.sig_proxy):
        sys.stdout.flush()
        raise OcishError("read escape sequence")
    code = lifecycle.wait(st, ctr.id)
    return 0 if code is None else code


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _exec_parser(sub: Any) -> None:
    text = "run a command in a running container"
    p = sub.add_parser("exec", help=text, description=text[0].upper() + text[1:] + ".")
    p.set_defaults(func=cmd_exec)
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    p.add_argument("-d", "--detach", action="store_true", help="run it in the background")
    p.add_argument("-e", "--env", action="append", metavar="NAME[=VALUE]",
                   help="set an environment variable")
    p.add_argument("--env-file", action="append", metavar="FILE",
                   help="read environment variables from a file")
    p.add_argument("-u", "--user", help="uid[:gid] (numeric)")
    p.add_argument("-w", "--workdir", help="the working directory inside the container")
    p.add_argument("--privileged", action="store_true", help="every capability")
    p.add_argument("--detach-keys", default=None,
                   help="the keys that detach (default ctrl-p,ctrl-q; with -it)")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND")


def _attach_parser(sub: Any) -> None:
    from .containercmds import _bool

    text = "attach to a running container's input and output"
    p = sub.add_parser("attach", help=text, description=text[0].upper() + text[1:] + ".")
    p.set_defaults(func=cmd_attach)
    p.add_argument("--detach-keys", default=None,
                   help="the keys that detach (default ctrl-p,ctrl-q)")
    p.add_argument("--no-stdin", action="store_true", help="do not attach stdin")
    p.add_argument("--sig-proxy", type=_bool, nargs="?", const=True, default=True,
                   metavar="BOOL", help="send ocish's signals to the container (default "
                   "true)")
    p.add_argument("container", metavar="CONTAINER")


def register(sub: Any) -> None:
    """Add the interactive commands at top level and under ``ocish container``."""
    csub = groups.group(sub, "container", "manage containers")
    for s in (sub, csub):
        _exec_parser(s)
        _attach_parser(s)
