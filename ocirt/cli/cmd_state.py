"""ocirt state."""

from __future__ import annotations

import sys

from .. import jsonio
from .main import Context, require_args

ARGS = "<container-id>"
FLAGS: list = []


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    require_args(args, 1, ARGS)
    from ..lifecycle.query import state

    sys.stdout.write(jsonio.dumps(state(ctx.store(), args[0]), indent=2))
    return 0
