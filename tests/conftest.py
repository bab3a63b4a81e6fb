"""ocirt's own tests: run as root against the real kernel, with the venv's ocirt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OCIRT = REPO / ".venv" / "bin" / "ocirt"
# What `make test-install` (the recipe of `make install`) puts in the checkout: the engine tests
# and spec-tests run it by default (test what ships).
INSTALLED = REPO / "build" / "prefix"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runtime", default=str(INSTALLED / "bin" / "ocirt"),
                     help="the runc-compatible runtime the engine tests plug into the engines "
                          "(default: build/prefix/bin/ocirt, from make test-install); an "
                          "absolute path")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A private --root for one test; fails the test if a container is left in it."""
    state = tmp_path / "state"
    yield state
    left = sorted(os.listdir(state)) if state.exists() else []
    for cid in left:
        subprocess.run([str(OCIRT), "--root", str(state), "delete", "--force", cid],
                       capture_output=True, timeout=30)
    assert not left, f"containers left behind: {left}"


def ocirt(root: Path | None, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    cmd = [str(OCIRT)] + (["--root", str(root)] if root else []) + list(args)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run(cmd, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="session", autouse=True)
def _remove_test_cgroup_parents() -> object:
    """Tests put containers under /ocirt-test-*/...: the runtime removes each container's own
    cgroup; the empty parents are ours to remove."""
    yield
    from ocirt.cgroups import detect

    for h in detect.hierarchies():
        for entry in os.scandir(h.mountpoint):
            if entry.is_dir() and entry.name.startswith("ocirt-test"):
                try:
                    os.rmdir(entry.path)
                except OSError:
                    pass
