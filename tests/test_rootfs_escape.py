"""Paths inside a rootfs resolve inside it: symlinks and .. cannot lead out (real openat2)."""

from __future__ import annotations

import os
from pathlib import Path

from ocirt.linux.mounts import make_in_root, open_in_root


def _target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def test_absolute_symlink_stays_inside(tmp_path: Path) -> None:
    rootfs, outside = tmp_path / "rootfs", tmp_path / "outside"
    rootfs.mkdir()
    outside.mkdir()
    (rootfs / "evil").symlink_to(outside)
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY)
    try:
        made = _target(make_in_root(root, "/evil/sub"))
    finally:
        os.close(root)
    assert made.startswith(str(rootfs) + "/")
    assert not (outside / "sub").exists()
    assert (rootfs / str(outside).lstrip("/") / "sub").is_dir()


def test_dotdot_is_clamped_at_the_root(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "up").symlink_to("../../../..")
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY)
    try:
        assert _target(make_in_root(root, "/../../x")) == str(rootfs / "x")
        assert _target(make_in_root(root, "/up/y")) == str(rootfs / "y")
        assert _target(open_in_root(root, "/up")) == str(rootfs)
    finally:
        os.close(root)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_file_destination(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY)
    try:
        made = _target(make_in_root(root, "/etc/resolv.conf", directory=False))
    finally:
        os.close(root)
    assert made == str(rootfs / "etc" / "resolv.conf")
    assert (rootfs / "etc" / "resolv.conf").is_file()
