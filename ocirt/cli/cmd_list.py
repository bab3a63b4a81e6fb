"""ocirt list."""

from __future__ import annotations

import os
import sys

from .. import jsonio
from ..errors import UsageError
from .flags import BOOL, STR, Flag
from .main import Context

FLAGS = [
    Flag("format,f", STR, "table", "select one of: table or json"),
    Flag("quiet,q", BOOL, help="display only container IDs"),
]


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    from ..lifecycle.query import list_all

    if ctx.root_given and not os.path.isdir(ctx.root):
        raise UsageError(f"stat {ctx.root}: no such file or directory")
    docs = list_all(ctx.store())
    if opts["quiet"]:
        sys.stdout.write("".join(d["id"] + "\n" for d in docs))
        return 0
    if opts["format"] == "json":
        sys.stdout.write(jsonio.dumps(docs or None, compact=True) + "\n")
        return 0
    if opts["format"] != "table":
        raise UsageError(f"invalid format option: {opts['format']}")
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(d["id"], str(d["pid"]), d["status"], d["bundle"], d["created"], d["owner"])
             for d in docs]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        sys.stdout.write("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                         + "\n")
    return 0
