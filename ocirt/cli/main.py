"""The ``ocirt`` command: global flags, then one command module each, loaded on demand.

Every failure ends here: one line on stderr (``ocirt: <message>``), one entry in ``--log``, the
error's exit status; never a traceback.
"""

from __future__ import annotations

import os
import sys

from .. import SPEC_VERSION, __version__
from ..errors import OcirtError, UsageError
from .flags import BOOL, STR, Flag, parse
from .log import Log

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from types import ModuleType

    from ..state import Store

GLOBAL_FLAGS = [
    Flag("root", STR, "", "root directory for storage of container state (default /run/ocirt)"),
    Flag("log", STR, "", "set the log file to write ocirt logs to (default is stderr)"),
    Flag("log-format", STR, "text", "set the log format ('text' (default), or 'json')"),
    Flag("debug", BOOL, help="enable debug logging"),
    Flag("systemd-cgroup", BOOL, help="enable systemd cgroup support (slice:prefix:name paths)"),
    Flag("rootless", STR, "auto", "ignore cgroup permission errors ('true', 'false', or 'auto')"),
    Flag("criu", STR, "criu", "path to the criu binary (for checkpoint and restore)"),
    Flag("version,v", BOOL, help="print the version"),
    Flag("help,h", BOOL, help="show help"),
]

COMMANDS = {
    "create": "create a container",
    "start": "executes the user defined process in a created container",
    "run": "create and run a container",
    "state": "output the state of a container",
    "exec": "execute new process inside the container",
    "ps": "ps displays the processes running inside a container",
    "pause": "pause suspends all processes inside the container",
    "resume": "resumes all processes that have been previously paused",
    "update": "update container resource constraints",
    "events": "display container events such as OOM notifications, cpu, memory, and IO usage "
              "statistics",
    "kill": "kill sends the specified signal (default: SIGTERM) to the container's init process",
    "delete": "delete any resources held by the container often used with detached container",
    "list": "lists containers started by ocirt with the given root",
    "spec": "create a new specification file",
    "features": "show the enabled features",
    "check": "validate a bundle's config.json as create does",
}


class Context:
    """What every command gets: the global flags, the state root and the log."""

    def __init__(self, values: dict[str, object], log: Log) -> None:
        self.values = values
        self.log = log
        root = str(values["root"])
        self.root_given = bool(root)
        if not root:
            from ..state import default_root

            root = default_root()
        self.root = os.path.abspath(root)
        if self.root == "/":
            raise UsageError("--root must not be /")
        self.systemd_cgroup = bool(values["systemd_cgroup"])
        self.rootless = str(values["rootless"])
        if self.rootless not in ("auto", "true", "false"):
            raise UsageError(f"invalid value for --rootless: {self.rootless!r} "
                             "(true, false or auto)")
        if self.rootless == "true":
            # runc's rootless cgroup mode (cgroup errors ignored) is not implemented: refused
            # rather than accepted and ignored
            raise UsageError("--rootless=true is not supported by ocirt (only auto or false)")
        #: where the operations report their steps with --debug (as runc's debug log)
        self.trace = log.debug if log.debug_enabled else None

    def store(self) -> Store:
        from ..state import Store

        return Store(self.root)


def version_text() -> str:
    return f"ocirt version {__version__}\nspec: {SPEC_VERSION}\npython: {sys.version.split()[0]}\n"


def usage() -> str:
    lines = ["NAME:", "   ocirt - an OCI container runtime (runc-compatible)", "",
             "USAGE:", "   ocirt [global options] command [command options] [arguments...]", "",
             "COMMANDS:"]
    lines += [f"   {name:<10} {text}" for name, text in COMMANDS.items()]
    lines += ["", "GLOBAL OPTIONS:"] + [f.usage() for f in GLOBAL_FLAGS]
    return "\n".join(lines) + "\n"


def command_usage(name: str, module: ModuleType) -> str:
    lines = ["NAME:", f"   ocirt {name} - {COMMANDS[name]}", "", "USAGE:",
             f"   ocirt {name} [command options] {getattr(module, 'ARGS', '')}".rstrip()]
    doc = getattr(module, "DESCRIPTION", "")
    if doc:
        lines += ["", "DESCRIPTION:", "   " + doc.strip().replace("\n", "\n   ")]
    flags = getattr(module, "FLAGS", [])
    if flags:
        lines += ["", "OPTIONS:"] + [f.usage() for f in flags]
    return "\n".join(lines) + "\n"


def _ensure_stdio() -> None:
    """A caller may start us with fd 0, 1 or 2 closed; the next files we open must not take
    those numbers (the container's stdio), so they get /dev/null."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open("/dev/null", os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _ensure_stdio()
    log = Log()
    try:
        values, rest = parse(GLOBAL_FLAGS, argv, stop_at_first=True)
        if values["version"]:
            sys.stdout.write(version_text())
            return 0
        if values["log_format"] not in ("text", "json"):
            raise UsageError(f"invalid log-format: {values['log_format']}")
        log = Log(str(values["log"]), str(values["log_format"]), bool(values["debug"]))
        if values["help"] or not rest or rest[0] == "help":
            sys.stdout.write(usage())
            return 0
        name, args = rest[0], rest[1:]
        if name not in COMMANDS:
            raise UsageError(f"command {name!r} is not supported by ocirt; see 'ocirt --help'")
        module = __import__(f"ocirt.cli.cmd_{name}", fromlist=["main"])
        flags = getattr(module, "FLAGS", [])
        if "-h" in args or "--help" in args or "-help" in args:
            opts, _ = parse([*flags, Flag("help,h")], args,
                            stop_at_positional=getattr(module, "STOP_AT_POSITIONAL", False))
            if opts.get("help"):
                sys.stdout.write(command_usage(name, module))
                return 0
        opts, positional = parse(flags, args,
                                 stop_at_positional=getattr(module, "STOP_AT_POSITIONAL", False))
        ctx = Context(values, log)
        return int(module.main(ctx, opts, positional) or 0)
    except OcirtError as exc:
        return fail(log, exc.message, exc.exit_code)
    except KeyboardInterrupt:
        return fail(log, "interrupted", 130)
    except OSError as exc:
        detail = f"{exc.filename}: " if exc.filename else ""
        from ..errors import strerror

        return fail(log, f"{detail}{strerror(exc.errno) if exc.errno else exc}", 1)


def fail(log: Log, message: str, code: int) -> int:
    log.error(message)
    try:
        sys.stderr.write(f"ocirt: {message}\n")
        sys.stderr.flush()
    except OSError:
        pass
    return code


def require_args(args: list[str], count: int, usage_args: str) -> None:
    """runc's "requires exactly N argument(s)" check."""
    if len(args) != count:
        word = "argument" if count == 1 else "arguments"
        raise UsageError(f"requires exactly {count} {word}: {usage_args}")
