"""Fixtures for ocish (a pytest plugin the test modules load with pytest_plugins, not a conftest:
a tests/shim/conftest.py would shadow tests/conftest.py, which other test files import):
a real docker-registry on 127.0.0.1 and busybox images built by umoci, pushed with skopeo.
The registry runs with its own config and storage in a tmp dir and is stopped by pid at the end
of the session, pass or fail.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from shim_support import (
    Images,
    Registry,
    big_layer,
    bundle_step,
    layer1,
    layer2,
    layer3,
    push,
    run,
    skopeo_digest,
    start_registry,
)


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's scratch dir (removed at the end)."""
    path = tmp_path_factory.mktemp("ocish-session")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def layout(work: Path) -> Path:
    """An OCI layout with `base` (3 layers) and `big` (base + 4 MiB of random data)."""
    lay = work / "layout"
    run("umoci", "init", "--layout", lay)
    run("umoci", "new", "--image", f"{lay}:base")
    run("umoci", "config", "--image", f"{lay}:base", "--config.cmd", "/bin/sh",
        "--config.env", "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
    for step in (layer1, layer2, layer3):
        bundle_step(lay, "base", work, step)
    run("umoci", "config", "--image", f"{lay}:base", "--tag", "big")
    bundle_step(lay, "big", work, big_layer)
    return lay


@pytest.fixture(scope="session")
def registry(work: Path) -> Iterator[Registry]:
    """A plain-HTTP docker-registry for the session."""
    with start_registry(work / "registry") as reg:
        yield reg


@pytest.fixture(scope="session")
def images(registry: Registry, layout: Path) -> Images:
    """The test images, pushed: OCI and Docker schema2 forms, and a big one."""
    img = Images(registry, layout)
    push(registry, layout, "base", img.repo)
    push(registry, layout, "base", img.docker_repo, "latest", "--format", "v2s2")
    push(registry, layout, "big", img.big_repo)
    img.digest = skopeo_digest(registry, img.repo)
    img.docker_digest = skopeo_digest(registry, img.docker_repo)
    img.big_digest = skopeo_digest(registry, img.big_repo)
    return img


@pytest.fixture
def ocish_root(tmp_path: Path) -> Iterator[Path]:
    """A private ocish storage root, removed after the test."""
    path = tmp_path / "ocish-root"
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """The test's tmp_path (for more roots, layouts, auth files), removed after it."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture(scope="session")
def registry2(work: Path) -> Iterator[Registry]:
    """A second plain-HTTP docker-registry, to push to."""
    with start_registry(work / "registry2") as reg:
        yield reg
