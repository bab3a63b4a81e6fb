"""The ``ocish`` command line: argument parsing, dispatch and error reporting.

Every command's parser is made (so ``--help`` lists them all), but the modules that do the
work are imported by the handler of the command that runs: the cli modules import only
argparse-level things at the top, so ``ocish images`` never loads the HTTP client and
``ocish pull`` never loads the archive code.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import OcishError
from . import (
    archivecmds,
    containercmds,
    eventcmds,
    filecmds,
    imagecmds,
    interactcmds,
    lifecyclecmds,
    misc,
    observecmds,
    registrycmds,
    updatecmds,
    usagecmds,
    volumecmds,
)

TYPE_CHECKING = False  # not typing's: typing costs every command ms
if TYPE_CHECKING:
    from typing import NoReturn


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one ``ocish: ...`` line."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"ocish: {message} (see '{self.prog} --help')\n")
        # Docker's run and create exit 125 for any error of their own, bad flags included
        sys.exit(125 if self.prog.split()[-1] in ("run", "create") else 2)


def _cache_argparse_gettext() -> None:
    """argparse translates the same few strings for each of the ~40 parsers of the tree, and
    gettext looks for message catalogs on disk every time (8 stat calls with LANG=C.UTF-8):
    ~8 ms of every command. Remember the answers, which cannot change while ocish runs."""
    gettext = getattr(argparse, "_", None)
    if callable(gettext) and not hasattr(gettext, "cache_info"):
        import functools

        argparse._ = functools.lru_cache(maxsize=None)(gettext)  # type: ignore[attr-defined]


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    _cache_argparse_gettext()
    p = _Parser(prog="ocish", description="A Docker-style engine driving a runc-compatible "
                "runtime through its command line.")
    p.add_argument("--root", default=None,
                   help="storage root (default: $OCISH_ROOT or /var/lib/ocish)")
    p.add_argument("--runtime", default=None, help="the runtime binary (default: ocirt)")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    misc.register(sub)
    registrycmds.register(sub, imagecmds.register(sub))
    archivecmds.register(sub)
    usagecmds.register(sub)
    containercmds.register(sub)
    filecmds.register(sub)
    observecmds.register(sub)
    updatecmds.register(sub)
    volumecmds.register(sub)
    interactcmds.register(sub)
    lifecyclecmds.register(sub)
    eventcmds.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one ocish command; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if extra:  # reported by the parser of the command they were given to (its exit status)
        func = getattr(args, "func", None)
        prog = "ocish run" if func in (containercmds.cmd_run, containercmds.cmd_create) \
            else "ocish"
        _Parser(prog=prog).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.version:
        args.command, args.func = "version", misc.cmd_version
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except OcishError as exc:
        sys.stderr.write(f"ocish: {exc}\n")
        return exc.status
    except KeyboardInterrupt:
        sys.stderr.write("ocish: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"ocish: {exc.strerror or exc}{where}\n")
    except Exception as exc:  # noqa: BLE001 - the promise is: never a traceback
        sqlite3 = sys.modules.get("sqlite3")  # loaded by the commands that use the database
        if sqlite3 is not None and isinstance(exc, sqlite3.Error):
            sys.stderr.write(f"ocish: database: {exc}\n")
            return 1
        if os.environ.get("OCISH_DEBUG"):
            raise
        sys.stderr.write(f"ocish: internal error: {type(exc).__name__}: {exc}\n")
    return 1
