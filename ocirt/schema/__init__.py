"""Validation of an OCI runtime-spec ``config.json`` (runtime-spec 1.2/1.3, Linux).

``validate_config(doc)`` checks a parsed config against ``config.schema.json`` (JSON
Schema draft 2020-12, shipped next to this file) and then runs a few semantic checks
the schema does not state cleanly (absolute paths, duplicate namespaces).  Every
problem is returned as a :class:`Problem`: an RFC 6901 JSON pointer to the offending
value plus a short, one-line message.

Importing this module is cheap: ``jsonschema`` is imported only when
:func:`validate_config` first runs, so the runtime's hot path never pays for it.

This is not what ``create`` or ``ocirt check`` run: their one validator is the parser of
:mod:`ocirt.spec`. The schema is its independent statement, and the tests
(tests/test_one_validator.py, tests/test_fuzz.py) run both on generated configs: a config the
schema refuses and the parser takes is a bug of the parser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only, never imported at runtime
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["Problem", "SCHEMA_PATH", "load_schema", "validate_config"]

#: Location of the schema file shipped with the package.
SCHEMA_PATH = Path(__file__).with_name("config.schema.json")

# Non-standard schema keyword holding friendlier per-keyword messages.
_MESSAGES_KEY = "x-messages"
_MAX_SHOWN = 40

_HOOK_KINDS = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)

_JSON_TYPE_ARTICLE = {
    "array": "an array",
    "boolean": "a boolean",
    "integer": "an integer",
    "null": "null",
    "number": "a number",
    "object": "an object",
    "string": "a string",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config document."""

    #: RFC 6901 JSON pointer to the offending value; ``""`` is the document root.
    pointer: str
    #: One human-readable line describing the problem.
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """Return the parsed ``config.schema.json`` (cached; treat it as read-only)."""
    with SCHEMA_PATH.open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


@lru_cache(maxsize=64)
def _compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a schema pattern with ECMA-262 meaning for a final ``$``.

    In JSON Schema (ECMA-262) ``$`` matches only at the end of the input, while
    Python's ``$`` also matches just before a trailing newline, which would let
    e.g. ``"CAP_CHOWN\\n"`` through.  A trailing unescaped ``$`` becomes ``\\Z``.
    """
    stem = pattern[:-1]
    backslashes = len(stem) - len(stem.rstrip("\\"))
    if pattern.endswith("$") and backslashes % 2 == 0:
        pattern = stem + r"\Z"
    return re.compile(pattern)


@lru_cache(maxsize=1)
def _validator() -> Validator:
    from jsonschema import Draft202012Validator, ValidationError
    from jsonschema.validators import extend

    def pattern(
        validator: Validator, patrn: str, instance: object, schema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        if isinstance(instance, str) and not _compile_pattern(patrn).search(instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    cls = extend(Draft202012Validator, validators={"pattern": pattern})
    validator: Validator = cls(schema)
    return validator


def validate_config(doc: object) -> list[Problem]:
    """Return every problem found in ``doc`` (a parsed config.json), sorted by pointer.

    An empty list means the document is valid.  Sorting is by the pointer string,
    then by message, so the output is deterministic.
    """
    problems: set[Problem] = set()
    for error in _validator().iter_errors(doc):
        problems.update(_problems_from_error(error))
    problems.update(_semantic_problems(doc))
    return sorted(problems, key=lambda p: (p.pointer, p.message))


# --------------------------------------------------------------------------- pointers


def _escape(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _pointer(path: Iterable[str | int]) -> str:
    return "".join("/" + _escape(token) for token in path)


# --------------------------------------------------------------------------- messages


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, Sequence):
        return "array"
    return type(value).__name__


def _show(value: object) -> str:
    """A short, single-line rendering of a JSON value for use in messages."""
    if isinstance(value, str):
        text = repr(value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "...")
    elif value is None or isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        return _json_type(value)
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _problems_from_error(error: ValidationError) -> Iterator[Problem]:
    keyword = error.validator
    instance = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    path: list[str | int] = list(error.absolute_path)
    schema_path = list(error.absolute_schema_path)

    if keyword == "required" and isinstance(instance, Mapping):
        # jsonschema reports one error per missing name; rebuild them from the object
        # itself so the message names the property and the pointer is the object.
        for name in error.validator_value:
            if name not in instance:
                yield Problem(_pointer(path), f"{name!r} is a required property")
        return

    if keyword == "dependentRequired" and isinstance(instance, Mapping):
        for name, needed in error.validator_value.items():
            if name not in instance:
                continue
            for other in needed:
                if other not in instance:
                    yield Problem(_pointer(path), f"{other!r} is required when {name!r} is set")
        return

    prefix = ""
    if len(schema_path) >= 2 and schema_path[-2] == "propertyNames":
        # The failing value is a key of the object at `path`; point at that member.
        path.append(str(instance))
        prefix = f"invalid key {_show(instance)}: "

    custom = schema.get(_MESSAGES_KEY, {})
    if isinstance(custom, Mapping) and isinstance(custom.get(keyword), str):
        yield Problem(_pointer(path), prefix + custom[keyword])
        return

    yield Problem(_pointer(path), prefix + _one_line(_default_message(error, schema)))


def _default_message(error: ValidationError, schema: Mapping[str, Any]) -> str:
    keyword = error.validator
    value = error.validator_value
    instance = error.instance

    if keyword == "type":
        wanted = [value] if isinstance(value, str) else list(value)
        names = " or ".join(_JSON_TYPE_ARTICLE.get(t, t) for t in wanted)
        return f"must be {names}, not {_json_type(instance)}"
    if keyword == "enum":
        choices = ", ".join(str(c) for c in value)
        return f"unknown value {_show(instance)}; expected one of: {choices}"
    if keyword == "const":
        return f"must be {_show(value)}"
    if keyword in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"must be between {low} and {high}, got {_show(instance)}"
        if keyword == "minimum":
            return f"must be >= {value}, got {_show(instance)}"
        return f"must be <= {value}, got {_show(instance)}"
    if keyword == "minItems":
        return "must not be empty" if value == 1 else f"must have at least {value} items"
    if keyword == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters"
    if keyword == "pattern":
        return f"{_show(instance)} does not match {value}"
    if keyword in ("anyOf", "oneOf"):
        return "does not match any of the allowed forms"
    return error.message


# --------------------------------------------------------------------------- semantics


def _items(value: object) -> list[tuple[int, object]]:
    if isinstance(value, list):
        return list(enumerate(value))
    return []


def _absolute(value: object, path: list[str | int]) -> Iterator[Problem]:
    if isinstance(value, str) and not value.startswith("/"):
        yield Problem(_pointer(path), f"must be an absolute path, got {_show(value)}")


def _semantic_problems(doc: object) -> Iterator[Problem]:
    """Checks the schema leaves out; each one looks only at values of the right type."""
    if not isinstance(doc, Mapping):
        return

    for i, mount in _items(doc.get("mounts")):
        if isinstance(mount, Mapping):
            yield from _absolute(mount.get("destination"), ["mounts", i, "destination"])

    process = doc.get("process")
    if isinstance(process, Mapping):
        yield from _absolute(process.get("cwd"), ["process", "cwd"])

    hooks = doc.get("hooks")
    if isinstance(hooks, Mapping):
        for kind in _HOOK_KINDS:
            for i, hook in _items(hooks.get(kind)):
                if isinstance(hook, Mapping):
                    yield from _absolute(hook.get("path"), ["hooks", kind, i, "path"])

    linux = doc.get("linux")
    if not isinstance(linux, Mapping):
        return

    for key in ("maskedPaths", "readonlyPaths"):
        for i, entry in _items(linux.get(key)):
            yield from _absolute(entry, ["linux", key, i])

    for i, device in _items(linux.get("devices")):
        if isinstance(device, Mapping):
            yield from _absolute(device.get("path"), ["linux", "devices", i, "path"])

    seen: set[str] = set()
    for i, ns in _items(linux.get("namespaces")):
        if not isinstance(ns, Mapping):
            continue
        if ns.get("path"):  # "" is no path: a new namespace, as runc reads it
            yield from _absolute(ns.get("path"), ["linux", "namespaces", i, "path"])
        ns_type = ns.get("type")
        if isinstance(ns_type, str):
            if ns_type in seen:
                yield Problem(
                    _pointer(["linux", "namespaces", i, "type"]),
                    f"duplicate namespace type {ns_type!r}",
                )
            seen.add(ns_type)
