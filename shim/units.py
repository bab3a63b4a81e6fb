"""Sizes as Docker prints them: for the CLI's tables and pull's progress lines alike."""

from __future__ import annotations

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def human_size(size: float) -> str:
    """4260000 -> '4.26MB' (decimal units, three significant digits, as Docker)."""
    i = 0
    while size >= 1000 and i < len(_UNITS) - 1:
        size /= 1000
        i += 1
    return f"{size:.3g}{_UNITS[i]}"
