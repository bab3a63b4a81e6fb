"""ocish volumes and mounts, for real, with ocirt and with runc (container_fixtures.oc): named
volumes that outlive containers, binds, tmpfs, the image's VOLUMEs as anonymous volumes
populated from the image, rm -v, volume rm/prune, bad specs, and a hostile image whose VOLUME
is a symlink out of its rootfs."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest
from container_support import CGROUP_PARENT, Ocish, assert_nothing_left, wait_for
from shim_support import Images, Registry, layer_tar, one_line_error, push, run

pytest_plugins = ["shim_fixtures", "container_fixtures"]

VOL_REPO = "test/busybox-volumes"


@pytest.fixture(scope="session")
def host_side(work: Path) -> Path:
    """A host dir the hostile image's VOLUME symlinks point at."""
    d = work / "host-side"
    d.mkdir()
    (d / "secret").write_text("host only\n")
    return d


@pytest.fixture(scope="session")
def vol_image(registry: Registry, layout: Path, images: Images, work: Path,
              host_side: Path) -> str:
    """The base image with VOLUME /data (which has content) and VOLUMEs /evil and /evil2,
    symlinks to *host_side* (absolute, and by ``..`` from wherever the rootfs is), added as a
    raw layer (umoci repack drops such symlinks)."""
    entries = []
    for name, target in (("evil", str(host_side)), ("evil2", "../" * 10 + ".." +
                                                    str(host_side))):
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.SYMTYPE, target
        entries.append((info, None))
    tar = work / "evil-layer.tar"
    tar.write_bytes(layer_tar(entries))
    run("umoci", "config", "--image", f"{layout}:base", "--tag", "vols",
        "--config.volume", "/data", "--config.volume", "/evil", "--config.volume", "/evil2")
    run("umoci", "raw", "add-layer", "--image", f"{layout}:vols", tar)
    push(registry, layout, "vols", VOL_REPO)
    return images.ref(VOL_REPO)


def run_image(oc: Ocish, image: str, *args: str, check: bool = True) -> str:
    """``ocish run`` of *image*: options, then the image, then the command after "--"."""
    i = args.index("--")
    return oc("run", "--tls-verify=false", "--cgroup-parent", CGROUP_PARENT, *args[:i], image,
              *args[i + 1:], check=check).stdout


def volumes(oc: Ocish) -> list[str]:
    return oc("volume", "ls", "-q").stdout.split()


def test_named_volume_persists_and_is_guarded(oc: Ocish) -> None:
    # first use: the image's /data copied up into the new volume
    out = oc.run("--rm", "-v", "data:/data", "IMAGE", "sh", "-c",
                 "cat /data/hello.txt; echo kept > /data/mine").stdout
    assert out == "hello\n"
    assert volumes(oc) == ["data"]
    mountpoint = json.loads(oc("volume", "inspect", "data").stdout)[0]["Mountpoint"]
    assert Path(mountpoint, "mine").read_text() == "kept\n"
    assert Path(mountpoint, "dir", "keep").stat().st_uid == 1234  # owners copied too
    # a second container sees what the first wrote (no copy-up over it)
    oc.run("-d", "--name", "web", "-v", "data:/data", "IMAGE", "sleep", "1000")
    mounts = oc.inspect("web")["Mounts"]
    assert mounts == [{"Type": "volume", "Name": "data", "Source": mountpoint,
                       "Destination": "/data", "Driver": "local", "Mode": "z", "RW": True,
                       "Propagation": ""}]
    assert oc.inspect("web")["HostConfig"]["Binds"] == ["data:/data"]  # type: ignore[index]
    res = oc("volume", "rm", "data", check=False)
    assert res.returncode == 1
    assert one_line_error(res).startswith("ocish: remove data: volume is in use - [")
    assert oc("volume", "prune", "-a", "-f").stdout == "Total reclaimed space: 0B\n"
    oc("rm", "-f", "-v", "web")  # -v: anonymous volumes only; data is named
    out = oc.run("--rm", "-v", "data:/data", "IMAGE", "cat", "/data/mine").stdout
    assert out == "kept\n"
    assert oc("volume", "rm", "data").stdout == "data\n"
    assert volumes(oc) == [] and not Path(mountpoint).exists()


def test_bind_ro_and_tmpfs(oc: Ocish, scratch: Path) -> None:
    host = scratch / "bind"
    host.mkdir()
    (host / "f").write_text("from host\n")
    script = ("cat /b/f; (echo x > /b/g) 2>&1; echo y > /w/g; grep -E ' /(t|m) ' /proc/mounts")
    out = oc.run("--rm", "-v", f"{host}:/b:ro", "--mount", f"type=bind,source={host},target=/w",
                 "--tmpfs", "/t:size=1m", "--mount", "type=tmpfs,target=/m,tmpfs-size=2m",
                 "IMAGE", "sh", "-c", script).stdout.splitlines()
    assert out[0] == "from host"
    assert "Read-only file system" in out[1]
    assert (host / "g").read_text() == "y\n"  # the rw bind of the same dir
    tmpfs = {ln.split()[1]: ln.split() for ln in out[2:]}
    assert tmpfs["/t"][2] == "tmpfs" and "size=1024k" in tmpfs["/t"][3]
    assert tmpfs["/m"][2] == "tmpfs" and "size=2048k" in tmpfs["/m"][3]
    assert volumes(oc) == []


def test_volume_options(oc: Ocish) -> None:
    oc("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt",
       "o=size=3m", "--label", "k=v", "tv")
    out = oc.run("--rm", "-v", "tv:/tv", "IMAGE", "grep", " /tv ", "/proc/mounts").stdout
    assert out.split()[2] == "tmpfs" and "size=3072k" in out.split()[3]
    ls = oc("volume", "ls", "--filter", "label=k=v", "--format", "{{.Name}}:{{.Driver}}")
    assert ls.stdout == "tv:local\n"
    info = json.loads(oc("volume", "inspect", "tv").stdout)[0]
    assert sorted(info) == ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options",
                            "Scope"]
    assert info["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=3m"}
    assert info["Labels"] == {"k": "v"} and info["Scope"] == "local"
    # nocopy: the image's /data is not copied into the new volume
    oc.run("-d", "--name", "nc", "-v", "nc:/data:nocopy", "IMAGE", "sleep", "1000")
    assert oc.run("--rm", "-v", "nc:/data", "IMAGE", "ls", "/data").stdout == ""
    assert oc("volume", "ls").stdout == ("DRIVER    VOLUME NAME\n"
                                         "local     nc\n"
                                         "local     tv\n")
    assert oc("volume", "ls", "-q", "--filter", "dangling=true").stdout == "tv\n"
    assert oc("volume", "ls", "-q", "--filter", "dangling=false").stdout == "nc\n"
    oc("rm", "-f", "nc")
    assert oc("volume", "rm", "tv", "nc").stdout == "tv\nnc\n"


def test_image_volumes(oc: Ocish, vol_image: str, host_side: Path) -> None:
    """The image's VOLUMEs get anonymous volumes, /data's populated from the image; the ones
    that are symlinks out of the rootfs resolve inside it: nothing of the host is copied in,
    nothing the container writes lands on the host; rm -v removes them."""
    run_image(oc, vol_image, "-d", "--name", "a", "--", "sh", "-c",
              "readlink /evil > /data/links; readlink /evil2 >> /data/links; "
              "echo w > /evil/x; echo w > /evil2/x; "
              "exec sleep 1000")
    info = oc.inspect("a")
    mounts = {m["Destination"]: m for m in info["Mounts"]}  # type: ignore[attr-defined]
    assert sorted(mounts) == ["/data", "/evil", "/evil2"]
    assert sorted(info["Config"]["Volumes"]) == ["/data", "/evil", "/evil2"]  # type: ignore[index]
    for m in mounts.values():
        assert m["Type"] == "volume" and len(m["Name"]) == 64 and m["RW"]
    assert sorted(volumes(oc)) == sorted(m["Name"] for m in mounts.values())
    assert Path(mounts["/data"]["Source"], "hello.txt").read_text() == "hello\n"
    links = Path(mounts["/data"]["Source"], "links")
    wait_for(lambda: links.exists() and links.read_text().count("\n") == 2, "readlink")
    assert links.read_text().split() == [str(host_side), "../" * 10 + ".." + str(host_side)]
    assert os.readlink(Path(mounts["/data"]["Source"], "hello-sym")) == "hello.txt"
    assert sorted(os.listdir(host_side)) == ["secret"]
    for dst in ("/evil", "/evil2"):
        assert "secret" not in os.listdir(mounts[dst]["Source"])
    oc("rm", "-f", "-v", "a")
    assert volumes(oc) == []
    # run --rm removes them too; without -v they stay, for prune
    run_image(oc, vol_image, "--rm", "--", "true")
    assert volumes(oc) == []
    run_image(oc, vol_image, "--name", "b", "--", "true")
    oc("rm", "b")
    assert len(volumes(oc)) == 3
    oc("volume", "create", "named")
    out = oc("volume", "prune", "-f").stdout
    assert out.startswith("Deleted Volumes:\n")
    # hello.txt (its hard link counted once), new.txt, dir/keep, the symlink hello-sym
    assert out.endswith("\n\nTotal reclaimed space: 24B\n")
    assert volumes(oc) == ["named"]
    oc("volume", "prune", "-f", "-a")
    assert volumes(oc) == []


BAD_SPECS = [
    (["-v", "data:relative"], "invalid mount path: 'relative' mount path must be absolute"),
    (["-v", "a:b:c:d"], "invalid volume specification: 'a:b:c:d'"),
    (["-v", "data:/x:bogus"], "invalid mode: bogus"),
    (["-v", "/nosuch:/x"], "bind source path does not exist: /nosuch"),
    (["-v", "bad name:/x"], "includes invalid characters for a local volume name"),
    (["-v", "data:/x", "-v", "other:/x"], "Duplicate mount point: /x"),
    (["-v", "data:/"], "destination can't be '/'"),
    (["--mount", "type=bind,target=/x"], "field Source must not be empty"),
    (["--mount", "type=volume,source=v"], "field Target must not be empty"),
    (["--mount", "type=weird,target=/x"], "unknown mount type"),
    (["--mount", "type=volume,target=/x,foo=bar"], "unexpected key 'foo'"),
    (["--mount", "type=bind,source=/nosuch,target=/x"], "bind source path does not exist"),
    (["--tmpfs", "relative"], "mount path must be absolute"),
    (["--mount", "type=tmpfs,target=/x,tmpfs-size=lots"], "invalid value for tmpfs-size"),
]


def test_bad_specs(oc: Ocish) -> None:
    oc("pull", "--tls-verify=false", oc.image)
    for args, why in BAD_SPECS:
        res = oc.run(*args, "-v", "made:/made", "IMAGE", "true", check=False)
        assert res.returncode == 125, args
        assert why in one_line_error(res)
        assert volumes(oc) == []
    assert_nothing_left(oc.root)


def test_failed_run_leaves_no_volume(oc: Ocish) -> None:
    oc("pull", "--tls-verify=false", oc.image)
    res = oc.run("--rm", "-v", "made:/data", "-v", "/anon", "IMAGE", "/no/such/cmd",
                 check=False)
    assert res.returncode == 127
    assert volumes(oc) in ([], ["made"])  # the anonymous volume goes, at least
    oc("volume", "rm", "-f", "made")


def test_volume_cli_errors(oc: Ocish) -> None:
    res = oc("volume", "rm", "nosuch", check=False)
    assert res.returncode == 1 and one_line_error(res) == "ocish: get nosuch: no such volume"
    assert oc("volume", "rm", "-f", "nosuch").stdout == "nosuch\n"
    res = oc("volume", "create", "--opt", "foo=bar", "vv", check=False)
    assert res.returncode == 1 and 'invalid option key: "foo"' in one_line_error(res)
    assert volumes(oc) == []
