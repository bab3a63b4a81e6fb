"""The options every command that talks to a registry takes, and the client they make (the
HTTP client and the auth files are imported only to make one)."""

from __future__ import annotations

import argparse

from ..errors import OcishError

TYPE_CHECKING = False  # not typing's: every command imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any

    from ..registry.client import RegistryClient


def parse_bool(text: str) -> bool:
    """true/false, 1/0, yes/no."""
    low = text.lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


def add_tls(p: Any) -> None:
    """--tls-verify and --cert-dir."""
    p.add_argument("--tls-verify", type=parse_bool, default=True, metavar="BOOL",
                   help="require HTTPS and a verified certificate (default true); false "
                        "also allows plain HTTP")
    p.add_argument("--cert-dir", metavar="DIR", help="a dir of CA certificates (*.crt)")


def add_authfile(p: Any) -> None:
    """--authfile."""
    p.add_argument("--authfile", metavar="PATH",
                   help="the auth file (default: $REGISTRY_AUTH_FILE, else podman's "
                        "${XDG_RUNTIME_DIR}/containers/auth.json)")


def add_options(p: Any) -> None:
    """The options of pull and push."""
    add_tls(p)
    add_authfile(p)
    p.add_argument("--creds", metavar="USER:PASSWORD",
                   help="registry credentials (default: those saved by 'ocish login')")


def client(args: argparse.Namespace, registry: str, repository: str) -> RegistryClient:
    """A client for *registry* with --creds, else the saved credentials for *repository*."""
    from ..registry import authfile
    from ..registry.client import RegistryClient

    if args.creds:
        user, sep, password = args.creds.partition(":")
        if not sep or not user:
            raise OcishError("--creds: want USER:PASSWORD")
        creds: tuple[str, str] | None = (user, password)
    else:
        creds = authfile.lookup(args.authfile, registry, repository)
    return RegistryClient(registry, tls_verify=args.tls_verify, creds=creds,
                          cert_dir=args.cert_dir)
