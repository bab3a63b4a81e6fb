"""``ps --filter``, as Docker's: values of one key are alternatives (any may match), keys
all have to match. Keys: id, name, label, status, exited, ancestor, before, since, health,
volume, network."""

from __future__ import annotations

from ..errors import OcishError
from ..storage.root import Storage
from .records import Container

TYPE_CHECKING = False  # not typing's: ps imports this module
if TYPE_CHECKING:
    from collections.abc import Callable

STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")
KEYS = ("id", "name", "label", "status", "exited", "ancestor", "before", "since", "health",
        "volume", "network")


def parse(specs: list[str]) -> dict[str, list[str]]:
    """``KEY=VALUE`` strings -> values by key, checked."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        key = key.strip().lower()
        if not sep:
            raise OcishError(f"bad format of filter (expected name=value): {spec}")
        if key not in KEYS:
            raise OcishError(f"invalid filter '{key}'")
        if key == "status" and value not in STATUSES:
            raise OcishError(f"invalid filter 'status={value}'")
        if key == "health" and value not in HEALTH:
            raise OcishError(f"Unrecognised filter value for health: {value}")
        if key == "exited" and not value.lstrip("-").isdigit():
            raise OcishError(f"invalid filter 'exited={value}'")
        out.setdefault(key, []).append(value)
    return out


def health(st: Storage, ctr: Container) -> str:
    """The container's health status (healthy, unhealthy, starting), 'none' without a
    healthcheck."""
    from .health import state

    h = state(st, ctr) if ctr.status != "created" else None
    return str(h["Status"]) if h else "none"


def apply(st: Storage, ctrs: list[Container], filters: dict[str, list[str]]
          ) -> list[Container]:
    """The containers (newest first) that pass every filter."""
    if not filters:
        return ctrs
    tests: list[Callable[[Container], bool]] = []
    for key, values in filters.items():
        tests.append(_test(st, key, values))
    return [c for c in ctrs if all(t(c) for t in tests)]


def _test(st: Storage, key: str, values: list[str]) -> Callable[[Container], bool]:
    import re

    from .inspect import labels, mounts

    if key == "id":
        return lambda c: any(c.id.startswith(v) for v in values)
    if key == "name":
        pats = []
        for v in values:
            try:
                pats.append(re.compile(v))
            except re.error:
                raise OcishError(f"invalid filter 'name={v}': not a regular expression") \
                    from None
        return lambda c: any(p.search("/" + c.name) for p in pats)
    if key == "label":
        def has(c: Container, want: str) -> bool:
            k, sep, v = want.partition("=")
            lab = labels(c)
            return k in lab and (not sep or lab[k] == v)
        return lambda c: all(has(c, v) for v in values)  # Docker: every label must match
    if key == "status":
        from .control import status

        return lambda c: status(c) in values
    if key == "exited":
        codes = {int(v) for v in values}
        return lambda c: c.status == "exited" and c.exit_code in codes
    if key == "ancestor":
        ids = _image_ids(st, values)
        return lambda c: c.image_id in ids or c.image in values
    if key in ("before", "since"):
        marks = [_find(st, v).created for v in values]  # RFC 3339 UTC: sorts as times
        if key == "before":
            return lambda c: any(c.created < m for m in marks)
        return lambda c: any(c.created > m for m in marks)
    if key == "health":
        return lambda c: health(st, c) in values
    if key == "volume":
        def uses(c: Container) -> bool:
            return any(v in (m.get("Name"), m.get("Source"), m.get("Destination"))
                       for m in mounts(st, c) for v in values)
        return uses
    # network
    return lambda c: (c.options.get("network") or "none") in values


def _find(st: Storage, text: str) -> Container:
    from . import records

    return records.find(st, text)


def _image_ids(st: Storage, names: list[str]) -> set[str]:
    from ..images import records as images

    ids = set()
    for name in names:
        try:
            ids.add(images.resolve(st, name))
        except OcishError:
            continue
    return ids
