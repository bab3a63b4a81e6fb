"""Fixtures for the ocish container tests (a pytest plugin, loaded with pytest_plugins after
shim_fixtures): ``oc``, an ocish with a private root, run once with ocirt (the --runtime of the
test session: build/prefix/bin/ocirt, else the dev venv's) and once with runc as the runtime,
checked to have left nothing behind after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from container_support import CGROUP_PARENT, CGROUP_ROOT, Ocish, assert_nothing_left
from shim_support import REPO, Images, ocish


@pytest.fixture(scope="session", autouse=True)
def _cgroup_parent() -> Iterator[None]:
    """The containers' cgroups go under a parent of this session's; the runtimes remove each
    container's own, the empty parents are removed here."""
    yield
    for ctl in CGROUP_ROOT.iterdir():
        parent = ctl / CGROUP_PARENT.lstrip("/")
        if parent.is_dir():
            parent.rmdir()


@pytest.fixture(params=["ocirt", "runc"])
def runtime(request: pytest.FixtureRequest) -> str:
    if request.param == "runc":
        return "/usr/sbin/runc"
    path = Path(request.config.getoption("--runtime"))
    return str(path if path.exists() else REPO / ".venv" / "bin" / "ocirt")


@pytest.fixture
def oc(ocish_root: Path, runtime: str, images: Images) -> Iterator[Ocish]:
    o = Ocish(ocish_root, runtime, images)
    yield o
    # whatever a failed test left: removed, then checked
    for cid in ocish(ocish_root, "ps", "-a", "-q", "--no-trunc", check=False).stdout.split():
        ocish(ocish_root, "rm", "-f", cid, check=False)
    assert_nothing_left(ocish_root)
