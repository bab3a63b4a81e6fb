"""Signal names and numbers (Linux, x86_64 and aarch64), without importing the signal module."""

from __future__ import annotations

from ..errors import UsageError

NUMBERS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
    "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
    "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}
RTMIN, RTMAX = 34, 64


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²", which int() refuses."""
    return text.isascii() and text.isdigit()


def parse(text: str) -> int:
    """A signal by number ("9"; "0" checks that the process exists, as kill(2)), or by name
    with or without SIG, any case ("KILL", "sigkill", "RTMIN+2")."""
    if _digits(text):
        number = int(text)
        if number <= RTMAX:
            return number
        raise UsageError(f"invalid signal: {text}")
    name = text.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name in NUMBERS:
        return NUMBERS[name]
    for base, value, sign in (("RTMIN", RTMIN, 1), ("RTMAX", RTMAX, -1)):
        if name == base:
            return value
        if name.startswith(base) and name[len(base)] in "+-" and _digits(name[len(base) + 1:]):
            offset = int(name[len(base) + 1:]) * (1 if name[len(base)] == "+" else -1)
            if (offset >= 0) == (sign > 0) and RTMIN <= value + offset <= RTMAX:
                return value + offset
    raise UsageError(f"unknown signal {text!r}")
