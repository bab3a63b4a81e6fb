"""Registry commands: push (image push), login, logout; what they do is imported by their
handlers (every command imports this module to make its parser)."""

from __future__ import annotations

import argparse
import sys

from ..errors import OcishError
from . import regopts

TYPE_CHECKING = False  # not typing's: typing costs every command ms
if TYPE_CHECKING:
    from typing import Any

TRANSPORT = "docker://"


def cmd_push(args: argparse.Namespace) -> int:
    """Push an image to a registry."""
    from ..images import records, reference
    from ..images.push import named_locally, push
    from ..storage.root import Storage, default_root

    st = Storage(args.root or default_root())
    target = args.dest or args.image
    if target.startswith(TRANSPORT):
        target = target[len(TRANSPORT):]
    try:
        dest = reference.parse(target)
    except OcishError:
        if args.dest:
            raise
        dest = None
    records.resolve(st, args.image)  # No such image, before anything else
    if not args.dest and (dest is None or not named_locally(st, dest)):
        raise OcishError(f"{args.image}: not the name of a local image: give a DESTINATION")
    assert dest is not None
    client = regopts.client(args, dest.registry, dest.repository)
    push(st, client, args.image, dest, out=None if args.quiet else sys.stdout)
    return 0


def _registry_key(text: str) -> str:
    from ..registry import authfile

    key = authfile.normalize(text)
    if not key or key.startswith("/"):
        raise OcishError(f"{text!r}: not a registry")
    return key


def _secret(args: argparse.Namespace) -> tuple[str, str]:
    """The username and password, from the options, stdin or the terminal."""
    if args.password is not None and args.password_stdin:
        raise OcishError("--password and --password-stdin are mutually exclusive")
    user = args.username
    if not user:
        if args.password_stdin or not sys.stdin.isatty():
            raise OcishError("a username is needed (-u USER)")
        user = input("Username: ").strip()
    if args.password_stdin:
        password = sys.stdin.read()
        password = password[:-1] if password.endswith("\n") else password
        password = password[:-1] if password.endswith("\r") else password
    elif args.password is not None:
        password = args.password
    elif sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
    else:
        raise OcishError("a password is needed (-p PASSWORD or --password-stdin)")
    if not user or not password:
        raise OcishError("the username and the password must not be empty")
    return user, password


def cmd_login(args: argparse.Namespace) -> int:
    """Check credentials against a registry, then save them."""
    from ..registry import authfile
    from ..registry.client import RegistryClient, RegistryError

    key = _registry_key(args.registry)
    host = key.partition("/")[0]
    user, password = _secret(args)
    client = RegistryClient(host, tls_verify=args.tls_verify, creds=(user, password),
                            cert_dir=args.cert_dir)
    try:
        client.ping(f"login to {host}")
    except RegistryError as exc:
        if exc.http_status == 401:
            raise OcishError(f"login to {host} failed: invalid username or password") from None
        raise
    authfile.store(args.authfile, key, user, password)
    sys.stdout.write("Login Succeeded!\n")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    """Forget saved credentials."""
    from ..registry import authfile

    if args.all:
        authfile.remove(args.authfile, None)
        sys.stdout.write("Removed login credentials for all registries\n")
        return 0
    key = _registry_key(args.registry)
    if not authfile.remove(args.authfile, key):
        raise OcishError(f"not logged in to {key}")
    sys.stdout.write(f"Removed login credentials for {key}\n")
    return 0


def _add_push(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="push an image to a registry",
                       description="Push the local image IMAGE to a registry, as DESTINATION "
                                   "([docker://]REGISTRY/REPO[:TAG]) or under its own name.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("dest", nargs="?", metavar="DESTINATION")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    regopts.add_options(p)
    p.set_defaults(func=cmd_push)


def register(sub: Any, image_sub: Any) -> None:
    """Add push (also as ``image push``), login and logout."""
    _add_push(sub, "push")
    _add_push(image_sub, "push")
    p = sub.add_parser("login", help="log in to a registry",
                       description="Check USER and PASSWORD against REGISTRY (host[:port]), "
                                   "then save them in the auth file.")
    p.add_argument("registry", nargs="?", default="docker.io", metavar="REGISTRY")
    p.add_argument("-u", "--username", metavar="USER")
    p.add_argument("-p", "--password", metavar="PASSWORD")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    regopts.add_tls(p)
    regopts.add_authfile(p)
    p.set_defaults(func=cmd_login)
    p = sub.add_parser("logout", help="log out of a registry",
                       description="Remove the saved credentials of REGISTRY.")
    p.add_argument("registry", nargs="?", default="docker.io", metavar="REGISTRY")
    p.add_argument("-a", "--all", action="store_true", help="of every registry")
    regopts.add_authfile(p)
    p.set_defaults(func=cmd_logout)
