"""Commands about what images hold and take: history (``image history``), ``image prune``
and ``system df``."""

from __future__ import annotations

import argparse
import sys

from .groups import group
from .regopts import parse_bool

TYPE_CHECKING = False  # not typing's: typing costs every command ms
if TYPE_CHECKING:
    from typing import Any

    from ..images import usage
    from ..storage.root import Storage

# what the commands do is imported by their handlers: every command imports this module
CREATED_BY_WIDTH = 45


def _storage(args: argparse.Namespace) -> Storage:
    from ..storage.root import Storage, default_root

    return Storage(args.root or default_root())


def _short(image_id: str, no_trunc: bool) -> str:
    from ..images.history import MISSING

    return image_id if no_trunc or image_id == MISSING else image_id.split(":", 1)[-1][:12]


def _ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _created_at(created: str) -> str:
    """RFC 3339 to the second, as Docker prints it."""
    import datetime

    from .output import parse_time

    ts = parse_time(created)
    if ts is None:
        return "N/A"
    return datetime.datetime.fromtimestamp(int(ts), datetime.UTC).isoformat().replace(
        "+00:00", "Z")


def cmd_history(args: argparse.Namespace) -> int:
    """Show the history of an image."""
    from ..images import records
    from ..images.history import history
    from ..units import human_size
    from .output import json_lines, since, table

    st = _storage(args)
    rows = history(st, records.resolve(st, args.image))
    if args.quiet:
        sys.stdout.write("".join(_short(r.id, args.no_trunc) + "\n" for r in rows))
        return 0
    shown = []
    for r in rows:
        created_by = r.created_by.replace("\t", " ")
        shown.append({
            "ID": _short(r.id, args.no_trunc),
            "CreatedAt": _created_at(r.created), "CreatedSince": since(r.created),
            "CreatedBy": created_by if args.no_trunc else _ellipsis(created_by,
                                                                    CREATED_BY_WIDTH),
            "Size": human_size(r.size) if args.human else str(r.size),
            "Comment": r.comment})
    if args.format == "json":
        json_lines(sys.stdout, shown)
        return 0
    table(sys.stdout, ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
          [[s["ID"], s["CreatedSince"] if args.human else s["CreatedAt"], s["CreatedBy"],
            s["Size"], s["Comment"]] for s in shown])
    return 0


def _confirm(warning: str) -> bool:
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline() if not sys.stdin.closed else ""
    return answer.strip().lower() in ("y", "yes")


def cmd_prune(args: argparse.Namespace) -> int:
    """Remove unused images."""
    from ..images import usage
    from ..units import human_size

    st = _storage(args)
    if not args.force:
        what = ("all images without at least one container associated to them" if args.all
                else "all dangling images")
        if not _confirm(f"WARNING! This will remove {what}."):
            return 0  # as Docker's CLI: nothing done, nothing more said
    done = usage.prune(st, args.all)
    if done.lines:
        sys.stdout.write("Deleted Images:\n" + "".join(line + "\n" for line in done.lines)
                         + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(done.reclaimed)}\n")
    return 0


def _reclaimable(reclaimable: int, total: int) -> str:
    from ..units import human_size

    if total <= 0:
        return human_size(reclaimable)
    return f"{human_size(reclaimable)} ({reclaimable * 100 // total}%)"


def _df_verbose(u: usage.Usage) -> None:
    from ..images import reference
    from ..units import human_size
    from .output import since, table

    rows = []
    for iu in u.images:
        img = iu.image
        names = [(reference.familiar(n), t) for n, t in img.tags] or \
            [(reference.familiar(n), "<none>") for n, _ in img.digests] or [("<none>", "<none>")]
        rows += [[repo, tag, _short(img.id, False), since(img.created), human_size(iu.size),
                  human_size(iu.shared), human_size(iu.unique), str(iu.containers)]
                 for repo, tag in names]
    sys.stdout.write("Images space usage:\n\n")
    table(sys.stdout, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
                       "UNIQUE SIZE", "CONTAINERS"], rows)
    sys.stdout.write("\nContainers space usage:\n\n")
    table(sys.stdout, ["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED",
                       "STATUS", "NAMES"], [])
    sys.stdout.write("\nLocal Volumes space usage:\n\n")
    table(sys.stdout, ["VOLUME NAME", "LINKS", "SIZE"], [])
    sys.stdout.write("\nBuild cache usage: 0B\n")


def cmd_df(args: argparse.Namespace) -> int:
    """Show disk usage: images (containers, volumes and build cache are not there yet)."""
    from ..images import usage
    from ..units import human_size
    from .output import json_lines, table

    u = usage.usage(_storage(args))
    if args.verbose and args.format != "json":
        _df_verbose(u)
        return 0
    rows = [
        {"Type": "Images", "TotalCount": str(len(u.images)), "Active": str(u.active),
         "Size": human_size(u.size), "Reclaimable": _reclaimable(u.reclaimable, u.size)},
        {"Type": "Containers", "TotalCount": "0", "Active": "0", "Size": "0B",
         "Reclaimable": "0B"},
        {"Type": "Local Volumes", "TotalCount": "0", "Active": "0", "Size": "0B",
         "Reclaimable": "0B"},
        {"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B",
         "Reclaimable": "0B"},
    ]
    if args.format == "json":
        json_lines(sys.stdout, rows)
        return 0
    table(sys.stdout, ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
          [[r["Type"], r["TotalCount"], r["Active"], r["Size"], r["Reclaimable"]]
           for r in rows])
    return 0


def _add_history(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="show the history of an image",
                       description="Show the history of an image, newest first.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("-H", "--human", type=parse_bool, default=True, metavar="BOOL",
                   help="sizes and dates in human-readable form (default true)")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate the output")
    p.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
    p.add_argument("--format", choices=["table", "json"], default=None,
                   help="'table' (default) or 'json' (one object per line)")
    p.set_defaults(func=cmd_history)


def _add_prune(sub: Any) -> None:
    p = sub.add_parser("prune", help="remove unused images",
                       description="Remove dangling images (no tag, no digest), or with -a "
                       "every image no container uses (ocish has no containers yet: all), "
                       "then the blobs and snapshots nothing uses any more.")
    p.add_argument("-a", "--all", action="store_true",
                   help="remove all unused images, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.set_defaults(func=cmd_prune)


def _add_df(sub: Any) -> None:
    p = sub.add_parser("df", help="show disk usage",
                       description="Show the disk usage of images (sizes as 'images' shows "
                       "them, shared layers counted once); containers, local volumes and the "
                       "build cache do not exist in ocish yet and show as zero.")
    p.add_argument("-v", "--verbose", action="store_true", help="per-image detail")
    p.add_argument("--format", choices=["table", "json"], default=None,
                   help="'table' (default) or 'json' (one object per line)")
    p.set_defaults(func=cmd_df)


def register(sub: Any) -> None:
    """Add history (top level and under ``image``), ``image prune`` and ``system df``."""
    _add_history(sub, "history")
    isub = group(sub, "image", "manage images")
    _add_history(isub, "history")
    _add_prune(isub)
    _add_df(group(sub, "system", "manage ocish"))
