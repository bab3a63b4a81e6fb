"""ocirt features."""

from __future__ import annotations

import json
import sys

from .main import Context

FLAGS: list = []


def main(ctx: Context, opts: dict[str, object], args: list[str]) -> int:
    from ..features import features

    sys.stdout.write(json.dumps(features(), indent="    ") + "\n")
    return 0
