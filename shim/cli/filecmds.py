"""Commands on a container's files: cp, diff, commit, export (and the same under
``ocish container``), with Docker's arguments and output."""

from __future__ import annotations

import argparse
import sys

from ..errors import OcishError
from . import groups
from .regopts import parse_bool

TYPE_CHECKING = False  # not typing's: every command imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any

    from ..storage.root import Storage


def _storage(args: argparse.Namespace) -> Storage:
    from ..storage.root import Storage, default_root

    return Storage(args.root or default_root())


def _split(arg: str) -> tuple[str, str]:
    """Docker's rule: ``CONTAINER:PATH``, unless the argument is an absolute or ``.``-led
    local path (a local name with a colon: ``./a:b``); ("", path) for a local one."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return "", arg
    name, _, path = arg.partition(":")
    return name, path


def cmd_cp(args: argparse.Namespace) -> int:
    """Copy files between a container and the host."""
    from ..containers import files

    src_ctr, src = _split(args.src)
    dst_ctr, dst = _split(args.dst)
    if src_ctr and dst_ctr:
        raise OcishError("copying between containers is not supported")
    if not src_ctr and not dst_ctr:
        raise OcishError("must specify at least one container source")
    st = _storage(args)
    if src_ctr:
        if not src:
            raise OcishError(f"{args.src}: the path in the container is empty")
        if dst == "-" and sys.stdout.isatty():
            raise OcishError("cannot copy a tar stream to a terminal: redirect stdout")
        files.cp_out(st, src_ctr, src, dst, args.follow_link)
    else:
        if not dst:
            raise OcishError(f"{args.dst}: the path in the container is empty")
        if src == "-" and sys.stdin.isatty():
            raise OcishError("cannot read a tar stream from a terminal: redirect stdin")
        files.cp_in(st, src, dst_ctr, dst, args.follow_link, args.archive)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Show the changes to a container's filesystem."""
    from ..containers import layer, records

    st = _storage(args)
    for kind, path in layer.changes(st, records.find(st, args.container)):
        sys.stdout.write(f"{kind} {path}\n")
    return 0


def cmd_commit(args: argparse.Namespace) -> int:
    """Make a new image from a container's changes."""
    from ..containers.commit import commit
    from .archivecmds import repository_tags

    st = _storage(args)
    image_id = commit(st, args.container, repository_tags(args.repository), args.author,
                      args.message, args.change, args.pause)
    sys.stdout.write(image_id + "\n")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a container's filesystem as a tar archive."""
    from ..containers import files
    from .archivecmds import output

    st = _storage(args)
    with output(args.output) as out:
        files.export(st, args.container, out)  # type: ignore[arg-type]
    return 0


def _register(sub: Any) -> None:
    p = sub.add_parser("cp", help="copy files between a container and the host",
                       description="Copy files between a container and the host: "
                       "CONTAINER:SRC DEST or SRC CONTAINER:DEST; - for a tar stream on "
                       "stdout (DEST) or stdin (SRC).")
    p.add_argument("-a", "--archive", action="store_true",
                   help="keep the files' uid/gid (else they are root's in the container)")
    p.add_argument("-L", "--follow-link", action="store_true",
                   help="follow a symlink at the end of SRC")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DEST")
    p.set_defaults(func=cmd_cp)
    p = sub.add_parser("diff", help="show the changes to a container's filesystem",
                       description="List the files a container added (A), changed (C) and "
                       "deleted (D).")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_diff)
    p = sub.add_parser("commit", help="make a new image from a container's changes",
                       description="Make a new image from a container's changes.")
    p.add_argument("-a", "--author", default="", help="the author (\"Name <email>\")")
    p.add_argument("-m", "--message", default="", help="the commit message")
    p.add_argument("-c", "--change", action="append", default=[], metavar="INSTRUCTION",
                   help="apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, "
                        "ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR); repeatable")
    p.add_argument("-p", "--pause", type=parse_bool, nargs="?", const=True, default=True,
                   metavar="BOOL", help="pause the container meanwhile (default true)")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.set_defaults(func=cmd_commit)
    p = sub.add_parser("export", help="export a container's filesystem as a tar archive",
                       description="Write a container's whole filesystem as a tar archive "
                       "(stdout by default).")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_export)


def register(sub: Any) -> None:
    """Add the commands at top level and under ``ocish container``."""
    _register(sub)
    _register(groups.group(sub, "container", "manage containers"))
