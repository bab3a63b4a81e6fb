"""``import --change``: the Dockerfile instructions ``docker import`` accepts, applied to the
``config`` object of an image config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL,
USER, VOLUME, WORKDIR)."""

from __future__ import annotations

import json
import posixpath
import shlex
from collections.abc import Callable
from typing import Any

from ..errors import OcishError


def _json_or_shell(arg: str, what: str) -> list[str]:
    """The JSON (exec) form, else the shell form: ``/bin/sh -c ARG``."""
    if arg.startswith("["):
        try:
            value = json.loads(arg)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise OcishError(f"--change {what}: not a JSON array of strings: {arg}")
    return ["/bin/sh", "-c", arg]


def _words(arg: str, what: str) -> list[str]:
    try:
        return shlex.split(arg)
    except ValueError as exc:
        raise OcishError(f"--change {what}: {exc}") from None


def _pairs(arg: str, what: str) -> list[tuple[str, str]]:
    """``K=V K2="v 2"``, or the old form ``K the value``."""
    words = _words(arg, what)
    if words and "=" not in words[0]:
        key, _, value = arg.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise OcishError(f"--change {what}: {word!r} is not KEY=VALUE")
        out.append((key, value))
    return out


def _cmd(config: dict[str, Any], arg: str) -> None:
    config["Cmd"] = _json_or_shell(arg, "CMD")


def _entrypoint(config: dict[str, Any], arg: str) -> None:
    config["Entrypoint"] = _json_or_shell(arg, "ENTRYPOINT")


def _env(config: dict[str, Any], arg: str) -> None:
    env = list(config.get("Env") or [])
    for key, value in _pairs(arg, "ENV"):
        env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
    config["Env"] = env


def _label(config: dict[str, Any], arg: str) -> None:
    config["Labels"] = {**(config.get("Labels") or {}), **dict(_pairs(arg, "LABEL"))}


def _expose(config: dict[str, Any], arg: str) -> None:
    ports = dict(config.get("ExposedPorts") or {})
    for word in _words(arg, "EXPOSE"):
        port, _, proto = word.partition("/")
        if not port.isdigit() or proto not in ("", "tcp", "udp", "sctp"):
            raise OcishError(f"--change EXPOSE: invalid port {word!r}")
        ports[f"{port}/{proto or 'tcp'}"] = {}
    config["ExposedPorts"] = ports


def _volume(config: dict[str, Any], arg: str) -> None:
    paths = _json_or_shell(arg, "VOLUME") if arg.startswith("[") else _words(arg, "VOLUME")
    config["Volumes"] = {**(config.get("Volumes") or {}), **{p: {} for p in paths}}


def _workdir(config: dict[str, Any], arg: str) -> None:
    config["WorkingDir"] = posixpath.join(config.get("WorkingDir") or "/", arg)


def _onbuild(config: dict[str, Any], arg: str) -> None:
    config["OnBuild"] = [*(config.get("OnBuild") or []), arg]


def _setter(key: str) -> Callable[[dict[str, Any], str], None]:
    def apply(config: dict[str, Any], arg: str) -> None:
        config[key] = arg
    return apply


INSTRUCTIONS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "CMD": _cmd, "ENTRYPOINT": _entrypoint, "ENV": _env, "EXPOSE": _expose, "LABEL": _label,
    "ONBUILD": _onbuild, "STOPSIGNAL": _setter("StopSignal"), "USER": _setter("User"),
    "VOLUME": _volume, "WORKDIR": _workdir,
}


def apply(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """*config* (an image config's ``config`` object) with *changes* applied in order."""
    out = dict(config)
    for change in changes:
        word, _, arg = change.strip().partition(" ")
        fn = INSTRUCTIONS.get(word.upper())
        if fn is None:
            raise OcishError(f"--change: {word or change!r} is not a valid change command "
                             f"(want one of {', '.join(INSTRUCTIONS)})")
        if not arg.strip():
            raise OcishError(f"--change {word.upper()}: needs an argument")
        fn(out, arg.strip())
    return out
