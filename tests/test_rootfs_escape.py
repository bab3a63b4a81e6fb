"""Paths inside a rootfs resolve inside it: symlinks and .. cannot lead out (real openat2)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

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


def test_without_follow_any_symlink_on_the_way_is_refused(tmp_path: Path) -> None:
    """procfs and sysfs destinations (make_in_root without follow): a symlink as the last
    component or as any parent fails with ELOOP, inside or out of the root, and nothing is
    created anywhere; ``..`` is still clamped at the root."""
    rootfs, outside = tmp_path / "rootfs", tmp_path / "outside"
    (rootfs / "real").mkdir(parents=True)
    outside.mkdir()
    (rootfs / "inside").symlink_to("real")
    (rootfs / "out").symlink_to(outside)
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY)
    try:
        for path in ("/inside", "/inside/proc", "/out/proc", "/real/../inside/x"):
            with pytest.raises(OSError) as info:
                make_in_root(root, path, follow=False)
            assert info.value.errno == errno.ELOOP, path
        assert _target(make_in_root(root, "/../../real/proc", follow=False)) == \
            str(rootfs / "real" / "proc")
    finally:
        os.close(root)
    assert os.listdir(rootfs / "real") == ["proc"] and os.listdir(outside) == []
