"""Archive commands: save, load, import (top level and under ``image``), and ``image export``
(an image's flattened root filesystem: ocish has no containers to ``export`` yet)."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager

from ..errors import OcishError
from .groups import group

TYPE_CHECKING = False  # not typing's: typing costs every command ms
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO, Any

    from ..storage.root import Storage

# the modules doing the work are imported by the command that needs them, not by every command
FORMATS = ("docker-archive", "oci-archive")  # what save.save takes
TERMINAL = "cowardly refusing to save to a terminal. Use the -o flag or redirect"


def _storage(args: argparse.Namespace) -> Storage:
    from ..storage.root import Storage, default_root

    return Storage(args.root or default_root())


@contextmanager
def output(path: str | None) -> Iterator[IO[bytes]]:
    """stdout (never a terminal), or *path*, written whole or not at all."""
    if not path or path == "-":
        if sys.stdout.isatty():
            raise OcishError(TERMINAL)
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    import tempfile

    target = os.path.abspath(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".part",
                               dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.rename(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def _input(st: Storage, path: str | None) -> Iterator[IO[bytes]]:
    """*path*, or stdin (spooled to an unlinked file in the storage root unless seekable)."""
    if path and path != "-":
        with open(path, "rb") as f:
            yield f
        return
    if sys.stdin.isatty():
        raise OcishError("requested load from stdin, but stdin is empty")
    stdin = sys.stdin.buffer
    if stdin.seekable():
        yield stdin
        return
    import tempfile

    with tempfile.TemporaryFile(dir=st.root) as tmp:
        while chunk := stdin.read(1 << 20):
            tmp.write(chunk)
        tmp.seek(0)
        yield tmp


def cmd_save(args: argparse.Namespace) -> int:
    """Save images to a tar archive."""
    from ..images.save import save

    st = _storage(args)
    with output(args.output) as out:
        save(st, args.images, out, args.format)
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    """Load images from a tar archive."""
    from ..images import reference
    from ..images.load import load

    st = _storage(args)
    with _input(st, args.input) as f:
        loaded = load(st, f)
    for img in loaded:
        for name, tag in img.tags:
            sys.stdout.write(f"Loaded image: {reference.familiar(name)}:{tag}\n")
        if not img.tags:
            sys.stdout.write(f"Loaded image ID: {img.image_id}\n")
    return 0


def repository_tags(text: str | None) -> list[tuple[str, str]]:
    """The (name, tag) a REPOSITORY[:TAG] argument names (none if not given)."""
    from ..images import reference

    if not text:
        return []
    ref = reference.parse(text)
    if ref.digest or not ref.tag:
        raise OcishError(f"{text}: want REPOSITORY[:TAG]")
    return [(ref.name, ref.tag)]


def cmd_import(args: argparse.Namespace) -> int:
    """Import a rootfs tarball as a one-layer image."""
    import re

    from ..images import platforms
    from ..images.importer import import_rootfs

    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", args.file):
        raise OcishError(f"{args.file}: importing from a URL is not supported (give a file "
                         "or -)")
    tags = repository_tags(args.repository)
    plat = platforms.parse(args.platform) if args.platform else platforms.host()
    st = _storage(args)
    if args.file == "-":
        image_id = import_rootfs(st, sys.stdin.buffer, "-", tags, args.change, args.message,
                                 plat)
    else:
        with open(args.file, "rb") as f:
            image_id = import_rootfs(st, f, args.file, tags, args.change, args.message, plat)
    sys.stdout.write(image_id + "\n")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export an image's root filesystem as a tar archive."""
    from ..images import records
    from ..images.export import export

    st = _storage(args)
    image_id = records.resolve(st, args.image)
    with output(args.output) as out:
        export(st, image_id, out)
    return 0


def _add_save(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="save images to a tar archive (stdout by default)",
                       description="Save one or more images to a tar archive (stdout by "
                       "default). IMAGE is a name:tag, a repository (all its tags), a "
                       "name@digest or an image ID.")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    p.add_argument("--format", choices=FORMATS, default="docker-archive",
                   help="docker-archive (default: what docker save writes) or oci-archive "
                        "(an OCI image layout, as podman save --format oci-archive)")
    p.set_defaults(func=cmd_save)


def _add_load(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="load images from a tar archive or stdin",
                       description="Load images from a docker-archive or oci-archive (plain "
                       "or compressed), from a file or stdin.")
    p.add_argument("-i", "--input", metavar="FILE", help="read from FILE, not stdin")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="accepted for Docker's sake (ocish shows no progress anyway)")
    p.set_defaults(func=cmd_load)


def _add_import(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="import a rootfs tarball to create an image",
                       description="Create a one-layer image from a tarball of a root "
                       "filesystem (plain, gzip, bzip2, xz or zstd; - is stdin).")
    p.add_argument("file", metavar="FILE|-")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-c", "--change", action="append", default=[], metavar="INSTRUCTION",
                   help="apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, "
                        "ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR); repeatable")
    p.add_argument("-m", "--message", default="", help="the commit message of the history")
    p.add_argument("--platform", help="os/arch[/variant] of the image (default: the host's)")
    p.set_defaults(func=cmd_import)


def _add_export(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="export an image's root filesystem as a tar archive",
                       description="Write the root filesystem of an image, its layers merged "
                       "(whiteouts applied), as a tar archive (stdout by default); ocish "
                       "import reads it back.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    p.set_defaults(func=cmd_export)


def register(sub: Any) -> None:
    """Add the commands at top level (Docker's aliases) and under ``image``."""
    _add_save(sub, "save")
    _add_load(sub, "load")
    _add_import(sub, "import")
    isub = group(sub, "image", "manage images")
    _add_save(isub, "save")
    _add_load(isub, "load")
    _add_import(isub, "import")
    _add_export(isub, "export")
