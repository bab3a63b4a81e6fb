"""Healthchecks without a daemon.

The check (``--health-cmd`` and its options, else the image's HEALTHCHECK, none with
``--no-healthcheck``) is kept in the container's options in Docker's config shape
(``Test``, ``Interval``, ``Timeout``, ``StartPeriod``, ``Retries``; durations in ns). One probe
is ``ocish healthcheck run CONTAINER``: the test runs in the container through the runtime's
``exec``, and the result goes to ``<container dir>/health.json`` (inspect's State.Health:
Status, FailingStreak and the last 5 results).

The probes are driven by a runner started with the container: a ``/bin/sh`` loop of
``sleep INTERVAL`` and ``ocish healthcheck run`` (measured: dash and coreutils' sleep, 0.36
MiB PSS together, 3.4 MiB RSS mostly of shared libc; a Python loop is 14 MiB RSS). It is a
session (and process group) of
its own, recorded by pid and start time in ``health.runner``; releasing the container kills
that group, and the loop also ends by itself once a probe reports that the container no
longer runs (exit status above 1).
"""

from __future__ import annotations

import os
import subprocess
import time

from ..errors import OcishError
from ..events import log as events
from ..monitor import conmon
from ..storage.root import Storage
from ..units import go_duration
from . import lifecycle, records
from .records import Container

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULTS = {"Interval": 30 * 10**9, "Timeout": 30 * 10**9, "StartPeriod": 0, "Retries": 3}
MAX_OUTPUT = 4096  # Docker keeps this much of a probe's output
KEEP = 5  # results in the log

_RUNNER = 'while sleep "$0"; do "$@" >/dev/null 2>&1; [ $? -le 1 ] || exit 0; done'


def resolve(flags: dict[str, Any], image_config: dict[str, Any]) -> dict[str, Any] | None:
    """The container's check: the image's, with what the flags (``cmd``, ``interval``,
    ``timeout``, ``start_period``, ``retries``, ``none``) override; None if there is none."""
    given = {k: v for k, v in flags.items() if v not in (None, False)}
    if flags.get("none"):
        if len(given) > 1:
            raise OcishError("--no-healthcheck conflicts with --health-* options", status=125)
        return {"Test": ["NONE"]}
    check = dict(image_config.get("Healthcheck") or {})
    if flags.get("cmd"):
        check["Test"] = ["CMD-SHELL", flags["cmd"]]
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start_period", "StartPeriod")):
        if flags.get(flag) is not None:
            try:
                secs = go_duration(flags[flag])
            except ValueError:
                raise OcishError(f"invalid argument {flags[flag]!r} for "
                                 f"--health-{flag.replace('_', '-')}: time: invalid duration",
                                 status=125) from None
            if secs < 0:
                raise OcishError(f"--health-{flag.replace('_', '-')} cannot be negative",
                                 status=125)
            if 0 < secs < 0.001:
                raise OcishError(f"--health-{flag.replace('_', '-')} cannot be less than 1ms",
                                 status=125)
            check[key] = int(secs * 10**9)
    if flags.get("retries") is not None:
        if flags["retries"] < 0:
            raise OcishError("--health-retries cannot be negative", status=125)
        check["Retries"] = flags["retries"]
    return check if check.get("Test") else None


def check_of(ctr: Container) -> dict[str, Any] | None:
    """The container's check with Docker's defaults; None without one (or with NONE)."""
    check = ctr.options.get("healthcheck")
    if not check or not check.get("Test") or check["Test"][0] == "NONE":
        return None
    return {k: check.get(k) or v for k, v in DEFAULTS.items()} | {"Test": check["Test"]}


def _file(st: Storage, ctr: Container, name: str) -> str:
    return os.path.join(ctr.dir(st), name)


def state(st: Storage, ctr: Container) -> dict[str, Any] | None:
    """inspect's State.Health (None for a container without a check)."""
    import json

    if check_of(ctr) is None:
        return None
    try:
        with open(_file(st, ctr, "health.json"), "rb") as f:
            data: dict[str, Any] = json.load(f)
            return data
    except (OSError, ValueError):
        return {"Status": "starting", "FailingStreak": 0, "Log": []}


def _save(st: Storage, ctr: Container, data: dict[str, Any]) -> None:
    import json

    path = _file(st, ctr, "health.json")
    tmp = f"{path}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def start_runner(st: Storage, ctr: Container, ocish: list[str]) -> None:
    """With the container started: a fresh ``starting`` state and the probe loop. *ocish* is
    the command line of this ocish with its root."""
    check = check_of(ctr)
    if check is None:
        return
    _save(st, ctr, {"Status": "starting", "FailingStreak": 0, "Log": []})
    interval = f"{check['Interval'] / 10**9:.3f}"
    proc = subprocess.Popen(["/bin/sh", "-c", _RUNNER, interval, *ocish, "healthcheck", "run",
                             ctr.id], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    fd = os.open(_file(st, ctr, "health.runner"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC |
                 os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{proc.pid} {conmon.pid_start(proc.pid) or ''}\n")


def stop_runner(st: Storage, ctr: Container) -> None:
    """Kill the probe loop's process group, if the recorded leader is still that process."""
    path = _file(st, ctr, "health.runner")
    try:
        with open(path) as f:
            pid_text, _, start = f.read().strip().partition(" ")
        os.unlink(path)
    except OSError:
        return
    if pid_text.isdigit() and start and conmon.pid_start(int(pid_text)) == start:
        try:
            os.killpg(int(pid_text), 9)
        except OSError:
            pass


def run(st: Storage, ctr: Container) -> str:
    """One probe; the status after it (starting, healthy, unhealthy)."""
    import fcntl

    check = check_of(ctr)
    if check is None:
        raise OcishError(f"container {ctr.id} has no defined healthcheck", status=125)
    # not state.refresh: a refresh that finds the monitor dead cleans up, and that kills
    # this probe's own process group (the runner's)
    if ctr.status != "running" or not lifecycle.monitor_alive(ctr, lifecycle.paths(st, ctr)):
        raise OcishError(f"container {ctr.id} is not running", status=125)
    if ctr.options.get("paused"):
        raise OcishError(f"container {ctr.id} is paused", status=125)
    try:
        lock = os.open(_file(st, ctr, "health.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW |
                       os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        raise OcishError(f"container {ctr.id} is not running", status=125) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = _probe(st, ctr, check)
        return _record(st, ctr, check, result)
    finally:
        os.close(lock)


def _probe(st: Storage, ctr: Container, check: dict[str, Any]) -> dict[str, Any]:
    """Run the test in the container: Docker's result (Start, End, ExitCode, Output)."""
    import json

    test = list(check["Test"])
    args = ["/bin/sh", "-c", " ".join(test[1:])] if test[0] == "CMD-SHELL" else test[1:]
    with open(os.path.join(lifecycle.paths(st, ctr).bundle, "config.json"), "rb") as f:
        process = json.load(f)["process"]
    process.update(args=args, terminal=False)
    base = _file(st, ctr, f"health-{os.getpid()}")
    fd = os.open(base + ".json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW |
                 os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(process, f)
    rt = lifecycle.runtime_of(st, ctr)
    timeout = check["Timeout"] / 10**9
    start = lifecycle.now()
    proc = subprocess.Popen([rt.path, "--root", rt.root, "exec", "--process", base + ".json",
                             "--pid-file", base + ".pid", ctr.id], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = _Head(proc.stdout)
    try:
        code = proc.wait(timeout=timeout)
        out.join()
        output = bytes(out.data).decode(errors="replace")
    except subprocess.TimeoutExpired:
        _kill_probe(base + ".pid")
        proc.kill()
        proc.wait()
        code = -1
        output = f"Health check exceeded timeout ({_go(timeout)})"
    finally:
        assert proc.stdout is not None
        proc.stdout.close()
        for ext in (".json", ".pid"):
            try:
                os.unlink(base + ext)
            except OSError:
                pass
    return {"Start": start, "End": lifecycle.now(), "ExitCode": code, "Output": output}


class _Head:
    """The first MAX_OUTPUT bytes of a probe's output, the rest read and dropped (the
    container is not trusted: its probe may write without end)."""

    def __init__(self, stream: Any) -> None:
        import threading

        self.stream, self.data = stream, bytearray()
        # a daemon thread: a process the probe left behind may hold the pipe open
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while chunk := self.stream.read1(65536):
                if len(self.data) < MAX_OUTPUT:
                    self.data += chunk[:MAX_OUTPUT - len(self.data)]
        except (OSError, ValueError):
            pass

    def join(self) -> None:
        self.thread.join(timeout=1)


def _kill_probe(pidfile: str) -> None:
    """The probe's process in the container (the runtime wrote its pid: ours)."""
    try:
        with open(pidfile) as f:
            os.kill(int(f.read().strip()), 9)
    except (OSError, ValueError):
        pass


def _go(seconds: float) -> str:
    return f"{seconds:g}s"


def _record(st: Storage, ctr: Container, check: dict[str, Any], result: dict[str, Any]
            ) -> str:
    """Docker's rules: a success makes it healthy; a failure counts (not during the start
    period while still starting) and Retries of them in a row make it unhealthy."""
    cur = state(st, ctr) or {"Status": "starting", "FailingStreak": 0, "Log": []}
    before = cur["Status"]
    if result["ExitCode"] == 0:
        cur["Status"], cur["FailingStreak"] = "healthy", 0
    else:
        in_start_period = before == "starting" and \
            time.time() - lifecycle.epoch(ctr.started) < check["StartPeriod"] / 10**9
        if not in_start_period:
            cur["FailingStreak"] = int(cur.get("FailingStreak") or 0) + 1
            if cur["FailingStreak"] >= check["Retries"]:
                cur["Status"] = "unhealthy"
    cur["Log"] = (list(cur.get("Log") or []) + [result])[-KEEP:]
    if records.get(st, ctr.id) is None:
        return str(cur["Status"])  # removed during the probe
    try:
        _save(st, ctr, cur)
    except OSError:
        return str(cur["Status"])  # removed during the probe
    if cur["Status"] != before:
        events.container(st, ctr, f"health_status: {cur['Status']}")
    return str(cur["Status"])
