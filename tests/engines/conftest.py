"""Real engines (podman with conmon, containerd with its runc v2 shim, dockerd) driving the
runtime under test (``--runtime``, default ocirt). Each engine runs with its own config, storage,
state and sockets under the test session's temporary directory; images are built locally from
busybox with umoci and skopeo (no registry, no network)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class Runtime:
    path: str

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def is_runc(self) -> bool:
        return self.name == "runc"


@pytest.fixture(scope="session")
def runtime(request: pytest.FixtureRequest) -> Runtime:
    path = os.path.abspath(str(request.config.getoption("--runtime")))
    if not os.access(path, os.X_OK):
        hint = " (make test-install puts it there)" if path.startswith(str(REPO / "build")) else ""
        pytest.exit(f"--runtime {path}: not an executable{hint}", returncode=4)
    return Runtime(path)


def need(*tools: str) -> None:
    """Skip (with the reason) when an engine's binaries are not installed."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (make deps installs them)")


@dataclass(frozen=True)
class Images:
    """One busybox image in every form the engines import."""

    rootfs_tar: Path         # plain rootfs tarball (podman import)
    oci_layout: Path         # umoci's OCI layout, tag "latest"
    docker_archive: Path     # docker.io/library/busybox:latest (docker load, ctr import)
    oci_archive: Path        # docker.io/library/busybox:latest as an OCI archive


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    need("umoci", "skopeo")
    base = tmp_path_factory.mktemp("images")
    rootfs = base / "rootfs"
    subprocess.run([str(REPO / "bundles" / "mkrootfs"), str(rootfs)], check=True,
                   capture_output=True)
    (rootfs / "var" / "www").mkdir(parents=True, exist_ok=True)
    (rootfs / "var" / "www" / "index.html").write_text("<h1>hello from busybox httpd</h1>\n")
    tar = base / "busybox-rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
    layout = base / "oci-busybox"

    def run(*cmd: str) -> None:
        subprocess.run(list(cmd), check=True, capture_output=True, cwd=base)

    run("umoci", "init", "--layout", str(layout))
    run("umoci", "new", "--image", f"{layout}:latest")
    run("umoci", "raw", "add-layer", "--image", f"{layout}:latest", str(tar))
    run("umoci", "config", "--image", f"{layout}:latest", "--config.cmd", "/bin/sh",
        "--config.env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--architecture", "amd64" if os.uname().machine == "x86_64" else "arm64",
        "--os", "linux")
    docker_archive = base / "busybox-docker.tar"
    oci_archive = base / "busybox-oci.tar"
    run("skopeo", "copy", f"oci:{layout}:latest",
        f"docker-archive:{docker_archive}:docker.io/library/busybox:latest")
    run("skopeo", "copy", f"oci:{layout}:latest",
        f"oci-archive:{oci_archive}:docker.io/library/busybox:latest")
    return Images(tar, layout, docker_archive, oci_archive)
