"""Interactive commands: ``exec`` (and ``ocish container exec``)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import OcishError
from . import groups

TYPE_CHECKING = False  # not typing's: every command imports this module
if TYPE_CHECKING:
    from typing import Any


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


def register(sub: Any) -> None:
    """Add the interactive commands at top level and under ``ocish container``."""
    _exec_parser(sub)
    _exec_parser(groups.group(sub, "container", "manage containers"))
