"""``delete``: stop what is left, unmount what create mounted in the caller's mount namespace,
remove the cgroups and the state, run the poststop hooks."""

from __future__ import annotations

from .. import hooks
from ..cgroups.fs import Manager
from ..errors import NotExistError, OcirtError, StatusError
from ..linux import proc
from ..linux.proc import kill_and_wait
from ..state import ContainerDir, State, Store, mount_ns
from . import status as st

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from collections.abc import Callable


def delete(store: Store, container_id: str, force: bool = False,
           warn: Callable[[str], None] | None = None) -> None:
    cdir = store.container(container_id)
    try:
        cdir.lock()  # waits for a create still in progress
    except NotExistError:
        if force:
            return
        raise
    try:
        try:
            state = cdir.load()
        except NotExistError:
            cdir.remove()  # a stale directory from an interrupted create
            if force:
                return
            raise
        current = st.status(cdir, state)
        manager = Manager(state.cgroup_paths, state.cgroups_created)
        if current == st.CREATING:
            # We hold the lock, so the create that recorded this has died half-way, before it
            # recorded the init: nothing here is provably the container's, so nothing is
            # signalled. Its init (and intermediate) die with the create's end of their channel;
            # removing its cgroups waits for them.
            destroy(cdir, state, manager, warn)
            return
        if current in (st.RUNNING, st.PAUSED) and not force:
            st.require("delete", current, container_id)
        if not state.own_pidns:
            # Without a pid namespace of its own, the container's processes outlive its init
            # and are told apart only by its cgroups (as runc does). With one, the kernel kills
            # them all with the init; whatever else shares its cgroups is not the container's.
            manager.signal_all(9)
        if current != st.STOPPED:
            if current == st.PAUSED:
                manager.thaw()
            kill_and_wait(state.pid)
            if proc.alive(state.pid, state.start_time):
                raise StatusError("container init still running")
            if not state.own_pidns:
                manager.signal_all(9)  # any forked while the first pass ran
        destroy(cdir, state, manager, warn)
    finally:
        cdir.unlock()


def destroy(cdir: ContainerDir, state: State, manager: Manager,
            warn: Callable[[str], None] | None = None) -> None:
    """Remove the mounts, the cgroups the container created and the state dir, then run the
    poststop hooks (failures only warn)."""
    for problem in undo_mounts(cdir, state.rootfs):
        if warn:
            warn(problem)
    if state.systemd_cgroup:
        from ..cgroups import systemd

        if systemd.systemd_running():
            systemd.stop_scope(state.cgroups_path, state.id)
    try:
        manager.destroy()
    except OcirtError as exc:
        if warn:
            warn(str(exc))
    cdir.remove()
    poststop = state.hooks.get("poststop", [])
    if poststop:
        doc = hooks.state_json(state.id, st.STOPPED, 0, state.bundle, state.oci_version,
                               state.annotations)
        hooks.run("poststop", poststop, doc, warn=warn or (lambda _msg: None),
                  cwd=state.bundle)


def undo_mounts(cdir: ContainerDir, rootfs: str) -> list[str]:
    """Unmount what the container's init recorded mounting in the caller's mount namespace (a
    container without a mount namespace of its own), newest first; only from that namespace,
    where the records mean something. Returns the problems, one line each."""
    records = cdir.mounts()
    if not records:
        return []
    here = mount_ns()
    if any(ns != here for ns, _, _ in records):
        return [f"mounts of container {cdir.id} were made in another mount namespace "
                f"(mnt:[{records[0][0]}]): run delete there to unmount them"]
    from ..linux.mounts import unmount_recorded

    return unmount_recorded(rootfs, [(mnt_id, path) for _, mnt_id, path in records])
