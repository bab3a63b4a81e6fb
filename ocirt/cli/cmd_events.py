"""ocirt events."""

from __future__ import annotations

from ..errors import UsageError
from .flags import BOOL, STR, Flag
from .main import Context, require_args

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

ARGS = "<container-id>"
FLAGS = [
    Flag("interval", STR, "5s", "set the stats collection interval"),
    Flag("stats", BOOL, help="display the container's stats then exit"),
]
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """A Go duration ("5s", "1m30s", "250ms") in seconds."""
    total, number, i = 0.0, "", 0
    if not text:
        raise UsageError("invalid duration ''")
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = next((u for u in sorted(_UNITS, key=len, reverse=True) if text.startswith(u, i)),
                    None)
        if unit is None or not number:
            raise UsageError(f"invalid duration {text!r}")
        total += float(number) * _UNITS[unit]
        number = ""
        i += len(unit)
    if number:
        raise UsageError(f"missing unit in duration {text!r}")
    return total


def main(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    require_args(args, 1, ARGS)
    interval = parse_duration(opts["interval"])
    if interval <= 0:
        raise UsageError("duration interval must be greater than 0")
    from ..lifecycle.events import events

    try:
        events(ctx.store(), args[0], interval, opts["stats"])
    except KeyboardInterrupt:
        pass
    return 0
