"""ocirt kill."""

from __future__ import annotations

from ..errors import UsageError
from .flags import BOOL, Flag
from .main import Context

ARGS = "<container-id> [signal]"
STOP_AT_POSITIONAL = True
FLAGS = [Flag("all,a", BOOL, help="send the signal to all processes in the container")]


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    if not 1 <= len(args) <= 2:
        raise UsageError(f"requires 1 or 2 arguments: {ARGS}")
    from ..lifecycle.kill import kill
    from ..linux.signals import parse

    kill(ctx.store(), args[0], parse(args[1]) if len(args) > 1 else 15, bool(opts["all"]))
    return 0
