"""ocirt's own rules for cgroups it does not own, where runc 1.1 differs (the runtime-agnostic
attacks are in spec-tests/test_cgroup_safety.py): a cgroup that existed before create is joined
and kept, refused if it holds processes; a frozen one (also through a parent, or on cgroup2) is
refused before anything moves in; `kill --all` of a container with its own pid namespace
signals that namespace only; `delete` of a container whose create was cut short signals
nothing. The unrelated processes are `sleep`s of the test's; every cgroup is below our parent.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import OCIRT
from ptrace_support import FORK, Point, kill_at
from support import busybox_bundle, run

from ocirt.cgroups import detect
from ocirt.cgroups.fs import resolve_paths
from ocirt.errors import ConfigError

PARENT = f"ocirt-test-ownership-{os.getpid()}"
HS = {h.key: h for h in detect.hierarchies()}
PIDS = HS.get("pids")
FREEZER = HS.get("freezer")
UNIFIED = HS.get(detect.UNIFIED)


@pytest.fixture(scope="module", autouse=True)
def _remove_parent() -> Iterator[None]:
    """The parents create made below ours (it leaves them, as runc does) are ours to remove."""
    yield
    for h in HS.values():
        for path, _dirs, _files in sorted(os.walk(os.path.join(h.mountpoint, PARENT)),
                                          key=lambda w: -len(w[0])):
            os.rmdir(path)


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "1000"])
    yield proc
    proc.kill()
    proc.wait()


def _alive(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is None


def _dir(h: detect.Hierarchy | None, tmp_path: Path, *sub: str) -> Path:
    """The container's cgroup directory in hierarchy ``h`` (busybox_bundle's cgroupsPath)."""
    assert h is not None
    return Path(h.mountpoint, PARENT, tmp_path.name, *sub)


def _own_dirs(tmp_path: Path) -> list[str]:
    return [str(_dir(h, tmp_path)) for h in HS.values() if _dir(h, tmp_path).exists()]


@pytest.mark.parametrize("path", ["/", "//", "///", "/.", "/./", "/a/..", "/a/b/../..", ".",
                                  "./", "a/..", "/ctr", "/ctr/", "//ctr/."])
def test_a_cgroups_path_naming_a_root_is_refused(path: str) -> None:
    """For every hierarchy: "/ctr" is the root of one mounted from the cgroup /ctr."""
    hs = [detect.Hierarchy("pids", ("pids",), "/p", "/"),
          detect.Hierarchy("memory", ("memory",), "/m", "/ctr")]
    with pytest.raises(ConfigError, match="invalid cgroupsPath"):
        resolve_paths(path, "c1", hs)
    assert resolve_paths("//ctr/x/", "c1", hs) == {"pids": "/p/ctr/x", "memory": "/m/x"}


@pytest.mark.skipif(PIDS is None, reason="no v1 pids hierarchy")
def test_a_cgroup_that_existed_is_joined_and_kept(tmp_path: Path, root: Path) -> None:
    bundle = busybox_bundle(tmp_path, PARENT, args=["sleep", "60"])
    existing = _dir(PIDS, tmp_path)
    existing.mkdir(parents=True)
    try:
        assert run(root, "create", "--bundle", str(bundle), "c1").returncode == 0
        created = json.loads((root / "c1" / "state.json").read_text())["cgroups_created"]
        assert sorted(created) == sorted(set(_own_dirs(tmp_path)) - {str(existing)})
        res = run(root, "delete", "--force", "c1")
        assert res.returncode == 0, res.stderr
        assert existing.is_dir(), "delete removed a cgroup the container did not create"
        assert _own_dirs(tmp_path) == [str(existing)]
    finally:
        existing.rmdir()


@pytest.mark.skipif(PIDS is None, reason="no v1 pids hierarchy")
def test_a_cgroup_holding_processes_is_refused(tmp_path: Path, root: Path,
                                              victim: subprocess.Popen[bytes]) -> None:
    bundle = busybox_bundle(tmp_path, PARENT, args=["sleep", "60"])
    shared = _dir(PIDS, tmp_path)
    shared.mkdir(parents=True)
    try:
        (shared / "cgroup.procs").write_text(str(victim.pid))
        res = run(root, "create", "--bundle", str(bundle), "c1")
        assert res.returncode == 1
        assert res.stderr == (f"ocirt: container's cgroup is not empty: 1 process(es) found in "
                              f"{shared} (a container needs a cgroup of its own)\n")
        assert _alive(victim)
        assert _own_dirs(tmp_path) == [str(shared)], "create left cgroups behind"
        assert not (root / "c1").exists()
    finally:
        victim.kill()
        victim.wait()
        shared.rmdir()


def _frozen_case(tmp_path: Path, root: Path, h: detect.Hierarchy | None, frozen: Path,
                 freeze: tuple[str, str, str], cgroups_path: str) -> None:
    """Freeze ``frozen`` (file, frozen value, thawed value), create: refused at once."""
    bundle = busybox_bundle(tmp_path, PARENT, args=["sleep", "60"])
    config = json.loads((bundle / "config.json").read_text())
    config["linux"]["cgroupsPath"] = cgroups_path
    (bundle / "config.json").write_text(json.dumps(config))
    frozen.mkdir(parents=True)
    name, on, off = freeze
    try:
        (frozen / name).write_text(on)
        res = run(root, "create", "--bundle", str(bundle), "c1", timeout=60)
        assert res.returncode == 1
        assert res.stderr.startswith("ocirt: container's cgroup unexpectedly frozen: "), res.stderr
        assert res.stderr.count("\n") == 1
        assert (frozen / "cgroup.procs").read_text() == ""
        assert not (root / "c1").exists()
        left = [os.path.join(hh.mountpoint, cgroups_path.lstrip("/")) for hh in HS.values()]
        assert [p for p in left if os.path.exists(p) and p != str(frozen)] == []
    finally:
        (frozen / name).write_text(off)
        for sub in sorted(frozen.rglob("*"), reverse=True):
            if sub.is_dir():
                sub.rmdir()
        frozen.rmdir()


@pytest.mark.skipif(FREEZER is None, reason="no v1 freezer hierarchy")
def test_a_cgroup_frozen_through_its_parent_is_refused(tmp_path: Path, root: Path) -> None:
    """The container's cgroup is new, but below a frozen one: it is born frozen."""
    parent = _dir(FREEZER, tmp_path)
    _frozen_case(tmp_path, root, FREEZER, parent, ("freezer.state", "FROZEN", "THAWED"),
                 f"/{PARENT}/{tmp_path.name}/c1")


@pytest.mark.skipif(UNIFIED is None, reason="no cgroup2 hierarchy mounted on this host")
def test_a_frozen_cgroup2_is_refused(tmp_path: Path, root: Path) -> None:
    frozen = _dir(UNIFIED, tmp_path)
    _frozen_case(tmp_path, root, UNIFIED, frozen, ("cgroup.freeze", "1", "0"),
                 f"/{PARENT}/{tmp_path.name}")


@pytest.mark.skipif(PIDS is None, reason="no v1 pids hierarchy")
def test_kill_all_with_a_pid_namespace_signals_only_that_namespace(
        tmp_path: Path, root: Path, victim: subprocess.Popen[bytes]) -> None:
    """SIGTERM to --all: the exec'd sleep of the container dies of it, the unrelated sleep in
    its cgroup does not (nor the init, a pid namespace's init without a handler)."""
    bundle = busybox_bundle(tmp_path, PARENT, args=["sleep", "60"])
    assert run(root, "run", "-d", "--bundle", str(bundle), "c1").returncode == 0
    pid_file = tmp_path / "exec.pid"
    assert run(root, "exec", "-d", "--pid-file", str(pid_file), "c1", "sleep", "60") \
        .returncode == 0
    execd = int(pid_file.read_text())
    (_dir(PIDS, tmp_path) / "cgroup.procs").write_text(str(victim.pid))
    try:
        res = run(root, "kill", "--all", "c1", "TERM")
        assert res.returncode == 0, res.stderr
        pidfd = os.pidfd_open(execd)
        try:
            assert select.select([pidfd], [], [], 10)[0], "the exec'd process got no SIGTERM"
        finally:
            os.close(pidfd)
        assert _alive(victim)
    finally:
        victim.kill()
        victim.wait()
        run(root, "delete", "--force", "c1")
        for d in _own_dirs(tmp_path):
            os.rmdir(d)


@pytest.mark.skipif(PIDS is None, reason="no v1 pids hierarchy")
def test_delete_of_a_create_cut_short_signals_nothing(
        tmp_path: Path, root: Path, victim: subprocess.Popen[bytes]) -> None:
    """ocirt killed right after making the cgroups: the container stays "creating", with no
    init recorded. An unrelated process put in its cgroup meanwhile survives `delete --force`
    (which then cannot remove that cgroup, and says so in --log)."""
    bundle = busybox_bundle(tmp_path, PARENT, args=["sleep", "60"])
    # killed from outside (ptrace) as it forks the init, the cgroups made
    cut = kill_at([str(OCIRT), "--root", str(root), "create", "--bundle", str(bundle), "c1"],
                  Point(FORK))
    assert cut.hit and cut.returncode == -signal.SIGKILL, cut
    shared = _dir(PIDS, tmp_path)
    (shared / "cgroup.procs").write_text(str(victim.pid))
    try:
        log = tmp_path / "log.json"
        res = run(root, "--log", str(log), "--log-format", "json", "delete", "--force", "c1")
        assert res.returncode == 0, res.stderr
        assert _alive(victim)
        assert not (root / "c1").exists()
        assert _own_dirs(tmp_path) == [str(shared)]
        assert "device or resource busy" in log.read_text()
    finally:
        victim.kill()
        victim.wait()
        shared.rmdir()
