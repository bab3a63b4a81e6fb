"""Entry point of the ``ocirt`` command."""

import sys


def main() -> None:
    from .cli.main import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()
