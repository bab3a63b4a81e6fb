"""Layer unpacking: hostile archives stay inside the snapshot; whiteouts, devices, diff IDs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
from shim_support import Images, assert_store_sound, ocish, run
from shim_support import layer_tar as _tar

from shim.errors import OcishError
from shim.storage.snapshots import Snapshots
from shim.storage.unpack import unpack

pytest_plugins = ["shim_fixtures"]


def _file(name: str, data: bytes = b"pwned\n") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _snapshot_of(tmp_path: Path) -> Path:
    dest = tmp_path / "snap"
    dest.mkdir()
    return dest


def _all_files(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A dir outside the snapshot that hostile layers aim at."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "victim").write_text("original\n")
    return path


def test_absolute_and_dotdot_names_are_clamped(tmp_path: Path, outside: Path) -> None:
    dest = _snapshot_of(tmp_path)
    layer = _tar([_file(str(outside / "abs")), _file("../../../../" + str(outside) + "/dots"),
                  _file("a/../../b/../../up"), _file(str(outside / "victim"))])
    unpack(io.BytesIO(layer), str(dest))
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "original\n"
    rel = str(outside).lstrip("/")
    assert (dest / rel / "abs").is_file() and (dest / rel / "dots").is_file()
    assert (dest / rel / "victim").read_text() == "pwned\n" and (dest / "up").is_file()


def test_writes_through_symlinks_stay_inside(tmp_path: Path, outside: Path) -> None:
    dest = _snapshot_of(tmp_path)
    up = "../" * (len(dest.parts) + 2)
    layer = _tar([_link("abs", str(outside)), _link("rel", up + str(outside).lstrip("/")),
                  _link("victim-link", str(outside / "victim")),
                  _file("abs/pwned1"), _file("rel/pwned2"), _file("victim-link", b"replaced\n")])
    unpack(io.BytesIO(layer), str(dest))
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "original\n"
    inner = dest / str(outside).lstrip("/")
    assert (inner / "pwned1").is_file() and (inner / "pwned2").is_file()
    # the last component is replaced, never followed
    assert not (dest / "victim-link").is_symlink()
    assert (dest / "victim-link").read_text() == "replaced\n"


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    dest = _snapshot_of(tmp_path)
    with pytest.raises(OcishError, match="too many levels of symlinks"):
        unpack(io.BytesIO(_tar([_link("loop", "loop"), _file("loop/x")])), str(dest))


def test_hardlink_to_host_file_is_refused(tmp_path: Path) -> None:
    passwd = Path("/etc/passwd")
    before = (passwd.read_bytes(), passwd.stat().st_nlink)
    for entries in (
        [_link("passwd", "/etc/passwd", tarfile.LNKTYPE), _file("passwd", b"root::0:0::/:\n")],
        [_link("lnk", "/etc"), _link("pw", "lnk/passwd", tarfile.LNKTYPE)],
        [_link("pw", "../../../../../../../etc/passwd", tarfile.LNKTYPE)],
    ):
        dest = tmp_path / f"snap-{len(list(tmp_path.iterdir()))}"
        dest.mkdir()
        with pytest.raises(OcishError, match="not in the layer"):
            unpack(io.BytesIO(_tar(entries)), str(dest))
    assert (passwd.read_bytes(), passwd.stat().st_nlink) == before


def test_hardlink_inside_the_layer(tmp_path: Path) -> None:
    dest = _snapshot_of(tmp_path)
    unpack(io.BytesIO(_tar([_file("a/f", b"x"), _link("b/g", "/a/f", tarfile.LNKTYPE)])),
           str(dest))
    assert (dest / "a" / "f").stat().st_ino == (dest / "b" / "g").stat().st_ino


def test_whiteouts_devices_and_metadata(tmp_path: Path) -> None:
    dest = _snapshot_of(tmp_path)
    d = tarfile.TarInfo("d")
    d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o750, 1_234_567_890
    null = tarfile.TarInfo("dev/null")
    null.type, null.devmajor, null.devminor, null.mode = tarfile.CHRTYPE, 1, 3, 0o666
    fifo = tarfile.TarInfo("run/fifo")
    fifo.type = tarfile.FIFOTYPE
    owned, data = _file("d/owned", b"o")
    owned.uid, owned.gid, owned.mode, owned.mtime = 42, 43, 0o4755, 1_000_000
    owned.pax_headers = {"SCHILY.xattr.user.test": "value",
                         "SCHILY.xattr.trusted.overlay.redirect": "/etc"}
    layer = _tar([(d, None), _file("d/.wh..wh..opq", b""), (owned, data),
                  _file(".wh.removed", b""), _file("d/.wh.sub", b""), (null, None), (fifo, None)],
                 compress=True)
    got = unpack(io.BytesIO(layer), str(dest))
    assert got.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    assert os.getxattr(dest / "d", "trusted.overlay.opaque") == b"y"
    for wh in (dest / "removed", dest / "d" / "sub"):
        st = wh.lstat()
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not (dest / ".wh.removed").exists()
    st = (dest / "d" / "owned").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_mtime) == \
        (42, 43, 0o4755, 1_000_000)
    assert os.getxattr(dest / "d" / "owned", "user.test") == b"value"
    with pytest.raises(OSError):
        os.getxattr(dest / "d" / "owned", "trusted.overlay.redirect")
    assert (dest / "d").stat().st_mtime == 1_234_567_890
    assert stat.S_IMODE((dest / "d").stat().st_mode) == 0o750
    assert (dest / "dev" / "null").stat().st_rdev == os.makedev(1, 3)
    assert stat.S_ISFIFO((dest / "run" / "fifo").lstat().st_mode)


def test_snapshot_with_wrong_diff_id_is_discarded(tmp_path: Path) -> None:
    snaps = Snapshots(str(tmp_path))
    layer = _tar([_file("x")])
    with pytest.raises(OcishError, match="diff ID"):
        snaps.create("sha256:" + "1" * 64, "", "sha256:" + "2" * 64, io.BytesIO(layer))
    assert list((tmp_path / "snapshots").iterdir()) == []
    right = "sha256:" + hashlib.sha256(layer).hexdigest()
    snaps.create(right, "", right, io.BytesIO(layer))
    assert (Path(snaps.fs(right)) / "x").is_file()


def test_truncated_layer_is_an_error(tmp_path: Path) -> None:
    layer = _tar([_file("x", b"y" * 100_000)], compress=True)
    with pytest.raises(OcishError, match="bad archive"):
        unpack(io.BytesIO(layer[: len(layer) // 2]), str(_snapshot_of(tmp_path)))


def _write_layout(path: Path, layer: bytes) -> None:
    """An OCI layout holding one image of one (gzip) layer."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    config = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode())
    manifest = put(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    **put(layer)}]}).encode())
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
        "annotations": {"org.opencontainers.image.ref.name": "hostile"}}]}))


def test_hostile_layer_through_the_registry(images: Images, ocish_root: Path, tmp_path: Path,
                                            outside: Path) -> None:
    layer = _tar([_file(str(outside / "abs")), _file("../../../dots"),
                  _link("through", str(outside)), _file("through/sym")], compress=True)
    lay = tmp_path / "hostile-layout"
    _write_layout(lay, layer)
    ref = f"{images.registry.host}/test/hostile:latest"
    run("skopeo", "copy", "--dest-tls-verify=false", f"oci:{lay}:hostile", f"docker://{ref}")
    ocish(ocish_root, "pull", "--tls-verify=false", "-q", ref)
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    info = json.loads(ocish(ocish_root, "image", "inspect", ref).stdout)[0]
    snap = Path(info["GraphDriver"]["Data"]["LowerDir"])
    rel = str(outside).lstrip("/")
    assert {f"{rel}/abs", "dots", f"{rel}/sym", "through"} <= _all_files(snap)
    assert_store_sound(ocish_root)
