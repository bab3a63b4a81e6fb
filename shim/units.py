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


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}


def go_duration(text: str) -> float:
    """A Go duration (``1m30s``, ``500ms``, ``2h``; a bare ``0``) in seconds; ValueError if it
    is not one."""
    import re

    s = text.strip()
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    if s == "0":
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"invalid duration {text!r}")
    return sign * sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
