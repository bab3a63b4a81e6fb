"""ocirt update: new resource limits from a LinuxResources JSON (file or stdin) and/or flags."""

from __future__ import annotations

import sys

from .. import jsonio
from ..errors import ConfigError, UsageError
from .flags import STR, Flag
from .main import Context, require_args

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

ARGS = "<container-id>"
# flag -> (section, key, kind): "bytes" accepts 64m/1g suffixes, "int" a number, "str" as is.
_FIELDS = {
    "memory": ("memory", "limit", "bytes"), "memory-swap": ("memory", "swap", "bytes"),
    "memory-reservation": ("memory", "reservation", "bytes"),
    "kernel-memory": ("memory", "kernel", "bytes"),
    "kernel-memory-tcp": ("memory", "kernelTCP", "bytes"),
    "cpu-share": ("cpu", "shares", "int"), "cpu-quota": ("cpu", "quota", "int"),
    "cpu-period": ("cpu", "period", "int"), "cpu-rt-period": ("cpu", "realtimePeriod", "int"),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"), "cpu-idle": ("cpu", "idle", "int"),
    "cpuset-cpus": ("cpu", "cpus", "str"), "cpuset-mems": ("cpu", "mems", "str"),
    "blkio-weight": ("blockIO", "weight", "int"), "pids-limit": ("pids", "limit", "int"),
}
#: other spellings callers use (docker's --cpu-shares) for runc's flag names
_ALIASES = {"cpu-share": ",cpu-shares"}
FLAGS = [Flag("resources,r", STR, "", "path to a file with the resources to update, or - for "
                                      "stdin")] + [Flag(name + _ALIASES.get(name, ""), STR, "",
                                                        f"{section}.{key}")
                                                   for name, (section, key, _) in _FIELDS.items()]
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _bytes(text: str) -> int:
    t = text.strip().lower().removesuffix("b")
    if t == "-1":
        return -1
    if t and t[-1] in _UNITS:
        return int(float(t[:-1]) * _UNITS[t[-1]])
    return int(t)


def main(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    require_args(args, 1, ARGS)
    resources: dict[str, Any] = {}
    source = opts["resources"]
    if source:
        try:
            if source == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(source, "rb") as f:
                    raw = f.read()
            resources = jsonio.loads(raw) if raw.strip() else {}
        except OSError as exc:
            raise ConfigError(f"open {source}: {(exc.strerror or '').lower()}") from None
        except ValueError as exc:
            raise ConfigError(f"decode resources: {exc}") from None
        if not isinstance(resources, dict):
            raise ConfigError("resources must be a JSON object (LinuxResources)")
    for name, (section, key, kind) in _FIELDS.items():
        value = opts[name.replace("-", "_")]
        if not value:
            continue
        try:
            parsed: Any = _bytes(value) if kind == "bytes" else int(value) if kind == "int" \
                else value
        except ValueError:
            raise UsageError(f"invalid value for --{name}: {value!r}") from None
        resources.setdefault(section, {})[key] = parsed
    from ..lifecycle.update import update

    update(ctx.store(), args[0], resources)
    return 0
