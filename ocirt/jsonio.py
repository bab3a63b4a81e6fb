"""JSON through CPython's ``_json`` accelerator, without importing :mod:`json`.

``import json`` pulls in ``re`` and, through it, ``enum``: about 4 ms on every command, more
than the parsing it is used for. The C scanner and encoder that :mod:`json` itself uses need
neither. The behaviour is :mod:`json`'s: the same parser, the same output, except that NaN and
Infinity are refused, as Go's encoding/json (and so runc) refuses them. Pretty-printed output
(``ocirt state``) is written by a small recursive printer in json.dumps(indent=2)'s format.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"


class _Context:
    """The attributes ``_json.make_scanner`` reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, str] = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        raise ValueError(f"{name} is not valid JSON")


_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # duck-typed JSONDecoder


def _unserializable(value: object) -> None:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_encode = _json.make_encoder(None, _unserializable, _json.encode_basestring_ascii, None, ": ",
                             ", ", False, False, False)
_encode_compact = _json.make_encoder(None, _unserializable, _json.encode_basestring_ascii, None,
                                     ":", ",", False, False, False)
_encode_sorted = _json.make_encoder(None, _unserializable, _json.encode_basestring_ascii, None,
                                    ": ", ", ", True, False, False)


def loads(data: str | bytes) -> Any:
    """Decode one JSON document; ValueError, in one line of our own words, if invalid."""
    try:
        text = data.decode() if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:  # not Python's words ("'utf-8' codec can't decode ...")
        raise ValueError(f"not UTF-8 (byte {exc.start})") from None
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as exc:
        raise ValueError(f"Expecting value: char {exc.value}") from None
    except SystemError:
        # The scanner builds its syntax errors from json.decoder, only if already imported.
        import json.decoder  # noqa: F401

        value, end = _scan(text, start)
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"Extra data: char {end}")
    return value


def load_file(path: str) -> Any:
    """Decode the JSON document in ``path`` (OSError and ValueError as open and loads)."""
    with open(path, "rb") as f:
        return loads(f.read())


def dumps(value: Any, indent: int | None = None, compact: bool = False,
          sort_keys: bool = False) -> str:
    """Encode as json.dumps does: ``", "`` and ``": "`` separators, or none with ``compact``,
    or one item per line with ``indent``. Non-ASCII is escaped; NaN is refused."""
    if indent is not None:
        return "".join(_pretty(value, " " * indent, "\n"))
    encode = _encode_sorted if sort_keys else _encode_compact if compact else _encode
    return "".join(encode(value, 0))


def _pretty(value: Any, step: str, newline: str) -> Any:
    if isinstance(value, dict) and value:
        inner = newline + step
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield ("," if i else "") + inner + _json.encode_basestring_ascii(str(key)) + ": "
            yield from _pretty(item, step, inner)
        yield newline + "}"
    elif isinstance(value, (list, tuple)) and value:
        inner = newline + step
        yield "["
        for i, item in enumerate(value):
            yield ("," if i else "") + inner
            yield from _pretty(item, step, inner)
        yield newline + "]"
    else:
        yield from _encode(value, 0)
