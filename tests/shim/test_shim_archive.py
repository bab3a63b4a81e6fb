"""ocish save/load: round trips in both formats, and archives exchanged with podman, skopeo and
dockerd (each with state of its own under a tmp dir)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pty
import subprocess
import tarfile
from pathlib import Path

from archive_support import Dockerd, PrivatePodman, inspect, tar_members
from shim_support import OCISH, Images, assert_store_sound, ocish, run

pytest_plugins = ["shim_fixtures", "archive_fixtures"]

PULL = ("pull", "--tls-verify=false", "-q")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _error(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocish: "), res.stderr
    return lines[0]


def _blobs(root: Path) -> set[str]:
    return set(os.listdir(root / "blobs" / "sha256"))


def _same_image(a: dict[str, object], b: dict[str, object]) -> None:
    for key in ("Id", "Config", "RootFS", "Created", "Os", "Architecture", "Size"):
        assert a[key] == b[key], key


def test_docker_archive_round_trip(images: Images, ocish_root: Path, tmp: Path) -> None:
    ref = images.ref()
    ocish(ocish_root, *PULL, ref)
    before = inspect(ocish_root, ref)
    diff_ids = before["RootFS"]["Layers"]  # type: ignore[index]
    archive = tmp / "a.tar"
    ocish(ocish_root, "save", "-o", str(archive), ref)
    files = tar_members(archive)
    config_name = str(before["Id"])[7:] + ".json"
    assert json.loads(files["manifest.json"]) == [
        {"Config": config_name, "RepoTags": [ref], "Layers": [d[7:] + ".tar" for d in diff_ids]}]
    assert _sha256(files[config_name]) == before["Id"]
    for d in diff_ids:  # each layer uncompressed: its digest is its diff ID
        assert _sha256(files[d[7:] + ".tar"]) == d

    other = tmp / "root2"
    assert ocish(other, "load", "-i", str(archive)).stdout == f"Loaded image: {ref}\n"
    after = inspect(other, ref)
    _same_image(before, after)
    assert after["RepoTags"] == [ref] and after["RepoDigests"] == []
    lowers = [Path(p).parent.name for p in str(after["GraphDriver"]["Data"]["LowerDir"])  # type: ignore[index]
              .split(":")]
    assert lowers == [Path(p).parent.name for p in str(
        before["GraphDriver"]["Data"]["LowerDir"]).split(":")]  # type: ignore[index]
    assert_store_sound(other)
    again = tmp / "b.tar"
    ocish(other, "save", "-o", str(again), ref)
    assert again.read_bytes() == archive.read_bytes()

    # into the root it came from: the image is there, only its names are (re)made
    blobs = _blobs(ocish_root)
    ocish(ocish_root, "rmi", ref)  # gone, then back
    ocish(ocish_root, *PULL, ref)
    ocish(ocish_root, "tag", ref, "local/other:1")
    ocish(ocish_root, "rmi", ref)
    ocish(ocish_root, "load", "-i", str(archive))
    assert _blobs(ocish_root) == blobs
    assert inspect(ocish_root, ref)["Id"] == before["Id"]

    # from stdin: a pipe (spooled first), a redirected file, gzip-compressed
    for n, data in enumerate((archive.read_bytes(), gzip.compress(archive.read_bytes()))):
        root = tmp / f"piped-{n}"
        res = subprocess.run([str(OCISH), "--root", str(root), "load", "-q"], input=data,
                             capture_output=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert inspect(root, ref)["Id"] == before["Id"]
        assert list((root / "ingest").iterdir()) == []
    with open(archive, "rb") as f:
        res2 = subprocess.run([str(OCISH), "--root", str(tmp / "redirected"), "image", "load"],
                              stdin=f, capture_output=True, text=True, timeout=120)
    assert res2.returncode == 0 and res2.stdout == f"Loaded image: {ref}\n", res2.stderr


def test_oci_archive_round_trip(images: Images, ocish_root: Path, tmp: Path) -> None:
    ref = images.ref()
    ocish(ocish_root, *PULL, ref)
    before = inspect(ocish_root, ref)
    archive = tmp / "a.tar"
    ocish(ocish_root, "image", "save", "--format", "oci-archive", "-o", str(archive), ref)
    files = tar_members(archive)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    manifest = files[f"blobs/sha256/{images.digest[7:]}"]
    assert json.loads(files["index.json"]) == {"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": images.digest, "size": len(manifest),
        "annotations": {REF_NAME: ref}}]}
    for name, data in files.items():  # the blobs as stored: manifest, config, gzip layers
        if name.startswith("blobs/"):
            assert _sha256(data) == "sha256:" + name.rsplit("/", 1)[1]
    assert len([n for n in files if n.startswith("blobs/")]) == 5

    other = tmp / "root2"
    assert ocish(other, "load", "-i", str(archive)).stdout == f"Loaded image: {ref}\n"
    _same_image(before, inspect(other, ref))
    assert (other / "blobs" / "sha256" / images.digest[7:]).read_bytes() == manifest
    assert_store_sound(other)
    again = tmp / "b.tar"
    ocish(other, "save", "--format", "oci-archive", "-o", str(again), ref)
    assert again.read_bytes() == archive.read_bytes()


def test_save_names_and_shared_layers(images: Images, ocish_root: Path, tmp: Path) -> None:
    base, big = images.ref(), images.ref(images.big_repo)
    ocish(ocish_root, *PULL, base)
    ocish(ocish_root, *PULL, big)
    ocish(ocish_root, "tag", base, "local/copy:v1")
    ocish(ocish_root, "tag", base, "local/copy:v2")
    base_id = str(inspect(ocish_root, base)["Id"])

    def entries(*names: str, fmt: str = "docker-archive") -> dict[str, bytes]:
        path = tmp / "x.tar"
        ocish(ocish_root, "save", "--format", fmt, "-o", str(path), *names)
        return tar_members(path)

    # a bare repository name: all its tags, in one entry
    got = json.loads(entries("local/copy")["manifest.json"])
    assert [e["RepoTags"] for e in got] == [["docker.io/local/copy:v1", "docker.io/local/copy:v2"]]
    # an ID: no name
    assert json.loads(entries(base_id[7:19])["manifest.json"])[0]["RepoTags"] == []
    # two images sharing three layers: four layer files
    files = entries(base, big, "local/copy:v1")
    got = json.loads(files["manifest.json"])
    assert sorted(t for e in got for t in e["RepoTags"]) == sorted([base, big,
                                                                    "docker.io/local/copy:v1"])
    assert len([n for n in files if n.endswith(".tar")]) == 4
    files = entries(base, big, fmt="oci-archive")
    assert len(json.loads(files["index.json"])["manifests"]) == 2
    assert len([n for n in files if n.startswith("blobs/")]) == 2 + 2 + 4
    # both come back from one archive
    other = tmp / "root2"
    ocish(other, "load", "-i", str(tmp / "x.tar"))
    assert sorted(ocish(other, "images", "-q", "--no-trunc").stdout.split()) == sorted(
        [base_id, str(inspect(ocish_root, big)["Id"])])


def test_podman_loads_ocish_archives_and_ocish_loads_podmans(
        images: Images, ocish_root: Path, tmp: Path, podman: PrivatePodman) -> None:
    ref = images.ref()
    ocish(ocish_root, *PULL, ref)
    info = inspect(ocish_root, ref)
    for fmt in ("docker-archive", "oci-archive"):
        archive = tmp / f"{fmt}.tar"
        ocish(ocish_root, "save", "--format", fmt, "-o", str(archive), ref)
        assert f"Loaded image: {ref}" in podman("load", "-i", str(archive)).stdout
        got = json.loads(podman("image", "inspect", ref).stdout)[0]
        assert "sha256:" + got["Id"] == info["Id"]
        assert got["RootFS"]["Layers"] == info["RootFS"]["Layers"]  # type: ignore[index]
        # and back, in the same format (between formats, podman rewrites the config)
        archive = tmp / f"podman-{fmt}.tar"
        podman("save", "--format", fmt, "-o", str(archive), ref)
        podman("rmi", ref)
        root = tmp / f"from-podman-{fmt}"
        assert ocish(root, "load", "-i", str(archive)).stdout == f"Loaded image: {ref}\n"
        _same_image(info, inspect(root, ref))
        assert_store_sound(root)


def test_skopeo_reads_ocish_archives(images: Images, ocish_root: Path, tmp: Path) -> None:
    ref = images.ref()
    ocish(ocish_root, *PULL, ref)
    info = inspect(ocish_root, ref)
    lay = tmp / "layout"
    for fmt, tag in (("docker-archive", "da"), ("oci-archive", "oa")):
        ocish(ocish_root, "save", "--format", fmt, "-o", str(tmp / f"{tag}.tar"), ref)
        run("skopeo", "copy", f"{fmt}:{tmp / f'{tag}.tar'}", f"oci:{lay}:{tag}")
    index = {m["annotations"][REF_NAME]: m for m in
             json.loads((lay / "index.json").read_text())["manifests"]}
    assert index["oa"]["digest"] == images.digest  # copied byte for byte
    for tag in ("da", "oa"):
        config = json.loads(run("skopeo", "inspect", "--config", f"oci:{lay}:{tag}").stdout)
        assert config["rootfs"]["diff_ids"] == info["RootFS"]["Layers"]  # type: ignore[index]
        assert config["config"] == info["Config"]


def test_ocish_loads_skopeo_archives(layout: Path, ocish_root: Path, tmp: Path) -> None:
    index = json.loads((layout / "index.json").read_text())
    digest = next(m["digest"] for m in index["manifests"]
                  if m["annotations"][REF_NAME] == "base")
    manifest = json.loads((layout / "blobs" / "sha256" / digest[7:]).read_text())
    for fmt, tag in (("docker-archive", "da"), ("oci-archive", "oa")):
        archive = tmp / f"{tag}.tar"
        run("skopeo", "copy", f"oci:{layout}:base", f"{fmt}:{archive}:docker.io/test/sk:{tag}")
        assert ocish(ocish_root, "load", "-i", str(archive)).stdout == \
            f"Loaded image: test/sk:{tag}\n"
        assert inspect(ocish_root, f"test/sk:{tag}")["Id"] == manifest["config"]["digest"]
    assert (ocish_root / "blobs" / "sha256" / digest[7:]).is_file()  # from the oci-archive
    assert_store_sound(ocish_root)


def test_docker_loads_ocish_archive_and_ocish_loads_dockers(
        images: Images, ocish_root: Path, tmp: Path, dockerd: Dockerd) -> None:
    ref = images.ref()
    ocish(ocish_root, *PULL, ref)
    info = inspect(ocish_root, ref)
    archive = tmp / "a.tar"
    ocish(ocish_root, "save", "-o", str(archive), ref)
    res = dockerd.docker("load", "-i", str(archive))
    assert res.returncode == 0 and f"Loaded image: {ref}" in res.stdout, res.stderr
    try:
        got = json.loads(dockerd.docker("image", "inspect", ref).stdout)[0]
        assert got["Id"] == info["Id"]
        assert got["RootFS"]["Layers"] == info["RootFS"]["Layers"]  # type: ignore[index]
        saved = tmp / "docker.tar"  # <v1 id>/layer.tar, json, VERSION, repositories
        res = dockerd.docker("save", "-o", str(saved), ref)
        assert res.returncode == 0, res.stderr
    finally:
        dockerd.docker("rmi", "-f", ref)
    assert any(n.endswith("/layer.tar") for n in tar_members(saved))
    root = tmp / "from-docker"
    assert ocish(root, "load", "-i", str(saved)).stdout == f"Loaded image: {ref}\n"
    _same_image(info, inspect(root, ref))


def _rewrite(src: Path, dst: Path, name: str, change: bytes, to: bytes) -> None:
    """Copy the tar *src* to *dst* with *change* replaced by *to* in member *name*."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            f = tin.extractfile(m) if m.isreg() else None
            data = f.read() if f is not None else None
            if m.name == name and data is not None:
                assert change in data
                data = data.replace(change, to)
            tout.addfile(m, io.BytesIO(data) if data is not None else None)


def _tar_of(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_bad_archives_are_refused(images: Images, tmp: Path) -> None:
    ref = images.ref()
    src = tmp / "src"
    ocish(src, *PULL, ref)
    info = inspect(src, ref)
    good = tmp / "good.tar"
    ocish(src, "save", "-o", str(good), ref)
    oci = tmp / "good-oci.tar"
    ocish(src, "save", "--format", "oci-archive", "-o", str(oci), ref)

    (tmp / "text").write_bytes(b"not a tar at all\n" * 100)
    _tar_of(tmp / "other.tar", {"hello": b"hi"})
    _tar_of(tmp / "legacy.tar", {"repositories": b"{}"})
    # a layer whose content is not what the config says (its diff ID)
    layer2 = str(info["RootFS"]["Layers"][1])[7:] + ".tar"  # type: ignore[index]
    _rewrite(good, tmp / "bad-layer.tar", layer2, b"hello\n", b"jello\n")
    # an OCI blob that is not what its name says
    _rewrite(oci, tmp / "bad-blob.tar", f"blobs/sha256/{str(info['Id'])[7:]}", b"/bin/sh",
             b"/bin/xx")
    for name, error in (("text", "not a readable tar archive"),
                        ("other.tar", "neither an oci-archive"),
                        ("legacy.tar", "legacy format"), ("bad-layer.tar", "digest mismatch"),
                        ("bad-blob.tar", "digest mismatch")):
        root = tmp / f"root-{name}"
        assert error in _error(ocish(root, "load", "-i", str(tmp / name), check=False))
        assert ocish(root, "images", "-q").stdout == ""
        assert_store_sound(root)
        assert list((root / "ingest").iterdir()) == []
        assert [p for p in (root / "snapshots").iterdir() if p.name.startswith("tmp-")] == []

    # save: an unknown image leaves no file; a terminal gets no tar, and load wants no terminal
    out = tmp / "never.tar"
    assert "No such image" in _error(ocish(src, "save", "-o", str(out), "nope:1", check=False))
    assert not out.exists() and [p for p in tmp.iterdir() if p.name.startswith(".never")] == []
    master, slave = pty.openpty()
    try:
        res = subprocess.run([str(OCISH), "--root", str(src), "save", ref], stdout=slave,
                             stderr=subprocess.PIPE, text=True, timeout=60)
        assert "refusing to save to a terminal" in _error(res)
        res = subprocess.run([str(OCISH), "--root", str(src), "load"], stdin=slave,
                             capture_output=True, text=True, timeout=60)
        assert "stdin is empty" in _error(res)
    finally:
        os.close(slave)
        os.close(master)
