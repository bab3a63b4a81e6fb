"""ocish import (a rootfs tarball as a one-layer image) and image export (an image's merged
root filesystem, checked against what overlayfs itself shows)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from archive_support import inspect, listing
from shim_support import OCISH, Images, assert_store_sound, ocish, run

pytest_plugins = ["shim_fixtures", "archive_fixtures"]

MTIME = 1_600_000_000


def _entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = None,
           mode: int = 0o644, uid: int = 0, gid: int = 0, link: str = "",
           xattrs: dict[str, str] | None = None) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, MTIME
    info.linkname = link
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    if data is not None:
        info.size = len(data)
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return info, data


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _rootfs() -> bytes:
    """A small root filesystem with every kind of entry and odd modes and owners (names with
    ``./``, as ``tar -C dir -cf x .`` writes them)."""
    d, r, s, h = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
    return _tar([
        _entry("./bin", d, mode=0o755),
        _entry("./bin/busybox", r, Path("/bin/busybox").read_bytes(), mode=0o755),
        _entry("./bin/sh", s, link="busybox", mode=0o777),
        _entry("./etc", d, mode=0o755),
        _entry("./etc/passwd", r, b"root:x:0:0:root:/root:/bin/sh\n"),
        _entry("./etc/shadow", r, b"root:*:1::::::\n", mode=0o640, gid=42),
        _entry("./tmp", d, mode=0o1777),
        _entry("./usr", d, mode=0o755, uid=7, gid=8),
        _entry("./usr/su", r, b"#!/bin/sh\n", mode=0o4755),
        _entry("./data", d, mode=0o700, uid=1000, gid=1000),
        _entry("./data/owned", r, b"mine\n", mode=0o600, uid=1000, gid=1000,
               xattrs={"user.test": "value"}),
        _entry("./data/abs", s, link="/etc/passwd", mode=0o777),
        _entry("./data/dangling", s, link="../nowhere", mode=0o777),
        _entry("./data/hard", h, link="./etc/passwd"),
        _entry("./data/fifo", tarfile.FIFOTYPE, mode=0o600),
        _entry("./dev", d, mode=0o755),
        _entry("./dev/null", tarfile.CHRTYPE, mode=0o666),
        _entry("./empty", d, mode=0o750),
    ])


def _normalized(src: Path | bytes) -> dict[str, tuple[Any, ...]]:
    """listing() with hard links shown as the file they name (which name of a group comes first
    in a tar is the writer's choice)."""
    out = listing(src)
    for name, entry in out.items():
        if entry[0] == tarfile.LNKTYPE:
            target = out[entry[5]]
            out[name] = (tarfile.REGTYPE, *target[1:5], "", *target[6:])
    return out


def _hard_links(src: Path) -> set[frozenset[str]]:
    with tarfile.open(src) as tf:
        return {frozenset({m.name.lstrip("./"), m.linkname.lstrip("./")})
                for m in tf.getmembers() if m.islnk()}


def test_import_export_round_trip(ocish_root: Path, tmp: Path) -> None:
    data = _rootfs()
    (tmp / "rootfs.tar").write_bytes(data)
    out = ocish(ocish_root, "import", "-c", 'CMD ["/bin/sh"]', "-c", "ENV A=1 B='two words'",
                "-c", "EXPOSE 8080", "-c", "USER 1000", "-m", "hand made",
                str(tmp / "rootfs.tar"), "test/rootfs:1").stdout
    info = inspect(ocish_root, "test/rootfs:1")
    assert out == f"{info['Id']}\n"
    assert info["RootFS"]["Layers"] == ["sha256:" + hashlib.sha256(data).hexdigest()]
    assert info["Config"] == {"Cmd": ["/bin/sh"], "Env": ["A=1", "B=two words"],
                              "ExposedPorts": {"8080/tcp": {}}, "User": "1000"}
    assert info["Comment"] == "hand made"
    assert_store_sound(ocish_root)

    e1 = tmp / "e1.tar"
    ocish(ocish_root, "image", "export", "-o", str(e1), "test/rootfs:1")
    assert _normalized(e1) == _normalized(data)
    assert _hard_links(e1) == {frozenset({"data/hard", "etc/passwd"})}
    # the export imports again, and exports the same bytes
    ocish(ocish_root, "import", str(e1), "test/rootfs:2")
    assert inspect(ocish_root, "test/rootfs:2")["RootFS"]["Layers"] == \
        ["sha256:" + hashlib.sha256(e1.read_bytes()).hexdigest()]
    res = subprocess.run([str(OCISH), "--root", str(ocish_root), "image", "export",
                          "test/rootfs:2"], capture_output=True, timeout=120)
    assert res.returncode == 0 and res.stdout == e1.read_bytes(), res.stderr


def test_import_compressed_from_stdin(ocish_root: Path) -> None:
    data = _rootfs()
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    for n, packed in enumerate((gzip.compress(data), bz2.compress(data), lzma.compress(data),
                                data)):
        res = subprocess.run([str(OCISH), "--root", str(ocish_root), "image", "import",
                              "--platform", "linux/arm64", "-", f"test/packed:{n}"],
                             input=packed, capture_output=True, timeout=120)
        assert res.returncode == 0, res.stderr
        info = inspect(ocish_root, f"test/packed:{n}")
        assert info["RootFS"]["Layers"] == [diff_id]
        assert info["Architecture"] == "arm64" and info["Comment"] == "Imported from -"
    # one layer, stored once (gzip, made the same way each time), one snapshot
    assert len([p for p in (ocish_root / "snapshots").iterdir() if len(p.name) == 64]) == 1
    bad = subprocess.run([str(OCISH), "--root", str(ocish_root), "import", "-", "test/bad"],
                         input=gzip.compress(b"no tar here" * 100)[:-20], capture_output=True,
                         text=False, timeout=60)
    err = bad.stderr.decode().strip().splitlines()
    assert bad.returncode == 1 and len(err) == 1 and err[0].startswith("ocish: "), err
    assert "test/bad" not in ocish(ocish_root, "images").stdout


def _merged(lowers: str, mnt: Path) -> dict[str, tuple[Any, ...]]:
    """What overlayfs shows for these lower dirs: the reference for export."""
    mnt.mkdir()
    run("mount", "-t", "overlay", "overlay", "-o", f"ro,lowerdir={lowers}", mnt)
    try:
        out: dict[str, tuple[Any, ...]] = {}
        for dirpath, dirs, files in os.walk(mnt):
            for name in dirs + files:
                path = Path(dirpath) / name
                st = path.lstat()
                kind = stat.S_IFMT(st.st_mode)
                content = ""
                if stat.S_ISREG(st.st_mode):
                    content = hashlib.sha256(path.read_bytes()).hexdigest()
                elif stat.S_ISLNK(st.st_mode):
                    content = os.readlink(path)
                out[str(path.relative_to(mnt))] = (kind, stat.S_IMODE(st.st_mode), st.st_uid,
                                                   st.st_gid, int(st.st_mtime), content)
        return out
    finally:
        run("umount", mnt)
        mnt.rmdir()


def _as_stat(entries: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    kinds = {tarfile.REGTYPE: stat.S_IFREG, tarfile.DIRTYPE: stat.S_IFDIR,
             tarfile.SYMTYPE: stat.S_IFLNK, tarfile.CHRTYPE: stat.S_IFCHR,
             tarfile.FIFOTYPE: stat.S_IFIFO, tarfile.BLKTYPE: stat.S_IFBLK}
    return {name: (kinds[e[0]], e[1], e[2], e[3], e[4], e[5] if e[0] == tarfile.SYMTYPE
                   else e[6]) for name, e in entries.items()}


def test_export_applies_whiteouts_like_overlayfs(images: Images, ocish_root: Path,
                                                 tmp: Path) -> None:
    ocish(ocish_root, "pull", "--tls-verify=false", "-q", images.ref())
    info = inspect(ocish_root, images.ref())
    out = tmp / "rootfs.tar"
    ocish(ocish_root, "image", "export", "-o", str(out), images.ref())
    got = _normalized(out)
    for gone in ("data/gone.txt", "etc/hostname"):  # removed by the top layer
        assert gone not in got
    assert got["data/new.txt"][6] == hashlib.sha256(b"new\n").hexdigest()
    assert got["data/dir/keep"][1:5] == (0o640, 1234, 5678, 1_000_000_000)
    assert got["data/hello-sym"][5] == "hello.txt"
    assert _hard_links(out) == {frozenset({"data/hello-hard", "data/hello.txt"})}
    assert not [n for n in got if ".wh." in n]
    assert _as_stat(got) == _merged(str(info["GraphDriver"]["Data"]["LowerDir"]),  # type: ignore[index]
                                    tmp / "mnt")


def _oci_archive(path: Path, layers: list[bytes], name: str) -> None:
    """An oci-archive of one image made of *layers* (plain tars)."""
    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> dict[str, object]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    config = put(json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]},
    }).encode())
    manifest = put(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **put(x)}
                   for x in layers]}).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
        "annotations": {"org.opencontainers.image.ref.name": name}}]}
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
             "index.json": json.dumps(index).encode(),
             **{f"blobs/sha256/{d[7:]}": b for d, b in blobs.items()}}
    path.write_bytes(_tar([_entry(n, data=b) for n, b in files.items()]))


def test_export_opaque_directories(ocish_root: Path, tmp: Path) -> None:
    d, r = tarfile.DIRTYPE, tarfile.REGTYPE
    lower = _tar([_entry("d", d, mode=0o755), _entry("d/a", r, b"a"),
                  _entry("d/sub", d, mode=0o755), _entry("d/sub/deep", r, b"deep"),
                  _entry("x", d, mode=0o755), _entry("x/file", r, b"x"),
                  _entry("f", r, b"file"), _entry("keep", d, mode=0o711),
                  _entry("keep/old", r, b"old")])
    upper = _tar([_entry("d", d, mode=0o750), _entry("d/.wh..wh..opq", r, b""),
                  _entry("d/c", r, b"c"), _entry(".wh.x", r, b""),
                  _entry("f", d, mode=0o755), _entry("f/inside", r, b"in"),
                  _entry("keep/new", r, b"new")])
    archive = tmp / "opaque.tar"
    _oci_archive(archive, [lower, upper], "docker.io/test/opaque:1")
    assert ocish(ocish_root, "load", "-i", str(archive)).stdout == \
        "Loaded image: test/opaque:1\n"
    out = tmp / "rootfs.tar"
    ocish(ocish_root, "image", "export", "-o", str(out), "test/opaque:1")
    got = _normalized(out)
    assert sorted(got) == ["d", "d/c", "f", "f/inside", "keep", "keep/new", "keep/old"]
    # the top layer's dirs win, even "keep", which it only implies (made 0755 by unpacking)
    assert got["d"][1] == 0o750 and got["keep"][1] == 0o755
    info = inspect(ocish_root, "test/opaque:1")
    assert _as_stat(got) == _merged(str(info["GraphDriver"]["Data"]["LowerDir"]),  # type: ignore[index]
                                    tmp / "mnt")
