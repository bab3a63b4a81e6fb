"""Entry point of the ``ocirt`` command."""

import gc
import os
import sys


def main() -> None:
    # A command lives for milliseconds: collecting cycles costs time and, in a forked init,
    # copies every page the collector writes to (charged to the container's memory cgroup).
    gc.disable()
    from .cli.main import main as cli_main

    code = cli_main()
    # Skip the interpreter's teardown (finalising every module and object: ~5 ms); all files
    # are written and closed by now, only the standard streams may hold buffered output.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 1
    os._exit(code)


if __name__ == "__main__":
    main()
