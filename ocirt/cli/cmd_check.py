"""ocirt check: validate config.json against the runtime-spec JSON Schema."""

from __future__ import annotations

import json
import os
import sys

from ..errors import ConfigError
from .main import Context

ARGS = "[bundle]"
DESCRIPTION = """Check validates BUNDLE/config.json (default: the current directory) against the
runtime-spec schema and prints every problem with its JSON pointer."""
FLAGS: list = []


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    from ..schema import validate_config

    bundle = args[0] if args else "."
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            doc = json.load(f)
    except OSError as exc:
        raise ConfigError(f"open {path}: {(exc.strerror or '').lower()}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}") from None
    problems = validate_config(doc)
    for p in problems:
        line = f"{p.pointer or '/'}: {p.message}\n"
        # a lone surrogate (a \ud800 escape in the JSON) has no UTF-8: print it escaped
        sys.stdout.write(line.encode(errors="backslashreplace").decode())
    if problems:
        word = "problem" if len(problems) == 1 else "problems"
        raise ConfigError(f"{path}: {len(problems)} {word}")
    sys.stdout.write(f"{path}: valid\n")
    return 0
