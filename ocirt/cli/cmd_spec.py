"""ocirt spec."""

from __future__ import annotations

import json
import os

from ..errors import OcirtError, from_oserror
from .flags import BOOL, STR, Flag
from .main import Context

DESCRIPTION = """The spec command creates the new specification file named "config.json" for
the bundle, as a starting point to edit."""
FLAGS = [
    Flag("bundle,b", STR, "", "path to the root of the bundle directory"),
    Flag("rootless", BOOL, help="generate a configuration for a rootless container"),
]


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    from ..defaults import default_spec

    path = os.path.join(str(opts["bundle"]) or ".", "config.json")
    if os.path.lexists(path):
        raise OcirtError("File config.json exists. Remove it first")
    data = json.dumps(default_spec(bool(opts["rootless"])), indent="\t") + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise from_oserror(f"open {path}", exc) from None
    with os.fdopen(fd, "w") as f:
        f.write(data)
    return 0
