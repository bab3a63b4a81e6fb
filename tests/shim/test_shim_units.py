"""Small pure parts: references, platforms, challenges, chain IDs, output; CLI errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from shim_support import OCISH, ocish

from shim.cli.output import human_duration, parse_time
from shim.errors import OcishError
from shim.images import platforms
from shim.images.reference import familiar, parse
from shim.registry.client import parse_challenge
from shim.storage.snapshots import chain_ids
from shim.threads import run_all
from shim.units import human_size

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(("text", "want"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("user/app:1.0", "docker.io/user/app:1.0"),
    ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest"),
    ("localhost/x:y", "localhost/x:y"),
    (f"quay.io/a/b@{D}", f"quay.io/a/b@{D}"),
    (f"r.io/a:t@{D}", f"r.io/a:t@{D}"),
])
def test_reference_parse(text: str, want: str) -> None:
    assert str(parse(text)) == want


@pytest.mark.parametrize("text", ["", "Busybox", "a:b:c", "a@sha256:12", "a/:x", " a"])
def test_reference_invalid(text: str) -> None:
    with pytest.raises(OcishError):
        parse(text)


def test_familiar() -> None:
    assert familiar("docker.io/library/busybox") == "busybox"
    assert familiar("docker.io/u/x") == "u/x"
    assert familiar("127.0.0.1:5000/u/x") == "127.0.0.1:5000/u/x"


def test_platform_select() -> None:
    index = {"manifests": [
        {"digest": "arm", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
        {"digest": "arm7", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "arm64", "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "att", "platform": {"os": "unknown", "architecture": "unknown"}},
        {"digest": "amd64", "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    assert platforms.select(index, platforms.parse("linux/arm/v7"))["digest"] == "arm7"
    assert platforms.select(index, platforms.parse("linux/arm64/v8"))["digest"] == "arm64"
    assert platforms.select(index, platforms.parse("linux/amd64"))["digest"] == "amd64"
    with pytest.raises(OcishError, match="no matching manifest"):
        platforms.select(index, platforms.parse("windows/amd64"))
    with pytest.raises(OcishError):
        platforms.parse("linux")


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "reg",
                      "scope": "repository:a/b:pull"}
    assert parse_challenge('Basic realm="basic-realm"') == ("basic", {"realm": "basic-realm"})


def test_chain_ids() -> None:
    import hashlib

    a, b = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    assert chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()]


def test_run_all() -> None:
    import threading
    from functools import partial

    together = threading.Barrier(3, timeout=60)  # passes only if 3 jobs run at once
    done: list[int] = []

    def job(i: int) -> None:
        if i < 3:
            together.wait()
        done.append(i)
        if i in (4, 6):
            raise ValueError(str(i))

    run_all([partial(job, i) for i in (0, 1, 2, 3)], 3)
    assert sorted(done) == [0, 1, 2, 3]
    done.clear()
    together.reset()
    with pytest.raises(ValueError, match="^4$"):  # the first failed job's, in the jobs' order
        run_all([partial(job, i) for i in range(20)], 3)
    assert 4 in done
    done.clear()
    with pytest.raises(ValueError, match="^4$"):  # one worker: in order, stopping at 4
        run_all([partial(job, i) for i in range(3, 8)], 1)
    assert done == [3, 4]


def test_output_helpers() -> None:
    assert human_size(1982520) == "1.98MB"
    assert human_size(999) == "999B"
    assert human_size(4_260_000_000) == "4.26GB"
    assert human_duration(0.2) == "Less than a second"
    assert human_duration(90) == "About a minute"
    assert human_duration(3 * 86400) == "3 days"
    assert parse_time("2024-01-02T03:04:05.123456789Z") == pytest.approx(1704164645.123456)
    assert parse_time("garbage") is None


@pytest.mark.parametrize("args", [
    ["frobnicate"],
    ["pull"],
    ["pull", "Not/Valid"],
    ["pull", "--platform", "linux", "x"],
    ["pull", "--tls-verify=maybe", "x"],
    ["pull", "--tls-verify=false", "127.0.0.1:1/nothing/here:latest"],
    ["image", "inspect", "nothing"],
    ["rmi", "nothing"],
    ["tag", "nothing", "other"],
    ["tag", "nothing", "Bad:Ref"],
    ["images", "--format", "yaml"],
])
def test_errors_are_one_line(tmp_path: Path, args: list[str]) -> None:
    res = ocish(tmp_path / "root", *args, check=False)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocish: "), res.stderr


def test_help_and_version(tmp_path: Path) -> None:
    for cmd in (["pull"], ["images"], ["tag"], ["rmi"], ["image", "inspect"], ["image", "ls"],
                ["push"], ["image", "push"], ["login"], ["logout"]):
        res = ocish(tmp_path, *cmd, "--help")
        assert res.stdout.startswith("usage: ocish"), cmd
    assert subprocess.run([str(OCISH), "version"], capture_output=True, text=True,
                          check=True).stdout.startswith("ocish version ")


def test_root_from_environment(tmp_path: Path) -> None:
    import os

    env = dict(os.environ, OCISH_ROOT=str(tmp_path / "envroot"))
    res = subprocess.run([str(OCISH), "images"], capture_output=True, text=True, env=env)
    assert res.returncode == 0 and (tmp_path / "envroot" / "ocish.db").is_file()
