"""A runtime touches only the cgroups and processes its container owns.

Each test runs an attack for real: an unrelated process (a `sleep` the test starts) shares the
container's cgroup and must survive `delete --force`, `kill --all` of a container with its own
pid namespace, and a failed `create`; `exec --cgroup` must not leave the container's cgroup; a
cgroupsPath naming the root of a hierarchy must be refused without killing anything; a frozen
cgroup must make `create` fail, not hang.

Every cgroup here is made by the test below the suite's parent. The root-cgroup attacks run the
runtime in a cgroup sandbox (cgroup_sandbox.py: private mount and cgroup namespaces rooted at a
cgroup of the test's), so that even a runtime that kills every process of "/" or removes every
cgroup below it reaches only the sandbox's own processes, never the host's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cgroup_sandbox
import pytest
from spec_support import (
    Bundle,
    Containers,
    Runtime,
    kill_and_reap,
    pid_alive,
    processes_using,
    wait_pid_gone,
)

CG = Path("/sys/fs/cgroup")
FREEZER = CG / "freezer"


@contextlib.contextmanager
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """The unrelated process: a `sleep` of the test's, killed at the end."""
    proc = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        kill_and_reap(proc)


@contextlib.contextmanager
def own_cgroup(ctr: Containers, name: str) -> Iterator[str]:
    """A cgroup of the test's, made in every hierarchy below the suite's parent; whatever is
    left in it at the end is killed (only the test's own processes can be there) and it is
    removed."""
    path = f"/{ctr.res.cgroup_parent}/{name}-{ctr.tag}"
    cgroup_sandbox.make(path)
    try:
        yield path
    finally:
        left = cgroup_sandbox.remove(path)
        assert not left, f"cannot remove the test's cgroup: {left}"


def in_shared_cgroup(ctr: Containers, shared: str, *, pidns: bool = True,
                     args: tuple[str, ...] = ("sleep", "100")) -> Bundle:
    b = ctr.bundle(list(args))
    b.linux["cgroupsPath"] = shared
    if not pidns:
        b.drop_namespace("pid")
    return b


def assert_alive(proc: subprocess.Popen[bytes], what: str) -> None:
    assert proc.poll() is None and pid_alive(proc.pid), f"the unrelated process died at {what}"


# --------------------------------------------------------------------------------------------
# An unrelated process in the container's cgroup
# --------------------------------------------------------------------------------------------


def test_unrelated_process_in_cgroup_survives_delete_force(ctr: Containers) -> None:
    """With its own pid namespace, killing the container's init kills all its processes:
    `delete --force` has nothing else to signal, whatever shares its cgroup."""
    with own_cgroup(ctr, "shared") as shared, victim() as other:
        b = in_shared_cgroup(ctr, shared, args=("sh", "-c", "sleep 100 & exec sleep 100"))
        created = ctr.create(b)
        ctr.start(b.id)
        cgroup_sandbox.join(shared, other.pid)
        res = ctr.delete(b.id, force=True, check=False)
        assert res.returncode == 0, res.describe()
        assert wait_pid_gone(created.pid, 10), "delete --force left the init running"
        assert_alive(other, "delete --force")
        assert not (ctr.rt.root / b.id).exists()


@pytest.mark.runc_xfail(reason="kill --all signals every process of the container's cgroup "
                        "(as its devices hierarchy lists them) even when the container has "
                        "its own pid namespace")
def test_unrelated_process_in_cgroup_survives_kill_all(ctr: Containers) -> None:
    """`kill --all` of a container with its own pid namespace reaches the processes of that
    namespace (here all die with the init), not what else shares its cgroup."""
    with own_cgroup(ctr, "shared") as shared, victim() as other:
        b = in_shared_cgroup(ctr, shared, args=("sh", "-c", "sleep 100 & exec sleep 100"))
        created = ctr.create(b)
        ctr.start(b.id)
        cgroup_sandbox.join(shared, other.pid)
        ctr.kill(b.id, "KILL", all=True)
        ctr.wait_stopped(b.id)
        assert wait_pid_gone(created.pid, 10)
        assert_alive(other, "kill --all")
        ctr.delete(b.id)


@pytest.mark.parametrize("pidns", [True, pytest.param(False, marks=pytest.mark.runc_xfail(
    reason="without a pid namespace of its own, the undo of a failed create signals every "
           "process of the cgroup, one that was there before the container included (it only "
           "warned that the cgroup was not empty)"))], ids=["pidns", "no-pidns"])
def test_unrelated_process_in_cgroup_survives_failed_create(ctr: Containers,
                                                            pidns: bool) -> None:
    """A cgroup that already holds a process, and a create that fails (no such executable):
    the undo of the create kills the container's processes only. (A runtime may refuse such a
    cgroup outright; runc 1.1 warns that it is not empty.)"""
    with own_cgroup(ctr, "shared") as shared, victim() as other:
        cgroup_sandbox.join(shared, other.pid)
        b = in_shared_cgroup(ctr, shared, pidns=pidns, args=("/no/such/executable",))
        created = ctr.create(b, check=False)
        assert created.result.returncode != 0, created.result.describe()
        assert "Traceback" not in created.result.stderr
        assert_alive(other, "the failed create")
        assert not (ctr.rt.root / b.id).exists(), "state dir left behind"
        assert not (b.path / "init.pid").exists()


def test_unrelated_process_joining_during_create_survives_its_undo(ctr: Containers) -> None:
    """The process joins the container's cgroup while the container is being created (from a
    createRuntime hook, which then fails): the undo kills the init, and with it its pid
    namespace, and nothing else."""
    with own_cgroup(ctr, "shared") as shared, victim() as other:
        b = in_shared_cgroup(ctr, shared)
        procs = [str(Path(d) / "cgroup.procs") for d in cgroup_sandbox.directories(shared)]
        script = "".join(f"echo {other.pid} > {p}; " for p in procs) + "exit 3"
        b.config["hooks"] = {"createRuntime": [{"path": "/bin/sh",
                                                "args": ["sh", "-c", script]}]}
        created = ctr.create(b, check=False)
        assert created.result.returncode != 0, created.result.describe()
        assert_alive(other, "the undo of the create")
        assert not (ctr.rt.root / b.id).exists(), "state dir left behind"
        assert processes_using(b.path) == []


# --------------------------------------------------------------------------------------------
# exec --cgroup stays below the container's cgroup
# --------------------------------------------------------------------------------------------


V1_ARGS = ["pids:..", "pids,memory:.."] if (CG / "pids").is_dir() and (CG / "memory").is_dir() \
    else []


@pytest.mark.parametrize("arg", ["..", "/../..", "sub/../..", *V1_ARGS])
def test_exec_cgroup_cannot_leave_the_container_cgroup(ctr: Containers, arg: str) -> None:
    b = ctr.bundle(["sleep", "100"])
    ctr.create(b)
    ctr.start(b.id)
    res = ctr.rt("exec", "--cgroup", arg, b.id, "cat", "/proc/self/cgroup")
    assert res.returncode != 0, f"the process ran in a parent cgroup:\n{res.describe()}"
    assert res.stdout == "", res.describe()
    assert "is not a sub cgroup path" in res.stderr, res.describe()


@pytest.mark.skipif(not (CG / "pids").is_dir(), reason="no v1 pids hierarchy")
@pytest.mark.runc_xfail(reason="--cgroup is checked with a string prefix test: ../<name>x "
                        "passes as a path below <name>, and the process joins that sibling")
def test_exec_cgroup_cannot_reach_a_sibling_named_like_the_container(ctr: Containers) -> None:
    b = ctr.bundle(["sleep", "100"])
    ctr.create(b)
    ctr.start(b.id)
    sibling = CG / "pids" / (b.linux["cgroupsPath"].lstrip("/") + "x")
    sibling.mkdir()
    try:
        res = ctr.rt("exec", "--cgroup", f"pids:../{b.id}x", b.id, "cat", "/proc/self/cgroup")
        assert res.returncode != 0, f"the process ran in the sibling cgroup:\n{res.describe()}"
        assert res.stdout == ""
    finally:
        sibling.rmdir()


def test_kill_all_reaches_processes_in_the_containers_sub_cgroups(ctr: Containers) -> None:
    """Without a pid namespace of its own, the container's processes are told apart by its
    cgroups, sub-cgroups included: one exec'd into a sub-cgroup (`exec --cgroup sub`) gets the
    signal of `kill --all` (TERM: no cgroup.kill shortcut), and `delete --force` removes the
    whole subtree."""
    b = ctr.bundle(["sleep", "100"])
    b.drop_namespace("pid")
    ctr.create(b)
    ctr.start(b.id)
    for d in ctr.cgroup_dirs(b.id):
        (d / "sub").mkdir()
        for name in ("cpuset.cpus", "cpuset.mems"):  # a v1 cpuset cgroup starts empty
            if (d / name).exists():
                (d / "sub" / name).write_text((d / name).read_text())
    pid_file = b.path / "exec.pid"
    res = ctr.rt("exec", "-d", "--pid-file", str(pid_file), "--cgroup", "sub", b.id,
                 "sleep", "100", timeout=30)
    assert res.ok, res.describe()
    pid = int(pid_file.read_text())
    assert "/sub" in Path(f"/proc/{pid}/cgroup").read_text()
    assert ctr.kill(b.id, "TERM", all=True).ok
    assert wait_pid_gone(pid, 10), "the process in the sub-cgroup did not get kill --all's TERM"
    assert ctr.delete(b.id, force=True, check=False).ok
    assert ctr.cgroup_dirs(b.id) == []


# --------------------------------------------------------------------------------------------
# A cgroupsPath naming the root of a hierarchy (in a cgroup sandbox)
# --------------------------------------------------------------------------------------------

SANDBOX_SCRIPT = """
sleep 1000 & echo $! > victim.pid
"$RT" --root "$ROOT" create --bundle "$BUNDLE" "$ID" < /dev/null > create.out 2> create.err
echo $? > create.rc
state=$(cut -d' ' -f3 "/proc/$(cat victim.pid)/stat")
[ -n "$state" ] && [ "$state" != Z ] && echo alive > victim.after-create
"$RT" --root "$ROOT" delete --force "$ID" < /dev/null > /dev/null 2>&1
kill "$(cat victim.pid)"
echo done > finished
"""


def run_in_sandbox(rt: Runtime, sandbox: str, workdir: Path, b: Bundle) -> dict[str, str]:
    """Run the script above in the cgroup sandbox; returns the files it wrote. A runtime that
    froze "the root cgroup" froze itself too (it runs there): that ends the run at once."""
    env = dict(os.environ, RT=rt.path, ROOT=str(workdir / "sandbox-state"), BUNDLE=str(b.path),
               ID=b.id)
    cmd = [sys.executable, cgroup_sandbox.__file__, sandbox, "--", "/bin/sh", "-c",
           SANDBOX_SCRIPT]
    outcome = ""
    with open(workdir / "sandbox.out", "wb") as out:  # a file: the `sleep` inherits it
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120  # a hang guard, far above the second it takes
        while proc.poll() is None:
            if cgroup_sandbox.frozen(sandbox):
                outcome = "the runtime froze the root cgroup, and itself with it"
            elif time.monotonic() > deadline:
                outcome = "the sandbox's script hung"
            if outcome:
                cgroup_sandbox.kill_all(sandbox)
                proc.wait()
                break
            time.sleep(0.05)
    files = {p.name: p.read_text().strip() for p in workdir.iterdir() if p.is_file()}
    assert proc.returncode != 125, f"the sandbox did not start: {files['sandbox.out']}"
    assert not outcome, f"{outcome}: {files}"
    return files


@pytest.mark.parametrize("pidns", [True, pytest.param(False, marks=pytest.mark.runc_xfail(
    reason="it accepts the path (create then fails on cpuset.cpus of the hierarchy's parent "
           "directory); without a pid namespace the undo freezes and SIGKILLs every process "
           "of that root cgroup: the unrelated one, and runc itself (frozen, it hangs)"))],
    ids=["pidns", "no-pidns"])
@pytest.mark.parametrize("cgroups_path", ["/", "//", "/.", "/x/..", ".", "x/.."])
def test_cgroups_path_naming_a_hierarchy_root_is_refused(
        ctr: Containers, rt: Runtime, workdir: Path, cgroups_path: str, pidns: bool) -> None:
    """In the sandbox "/" is a cgroup of the test's (the runtime's own one, as "." names it),
    holding the sandbox's shell and an unrelated `sleep`: the create fails, and both survive
    it and its undo."""
    b = ctr.bundle(["sleep", "100"])
    b.linux["cgroupsPath"] = cgroups_path
    if not pidns:
        b.drop_namespace("pid")
    b.write()
    with own_cgroup(ctr, "sandbox") as sandbox:
        out = run_in_sandbox(rt, sandbox, workdir, b)
    assert out.get("finished") == "done", f"the sandbox's shell was killed: {out}"
    assert out.get("victim.after-create") == "alive", f"the unrelated process was killed: {out}"
    assert out["create.rc"] != "0", f"a cgroupsPath of {cgroups_path!r} was accepted: {out}"
    assert "cgroup" in out["create.err"], out
    assert "Traceback" not in out["create.err"], out
    state = workdir / "sandbox-state"
    assert not state.exists() or not list(state.iterdir()), "state left behind"


# --------------------------------------------------------------------------------------------
# A frozen cgroup
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(not FREEZER.is_dir(), reason="no v1 freezer hierarchy")
def test_frozen_cgroup_fails_create_promptly(ctr: Containers) -> None:
    """A pre-existing frozen cgroup: the init would freeze the moment it joined it (and a v1
    frozen process ignores even SIGKILL): create fails at once, and leaves nothing."""
    b = ctr.bundle(["sleep", "100"])
    frozen = FREEZER / b.linux["cgroupsPath"].lstrip("/")
    frozen.mkdir(parents=True)
    try:
        (frozen / "freezer.state").write_text("FROZEN")
        res = ctr.create(b, check=False, timeout=60).result
        assert res.returncode != 0, res.describe()
        assert "frozen" in res.stderr, res.describe()
        assert (frozen / "cgroup.procs").read_text() == "", "a process is stuck frozen"
        assert not (ctr.rt.root / b.id).exists(), "state dir left behind"
        assert not (b.path / "init.pid").exists()
        assert processes_using(b.path) == []
        assert [d for d in ctr.cgroup_dirs(b.id) if d != frozen] == [], "cgroups left behind"
    finally:
        (frozen / "freezer.state").write_text("THAWED")
        with contextlib.suppress(OSError):
            frozen.rmdir()

