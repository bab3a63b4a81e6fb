"""ocirt pause."""

from __future__ import annotations

from .main import Context, require_args

ARGS = "<container-id>"
FLAGS: list = []


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    require_args(args, 1, ARGS)
    from ..lifecycle.pause import pause

    pause(ctx.store(), args[0])
    return 0
