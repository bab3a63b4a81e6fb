"""Container lifecycle through the CLI: create/start/state/kill/delete/run/pause, pid files.

Checks the runtime-spec operations (runtime.md) and what podman/conmon, containerd/go-runc
and buildah rely on: pid-file format, re-parenting of the init to the caller, error texts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from spec_support import (
    Containers,
    is_rfc3339,
    pid_alive,
    proc_status,
    wait_for_file_text,
    wait_pid_gone,
)

SLEEP = ["sleep", "100"]
# busybox sleep as PID 1 ignores SIGTERM; this one exits on TERM.
TERM_TRAP = ["sh", "-c", 'trap "echo got-term; exit 42" TERM; echo ready; while :; do sleep 0.1; done']


def assert_one_line_error(res, *needles: str) -> None:
    assert res.returncode != 0, res.describe()
    lines = res.error_lines()
    assert len(lines) == 1, f"expected a single error line on stderr:\n{res.describe()}"
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in res.stderr, res.describe()


# --------------------------------------------------------------------------------------------
# create / state / start
# --------------------------------------------------------------------------------------------


def test_create_state_created(ctr: Containers) -> None:
    b = ctr.bundle(SLEEP)
    b.config["annotations"] = {"org.example.key": "value", "second": "2"}
    created = ctr.create(b)
    assert created.result.stdout == "" and created.result.stderr == ""

    assert created.pid_file is not None
    raw = created.pid_file.read_bytes()
    assert raw.isdigit(), f"pid file must be ASCII digits only (no newline): {raw!r}"
    st = ctr.state(b.id)
    assert st["status"] == "created"
    assert st["pid"] == int(raw) > 0
    assert st["id"] == b.id
    # "the version of the runtime-spec with which the state complies" (runtime.md)
    assert re.match(r"^\d+\.\d+\.\d+", st["ociVersion"]), st["ociVersion"]
    assert st["bundle"] == str(b.path) and os.path.isabs(st["bundle"])
    assert st["annotations"] == b.config["annotations"]
    if "created" in st:
        assert is_rfc3339(st["created"]), st["created"]
    assert pid_alive(st["pid"])


def reapers_of_this_process() -> set[int]:
    """Processes an orphan of ours can be re-parented to: our ancestors (subreapers) and 1."""
    pids = {1}
    pid = os.getpid()
    while pid > 1:
        pids.add(pid)
        pid = int(proc_status(pid)["PPid"])
    return pids


def test_init_is_reparented_away_from_create(ctr: Containers) -> None:
    """When create returns, no runtime process (create itself, an intermediate child, a
    monitor) stays alive as the init's parent: the init was re-parented to a reaper."""
    b = ctr.bundle(SLEEP)
    created = ctr.create(b)
    assert not pid_alive(created.result.pid)
    ppid = int(proc_status(created.pid)["PPid"])
    assert ppid != created.result.pid
    assert ppid in reapers_of_this_process(), (
        f"init's parent {ppid} ({proc_status(ppid).get('Name')}) is not a reaper of the caller"
    )


SUBREAPER_CALLER = r"""
import ctypes, json, os, signal, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
signal.alarm(60)
create, start, pid_file, log = json.loads(sys.argv[1])
with open(os.devnull, "rb") as null, open(log, "ab") as out:
    rc = subprocess.run(create, stdin=null, stdout=out, stderr=out, timeout=30).returncode
    if rc != 0:
        print(json.dumps({"create_rc": rc}))
        sys.exit(0)
    pid = int(open(pid_file).read())
    ppid = None
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("PPid:"):
            ppid = int(line.split()[1])
    start_rc = subprocess.run(start, stdin=null, stdout=out, stderr=out, timeout=30).returncode
_, status = os.waitpid(pid, 0)
print(json.dumps({"create_rc": rc, "start_rc": start_rc, "me": os.getpid(), "ppid": ppid,
                  "exit": os.waitstatus_to_exitcode(status)}))
"""


def test_caller_subreaper_reaps_init(ctr: Containers) -> None:
    """Like conmon / containerd-shim: a subreaper caller becomes the init's parent and gets
    the container's exit status from waitpid()."""
    b = ctr.bundle(["sh", "-c", "exit 7"])
    b.write()
    pid_file = b.path / "init.pid"
    create = ctr.rt.argv("create", "--bundle", str(b.path), "--pid-file", str(pid_file), b.id)
    start = ctr.rt.argv("start", b.id)
    proc = subprocess.run(
        [sys.executable, "-c", SUBREAPER_CALLER,
         json.dumps([create, start, str(pid_file), str(b.path / "caller.log")])],
        capture_output=True,
        text=True,
        timeout=60,
        env=ctr.rt.environ(),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["create_rc"] == 0, (b.path / "caller.log").read_text()
    assert report["start_rc"] == 0
    assert report["ppid"] == report["me"], "init was not re-parented to the subreaper caller"
    assert report["exit"] == 7
    assert ctr.wait_stopped(b.id)["status"] == "stopped"


def test_create_does_not_run_user_code(ctr: Containers) -> None:
    b = ctr.bundle(["touch", "/ran"])
    b.config["root"]["readonly"] = False
    ctr.create(b)
    time.sleep(0.2)
    assert not (b.rootfs / "ran").exists(), "process.args ran before start"
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    assert (b.rootfs / "ran").exists()


def test_config_changes_after_create_have_no_effect(ctr: Containers) -> None:
    b = ctr.bundle(["echo", "original"])
    ctr.create(b)
    b.process["args"] = ["echo", "changed"]
    b.write()
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    assert (b.path / f"{b.id}.stdout").read_text() == "original\n"


def test_start_long_running(ctr: Containers) -> None:
    b = ctr.bundle(SLEEP)
    created = ctr.create(b)
    res = ctr.start(b.id)
    assert res.stdout == "" and res.stderr == ""
    st = ctr.state(b.id)
    assert st["status"] == "running"
    assert st["pid"] == created.pid
    assert proc_status(created.pid)["Name"] == "sleep"


def test_start_short_command_stops(ctr: Containers) -> None:
    b = ctr.bundle(["true"])
    created = ctr.create(b)
    ctr.start(b.id)
    st = ctr.wait_stopped(b.id)
    assert st["status"] == "stopped"
    assert st["id"] == b.id
    assert not pid_alive(created.pid)


def test_start_stopped_container_fails(ctr: Containers) -> None:
    b = ctr.bundle(["true"])
    ctr.create(b)
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    assert_one_line_error(ctr.start(b.id, check=False))
    assert ctr.state(b.id)["status"] == "stopped"


def test_start_twice_fails_and_keeps_running(ctr: Containers) -> None:
    b = ctr.bundle(SLEEP)
    created = ctr.create(b)
    ctr.start(b.id)
    assert_one_line_error(ctr.start(b.id, check=False))
    st = ctr.state(b.id)
    assert st["status"] == "running" and st["pid"] == created.pid
    assert pid_alive(created.pid)


def test_start_missing_container_fails(ctr: Containers) -> None:
    assert_one_line_error(ctr.rt("start", "st-never-created"), "does not exist")


def test_bundle_defaults_to_cwd(ctr: Containers) -> None:
    """Without --bundle the current directory is the bundle (buildah relies on it)."""
    b = ctr.bundle(SLEEP)
    b.write()
    res = ctr.rt("create", "--pid-file", "init.pid", b.id, cwd=b.path).check()
    assert res.stderr == ""
    st = ctr.state(b.id)
    assert st["bundle"] == str(b.path)
    assert (b.path / "init.pid").read_text() == str(st["pid"])


# --------------------------------------------------------------------------------------------
# pid file
# --------------------------------------------------------------------------------------------


def test_pid_file_relative_to_cwd(ctr: Containers, workdir: Path) -> None:
    b = ctr.bundle(SLEEP)
    piddir = workdir / "piddir"
    piddir.mkdir()
    created = ctr.create(b, pid_file="rel.pid", cwd=piddir)
    assert (piddir / "rel.pid").read_text() == str(ctr.state(b.id)["pid"])
    assert created.pid == ctr.state(b.id)["pid"]


def test_pid_file_replaced_atomically(ctr: Containers, workdir: Path) -> None:
    """The pid file is written to a temporary name and renamed over the target, so a reader
    never sees it empty or half written: a stale file is replaced by a new inode, and no
    temporary file is left next to it."""
    piddir = workdir / "pids"
    piddir.mkdir()
    pid_file = piddir / "init.pid"
    pid_file.write_text("999999\n")
    old_inode = pid_file.stat().st_ino
    b = ctr.bundle(SLEEP)
    created = ctr.create(b, pid_file=pid_file)
    assert pid_file.read_bytes() == str(created.pid).encode()
    assert pid_file.stat().st_ino != old_inode
    assert sorted(os.listdir(piddir)) == ["init.pid"]


# --------------------------------------------------------------------------------------------
# kill
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", ["9", "KILL", "SIGKILL", "sigkill"])
def test_kill_signal_forms(ctr: Containers, sig: str) -> None:
    b = ctr.bundle(SLEEP)
    created = ctr.create(b)
    ctr.start(b.id)
    res = ctr.kill(b.id, sig)
    assert res.stdout == "" and res.stderr == ""
    ctr.wait_stopped(b.id, timeout=5)
    assert not pid_alive(created.pid)


def test_kill_default_is_sigterm(ctr: Containers) -> None:
    b = ctr.bundle(TERM_TRAP)
    ctr.create(b)
    ctr.start(b.id)
    out = b.path / f"{b.id}.stdout"
    wait_for_file_text(out, "ready")
    ctr.kill(b.id)
    ctr.wait_stopped(b.id, timeout=5)
    assert "got-term" in out.read_text()


def test_kill_term_by_number(ctr: Containers) -> None:
    b = ctr.bundle(TERM_TRAP)
    ctr.create(b)
    ctr.start(b.id)
    out = b.path / f"{b.id}.stdout"
    wait_for_file_text(out, "ready")
    ctr.kill(b.id, "15")
    ctr.wait_stopped(b.id, timeout=5)
    assert "got-term" in out.read_text()


def test_kill_all_with_pid_namespace(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "sleep 100 & sleep 100 & echo ready; wait"])
    created = ctr.create(b)
    ctr.start(b.id)
    wait_for_file_text(b.path / f"{b.id}.stdout", "ready")
    ctr.kill(b.id, "9", all=True)
    ctr.wait_stopped(b.id, timeout=5)
    assert not pid_alive(created.pid)


@pytest.mark.parametrize("all_processes", [False, True])
def test_kill_signal_zero_checks_without_signalling(ctr: Containers, all_processes: bool) -> None:
    """Signal 0 (kill(2)'s existence check) is a signal number like any other: it succeeds on
    a running container and does nothing to it."""
    b = ctr.bundle(SLEEP)
    created = ctr.create(b)
    ctr.start(b.id)
    res = ctr.kill(b.id, "0", all=all_processes)
    assert res.stdout == "" and res.stderr == ""
    assert ctr.state(b.id)["status"] == "running"
    assert pid_alive(created.pid)


def test_kill_stopped_container_fails(ctr: Containers) -> None:
    b = ctr.bundle(["true"])
    ctr.create(b)
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    res = ctr.kill(b.id, "9", check=False)
    assert_one_line_error(res, "not running")


def test_kill_missing_container_fails(ctr: Containers) -> None:
    assert_one_line_error(ctr.rt("kill", "st-never-created", "9"), "does not exist")


def test_kill_invalid_signal_fails(ctr: Containers) -> None:
    b = ctr.bundle(SLEEP)
    created = ctr.create(b)
    ctr.start(b.id)
    res = ctr.kill(b.id, "SIGNOSUCH", check=False)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert ctr.state(b.id)["status"] == "running"
    assert pid_alive(created.pid)


# --------------------------------------------------------------------------------------------
# delete
# --------------------------------------------------------------------------------------------


def assert_gone(ctr: Containers, cid: str, pid: int | None) -> None:
    assert not (ctr.rt.root / cid).exists(), "state dir left behind"
    res = ctr.rt("state", cid)
    assert res.returncode != 0 and "does not exist" in res.stderr, res.describe()
    if pid:
        assert wait_pid_gone(pid, 5), f"init {pid} still alive"
    assert ctr.cgroup_dirs(cid) == [], "cgroup dirs left behind"


def test_delete_stopped(ctr: Containers) -> None:
    b = ctr.bundle(["true"])
    created = ctr.create(b)
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    res = ctr.delete(b.id)
    assert res.stdout == "" and res.stderr == ""
    assert_gone(ctr, b.id, created.pid)


def test_delete_running_without_force_fails(ctr: Containers) -> None:
    b = ctr.bundle(SLEEP)
    created = ctr.create(b)
    ctr.start(b.id)
    assert_one_line_error(ctr.delete(b.id, check=False))
    assert ctr.state(b.id)["status"] == "running"
    assert pid_alive(created.pid)


def test_delete_force_running(ctr: Containers) -> None:
    b = ctr.bundle(SLEEP)
    created = ctr.create(b)
    ctr.start(b.id)
    res = ctr.delete(b.id, force=True)
    assert res.stdout == "" and res.stderr == ""
    assert_gone(ctr, b.id, created.pid)


def test_delete_created_without_force(ctr: Containers) -> None:
    """containerd deletes a created-but-never-started task without --force."""
    b = ctr.bundle(SLEEP)
    created = ctr.create(b)
    ctr.delete(b.id)
    assert_gone(ctr, b.id, created.pid)


def test_delete_force_missing_succeeds(ctr: Containers) -> None:
    """podman rm runs `delete --force` on containers that may already be gone."""
    res = ctr.rt("delete", "--force", "st-never-created")
    assert res.returncode == 0, res.describe()


def test_delete_missing_fails(ctr: Containers) -> None:
    assert_one_line_error(ctr.rt("delete", "st-never-created"), "does not exist")


def test_state_missing_fails(ctr: Containers) -> None:
    res = ctr.rt("state", "st-never-created")
    assert_one_line_error(res, "does not exist")
    assert res.stdout == ""


# --------------------------------------------------------------------------------------------
# ids
# --------------------------------------------------------------------------------------------


def test_duplicate_id_fails_and_first_unaffected(ctr: Containers) -> None:
    b1 = ctr.bundle(SLEEP)
    first = ctr.create(b1)
    b2 = ctr.bundle(["true"])
    dup = ctr.create(b2, cid=b1.id, check=False, pid_file=b2.path / "dup.pid")
    assert dup.result.returncode != 0
    assert len(dup.result.error_lines()) == 1 and "Traceback" not in dup.result.stderr
    assert not (b2.path / "dup.pid").exists()
    st = ctr.state(b1.id)
    assert st["status"] == "created"
    assert st["pid"] == first.pid and st["bundle"] == str(b1.path)
    assert pid_alive(first.pid)
    ctr.start(b1.id)
    assert ctr.state(b1.id)["status"] == "running"


@pytest.mark.parametrize("bad_id", ["../x", "a/b", ".", "..", ""])
def test_invalid_ids_rejected(ctr: Containers, bad_id: str) -> None:
    b = ctr.bundle(SLEEP)
    before = set(os.listdir(ctr.rt.root))
    before_parent = set(os.listdir(ctr.rt.root.parent))
    res = ctr.rt("create", "--bundle", str(b.path), "--pid-file", str(b.path / "p"), bad_id)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr and res.error_lines()
    assert set(os.listdir(ctr.rt.root)) == before
    assert set(os.listdir(ctr.rt.root.parent)) == before_parent
    assert not (b.path / "p").exists()


# --------------------------------------------------------------------------------------------
# run (foreground and detached)
# --------------------------------------------------------------------------------------------


def test_run_foreground_exit_status(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "echo hello; exit 3"])
    b.write()
    with open(b.path / "out", "wb") as out:
        res = ctr.rt("run", "--bundle", str(b.path), b.id, stdout=out, timeout=30)
    assert res.returncode == 3, res.describe()
    assert (b.path / "out").read_text() == "hello\n"
    # Without --keep the container is removed when run returns.
    assert ctr.rt("state", b.id).returncode != 0
    assert ctr.cgroup_dirs(b.id) == []


def test_run_foreground_killed_by_signal(ctr: Containers) -> None:
    b = ctr.bundle(SLEEP)
    b.write()
    proc = ctr.rt.popen(
        "run", "--bundle", str(b.path), b.id,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            res = ctr.rt("state", b.id)
            if res.ok and json.loads(res.stdout)["status"] == "running":
                break
            time.sleep(0.05)
        ctr.kill(b.id, "KILL")
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert rc == 128 + 9


def test_run_keep(ctr: Containers) -> None:
    """`run --keep` leaves the stopped container in place for a later delete."""
    b = ctr.bundle(["true"])
    b.write()
    res = ctr.rt("run", "--keep", "--bundle", str(b.path), b.id, timeout=30)
    assert res.returncode == 0, res.describe()
    assert ctr.state(b.id)["status"] == "stopped"
    assert ctr.cgroup_dirs(b.id), "cgroup removed although --keep was given"
    ctr.delete(b.id)
    assert ctr.cgroup_dirs(b.id) == []


def test_run_detached(ctr: Containers) -> None:
    b = ctr.bundle(SLEEP)
    b.write()
    res = ctr.rt("run", "--detach", "--bundle", str(b.path), "--pid-file", str(b.path / "p"), b.id)
    res.check()
    st = ctr.state(b.id)
    assert st["status"] == "running"
    pid = int((b.path / "p").read_text())
    ctr.pids[b.id] = pid
    assert st["pid"] == pid


# --------------------------------------------------------------------------------------------
# pause / resume, ps
# --------------------------------------------------------------------------------------------


def test_pause_resume(ctr: Containers) -> None:
    b = ctr.bundle(SLEEP)
    created = ctr.create(b)
    ctr.start(b.id)
    ctr.rt("pause", b.id).check()
    assert ctr.state(b.id)["status"] == "paused"
    assert proc_status(created.pid)["State"].startswith(("D", "S"))
    ctr.rt("resume", b.id).check()
    assert ctr.state(b.id)["status"] == "running"
    assert ctr.rt("resume", b.id).returncode != 0


def test_ps_json(ctr: Containers) -> None:
    b = ctr.bundle(["sh", "-c", "sleep 100 & echo ready; wait"])
    created = ctr.create(b)
    ctr.start(b.id)
    wait_for_file_text(b.path / f"{b.id}.stdout", "ready")
    res = ctr.rt("ps", "--format", "json", b.id).check()
    pids = json.loads(res.stdout)
    assert created.pid in pids
    assert len(pids) == 2
    assert all(isinstance(p, int) for p in pids)
