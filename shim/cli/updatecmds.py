"""``ocish update`` (a container's resource limits and restart policy) and ``ocish stats``
(Docker's live table of containers' resource usage); also under ``ocish container``."""

from __future__ import annotations

import argparse
import sys

from ..errors import OcishError
from . import flagopts, groups

TYPE_CHECKING = False  # not typing's: every command imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any

_HEADER = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
           "BLOCK I/O", "PIDS"]
# --format's fields (Docker's stats formatter) -> the header above
_FIELDS = {"Container": "CONTAINER ID", "ID": "CONTAINER ID", "Name": "NAME",
           "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
           "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}


def _storage(args: argparse.Namespace) -> Any:
    from ..storage.root import Storage, default_root

    return Storage(args.root or default_root())


def cmd_update(args: argparse.Namespace) -> int:
    """Update containers' resource limits."""
    from ..containers import records
    from ..containers.update import update

    flags = {k: getattr(args, k) for k in flagopts.RESOURCE_FLAGS}
    if all(v is None for v in flags.values()) and args.restart is None:
        raise OcishError("you must provide one or more flags when using this command")
    st = _storage(args)
    failed = 0
    for name in args.containers:
        try:
            update(st, records.find(st, name), flags, args.restart)
            sys.stdout.write(name + "\n")
        except OcishError as exc:
            sys.stderr.write(f"ocish: {exc}\n")
            failed = 1
    return failed


def _binary(size: float) -> str:
    """Docker's BytesSize: binary units, 4 significant digits (1.5MiB)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024
        i += 1
    return f"{size:.4g}{units[i]}"


def _rows(st: Any, ctrs: list[Any], prev: dict[str, Any], no_trunc: bool
          ) -> list[dict[str, str]]:
    """One row per container (Docker's columns); *prev* keeps each one's last sample."""
    from ..containers import lifecycle, stats
    from ..units import human_size

    rows = []
    for c in ctrs:
        row = {"CONTAINER ID": c.id if no_trunc else c.id[:12], "NAME": c.name}
        path = stats.cgroups_path(lifecycle.paths(st, c).bundle) \
            if c.status == "running" else None
        if path is None:
            row.update({"CPU %": "0.00%", "MEM USAGE / LIMIT": "0B / 0B", "MEM %": "0.00%",
                        "NET I/O": "0B / 0B", "BLOCK I/O": "0B / 0B", "PIDS": "0"})
        else:
            cur = stats.sample(path, c.pid)
            pct = stats.percentages(prev.get(c.id), cur)
            prev[c.id] = cur
            row.update({
                "CPU %": f"{pct['cpu']:.2f}%",
                "MEM USAGE / LIMIT": f"{_binary(cur['mem_usage'])} / "
                                     f"{_binary(pct['mem_limit'])}",
                "MEM %": f"{pct['mem']:.2f}%",
                "NET I/O": f"{human_size(cur['rx'])} / {human_size(cur['tx'])}",
                "BLOCK I/O": f"{human_size(cur['blk_read'])} / {human_size(cur['blk_write'])}",
                "PIDS": str(cur["pids"])})
        rows.append(row)
    return rows


def _render(out: Any, rows: list[dict[str, str]], fmt: str | None) -> None:
    import re

    from .output import json_lines, table

    if fmt == "json":
        inv = {v: k for k, v in _FIELDS.items() if k != "Container"}
        json_lines(out, [{inv[k]: v for k, v in r.items()} | {"Container": r["CONTAINER ID"]}
                         for r in rows])
        return
    if fmt is None or fmt == "table":
        table(out, _HEADER, [[r[h] for h in _HEADER] for r in rows])
        return
    is_table = fmt.startswith("table ")
    template = fmt[6:] if is_table else fmt
    fields = re.findall(r"{{\s*\.(\w+)\s*}}", template)
    for f in fields:
        if f not in _FIELDS:
            raise OcishError(f"template: --format: can't evaluate field {f}")
    template = template.replace("\\t", "\t")

    def fill(values: dict[str, str]) -> str:
        return re.sub(r"{{\s*\.(\w+)\s*}}", lambda m: values[_FIELDS[m.group(1)]], template)

    lines = [fill({v: v for v in _FIELDS.values()})] if is_table else []
    lines += [fill(r) for r in rows]
    if is_table:  # tab-separated cells into aligned columns, as Docker's tabwriter
        cells = [ln.split("\t") for ln in lines]
        n = max(len(c) for c in cells)
        cells = [c + [""] * (n - len(c)) for c in cells]
        table(out, cells[0], cells[1:])
    else:
        out.write("".join(ln + "\n" for ln in lines))


def cmd_stats(args: argparse.Namespace) -> int:
    """Show containers' resource usage (live, redrawn every second, until interrupted)."""
    import time

    from ..containers import records
    from ..containers.state import refresh

    st = _storage(args)

    def containers() -> list[Any]:
        if args.containers:
            return [refresh(st, records.find(st, n)) for n in args.containers]
        ctrs = [refresh(st, c) for c in records.all_containers(st)]
        return ctrs if args.all else [c for c in ctrs if c.status == "running"]

    prev: dict[str, Any] = {}
    if args.no_stream:
        ctrs = containers()
        _rows(st, ctrs, prev, args.no_trunc)  # a first sample, for the CPU % over 0.5 s
        time.sleep(0.5)
        _render(sys.stdout, _rows(st, ctrs, prev, args.no_trunc), args.format)
        return 0
    try:
        while True:
            rows = _rows(st, containers(), prev, args.no_trunc)
            sys.stdout.write("\033[2J\033[H")  # clear the screen, as Docker's live mode
            _render(sys.stdout, rows, args.format)
            sys.stdout.flush()
            time.sleep(1)
    except KeyboardInterrupt:
        return 0


def _add_update(sub: Any) -> None:
    p = sub.add_parser("update", help="update containers' resource limits",
                       description="Update containers' resource limits (and restart policy).")
    p.set_defaults(func=cmd_update)
    flagopts.add_resource_options(p)
    p.add_argument("--restart", help="restart policy: no, always, unless-stopped, on-failure[:N]")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _add_stats(sub: Any) -> None:
    p = sub.add_parser("stats", help="show containers' resource usage",
                       description="Show a live table of containers' resource usage.")
    p.set_defaults(func=cmd_stats)
    p.add_argument("-a", "--all", action="store_true", help="all containers (default: running)")
    p.add_argument("--no-stream", action="store_true", help="one table, then exit")
    p.add_argument("--no-trunc", action="store_true", help="full IDs")
    p.add_argument("--format", default=None, help="table, json, or a {{.Field}} template")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


def register(sub: Any) -> None:
    """``update`` and ``stats`` at top level and under ``ocish container``."""
    csub = groups.group(sub, "container", "manage containers")
    for s in (sub, csub):
        _add_update(s)
        _add_stats(s)
