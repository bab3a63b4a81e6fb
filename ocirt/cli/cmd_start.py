"""ocirt start."""

from __future__ import annotations

from .main import Context, require_args

ARGS = "<container-id>"
FLAGS: list = []


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    require_args(args, 1, ARGS)
    from ..lifecycle.start import start

    start(ctx.store(), args[0], warn=ctx.log.warning, trace=ctx.trace)
    return 0
