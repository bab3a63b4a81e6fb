"""The disk usage of a directory tree, as Docker counts it (volume sizes, a container's SizeRw)."""

from __future__ import annotations

import os


def tree_size(path: str) -> int:
    """Bytes of the files below *path* (not following symlinks, not crossing mounts, hard
    links counted once)."""
    total = 0
    seen: set[int] = set()
    try:
        dev = os.lstat(path).st_dev
    except OSError:
        return 0
    for top, dirs, files in os.walk(path):
        for f in files:
            try:
                s = os.lstat(os.path.join(top, f))
            except OSError:
                continue
            if s.st_ino not in seen:
                seen.add(s.st_ino)
                total += s.st_size
        dirs[:] = [d for d in dirs if _same_dev(os.path.join(top, d), dev)]
    return total


def _same_dev(path: str, dev: int) -> bool:
    try:
        return os.lstat(path).st_dev == dev
    except OSError:
        return False
