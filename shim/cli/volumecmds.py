"""``ocish volume create|ls|inspect|rm|prune`` (Docker's flags and output)."""

from __future__ import annotations

import argparse
import sys

from ..errors import OcishError
from . import groups
from .containercmds import _each, _storage

TYPE_CHECKING = False  # not typing's: every command imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any

    from ..storage.root import Storage
    from ..volumes.store import Volume


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        if not key:
            raise OcishError(f"invalid {what}: {item!r}: want KEY=VALUE")
        out[key] = value
    return out


def cmd_create(args: argparse.Namespace) -> int:
    """Create a volume (a random name without one) and print its name."""
    from ..volumes import store

    if args.driver != "local":
        raise OcishError(f"volume driver {args.driver!r}: only 'local' is supported")
    st = _storage(args)
    try:
        with store.lock(st):
            vol, _ = store.create(st, args.name, _pairs(args.label, "label"),
                                  _pairs(args.opt, "option"))
    except OcishError as exc:
        exc.status = 1  # (the volume name checks are run's too, where they are 125)
        raise
    sys.stdout.write(vol.name + "\n")
    return 0


def _filters(items: list[str] | None) -> Any:
    """``--filter name=|dangling=|driver=|label=`` as a predicate of (volume, used)."""
    tests = []
    for item in items or []:
        key, _, value = item.partition("=")
        if key == "name":
            tests.append(lambda v, used, s=value: s in v.name)
        elif key == "dangling" and value.lower() in ("true", "1", "false", "0"):
            dangling = value.lower() in ("true", "1")
            tests.append(lambda v, used, d=dangling: used != d)
        elif key == "driver":
            tests.append(lambda v, used, s=value: v.driver == s)
        elif key == "label":
            k, eq, val = value.partition("=")

            def label(v: Volume, used: bool, k: str = k, eq: str = eq, val: str = val) -> bool:
                return k in v.labels and (not eq or v.labels[k] == val)

            tests.append(label)
        else:
            raise OcishError(f"invalid filter '{item}'")
    return lambda v, used: all(t(v, used) for t in tests)


_FIELDS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Mountpoint": "MOUNTPOINT",
           "Scope": "SCOPE", "Labels": "LABELS", "CreatedAt": "CREATED AT"}


def _field(st: Storage, v: Volume, key: str) -> str:
    return {"Name": v.name, "Driver": v.driver, "Mountpoint": v.mountpoint(st),
            "Scope": "local", "CreatedAt": v.created,
            "Labels": ",".join(f"{k}={x}" for k, x in sorted(v.labels.items()))}[key]


def _template(fmt: str) -> tuple[list[str], bool]:
    """A Go-template-style ``--format`` -> its pieces (text, then field, alternately) and
    whether it asks for a table header."""
    import re

    table = fmt.startswith("table")
    fmt = fmt[5:].lstrip() if table else fmt
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    pieces = re.split(r"\{\{\s*\.(\w+)\s*\}\}", fmt)
    for key in pieces[1::2]:
        if key not in _FIELDS:
            raise OcishError(f"template: can't evaluate field {key} in type volume")
    return pieces, table


def cmd_ls(args: argparse.Namespace) -> int:
    """List volumes."""
    from ..volumes import store

    st = _storage(args)
    used = store.users(st)
    keep = _filters(args.filter)
    vols = [v for v in store.all_volumes(st) if keep(v, v.name in used)]
    if args.quiet:
        sys.stdout.write("".join(v.name + "\n" for v in vols))
        return 0
    if args.format == "json":
        from .output import json_lines

        json_lines(sys.stdout, ({"Availability": "N/A", "Driver": v.driver, "Group": "N/A",
                                 "Labels": _field(st, v, "Labels"), "Links": "N/A",
                                 "Mountpoint": v.mountpoint(st), "Name": v.name,
                                 "Scope": "local", "Size": "N/A", "Status": "N/A"}
                                for v in vols))
        return 0
    pieces, header = _template(args.format or "table {{.Driver}}\t{{.Name}}")
    rows = []
    if header:
        rows.append("".join(_FIELDS[p] if i % 2 else p for i, p in enumerate(pieces)))
    for v in vols:
        rows.append("".join(_field(st, v, p) if i % 2 else p for i, p in enumerate(pieces)))
    if header:  # Docker's tabwriter: columns at least 10 wide, 3 spaces apart
        cells = [r.split("\t") for r in rows]
        widths = [max(10, max(len(c[i]) for c in cells if i < len(c)) + 3)
                  for i in range(max(len(c) for c in cells))]
        rows = ["".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()
                for r in cells]
    sys.stdout.write("".join(r + "\n" for r in rows))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Show volumes' details as JSON."""
    from ..volumes import store
    from .output import inspect_json

    st = _storage(args)
    return inspect_json(sys.stdout, args.names,
                        [lambda n: store.inspect(st, store.find(st, n))], "No such volume")


def cmd_rm(args: argparse.Namespace) -> int:
    """Remove volumes (never one a container uses; -f: no error for missing ones)."""
    from ..volumes import store

    st = _storage(args)

    def one(name: str) -> None:
        with store.lock(st):
            if store.get(st, name) is None:
                if args.force:  # (its name is printed, as Docker's)
                    return
                raise OcishError(f"get {name}: no such volume")
            store.remove(st, name)

    return _each(args.names, one)


def cmd_prune(args: argparse.Namespace) -> int:
    """Remove the volumes no container uses (anonymous ones; -a: all)."""
    from ..units import human_size
    from ..volumes import store

    if not args.force:
        which = "all local volumes" if args.all else "anonymous local volumes"
        sys.stdout.write(f"WARNING! This will remove {which} not used by at least one "
                         "container.\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    gone, freed = store.prune(_storage(args), args.all)
    if gone:
        sys.stdout.write("Deleted Volumes:\n" + "".join(n + "\n" for n in gone) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(freed)}\n")
    return 0


def register(sub: Any) -> None:
    """Add ``ocish volume ...``."""
    vsub = groups.group(sub, "volume", "manage volumes")

    def add(name: str, func: Any, help_text: str) -> Any:
        p = vsub.add_parser(name, help=help_text, description=help_text[0].upper() +
                            help_text[1:] + ".")
        p.set_defaults(func=func)
        return p

    p = add("create", cmd_create, "create a volume")
    p.add_argument("-d", "--driver", default="local", help="the driver (only 'local')")
    p.add_argument("-o", "--opt", action="append", metavar="KEY=VALUE",
                   help="a driver option: type=tmpfs|bind|none, device=, o=")
    p.add_argument("--label", action="append", metavar="KEY=VALUE", help="a label")
    p.add_argument("name", nargs="?", metavar="VOLUME")
    p = add("ls", cmd_ls, "list volumes")
    p.add_argument("-q", "--quiet", action="store_true", help="only names")
    p.add_argument("-f", "--filter", action="append", metavar="KEY=VALUE",
                   help="name=, dangling=true|false, driver=, label=")
    p.add_argument("--format", default=None, help="a Go template ({{.Name}}...), 'table "
                   "...' or 'json'")
    p = add("inspect", cmd_inspect, "show volumes' details")
    p.add_argument("-f", "--format", default=None, help="'json' (the default)")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p = add("rm", cmd_rm, "remove volumes")
    p.add_argument("-f", "--force", action="store_true", help="no error for missing volumes")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p = add("prune", cmd_prune, "remove unused volumes")
    p.add_argument("-a", "--all", action="store_true", help="named volumes too, not only "
                   "anonymous ones")
    p.add_argument("-f", "--force", action="store_true", help="do not ask")
