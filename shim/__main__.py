"""Entry point of the ``ocish`` command.

ocish drives a runc-compatible runtime (ocirt by default) only through its command line, as
podman does; images, storage, networking and builds arrive with their own issues.
"""

from __future__ import annotations

import os
import sys

from . import __version__

USAGE = """Usage: ocish [--runtime PATH] COMMAND

Commands:
  version    print the version of ocish and of the runtime it drives
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    sibling = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "ocirt")
    runtime = sibling if os.path.exists(sibling) else "ocirt"
    if len(args) >= 2 and args[0] == "--runtime":
        runtime, args = args[1], args[2:]
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    if args[0] in ("version", "--version"):
        import subprocess

        sys.stdout.write(f"ocish version {__version__}\n")
        try:
            out = subprocess.run([runtime, "--version"], capture_output=True, text=True,
                                 timeout=10)
            sys.stdout.write(out.stdout)
        except OSError as exc:
            sys.stderr.write(f"ocish: runtime {runtime}: {exc.strerror}\n")
            return 1
        return 0
    sys.stderr.write(f"ocish: unknown command {args[0]!r}; see 'ocish --help'\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
