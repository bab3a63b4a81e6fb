"""Entry point of the ``ocish`` command.

ocish drives a runc-compatible runtime (ocirt by default) only through its command line, as
podman does. See shim/cli for the commands.
"""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
