"""Lifecycle commands: restart, pause, unpause, rename, container prune, healthcheck run and
system boot; and the run/create flags of restart policies and healthchecks."""

from __future__ import annotations

import argparse
import sys

from ..errors import OcishError
from . import groups
from .containercmds import _add, _each, _exit_command, _storage

TYPE_CHECKING = False  # not typing's: every command imports this module, typing costs ms
if TYPE_CHECKING:
    from typing import Any


def add_run_options(p: Any) -> None:
    """``run``/``create``: ``--restart`` and the healthcheck flags."""
    p.add_argument("--restart", default=None, metavar="POLICY",
                   help="no (default), on-failure[:N], always or unless-stopped")
    p.add_argument("--health-cmd", help="the command that checks the container's health")
    p.add_argument("--health-interval", metavar="DURATION", help="time between checks "
                   "(default 30s)")
    p.add_argument("--health-timeout", metavar="DURATION", help="longest a check may run "
                   "(default 30s)")
    p.add_argument("--health-retries", type=int, metavar="N",
                   help="failures in a row that make it unhealthy (default 3)")
    p.add_argument("--health-start-period", metavar="DURATION",
                   help="time to start up in which failures do not count (default 0s)")
    p.add_argument("--no-healthcheck", action="store_true", help="no healthcheck (not the "
                   "image's either)")


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """What add_run_options' flags put in the container's options."""
    return {"restart": args.restart or "no", "health": {
        "cmd": args.health_cmd, "interval": args.health_interval,
        "timeout": args.health_timeout, "retries": args.health_retries,
        "start_period": args.health_start_period, "none": args.no_healthcheck}}


def cmd_restart(args: argparse.Namespace) -> int:
    """Restart containers (stop, then start; the same container)."""
    from ..containers import control, records

    st = _storage(args)
    return _each(args.containers, lambda c: control.restart(
        st, records.find(st, c), args.time, _exit_command(st, False)))


def cmd_pause(args: argparse.Namespace) -> int:
    """Pause all processes of containers."""
    from ..containers import control, records

    st = _storage(args)
    return _each(args.containers, lambda c: control.pause(st, records.find(st, c)))


def cmd_unpause(args: argparse.Namespace) -> int:
    """Unpause all processes of containers."""
    from ..containers import control, records

    st = _storage(args)
    return _each(args.containers, lambda c: control.unpause(st, records.find(st, c)))


def cmd_rename(args: argparse.Namespace) -> int:
    """Rename a container."""
    from ..containers import control, records

    st = _storage(args)
    control.rename(st, records.find(st, args.container), args.new_name.lstrip("/"))
    return 0


def _prune_filters(filters: list[str]) -> tuple[float | None, list[tuple[str, str | None,
                                                                          bool]]]:
    from .eventcmds import parse_when

    until, labels = None, []
    for f in filters:
        key, sep, value = f.partition("=")
        if key == "until" and sep:
            until = parse_when(value, "until")
        elif key in ("label", "label!") and sep:
            k, has_value, v = value.partition("=")
            labels.append((k, v if has_value else None, key == "label"))
        else:
            raise OcishError(f"invalid filter '{f}': only until= and label= are supported")
    return until, labels


def cmd_prune(args: argparse.Namespace) -> int:
    """Remove all stopped containers."""
    from ..containers import control
    from ..units import human_size

    until, labels = _prune_filters(args.filter or [])
    if not args.force:
        sys.stdout.write("WARNING! This will remove all stopped containers.\n"
                         "Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    removed, space = control.prune(_storage(args), until, labels)
    if removed:
        sys.stdout.write("Deleted Containers:\n" + "".join(i + "\n" for i in removed) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(space)}\n")
    return 0


def cmd_healthcheck_run(args: argparse.Namespace) -> int:
    """Run a container's healthcheck once: exit 0 healthy, 1 (and the status) otherwise."""
    from ..containers import health, records

    st = _storage(args)
    status = health.run(st, records.find(st, args.container))
    if status != "healthy":
        sys.stdout.write(status + "\n")
        return 1
    return 0


def cmd_boot(args: argparse.Namespace) -> int:
    """After the host started: end the containers a reboot ended, start the `always` ones."""
    from ..containers.boot import boot

    st = _storage(args)
    errors = boot(st, _exit_command(st, False))
    for err in errors:
        sys.stderr.write(f"ocish: {err}\n")
    return 1 if errors else 0


def _register(sub: Any) -> None:
    p = _add(sub, "restart", cmd_restart, "restart containers")
    p.add_argument("-t", "--time", type=int, default=None,
                   help="seconds to wait before killing (default: the stop timeout)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = _add(sub, "pause", cmd_pause, "pause all processes within containers")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = _add(sub, "unpause", cmd_unpause, "unpause all processes within containers")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = _add(sub, "rename", cmd_rename, "rename a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")


def register(sub: Any) -> None:
    """The commands at top level and under ``ocish container``; ``container prune``,
    ``healthcheck run`` and ``system boot``."""
    _register(sub)
    csub = groups.group(sub, "container", "manage containers")
    _register(csub)
    p = _add(csub, "prune", cmd_prune, "remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.add_argument("--filter", action="append", metavar="FILTER",
                   help="until=TIMESTAMP|DURATION, label=KEY[=VALUE], label!=KEY[=VALUE]")
    hsub = groups.group(sub, "healthcheck", "manage healthchecks")
    p = _add(hsub, "run", cmd_healthcheck_run, "run a container's healthcheck once")
    p.add_argument("container", metavar="CONTAINER")
    ssub = groups.group(sub, "system", "manage ocish")
    _add(ssub, "boot", cmd_boot, "run once at host start: end the containers a reboot ended "
         "and start those with restart policy always (or unless-stopped)")
