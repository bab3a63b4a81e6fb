"""Image references: ``[registry/]repository[:tag][@digest]``, normalized the way Docker does."""

from __future__ import annotations

import re

from ..digests import DIGEST_RE
from ..errors import OcishError

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")


class Reference:
    """A parsed, normalized image reference, compared by value; never changed once made (a
    plain class, not a frozen dataclass: importing dataclasses costs every command several ms)."""

    __slots__ = ("registry", "repository", "tag", "digest")

    def __init__(self, registry: str, repository: str, tag: str | None = None,
                 digest: str | None = None) -> None:
        self.registry, self.repository, self.tag, self.digest = registry, repository, tag, digest

    def _key(self) -> tuple[str, str, str | None, str | None]:
        return (self.registry, self.repository, self.tag, self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Reference(registry={self.registry!r}, repository={self.repository!r}, "
                f"tag={self.tag!r}, digest={self.digest!r})")

    @property
    def name(self) -> str:
        """``registry/repository``, the key tags and repo digests are stored under."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest if there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse(ref: str) -> Reference:
    """Parse and normalize *ref*; a reference without tag nor digest gets ``:latest``."""
    if not ref or ref != ref.strip():
        raise OcishError(f"invalid reference format: {ref!r}")
    rest, digest = ref, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise OcishError(f"invalid reference format: {ref!r}: bad digest")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.match(tag):
            raise OcishError(f"invalid reference format: {ref!r}: bad tag")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, repo = first, remainder
    else:
        registry, repo = DEFAULT_REGISTRY, rest
    if registry == "index.docker.io":
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repo:
        repo = f"library/{repo}"
    if not _REPO_RE.match(repo):
        raise OcishError(f"invalid reference format: {ref!r}: repository name must be lowercase")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry, repo, tag, digest)


def familiar(name: str) -> str:
    """Shorten ``docker.io/library/x`` to ``x`` and ``docker.io/u/x`` to ``u/x`` for display."""
    for prefix in (f"{DEFAULT_REGISTRY}/library/", f"{DEFAULT_REGISTRY}/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name
