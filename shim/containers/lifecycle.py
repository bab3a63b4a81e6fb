"""The container lifecycle: create, start, kill, stop, wait, cleanup, remove.

A container is a row in the database and a dir ``<root>/containers/<id>``: ``bundle/`` (the
config.json and the ``rootfs`` mount point), ``upper/`` and ``work/`` (its overlayfs layer on
top of the image's snapshots), ``userdata/`` (the generated /etc files) and conmon's files
(monitor.conmon.Paths). Each operation that changes a container holds its lock (an flock on
``<root>/containers/<id>.lock``), so that the monitor's exit command, ``rm`` and a ``ps`` that
finds a dead monitor never tear down the same container at once.

Every failure of create (or of a start that has to recreate) undoes what it did: the mount,
the runtime's state, the monitor, the dir and the row.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import OcishError
from ..events import log as events
from ..monitor import conmon
from ..runtime.driver import Runtime, exit_status_of_error
from ..storage.root import Storage
from ..storage.snapshots import unmount
from . import hostconfig, records, seccomp, spec
from .logs import size_bytes
from .records import Container

TYPE_CHECKING = False  # not typing's: it costs the run path ms
if TYPE_CHECKING:
    from typing import Any

DEFAULT_STOP_TIMEOUT = 10


def rfc3339(ns: int) -> str:
    """A time in ns since the epoch as Docker writes times: RFC 3339, UTC, nanoseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + \
        f".{ns % 10**9:09d}Z"


def now() -> str:
    return rfc3339(time.time_ns())


def epoch(text: str) -> float:
    """Seconds since the epoch of a time rfc3339 wrote (0 for none)."""
    import calendar

    try:
        whole = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0.0
    return whole + float("0." + (text[20:29].rstrip("Z") or "0"))


@contextmanager
def locked(st: Storage, cid: str) -> Iterator[None]:
    """Hold the container's lock."""
    import fcntl

    d = os.path.join(st.root, "containers")
    os.makedirs(d, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(d, f"{cid}.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW |
                 os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def runtime_of(st: Storage, ctr: Container) -> Runtime:
    """The runtime the container was created with, with its own state root."""
    name = os.path.basename(ctr.runtime)
    return Runtime(ctr.runtime, os.path.join(st.root, "runtime", name))


def paths(st: Storage, ctr: Container) -> conmon.Paths:
    return conmon.Paths(ctr.dir(st), ctr.id)


def create(st: Storage, image_id: str, image: str, options: dict[str, Any], runtime: str,
           exit_command: list[str]) -> Container:
    """Make a container (its row, dir, rootfs and the runtime's ``created`` container under
    its monitor); nothing is left if this fails."""
    from ..images import records as images

    config = (images.image_config(st, image_id).get("config") or {})
    cid = os.urandom(32).hex()
    name = options.get("name") or records.random_name(st)
    records.check_name(name)
    hostname = options.get("hostname") or cid[:12]
    options = {**options, "name": name, "hostname": hostname,
               "args": spec.command(config, options.get("entrypoint"), options["cmd"]),
               "env": spec.env(config, options.get("env") or [], hostname),
               "workdir": options.get("workdir") or config.get("WorkingDir") or "/",
               "user": options.get("user") or config.get("User") or "",
               "stop_signal": options.get("stop_signal") or config.get("StopSignal") or
               "SIGTERM", "image_config": config}
    options.update(spec.security_options(options.get("security_opt") or []))
    options.update(_lifecycle_options(options, config))
    from ..volumes import attach

    with attach.claimed(st, options, config) as volumes_made:
        records.insert(st, {"id": cid, "name": name, "image_id": image_id, "image": image,
                            "created": now(), "options": options, "runtime": runtime})
    ctr = records.get(st, cid)
    assert ctr is not None
    with locked(st, cid):
        try:
            _spawn(st, ctr, exit_command)
        except BaseException as exc:
            # after a create the monitor reported failed, it runs its exit command (which
            # waits for this lock): nothing to wait for
            _teardown(st, ctr, wait_create=not isinstance(exc, conmon.CreateError))
            attach.drop(st, volumes_made)
            raise
    events.container(st, ctr, "create")
    return records.get(st, cid) or ctr


def _lifecycle_options(options: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The restart policy checked, the healthcheck resolved (flags over the image's)."""
    from . import health, policy

    policy.check(options)
    return {"healthcheck": health.resolve(options.get("health") or {}, config)}


def _write(path: str, text: str) -> None:
    """Write a file of ocish's own, replacing it, never through a symlink."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _spawn(st: Storage, ctr: Container, exit_command: list[str]) -> None:
    """Mount the rootfs, write the bundle and have conmon run the runtime's create."""
    import json

    from ..images import records as images
    from ..volumes.attach import oci_mounts

    opts = ctr.options
    base = ctr.dir(st)
    p = paths(st, ctr)
    rootfs = os.path.join(p.bundle, "rootfs")
    for d in (base, p.bundle, rootfs, os.path.join(base, "upper"), os.path.join(base, "work"),
              os.path.join(base, "userdata")):
        os.makedirs(d, mode=0o700 if d == base else 0o755, exist_ok=True)
    for stale in (p.exit_file, p.pidfile, p.conmon_pidfile):
        if os.path.exists(stale):
            os.unlink(stale)
    if not os.path.ismount(rootfs):
        chains = images.layer_chains(images.image_config(st, ctr.image_id))
        st.snapshots.mount(chains, rootfs, os.path.join(base, "upper"),
                           os.path.join(base, "work"))
    etc = {}
    network = opts.get("network") or "none"
    for fname, text in (("hostname", opts["hostname"] + "\n"),
                        ("hosts", spec.etc_hosts(opts["hostname"], network) +
                         hostconfig.extra_hosts(opts)),
                        ("resolv.conf", spec.resolv_conf())):
        path = os.path.join(base, "userdata", fname)
        _write(path, text)
        etc[f"/etc/{fname}"] = path
    config = spec.generate(args=opts["args"], env_list=opts["env"], cwd=opts["workdir"],
                           user_spec=opts["user"], hostname=opts["hostname"], network=network,
                           rootfs=rootfs, etc_files=etc,
                           cgroups_path=f"{opts.get('cgroup_parent') or '/ocish'}/{ctr.id}",
                           seccomp_profile=None if opts["seccomp"] == "unconfined" else
                           seccomp.load(opts["seccomp"]),
                           no_new_privileges=opts["no_new_privileges"],
                           extra_mounts=oci_mounts(st, opts.get("mounts") or [], rootfs),
                           terminal=bool(opts.get("tty")),
                           console_size=opts.get("console_size"))
    hostconfig.apply(config, opts, rootfs)
    _write(os.path.join(p.bundle, "config.json"), json.dumps(config, indent=1))
    rt = runtime_of(st, ctr)
    os.makedirs(rt.root, mode=0o700, exist_ok=True)

    def started(mpid: int) -> None:
        ctr.monitor_pid, ctr.monitor_start = mpid, conmon.pid_start(mpid) or ""
        records.update(st, ctr.id, status="created", monitor_pid=mpid,
                       monitor_start=ctr.monitor_start, exit_code=0, finished="", error="")

    try:
        max_size = (opts.get("log_opts") or {}).get("max-size")
        pid = conmon.spawn(ctr.id, ctr.name, rt.path, rt.root, p, [*exit_command, ctr.id],
                           started, log_driver=opts.get("log_driver") or "k8s-file",
                           log_size_max=size_bytes(max_size) if max_size else None,
                           terminal=bool(opts.get("tty")),
                           stdin=bool(opts.get("interactive")),
                           leave_stdin_open=not opts.get("stdin_once"))
    except conmon.CreateError as exc:
        exc.status = exit_status_of_error(str(exc))
        raise
    records.update(st, ctr.id, pid=pid)


def _teardown(st: Storage, ctr: Container, wait_create: bool = True) -> None:
    """Undo a create: the runtime's container (and so its processes and cgroup), the monitor,
    the mount, the dir, the row. Best effort on each step, so that one failure does not
    leave the rest."""
    import shutil

    release(st, ctr, wait_create)
    shutil.rmtree(ctr.dir(st), ignore_errors=True)
    records.delete(st, ctr.id)
    drop_lock(st, ctr.id)


def drop_lock(st: Storage, cid: str) -> None:
    try:
        os.unlink(os.path.join(st.root, "containers", f"{cid}.lock"))
    except OSError:
        pass


def release(st: Storage, ctr: Container, wait_create: bool = True) -> None:
    """What a container holds while it exists in the runtime: its runtime state (deleting it
    kills what is left), a monitor, the rootfs mount."""
    from .health import stop_runner

    stop_runner(st, ctr)
    p = paths(st, ctr)
    # a monitor whose runtime create is still under way (its ocish was killed meanwhile):
    # the runtime's state is only complete, and so deletable, once the pid file is written
    deadline = time.monotonic() + 60
    while wait_create and monitor_alive(ctr, p) and not os.path.exists(p.pidfile) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        runtime_of(st, ctr).delete(ctr.id)
    except OcishError:
        pass
    if monitor_alive(ctr, p):
        try:
            os.kill(ctr.monitor_pid, 9)  # ours: the start time matches the one recorded
        except OSError:
            pass
    rootfs = os.path.join(p.bundle, "rootfs")
    if os.path.ismount(rootfs):
        unmount(rootfs)


def monitor_alive(ctr: Container, p: conmon.Paths) -> bool:
    """Whether the container's monitor runs (the pid recorded at spawn with its start time,
    or, when its spawner died before recording it, a conmon found by its command line)."""
    if not ctr.monitor_start:
        mpid = conmon.find(ctr.id)
        if mpid is None:
            return False
        ctr.monitor_pid, ctr.monitor_start = mpid, conmon.pid_start(mpid) or ""
    return conmon.pid_start(ctr.monitor_pid) == ctr.monitor_start


def start(st: Storage, ctr: Container, exit_command: list[str]) -> Container:
    """Run a created container, or recreate and run an exited one."""
    with locked(st, ctr.id):
        return start_locked(st, ctr, exit_command)


def start_locked(st: Storage, ctr: Container, exit_command: list[str], by_user: bool = True
                 ) -> Container:
    """start, the container's lock held (a restart policy's restart is not *by_user*: it
    keeps the restart count)."""
    from . import health, policy
    from .state import refresh

    ctr = refresh(st, ctr, locked=True)
    if ctr.status == "running":
        return ctr
    if by_user:
        policy.user_stopped(st, ctr.id, False)
    rt = runtime_of(st, ctr)
    if ctr.status in ("exited", "restarting"):
        release(st, ctr)
        _died(st, ctr, ctr.exit_code)  # if its exit command has not run yet
        try:
            _spawn(st, ctr, exit_command)
        except BaseException as exc:
            release(st, ctr, wait_create=not isinstance(exc, conmon.CreateError))
            raise
    # the start time goes in first: a row that is "created" with a start time is one whose
    # start was cut short (its ocish killed), which refresh asks the runtime about
    started = now()
    records.update(st, ctr.id, started=started)
    try:
        rt.start(ctr.id)
    except OcishError:
        release(st, ctr)
        records.update(st, ctr.id, status="exited", exit_code=125, finished=now())
        raise
    records.update(st, ctr.id, status="running", started=started)
    records.update_options(st, ctr.id, paused=None)
    ctr = records.get(st, ctr.id) or ctr
    # the runner's ocish is the exit command's (this ocish, with its root)
    health.start_runner(st, ctr, exit_command[:exit_command.index("container")])
    events.container(st, ctr, "start")
    return ctr


def kill(st: Storage, ctr: Container, signal: str) -> None:
    """Send a signal to the container's init."""
    from . import control, policy
    from .state import refresh

    ctr = refresh(st, ctr)
    if ctr.status != "running":
        raise OcishError(f"cannot kill container {ctr.id}: container {ctr.id} is not running")
    if _signum(signal) in (9, _signum(ctr.options.get("stop_signal") or "SIGTERM")):
        policy.user_stopped(st, ctr.id, True)  # Docker's ExitOnNext: no restart after this
    if not runtime_of(st, ctr).kill(ctr.id, signal):
        raise OcishError(f"cannot kill container {ctr.id}: the runtime could not signal it")
    control.thaw(st, ctr)
    events.container(st, ctr, "kill", signal=signal)


def _signum(name: str) -> int | None:
    """A signal's number from its number, name or name without SIG."""
    import signal

    if name.isdigit():
        return int(name)
    sig = getattr(signal, name.upper() if name.upper().startswith("SIG") else
                  "SIG" + name.upper(), None)
    return int(sig) if sig is not None else None


def wait(st: Storage, cid: str, timeout: float | None = None) -> int | None:
    """Wait until the container has exited; its exit status (None on timeout)."""
    from .state import refresh

    deadline = None if timeout is None else time.monotonic() + timeout
    # short polls first: a foreground run waits here for the exit file conmon writes right
    # after the output ends, and a fixed 50 ms poll cost it 25 ms on average
    pause = 0.002
    while True:
        ctr = records.get(st, cid)
        if ctr is None:
            code = records.recorded_exit(st, cid)
            if code is None:
                raise OcishError(f"No such container: {cid}")
            return code
        ctr = refresh(st, ctr)
        if ctr.status in ("exited", "restarting"):
            return ctr.exit_code
        if deadline is not None and time.monotonic() > deadline:
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def stop(st: Storage, ctr: Container, timeout: int | None) -> None:
    """The stop signal, then SIGKILL after *timeout* seconds."""
    from . import control, policy
    from .state import refresh

    policy.user_stopped(st, ctr.id, True)  # no restart policy restarts it
    ctr = refresh(st, ctr)
    if ctr.status == "restarting":
        with locked(st, ctr.id):
            if (records.get(st, ctr.id) or ctr).status == "restarting":
                records.update(st, ctr.id, status="exited")
        return
    if ctr.status != "running":
        return
    rt = runtime_of(st, ctr)
    t = timeout if timeout is not None else ctr.options.get("stop_timeout")
    t = DEFAULT_STOP_TIMEOUT if t is None else t
    rt.kill(ctr.id, ctr.options.get("stop_signal") or "SIGTERM")
    control.thaw(st, ctr)
    if wait(st, ctr.id, t) is None:
        rt.kill(ctr.id, "SIGKILL")
        wait(st, ctr.id)
    events.container(st, ctr, "stop")


def cleanup(st: Storage, cid: str, remove: bool = False, exit_code: int | None = None,
            exit_command: list[str] | None = None) -> None:
    """After the container's process has exited (the monitor's exit command, or a refresh
    that found the monitor dead): record the status, release the runtime state and the
    mount, and with *remove* the whole container. The monitor's exit command gives its
    *exit_command* for the restarts of a restart policy (policy.after_exit)."""
    with locked(st, cid):
        removed = _cleanup_locked(st, cid, remove, exit_code)
    if removed is not None:  # Docker's --rm takes the anonymous volumes too
        from ..volumes.attach import remove_anonymous

        remove_anonymous(st, removed.options)
    if exit_command is not None and not remove:
        from . import policy

        policy.after_exit(st, cid, exit_command)


def _cleanup_locked(st: Storage, cid: str, remove: bool,
                    exit_code: int | None) -> Container | None:
    """cleanup's work under the lock; the container if this removed it."""
    ctr = records.get(st, cid)
    if ctr is None:
        drop_lock(st, cid)  # the container went while this waited: its lock goes too
        return None
    code = conmon.read_exit_file(paths(st, ctr))
    if (exit_code is not None or code is None) and monitor_alive(ctr, paths(st, ctr)):
        # a create or start respawned it meanwhile (which deleted the exit file of the run
        # this exit command was for, and released what that run held)
        return None
    if code is None:
        code = exit_code if exit_code is not None else 137
    if ctr.status != "exited":
        records.update(st, cid, status="exited", exit_code=code,
                       finished=exit_time(paths(st, ctr)),
                       error="" if exit_code is None else "the monitor (conmon) died")
    if not remove:
        release(st, ctr)
        _died(st, ctr, code)
        return None
    _died(st, ctr, code)
    records.record_exit(st, cid, code)
    _teardown(st, ctr)  # (which releases: the runtime's delete is not asked twice)
    events.container(st, ctr, "destroy")
    return ctr


def _died(st: Storage, ctr: Container, code: int) -> None:
    """The die event, once for each run (the pid of the run is forgotten)."""
    if ctr.pid:
        records.update(st, ctr.id, pid=0)
        events.container(st, ctr, "die", exitCode=str(code))


def exit_time(p: conmon.Paths) -> str:
    """When the container exited: when its monitor wrote the exit file."""
    try:
        return rfc3339(os.stat(p.exit_file).st_mtime_ns)
    except OSError:
        return now()


def remove(st: Storage, ctr: Container, force: bool, volumes: bool = False) -> None:
    """Remove a container (``-f``: killing it first if it runs; *volumes*: with its anonymous
    volumes)."""
    from . import control
    from .state import refresh

    ctr = refresh(st, ctr)
    if ctr.status in ("running", "restarting") and not force:
        if control.is_paused(ctr):
            raise OcishError(f"cannot remove container {ctr.id}: container is paused: "
                             "unpause and then stop the container before removing or force "
                             "remove")
        if ctr.status == "restarting":
            raise OcishError(f"cannot remove container {ctr.id}: container is restarting: "
                             "stop the container before removing or force remove")
        raise OcishError(f"cannot remove container {ctr.id}: container is running: stop "
                         "the container before removing or force remove")
    if ctr.status == "running":
        runtime_of(st, ctr).kill(ctr.id, "SIGKILL")
        control.thaw(st, ctr)
        wait(st, ctr.id, 30)
    with locked(st, ctr.id):
        if records.get(st, ctr.id) is not None:
            _teardown(st, ctr)
            events.container(st, ctr, "destroy")
    if volumes:
        from ..volumes.attach import remove_anonymous

        remove_anonymous(st, ctr.options)
