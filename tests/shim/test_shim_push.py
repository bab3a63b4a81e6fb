"""ocish push against real docker-registries: uploads (monolithic and chunked), existence
checks, cross-repository mounts; what it pushed is read back by skopeo."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from shim_support import (
    Images,
    Registry,
    ocish,
    one_line_error,
    run,
    skopeo_digest,
)

PULL = ("pull", "--tls-verify=false", "-q")
PUSH = ("push", "--tls-verify=false")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

pytest_plugins = ["shim_fixtures"]


def _blob_writes(reg: Registry, since: int) -> list[str]:
    """The upload requests (POST, PATCH, PUT of blobs) served since request number *since*."""
    return [f"{r.method} {r.path} {r.status}" for r in reg.requests(since)
            if "/blobs/" in r.path and r.method in ("POST", "PATCH", "PUT")]


def _blobs(reg: Registry, repo: str, tag: str) -> list[tuple[str, int]]:
    """(digest, size) of the config and layers of a manifest in *reg*."""
    manifest = json.loads(reg.manifest(repo, tag)[0])
    return [(d["digest"], d["size"]) for d in [manifest["config"], *manifest["layers"]]]


def _skopeo_pull(reg: Registry, repo: str, tag: str, dest: Path) -> None:
    """skopeo copies the image out (it checks every blob's digest on the way)."""
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{reg.host}/{repo}:{tag}",
        f"oci:{dest}:{tag}")


def test_push_to_another_registry(images: Images, registry2: Registry, ocish_root: Path,
                                  scratch: Path) -> None:
    ocish(ocish_root, *PULL, images.ref())
    dest = f"{registry2.host}/copy/busybox:v1"
    out = ocish(ocish_root, *PUSH, images.ref(), dest).stdout.splitlines()
    assert out[0] == f"The push refers to repository [{registry2.host}/copy/busybox]"
    assert sum(line.endswith(": Pushed") for line in out) == 3
    assert out[-1].startswith(f"v1: digest: {images.digest} size: ")
    # the same manifest, byte for byte: skopeo sees the digest of the original
    assert skopeo_digest(registry2, "copy/busybox", "v1") == images.digest
    assert registry2.manifest("copy/busybox", "v1")[1] == OCI_MANIFEST
    _skopeo_pull(registry2, "copy/busybox", "v1", scratch / "back")
    info = json.loads(ocish(ocish_root, "image", "inspect", images.ref()).stdout)[0]
    assert f"{registry2.host}/copy/busybox@{images.digest}" in info["RepoDigests"]

    # a Docker schema2 manifest keeps its media type
    ocish(ocish_root, *PULL, images.ref(images.docker_repo))
    ocish(ocish_root, *PUSH, "-q", images.ref(images.docker_repo),
          f"docker://{registry2.host}/copy/busybox-docker:v1")
    assert registry2.manifest("copy/busybox-docker", "v1")[1] == DOCKER_MANIFEST
    assert skopeo_digest(registry2, "copy/busybox-docker", "v1") == images.docker_digest


def test_push_under_its_own_name(images: Images, registry2: Registry,
                                 ocish_root: Path) -> None:
    ocish(ocish_root, *PULL, images.ref())
    mine = f"{registry2.host}/mine/box:1.0"
    ocish(ocish_root, "tag", images.ref(), mine)
    out = ocish(ocish_root, "image", *PUSH, mine).stdout
    assert out.splitlines()[-1].startswith(f"1.0: digest: {images.digest}")
    assert skopeo_digest(registry2, "mine/box", "1.0") == images.digest


def test_second_push_uploads_nothing(images: Images, registry2: Registry,
                                     ocish_root: Path) -> None:
    ocish(ocish_root, *PULL, images.ref())
    dest = f"{registry2.host}/again/busybox:latest"
    ocish(ocish_root, *PUSH, images.ref(), dest)
    mark = len(registry2.requests())
    out = ocish(ocish_root, *PUSH, images.ref(), dest).stdout
    assert out.count("Layer already exists") == 3
    assert _blob_writes(registry2, mark) == []
    heads = [r for r in registry2.requests(mark) if r.method == "HEAD"]
    assert len(heads) == 4 and {r.status for r in heads} == {200}  # 3 layers and the config


@pytest.mark.parametrize(("env", "chunked"), [
    ({}, "none"),                                                           # 16 MiB chunks
    ({"OCISH_PUSH_CHUNK_SIZE": str(1 << 20)}, "large"),                    # > 1 MiB chunked
    ({"OCISH_PUSH_UPLOAD": "chunked", "OCISH_PUSH_CHUNK_SIZE": "700000"}, "all"),
    ({"OCISH_PUSH_UPLOAD": "monolithic", "OCISH_PUSH_CHUNK_SIZE": "1000"}, "none"),
], ids=["auto", "auto-1MiB", "chunked", "monolithic"])
def test_upload_modes(images: Images, registry2: Registry, ocish_root: Path, scratch: Path,
                      env: dict[str, str], chunked: str) -> None:
    repo = f"modes/{scratch.name.lower()}"
    ocish(ocish_root, *PULL, images.ref(images.big_repo))
    mark = len(registry2.requests())
    ocish(ocish_root, *PUSH, images.ref(images.big_repo), f"{registry2.host}/{repo}:v1",
          env=dict(os.environ, **env))
    writes = _blob_writes(registry2, mark)
    chunk = int(env.get("OCISH_PUSH_CHUNK_SIZE", 16 << 20))
    blobs = _blobs(registry2, repo, "v1")
    want = [b for b in blobs if chunked == "all" or (chunked == "large" and b[1] > chunk)]
    assert want or chunked == "none"
    patches = [w for w in writes if w.startswith("PATCH ")]
    assert len(patches) == sum(math.ceil(size / chunk) for _, size in want)
    assert all(w.endswith(" 202") for w in patches)
    # one POST (202) and one closing PUT (201) per blob, whichever the way
    assert sorted(w.split()[0] + w[-4:] for w in writes if not w.startswith("PATCH ")) == \
        ["POST 202"] * len(blobs) + ["PUT 201"] * len(blobs)
    assert skopeo_digest(registry2, repo, "v1") == images.big_digest
    _skopeo_pull(registry2, repo, "v1", scratch / "back")


def test_cross_repository_mount(images: Images, ocish_root: Path) -> None:
    reg = images.registry
    ocish(ocish_root, *PULL, images.ref())
    mark = len(reg.requests())
    out = ocish(ocish_root, *PUSH, images.ref(), f"{reg.host}/mounted/busybox:latest").stdout
    assert out.count(f"Mounted from {images.repo}") == 3
    posts = [r for r in reg.requests(mark) if r.method == "POST"]
    assert len(posts) == 4 and all(r.status == 201 for r in posts)
    assert {r.query["from"] for r in posts} == {images.repo}
    assert {r.query["mount"] for r in posts} == {d for d, _ in _blobs(reg, images.repo, "latest")}
    assert _blob_writes(reg, mark) == [f"POST {r.path} 201" for r in posts]
    assert skopeo_digest(reg, "mounted/busybox") == images.digest


def test_mount_falls_back_to_an_upload(images: Images, registry2: Registry,
                                       ocish_root: Path) -> None:
    ocish(ocish_root, *PULL, images.ref())
    ocish(ocish_root, *PUSH, images.ref(), f"{registry2.host}/fallback/one:latest")
    # the registry forgets one layer of the first repository: the mount of it is refused
    gone, _ = _blobs(registry2, "fallback/one", "latest")[1]
    registry2.delete_blob("fallback/one", gone)
    mark = len(registry2.requests())
    out = ocish(ocish_root, *PUSH, images.ref(), f"{registry2.host}/fallback/two:latest").stdout
    assert out.count("Mounted from fallback/one") == 2
    assert f"{gone[7:19]}: Pushed" in out
    posts = [r for r in registry2.requests(mark) if r.method == "POST"]
    assert sorted(r.status for r in posts) == [201, 201, 201, 202]
    assert [r.query["mount"] for r in posts if r.status == 202] == [gone]
    assert skopeo_digest(registry2, "fallback/two") == images.digest


def test_push_errors(images: Images, registry2: Registry, ocish_root: Path) -> None:
    err = one_line_error(ocish(ocish_root, *PUSH, "nothing/here:1", check=False))
    assert err == "ocish: No such image: nothing/here:1"
    ocish(ocish_root, *PULL, images.ref())
    image_id = json.loads(ocish(ocish_root, "image", "inspect", images.ref()).stdout)[0]["Id"]
    err = one_line_error(ocish(ocish_root, *PUSH, image_id, check=False))
    assert "give a DESTINATION" in err
    digest_dest = f"{registry2.host}/x/y@{images.digest}"
    err = one_line_error(ocish(ocish_root, *PUSH, images.ref(), digest_dest, check=False))
    assert "push to a tag, not a digest" in err
    err = one_line_error(ocish(ocish_root, *PUSH, images.ref(), "127.0.0.1:9/x/y:1",
                               check=False))
    assert "Connection refused" in err
    env = dict(os.environ, OCISH_PUSH_UPLOAD="sideways")
    err = one_line_error(ocish(ocish_root, *PUSH, images.ref(), f"{registry2.host}/x/y:1",
                               check=False, env=env))
    assert "OCISH_PUSH_UPLOAD" in err
