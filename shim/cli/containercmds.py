"""Container commands, with Docker's names, flags and output: run, create, start, stop, kill,
rm, wait (and the same under ``ocish container``, with ``container cleanup``, the monitor's
exit command); ps, logs and inspect are observecmds', registered here."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import OcishError
from . import flagopts, groups, observecmds, regopts

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

    if args.pull != "always":
        try:
            return records.resolve(st, args.image)
        except OcishError:
            if args.pull == "never":
                raise
    from ..images import platforms, reference
    from ..images.pull import pull

    ref = reference.parse(args.image)
    if args.pull != "always":
        sys.stderr.write(f"Unable to find image '{args.image}' locally\n")
    client = regopts.client(args, ref.registry, ref.repository)
    want = platforms.parse(args.platform) if args.platform else platforms.host()
    pull(st, client, ref, want, out=sys.stderr)
    from .imagecmds import image_event

    image_event(st, "pull", str(ref))
    return records.resolve(st, args.image)


def _create(args: argparse.Namespace, st: Storage, detach: bool) -> Container:
    from ..containers import lifecycle
    from ..runtime.driver import resolve
    from . import lifecyclecmds
    from .misc import runtime_path

    try:
        flags = flagopts.options(args, lambda w: sys.stderr.write(f"WARNING: {w}\n"))
        image_id = _image(st, args)
        flagopts.check_platform(st, image_id, args.image, args.platform)
        options = {"name": args.name, "hostname": args.hostname, "env": args.env or [],
                   "workdir": args.workdir, "entrypoint": args.entrypoint, "cmd": args.cmd,
                   "user": args.user, "network": args.network, "rm": args.rm,
                   "detach": detach, "cgroup_parent": args.cgroup_parent,
                   "stop_signal": args.stop_signal, "stop_timeout": args.stop_timeout,
                   "security_opt": args.security_opt or [], "volumes": args.volume or [],
                   "mount": args.mount or [], "tmpfs": args.tmpfs or [],
                   "interactive": args.interactive, "tty": args.tty,
                   "stdin_once": args.interactive and not detach,
                   "console_size": _console_size(args.tty and not detach)}
        options.update(_log_options(args))
        options.update(flags)
        options.update(lifecyclecmds.run_options(args))
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


def _log_options(args: argparse.Namespace) -> dict[str, Any]:
    """The log driver and its options, checked."""
    from ..containers.logs import log_options

    driver, opts = log_options(args.log_driver, args.log_opt or [])
    return {"log_driver": driver, "log_opts": opts}


def _console_size(tty: bool) -> tuple[int, int] | None:
    """A foreground -t's terminal size, for the container's terminal from the start."""
    if not tty:
        return None
    from ..containers.interact import terminal_size

    return terminal_size(sys.stdin.fileno()) or terminal_size(sys.stdout.fileno())


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
    from . import interactcmds

    keys = interactcmds.check_interactive(args, args.interactive and not args.detach,
                                         args.tty)
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
            lifecycle.remove(st, ctr, force=True, volumes=True)
        exc.status = 125 if exc.status == 1 else exc.status
        raise
    if args.detach:
        sys.stdout.write(ctr.id + "\n")
        return 0
    if interactcmds.attach_container(st, ctr, sock, stdin=True, keys=keys,
                                     sig_proxy=args.sig_proxy):
        return 0  # detached: the container runs on
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


def cmd_start(args: argparse.Namespace) -> int:
    """Start containers."""
    from ..containers import lifecycle, records

    st = _storage(args)
    if args.attach or args.interactive:
        from . import interactcmds

        return interactcmds.start_attached(args, st)

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
                                                             args.force, args.volumes))


def cmd_wait(args: argparse.Namespace) -> int:
    """Wait for containers to exit and print their exit statuses."""
    from ..containers import lifecycle, records

    st = _storage(args)

    def one(name: str) -> None:
        code = lifecycle.wait(st, records.find(st, name).id)
        sys.stdout.write(f"{code}\n")

    return _each(args.containers, one, echo=False)


def _status(st: Storage, ctr: Container) -> str:
    import time

    from ..containers.control import status_suffix
    from .output import human_duration, parse_time

    if ctr.status == "running":
        return "Up " + human_duration(time.time() - (parse_time(ctr.started) or time.time())) \
            + status_suffix(st, ctr)
    if ctr.status == "restarting":  # Docker's, from the last exit
        ago = human_duration(time.time() - (parse_time(ctr.finished) or time.time()))
        return f"Restarting ({ctr.exit_code}) {ago} ago"
    if ctr.status == "exited":
        ago = human_duration(time.time() - (parse_time(ctr.finished) or time.time()))
        return f"Exited ({ctr.exit_code}) {ago} ago"
    return "Created"


def cmd_cleanup(args: argparse.Namespace) -> int:
    """The monitor's exit command: release what the exited container holds (-rm: remove it)."""
    from ..containers import lifecycle

    st = _storage(args)
    lifecycle.cleanup(st, args.container, remove=args.rm, exit_command=_exit_command(st, False))
    return 0


def _run_options(p: Any) -> None:
    p.add_argument("--name", help="the container's name")
    p.add_argument("-e", "--env", action="append", metavar="NAME[=VALUE]",
                   help="set an environment variable")
    p.add_argument("-w", "--workdir", help="the working directory inside the container")
    p.add_argument("--entrypoint", help="override the image's ENTRYPOINT")
    p.add_argument("-u", "--user", help="name|uid[:group|gid], looked up in the image's "
                   "/etc/passwd and /etc/group")
    p.add_argument("-h", "--hostname", help="the container's host name")
    p.add_argument("--network", "--net", default="none",
                   help="'none' (the default: a network namespace with only lo; bridge "
                        "networks are not implemented yet) or 'host'")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--pull", choices=["always", "missing", "never"], default="missing",
                   help="pull the image always, if it is missing (default) or never")
    p.add_argument("--cgroup-parent", help="the cgroup the container's cgroup goes under "
                   "(default /ocish)")
    p.add_argument("--stop-signal", help="the signal that stops the container (default: "
                   "the image's, else SIGTERM)")
    p.add_argument("--stop-timeout", type=int, help="seconds before stop sends SIGKILL")
    p.add_argument("--security-opt", action="append", metavar="OPT",
                   help="seccomp=unconfined|FILE (default: /usr/share/containers/"
                        "seccomp.json), no-new-privileges")
    p.add_argument("--log-driver", help="k8s-file (the default), json-file (written in the "
                   "k8s-file format, as podman's) or none")
    p.add_argument("--log-opt", action="append", metavar="max-size=SIZE",
                   help="the log's maximum size (conmon's --log-size-max)")
    flagopts.add_options(p)
    p.add_argument("-v", "--volume", action="append", metavar="[SRC:]DST[:OPTS]",
                   help="a named volume, a bind of a host path, or an anonymous volume")
    p.add_argument("--mount", action="append", metavar="type=bind|volume|tmpfs,...",
                   help="a mount, with Docker's --mount keys")
    p.add_argument("--tmpfs", action="append", metavar="DST[:OPTS]", help="a tmpfs mount")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="keep the container's stdin open (fed from ocish's)")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    p.add_argument("--detach-keys", default=None,
                   help="the keys that detach (default ctrl-p,ctrl-q)")
    p.add_argument("--sig-proxy", type=_bool, nargs="?", const=True, default=True,
                   metavar="BOOL", help="send ocish's signals to the container (default "
                   "true)")
    from .lifecyclecmds import add_run_options

    add_run_options(p)
    regopts.add_options(p)
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND")


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


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
    p.add_argument("-a", "--attach", action="store_true", help="attach to its output and "
                   "exit with its status")
    p.add_argument("-i", "--interactive", action="store_true", help="attach its stdin")
    p.add_argument("--detach-keys", default=None,
                   help="the keys that detach (default ctrl-p,ctrl-q)")
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
    p.add_argument("-v", "--volumes", action="store_true",
                   help="remove the container's anonymous volumes too")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = _add(sub, "wait", cmd_wait, "wait for containers to exit, print their statuses")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    observecmds.add_ps(sub, ls_name)
    observecmds.add_logs(sub)


def register(sub: Any) -> None:
    """Add the container commands at top level and under ``ocish container``."""
    _register(sub, "ps")
    observecmds.add_inspect(sub, containers_only=False)
    csub = groups.group(sub, "container", "manage containers")
    _register(csub, "ls")
    observecmds.add_inspect(csub, containers_only=True)
    p = _add(csub, "cleanup", cmd_cleanup, "release what an exited container holds (the "
             "monitor's exit command)")
    p.add_argument("--rm", action="store_true", help="remove the container")
    p.add_argument("container", metavar="CONTAINER")
