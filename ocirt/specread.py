"""Typed, checked access to decoded config.json: the one validator of ocirt.

Every rule of config.json lives here and in :mod:`ocirt.spec` / :mod:`ocirt.specraw`, written as
plain Python: ``create`` and ``check`` both run it, so whatever ``check`` rejects, ``create``
rejects first, with the same line, before it makes anything. The JSON Schema in
:mod:`ocirt.schema` is not consulted at run time (jsonschema, json, re and typing cost
milliseconds on every ``create``); the tests run it beside this parser on generated configs, and a
config the schema refuses but this parser takes is a bug they report.

The reading follows Go's encoding/json, as runc's does: a ``null`` member is an absent one, and a
number with a fraction or an exponent (``1.0``) is not an integer.

Messages are one line: ``config.json: <JSON pointer>: <what is wrong>``. The patterns of the
schema are checked by hand here (no :mod:`re` on the hot path).
"""

from __future__ import annotations

from .errors import ConfigError

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

UINT16 = (1 << 16) - 1
UINT32 = (1 << 32) - 1
UINT64 = (1 << 64) - 1
INT32 = (-(1 << 31), (1 << 31) - 1)
INT64 = (-(1 << 63), (1 << 63) - 1)

_KINDS = {str: "a string", bool: "a boolean", list: "an array", dict: "an object", int: "an integer"}
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")


def fail(pointer: str, what: str, source: str = "config.json") -> ConfigError:
    """The one-line error about the value at ``pointer`` of ``source``."""
    return ConfigError(f"{source}: {pointer or '/'}: {what}")


def escape(token: object) -> str:
    """A JSON pointer token (RFC 6901): ``~`` and ``/`` escaped."""
    return str(token).replace("~", "~0").replace("/", "~1")


def show(value: str) -> str:
    """A string for a message: quoted, at most 40 characters."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Reader:
    """One JSON object, read member by member; each error names the member's JSON pointer
    (in ``source``: config.json, or ``update``'s resources)."""

    def __init__(self, obj: Any, pointer: str, source: str = "config.json") -> None:
        if not isinstance(obj, dict):
            raise fail(pointer, "must be an object", source)
        self.obj = obj
        self.pointer = pointer
        self.source = source

    def at(self, key: str) -> str:
        return f"{self.pointer}/{escape(key)}"

    def fail(self, key: str | int, what: str) -> ConfigError:
        """The error about member ``key`` (or the item ``key`` of an array member)."""
        return fail(self.at(str(key)), what, self.source)

    def fail_item(self, key: str, index: int, what: str) -> ConfigError:
        return fail(f"{self.at(key)}/{index}", what, self.source)

    def fail_here(self, what: str) -> ConfigError:
        return fail(self.pointer, what, self.source)

    def get(self, key: str, kind: type, default: Any = None, required: bool = False) -> Any:
        """The member ``key`` of type ``kind`` (absent or null: ``default``)."""
        value = self.obj.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is required")
            return default
        if kind is int:
            if not is_int(value):
                raise self.fail(key, "must be an integer")
        elif not isinstance(value, kind):
            raise self.fail(key, f"must be {_KINDS[kind]}")
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None,
            required: bool = False) -> int | None:
        """An integer member within [low, high]."""
        value = self.get(key, int, default, required)
        if value is not None and not low <= value <= high:
            raise self.fail(key, f"must be an integer between {low} and {high}")
        return value

    def uint(self, key: str, default: int | None = None, required: bool = False,
             limit: int = UINT32) -> int | None:
        return self.integer(key, 0, limit, default, required)

    def int64(self, key: str, required: bool = False) -> int | None:
        return self.integer(key, *INT64, required=required)

    def enum(self, key: str, choices: tuple[str, ...], what: str, default: str | None = None,
             required: bool = False) -> str | None:
        """A string member that must be one of ``choices``."""
        value = self.get(key, str, default, required)
        if value is not None and value not in choices:
            raise self.fail(key, f"unknown {what} {show(value)}")
        return value

    def strings(self, key: str, check: Any = None, what: str = "") -> list[str]:
        """An array of strings; ``check(s)`` false for an item: the item ``must be <what>``."""
        value = self.get(key, list, [])
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.fail_item(key, i, "must be a string")
            if check is not None and not check(item):
                raise self.fail_item(key, i, f"must be {what}, not {show(item)}")
        return list(value)

    def str_map(self, key: str, nonempty_keys: bool = False) -> dict[str, str]:
        value = self.get(key, dict, {})
        for name, item in value.items():
            if nonempty_keys and not name:
                raise self.fail(key, "keys must not be empty")
            if not isinstance(item, str):
                raise fail(f"{self.at(key)}/{escape(name)}", "must be a string", self.source)
        return dict(value)

    def objects(self, key: str) -> list[Reader]:
        return [Reader(v, f"{self.at(key)}/{i}", self.source)
                for i, v in enumerate(self.get(key, list, []))]

    def child(self, key: str) -> Reader | None:
        value = self.get(key, dict)
        return None if value is None else Reader(value, self.at(key), self.source)


# -- the schema's patterns, by hand ---------------------------------------------------------------

def _number(text: str) -> bool:
    """A SemVer numeric identifier: digits, no leading zero."""
    return bool(text) and all(c in _DIGITS for c in text) and (text == "0" or text[0] != "0")


def _idents(text: str) -> bool:
    """Dot-separated non-empty identifiers of [0-9A-Za-z-]."""
    return all(part and all(c.isascii() and (c.isalnum() or c == "-") for c in part)
               for part in text.split("."))


def semver(text: str) -> bool:
    """SemVer 2.0.0: MAJOR.MINOR.PATCH, then an optional -prerelease and +build."""
    core, plus, build = text.partition("+")
    if plus and not _idents(build):
        return False
    core, dash, pre = core.partition("-")
    if dash and not _idents(pre):
        return False
    parts = core.split(".")
    return len(parts) == 3 and all(_number(p) for p in parts)


def env_entry(text: str) -> bool:
    """KEY=value with a non-empty KEY."""
    return text.find("=") > 0


def prefixed_name(prefix: str, extra: str = "") -> Any:
    """A checker of ``<prefix>[A-Z_<extra>]+`` (CAP_CHOWN, SCMP_ARCH_X86_64 ...)."""
    allowed = _UPPER | frozenset("_" + extra)

    def check(text: str) -> bool:
        rest = text[len(prefix):]
        return text.startswith(prefix) and bool(rest) and all(c in allowed for c in rest)
    return check


def cpu_list(text: str) -> bool:
    """A CPU list such as ``0-3,7``."""
    return all(r and all(n and all(c in _DIGITS for c in n) for n in r.split("-"))
               and r.count("-") <= 1 for r in text.split(","))


def page_size(text: str) -> bool:
    """A huge page size such as ``2MB``: digits without a leading zero, a unit, then B."""
    if not text.endswith("B"):
        return False
    digits = text[:-1]
    if digits and digits[-1] in "KMGTP":
        digits = digits[:-1]
    return bool(digits) and digits[0] != "0" and all(c in _DIGITS for c in digits)
