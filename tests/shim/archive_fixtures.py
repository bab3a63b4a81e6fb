"""Fixtures for the ocish archive, rootfs and image-admin tests (a pytest plugin, loaded with
pytest_plugins like shim_fixtures): a scratch dir removed after the test, a private podman and
a private dockerd, each stopped and removed pass or fail."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from archive_support import Dockerd, PrivatePodman, entry_name


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    """The test's tmp_path, removed after it."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePodman]:
    """A podman of the test's own (storage, run dir, tmp dir, network config)."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    pm = PrivatePodman(tmp_path_factory.mktemp("podman"))
    try:
        yield pm
    finally:
        problems = pm.close()
    assert not problems, problems


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    """Debian's dockerd in a network namespace of its own, with its data under a tmp dir (the
    engine tests' helper); skipped where dockerd or the docker CLI is missing."""
    for tool in ("dockerd", "docker", "containerd", "nsenter", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    base = tmp_path_factory.mktemp("dockerd")
    d = Dockerd(base, "/usr/sbin/runc", entry_name("runc"))
    problems: list[str] = []
    try:
        try:
            d.start()
        except RuntimeError as exc:
            pytest.skip(f"dockerd does not start here: {str(exc)[-300:]}")
        yield d
    finally:
        problems = d.stop()
        shutil.rmtree(base, ignore_errors=True)
    assert not problems, problems
