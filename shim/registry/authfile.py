"""Registry credentials in a Docker-compatible auth file, where podman keeps them.

The file is ``{"auths": {"host:port": {"auth": base64("user:password")}}}``. ``ocish login``
writes ``--authfile``, else ``$REGISTRY_AUTH_FILE``, else podman's
``$XDG_RUNTIME_DIR/containers/auth.json`` (``/run/containers/<uid>/auth.json`` without
XDG_RUNTIME_DIR). Lookups read that one file when it was named, else podman's file, then
``$XDG_CONFIG_HOME/containers/auth.json`` and Docker's ``~/.docker/config.json``: what
``podman login`` or ``docker login`` saved works. Keys may name a namespace
(``host/org``); the longest that covers a repository wins. Writes are atomic, mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import json
import os

from ..errors import OcishError

TYPE_CHECKING = False  # not typing's: pull and push import this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any

DOCKER_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def default_path() -> str:
    """Podman's auth file."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "containers", "auth.json")
    return f"/run/containers/{os.getuid()}/auth.json"


def write_path(authfile: str | None) -> str:
    """Where login and logout write."""
    return authfile or os.environ.get("REGISTRY_AUTH_FILE") or default_path()


def read_paths(authfile: str | None) -> list[str]:
    """Where lookups read, first match wins."""
    named = authfile or os.environ.get("REGISTRY_AUTH_FILE")
    if named:
        return [named]
    home = os.path.expanduser("~")
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return [default_path(), os.path.join(config, "containers", "auth.json"),
            os.path.join(home, ".docker", "config.json")]


def normalize(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``http://h:5000/`` -> ``h:5000``."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
    key = key.rstrip("/")
    for suffix in ("/v1", "/v2"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    host, sep, rest = key.partition("/")
    if host in DOCKER_HUB_KEYS:
        host = "docker.io"
    return host + sep + rest


def load(path: str) -> dict[str, Any]:
    """The file's JSON object ({} if there is no file)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError):
        raise OcishError(f"auth file {path}: not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("auths", {}), dict):
        raise OcishError(f"auth file {path}: not an auth file (want {{\"auths\": {{...}}}})")
    return data


def save(path: str, data: dict[str, Any]) -> None:
    """Write *data* to *path* atomically, readable by its owner only."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, mode=0o700, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(path)}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent="\t")
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _decode(entry: Any) -> tuple[str, str] | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("auth"), str):
        return None
    try:
        user, sep, password = base64.b64decode(entry["auth"], validate=True).decode().partition(
            ":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep and user else None


def lookup(authfile: str | None, registry: str, repository: str = "") -> tuple[str, str] | None:
    """The saved (user, password) for *registry*/*repository*, if any."""
    wanted = [normalize(registry)]
    parts = repository.split("/") if repository else []
    wanted += [wanted[0] + "/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for path in read_paths(authfile):
        auths = load(path).get("auths") or {}
        found = {normalize(k): _decode(v) for k, v in auths.items()}
        for key in reversed(wanted):
            if found.get(key):
                return found[key]
    return None


def store(authfile: str | None, key: str, user: str, password: str) -> str:
    """Save credentials under *key* (keeping all else in the file); returns the file's path."""
    path = write_path(authfile)
    data = load(path)
    auths = data.setdefault("auths", {})
    key = normalize(key)
    for old in [k for k in auths if normalize(k) == key]:
        del auths[old]
    auths[key] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    save(path, data)
    return path


def remove(authfile: str | None, key: str | None) -> bool:
    """Forget *key*'s credentials (every registry's if *key* is None); False if none were."""
    path = write_path(authfile)
    data = load(path)
    auths = data.get("auths") or {}
    gone = [k for k in auths if key is None or normalize(k) == normalize(key)]
    if not gone:
        return False
    for k in gone:
        del auths[k]
    save(path, data)
    return True
