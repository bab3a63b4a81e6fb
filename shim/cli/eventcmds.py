"""``ocish events``: the event log, filtered and formatted as Docker's ``events`` shows it,
following until interrupted or until ``--until`` has passed."""

from __future__ import annotations

import argparse
import sys
import time

from ..errors import OcishError

TYPE_CHECKING = False  # not typing's: typing costs every command ms
if TYPE_CHECKING:
    from typing import Any


def parse_when(text: str, what: str) -> float:
    """Docker's times for --since/--until/until=: a Unix time (``1700000000.5``), an RFC 3339
    time or date (``2026-12-04T19:00:00Z``, ``2026-12-04``; without a zone: UTC), or a Go
    duration before now (``10m``)."""
    import datetime

    from ..units import go_duration

    try:
        return float(text)
    except ValueError:
        pass
    try:
        return time.time() - go_duration(text)
    except ValueError:
        pass
    t = text.replace("Z", "+00:00")
    if "." in t:  # Python's fromisoformat takes up to microseconds
        head, _, rest = t.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        t = head + "." + digits[:6].ljust(6, "0") + rest[len(digits):]
    try:
        dt = datetime.datetime.fromisoformat(t)
    except ValueError:
        raise OcishError(f"--{what} {text!r}: not a time (RFC 3339 or Unix) nor a duration"
                         ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    return dt.timestamp()


def _filters(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in ("type", "event", "container", "image", "label"):
            raise OcishError(f"invalid filter '{item}': use type=, event=, container=, "
                             "image= or label=")
        out.setdefault(key, []).append(value)
    return out


def matches(ev: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Docker's rules: values of one key are alternatives, different keys must all match."""
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    aid = str(actor.get("ID") or "")
    typ = ev.get("Type")

    def one(key: str, value: str) -> bool:
        if key == "type":
            return bool(typ == value)
        if key == "event":
            action = str(ev.get("Action") or "")
            return value in (action, action.split(":", 1)[0])
        if key == "container":
            return typ == "container" and (aid.startswith(value) or attrs.get("name") == value)
        if key == "image":
            names = {attrs.get("image"), ev.get("from")} if typ == "container" else \
                {aid, attrs.get("name")}
            return value in names or f"{value}:latest" in names
        k, has_value, v = value.partition("=")
        return k in attrs and (not has_value or attrs[k] == v)

    return all(any(one(k, v) for v in vals) for k, vals in filters.items())


def human(ev: dict[str, Any]) -> str:
    """``2026-12-04T19:00:00.000000000Z container start ID (image=..., name=...)``."""
    ns = int(ev.get("timeNano") or 0)
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + \
        f".{ns % 10**9:09d}Z"
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    line = f"{when} {ev.get('Type')} {ev.get('Action')} {actor.get('ID')}"
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


def render(template: str, ev: dict[str, Any]) -> str:
    """A Go template's common forms: ``{{.Field.Sub}}``, ``{{json .X}}`` (``.`` for the
    whole event), ``{{index .Actor.Attributes "name"}}``, ``{{upper .X}}``/``{{lower}}``."""
    import json
    import re

    def value(path: str) -> Any:
        cur: Any = ev
        for part in [p for p in path.split(".") if p]:
            if not isinstance(cur, dict) or part not in cur:
                # Go templates print <no value> for a missing map key
                return "<no value>"
            cur = cur[part]
        return cur

    def expr(m: re.Match[str]) -> str:
        words = m.group(1).split()
        if not words:
            raise OcishError(f"--format {template!r}: empty action")
        if words[0] == "json" and len(words) == 2:
            return json.dumps(value(words[1]), separators=(",", ":"))
        if words[0] in ("upper", "lower") and len(words) == 2:
            v = str(value(words[1]))
            return v.upper() if words[0] == "upper" else v.lower()
        if words[0] == "index" and len(words) == 3:
            m2 = value(words[1])
            key = words[2].strip('"')
            return str(m2.get(key, "<no value>")) if isinstance(m2, dict) else "<no value>"
        if len(words) == 1 and words[0].startswith("."):
            v = value(words[0])
            return json.dumps(v) if isinstance(v, dict) else str(v)
        raise OcishError(f"--format {template!r}: unsupported action {m.group(0)}")

    return re.sub(r"\{\{-?\s*(.*?)\s*-?\}\}", expr, template)


def cmd_events(args: argparse.Namespace) -> int:
    """Show container and image events (following until interrupted or --until passes)."""
    from ..events import log
    from ..storage.root import default_root

    root = args.root or default_root()
    now = time.time()
    since = parse_when(args.since, "since") if args.since else now
    until = parse_when(args.until, "until") if args.until else None
    filters = _filters(args.filter or [])
    fmt = args.format
    if fmt in ("json", "{{json .}}"):
        fmt = "json"

    def follow() -> bool:
        return until is None or time.time() < until

    out = sys.stdout
    for ev in log.read(root, follow):
        t = int(ev.get("timeNano") or 0) / 10**9
        if t < since or not matches(ev, filters):
            continue
        if until is not None and t > until:
            if time.time() > until:
                break
            continue
        if fmt == "json":
            import json

            line = json.dumps(ev, separators=(",", ":"))
        elif fmt:
            line = render(fmt, ev)
        else:
            line = human(ev)
        out.write(line + "\n")
        out.flush()
    return 0


def register(sub: Any) -> None:
    """``ocish events`` and ``ocish system events``."""
    from . import groups

    for parent in (sub, groups.group(sub, "system", "manage ocish")):
        p = parent.add_parser("events", help="show container and image events",
                              description="Show container and image events: the past ones "
                              "from --since, then new ones as they come until interrupted or "
                              "until --until.")
        p.set_defaults(func=cmd_events)
        p.add_argument("--since", help="from this time (RFC 3339, Unix time, or a duration "
                       "before now)")
        p.add_argument("--until", help="until this time (the same forms); not following "
                       "once it has passed")
        p.add_argument("-f", "--filter", action="append", metavar="KEY=VALUE",
                       help="type=, event=, container=, image=, label=")
        p.add_argument("--format", help="'json' or a Go template ({{json .}}, {{.Action}})")
