"""ocirt create."""

from __future__ import annotations

from .flags import BOOL, INT, STR, Flag
from .main import Context, require_args

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

    from ..lifecycle.create import Options

ARGS = "<container-id>"
DESCRIPTION = """The create command creates an instance of a container for a bundle. The bundle
is a directory with a specification file named "config.json" and a root filesystem."""

FLAGS = [
    Flag("bundle,b", STR, ".", "path to the root of the bundle directory (default: current dir)"),
    Flag("console-socket", STR, "", "path to an AF_UNIX socket which will receive the console's "
         "pseudoterminal master"),
    Flag("pidfd-socket", STR, "", "path to an AF_UNIX socket which will receive the init's pidfd"),
    Flag("pid-file", STR, "", "specify the file to write the process id to"),
    Flag("no-pivot", BOOL, help="do not use pivot root to jail process inside rootfs"),
    Flag("no-new-keyring", BOOL, help="do not create a new session keyring for the container"),
    Flag("preserve-fds", INT, 0, "pass N additional file descriptors to the container"),
    Flag("detach,d", BOOL, help="accepted for compatibility: create always detaches"),
]


def options(ctx: Context, opts: dict[str, Any]) -> Options:
    from ..lifecycle.create import Options

    return Options(bundle=str(opts["bundle"]), pid_file=str(opts["pid_file"]),
                   console_socket=str(opts["console_socket"]), no_pivot=bool(opts["no_pivot"]),
                   no_new_keyring=bool(opts["no_new_keyring"]),
                   preserve_fds=int(opts["preserve_fds"]),
                   systemd_cgroup=ctx.systemd_cgroup,
                   trace=ctx.trace)


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    require_args(args, 1, ARGS)
    from ..lifecycle.create import create

    state = create(ctx.store(), args[0], options(ctx, opts))
    if opts["pidfd_socket"]:
        from ..lifecycle.pidfd import send_pidfd

        send_pidfd(str(opts["pidfd_socket"]), state.pid)
    return 0
