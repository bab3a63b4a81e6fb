"""Layers end to end: gzip, zstd and plain tar layers, metadata kept through a pull and an
overlay mount, stored blobs never fetched again, concurrent downloads with progress bars on a
terminal and plain lines otherwise, a pull killed mid-layer, a 100-layer image as one overlay."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pty
import re
import select
import stat
import struct
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard
from shim_support import (
    OCISH,
    Proxy,
    Registry,
    assert_store_sound,
    layer_tar,
    ocish,
    pull_killed_when,
    run,
    size,
)

from shim.errors import OcishError
from shim.storage.snapshots import Snapshots, unmount
from shim.storage.unpack import unpack

pytest_plugins = ["shim_fixtures"]

PULL = ("pull", "--tls-verify=false")
MEDIA = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
         "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
         "none": "application/vnd.oci.image.layer.v1.tar"}
MTIME_NS = 1_234_567_890_123_456_789
# security.capability for cap_net_raw+ep (struct vfs_cap_data, revision 2, effective)
CAP_NET_RAW = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)
MIB = 1 << 20
SLOW, SLOWER = 3 * MIB, 5 * MIB // 4  # bytes a second: a 2 MiB layer in ~0.7 s, ~1.6 s


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = None,
          **attrs: object) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 1_700_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def compress(raw: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(raw, 1)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(raw)
    return raw


def exact_time(**attrs: object) -> dict[str, object]:
    """Attributes for an entry whose mtime is MTIME_NS to the nanosecond (a pax record)."""
    return {"mtime": MTIME_NS / 1e9, "pax_headers": {"mtime": "1234567890.123456789"}, **attrs}


def metadata_layer() -> bytes:
    """Every kind of entry, with owners, modes, ns mtimes and xattrs (binary ones too)."""
    return layer_tar([
        entry("meta", tarfile.DIRTYPE, **exact_time(mode=0o750, uid=11, gid=12)),
        entry("meta/setuid", data=b"#!/bin/sh\n", **exact_time(
            mode=0o4755, uid=42, gid=43, pax_headers={
                "mtime": "1234567890.123456789", "SCHILY.xattr.user.test": "value",
                "SCHILY.xattr.security.capability":
                    CAP_NET_RAW.decode("utf-8", "surrogateescape")})),
        entry("meta/hard", tarfile.LNKTYPE, linkname="meta/setuid"),
        entry("meta/sym", tarfile.SYMTYPE, **exact_time(linkname="setuid", uid=44, gid=45)),
        entry("meta/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
        entry("meta/loop", tarfile.BLKTYPE, devmajor=7, devminor=0, mode=0o660, gid=6),
        entry("meta/fifo", tarfile.FIFOTYPE, mode=0o640, uid=5),
        entry("meta/sticky", tarfile.DIRTYPE, mode=0o1777),
    ])


def check_metadata(root: Path) -> None:
    meta = root / "meta"
    st = meta.lstat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns) == \
        (0o750, 11, 12, MTIME_NS)
    st = (meta / "setuid").lstat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns) == \
        (0o4755, 42, 43, MTIME_NS)
    assert os.getxattr(meta / "setuid", "user.test") == b"value"
    assert os.getxattr(meta / "setuid", "security.capability") == CAP_NET_RAW
    hard = (meta / "hard").lstat()
    assert (hard.st_ino, hard.st_nlink) == (st.st_ino, 2)
    st = (meta / "sym").lstat()
    assert stat.S_ISLNK(st.st_mode) and os.readlink(meta / "sym") == "setuid"
    assert (st.st_uid, st.st_gid, st.st_mtime_ns) == (44, 45, MTIME_NS)
    st = (meta / "null").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666
    st = (meta / "loop").lstat()
    assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(7, 0)
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o660, 6)
    st = (meta / "fifo").lstat()
    assert stat.S_ISFIFO(st.st_mode) and (stat.S_IMODE(st.st_mode), st.st_uid) == (0o640, 5)
    assert stat.S_IMODE((meta / "sticky").lstat().st_mode) == 0o1777


def random_layer(name: str, size: int) -> bytes:
    return layer_tar([entry(name, data=os.urandom(size))])


@dataclass
class Pushed:
    """An image put into the registry through its HTTP API."""

    ref: str
    layers: list[bytes]     # the uncompressed tars
    blobs: list[str]        # their blob digests
    diff_ids: list[str]


def put_image(reg: Registry, repo: str, layers: list[bytes], how: str) -> Pushed:
    """Upload *layers* (compressed *how*), a config and an OCI manifest as *repo*:latest.

    Blobs go up exactly as made: skopeo would compress plain tar layers on the way."""
    diff_ids = ["sha256:" + hashlib.sha256(raw).hexdigest() for raw in layers]
    descs = [{"mediaType": MEDIA[how], **reg.put_blob(repo, compress(raw, how))}
             for raw in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           **reg.put_blob(repo, config)},
                "layers": descs}
    reg.put_manifest(repo, "latest", json.dumps(manifest).encode(), manifest["mediaType"])
    return Pushed(f"{reg.host}/{repo}:latest", layers, [str(d["digest"]) for d in descs],
                  diff_ids)


@pytest.fixture(scope="session")
def layered(registry: Registry) -> dict[str, Pushed]:
    """gzip, zstd and plain images of [2 MiB of random data, every kind of entry], and `two`:
    two 2 MiB random layers (gzip), for watching downloads."""
    layers = [random_layer("random.bin", 2 * MIB), metadata_layer()]
    out = {how: put_image(registry, f"test/layers-{how}", layers, how) for how in MEDIA}
    out["two"] = put_image(registry, "test/layers-two", [
        random_layer("one.bin", 2 * MIB), random_layer("two.bin", 2 * MIB)], "gzip")
    return out


def lower_dirs(root: Path, ref: str) -> list[Path]:
    info = json.loads(ocish(root, "image", "inspect", ref).stdout)[0]
    return [Path(p) for p in info["GraphDriver"]["Data"]["LowerDir"].split(":")]


def chains(root: Path, ref: str) -> list[str]:
    """The image's snapshot chain IDs, bottom first."""
    return ["sha256:" + p.parent.name for p in reversed(lower_dirs(root, ref))]


def mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


@pytest.mark.parametrize("how", list(MEDIA))
def test_compressions_and_metadata(layered: dict[str, Pushed], ocish_root: Path, tmp_path: Path,
                                   how: str) -> None:
    img = layered[how]
    ocish(ocish_root, *PULL, "-q", img.ref)
    info = json.loads(ocish(ocish_root, "image", "inspect", img.ref).stdout)[0]
    assert info["RootFS"]["Layers"] == img.diff_ids
    for blob in img.blobs:  # the blobs are stored as the registry has them
        assert (ocish_root / "blobs" / "sha256" / blob[7:]).is_file()
    if how == "none":
        assert img.blobs == img.diff_ids
    top, bottom = lower_dirs(ocish_root, img.ref)
    assert (bottom / "random.bin").read_bytes() == \
        tarfile.open(fileobj=io.BytesIO(img.layers[0])).extractfile("random.bin").read()  # type: ignore[union-attr]
    check_metadata(top)
    assert_store_sound(ocish_root)
    # and the same through overlayfs
    merged = tmp_path / "merged"
    merged.mkdir()
    Snapshots(str(ocish_root)).mount(chains(ocish_root, img.ref), str(merged))
    try:
        check_metadata(merged)
        assert (merged / "random.bin").stat().st_size == 2 * MIB
    finally:
        unmount(str(merged))
    assert not mounted(merged)


def test_stored_blobs_are_not_downloaded_again(layered: dict[str, Pushed], registry: Registry,
                                               ocish_root: Path) -> None:
    img = layered["zstd"]
    ocish(ocish_root, *PULL, "-q", img.ref)
    snaps = Snapshots(str(ocish_root))
    for chain in chains(ocish_root, img.ref):  # the snapshots go, the blobs stay
        snaps.remove(chain)
    before = registry.blob_gets()
    out = ocish(ocish_root, *PULL, img.ref).stdout
    assert registry.blob_gets() == before
    assert out.count("Pull complete") == 2 and "Downloading" not in out
    check_metadata(lower_dirs(ocish_root, img.ref)[0])
    assert_store_sound(ocish_root)


def test_each_layer_unpacked_once_by_chain_id(layered: dict[str, Pushed], registry: Registry,
                                              ocish_root: Path) -> None:
    """The zstd image has the gzip one's layers in other blobs: same diff IDs, same chain IDs,
    so its pull unpacks nothing; it fetches its own blobs, into the content store only."""
    ocish(ocish_root, *PULL, "-q", layered["gzip"].ref)
    snaps = {p.name: p.stat().st_ino for p in (ocish_root / "snapshots").iterdir()}
    before = registry.requests()
    out = ocish(ocish_root, *PULL, layered["zstd"].ref).stdout
    fetched = [r.path for r in registry.requests(len(before))
               if r.method == "GET" and "/blobs/" in r.path]
    assert out.count("Download complete") == 2 and "Pull complete" not in out
    assert sorted(b for b in layered["zstd"].blobs if any(b in p for p in fetched)) == \
        sorted(layered["zstd"].blobs)
    for blob in layered["zstd"].blobs:
        assert (ocish_root / "blobs" / "sha256" / blob[7:]).is_file()
    assert {p.name: p.stat().st_ino for p in (ocish_root / "snapshots").iterdir()} == snaps
    assert lower_dirs(ocish_root, layered["zstd"].ref) == \
        lower_dirs(ocish_root, layered["gzip"].ref)
    assert_store_sound(ocish_root)
    # and once they are all there, nothing is fetched again
    before = registry.requests()
    out = ocish(ocish_root, *PULL, layered["zstd"].ref).stdout
    assert out.count("Already exists") == 2 and "Image is up to date" in out
    assert not [r for r in registry.requests(len(before))
                if r.method == "GET" and "/blobs/" in r.path]


def test_push_and_save_when_the_layers_came_in_other_blobs(
        layered: dict[str, Pushed], registry2: Registry, ocish_root: Path,
        tmp_path: Path) -> None:
    """The zstd image pulled after the gzip one (same diff IDs in other blobs) is pushed to
    another registry and saved as it is: its own blobs, byte for byte."""
    img = layered["zstd"]
    ocish(ocish_root, *PULL, "-q", layered["gzip"].ref)
    ocish(ocish_root, *PULL, "-q", img.ref)
    dest = f"{registry2.host}/copy/layers-zstd:latest"
    ocish(ocish_root, "push", "--tls-verify=false", "-q", img.ref, dest)
    source = run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{img.ref}")
    pushed = run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{dest}")
    assert pushed.stdout == source.stdout
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{dest}",
        f"oci:{tmp_path / 'back'}:latest")  # skopeo checks every blob's digest
    ocish(ocish_root, "save", "-o", str(tmp_path / "docker.tar"), img.ref)
    archive = tmp_path / "oci.tar"
    ocish(ocish_root, "save", "--format", "oci-archive", "-o", str(archive), img.ref)
    with tarfile.open(archive) as tf:
        names = tf.getnames()
    assert all(f"blobs/sha256/{b[7:]}" in names for b in img.blobs)
    assert_store_sound(ocish_root)


def _read_all(master: int, proc: subprocess.Popen[bytes]) -> bytes:
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                chunk = b""
            if chunk:
                out += chunk
                continue
        if proc.poll() is not None and not ready:
            return out
        if ready and proc.poll() is not None:
            return out


EVENT = re.compile(r"(?:\x1b\[(\d+)A\r\x1b\[2K)?([0-9a-f]{12}): ([^\r\n\x1b]*)")


def test_progress_bars_on_a_terminal(layered: dict[str, Pushed], registry: Registry,
                                     ocish_root: Path) -> None:
    img = layered["two"]
    master, slave = pty.openpty()
    try:
        with Proxy(registry, rate=SLOW) as proxy:
            proc = subprocess.Popen([str(OCISH), "--root", str(ocish_root), *PULL,
                                     proxy.via(img.ref)], stdout=slave, stderr=subprocess.PIPE)
            os.close(slave)
            slave = -1
            text = _read_all(master, proc).decode()
            assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert "Traceback" not in text
    keys = [b[7:19] for b in img.blobs]
    events = [(m.group(2), m.group(3).strip(), m.group(1)) for m in EVENT.finditer(text)]
    for key in keys:
        mine = [(status, up) for k, status, up in events if k == key]
        assert mine[0] == ("Pulling fs layer", None), mine  # its line, written once
        assert mine[-1][0] == "Pull complete", mine
        assert all(up is not None for _, up in mine[1:]), mine  # then redrawn in place
        bars = [s for s, _ in mine if s.startswith("Downloading [")]
        assert any(re.fullmatch(r"Downloading \[=+> +\]  [\d.]+MB/2\.1MB", b) for b in bars), bars
        assert bars[-1] == "Downloading [" + "=" * 49 + ">]  2.1MB/2.1MB", bars
        assert "Download complete" in [s for s, _ in mine]
    # concurrently: each layer's bar moved before the other's download completed
    order = [(k, s) for k, s, _ in events if k in keys]
    for a, b in (keys, keys[::-1]):
        first_bar = next(i for i, (k, s) in enumerate(order) if k == b and "Downloading" in s)
        assert first_bar < order.index((a, "Download complete")), order
    assert "Status: Downloaded newer image" in text
    assert_store_sound(ocish_root)


def test_plain_lines_and_concurrent_downloads(layered: dict[str, Pushed], registry: Registry,
                                              ocish_root: Path) -> None:
    img = layered["two"]
    with Proxy(registry, rate=SLOW) as proxy:
        proc = subprocess.Popen([str(OCISH), "--root", str(ocish_root), *PULL,
                                 proxy.via(img.ref)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ingest = ocish_root / "ingest"
        most = 0
        while proc.poll() is None:  # both layer blobs are being written at once
            sizes = []
            for p in ingest.iterdir() if ingest.is_dir() else []:
                try:
                    sizes.append(p.stat().st_size)
                except FileNotFoundError:
                    pass  # just renamed into place
            most = max(most, sum(1 for size in sizes if size > 0))
            time.sleep(0.01)
        out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert most == 2
    text = out.decode()
    assert "\x1b" not in text and "Downloading" not in text
    for key in (b[7:19] for b in img.blobs):
        assert [line.split(": ", 1)[1] for line in text.splitlines()
                if line.startswith(key)] == ["Pulling fs layer", "Download complete",
                                            "Pull complete"]


def test_pull_killed_mid_layer(layered: dict[str, Pushed], registry: Registry,
                               ocish_root: Path) -> None:
    img = layered["two"]
    with Proxy(registry, rate=SLOWER) as proxy:
        ref = proxy.via(img.ref)
        snapshots = ocish_root / "snapshots"
        pull_killed_when(ocish_root, ref, lambda: any(  # half downloaded and half unpacked
            size(p) >= MIB // 2 for p in snapshots.glob("tmp-*/fs/*.bin")), "layer unpacking")
        assert [p for p in (ocish_root / "ingest").iterdir() if p.stat().st_size > 0]
        assert_store_sound(ocish_root)  # only whole, verified blobs
        proxy.rate = 0
        ocish(ocish_root, *PULL, "-q", ref)
    assert_store_sound(ocish_root)
    assert list((ocish_root / "ingest").iterdir()) == []
    assert not list((ocish_root / "snapshots").glob("tmp-*"))
    top, bottom = lower_dirs(ocish_root, ref)
    for path, raw in ((bottom / "one.bin", img.layers[0]), (top / "two.bin", img.layers[1])):
        member = tarfile.open(fileobj=io.BytesIO(raw)).extractfile(path.name)
        assert member is not None and path.read_bytes() == member.read()


@pytest.fixture(scope="module")
def hundred(registry: Registry) -> Pushed:
    """100 layers: layers/NNN in each, a file whited out and a dir made opaque on the way."""
    layers = []
    for i in range(100):
        entries = [entry(f"layers/{i:03d}", data=f"{i}\n".encode())]
        if i == 10:
            entries += [entry("gone/file", data=b"x"), entry("opaque/old", data=b"x")]
        if i == 50:
            entries.append(entry("gone/.wh.file", data=b""))
        if i == 70:
            entries += [entry("opaque/.wh..wh..opq", data=b""), entry("opaque/new", data=b"y")]
        layers.append(layer_tar(entries))
    return put_image(registry, "test/hundred", layers, "gzip")


def test_hundred_layers_as_one_overlay(hundred: Pushed, ocish_root: Path, tmp_path: Path) -> None:
    ocish(ocish_root, *PULL, "-q", hundred.ref)
    lowers = lower_dirs(ocish_root, hundred.ref)
    assert len(lowers) == 100
    # what mount(2) could not take: one page of options
    assert len("lowerdir=" + ":".join(map(str, lowers))) > 4096
    snaps = Snapshots(str(ocish_root))
    ids = chains(ocish_root, hundred.ref)
    merged = tmp_path / "merged"
    merged.mkdir()
    snaps.mount(ids, str(merged))
    try:
        assert sorted(os.listdir(merged / "layers")) == [f"{i:03d}" for i in range(100)]
        assert (merged / "layers" / "099").read_text() == "99\n"
        assert os.listdir(merged / "gone") == []
        assert os.listdir(merged / "opaque") == ["new"]
        with pytest.raises(OSError):
            (merged / "layers" / "new").write_text("x")  # read-only
    finally:
        unmount(str(merged))
    # writable: the changes land in the upper dir
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    snaps.mount(ids, str(merged), str(upper), str(work))
    try:
        (merged / "added").write_text("new\n")
        (merged / "layers" / "000").unlink()
        assert len(os.listdir(merged / "layers")) == 99
    finally:
        unmount(str(merged))
    assert (upper / "added").read_text() == "new\n"
    whiteout = (upper / "layers" / "000").lstat()
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    # one layer read-only: a bind mount (overlayfs wants two lower dirs without an upper)
    snaps.mount(ids[:1], str(merged))
    try:
        assert os.listdir(merged / "layers") == ["000"]
        with pytest.raises(OSError):
            (merged / "x").write_text("x")
    finally:
        unmount(str(merged))
    assert not mounted(merged)


def test_too_many_layers_for_one_mount(tmp_path: Path) -> None:
    snaps = Snapshots(str(tmp_path / "root"))
    ids = ["sha256:" + hashlib.sha256(str(i).encode()).hexdigest() for i in range(300)]
    for chain in ids:
        os.makedirs(snaps.fs(chain))
    (tmp_path / "mnt").mkdir()
    with pytest.raises(OcishError, match="300 layers: too many for one overlay mount"):
        snaps.mount(ids, str(tmp_path / "mnt"))
    assert not mounted(tmp_path / "mnt")
    # a short name taken by another snapshot: the next longer one
    a, b = "sha256:" + "ab" * 32, "sha256:" + "ab" * 6 + "cd" * 26
    for chain in (a, b):
        os.makedirs(snaps.fs(chain))
    assert (snaps.link(a), snaps.link(b)) == ("l/" + "ab" * 6, "l/" + "ab" * 6 + "cdcdcdcd")
    assert snaps.link(b) == "l/" + "ab" * 6 + "cdcdcdcd"  # found again
    snaps.remove(b)
    assert not os.path.lexists(os.path.join(snaps.root, "l", "ab" * 6 + "cdcdcdcd"))


# -- the unpacker on its own ------------------------------------------------------------------

def _unpack_bytes(tmp_path: Path, data: bytes) -> tuple[Path, str]:
    dest = tmp_path / f"dest-{len(list(tmp_path.iterdir()))}"
    dest.mkdir()
    return dest, unpack(io.BytesIO(data), str(dest)).diff_id


def test_compressed_stream_edges(tmp_path: Path) -> None:
    raw = layer_tar([entry("a", data=os.urandom(300_000)), entry("b", data=b"b" * 300_000)])
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    half = len(raw) // 2
    zc = zstandard.ZstdCompressor()
    for good in (gzip.compress(raw[:half]) + gzip.compress(raw[half:]),  # two members
                 gzip.compress(raw) + b"\0" * 1000,                      # zero padding
                 zc.compress(raw[:half]) + zc.compress(raw[half:])):     # two zstd frames
        dest, got = _unpack_bytes(tmp_path, good)
        assert got == diff_id and (dest / "b").read_bytes() == b"b" * 300_000
    gz, zs = gzip.compress(raw), zc.compress(raw)
    for bad, why in ((gz + b"garbage", "gzip: trailing data"), (gz[:-20], "gzip: .* ends early"),
                     (gz[:1000] + bytes(1000) + gz[2000:], "gzip: Error -3"),
                     (zs[:len(zs) // 2], "tar: unexpected end of data")):
        with pytest.raises(OcishError, match=f"^layer: bad archive: {why}"):
            _unpack_bytes(tmp_path, bad)
    # a zstd frame without a checksum cannot tell: the diff ID does (snapshots check it)
    assert _unpack_bytes(tmp_path, zs[:2000] + bytes(500) + zs[2500:])[1] != diff_id


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_sparse_files(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    sparse = src / "sparse"
    with open(sparse, "wb") as f:
        f.truncate(8 * MIB)
        for at in (0, 3 * MIB, 8 * MIB - 5):
            f.seek(at)
            f.write(b"data!")
    run("tar", f"--format={fmt}", "--sparse", "-C", src, "-cf", tmp_path / "s.tar", "sparse")
    raw = (tmp_path / "s.tar").read_bytes()
    assert len(raw) < MIB  # really stored sparse
    dest, diff_id = _unpack_bytes(tmp_path, raw)
    assert diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert (dest / "sparse").read_bytes() == sparse.read_bytes()


def _tree(root: Path) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            kind = stat.S_IFMT(st.st_mode)
            extra: object = None
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                extra = st.st_rdev
            out[str(path.relative_to(root))] = (kind, stat.S_IMODE(st.st_mode), st.st_uid,
                                                st.st_gid, st.st_mtime_ns, st.st_nlink, extra)
    return out


def test_same_tree_as_gnu_tar(tmp_path: Path) -> None:
    """A busybox rootfs (hundreds of symlinks, nested dirs) plus every kind of entry: ocish's
    unpacker and GNU tar make the same tree."""
    src = tmp_path / "rootfs"
    run(Path(__file__).resolve().parents[2] / "bundles" / "mkrootfs", src)
    base = tmp_path / "base.tar"
    run("tar", "--format=pax", "--numeric-owner", "-C", src, "-cf", base, ".")
    entries = []
    for tar in (tarfile.open(base), tarfile.open(fileobj=io.BytesIO(metadata_layer()))):
        with tar:
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isreg() else None
                entries.append((m, f.read() if f is not None else None))
    raw = layer_tar(entries)
    ours, _ = _unpack_bytes(tmp_path, raw)
    theirs = tmp_path / "gnu"
    theirs.mkdir()
    (tmp_path / "all.tar").write_bytes(raw)
    run("tar", "--xattrs", "--xattrs-include=*", "--same-owner", "--numeric-owner", "-p",
        "-C", theirs, "-xf", tmp_path / "all.tar")
    mine, gnu = _tree(ours), _tree(theirs)
    assert len(mine) > 250
    assert mine == gnu
    check_metadata(ours)


def test_huge_tar_header_is_refused(tmp_path: Path) -> None:
    """A pax record or long name is read whole: one of 17 MiB (a few KiB gzipped) is refused."""
    info, data = entry("x", data=b"y")
    info.pax_headers = {"comment": "a" * (17 << 20)}
    with pytest.raises(OcishError, match="layer: bad archive: tar: a [0-9]+-byte header"):
        _unpack_bytes(tmp_path, gzip.compress(layer_tar([(info, data)])))


@pytest.mark.parametrize(("how", "why"), [("flip", "digest mismatch"),
                                          ("cut", r"got \d+ bytes, expected \d+")])
def test_spoiled_download_is_reported_as_such(layered: dict[str, Pushed], registry: Registry,
                                              ocish_root: Path, how: str, why: str) -> None:
    img = layered["two"]
    with Proxy(registry, spoil=(img.blobs[1], how)) as proxy:
        ref = img.ref.replace(registry.host, proxy.host)
        res = ocish(ocish_root, *PULL, "-q", ref, check=False)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(f"ocish: blob {img.blobs[1]}: {why}.*", lines[0]), \
        res.stderr
    assert_store_sound(ocish_root)
    assert not (ocish_root / "blobs" / "sha256" / img.blobs[1][7:]).exists()
    assert list((ocish_root / "ingest").iterdir()) == []
    assert not list((ocish_root / "snapshots").glob("tmp-*"))
    assert ocish(ocish_root, "images", "-q").stdout == ""
