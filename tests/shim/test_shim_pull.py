"""ocish pull/images/tag/rmi/inspect against a real docker-registry."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from shim_support import (
    OCISH,
    Images,
    Proxy,
    Registry,
    assert_store_sound,
    ocish,
    one_line_error,
    pull_killed_when,
    push,
    run,
    sha256_file,
    size,
    start_registry,
)

from shim.images import platforms

PULL = ("pull", "--tls-verify=false")

pytest_plugins = ["shim_fixtures"]


def _inspect(root: Path, ref: str) -> dict[str, object]:
    out = json.loads(ocish(root, "image", "inspect", ref).stdout)
    assert isinstance(out, list) and len(out) == 1
    return out[0]  # type: ignore[no-any-return]


def test_pull_by_tag_then_by_digest(images: Images, ocish_root: Path, tmp_path: Path) -> None:
    out = ocish(ocish_root, *PULL, images.ref()).stdout
    assert f"Digest: {images.digest}" in out
    assert out.strip().splitlines()[-1] == images.ref()
    info = _inspect(ocish_root, images.ref())
    assert info["RepoDigests"] == [f"{images.registry.host}/{images.repo}@{images.digest}"]
    assert info["Os"] == "linux" and info["Architecture"] == "amd64"
    assert info["Config"] == {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]}
    layers = info["RootFS"]["Layers"]  # type: ignore[index]
    assert len(layers) == 3
    # the image ID is the config digest and the config blob is stored under it
    image_id = str(info["Id"])
    assert sha256_file(ocish_root / "blobs" / "sha256" / image_id[7:]) == image_id

    other = tmp_path / "by-digest"
    by_digest = f"{images.registry.host}/{images.repo}@{images.digest}"
    res = ocish(other, *PULL, "-q", by_digest)
    assert res.stdout.strip() == by_digest
    assert _inspect(other, by_digest)["Id"] == image_id
    rows = [json.loads(line) for line in ocish(other, "images", "--format", "json").stdout
            .splitlines()]
    assert [(r["Repository"], r["Tag"], r["Digest"]) for r in rows] == \
        [(f"{images.registry.host}/{images.repo}", "<none>", images.digest)]
    assert_store_sound(ocish_root)
    assert_store_sound(other)


def test_snapshots_hold_the_layers(images: Images, ocish_root: Path, tmp_path: Path) -> None:
    ocish(ocish_root, *PULL, "-q", images.ref())
    lower = str(_inspect(ocish_root, images.ref())["GraphDriver"]["Data"]["LowerDir"])  # type: ignore[index]
    top, mid, base = (Path(p) for p in lower.split(":"))
    # layer 1: the busybox rootfs
    assert sha256_file(base / "bin" / "busybox") == sha256_file(Path("/bin/busybox"))
    assert os.readlink(base / "bin" / "sh") in ("busybox", "/bin/busybox")
    assert (base / "etc" / "hostname").is_file()
    # layer 2: hardlink, symlink, ownership, mode, mtime
    hello, hard = (mid / "data" / "hello.txt").stat(), (mid / "data" / "hello-hard").stat()
    assert hello.st_ino == hard.st_ino and hello.st_nlink == 2
    assert os.readlink(mid / "data" / "hello-sym") == "hello.txt"
    keep = (mid / "data" / "dir" / "keep").stat()
    assert (keep.st_uid, keep.st_gid, stat.S_IMODE(keep.st_mode)) == (1234, 5678, 0o640)
    assert keep.st_mtime == 1_000_000_000
    # layer 3: whiteouts as overlayfs whiteouts
    for gone in (top / "data" / "gone.txt", top / "etc" / "hostname"):
        st = gone.lstat()
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert (top / "data" / "new.txt").read_text() == "new\n"
    # and overlayfs agrees: the merged view has the whiteouts applied
    mnt = tmp_path / "merged"
    mnt.mkdir()
    run("mount", "-t", "overlay", "overlay", "-o", f"ro,lowerdir={lower}", mnt)
    try:
        assert not (mnt / "data" / "gone.txt").exists()
        assert not (mnt / "etc" / "hostname").exists()
        assert (mnt / "data" / "hello.txt").read_text() == "hello\n"
        assert (mnt / "data" / "new.txt").read_text() == "new\n"
        assert (mnt / "etc" / "passwd").is_file()
    finally:
        run("umount", mnt)


def test_second_pull_downloads_nothing(images: Images, ocish_root: Path) -> None:
    ocish(ocish_root, *PULL, images.ref())
    before = images.registry.blob_gets()
    blobs = {p.name: p.stat().st_ino for p in (ocish_root / "blobs" / "sha256").iterdir()}
    out = ocish(ocish_root, *PULL, images.ref()).stdout
    assert images.registry.blob_gets() == before
    assert out.count("Already exists") == 3
    assert "Status: Image is up to date" in out
    assert {p.name: p.stat().st_ino for p in (ocish_root / "blobs" / "sha256").iterdir()} == blobs
    # the Docker schema2 form shares the layers: they are not fetched again either
    out = ocish(ocish_root, *PULL, images.ref(images.docker_repo)).stdout
    assert out.count("Already exists") == 3
    assert images.registry.blob_gets() - before <= 1  # its config at most


def test_docker_schema2_manifest(images: Images, ocish_root: Path) -> None:
    ocish(ocish_root, *PULL, "-q", images.ref(images.docker_repo))
    info = _inspect(ocish_root, images.ref(images.docker_repo))
    assert info["RepoDigests"] == [
        f"{images.registry.host}/{images.docker_repo}@{images.docker_digest}"]
    digest = images.docker_digest[7:]
    manifest = json.loads((ocish_root / "blobs" / "sha256" / digest).read_bytes())
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert len(info["RootFS"]["Layers"]) == 3  # type: ignore[index]


def test_images_tag_rmi_inspect(images: Images, ocish_root: Path) -> None:
    ocish(ocish_root, *PULL, "-q", images.ref())
    image_id = str(_inspect(ocish_root, images.ref())["Id"])
    ocish(ocish_root, "tag", images.ref(), "local/copy:v1")
    ocish(ocish_root, "tag", image_id[7:19], "local/copy:v2")

    table = ocish(ocish_root, "images").stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    cols = [table[0].index(h) for h in ("TAG", "IMAGE ID", "CREATED", "SIZE")]
    for line in table[1:]:  # aligned: every cell starts under its header
        for c in cols:
            assert line[c - 1] == " " and line[c] != " ", table
    names = sorted((line.split()[0], line.split()[1]) for line in table[1:])
    assert names == [(f"{images.registry.host}/{images.repo}", "latest"),
                     ("docker.io/local/copy", "v1"), ("docker.io/local/copy", "v2")] or \
        names == sorted([(f"{images.registry.host}/{images.repo}", "latest"),
                         ("local/copy", "v1"), ("local/copy", "v2")])
    assert ocish(ocish_root, "images", "-q").stdout.split() == [image_id[7:19]]
    assert ocish(ocish_root, "images", "-q", "--no-trunc").stdout.split() == [image_id]
    digests = ocish(ocish_root, "images", "--digests").stdout.splitlines()
    assert digests[0].split()[2] == "DIGEST" and images.digest in digests[1] + digests[2] + \
        digests[3]
    assert len(ocish(ocish_root, "images", "local/copy").stdout.splitlines()) == 3
    assert len(ocish(ocish_root, "images", "local/copy:v2").stdout.splitlines()) == 2

    info = _inspect(ocish_root, "local/copy:v1")
    assert info["Id"] == image_id and len(info["RepoTags"]) == 3  # type: ignore[arg-type]

    assert ocish(ocish_root, "rmi", "local/copy:v1").stdout.strip() == "Untagged: local/copy:v1"
    err = one_line_error(ocish(ocish_root, "rmi", image_id[7:19], check=False))
    assert "referenced in multiple repositories" in err
    out = ocish(ocish_root, "rmi", "-f", image_id[7:19]).stdout.splitlines()
    assert f"Deleted: {image_id}" in out and "Untagged: local/copy:v2" in out
    assert ocish(ocish_root, "images", "-q").stdout == ""
    # garbage collection: nothing left
    assert list((ocish_root / "blobs" / "sha256").iterdir()) == []
    assert list((ocish_root / "snapshots").iterdir()) == []
    err = one_line_error(ocish(ocish_root, "image", "inspect", images.ref(), check=False))
    assert err == f"ocish: No such image: {images.ref()}"


def test_rmi_keeps_shared_layers(images: Images, ocish_root: Path) -> None:
    ocish(ocish_root, *PULL, "-q", images.ref())
    ocish(ocish_root, *PULL, "-q", images.ref(images.big_repo))
    assert len(list((ocish_root / "snapshots").iterdir())) == 4
    ocish(ocish_root, "rmi", images.ref(images.big_repo))
    assert len(list((ocish_root / "snapshots").iterdir())) == 3
    ocish(ocish_root, "image", "inspect", images.ref())
    assert_store_sound(ocish_root)
    ocish(ocish_root, *PULL, "-q", images.ref())  # still complete: nothing to fetch
    ocish(ocish_root, "image", "rm", images.ref())
    assert list((ocish_root / "blobs" / "sha256").iterdir()) == []


def test_killed_pull_leaves_no_bad_blob(images: Images, ocish_root: Path) -> None:
    with Proxy(images.registry, rate=3 << 20) as proxy:  # 3 MiB/s: the 4 MiB layer in ~1.3 s
        ref = proxy.via(images.ref(images.big_repo))
        ingest = ocish_root / "ingest"
        pull_killed_when(ocish_root, ref, lambda: ingest.is_dir() and any(
            size(p) > 256 << 10 for p in ingest.iterdir()), "download in progress")
        assert list(ingest.iterdir()), "the download was not interrupted"
        assert_store_sound(ocish_root)
        proxy.rate = 0
        ocish(ocish_root, *PULL, "-q", ref)
    assert_store_sound(ocish_root)
    assert list(ingest.iterdir()) == []
    assert [p for p in (ocish_root / "snapshots").iterdir() if p.name.startswith("tmp-")] == []
    info = _inspect(ocish_root, ref)
    big = Path(str(info["GraphDriver"]["Data"]["LowerDir"]).split(":")[0])  # type: ignore[index]
    assert (big / "big.bin").stat().st_size == 4 << 20


def test_concurrent_pulls(images: Images, ocish_root: Path) -> None:
    cmd = [str(OCISH), "--root", str(ocish_root), *PULL, images.ref(images.big_repo)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    assert len(ocish(ocish_root, "images", "-q").stdout.split()) == 1
    assert len([p for p in (ocish_root / "snapshots").iterdir() if not p.name.startswith("tmp-")]) == 4
    assert_store_sound(ocish_root)


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_manifest_list_picks_the_platform(images: Images, layout: Path, ocish_root: Path,
                                          kind: str) -> None:
    reg = images.registry
    host = platforms.host()
    other = "s390x" if host.architecture != "s390x" else "amd64"
    repo = f"test/multi-{kind}"
    fmt = ["--format", "v2s2"] if kind == "docker" else ["--format", "oci"]
    tag = f"arch-{other}"
    run("umoci", "config", "--image", f"{layout}:base", "--architecture", other, "--tag", tag)
    push(reg, layout, "base", repo, "host", *fmt)
    push(reg, layout, tag, repo, "other", *fmt)
    entries = []
    for t, arch in (("other", other), ("host", host.architecture)):
        body, media_type = reg.manifest(repo, t)
        from shim.storage.content import digest_of

        entries.append({"mediaType": media_type, "digest": digest_of(body), "size": len(body),
                        "platform": {"os": "linux", "architecture": arch,
                                     **({"variant": host.variant} if host.variant and
                                        arch == host.architecture else {})}})
    list_type = ("application/vnd.oci.image.index.v1+json" if kind == "oci" else
                 "application/vnd.docker.distribution.manifest.list.v2+json")
    index = json.dumps({"schemaVersion": 2, "mediaType": list_type,
                        "manifests": entries}).encode()
    reg.put_manifest(repo, "latest", index, list_type)

    ref = f"{reg.host}/{repo}:latest"
    ocish(ocish_root, *PULL, "-q", ref)
    info = _inspect(ocish_root, ref)
    assert info["Architecture"] == host.architecture
    from shim.storage.content import digest_of

    assert info["RepoDigests"] == [f"{reg.host}/{repo}@{digest_of(index)}"]
    ocish(ocish_root, *PULL, "-q", "--platform", f"linux/{other}", ref)
    assert _inspect(ocish_root, ref)["Architecture"] == other
    err = one_line_error(ocish(ocish_root, *PULL, "--platform", "linux/mips64", ref, check=False))
    assert "no matching manifest for linux/mips64" in err


@pytest.fixture(scope="module")
def auth_registry(work: Path, layout: Path) -> object:
    base = work / "registry-auth"
    base.mkdir()
    htpasswd = base / "htpasswd"
    htpasswd.write_text(run("htpasswd", "-Bbn", "testuser", "testpass").stdout)
    reg = start_registry(base, htpasswd)
    reg.auth = ("testuser", "testpass")
    try:
        push(reg, layout, "base", "secret/busybox")
        yield reg
    finally:
        reg.stop()


def test_basic_auth(auth_registry: Registry, ocish_root: Path) -> None:
    ref = f"{auth_registry.host}/secret/busybox:latest"
    err = one_line_error(ocish(ocish_root, *PULL, ref, check=False))
    assert "unauthorized" in err
    err = one_line_error(ocish(ocish_root, *PULL, "--creds", "testuser:wrong", ref, check=False))
    assert "401" in err
    ocish(ocish_root, *PULL, "-q", "--creds", "testuser:testpass", ref)
    assert _inspect(ocish_root, ref)["RepoTags"] == [ref]
