"""Observing containers, with Docker's flags and output: ps (``--filter``, ``--format``,
``-s``, ``-n``/``-l``), logs (``--since``/``--until``, ``-t``), inspect (``--format``, ``-s``),
top and port."""

from __future__ import annotations

import argparse
import sys

from ..errors import OcishError

TYPE_CHECKING = False  # not typing's: ps imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any

    from ..containers.records import Container
    from ..storage.root import Storage

PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
              "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
              "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS",
              "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS"}
PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t" \
    "{{.Ports}}\t{{.Names}}"


def _storage(args: argparse.Namespace) -> Storage:
    from .containercmds import _storage

    return _storage(args)


def _created_at(created: str) -> str:
    """Docker's CreatedAt: Go's time.String() of the creation second, local time."""
    import time

    from .output import parse_time

    ts = parse_time(created)
    if ts is None:
        return ""
    lt = time.localtime(int(ts))
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", lt)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ps_row(st: Storage, c: Container, trunc: bool, size: bool) -> dict[str, Any]:
    """The fields of ``ps --format`` for one container (Docker's names)."""
    from ..containers.control import status
    from ..containers.inspect import labels, mounts, sizes
    from ..units import human_size
    from .containercmds import _status
    from .output import since

    command = " ".join(c.options["args"])
    if trunc and len(command) > 20:
        command = command[:19] + "…"
    labs = labels(c)
    names = [str(m.get("Name") or m.get("Source") or "") for m in mounts(st, c)]
    if trunc:
        names = [n[:15] for n in names]
    size_text = "0B"
    if size:
        rw, rootfs = sizes(st, c)
        size_text = f"{human_size(rw)} (virtual {human_size(rootfs)})"
    return {"ID": c.id[:12] if trunc else c.id, "Names": c.name, "Image": c.image,
            "Command": _quote(command), "CreatedAt": _created_at(c.created),
            "RunningFor": since(c.created), "Ports": "", "State": status(c),
            "Status": _status(st, c), "Size": size_text,
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labs.items())),
            "Label": lambda k: labs.get(k, ""), "Mounts": ",".join(names),
            "LocalVolumes": str(sum(1 for m in mounts(st, c) if m.get("Type") == "volume")),
            "Networks": c.options.get("network") or "none"}


def _ps_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(row.items()) if not callable(v)}


def cmd_ps(args: argparse.Namespace) -> int:
    """List containers (running ones; -a: all)."""
    from ..containers import filters, records
    from ..containers.state import refresh
    from . import template

    st = _storage(args)
    wanted = filters.parse(args.filter or [])
    ctrs = [refresh(st, c) for c in records.all_containers(st)]
    last = 1 if args.latest else args.last
    last = None if last is None or last < 0 else last  # Docker's -1: no limit
    if last is None and not args.all and "status" not in wanted and "exited" not in wanted:
        ctrs = [c for c in ctrs if c.status in ("running", "paused", "restarting")]
    ctrs = filters.apply(st, ctrs, wanted)
    if last is not None:  # the N last created that pass the filters, whatever their state
        ctrs = ctrs[:last]
    trunc = not args.no_trunc
    if args.quiet:
        sys.stdout.write("".join((c.id[:12] if trunc else c.id) + "\n" for c in ctrs))
        return 0
    fmt = args.format or (PS_TABLE + ("\t{{.Size}}" if args.size else ""))
    if fmt == "table":
        fmt = PS_TABLE
    size = args.size or ".Size" in fmt  # as Docker's: a format that shows sizes gets them
    rows = [ps_row(st, c, trunc, size) for c in ctrs]
    template.write(sys.stdout, fmt, rows, PS_HEADERS, _ps_json)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """Show a container's output (stdout to stdout, stderr to stderr)."""
    import time

    from ..containers import lifecycle, logs, records
    from ..containers.inspect import log_driver
    from ..containers.state import refresh

    st = _storage(args)
    ctr = records.find(st, args.container)
    if log_driver(ctr) == "none":
        raise OcishError("configured logging driver does not support reading")
    now = time.time_ns()
    since = logs.time_arg(args.since, now, "since") if args.since else None
    until = logs.time_arg(args.until, now, "until") if args.until else None
    path = lifecycle.paths(st, ctr).log

    def running() -> bool:
        cur = records.get(st, ctr.id)
        return cur is not None and refresh(st, cur).status == "running"

    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return 0
    with f:
        if args.tail not in (None, "all"):
            try:
                n = int(args.tail)
            except ValueError:
                raise OcishError(f"--tail {args.tail!r}: want a number or 'all'") from None
            f.seek(logs.tail(path, n))
        outs = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
        for ts, stream, text in logs.records(f, running if args.follow else None):
            if since is not None or until is not None:
                ns = logs.time_ns(ts)
                if ns is not None and since is not None and ns < since:
                    continue
                if ns is not None and until is not None and ns > until:
                    break
            out = outs.get(stream)
            if out is not None:
                stamp = logs.docker_time(ts).encode() + b" " if args.timestamps and ts else b""
                out.write(stamp + text)
                out.flush()
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Show containers' details as JSON (images' too, as Docker's ``inspect`` does)."""
    from ..containers import records
    from ..containers.inspect import inspect
    from ..containers.state import refresh
    from ..images import records as images
    from . import template
    from .output import find_first, inspect_json

    st = _storage(args)
    finders = []
    if args.type != "image":
        finders.append(lambda name: inspect(st, refresh(st, records.find(st, name)),
                                            size=getattr(args, "size", False)))
    if args.type != "container":
        finders.append(lambda name: images.inspect(st, images.resolve(st, name)))
    if args.format in (None, "json"):
        return inspect_json(sys.stdout, args.names, finders, "No such object")
    nodes = template.parse(args.format)
    failed = None
    for name in args.names:
        data = find_first(name, finders)
        if data is None:
            sys.stderr.write(f"ocish: No such object: {name}\n")
            failed = 1
        else:
            sys.stdout.write(template.render(nodes, data) + "\n")
    return failed or 0


def _running(st: Storage, name: str) -> Container:
    from ..containers import records
    from ..containers.state import refresh

    ctr = refresh(st, records.find(st, name))
    if ctr.status not in ("running", "paused"):
        raise OcishError(f"Container {ctr.id} is not running")
    return ctr


def cmd_top(args: argparse.Namespace) -> int:
    """The processes of a container: the host's ps (default ``-ef``) over the container's
    pids, as Docker's."""
    import subprocess

    from ..containers import lifecycle

    st = _storage(args)
    ctr = _running(st, args.container)
    pids = set(lifecycle.runtime_of(st, ctr).pids(ctr.id))
    ps_args = args.ps_args or ["-ef"]
    try:
        res = subprocess.run(["ps", *ps_args], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=60)
    except OSError as exc:
        raise OcishError(f"ps: {exc.strerror}") from None
    if res.returncode != 0:
        err = (res.stderr.strip().splitlines() or ["failed"])[0]
        raise OcishError(f"ps: {err}")
    lines = res.stdout.splitlines()
    if not lines:
        raise OcishError("ps: no output")
    titles = lines[0].split()
    if "PID" not in titles:
        raise OcishError("Couldn't find PID field in ps output")
    col = titles.index("PID")
    rows = [titles]
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        try:
            pid = int(fields[col])
        except (IndexError, ValueError):
            continue
        if pid in pids:
            rows.append(fields)
    from .template import tabwriter

    out = tabwriter(["\t".join(r) for r in rows], minwidth=20)
    sys.stdout.write("".join(line + "\n" for line in out))
    return 0


def cmd_port(args: argparse.Namespace) -> int:
    """The container's published ports (none until ocish has networks that publish)."""
    from ..containers import records

    st = _storage(args)
    ctr = records.find(st, args.container)
    if args.port:
        port, _, proto = args.port.partition("/")
        if not port.isdigit() or not 0 < int(port) < 65536 or proto not in ("", "tcp", "udp",
                                                                             "sctp"):
            raise OcishError(f"Error: invalid port ({args.port})")
        raise OcishError(f"Error: No public port '{port}/{proto or 'tcp'}' published for "
                         f"{args.container}")
    del ctr  # found: it has no published ports to print
    return 0


def add_ps(sub: Any, name: str) -> None:
    from .containercmds import _add

    p = _add(sub, name, cmd_ps, "list containers")
    p.add_argument("-a", "--all", action="store_true", help="all containers, not only running")
    p.add_argument("-q", "--quiet", action="store_true", help="only IDs")
    p.add_argument("--no-trunc", action="store_true", help="full IDs and commands")
    p.add_argument("-s", "--size", action="store_true", help="show sizes (the container's "
                   "upper dir, and virtual: with the image)")
    p.add_argument("-n", "--last", type=int, default=None, metavar="N",
                   help="the N last created containers (all states)")
    p.add_argument("-l", "--latest", action="store_true", help="the last created container")
    p.add_argument("-f", "--filter", action="append", metavar="KEY=VALUE",
                   help="id, name, label, status, exited, ancestor, before, since, health, "
                        "volume, network")
    p.add_argument("--format", default=None, help="a Go template ('table ...' for a table), "
                   "'table' or 'json'")


def add_logs(sub: Any) -> None:
    from .containercmds import _add

    p = _add(sub, "logs", cmd_logs, "show a container's output")
    p.add_argument("-f", "--follow", action="store_true", help="follow until it exits")
    p.add_argument("-n", "--tail", default=None, help="only the last N lines ('all')")
    p.add_argument("-t", "--timestamps", action="store_true",
                   help="show times (RFC 3339, nanoseconds, UTC)")
    p.add_argument("--since", help="only from this time (RFC 3339, Unix time, or a "
                   "duration before now: 10m)")
    p.add_argument("--until", help="only up to this time (same forms)")
    p.add_argument("container", metavar="CONTAINER")


def add_inspect(sub: Any, containers_only: bool) -> None:
    from .containercmds import _add

    p = _add(sub, "inspect", cmd_inspect, "show containers' details" if containers_only
             else "show containers' or images' details")
    if containers_only:
        p.set_defaults(type="container")
    else:
        p.add_argument("--type", choices=["container", "image"], default=None)
    p.add_argument("-f", "--format", default=None, help="a Go template ({{.State.Status}}, "
                   "{{json .Config}}) or 'json' (the default)")
    p.add_argument("-s", "--size", action="store_true", help="with SizeRw and SizeRootFs")
    p.add_argument("names", nargs="+", metavar="NAME")


def _register(sub: Any) -> None:
    from .containercmds import _add

    p = _add(sub, "top", cmd_top, "show a container's processes")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="PS OPTIONS")
    p = _add(sub, "port", cmd_port, "show a container's published ports")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")


def register(sub: Any) -> None:
    """top and port, at top level and under ``ocish container``."""
    from . import groups

    _register(sub)
    _register(groups.group(sub, "container", "manage containers"))
