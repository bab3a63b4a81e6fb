"""Output helpers: aligned tables and Docker's human sizes and durations."""

from __future__ import annotations

import datetime
import re
import time

from ..errors import OcishError

TYPE_CHECKING = False  # not typing's: `ocish images` imports this module, typing costs ms
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any, TextIO



def table(out: TextIO, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns, three spaces apart (Docker's tabwriter layout)."""
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        out.write("   ".join(cells).rstrip() + "\n")


def json_lines(out: TextIO, rows: Iterable[Mapping[str, Any]]) -> None:
    """One JSON object a line, keys sorted (Docker's ``--format json``)."""
    import json

    for row in rows:
        out.write(json.dumps(row, sort_keys=True) + "\n")


def parse_time(text: str) -> float | None:
    """An RFC 3339 time (nanoseconds allowed) -> epoch seconds, or None."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text or "")
    if not m:
        return None
    frac = (m.group(2) or ".0")[:7]
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.datetime.fromisoformat(m.group(1) + frac + zone).timestamp()
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """Docker's HumanDuration: '5 minutes', 'About an hour', '3 weeks'."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def since(created: str) -> str:
    """'3 days ago' for an RFC 3339 time, 'N/A' if there is none."""
    ts = parse_time(created)
    return "N/A" if ts is None else human_duration(time.time() - ts) + " ago"


def inspect_json(out: TextIO, names: Sequence[str],
                 finders: Sequence[Callable[[str], dict[str, Any]]], missing: str) -> int:
    """``inspect``: a JSON array of what the first finder that knows each name gives; the
    names none knows make the error ``<missing>: a, b`` (after the array, as Docker's)."""
    import json

    found: list[dict[str, Any]] = []
    unknown: list[str] = []
    for name in names:
        obj = find_first(name, finders)
        if obj is None:
            unknown.append(name)
        else:
            found.append(obj)
    out.write(json.dumps(found, indent=4) + "\n")
    if unknown:
        raise OcishError(f"{missing}: " + ", ".join(unknown))
    return 0


def find_first(name: str, finders: Sequence[Callable[[str], dict[str, Any]]]
               ) -> dict[str, Any] | None:
    """What the first finder that knows *name* gives; None if none does."""
    for find in finders:
        try:
            return find(name)
        except OcishError:
            continue
    return None
