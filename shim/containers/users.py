"""``-u/--user`` and ``--group-add``: names resolved in the image's /etc/passwd and /etc/group,
as Docker does (moby/sys/user's GetExecUser).

The files are read from the container's mounted rootfs, which a hostile image controls:
every path component is opened relative to the rootfs with O_NOFOLLOW, a symlink's target is
resolved again inside the rootfs (``..`` stops at its top, an absolute target starts from it),
and only a regular file of bounded size is read (no FIFO to hang on, no device to read from).
"""

from __future__ import annotations

import os
import stat
from typing import Any

from ..errors import OcishError

_MAX_LINKS = 40
_MAX_SIZE = 4 << 20  # a passwd file larger than this is not one


def _open_in_root(root_fd: int, path: str) -> int:
    """An fd (O_PATH) of *path* resolved inside the directory *root_fd*, symlinks included."""
    todo = [p for p in path.split("/") if p]
    fds = [os.dup(root_fd)]  # the chain of directories walked, for ".."
    links = 0
    try:
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                if len(fds) > 1:
                    os.close(fds.pop())
                continue
            fd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fds[-1])
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                target = os.readlink("", dir_fd=fd)
                os.close(fd)
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(40, "too many levels of symbolic links", path)
                if target.startswith("/"):
                    while len(fds) > 1:
                        os.close(fds.pop())
                todo[:0] = [p for p in target.split("/") if p]
                continue
            fds.append(fd)
        result = fds.pop()
        return result
    finally:
        for fd in fds:
            os.close(fd)


def read_in_root(rootfs: str, path: str) -> str | None:
    """The text of the regular file *path* inside *rootfs*; None if there is none."""
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pfd = _open_in_root(root_fd, path)
    except OSError:
        return None
    finally:
        os.close(root_fd)
    try:
        if not stat.S_ISREG(os.fstat(pfd).st_mode):
            return None
        fd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    finally:
        os.close(pfd)
    with os.fdopen(fd, "rb") as f:
        return f.read(_MAX_SIZE).decode("utf-8", "replace")


def _entries(text: str | None, fields: int) -> list[list[str]]:
    """The colon-separated entries of a passwd/group file (comments and short lines skipped)."""
    out = []
    for line in (text or "").splitlines():
        parts = line.strip().split(":")
        if line.strip() and not line.startswith("#") and len(parts) >= fields:
            out.append(parts)
    return out


def _num(text: str) -> int | None:
    return int(text) if text.isdigit() and int(text) < 2**32 else None


def resolve(rootfs: str, spec: str, group_add: list[str]) -> dict[str, Any]:
    """``user[:group]`` -> {"uid", "gid", "additionalGids", "home"} in *rootfs*'s files."""
    name, _, group = (spec or "0").partition(":")
    passwd = _entries(read_in_root(rootfs, "/etc/passwd"), 7)
    groups_text = read_in_root(rootfs, "/etc/group")
    groups = _entries(groups_text, 4)
    uid = _num(name)
    entry = next((e for e in passwd if (e[0] == name if uid is None else _num(e[2]) == uid)),
                 None)
    if entry is None and uid is None:
        raise OcishError(f"unable to find user {name}: no matching entries in passwd file",
                         status=125)
    user_name = entry[0] if entry else ""
    if uid is None:
        uid = _num(entry[2]) or 0 if entry else 0
    out: dict[str, Any] = {"uid": uid, "gid": (_num(entry[3]) or 0) if entry else 0,
                           "home": entry[5] if entry else "/"}
    gids: list[int] = []
    if group:
        out["gid"] = _group_id(groups, group)
    elif user_name:  # the groups that list the user, as Docker's supplementary groups
        gids = [g for e in groups if user_name in e[3].split(",") and
                (g := _num(e[2])) is not None]
    for extra in group_add:
        gid = _group_id(groups, extra)
        if gid not in gids:
            gids.append(gid)
    if gids:
        out["additionalGids"] = gids
    return out


def _group_id(groups: list[list[str]], text: str) -> int:
    num = _num(text)
    if num is not None:
        return num
    for e in groups:
        if e[0] == text and _num(e[2]) is not None:
            return int(e[2])
    raise OcishError(f"unable to find group {text}: no matching entries in group file",
                     status=125)
