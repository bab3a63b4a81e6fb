"""Root filesystem and mounts (config.md "Root", "Mounts"; config-linux.md devices, masked and
read-only paths, sysctl; runtime-linux.md /dev links): checked from inside the container."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from spec_support import Containers, mountinfo_lines


def parse_mountinfo(text: str) -> list[dict[str, str]]:
    """Mount point, per-mount options, fs type and super options of each mountinfo line."""
    mounts = []
    for line in text.splitlines():
        if " - " not in line:
            continue
        left, right = line.split(" - ", 1)
        lf, rf = left.split(), right.split()
        mounts.append({
            "mountpoint": lf[4],
            "options": lf[5],
            "optional": " ".join(lf[6:]),
            "fstype": rf[0],
            "source": rf[1] if len(rf) > 1 else "",
            "super": rf[2] if len(rf) > 2 else "",
        })
    return mounts


def mount_at(mounts: list[dict[str, str]], point: str) -> dict[str, str]:
    found = [m for m in mounts if m["mountpoint"] == point]
    assert found, f"nothing mounted at {point}: {[m['mountpoint'] for m in mounts]}"
    return found[-1]


def host_mounts_under(path: Path) -> list[str]:
    p = str(path)
    return [line for line in mountinfo_lines() if p in line]


# --------------------------------------------------------------------------------------------
# root
# --------------------------------------------------------------------------------------------


def test_readonly_root(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "touch /x 2>&1; echo rc=$?"])
    out = ctr.output(b)
    assert "rc=0" not in out
    assert "Read-only file system" in out
    assert not (b.rootfs / "x").exists()


def test_writable_root(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "echo written > /x && cat /x"])
    b.config["root"]["readonly"] = False
    assert ctr.output(b) == "written\n"
    assert (b.rootfs / "x").read_text() == "written\n"


def test_root_path_absolute(ctr: Containers) -> None:
    b = ctr.bundle(["cat", "/etc/marker"])
    (b.rootfs / "etc" / "marker").write_text("absolute root\n")
    b.config["root"]["path"] = str(b.rootfs)
    assert ctr.output(b) == "absolute root\n"


def test_root_is_pivoted(ctr: Containers) -> None:
    """The container cannot see the host's files above its rootfs."""
    b = ctr.bundle(["ls", "-a", "/", "/.."])
    (b.rootfs / "only-in-rootfs").write_text("")
    out = ctr.output(b).split()
    assert "only-in-rootfs" in out
    assert "work" not in out and "usr" not in out


# --------------------------------------------------------------------------------------------
# mounts
# --------------------------------------------------------------------------------------------


def test_tmpfs_mount_with_options(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "stat -c %a /mnt/t; cat /proc/self/mountinfo"])
    b.mount(destination="/mnt/t", type="tmpfs", source="tmpfs",
            options=["nosuid", "nodev", "noexec", "size=1m", "mode=1750"])
    out = ctr.output(b)
    first, _, rest = out.partition("\n")
    assert first == "1750"
    m = mount_at(parse_mountinfo(rest), "/mnt/t")
    assert m["fstype"] == "tmpfs"
    for opt in ("nosuid", "nodev", "noexec"):
        assert opt in m["options"].split(","), m
    assert "size=1024k" in m["super"] and "mode=1750" in m["super"], m


def test_bind_mount_rw(ctr: Containers, workdir: Path) -> None:
    src = workdir / "data"
    src.mkdir()
    (src / "marker").write_text("from host\n")
    b = ctr.bundle(["sh", "-c", "cat /mnt/data/marker; echo from-container > /mnt/data/new"])
    b.mount(destination="/mnt/data", type="bind", source=str(src), options=["rbind", "rw"])
    assert ctr.output(b) == "from host\n"
    assert (src / "new").read_text() == "from-container\n"


def test_bind_mount_ro(ctr: Containers, workdir: Path) -> None:
    src = workdir / "data"
    src.mkdir()
    (src / "marker").write_text("read me\n")
    b = ctr.bundle(["sh", "-c", "cat /mnt/ro/marker; touch /mnt/ro/new 2>&1; echo rc=$?"])
    b.mount(destination="/mnt/ro", type="bind", source=str(src), options=["rbind", "ro"])
    out = ctr.output(b)
    assert out.startswith("read me\n")
    assert "Read-only file system" in out and "rc=0" not in out
    assert sorted(os.listdir(src)) == ["marker"]


def test_bind_mount_single_file(ctr: Containers, workdir: Path) -> None:
    src = workdir / "file.txt"
    src.write_text("single file\n")
    b = ctr.bundle(["cat", "/etc/bound-file"])
    b.mount(destination="/etc/bound-file", type="bind", source=str(src), options=["bind", "ro"])
    assert ctr.output(b) == "single file\n"
    assert (b.rootfs / "etc" / "bound-file").is_file()


def test_mounts_applied_in_order(ctr: Containers, workdir: Path) -> None:
    """config.md: the runtime MUST mount entries in the listed order."""
    src = workdir / "inner"
    src.mkdir()
    (src / "marker").write_text("inner\n")
    b = ctr.bundle(["cat", "/mnt/layer/sub/marker"])
    b.mount(destination="/mnt/layer", type="tmpfs", source="tmpfs", options=["size=1m"])
    b.mount(destination="/mnt/layer/sub", type="bind", source=str(src), options=["rbind"])
    assert ctr.output(b) == "inner\n"


def test_missing_destination_created_in_rootfs(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "stat -c %F /a/b/c; grep -c ' /a/b/c ' /proc/self/mountinfo"])
    b.mount(destination="/a/b/c", type="tmpfs", source="tmpfs", options=["size=1m"])
    assert ctr.output(b).split("\n")[:2] == ["directory", "1"]
    assert (b.rootfs / "a" / "b" / "c").is_dir()


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_symlinked_destination_stays_in_rootfs(ctr: Containers, workdir: Path, kind: str) -> None:
    """A mount destination whose path crosses a symlink pointing outside the rootfs is
    resolved inside the rootfs: nothing is created or mounted on the host target."""
    target = workdir / "host-target"
    target.mkdir()
    (target / "host-file").write_text("host\n")
    src = workdir / "src"
    src.mkdir()
    (src / "marker").write_text("bound\n")
    b = ctr.bundle(["cat", "/evil/sub/marker"])
    link_value = str(target) if kind == "absolute" else "../" * 12 + str(target).lstrip("/")
    (b.rootfs / "evil").symlink_to(link_value)
    b.mount(destination="/evil/sub", type="bind", source=str(src), options=["rbind", "rw"])
    created = ctr.create(b, check=False)
    if created.ok:
        ctr.start(b.id)
        ctr.wait_stopped(b.id)
        assert (b.path / f"{b.id}.stdout").read_text() == "bound\n"
    assert sorted(os.listdir(target)) == ["host-file"], "the runtime wrote outside the rootfs"
    assert host_mounts_under(target) == []


def test_symlinked_final_component_stays_in_rootfs(ctr: Containers, workdir: Path) -> None:
    """Destination /evil is itself a symlink to a host directory: the mount must land inside
    the rootfs (where the container resolves /evil), not on the host directory."""
    target = workdir / "host-target"
    target.mkdir()
    src = workdir / "src"
    src.mkdir()
    (src / "marker").write_text("bound\n")
    b = ctr.bundle(["sh", "-c", "cat /evil/marker; grep -c . /proc/self/mountinfo"])
    (b.rootfs / "evil").symlink_to(str(target))
    b.mount(destination="/evil", type="bind", source=str(src), options=["rbind"])
    created = ctr.create(b, check=False)
    if created.ok:
        ctr.start(b.id)
        ctr.wait_stopped(b.id)
        assert (b.path / f"{b.id}.stdout").read_text().startswith("bound\n")
    assert os.listdir(target) == []
    assert host_mounts_under(target) == []


def test_proc_and_sys_mounted(ctr: Containers) -> None:
    b = ctr.bundle(["cat", "/proc/self/mountinfo"])
    mounts = parse_mountinfo(ctr.output(b))
    assert mount_at(mounts, "/proc")["fstype"] == "proc"
    sysfs = mount_at(mounts, "/sys")
    assert sysfs["fstype"] == "sysfs"
    assert "ro" in sysfs["options"].split(",")
    assert mount_at(mounts, "/dev")["fstype"] == "tmpfs"
    assert mount_at(mounts, "/dev/pts")["fstype"] == "devpts"
    assert mount_at(mounts, "/dev/shm")["fstype"] == "tmpfs"
    assert mount_at(mounts, "/dev/mqueue")["fstype"] == "mqueue"
    root = mount_at(mounts, "/")
    assert "ro" in root["options"].split(",")


# --------------------------------------------------------------------------------------------
# /dev
# --------------------------------------------------------------------------------------------

DEFAULT_DEVICES = {
    "/dev/null": (1, 3),
    "/dev/zero": (1, 5),
    "/dev/full": (1, 7),
    "/dev/random": (1, 8),
    "/dev/urandom": (1, 9),
    "/dev/tty": (5, 0),
}


def test_default_devices(ctr: Containers) -> None:
    b = ctr.bundle(["stat", "-c", "%n %F %t %T", *DEFAULT_DEVICES])
    lines = ctr.output(b).splitlines()
    got: dict[str, tuple[str, int, int]] = {}
    for line in lines:
        name, rest = line.split(" ", 1)
        kind, hex_major, hex_minor = rest.rsplit(" ", 2)
        got[name] = (kind, int(hex_major, 16), int(hex_minor, 16))
    for path, (major, minor) in DEFAULT_DEVICES.items():
        assert got.get(path) == ("character special file", major, minor), (path, got.get(path))


def test_default_devices_usable_by_non_root(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c "
                                "&& head -c 4 /dev/urandom | wc -c"])
    b.process["user"] = {"uid": 1000, "gid": 1000}
    assert ctr.output(b).split() == ["4", "4"]


def test_dev_symlinks(ctr: Containers) -> None:
    """runtime-linux.md: /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr links."""
    b = ctr.bundle(["sh", "-c", "for l in fd stdin stdout stderr; do readlink /dev/$l; done"])
    assert ctr.output(b).split() == [
        "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2"
    ]


def test_dev_ptmx_is_the_containers_devpts(ctr: Containers) -> None:
    """config-linux.md: /dev/ptmx is a bind mount or symlink of the container's /dev/pts/ptmx."""
    b = ctr.bundle(["sh", "-c", "readlink /dev/ptmx; grep ' /dev/ptmx ' /proc/self/mountinfo;"
                                "stat -L -c '%t:%T %d' /dev/ptmx /dev/pts/ptmx"])
    out = ctr.output(b).splitlines()
    if out[0] in ("pts/ptmx", "/dev/pts/ptmx"):
        pass
    else:
        assert any(" /dev/ptmx " in line for line in out), out
    assert out[-1] == out[-2], "/dev/ptmx and /dev/pts/ptmx are different devices"


def test_linux_devices(ctr: Containers) -> None:
    b = ctr.bundle(["stat", "-c", "%n|%F|%t|%T|%a|%u|%g", "/dev/st-null", "/dev/st-fifo",
                    "/dev/sub/st-zero"])
    b.linux["devices"] = [
        {"path": "/dev/st-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620,
         "uid": 0, "gid": 5},
        {"path": "/dev/st-fifo", "type": "p", "fileMode": 0o600, "uid": 1000, "gid": 1000},
        {"path": "/dev/sub/st-zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666},
    ]
    lines = ctr.output(b).splitlines()
    assert lines[0] == "/dev/st-null|character special file|1|3|620|0|5"
    assert lines[1].startswith("/dev/st-fifo|fifo|") and lines[1].endswith("|600|1000|1000")
    assert lines[2].startswith("/dev/sub/st-zero|character special file|1|5|666|")


def test_dev_console_absent_without_terminal(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "test -c /dev/console && echo present || echo absent"])
    assert ctr.output(b) == "absent\n"


# --------------------------------------------------------------------------------------------
# masked / read-only paths, sysctl, hostname and domainname
# --------------------------------------------------------------------------------------------


def test_masked_paths(ctr: Containers) -> None:
    """Masked files read empty (bind of /dev/null), masked directories are empty."""
    files = [f for f in ("/proc/keys", "/proc/timer_list") if Path(f).exists()]
    if not files or not os.listdir("/sys/firmware"):
        pytest.skip("no maskable proc file or empty /sys/firmware on this host")
    assert all(Path(f).read_bytes() for f in files), "host files expected non-empty"
    script = "; ".join(f"wc -c < {f}" for f in files) + "; ls -A /sys/firmware | wc -l"
    b = ctr.bundle(["sh", "-c", script])
    assert ctr.output(b).split() == ["0"] * (len(files) + 1)


def test_readonly_paths(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "{ echo st > /proc/sys/kernel/domainname; } 2>&1; echo rc=$?; "
                                "cat /proc/self/mountinfo"])
    out = ctr.output(b)
    assert "rc=0" not in out
    assert "Read-only file system" in out
    mounts = parse_mountinfo(out)
    for path in ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"):
        if not Path(path).exists():
            continue  # a missing path is skipped by the runtime
        assert "ro" in mount_at(mounts, path)["options"].split(","), path


def test_sysctl(ctr: Containers) -> None:
    host_fwd = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    host_msgmax = Path("/proc/sys/kernel/msgmax").read_text()
    b = ctr.bundle(["cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/msgmax",
                    "/proc/sys/net/core/somaxconn"])
    b.linux["sysctl"] = {
        "net.ipv4.ip_forward": "1" if host_fwd.strip() == "0" else "0",
        "kernel.msgmax": "12345",
        "net.core.somaxconn": "777",
    }
    out = ctr.output(b).split()
    assert out == [b.linux["sysctl"]["net.ipv4.ip_forward"], "12345", "777"]
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_fwd
    assert Path("/proc/sys/kernel/msgmax").read_text() == host_msgmax


@pytest.mark.runc_xfail(reason="config.json `domainname` is ignored")
def test_domainname(ctr: Containers) -> None:
    host = Path("/proc/sys/kernel/domainname").read_text()
    b = ctr.bundle(["cat", "/proc/sys/kernel/domainname"])
    b.config["domainname"] = "st.example"
    assert ctr.output(b) == "st.example\n"
    assert Path("/proc/sys/kernel/domainname").read_text() == host


def test_rootfs_propagation_private(ctr: Containers) -> None:
    b = ctr.bundle(["cat", "/proc/self/mountinfo"])
    b.linux["rootfsPropagation"] = "private"
    root = mount_at(parse_mountinfo(ctr.output(b)), "/")
    assert "shared:" not in root["optional"] and "master:" not in root["optional"], root


# --------------------------------------------------------------------------------------------
# tmpfs details, recursive read-only, /dev variants (what podman and runc users rely on)
# --------------------------------------------------------------------------------------------


def test_tmpfs_without_mode_keeps_the_directory_mode(ctr: Containers) -> None:
    """A tmpfs mounted without mode= on a directory that exists takes that directory's mode
    (as runc); on one the runtime creates, tmpfs's own default (1777)."""
    b = ctr.bundle(["stat", "-c", "%a", "/mnt/kept", "/mnt/new"])
    (b.rootfs / "mnt" / "kept").mkdir(parents=True)
    os.chmod(b.rootfs / "mnt" / "kept", 0o750)
    for dest in ("/mnt/kept", "/mnt/new"):
        b.mount(destination=dest, type="tmpfs", source="tmpfs", options=["size=1m"])
    assert ctr.output(b).split() == ["750", "1777"]


def test_tmpcopyup_copies_the_directory_into_the_tmpfs(ctr: Containers) -> None:
    """tmpcopyup (podman adds it to every tmpfs): the tmpfs starts with what the directory held,
    files, subdirectories, symlinks (not followed), modes and owners; writes stay in it."""
    b = ctr.bundle(["sh", "-c", "cat /data/a /data/sub/b; readlink /data/link; "
                                "stat -c '%a %u:%g' /data/sub /data/a; "
                                "echo new > /data/c; grep ' /data ' /proc/self/mountinfo"])
    data = b.rootfs / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a").write_text("file a\n")
    (data / "sub" / "b").write_text("file b\n")
    (data / "link").symlink_to("/etc/passwd")
    os.chmod(data / "sub", 0o705)
    os.chown(data / "a", 1000, 1000)
    os.chmod(data / "a", 0o640)
    b.mount(destination="/data", type="tmpfs", source="tmpfs",
            options=["tmpcopyup", "size=1m"])
    lines = ctr.output(b).splitlines()
    assert lines[:5] == ["file a", "file b", "/etc/passwd", "705 0:0", "640 1000:1000"], lines
    assert " - tmpfs " in lines[5], lines
    assert not (data / "c").exists()  # the write went to the tmpfs, not to the rootfs


def test_rro_makes_submounts_read_only(ctr: Containers, workdir: Path) -> None:
    """rro (mount_setattr with AT_RECURSIVE): a recursive bind is read-only with every mount
    below it, where plain ro leaves the submounts writable; the original tree stays writable."""
    outer = workdir / "outer"
    (outer / "inner").mkdir(parents=True)
    probe = "; ".join(f"touch {p}/x 2>/dev/null; echo $?" for p in
                      ("/mnt/r", "/mnt/r/inner", "/mnt/plain/inner", "/mnt/o/inner"))
    b = ctr.bundle(["sh", "-c", probe])
    b.mount(destination="/mnt/o", type="bind", source=str(outer), options=["rbind"])
    b.mount(destination="/mnt/o/inner", type="tmpfs", source="tmpfs", options=["size=1m"])
    # sources are host paths: the rootfs's /mnt/o, with the two mounts above, in the new
    # mount namespace
    tree = str(b.rootfs / "mnt" / "o")
    b.mount(destination="/mnt/r", type="bind", source=tree, options=["rbind", "rro"])
    b.mount(destination="/mnt/plain", type="bind", source=tree, options=["rbind", "ro"])
    assert ctr.output(b).split() == ["1", "1", "0", "0"]


def test_read_only_dev(ctr: Containers) -> None:
    """A read-only /dev tmpfs works: the runtime fills /dev (devpts, devices, links) first
    and makes it read-only after."""
    b = ctr.bundle(["sh", "-c", "test -c /dev/null && test -L /dev/fd && echo filled; "
                                "touch /dev/x 2>/dev/null; echo rc=$?"])
    dev = next(m for m in b.config["mounts"] if m["destination"] == "/dev")
    dev["options"] = [*dev["options"], "ro"]
    assert ctr.output(b).split() == ["filled", "rc=1"]


def test_no_dev_shm_unless_mounted(ctr: Containers) -> None:
    """/dev/shm exists only when the config mounts it (podman's --ipc=none expects none)."""
    b = ctr.bundle(["sh", "-c", "test -e /dev/shm && echo present || echo absent"])
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/dev/shm"]
    assert ctr.output(b) == "absent\n"


@pytest.mark.parametrize("path", ["/dev/st-zero/", "//dev//st-zero"])
def test_device_path_is_normalised(ctr: Containers, path: str) -> None:
    """linux.devices paths are cleaned (a trailing slash, doubled slashes), as runc does."""
    b = ctr.bundle(["stat", "-c", "%n|%t|%T", "/dev/st-zero"])
    b.linux["devices"] = [{"path": path, "type": "c", "major": 1, "minor": 5,
                           "fileMode": 0o666}]
    assert ctr.output(b) == "/dev/st-zero|1|5\n"


def test_bind_mount_on_root_replaces_the_rootfs(ctr: Containers, workdir: Path) -> None:
    """A bind mount on "/" (as runc does it): the container's root is its source, read-only
    with root.readonly, and the mounts after it (/proc, /dev ...) are made on it."""
    b = ctr.bundle(["sh", "-c", "cat /marker; head -1 /proc/self/mountinfo; ls /dev/null; "
                    "touch /x 2>/dev/null || echo read-only"])
    other = workdir / "other"
    subprocess.run(["cp", "-a", str(b.rootfs), str(other)], check=True, timeout=60)
    (other / "marker").write_text("the bound root\n")
    b.config["mounts"].insert(0, {"destination": "/", "type": "bind", "source": str(other),
                                  "options": ["rbind", "rw"]})
    lines = ctr.output(b).splitlines()
    assert lines[0] == "the bound root"
    assert lines[1].split()[3:5] == [str(other), "/"], lines[1]
    assert lines[2:] == ["/dev/null", "read-only"]
    assert not (other / "x").exists() and not (b.rootfs / "x").exists()
