"""Driving a runc-compatible runtime through its command line.

Only the subcommands every runc-compatible runtime has are used (``state``, ``start``, ``kill``,
``update``, ``delete``); ``create`` is run by the monitor (conmon), which must be the runtime's
parent to become the container init's reaper. Every runtime gets its own ``--root`` under the storage
root, so that ocirt's and runc's state dirs never mix.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import OcishError


def resolve(path: str) -> str:
    """The absolute path of the runtime binary *path* (a name is looked up on $PATH)."""
    found = path if os.sep in path else shutil.which(path)
    if not found or not os.access(found, os.X_OK):
        raise OcishError(f"runtime {path}: not found or not executable")
    return os.path.abspath(found)


class Runtime:
    """One runtime binary and the state root ocish gives it."""

    def __init__(self, path: str, root: str) -> None:
        self.path, self.root = path, root

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # the runtime's stdin is /dev/null: it must never read the user's terminal
        try:
            res = subprocess.run([self.path, "--root", self.root, *args], capture_output=True,
                                 text=True, stdin=subprocess.DEVNULL, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OcishError(f"runtime {self.path} {args[0]}: {exc}") from None
        if check and res.returncode != 0:
            raise OcishError(f"runtime {os.path.basename(self.path)} {args[0]}: "
                             f"{error_text(res.stderr)}")
        return res

    def state(self, cid: str) -> dict[str, object] | None:
        """The runtime's ``state`` of the container; None if the runtime does not know it."""
        import json

        res = self._run("state", cid, check=False)
        if res.returncode != 0:
            return None
        try:
            data = json.loads(res.stdout)
        except ValueError:
            raise OcishError(f"runtime {self.path} state {cid}: not JSON") from None
        return data if isinstance(data, dict) else None

    def start(self, cid: str) -> None:
        """Run the container's process (created -> running)."""
        self._run("start", cid)

    def kill(self, cid: str, signal: str) -> bool:
        """Send *signal* to the container's init; False if it is no longer running."""
        return self._run("kill", cid, signal, check=False).returncode == 0

    def pids(self, cid: str) -> list[int]:
        """The host pids of the container's processes (the runtime's ``ps --format json``)."""
        import json

        res = self._run("ps", "--format", "json", cid)
        try:
            pids = json.loads(res.stdout) or []
        except ValueError:
            raise OcishError(f"runtime {self.path} ps {cid}: not JSON") from None
        return [int(p) for p in pids]

    def update(self, cid: str, resources: dict[str, object]) -> None:
        """New resource limits for a running container: ``update --resources -`` with the
        runtime spec's LinuxResources as JSON on stdin (the runc CLI contract)."""
        import json

        try:
            res = subprocess.run([self.path, "--root", self.root, "update", "--resources", "-",
                                  cid], input=json.dumps(resources), capture_output=True,
                                 text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OcishError(f"runtime {self.path} update: {exc}") from None
        if res.returncode != 0:
            raise OcishError(f"runtime {os.path.basename(self.path)} update: "
                             f"{error_text(res.stderr)}")
    def pause(self, cid: str) -> None:
        """Freeze the container's processes (its cgroup's freezer)."""
        self._run("pause", cid)

    def resume(self, cid: str) -> None:
        """Thaw a paused container."""
        self._run("resume", cid)

    def delete(self, cid: str) -> None:
        """Delete the container's runtime state (killing what is left of it)."""
        res = self._run("delete", "--force", cid, check=False)
        if res.returncode != 0 and self.state(cid) is not None:
            raise OcishError(f"runtime {os.path.basename(self.path)} delete: "
                             f"{error_text(res.stderr)}")


def error_text(stderr: str) -> str:
    """The runtime's error as one line: its last non-empty stderr line, without its own
    ``ocirt:``/``runc:`` style prefix or logrus ``level=error msg=`` decoration."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return "failed (no message)"
    line = lines[-1]
    if 'msg="' in line:
        line = line.split('msg="', 1)[1].rsplit('"', 1)[0].replace('\\"', '"')
    return line


def exit_status_of_error(message: str) -> int:
    """Docker's status for a process that could not run: 127 not found, 126 not invocable,
    125 anything else (an engine error)."""
    low = message.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        return 127
    if "permission denied" in low or "exec format error" in low or "is a directory" in low:
        return 126
    return 125
