"""Container commands, with Docker's names, flags and output: run, create, start, stop, kill,
rm, ps, logs, wait, inspect (and the same under ``ocish container``, with ``ls`` for ps, and
``container cleanup``, the monitor's exit command)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import OcishError
from . import groups, regopts

TYPE_CHECKING = False  # not typing's: every command imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any

    from ..containers.records import Container
    from ..storage.root import Storage


def _storage(args: argparse.Namespace) -> Storage:
    from ..storage.root import Storage, default_root

    return Storage(args.root or default_root())


def _exit_command(st: Storage, autoremove: bool) -> list[str]:
    """What the monitor runs when the container exits: this ocish's ``container cleanup``."""
    me = os.path.abspath(sys.argv[0])
    # the launcher (installed or dev) is argv[0]; ``python -m shim`` has the package's
    # __main__.py there, which is no command: that interpreter runs the module again
    argv = [sys.executable, "-m", "shim"] if me.endswith(".py") else [me]
    cmd = [*argv, "--root", st.root, "container", "cleanup"]
    return cmd + (["--rm"] if autoremove else [])


def _image(st: Storage, args: argparse.Namespace) -> str:
    """The ID of the image ``run``/``create`` names, pulled first if it is not here."""
    from ..images import records

    try:
        return records.resolve(st, args.image)
    except OcishError:
        if args.pull == "never":
            raise
    from ..images import platforms, reference
    from ..images.pull import pull

    ref = reference.parse(args.image)
    sys.stderr.write(f"Unable to find image '{args.image}' locally\n")
    client = regopts.client(args, ref.registry, ref.repository)
    pull(st, client, ref, platforms.host(), out=sys.stderr)
    return records.resolve(st, args.image)


def _create(args: argparse.Namespace, st: Storage, detach: bool) -> Container:
    from ..containers import lifecycle
    from ..runtime.driver import resolve
    from .misc import runtime_path

    try:
        image_id = _image(st, args)
        options = {"name": args.name, "hostname": args.hostname, "env": args.env or [],
                   "workdir": args.workdir, "entrypoint": args.entrypoint, "cmd": args.cmd,
                   "user": args.user, "network": args.network, "rm": args.rm,
                   "detach": detach, "cgroup_parent": args.cgroup_parent,
                   "stop_signal": args.stop_signal, "stop_timeout": args.stop_timeout,
                   "security_opt": args.security_opt or []}
        return lifecycle.create(st, image_id, args.image, options,
                                resolve(runtime_path(args)), _exit_command(st, args.rm))
    except OcishError as exc:
        if exc.status == 1:
            exc.status = 125
        raise
    except OSError as exc:  # e.g. a full disk under the container's dir: an engine error
        raise _engine_error("cannot create the container", exc) from None


def _engine_error(what: str, exc: OSError) -> OcishError:
    """An OSError of ocish's own during create/start as Docker's engine error (status 125)."""
    where = f": {exc.filename}" if exc.filename else ""
    return OcishError(f"{what}: {exc.strerror or exc}{where}", 125)


def cmd_create(args: argparse.Namespace) -> int:
    """Create a container (not started)."""
    ctr = _create(args, _storage(args), True)
    sys.stdout.write(ctr.id + "\n")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Create and start a container; in the foreground, relay its output and exit with its
    status."""
    from ..containers import lifecycle
    from ..monitor import conmon

    st = _storage(args)
    ctr = _create(args, st, args.detach)
    sock = None
    try:
        if not args.detach:
            # attached before start, so that not a byte of output is missed
            sock = conmon.attach(lifecycle.paths(st, ctr))
        try:
            lifecycle.start(st, ctr, _exit_command(st, args.rm))
        except OSError as exc:
            raise _engine_error("cannot start the container", exc) from None
    except OcishError as exc:
        if sock is not None:
            sock.close()  # type: ignore[attr-defined]
        if args.rm:
            lifecycle.remove(st, ctr, force=True)
        exc.status = 125 if exc.status == 1 else exc.status
        raise
    if args.detach:
        sys.stdout.write(ctr.id + "\n")
        return 0
    _proxy_signals(st, ctr)
    _relay(sock)
    code = lifecycle.wait(st, ctr.id)
    if args.rm:  # gone when run returns, as Docker's (the exit command then finds nothing)
        lifecycle.cleanup(st, ctr.id, remove=True)
    return 0 if code is None else code


def _proxy_signals(st: Storage, ctr: Container) -> None:
    """Docker's --sig-proxy (on by default): SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2
    sent to a foreground ``run`` go to the container; its exit then ends the ``run``."""
    import signal

    from ..containers import lifecycle

    rt = lifecycle.runtime_of(st, ctr)

    def forward(signum: int, frame: object) -> None:
        rt.kill(ctr.id, str(signum))

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                signal.SIGUSR2):
        signal.signal(sig, forward)


def _relay(sock: Any) -> None:
    """Copy the container's output from the attach socket until the container ends."""
    outs = {2: sys.stdout.buffer, 3: sys.stderr.buffer}
    with sock:
        while True:
            try:
                packet = sock.recv(8193)
            except InterruptedError:
                continue
            except OSError:
                return
            if not packet:
                return
            out = outs.get(packet[0])
            if out is not None:
                out.write(packet[1:])
                out.flush()


def cmd_start(args: argparse.Namespace) -> int:
    """Start containers."""
    from ..containers import lifecycle, records

    st = _storage(args)

    def one(name: str) -> None:
        ctr = records.find(st, name)
        lifecycle.start(st, ctr, _exit_command(st, bool(ctr.options.get("rm"))))

    return _each(args.containers, one)


def _each(names: list[str], action: Any, echo: bool = True) -> int:
    """Do *action* for each container, printing its name as Docker does; 1 if any failed."""
    failed = 0
    for name in names:
        try:
            action(name)
            if echo:
                sys.stdout.write(name + "\n")
        except OcishError as exc:
            sys.stderr.write(f"ocish: {exc}\n")
            failed = 1
    return failed


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop containers: the stop signal, then SIGKILL after -t seconds."""
    from ..containers import lifecycle, records

    st = _storage(args)
    return _each(args.containers, lambda c: lifecycle.stop(st, records.find(st, c), args.time))


def cmd_kill(args: argparse.Namespace) -> int:
    """Send a signal to containers."""
    from ..containers import lifecycle, records

    st = _storage(args)
    sig = args.signal.upper()
    if not sig.isdigit() and not sig.startswith("SIG"):
        sig = "SIG" + sig
    return _each(args.containers, lambda c: lifecycle.kill(st, records.find(st, c), sig))


def cmd_rm(args: argparse.Namespace) -> int:
    """Remove containers."""
    from ..containers import lifecycle, records

    st = _storage(args)
    return _each(args.containers, lambda c: lifecycle.remove(st, records.find(st, c),
                                                             args.force))


def cmd_wait(args: argparse.Namespace) -> int:
    """Wait for containers to exit and print their exit statuses."""
    from ..containers import lifecycle, records

    st = _storage(args)

    def one(name: str) -> None:
        code = lifecycle.wait(st, records.find(st, name).id)
        sys.stdout.write(f"{code}\n")

    return _each(args.containers, one, echo=False)


def _status(ctr: Container) -> str:
    import time

    from .output import human_duration, parse_time

    if ctr.status == "running":
        return "Up " + human_duration(time.time() - (parse_time(ctr.started) or time.time()))
    if ctr.status == "exited":
        ago = human_duration(time.time() - (parse_time(ctr.finished) or time.time()))
        return f"Exited ({ctr.exit_code}) {ago} ago"
    return "Created"


def cmd_ps(args: argparse.Namespace) -> int:
    """List containers (running ones; -a: all)."""
    from ..containers import records
    from ..containers.state import refresh
    from .output import since, table

    st = _storage(args)
    ctrs = [refresh(st, c) for c in records.all_containers(st)]
    if not args.all:
        ctrs = [c for c in ctrs if c.status == "running"]
    ident = (lambda c: c.id) if args.no_trunc else (lambda c: c.id[:12])
    if args.quiet:
        sys.stdout.write("".join(ident(c) + "\n" for c in ctrs))
        return 0
    rows = []
    for c in ctrs:
        command = " ".join(c.options["args"])
        if not args.no_trunc and len(command) > 20:
            command = command[:19] + "…"
        rows.append([ident(c), c.image, f'"{command}"', since(c.created), _status(c), "",
                     c.name])
    table(sys.stdout, ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS",
                       "NAMES"], rows)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """Show a container's output (stdout to stdout, stderr to stderr)."""
    from ..containers import lifecycle, logs, records
    from ..containers.state import refresh

    st = _storage(args)
    ctr = records.find(st, args.container)
    path = lifecycle.paths(st, ctr).log

    def running() -> bool:
        cur = records.get(st, ctr.id)
        return cur is not None and refresh(st, cur).status == "running"

    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return 0
    with f:
        if args.tail not in (None, "all"):
            try:
                n = int(args.tail)
            except ValueError:
                raise OcishError(f"--tail {args.tail!r}: want a number or 'all'") from None
            f.seek(logs.tail(path, n))
        outs = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
        for ts, stream, text in logs.records(f, running if args.follow else None):
            out = outs.get(stream)
            if out is not None:
                out.write((ts.encode() + b" " if args.timestamps and ts else b"") + text)
                out.flush()
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Show containers' details as JSON (images' too, as Docker's ``inspect`` does)."""
    if args.format not in (None, "json"):
        raise OcishError(f"--format {args.format!r}: only 'json' is supported")
    from ..containers import records
    from ..containers.inspect import inspect
    from ..containers.state import refresh
    from ..images import records as images
    from .output import inspect_json

    st = _storage(args)
    finders = []
    if args.type != "image":
        finders.append(lambda name: inspect(st, refresh(st, records.find(st, name))))
    if args.type != "container":
        finders.append(lambda name: images.inspect(st, images.resolve(st, name)))
    return inspect_json(sys.stdout, args.names, finders, "No such object")


def cmd_cleanup(args: argparse.Namespace) -> int:
    """The monitor's exit command: release what the exited container holds (-rm: remove it)."""
    from ..containers import lifecycle

    lifecycle.cleanup(_storage(args), args.container, remove=args.rm)
    return 0


def _run_options(p: Any) -> None:
    p.add_argument("--name", help="the container's name")
    p.add_argument("-e", "--env", action="append", metavar="NAME[=VALUE]",
                   help="set an environment variable")
    p.add_argument("-w", "--workdir", help="the working directory inside the container")
    p.add_argument("--entrypoint", help="override the image's ENTRYPOINT")
    p.add_argument("-u", "--user", help="uid[:gid] (numeric)")
    p.add_argument("-h", "--hostname", help="the container's host name")
    p.add_argument("--network", "--net", default="none",
                   help="'none' (the default: a network namespace with only lo; bridge "
                        "networks are not implemented yet) or 'host'")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--pull", choices=["missing", "never"], default="missing",
                   help="pull the image if it is missing (default) or never")
    p.add_argument("--cgroup-parent", help="the cgroup the container's cgroup goes under "
                   "(default /ocish)")
    p.add_argument("--stop-signal", help="the signal that stops the container (default: "
                   "the image's, else SIGTERM)")
    p.add_argument("--stop-timeout", type=int, help="seconds before stop sends SIGKILL")
    p.add_argument("--security-opt", action="append", metavar="OPT",
                   help="seccomp=unconfined|FILE (default: /usr/share/containers/"
                        "seccomp.json), no-new-privileges")
    regopts.add_options(p)
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND")


def _add(sub: Any, name: str, func: Any, help_text: str, **kw: Any) -> Any:
    p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:]
                       + ".", add_help=kw.pop("add_help", True))
    p.set_defaults(func=func)
    return p


def _register(sub: Any, ls_name: str) -> None:
    p = _add(sub, "run", cmd_run, "create and run a container", add_help=False)
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background and "
                   "print the container's ID")
    _run_options(p)
    p = _add(sub, "create", cmd_create, "create a container", add_help=False)
    p.add_argument("--help", action="help", help="show this help message and exit")
    _run_options(p)
    p = _add(sub, "start", cmd_start, "start containers")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = _add(sub, "stop", cmd_stop, "stop containers")
    p.add_argument("-t", "--time", type=int, default=None,
                   help="seconds to wait before killing (default 10)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = _add(sub, "kill", cmd_kill, "send a signal to containers")
    p.add_argument("-s", "--signal", default="KILL", help="the signal (default KILL)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = _add(sub, "rm", cmd_rm, "remove containers")
    p.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = _add(sub, "wait", cmd_wait, "wait for containers to exit, print their statuses")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = _add(sub, ls_name, cmd_ps, "list containers")
    p.add_argument("-a", "--all", action="store_true", help="all containers, not only running")
    p.add_argument("-q", "--quiet", action="store_true", help="only IDs")
    p.add_argument("--no-trunc", action="store_true", help="full IDs and commands")
    p = _add(sub, "logs", cmd_logs, "show a container's output")
    p.add_argument("-f", "--follow", action="store_true", help="follow until it exits")
    p.add_argument("-n", "--tail", default=None, help="only the last N lines ('all')")
    p.add_argument("-t", "--timestamps", action="store_true", help="show times")
    p.add_argument("container", metavar="CONTAINER")


def register(sub: Any) -> None:
    """Add the container commands at top level and under ``ocish container``."""
    _register(sub, "ps")
    p = _add(sub, "inspect", cmd_inspect, "show containers' or images' details")
    p.add_argument("--type", choices=["container", "image"], default=None)
    p.add_argument("-f", "--format", default=None, help="'json' (the default)")
    p.add_argument("names", nargs="+", metavar="NAME")
    csub = groups.group(sub, "container", "manage containers")
    _register(csub, "ls")
    p = _add(csub, "inspect", cmd_inspect, "show containers' details")
    p.set_defaults(type="container")
    p.add_argument("-f", "--format", default=None, help="'json' (the default)")
    p.add_argument("names", nargs="+", metavar="NAME")
    p = _add(csub, "cleanup", cmd_cleanup, "release what an exited container holds (the "
             "monitor's exit command)")
    p.add_argument("--rm", action="store_true", help="remove the container")
    p.add_argument("container", metavar="CONTAINER")
