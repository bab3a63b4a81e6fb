"""Image commands: pull, images (image ls), tag, rmi (image rm), image inspect.

Every command imports this module to make its parser: what the commands do is imported by
their handlers.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import OcishError
from . import regopts

TYPE_CHECKING = False  # not typing's: `ocish images` imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any

    from ..images import records
    from ..storage.root import Storage


def _storage(args: argparse.Namespace) -> Storage:
    from ..storage.root import Storage, default_root

    return Storage(args.root or default_root())


def image_event(st: Storage, action: str, ref: str) -> None:
    """An image event in the event log (actions: pull, tag, and rmi's Untagged/Deleted)."""
    from ..events import log

    log.image(st, {"Untagged": "untag", "Deleted": "delete"}.get(action, action), ref)


def cmd_pull(args: argparse.Namespace) -> int:
    """Pull an image from a registry."""
    from ..images import platforms, reference
    from ..images.pull import pull

    ref = reference.parse(args.ref)
    want = platforms.parse(args.platform) if args.platform else platforms.host()
    client = regopts.client(args, ref.registry, ref.repository)
    st = _storage(args)
    pull(st, client, ref, want, out=None if args.quiet else sys.stdout)
    image_event(st, "pull", str(ref))
    sys.stdout.write(f"{ref}\n")
    return 0


def _short(image_id: str, no_trunc: bool) -> str:
    return image_id if no_trunc else image_id.split(":", 1)[-1][:12]


def _rows(imgs: list[records.Image]) -> list[dict[str, str]]:
    from ..images import reference
    from ..units import human_size
    from .output import since

    rows: list[dict[str, str]] = []
    for img in imgs:
        digests = dict(img.digests)
        base = {"ID": img.id, "CreatedAt": img.created, "CreatedSince": since(img.created),
                "Size": human_size(img.size), "Containers": "N/A", "SharedSize": "N/A",
                "UniqueSize": "N/A", "VirtualSize": human_size(img.size)}
        if img.tags:
            for name, t in img.tags:
                rows.append({**base, "Repository": reference.familiar(name), "Tag": t,
                             "Digest": digests.get(name, "<none>"), "_name": name})
        elif img.digests:
            for name, d in img.digests:
                rows.append({**base, "Repository": reference.familiar(name), "Tag": "<none>",
                             "Digest": d, "_name": name})
        else:
            rows.append({**base, "Repository": "<none>", "Tag": "<none>", "Digest": "<none>",
                         "_name": ""})
    return rows


def cmd_images(args: argparse.Namespace) -> int:
    """List images."""
    from ..images import records, reference
    from .output import json_lines, table

    rows = _rows(records.list_images(_storage(args)))
    if args.filter:
        name, t = args.filter, ""
        if name.rfind(":") > name.rfind("/"):
            name, t = name[:name.rfind(":")], name[name.rfind(":") + 1:]
        full = reference.parse(name).name if name else ""
        rows = [r for r in rows if r["_name"] in (full, name) and (not t or r["Tag"] == t)]
    if args.quiet:
        seen: list[str] = []
        for r in rows:
            short = _short(r["ID"], args.no_trunc)
            if short not in seen:
                seen.append(short)
        sys.stdout.write("".join(s + "\n" for s in seen))
        return 0
    if args.format == "json":
        json_lines(sys.stdout, ({**{k: v for k, v in r.items() if not k.startswith("_")},
                                 "ID": _short(r["ID"], args.no_trunc)} for r in rows))
        return 0
    if args.format not in ("table", None):
        raise OcishError(f"--format {args.format!r}: only 'table' and 'json' are supported")
    header = ["REPOSITORY", "TAG"] + (["DIGEST"] if args.digests else []) + \
        ["IMAGE ID", "CREATED", "SIZE"]
    body = [[r["Repository"], r["Tag"]] + ([r["Digest"]] if args.digests else []) +
            [_short(r["ID"], args.no_trunc), r["CreatedSince"], r["Size"]] for r in rows]
    table(sys.stdout, header, body)
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    """Create a tag that refers to an image."""
    from ..images import records

    st = _storage(args)
    records.tag(st, args.source, args.target)
    image_event(st, "tag", args.target)
    return 0


def cmd_rmi(args: argparse.Namespace) -> int:
    """Remove images; blobs and snapshots nothing uses any more go with them."""
    from ..images import records

    st = _storage(args)
    failed = 0
    for ref in args.refs:
        try:
            for line in records.remove(st, ref, force=args.force):
                sys.stdout.write(line + "\n")
                image_event(st, *line.split(": ", 1))
        except OcishError as exc:
            sys.stderr.write(f"ocish: {exc}\n")
            failed += 1
    return 1 if failed else 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Show an image's details as JSON."""
    if args.format not in (None, "json"):
        raise OcishError(f"--format {args.format!r}: only 'json' is supported")
    from ..images import records
    from .output import inspect_json

    st = _storage(args)
    return inspect_json(sys.stdout, args.refs,
                        [lambda ref: records.inspect(st, records.resolve(st, ref))],
                        "No such image")


def _add_pull(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="pull an image from a registry",
                       description="Pull an image (REF: [REGISTRY/]REPO[:TAG|@DIGEST]).")
    p.add_argument("ref", metavar="REF")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image name")
    p.add_argument("--platform", help="os/arch[/variant] (default: the host's)")
    regopts.add_options(p)
    p.set_defaults(func=cmd_pull)


def _add_images(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="list images", description="List images.")
    p.add_argument("filter", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("--no-trunc", action="store_true", help="full image IDs")
    p.add_argument("--format", choices=["table", "json"], default=None,
                   help="'table' (default) or 'json' (one object per line)")
    p.set_defaults(func=cmd_images)


def _add_tag(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="create a tag TARGET that refers to SOURCE",
                       description="Create a tag TARGET that refers to the image SOURCE.")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("target", metavar="TARGET")
    p.set_defaults(func=cmd_tag)


def _add_rmi(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="remove images",
                       description="Remove images (by name, name@digest or ID) and the blobs "
                                   "and snapshots nothing else uses.")
    p.add_argument("refs", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true",
                   help="remove an image ID even if several repositories name it")
    p.set_defaults(func=cmd_rmi)


def _add_inspect(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="show images' details",
                       description="Show the details of images as a JSON array.")
    p.add_argument("refs", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--format", default=None, help="'json' (the default)")
    p.set_defaults(func=cmd_inspect)


def register(sub: Any) -> Any:
    """Add the image commands, at top level (Docker's aliases) and under ``image``; returns
    the ``image`` subcommands, for other modules to add to."""
    _add_pull(sub, "pull")
    _add_images(sub, "images")
    _add_tag(sub, "tag")
    _add_rmi(sub, "rmi")
    img = sub.add_parser("image", help="manage images", description="Manage images.")
    isub = img.add_subparsers(dest="image_command", metavar="COMMAND",
                              parser_class=type(img))
    _add_pull(isub, "pull")
    _add_images(isub, "ls")
    _add_tag(isub, "tag")
    _add_rmi(isub, "rm")
    _add_inspect(isub, "inspect")
    img.set_defaults(func=lambda a: img.print_help() or 0)
    return isub
