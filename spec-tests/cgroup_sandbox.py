"""Run a command that sees one cgroup of the host as the root of every cgroup hierarchy.

    python3 cgroup_sandbox.py /spec-tests-123/sandbox-x -- command [args...]

A test that gives a runtime a cgroupsPath naming the root of a hierarchy ("/", "//", "/a/..")
runs it here: if the runtime signals every process of "the root cgroup", or removes every cgroup
below it, it reaches only what runs in the sandbox, never the host's processes or cgroups.

How: the sandbox cgroup is made (where missing) in every mounted hierarchy and this process
moves into it; then, in a new mount namespace whose mounts are all private (nothing done in it
propagates to the host's) and a new cgroup namespace (rooted at the sandbox cgroup), the host's
cgroup mounts are detached and every hierarchy is mounted again, in the same places: a cgroup
namespace roots each such mount at the sandbox. Before the command runs, the root of every
mounted hierarchy must hold this process alone, and /proc/self/cgroup must show "/" in each:
otherwise nothing runs (exit 125).

Every command meant for the same containers must run here with the same sandbox: the cgroup
paths a runtime records inside it mean other cgroups outside. The caller kills what runs in the
sandbox cgroup and removes it (:func:`remove`) when done. Needs root; no third-party imports
(it also serves ocirt's own tests), and the runtime under test is only run, never imported.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

CGROUP_ROOT = "/sys/fs/cgroup"
CLONE_NEWNS, CLONE_NEWCGROUP = 0x00020000, 0x02000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 0x4000, 0x40000
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


class Mount:
    """One cgroup mount of /proc/self/mountinfo."""

    def __init__(self, line: str) -> None:
        left, _, right = line.rstrip("\n").partition(" - ")
        fields, rfields = left.split(), right.split()
        self.root, self.point = _unescape(fields[3]), _unescape(fields[4])
        self.optional = fields[6:]
        self.fstype = rfields[0]
        options = rfields[2].split(",")
        subsystems = _subsystems()
        self.controllers = [o for o in options if o in subsystems]
        self.names = [o for o in options if o.startswith("name=")]

    @property
    def key(self) -> str:
        """The hierarchy, as /proc/self/cgroup names it ("" for cgroup2)."""
        return "" if self.fstype == "cgroup2" else ",".join(self.controllers + self.names)

    def options(self) -> str:
        """The mount options that name this hierarchy again."""
        return ",".join(self.controllers + self.names) if self.controllers else \
            ",".join(["none", *self.names])


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


def _subsystems() -> set[str]:
    with open("/proc/cgroups") as f:
        return {line.split()[0] for line in f if not line.startswith("#")}


def mounts() -> list[Mount]:
    """Every mount of the cgroup filesystems, in mountinfo's order."""
    with open("/proc/self/mountinfo") as f:
        lines = f.readlines()
    return [Mount(line) for line in lines if line.partition(" - ")[2].split()[:1] in
            (["cgroup"], ["cgroup2"])]


def hierarchies() -> list[Mount]:
    """One mount per hierarchy (the first), as runtimes pick them."""
    found: dict[str, Mount] = {}
    for m in mounts():
        found.setdefault(m.key, m)
    return list(found.values())


def directories(cgroup: str) -> list[str]:
    """The sandbox cgroup's directory in every hierarchy (on the host's mounts)."""
    return [os.path.join(m.point, cgroup.strip("/")) for m in hierarchies()]


def _die(message: str) -> None:
    sys.stderr.write(f"cgroup_sandbox: {message}\n")
    sys.exit(125)


def _call(name: str, *args: object) -> None:
    if getattr(_libc, name)(*args) != 0:
        err = ctypes.get_errno()
        _die(f"{name}{args!r}: {os.strerror(err)}")


def make(cgroup: str) -> list[str]:
    """Make ``cgroup`` (an absolute cgroup path) where missing in every hierarchy, cpuset ones
    with their parent's cpus and mems; returns its directories."""
    made = []
    for m in hierarchies():
        path = m.point
        for part in cgroup.strip("/").split("/"):
            path = os.path.join(path, part)
            if not os.path.isdir(path):
                os.mkdir(path)
            if "cpuset" in m.controllers:
                for name in ("cpuset.cpus", "cpuset.mems"):
                    with open(os.path.join(path, name)) as f:
                        empty = not f.read().strip()
                    if empty:
                        with open(os.path.join(os.path.dirname(path), name)) as f:
                            value = f.read().strip()
                        with open(os.path.join(path, name), "w") as f:
                            f.write(value)
        made.append(path)
    return made


def join(cgroup: str, pid: int) -> None:
    """Move process ``pid`` into ``cgroup`` in every hierarchy (made where missing)."""
    for path in make(cgroup):
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(pid))


def _remount() -> None:
    """In the new mount namespace: detach the host's cgroup mounts and mount every hierarchy
    again at its place (rooted at the sandbox by the new cgroup namespace)."""
    _call("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)
    with open("/proc/self/mountinfo") as f:
        info = f.readlines()
    if any("shared:" in line.partition(" - ")[0] for line in info):
        _die("a mount is still shared with the host after making them all private")
    hs = hierarchies()
    under_root = [line.partition(" - ")[2].split()[0] for line in info
                  if line.split()[4] == CGROUP_ROOT]
    links = {}
    if under_root and under_root[-1] == "tmpfs":  # v1 or hybrid: a tmpfs of mount points
        links = {e.name: os.readlink(e.path) for e in os.scandir(CGROUP_ROOT) if e.is_symlink()}
        _call("umount2", CGROUP_ROOT.encode(), MNT_DETACH)  # with the hierarchies on it
    for _ in range(100):  # any other cgroup mount, the last (topmost) first
        left = mounts()
        if not left:
            break
        _call("umount2", left[-1].point.encode(), MNT_DETACH)
    else:
        _die("cannot detach the host's cgroup mounts")
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if under_root and under_root[-1] == "tmpfs":
        _call("mount", b"tmpfs", CGROUP_ROOT.encode(), b"tmpfs", flags, b"mode=755")
    for m in hs:
        os.makedirs(m.point, exist_ok=True)
        if m.fstype == "cgroup2":
            _call("mount", b"cgroup2", m.point.encode(), b"cgroup2", flags, None)
        else:
            _call("mount", b"cgroup", m.point.encode(), b"cgroup", flags, m.options().encode())
    for name, target in links.items():
        os.symlink(target, os.path.join(CGROUP_ROOT, name))


def _verify(keys: set[str]) -> None:
    """Every hierarchy is back, rooted at the sandbox, whose root holds this process alone."""
    me = str(os.getpid())
    now = mounts()
    if {m.key for m in now} != keys:
        _die(f"hierarchies {sorted(keys)} became {sorted(m.key for m in now)}")
    for m in now:
        if m.root != "/":
            _die(f"{m.point} is rooted at {m.root}")
        with open(os.path.join(m.point, "cgroup.procs")) as f:
            procs = f.read().split()
        if procs != [me]:
            _die(f"the root of {m.point} holds {procs}, not this process alone")
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.rstrip("\n").split(":", 2)[2] != "/":
                _die(f"not at the root of its cgroup namespace: {line.strip()}")


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[2] != "--" or not argv[1].startswith("/") or \
            not argv[1].strip("/") or ".." in argv[1].split("/"):
        _die("usage: cgroup_sandbox.py /<sandbox cgroup> -- command [args...]")
    keys = {m.key for m in hierarchies()}
    join(argv[1], os.getpid())
    _call("unshare", CLONE_NEWNS | CLONE_NEWCGROUP)
    _remount()
    _verify(keys)
    try:
        os.execvp(argv[3], argv[3:])
    except OSError as exc:
        _die(f"exec {argv[3]}: {exc.strerror}")


def _tree(cgroup: str) -> list[str]:
    """The sandbox cgroup's directories and those below, parents first, in every hierarchy."""
    return [path for top in directories(cgroup) for path, _dirs, _files in os.walk(top)]


def frozen(cgroup: str) -> bool:
    """Whether the sandbox cgroup is frozen (or freezing): a runtime that froze "the root
    cgroup" froze itself, and will never finish."""
    for path in directories(cgroup):
        for name, thawed in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            try:
                with open(os.path.join(path, name)) as f:
                    if f.read().strip() != thawed:
                        return True
            except OSError:
                continue
    return False


def kill_all(cgroup: str, timeout: float = 10.0) -> None:
    """Thaw the sandbox cgroup (a frozen v1 process does not die before) and SIGKILL whatever
    runs in it or below it, until nothing does. Only the caller's processes can be there."""
    deadline = time.monotonic() + timeout
    for path in _tree(cgroup):
        for name, thawed in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            try:
                with open(os.path.join(path, name), "w") as f:
                    f.write(thawed)
            except OSError:
                continue
    while time.monotonic() < deadline:
        pids = set()
        for path in _tree(cgroup):
            try:
                with open(os.path.join(path, "cgroup.procs")) as f:
                    pids.update(int(p) for p in f.read().split())
            except OSError:
                continue
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def remove(cgroup: str, timeout: float = 10.0) -> list[str]:
    """Kill what runs in the sandbox cgroup (:func:`kill_all`), then remove its directories;
    returns what could not be removed. For the caller, on the host, after the last command."""
    kill_all(cgroup, timeout)
    deadline = time.monotonic() + timeout
    left: list[str] = []
    for path in reversed(_tree(cgroup)):
        while True:
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    left.append(f"{path}: {exc.strerror}")
                    break
            time.sleep(0.02)
    return left


if __name__ == "__main__":
    main(sys.argv)
