"""Mount primitives: option parsing, and resolving paths inside a root without escaping it.

Every path inside a container's rootfs is resolved with openat2(RESOLVE_IN_ROOT), so that
symlinks and ``..`` are confined to the rootfs, and mounts target the resolved file through
``/proc/self/fd/N`` rather than a path that could be swapped between check and use.
"""

from __future__ import annotations

import errno
import os

from . import syscalls as sc

_FLAGS = {
    "defaults": (0, False), "ro": (sc.MS_RDONLY, False), "rw": (sc.MS_RDONLY, True),
    "suid": (sc.MS_NOSUID, True), "nosuid": (sc.MS_NOSUID, False),
    "dev": (sc.MS_NODEV, True), "nodev": (sc.MS_NODEV, False),
    "exec": (sc.MS_NOEXEC, True), "noexec": (sc.MS_NOEXEC, False),
    "sync": (sc.MS_SYNCHRONOUS, False), "async": (sc.MS_SYNCHRONOUS, True),
    "dirsync": (sc.MS_DIRSYNC, False), "remount": (sc.MS_REMOUNT, False),
    "mand": (sc.MS_MANDLOCK, False), "nomand": (sc.MS_MANDLOCK, True),
    "atime": (sc.MS_NOATIME, True), "noatime": (sc.MS_NOATIME, False),
    "diratime": (sc.MS_NODIRATIME, True), "nodiratime": (sc.MS_NODIRATIME, False),
    "relatime": (sc.MS_RELATIME, False), "norelatime": (sc.MS_RELATIME, True),
    "strictatime": (sc.MS_STRICTATIME, False), "nostrictatime": (sc.MS_STRICTATIME, True),
    "lazytime": (sc.MS_LAZYTIME, False), "nolazytime": (sc.MS_LAZYTIME, True),
    "symfollow": (sc.MS_NOSYMFOLLOW, True), "nosymfollow": (sc.MS_NOSYMFOLLOW, False),
    "bind": (sc.MS_BIND, False), "rbind": (sc.MS_BIND | sc.MS_REC, False),
}

PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}

#: Recursive mount attributes (mount_setattr(2) with AT_RECURSIVE): name -> (attr, clear).
RECURSIVE = {
    "rro": (sc.MOUNT_ATTR_RDONLY, False), "rrw": (sc.MOUNT_ATTR_RDONLY, True),
    "rnosuid": (sc.MOUNT_ATTR_NOSUID, False), "rsuid": (sc.MOUNT_ATTR_NOSUID, True),
    "rnodev": (sc.MOUNT_ATTR_NODEV, False), "rdev": (sc.MOUNT_ATTR_NODEV, True),
    "rnoexec": (sc.MOUNT_ATTR_NOEXEC, False), "rexec": (sc.MOUNT_ATTR_NOEXEC, True),
}

#: Options this runtime understands but does not pass to the kernel.
IGNORED = frozenset(("tmpcopyup",))


class Options:
    """A mount's options split into mount(2) flags, propagation flags, recursive attributes
    (set and cleared) and filesystem data."""

    __slots__ = ("flags", "propagation", "attr_set", "attr_clr", "data")

    def __init__(self, options: list[str]) -> None:
        self.flags = 0
        self.propagation: list[int] = []
        self.attr_set = self.attr_clr = 0
        data = []
        for opt in options:
            if opt in _FLAGS:
                flag, clear = _FLAGS[opt]
                self.flags = self.flags & ~flag if clear else self.flags | flag
            elif opt in RECURSIVE:
                attr, clear = RECURSIVE[opt]
                if clear:
                    self.attr_clr, self.attr_set = self.attr_clr | attr, self.attr_set & ~attr
                else:
                    self.attr_set, self.attr_clr = self.attr_set | attr, self.attr_clr & ~attr
            elif opt in PROPAGATION:
                self.propagation.append(PROPAGATION[opt])
            elif opt not in IGNORED:
                data.append(opt)
        self.data = ",".join(data)

    @property
    def bind(self) -> bool:
        return bool(self.flags & sc.MS_BIND)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH, follow: bool = True) -> int:
    """Open ``path`` as seen from ``root_fd`` treated as ``/``: nothing can resolve outside it.
    Without ``follow`` a symlink anywhere along the path fails the open with ELOOP."""
    return sc.openat2(root_fd, path.lstrip("/") or ".", flags,
                      sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
                      | (0 if follow else sc.RESOLVE_NO_SYMLINKS))


def resolve_in_root(root_fd: int, path: str) -> str:
    """``path`` with every symlink along it followed as if ``root_fd`` were ``/`` and ``..``
    stopped at that root: a clean absolute path that names the same file inside the root, down
    to the first component that does not exist yet."""
    pending = [p for p in reversed(path.split("/"))]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        try:
            target = os.readlink("/".join([*resolved, part]), dir_fd=root_fd)
        except OSError:  # not a symlink, or not there yet
            resolved.append(part)
            continue
        links += 1
        if links > 255:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        if target.startswith("/"):
            resolved = []
        pending.extend(reversed(target.split("/")))
    return "/" + "/".join(resolved)


def make_in_root(root_fd: int, path: str, directory: bool = True, mode: int = 0o755,
                 follow: bool = True) -> int:
    """Create ``path`` (and its missing parents) inside the root; return an O_PATH fd to it.

    Symlinks along the path are followed inside the root (:func:`resolve_in_root`); each
    missing component is made with mkdirat() on its already-opened parent, and every open goes
    through openat2(RESOLVE_IN_ROOT), so nothing can be created or mounted outside the root.
    Without ``follow``, a symlink anywhere along the path fails with ELOOP instead (``..`` is
    still clamped at the root: with no symlink it means what it says).
    """
    clean = resolve_in_root(root_fd, path) if follow else os.path.normpath("/" + path)
    parts = [p for p in clean.split("/") if p]
    parent = os.dup(root_fd)
    try:
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            try:
                fd = open_in_root(root_fd, "/".join(parts[: i + 1]), follow=follow)
            except FileNotFoundError:
                try:
                    if last and not directory:
                        os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW
                                         | os.O_CLOEXEC, 0o644, dir_fd=parent))
                    else:
                        os.mkdir(name, mode, dir_fd=parent)
                except FileExistsError:
                    pass
                fd = open_in_root(root_fd, "/".join(parts[: i + 1]), follow=follow)
            os.close(parent)
            parent = fd
        return parent if parts else parent
    except BaseException:
        os.close(parent)
        raise


def mount_table() -> list[tuple[str, str, str]]:
    """(mount point, root of the mount within its filesystem, filesystem type) for each line
    of /proc/self/mountinfo, in its order (a mount after the one it is mounted on)."""
    table = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index(b"-", 6) + 1]
            table.append((_unescape(fields[4]), _unescape(fields[3]), os.fsdecode(fstype)))
    return table


def _unescape(field: bytes) -> str:
    """A mountinfo path: the kernel writes space, tab, newline and backslash as ``\\ooo``."""
    head, *rest = field.split(b"\\")
    out = [head]
    for piece in rest:
        out += [bytes((int(piece[:3], 8),)), piece[3:]]
    return os.fsdecode(b"".join(out))


def mount_id_at(root: str, path: str) -> int:
    """The id of the topmost mount on ``path`` inside the directory ``root`` (opened afresh, so
    a mount made on ``root`` itself counts); 0 if ``path`` does not exist."""
    top = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in_root(top, path)
    except OSError:
        return 0
    finally:
        os.close(top)
    try:
        return sc.mount_id(fd)
    finally:
        os.close(fd)


def unmount_recorded(root: str, records: list[tuple[int, str]]) -> list[str]:
    """Unmount, newest first, the mounts of ``records`` ((mount id, path inside ``root``), as
    :func:`mount_id_at` saw them when they were made), and nothing else: each path is looked
    up inside ``root`` only, and unmounted only if the mount there still has the recorded id
    (ids from statx are never reused). One already gone is skipped. Returns what could not be
    undone, one line each."""
    problems = []
    for mnt_id, path in reversed(records):
        try:
            top = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fd = open_in_root(top, path)
            finally:
                os.close(top)
        except OSError:
            continue  # gone with the mount that held it
        try:
            if sc.mount_id(fd) == mnt_id:
                sc.umount2(fd_path(fd), sc.MNT_DETACH)
        except OSError as exc:
            problems.append(f"unmount {path} in {root}: {os.strerror(exc.errno or 0).lower()}")
        finally:
            os.close(fd)
    return problems


def is_dir_fd(fd: int) -> bool:
    import stat
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def mount_at(fd: int, source: str | None, fstype: str | None, flags: int,
             data: str | None = None) -> None:
    sc.mount(source, fd_path(fd), fstype, flags, data or None)


def remount(fd: int, flags: int) -> None:
    """Apply ``flags`` to the mount whose root ``fd`` is, as a bind remount."""
    try:
        sc.mount(None, fd_path(fd), None, sc.MS_REMOUNT | sc.MS_BIND | flags, None)
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise
        # In a user namespace the locked flags of the underlying mount must be kept.
        sc.mount(None, fd_path(fd), None,
                 sc.MS_REMOUNT | sc.MS_BIND | flags | locked_flags(fd), None)


def locked_flags(fd: int) -> int:
    st = os.fstatvfs(fd)
    out = 0
    for st_flag, ms_flag in ((os.ST_NOSUID, sc.MS_NOSUID), (os.ST_NODEV, sc.MS_NODEV),
                             (os.ST_NOEXEC, sc.MS_NOEXEC), (os.ST_RDONLY, sc.MS_RDONLY),
                             (os.ST_NOATIME, sc.MS_NOATIME), (os.ST_RELATIME, sc.MS_RELATIME),
                             (os.ST_NODIRATIME, sc.MS_NODIRATIME)):
        if st.f_flag & st_flag:
            out |= ms_flag
    return out
