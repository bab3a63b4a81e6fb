"""ocirt run."""

from __future__ import annotations

from .cmd_create import FLAGS as CREATE_FLAGS
from .cmd_create import options
from .flags import BOOL, Flag
from .main import Context, require_args

ARGS = "<container-id>"
DESCRIPTION = """The run command creates an instance of a container for a bundle and starts it.
In the foreground it forwards signals to the container and exits with its status."""

FLAGS = [f for f in CREATE_FLAGS if f.key != "detach"] + [
    Flag("detach,d", BOOL, help="detach from the container's process"),
    Flag("keep", BOOL, help="do not delete the container after it exits"),
    Flag("no-subreaper", BOOL, help="disable the use of the subreaper used to reap reparented "
                                    "processes"),
]


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    require_args(args, 1, ARGS)
    from ..lifecycle.run import run

    return run(ctx.store(), args[0], options(ctx, opts), bool(opts["detach"]), bool(opts["keep"]),
               subreaper=not opts["no_subreaper"], warn=ctx.log.warning)
