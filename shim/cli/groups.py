"""Command groups (``ocish image ...``, ``ocish system ...``) that several modules add to."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # not typing's: every command imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any


def group(sub: Any, name: str, help_text: str) -> Any:
    """The subcommands of ``ocish NAME``: the group another module made, else a new one."""
    parser = sub.choices.get(name)
    if parser is None:
        parser = sub.add_parser(name, help=help_text, description=help_text[0].upper() +
                                help_text[1:] + ".")
        gsub = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND",
                                     parser_class=type(parser))
        parser.set_defaults(func=lambda a: parser.print_help() or 0)
        return gsub
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise ValueError(f"ocish {name} has no subcommands")
