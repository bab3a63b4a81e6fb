"""ocirt delete."""

from __future__ import annotations

from .flags import BOOL, Flag
from .main import Context, require_args

ARGS = "<container-id>"
FLAGS = [Flag("force,f", BOOL, help="forcibly delete the container if it is still running "
                                    "(uses SIGKILL)")]


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    require_args(args, 1, ARGS)
    from ..lifecycle.delete import delete

    delete(ctx.store(), args[0], bool(opts["force"]), warn=ctx.log.warning)
    return 0
