"""``ocish version``."""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__

TYPE_CHECKING = False  # not typing's: every command imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any


def runtime_path(args: argparse.Namespace) -> str:
    """--runtime, else the ocirt beside ocish, else ocirt on $PATH."""
    if args.runtime:
        return str(args.runtime)
    sibling = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "ocirt")
    return sibling if os.path.exists(sibling) else "ocirt"


def cmd_version(args: argparse.Namespace) -> int:
    """Print the version of ocish and of the runtime it drives."""
    sys.stdout.write(f"ocish version {__version__}\n")
    runtime = runtime_path(args)
    import subprocess

    try:
        out = subprocess.run([runtime, "--version"], capture_output=True, text=True, timeout=10)
    except OSError as exc:
        sys.stderr.write(f"ocish: runtime {runtime}: {exc.strerror}\n")
        return 1
    sys.stdout.write(out.stdout)
    return 0


def register(sub: Any) -> None:
    """Add the command to the parser."""
    p = sub.add_parser("version", help="print the version of ocish and of its runtime",
                       description="Print the version of ocish and of the runtime it drives.")
    p.set_defaults(func=cmd_version)
