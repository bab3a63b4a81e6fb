"""ocirt ps: the container's processes, as JSON pids or the host ps's table rows."""

from __future__ import annotations

import sys

from .. import jsonio
from ..errors import OcirtError, UsageError
from .flags import STR, Flag
from .main import Context

ARGS = "<container-id> [ps options]"
STOP_AT_POSITIONAL = True
FLAGS = [Flag("format,f", STR, "table", "select one of: table or json")]


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    if not args:
        raise UsageError(f"requires at least 1 argument: {ARGS}")
    from ..lifecycle.pause import pids

    found = pids(ctx.store(), args[0])
    if opts["format"] == "json":
        sys.stdout.write(jsonio.dumps(found) + "\n")
        return 0
    if opts["format"] != "table":
        raise UsageError(f"invalid format option: {opts['format']}")
    import subprocess

    ps_args = " ".join(args[1:]).split() or ["-ef"]
    try:
        out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise OcirtError(f"ps: {exc}") from None
    lines = out.splitlines()
    if not lines:
        return 0
    header = lines[0]
    try:
        column = header.split().index("PID")
    except ValueError:
        raise OcirtError("couldn't find PID field in ps output") from None
    wanted = set(found)
    sys.stdout.write(header + "\n")
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            sys.stdout.write(line + "\n")
    return 0
