"""Regression tests for known container escapes of runc, one or more per CVE.

Each test sets up the situation the escape needs, drives the runtime only through its command
line, and checks from the host and from inside the container that nothing of the host was
reached.  The tests are safe for the host: they never write to a host binary or to /proc/sys
(CVE-2019-5736, which writes to binaries, is in test_exe_overwrite.py and attacks private
copies of the runtime; the only sysctl written is a network-namespaced one, and the procfs
files used as targets are UTS-namespaced); every target outside the rootfs is a host temp dir
in the test's workdir, which must stay untouched.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import stat
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from spec_support import (
    DEFAULT_CAPS,
    Bundle,
    ConsoleReceiver,
    Containers,
    MountNamespace,
    assert_failed_cleanly,
    cap_mask,
    mountinfo_lines,
    parse_status,
    tree_has_mounts,
)

SENTINEL = "host file, must stay untouched\n"
# A procfs file standing in for /proc/sys/kernel/core_pattern: same kind of target (a sysctl
# file on the real procfs), but namespaced (UTS), so that even a vulnerable runtime cannot
# touch anything of the host through it.
PROCFS_TARGET = "/proc/sys/kernel/hostname"


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def host_target(workdir: Path, name: str = "host-target") -> Path:
    """A host temp dir outside every rootfs that the runtime must never touch."""
    h = workdir / name
    h.mkdir()
    (h / "sentinel").write_text(SENTINEL)
    return h


def assert_untouched(h: Path) -> None:
    entries = sorted(os.listdir(h))
    assert entries == ["sentinel"], f"the runtime created {entries} in the host dir {h}"
    assert (h / "sentinel").read_text() == SENTINEL, f"{h}/sentinel was written to"
    assert not tree_has_mounts(h), [line for line in mountinfo_lines() if str(h) in line]


def up_to_root(path: Path) -> str:
    """A relative symlink target that climbs far above any rootfs and then names ``path``."""
    return "../" * 16 + str(path).lstrip("/")


def in_rootfs(b: Bundle, path: Path | str) -> Path:
    """Where an absolute container path lands in the bundle's rootfs on the host."""
    return b.rootfs / str(path).lstrip("/")


def without_dev_mounts(b: Bundle, dev_dir: Path) -> None:
    """Replace the /dev tmpfs by a bind of ``dev_dir`` (whose entries the test controls),
    keeping /dev/pts; shm and mqueue are dropped."""
    mounts = [m for m in b.config["mounts"]
              if m["destination"] == "/dev/pts" or not m["destination"].startswith("/dev")]
    idx = next(i for i, m in enumerate(mounts) if m["destination"] == "/dev/pts")
    mounts.insert(idx, {"destination": "/dev", "type": "bind", "source": str(dev_dir),
                        "options": ["rbind", "rw"]})
    b.config["mounts"] = mounts


def procfs_elsewhere(b: Bundle, *, fake: str = "") -> Path:
    """No procfs at /proc: it is mounted at /realproc and the rootfs's /proc is a plain
    directory whose `self` is a directory too, its entries symlinks to /realproc/self/<name>
    (what runtimes read there keeps working) except ``fake``, left to the test.  Returns that
    `self` directory."""
    for m in b.config["mounts"]:
        if m["destination"] == "/proc":
            m["destination"] = "/realproc"
    self_dir = b.rootfs / "proc" / "self"
    self_dir.mkdir()
    for name in os.listdir("/proc/self"):
        if name != fake:
            (self_dir / name).symlink_to(f"/realproc/self/{name}")
    return self_dir


def dev_dir_with_null(workdir: Path) -> Path:
    d = workdir / "devdir"
    d.mkdir()
    os.mknod(d / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(d / "null", 0o666)
    (d / "pts").mkdir()
    (d / "ptmx").symlink_to("pts/ptmx")
    return d


def create_or_refuse(ctr: Containers, b: Bundle, **kw: Any) -> bool:
    """create; True if it succeeded, False if the runtime refused cleanly."""
    created = ctr.create(b, check=False, **kw)
    if created.ok:
        assert created.pid, created.result.describe()
        return True
    assert "Traceback" not in created.result.stderr, created.result.describe()
    assert not (ctr.rt.root / b.id).exists(), "state dir left after a failed create"
    return False


def run_or_refuse(ctr: Containers, b: Bundle, **kw: Any) -> str | None:
    """create + start + wait; the container's stdout, or None if create was refused."""
    if not create_or_refuse(ctr, b, **kw):
        return None
    ctr.start(b.id)
    ctr.wait_stopped(b.id, timeout=20)
    out = (b.path / f"{b.id}.stdout").read_text(errors="replace")
    ctr.delete(b.id)
    return out


def running(ctr: Containers, b: Bundle, **kw: Any) -> bool:
    if not create_or_refuse(ctr, b, **kw):
        return False
    ctr.start(b.id)
    return True


def exec_out(ctr: Containers, cid: str, *args: str, extra: tuple[str, ...] = ()) -> str:
    res = ctr.rt("exec", *extra, cid, *args, timeout=30)
    assert res.ok, res.describe()
    return res.stdout


def container_mountpoints(mountinfo: str) -> list[str]:
    return [line.split()[4] for line in mountinfo.splitlines() if len(line.split()) > 4]


def host_only_names(rootfs_base: Path) -> set[str]:
    """Entries of the host's / that no spec-tests rootfs has: seeing one means an escape."""
    return set(os.listdir("/")) - set(os.listdir(rootfs_base)) - {"lost+found"}


# --------------------------------------------------------------------------------------------
# CVE-2024-21626: leaked host fds and process.cwd /proc/self/fd/N
# --------------------------------------------------------------------------------------------


def _fd_numbers(out: str) -> list[int]:
    return sorted(int(line.split()[0]) for line in out.splitlines() if line.strip())


@pytest.mark.needs_probe
def test_cve_2024_21626_no_host_fds_in_init_or_exec(ctr: Containers, probe: str) -> None:
    """CVE-2024-21626: runc leaked an O_PATH fd of the host's /sys/fs/cgroup into the
    container's init and exec'd processes.  The init and an exec'd process must see only
    fds 0, 1, 2 (and, with --preserve-fds 1, fd 3)."""
    b = ctr.bundle([probe, "fds"])
    assert _fd_numbers(ctr.output(b)) == [0, 1, 2]
    b2 = ctr.bundle(["sleep", "100"])
    ctr.create(b2)
    ctr.start(b2.id)
    assert _fd_numbers(exec_out(ctr, b2.id, probe, "fds")) == [0, 1, 2]
    with open(os.devnull) as extra:
        res = ctr.rt("exec", "--preserve-fds", "1", b2.id, probe, "fds",
                     fd_map={3: extra.fileno()})
    assert res.ok, res.describe()
    assert _fd_numbers(res.stdout) == [0, 1, 2, 3]


_CWD_SCRIPT = "ls -a ../../../../../../../../../..; echo ---; ls -a ."


def _escaped(listing: str, host_names: set[str]) -> set[str]:
    return {name for name in listing.split() if name in host_names}


def test_cve_2024_21626_cwd_proc_self_fd_on_create(ctr: Containers) -> None:
    """CVE-2024-21626: with process.cwd "/proc/self/fd/7" runc's init chdir'd into a leaked
    host directory fd, and the container started with a cwd on the host's filesystem.  For
    every fd number 3..10 the create must fail or the cwd must be inside the container:
    listing `..` up to the root from it must not show entries only the host's / has."""
    assert ctr.res.rootfs_base is not None
    host_names = host_only_names(ctr.res.rootfs_base)
    escapes = {}
    for n in range(3, 11):
        b = ctr.bundle(["sh", "-c", _CWD_SCRIPT])
        b.process["cwd"] = f"/proc/self/fd/{n}"
        out = run_or_refuse(ctr, b)
        if out is not None and _escaped(out, host_names):
            escapes[n] = out
    assert escapes == {}, f"cwd /proc/self/fd/N reached the host: {escapes}"


def test_cve_2024_21626_exec_cwd_proc_self_fd(ctr: Containers) -> None:
    """CVE-2024-21626 (exec): `runc exec --cwd /proc/self/fd/7` chdir'd into a leaked host fd.
    For every fd number 3..10 the exec must fail or run with a cwd inside the container."""
    assert ctr.res.rootfs_base is not None
    host_names = host_only_names(ctr.res.rootfs_base)
    b = ctr.bundle(["sleep", "100"])
    ctr.create(b)
    ctr.start(b.id)
    escapes = {}
    for n in range(3, 11):
        res = ctr.rt("exec", "--cwd", f"/proc/self/fd/{n}", b.id, "sh", "-c", _CWD_SCRIPT,
                     timeout=30)
        assert "Traceback" not in res.stderr, res.describe()
        if res.ok and _escaped(res.stdout, host_names):
            escapes[n] = res.stdout
    assert escapes == {}, f"exec --cwd /proc/self/fd/N reached the host: {escapes}"


# --------------------------------------------------------------------------------------------
# CVE-2021-30465: mount destinations that are (or become) symlinks
# --------------------------------------------------------------------------------------------


def _symlinked_destination(b: Bundle, h: Path, style: str) -> tuple[str, str]:
    """Plant symlinks in the rootfs; (mount destination, where it must land in the root)."""
    mnt = b.rootfs / "mnt"
    if style == "absolute":
        (mnt / "evil").symlink_to(h)
        return "/mnt/evil/sub", f"{h}/sub"
    if style == "relative":
        (mnt / "evil").symlink_to(up_to_root(h))
        return "/mnt/evil/sub", f"{h}/sub"
    # nested: /mnt/a -> b -> /mnt/c/../d -> ../../../<h>, then two more levels below
    (mnt / "a").symlink_to("b")
    (mnt / "b").symlink_to("/mnt/c/../d")
    (mnt / "c").mkdir()
    (mnt / "d").symlink_to(up_to_root(h))
    return "/mnt/a/x/../x/y", f"{h}/x/y"


@pytest.mark.parametrize("style", ["absolute", "relative", "nested"])
@pytest.mark.parametrize("kind", ["tmpfs", "bind"])
def test_cve_2021_30465_symlink_mount_destination(
    ctr: Containers, workdir: Path, kind: str, style: str
) -> None:
    """CVE-2021-30465: a mount destination that is a symlink pointing outside the rootfs
    (there made by swapping a directory for a symlink during setup) made runc mount on a host
    path.  Here the destination is a symlink (absolute, relative ../../.., chains of several
    levels) to a host temp dir: the mount must land at the symlink's target resolved inside
    the rootfs, the host dir gets nothing (no dirs created, no mounts), and what the container
    writes at the destination goes to the mounted filesystem."""
    h = host_target(workdir)
    src = workdir / "bind-src"
    src.mkdir()
    b = ctr.bundle()
    dest, expected = _symlinked_destination(b, h, style)
    if kind == "tmpfs":
        b.mount(destination=dest, type="tmpfs", source="tmpfs", options=["mode=755"])
    else:
        b.mount(destination=dest, type="bind", source=str(src), options=["rbind", "rw"])
    b.config["root"]["readonly"] = False
    b.process["args"] = ["sh", "-c", f"cat /proc/self/mountinfo; touch {dest}/pwned"]
    out = run_or_refuse(ctr, b)
    assert_untouched(h)
    if out is None:
        return
    assert expected in container_mountpoints(out), out
    landed = in_rootfs(b, expected) / "pwned"
    if kind == "bind":
        assert (src / "pwned").exists(), "the container's write missed the bind mount"
        assert not landed.exists()
    else:
        assert not landed.exists(), "the container's write missed the tmpfs"


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _swapper(a: Path, b: Path, stop: threading.Event, errors: list[str]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    pa, pb = os.fsencode(a), os.fsencode(b)
    while not stop.is_set():
        if libc.renameat2(_AT_FDCWD, pa, _AT_FDCWD, pb, _RENAME_EXCHANGE) != 0:
            errors.append(os.strerror(ctypes.get_errno()))
            return


@pytest.mark.runc_xfail(reason="the race can make runc create the missing destination "
                        "directories in the host dir: its directory walk before the mount is "
                        "not race-free (runc 1.2 moved to openat2); it does not lose every run",
                        strict=False)
def test_cve_2021_30465_destination_swapped_during_setup(ctr: Containers, workdir: Path) -> None:
    """CVE-2021-30465 (the race): a volume shared with another container holds the mount
    destination's parent, which the other side keeps swapping between a directory and a
    symlink to a host dir while containers are created with a bind mount below it.  For a
    few seconds a host thread does the swapping (renameat2 RENAME_EXCHANGE) while containers
    are created and deleted: the host dir must receive nothing (no directory made, no mount)."""
    h = host_target(workdir)
    shared = workdir / "shared"
    shared.mkdir()
    (shared / "vol").mkdir()
    (shared / "alt").symlink_to(h)
    src = workdir / "bind-src"
    src.mkdir()
    b = ctr.bundle()
    b.mount(destination="/shared", type="bind", source=str(shared), options=["rbind", "rw"])
    b.mount(destination="/shared/vol/sub/deeper", type="bind", source=str(src),
            options=["rbind", "rw"])
    b.write()
    stop = threading.Event()
    errors: list[str] = []
    swapper = threading.Thread(target=_swapper, args=(shared / "vol", shared / "alt", stop,
                                                      errors), daemon=True)
    swapper.start()
    created = 0
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            cid = ctr.new_id()
            result = ctr.create(b, cid=cid, check=False, write=False)
            assert "Traceback" not in result.result.stderr, result.result.describe()
            if result.ok:
                created += 1
            ctr.delete(cid, force=True)
    finally:
        stop.set()
        swapper.join(5)
    assert errors == [], errors
    assert_untouched(h)
    assert created > 0, "no create succeeded while the destination was being swapped"


# --------------------------------------------------------------------------------------------
# A symlinked rootfs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["rootfs-itself", "parent-in-bundle", "absolute-path"])
def test_symlinked_rootfs_is_refused(ctr: Containers, workdir: Path, link: str) -> None:
    """root.path must name the rootfs directory itself, with no symlink along it (runc:
    "invalid rootfs: not an absolute path, or a symlink"): a link planted in the bundle (the
    rootfs itself, or a directory above it) or along an absolute root.path must not decide
    which directory becomes the container's root.  create fails cleanly and the directory the
    link leads to gets nothing (no mount, no new entry)."""
    b = ctr.bundle(["true"])
    real = workdir / "elsewhere"
    real.mkdir()
    b.rootfs.rename(real / "rootfs")
    if link == "rootfs-itself":
        b.rootfs.symlink_to(real / "rootfs")
    elif link == "parent-in-bundle":
        (b.path / "dir").symlink_to(real)
        b.config["root"]["path"] = "dir/rootfs"
    else:
        (workdir / "link").symlink_to(real)
        b.config["root"]["path"] = str(workdir / "link" / "rootfs")
    entries = sorted(os.listdir(real / "rootfs"))
    created = ctr.create(b, check=False)
    assert_failed_cleanly(ctr, b, created.result, "invalid rootfs",
                          "not an absolute path, or a symlink")
    assert not tree_has_mounts(real)
    assert sorted(os.listdir(real / "rootfs")) == entries


# --------------------------------------------------------------------------------------------
# CVE-2019-19921 / CVE-2023-27561 / CVE-2023-28642: /proc as a symlink
# --------------------------------------------------------------------------------------------

_PROC_CHECK = (
    "stat -f -c 'fstype %T' /proc/; "
    "grep -q '^Pid:' /proc/self/status && echo status-ok; "
    "for f in /proc/kcore /proc/keys /proc/timer_list; do "
    "[ -e $f ] && echo \"masked $f $(stat -L -c %F:%t:%T $f)\"; done; "
    # the options of procfs mounts on a .../sys (the path shown follows the /proc symlink)
    "awk '$5 ~ /\\/sys$/ && / - proc / {print \"sysmount \" $6}' /proc/self/mountinfo"
)


def _check_proc_view(out: str) -> None:
    lines = out.splitlines()
    assert "fstype proc" in lines, out
    assert "status-ok" in lines, out
    masked = [line for line in lines if line.startswith("masked ")]
    assert masked, out
    for line in masked:
        assert line.endswith(" character special file:1:3"), f"maskedPaths bypassed: {line}"
    sys_mounts = [line.split()[1].split(",") for line in lines if line.startswith("sysmount ")]
    assert sys_mounts and all("ro" in opts for opts in sys_mounts), f"/proc/sys not ro: {out}"


@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_cve_2019_19921_proc_symlink_to_host(ctr: Containers, workdir: Path, style: str) -> None:
    """CVE-2019-19921 / CVE-2023-27561: with rootfs/proc a symlink (here to a host temp dir,
    absolute or ../../..), runc mounted procfs wherever the symlink pointed.  The runtime must
    refuse, or mount procfs inside the rootfs; the host dir stays untouched; in the container
    /proc is a procfs with maskedPaths and readonlyPaths applied."""
    h = host_target(workdir)
    b = ctr.bundle(["sh", "-c", _PROC_CHECK])
    (b.rootfs / "proc").rmdir()
    (b.rootfs / "proc").symlink_to(h if style == "absolute" else up_to_root(h))
    out = run_or_refuse(ctr, b)
    assert_untouched(h)
    if out is not None:
        _check_proc_view(out)


def test_cve_2023_28642_proc_symlink_keeps_masks(ctr: Containers) -> None:
    """CVE-2023-28642: with rootfs/proc a symlink to another dir of the rootfs (proc -> /x),
    runc's checks on /proc (its AppArmor profile write, the masks) were bypassed.  The runtime
    must refuse, or the container's /proc is the real procfs with every masked path masked
    and every read-only path read-only."""
    b = ctr.bundle(["sh", "-c", _PROC_CHECK])
    (b.rootfs / "proc").rmdir()
    (b.rootfs / "x").mkdir()
    (b.rootfs / "proc").symlink_to("/x")
    out = run_or_refuse(ctr, b)
    if out is not None:
        _check_proc_view(out)


@pytest.mark.parametrize("target", ["rootfs-absolute", "rootfs-relative", "host"])
@pytest.mark.parametrize("fs", ["proc", "sysfs"])
def test_proc_and_sysfs_only_on_ordinary_directories(
    ctr: Containers, workdir: Path, fs: str, target: str
) -> None:
    """CVE-2019-19921 / CVE-2023-27561 / CVE-2023-28642: procfs and sysfs are mounted only on
    an ordinary directory.  With the rootfs's /proc (or /sys) a symlink to another directory of
    the rootfs (absolute or relative link) or to a host temp dir, create must fail cleanly
    with runc's reason ("must be mounted on ordinary directory"): nothing is mounted where the
    symlink points, and the host dir stays untouched."""
    h = host_target(workdir)
    b = ctr.bundle(["true"])
    point = b.rootfs / ("proc" if fs == "proc" else "sys")
    point.rmdir()
    elsewhere = b.rootfs / "elsewhere"
    elsewhere.mkdir()
    if target == "host":
        point.symlink_to(h)
    else:
        point.symlink_to("/elsewhere" if target == "rootfs-absolute" else "elsewhere")
    assert any(m["type"] == fs and m["destination"] == f"/{point.name}"
               for m in b.config["mounts"])
    created = ctr.create(b, check=False)
    assert_failed_cleanly(ctr, b, created.result,
                          "must be mounted on ordinary directory")
    assert os.listdir(elsewhere) == [] and not tree_has_mounts(elsewhere)
    assert_untouched(h)


# --------------------------------------------------------------------------------------------
# A fresh procfs or sysfs mounted by the container (--no-pivot leaves the host's in reach)
# --------------------------------------------------------------------------------------------

_FRESH_MOUNTS = (
    "unshare -mrpf sh -c '"
    # the control: the container can make its own user and mount namespaces and mount there
    "mount -t tmpfs none /mnt && echo tmpfs-mounted; umount /mnt; "
    "mount -t proc proc /mnt 2>/dev/null && echo proc-mounted; "
    "mount -t sysfs sysfs /mnt 2>/dev/null && echo sysfs-mounted; true'"
)


@pytest.mark.parametrize("userns", [False, True], ids=["root", "userns"])
@pytest.mark.parametrize("pivot", ["pivot_root", "no-pivot"])
def test_container_cannot_mount_a_fresh_procfs(ctr: Containers, pivot: str, userns: bool) -> None:
    """A process in a user namespace of its own may mount a new procfs or sysfs only if one is
    already fully visible (no masks, nothing mounted over it) in its mount namespace.  The
    container's are masked; the host's must not be in the container's mount namespace at all,
    even with --no-pivot, where MS_MOVE + chroot would leave it there, out of reach by path
    (runc detaches it first).  In the container, after `unshare -mrpf`, a tmpfs mount works
    but a procfs or sysfs mount is refused."""
    b = ctr.bundle(["sh", "-c", _FRESH_MOUNTS])
    if userns:
        b.add_namespace("user")
        b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        b.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    out = ctr.output(b, extra=["--no-pivot"] if pivot == "no-pivot" else [])
    assert out.split() == ["tmpfs-mounted"], out


def test_no_pivot_user_namespace_with_mounts_out_of_its_reach(
    ctr: Containers, own_mntns: MountNamespace, workdir: Path
) -> None:
    """--no-pivot detaches the caller's mounts before MS_MOVE + chroot; one below a directory
    the container's user namespace may not search (another's tmpfs under a 0700 directory)
    cannot be reached by its root: it is left alone (it is no procfs), and the container runs
    with its fresh-procfs protection intact. The runtime runs in a mount namespace of the
    test's own, where that mount is made."""
    hidden = workdir / "hidden"
    (hidden / "m").mkdir(parents=True)
    os.chmod(hidden, 0o700)
    subprocess.run(["nsenter", f"--mount={own_mntns.path}", "mount", "-t", "tmpfs", "none",
                    str(hidden / "m")], check=True, timeout=30)
    b = ctr.bundle(["sh", "-c", _FRESH_MOUNTS])
    b.add_namespace("user")
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    out = ctr.output(b, extra=["--no-pivot"], preexec=own_mntns.enter)
    assert out.split() == ["tmpfs-mounted"], out


# --------------------------------------------------------------------------------------------
# CVE-2022-29162: inheritable capabilities
# --------------------------------------------------------------------------------------------


def test_cve_2022_29162_no_inheritable_caps(ctr: Containers) -> None:
    """CVE-2022-29162: runc gave the container's processes a non-empty inheritable set when
    process.capabilities.inheritable was empty or absent.  The init and an exec'd process
    (root, default caps, no inheritable list) must have CapInh 0 and CapAmb 0."""
    b = ctr.bundle(["sh", "-c", "cat /proc/self/status; exec sleep 100"])
    assert "inheritable" not in b.process["capabilities"]
    ctr.create(b)
    ctr.start(b.id)
    init = parse_status(Path(f"/proc/{ctr.pids[b.id]}/status").read_text())
    assert init["CapInh"] == "0000000000000000", init["CapInh"]
    assert init["CapAmb"] == "0000000000000000", init["CapAmb"]
    assert int(init["CapBnd"], 16) == cap_mask(DEFAULT_CAPS)
    st = parse_status(exec_out(ctr, b.id, "cat", "/proc/self/status"))
    assert st["CapInh"] == "0000000000000000", st["CapInh"]
    assert st["CapAmb"] == "0000000000000000", st["CapAmb"]


def test_cve_2022_29162_file_inheritable_caps_grant_nothing(ctr: Containers) -> None:
    """CVE-2022-29162: with a leaked inheritable set, an unprivileged user in the container
    gained capabilities by executing a file with inheritable file capabilities.  A non-root
    process with empty capability sets runs a copy of busybox carrying file capabilities
    +ei for CAP_NET_RAW and CAP_CHOWN (no permitted bits): it must end with no capabilities."""
    b = ctr.bundle(["/bin/busybox-caps", "cat", "/proc/self/status"])
    binary = b.rootfs / "bin" / "busybox-caps"
    binary.write_bytes((b.rootfs / "bin" / "busybox").read_bytes())
    os.chmod(binary, 0o755)
    inh = cap_mask(["CAP_NET_RAW", "CAP_CHOWN"])
    # struct vfs_cap_data, revision 2, effective flag: {magic, perm0, inh0, perm1, inh1}
    os.setxattr(binary, "security.capability", struct.pack("<5I", 0x02000001, 0, inh, 0, 0))
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.process["noNewPrivileges"] = False
    b.process["capabilities"] = {"bounding": list(DEFAULT_CAPS), "effective": [],
                                 "permitted": [], "inheritable": [], "ambient": []}
    st = parse_status(ctr.output(b))
    for key in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert st[key] == "0000000000000000", f"{key} {st[key]}"


# --------------------------------------------------------------------------------------------
# CVE-2025-31133, CVE-2025-52565, CVE-2025-52881 (runc 1.2.8 / 1.3.3 / 1.4.0-rc.3)
# --------------------------------------------------------------------------------------------

_MASK_CHECK = (
    "for f in /proc/kcore /proc/keys /proc/timer_list; do "
    "[ -e $f ] && echo \"masked $f $(stat -c %F:%t:%T $f) $(head -c 64 $f | wc -c)\"; done; "
    f"echo \"target $(stat -c %F {PROCFS_TARGET})\""
)


@pytest.mark.runc_xfail(reason="CVE-2025-31133 is fixed in runc 1.2.8: maskedPaths bind "
                               "whatever /dev/null is")
@pytest.mark.parametrize("null", ["symlink-to-procfs", "regular-file"])
def test_cve_2025_31133_masked_paths_with_swapped_dev_null(
    ctr: Containers, workdir: Path, null: str
) -> None:
    """CVE-2025-31133: runc masks files by bind-mounting /dev/null over them; a container
    that replaced its /dev/null by a symlink to a procfs file (core_pattern) made runc
    bind-mount that file, writable, over the masked paths.  Here /dev is a bind of a dir whose
    `null` is a symlink to a sysctl file or a regular file with content: the create must fail,
    or every masked file is the real null device (char 1:3, empty)."""
    d = workdir / "devdir"
    d.mkdir()
    if null == "regular-file":
        (d / "null").write_text("not the null device\n")
    else:
        (d / "null").symlink_to(PROCFS_TARGET)
    b = ctr.bundle(["sh", "-c", _MASK_CHECK])
    without_dev_mounts(b, d)
    out = run_or_refuse(ctr, b)
    if out is None:
        return
    masked = [line for line in out.splitlines() if line.startswith("masked ")]
    assert masked, out
    for line in masked:
        assert line.endswith(" character special file:1:3 0"), f"masked with a file: {line}"
    assert "target regular file" in out.splitlines() or "target regular empty file" in out, out


@pytest.mark.runc_xfail(reason="CVE-2025-52565 is fixed in runc 1.2.8: /dev/console is "
                               "bind-mounted through a symlink")
def test_cve_2025_52565_dev_console_symlink_to_procfs(
    ctr: Containers, workdir: Path, console: Any
) -> None:
    """CVE-2025-52565: with process.terminal, runc bind-mounts the pty slave on /dev/console;
    a /dev/console that is a symlink to a procfs file (core_pattern) made runc mount over
    that file, hiding it from readonlyPaths/maskedPaths.  With /dev/console a symlink to a
    sysctl file, the create must fail, or nothing is mounted on that file and /dev/console is
    the container's pty."""
    d = dev_dir_with_null(workdir)
    (d / "console").symlink_to(PROCFS_TARGET)
    b = ctr.bundle(["sleep", "100"])
    b.process["terminal"] = True
    without_dev_mounts(b, d)
    recv: ConsoleReceiver = console()
    if not running(ctr, b, console_socket=recv.path):
        return
    out = exec_out(ctr, b.id, "sh", "-c", f"cat /proc/self/mountinfo; stat -c %F {PROCFS_TARGET}")
    assert PROCFS_TARGET not in container_mountpoints(out), out
    assert out.splitlines()[-1].startswith("regular"), out


@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_dev_console_symlink_to_host(
    ctr: Containers, workdir: Path, console: Any, style: str
) -> None:
    """CVE-2025-52565 with a host target: /dev/console a symlink (absolute, or ../../..) to a
    host temp dir.  The host dir must stay untouched: no file created, nothing mounted."""
    h = host_target(workdir)
    d = dev_dir_with_null(workdir)
    target = h / "console"
    (d / "console").symlink_to(target if style == "absolute" else up_to_root(target))
    b = ctr.bundle(["sleep", "100"])
    b.process["terminal"] = True
    without_dev_mounts(b, d)
    recv: ConsoleReceiver = console()
    running(ctr, b, console_socket=recv.path)
    assert_untouched(h)


@pytest.mark.runc_xfail(reason="CVE-2025-52881 is fixed in runc 1.2.8: sysctls are written "
                               "through the container's /proc path")
def test_cve_2025_52881_sysctl_write_not_redirected(ctr: Containers, workdir: Path) -> None:
    """CVE-2025-52881: runc wrote sysctls (and LSM labels) through paths in the container's
    /proc, which the container could have replaced, redirecting the write to another file.
    Here procfs is mounted at /realproc, not /proc, and /proc/sys/net/ipv4/ip_forward is a
    symlink to a file of a bind-mounted host dir: the create must fail, or the value goes to the real
    procfs; the host file must never be written."""
    h = host_target(workdir)
    b = ctr.bundle()
    procfs_elsewhere(b)
    b.mount(destination="/mnt/h", type="bind", source=str(h), options=["rbind", "rw"])
    ipv4 = b.rootfs / "proc" / "sys" / "net" / "ipv4"
    ipv4.mkdir(parents=True)
    (ipv4 / "ip_forward").symlink_to("/mnt/h/sentinel")
    b.linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    run_or_refuse(ctr, b)
    assert (h / "sentinel").read_text() == SENTINEL, "the sysctl went to the host file"
    assert_untouched(h)


@pytest.mark.runc_xfail(reason="`exec --process` ignores process.oomScoreAdj (the host file "
                               "is not written: the write is done from the host side)")
def test_cve_2025_52881_exec_oom_score_adj_not_redirected(
    ctr: Containers, workdir: Path
) -> None:
    """CVE-2025-52881 (exec): a runtime that writes the exec'd process's oom_score_adj through
    /proc/self in the container's mount namespace can be redirected by a container whose /proc
    is not the real procfs.  Procfs is mounted at /realproc, not /proc, and
    /proc/self/oom_score_adj is a symlink to a file of a bind-mounted host dir: `exec` with
    oomScoreAdj must fail or set the real value; the host file is never written."""
    h = host_target(workdir)
    b = ctr.bundle(["sleep", "100"])
    self_dir = procfs_elsewhere(b, fake="oom_score_adj")
    b.mount(destination="/mnt/h", type="bind", source=str(h), options=["rbind", "rw"])
    (self_dir / "oom_score_adj").symlink_to("/mnt/h/sentinel")
    ctr.create(b)
    ctr.start(b.id)
    proc = dict(b.process, args=["sleep", "100"], oomScoreAdj=123)
    pf = b.path / "process.json"
    pf.write_text(json.dumps(proc))
    pid_file = b.path / "exec.pid"
    res = ctr.rt("exec", "--process", str(pf), "--detach", "--pid-file", str(pid_file), b.id)
    assert "Traceback" not in res.stderr, res.describe()
    assert (h / "sentinel").read_text() == SENTINEL, "oom_score_adj went to the host file"
    assert_untouched(h)
    if res.ok:
        pid = int(pid_file.read_text())
        assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == "123"


# --------------------------------------------------------------------------------------------
# Symlinks and `..` in every path resolved inside the rootfs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["absolute-symlink", "relative-symlink", "dotdot"])
def test_device_path_stays_in_rootfs(ctr: Containers, workdir: Path, style: str) -> None:
    """linux.devices paths: a device whose parent is a symlink to a host temp dir (absolute
    or ../../..), or whose path climbs with `..`, must be made inside the rootfs (or the create
    refused); the host dir gets no device node.  /dev is the rootfs's own directory here, so
    that the symlink is there when the runtime creates the devices."""
    h = host_target(workdir)
    b = ctr.bundle()
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")]
    if style == "dotdot":
        path = "/dev/" + "../" * 8 + str(h).lstrip("/") + "/node"
    else:
        (b.rootfs / "dev" / "evil").symlink_to(h if style == "absolute-symlink" else up_to_root(h))
        path = "/dev/evil/node"
    b.linux["devices"] = [{"path": path, "type": "c", "major": 1, "minor": 3,
                           "fileMode": 0o666, "uid": 0, "gid": 0}]
    run_or_refuse(ctr, b)
    assert_untouched(h)


@pytest.mark.parametrize("which", ["maskedPaths", "readonlyPaths"])
def test_masked_and_readonly_paths_stay_in_rootfs(
    ctr: Containers, workdir: Path, which: str
) -> None:
    """maskedPaths / readonlyPaths through symlinks (absolute and ../../.. to a host temp dir)
    and `..`: they must apply to the symlink's target inside the rootfs; the host dir stays
    untouched and nothing is mounted outside."""
    h = host_target(workdir)
    b = ctr.bundle()
    b.config["root"]["readonly"] = False
    inside = in_rootfs(b, h)
    inside.mkdir(parents=True)
    (inside / "secret").write_text("inside the rootfs\n")
    (b.rootfs / "mnt" / "alink").symlink_to(h)
    (b.rootfs / "mnt" / "rlink").symlink_to(up_to_root(h))
    paths = ["/mnt/alink", "/mnt/rlink", "/mnt/" + "../" * 8 + str(h).lstrip("/")]
    b.linux[which] = paths
    b.process["args"] = ["sh", "-c", f"ls -a {h}; touch {h}/new && echo written"]
    out = run_or_refuse(ctr, b)
    assert_untouched(h)
    if out is None:
        return
    if which == "maskedPaths":
        assert "secret" not in out, f"{h} inside the rootfs was not masked: {out}"
    else:
        assert "secret" in out and "written" not in out, out


@pytest.mark.parametrize("style", ["absolute-symlink", "relative-symlink", "dotdot"])
def test_cwd_stays_in_rootfs(ctr: Containers, workdir: Path, style: str) -> None:
    """process.cwd through a symlink to a host temp dir (absolute, ../../..) or with `..`:
    the missing directories must be made inside the rootfs (or the create refused), the
    container's cwd is inside it, and the host dir gets nothing."""
    h = host_target(workdir)
    b = ctr.bundle(["sh", "-c", "pwd; ls -a ../../../../../../../../../.."])
    if style == "dotdot":
        b.process["cwd"] = "/mnt/" + "../" * 8 + str(h).lstrip("/") + "/sub/dir"
    else:
        (b.rootfs / "mnt" / "clink").symlink_to(
            h if style == "absolute-symlink" else up_to_root(h))
        b.process["cwd"] = "/mnt/clink/sub/dir"
    out = run_or_refuse(ctr, b)
    assert_untouched(h)
    if out is None:
        return
    assert ctr.res.rootfs_base is not None
    assert not _escaped(out, host_only_names(ctr.res.rootfs_base)), out
    assert out.splitlines()[0] == f"{h}/sub/dir", out


# --------------------------------------------------------------------------------------------
# Files the runtime writes through a caller's path: the pid files
# --------------------------------------------------------------------------------------------


def plant_links(path: Path, target: Path) -> Callable[[], None]:
    """Symlinks to ``target`` at ``path`` and at the temporaries a runtime could write it
    through: ``.name``, ``name.tmp``, ``.name.tmp``, and those with the runtime process's pid
    appended.  The result is run in the runtime's own process just before it execs (as a
    process watching /proc could do, racing it), so that the pid is the runtime's."""
    path.symlink_to(target)
    d, name = path.parent, path.name

    def plant() -> None:
        pid = os.getpid()
        for link in (f".{name}", f"{name}.tmp", f".{name}.tmp", f".{name}.{pid}",
                     f"{name}.{pid}", f".{name}.{pid}.tmp", f"{name}.tmp.{pid}"):
            with contextlib.suppress(FileExistsError):
                (d / link).symlink_to(target)

    return plant


def assert_pid_file(path: Path, pid: int) -> None:
    assert not path.is_symlink(), f"{path} is still the planted symlink"
    assert stat.S_ISREG(path.lstat().st_mode)
    assert path.read_text() == str(pid)


def test_create_pid_file_never_written_through_a_symlink(ctr: Containers, workdir: Path) -> None:
    """`create --pid-file P`: P and every temporary it could be written through are symlinks
    to a host file (planted, for names with the runtime's pid, from the runtime's process just
    before it execs).  The host file must stay untouched; create either fails cleanly or
    leaves P a regular file holding the init's pid."""
    h = host_target(workdir)
    b = ctr.bundle(["sleep", "100"])
    pids = workdir / "pids"
    pids.mkdir()
    pid_file = pids / "init.pid"
    created = ctr.create(b, check=False, pid_file=pid_file,
                         preexec=plant_links(pid_file, h / "sentinel"))
    assert "Traceback" not in created.result.stderr, created.result.describe()
    assert_untouched(h)
    if not created.ok:
        assert len(created.result.error_lines()) == 1, created.result.describe()
        assert not (ctr.rt.root / b.id).exists(), "state dir left after a failed create"
        return
    assert_pid_file(pid_file, ctr.state(b.id)["pid"])


def test_exec_pid_file_never_written_through_a_symlink(ctr: Containers, workdir: Path) -> None:
    """`exec --pid-file P`, P and its possible temporaries symlinks to a host file (as for
    create): the host file stays untouched; the exec fails or P is a regular file holding the
    exec'd process's pid."""
    h = host_target(workdir)
    b = ctr.bundle(["sleep", "100"])
    ctr.create(b)
    ctr.start(b.id)
    pids = workdir / "pids"
    pids.mkdir()
    pid_file = pids / "exec.pid"
    res = ctr.rt("exec", "--detach", "--pid-file", str(pid_file), b.id, "sleep", "100",
                 preexec=plant_links(pid_file, h / "sentinel"))
    assert "Traceback" not in res.stderr, res.describe()
    assert_untouched(h)
    if res.ok:
        pid = int(pid_file.read_text())
        assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00100\x00"
        assert_pid_file(pid_file, pid)
    else:
        assert len(res.error_lines()) == 1, res.describe()
