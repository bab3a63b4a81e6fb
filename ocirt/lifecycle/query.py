"""``state`` and ``list``: the state document of one container or of all of them."""

from __future__ import annotations

from ..errors import NotExistError
from ..state import ContainerDir, State, Store
from . import status as st

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any


def document(cdir: ContainerDir, state: State) -> dict[str, Any]:
    """The runtime-spec state (plus runc's rootfs, created and owner), in runc's key order."""
    current = st.status(cdir, state)
    doc: dict[str, Any] = {
        "ociVersion": state.oci_version, "id": state.id,
        "pid": 0 if current == st.STOPPED else state.pid, "status": current,
        "bundle": state.bundle, "rootfs": state.rootfs, "created": state.created, "owner": "",
    }
    if state.annotations:
        doc["annotations"] = state.annotations
    return doc


def state(store: Store, container_id: str) -> dict[str, Any]:
    cdir = store.container(container_id)
    return document(cdir, cdir.load())


def list_all(store: Store) -> list[dict[str, Any]]:
    out = []
    for container_id in store.ids():
        try:
            cdir = store.container(container_id)
            state = cdir.load()
        except (NotExistError, Exception):
            continue
        doc = document(cdir, state)
        doc["owner"] = _user_name(state.owner)
        out.append(doc)
    return out


def _user_name(uid: int) -> str:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.split(":")
                if len(fields) > 2 and fields[2] == str(uid):
                    return fields[0]
    except OSError:
        pass
    return f"#{uid}"
