"""A parser with the semantics of Go's flag package, which runc's callers are written against.

``-name`` and ``--name`` are the same flag; values come as ``--name=value`` or ``--name value``;
a boolean takes no separate value (``--name=false`` is allowed); parsing may stop at the first
positional argument (runc's ``exec``, ``kill`` and ``ps``), and ``--`` always ends the flags.
"""

from __future__ import annotations

from ..errors import UsageError

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

BOOL, STR, INT, LIST = "bool", "str", "int", "list"


class Flag:
    __slots__ = ("names", "kind", "default", "help")

    def __init__(self, names: str, kind: str = BOOL, default: Any = None, help: str = "") -> None:
        self.names = tuple(names.split(","))
        self.kind = kind
        self.default = [] if kind == LIST else (False if kind == BOOL and default is None
                                                 else default)
        self.help = help

    @property
    def key(self) -> str:
        return self.names[0].replace("-", "_")

    def usage(self) -> str:
        names = ", ".join(("-" if len(n) == 1 else "--") + n for n in self.names)
        if self.kind != BOOL:
            names += " value"
        return f"   {names:<30} {self.help}"


def parse(flags: list[Flag], argv: list[str], stop_at_positional: bool = False,
          stop_at_first: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Return (values by flag key, positional arguments).

    ``stop_at_first``: stop at the first positional (used for the global flags, where it is the
    command). ``stop_at_positional``: the same for a command's own arguments.
    """
    by_name = {name: f for f in flags for name in f.names}
    values: dict[str, Any] = {f.key: (list(f.default) if isinstance(f.default, list)
                                      else f.default) for f in flags}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            if stop_at_first or stop_at_positional:
                positional.extend(argv[i:])
                break
            continue
        name, has_value, value = arg.lstrip("-").partition("=")
        flag = by_name.get(name)
        if flag is None or arg.startswith("---"):
            raise UsageError(f"flag provided but not defined: -{name}")
        if flag.kind == BOOL:
            if not has_value:
                values[flag.key] = True
            elif value.lower() in ("1", "t", "true"):
                values[flag.key] = True
            elif value.lower() in ("0", "f", "false"):
                values[flag.key] = False
            else:
                raise UsageError(f"invalid boolean value {value!r} for -{name}")
            continue
        if not has_value:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        if flag.kind == INT:
            try:
                values[flag.key] = int(value)
            except ValueError:
                raise UsageError(f"invalid value {value!r} for flag -{name}: parse error") from None
        elif flag.kind == LIST:
            values[flag.key].append(value)
        else:
            values[flag.key] = value
    return values, positional
