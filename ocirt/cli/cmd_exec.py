"""ocirt exec."""

from __future__ import annotations

from ..errors import ExecError, OcirtError, UsageError
from .flags import BOOL, INT, LIST, STR, Flag
from .main import Context

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

ARGS = "<container-id> <command> [command options]  || -p process.json <container-id>"
STOP_AT_POSITIONAL = True
FLAGS = [
    Flag("console-socket", STR, "", "path to an AF_UNIX socket which will receive the pty master"),
    Flag("pidfd-socket", STR, "", "path to an AF_UNIX socket which will receive the pidfd"),
    Flag("cwd", STR, "", "current working directory in the container"),
    Flag("env,e", LIST, help="set environment variables"),
    Flag("tty,t", BOOL, help="allocate a pseudo-TTY"),
    Flag("user,u", STR, "", "UID (format: <uid>[:<gid>])"),
    Flag("additional-gids,g", LIST, help="additional gids"),
    Flag("process,p", STR, "", "path to the process.json"),
    Flag("detach,d", BOOL, help="detach from the container's process"),
    Flag("pid-file", STR, "", "specify the file to write the process id to"),
    Flag("process-label", STR, "", "set the asm process label for the process commonly used "
                                   "with selinux"),
    Flag("apparmor", STR, "", "set the apparmor profile for the process"),
    Flag("no-new-privs", BOOL, help="set the no new privileges value for the process"),
    Flag("cap,c", LIST, help="add a capability to the bounding set for the process"),
    Flag("preserve-fds", INT, 0, "pass N additional file descriptors to the container"),
    Flag("cgroup", LIST, help="run the process in an (existing) sub-cgroup(s)"),
    Flag("ignore-paused", BOOL, help="allow exec in a paused container"),
]


def main(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    if not args:
        raise UsageError(f"requires at least 1 argument: {ARGS}")
    from ..lifecycle.exec import ExecOptions, exec_process

    options = ExecOptions(
        process_file=opts["process"], args=args[1:], tty=opts["tty"],
        console_socket=opts["console_socket"], detach=opts["detach"], pid_file=opts["pid_file"],
        cwd=opts["cwd"], env=opts["env"], user=opts["user"],
        additional_gids=opts["additional_gids"], caps=opts["cap"],
        no_new_privs=opts["no_new_privs"], apparmor=opts["apparmor"],
        process_label=opts["process_label"], preserve_fds=opts["preserve_fds"],
        ignore_paused=opts["ignore_paused"], cgroup=opts["cgroup"],
        pidfd_socket=opts["pidfd_socket"], trace=ctx.trace)
    try:
        return exec_process(ctx.store(), args[0], options)
    except OcirtError as exc:  # every failure to start the process exits 255, as runc's
        raise ExecError(f"exec failed: {exc.message}") from None
