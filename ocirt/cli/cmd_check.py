"""ocirt check: validate config.json as ``create`` does.

The check is ``create``'s own (:func:`ocirt.spec.load` and
:func:`ocirt.lifecycle.create.validate_config`), not a separate schema validator: a config it
accepts is one ``create`` accepts too (up to what only creating can find: the rootfs, the host's
cgroups and kernel), and one it refuses, ``create`` refuses with the same line.
"""

from __future__ import annotations

import os
import sys

from .. import spec
from ..lifecycle.create import validate_config
from .main import Context

ARGS = "[bundle]"
DESCRIPTION = """Check validates BUNDLE/config.json (default: the current directory) as create
does, and reports the first problem with its JSON pointer, in create's words."""
FLAGS: list = []


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    bundle = args[0] if args else "."
    parsed, _ = spec.load(os.path.abspath(bundle))  # create's path, in create's messages
    validate_config(parsed)
    sys.stdout.write(f"{os.path.join(bundle, 'config.json')}: valid\n")
    return 0
