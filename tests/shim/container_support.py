"""Helpers for the ocish container tests: ``Ocish`` (an ocish with a private root and a
runtime), the check that a test left nothing behind, and polling without timed assertions."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from shim_support import OCISH, Images, ocish

CGROUP_PARENT = f"/ocish-test-{os.getpid()}"
CGROUP_ROOT = Path("/sys/fs/cgroup")


class Ocish:
    """ocish with a private root, a runtime and the test registry's options."""

    def __init__(self, root: Path, runtime: str, images: Images) -> None:
        self.root, self.runtime, self.image = root, runtime, images.ref()

    def argv(self) -> list[str]:
        """The command line of this ocish (for a Popen)."""
        return [str(OCISH), "--root", str(self.root), "--runtime", self.runtime]

    def __call__(self, *args: str, check: bool = True, **kw: object
                 ) -> subprocess.CompletedProcess[str]:
        return ocish(self.root, "--runtime", self.runtime, *args, check=check, **kw)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``ocish run`` of the test image (pulled if missing) with the options the tests
        need, *args* being the run options, then ``--``-free: the image comes last."""
        *opts, cmd = _split(args)
        return self("run", "--tls-verify=false", "--cgroup-parent", CGROUP_PARENT, *opts,
                    self.image, *cmd, check=check)

    def inspect(self, name: str) -> dict[str, object]:
        return json.loads(self("inspect", name).stdout)[0]  # type: ignore[no-any-return]


def _split(args: tuple[str, ...]) -> tuple[str, ...] | list[object]:
    """(options..., [command]): the command follows a literal "IMAGE" in *args*."""
    i = args.index("IMAGE") if "IMAGE" in args else len(args)
    return [*args[:i], list(args[i + 1:])]


def assert_nothing_left(root: Path) -> None:
    """No container row, dir, mount, monitor, runtime state or cgroup is left."""
    assert ocish(root, "ps", "-a", "-q").stdout == ""
    ctrs = root / "containers"
    assert not ctrs.exists() or os.listdir(ctrs) == []
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(root) not in mounts
    for rt in (root / "runtime").glob("*"):
        assert os.listdir(rt) == [], f"runtime state left in {rt}"
    # the monitor's exit command may still be finishing (it finds nothing left to do)
    wait_for(lambda: not _processes_of(root), f"the end of {_processes_of(root)}", 30)
    for ctl in CGROUP_ROOT.iterdir():
        parent = ctl / CGROUP_PARENT.lstrip("/")
        if parent.is_dir():
            assert [p for p in parent.iterdir() if p.is_dir()] == [], f"cgroup left in {parent}"


def _processes_of(root: Path) -> list[bytes]:
    """The command lines of the processes that name *root* (monitors, exit commands)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and proc.name != str(os.getpid()):
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(root).encode() in cmdline:
                found.append(cmdline)
    return found


def wait_for(cond: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"no {what}"
        time.sleep(0.05)
