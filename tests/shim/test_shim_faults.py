"""ocish under faults, for real, with ocirt and with runc as the runtime: ocish killed at each
step of ``run``, a full disk under the container's log, 50 parallel ``run -d``. Afterwards
``ps -a`` tells the truth, ``rm -f`` cleans up, and nothing is left (container_support's
assert_nothing_left: no row, dir, mount, monitor, runtime state or cgroup).

(The monitor and the init killed with SIGKILL are in test_shim_containers.py.)"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
from container_support import CGROUP_PARENT, Ocish, assert_nothing_left, wait_for
from shim_support import OCISH, Images, one_line_error, run

pytest_plugins = ["shim_fixtures", "container_fixtures"]

# a runtime that stops at one of its commands until the test lets it go on: it records its
# pid in REACHED and waits for GO, then runs the real runtime (so ocish can be killed while it
# waits for exactly that step)
GATE = """#!/bin/sh
for a in "$@"; do
  if [ "$a" = "{step}" ]; then
    echo $$ > {dir}/reached.tmp && mv {dir}/reached.tmp {dir}/reached
    while [ ! -e {dir}/go ]; do sleep 0.05; done
    break
  fi
done
exec {real} "$@"
"""


def _gated(tmp: Path, real: str, step: str) -> str:
    """A runtime named as *real* (so ocish keeps its state in the same place) gated at
    *step*."""
    path = tmp / "gate" / os.path.basename(real)
    path.parent.mkdir()
    path.write_text(GATE.format(step=step, dir=tmp, real=real))
    path.chmod(0o755)
    return str(path)


def _runtime_state(oc: Ocish, cid: str) -> str:
    """What the runtime itself says of the container ("absent" if it has no state)."""
    rt_root = oc.root / "runtime" / os.path.basename(oc.runtime)
    res = subprocess.run([oc.runtime, "--root", str(rt_root), "state", cid],
                         capture_output=True, text=True, timeout=60)
    return json.loads(res.stdout)["status"] if res.returncode == 0 else "absent"


@pytest.mark.parametrize("step", ["create", "start", "running"])
def test_ocish_killed_at_each_step(oc: Ocish, tmp_path: Path, step: str) -> None:
    """ocish SIGKILLed while the runtime's ``create`` runs (the bundle written, the monitor
    started), while its ``start`` runs (the container created), and once the container runs:
    ``ps -a`` says what the runtime says, and ``rm -f`` leaves nothing."""
    oc("pull", "--tls-verify=false", oc.image)
    gated = copy.copy(oc)
    if step != "running":
        gated.runtime = _gated(tmp_path, oc.runtime, step)
    proc = subprocess.Popen([*gated.argv(), "run", "--cgroup-parent", CGROUP_PARENT, "--name",
                             "cut", oc.image, "sleep", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if step == "running":
            wait_for(lambda: " Up " in oc("ps").stdout, "running container")
        else:
            wait_for(lambda: (tmp_path / "reached").exists() or proc.poll() is not None,
                     f"the runtime's {step}")
            assert proc.poll() is None, "ocish ended before the step"
    finally:
        proc.kill()
        proc.wait()
    # the runtime's command goes on without the ocish that started it
    (tmp_path / "go").touch()
    cid = oc("ps", "-a", "-q", "--no-trunc").stdout.strip()
    assert len(cid) == 64
    if step != "running":
        wait_for(lambda: not Path(f"/proc/{(tmp_path / 'reached').read_text().strip()}")
                 .exists(), "the end of the gated runtime command")
    # what ps says and what the runtime says agree (asked again while the monitor or the
    # runtime command cut loose may still be changing things: a lie that lasts fails)
    seen: list[tuple[str, str]] = []

    def agree() -> bool:
        line = oc("ps", "-a").stdout.splitlines()[1]
        actual = _runtime_state(gated, cid)
        seen.append((line, actual))
        assert line.endswith(" cut"), line
        if " Up " in line:
            return actual == "running"
        if " Created " in line:  # created, or a create not (yet, or ever) complete
            return actual in ("created", "absent")
        return " Exited (" in line and actual in ("stopped", "absent")

    try:
        wait_for(agree, "ps -a agreeing with the runtime", 30)
    except AssertionError:
        raise AssertionError(f"ps -a and the runtime disagree: {seen[-3:]}") from None
    if step == "running":
        assert " Up " in seen[-1][0]  # the container outlives the ocish run that started it
    gated("rm", "-f", "cut")
    assert_nothing_left(oc.root)


def _umount(path: Path) -> None:
    if os.path.ismount(path):
        run("umount", path)


def test_full_disk_for_logs(ocish_root: Path, runtime: str, images: Images) -> None:
    """The containers' dirs (their logs, exit files, bundles) on a small tmpfs of this test's
    own, filled by a container's log: the container goes on, ``ps``, ``logs``, ``stop`` and
    ``rm -f`` work, a second container fails cleanly or runs, and nothing is left."""
    oc = Ocish(ocish_root, runtime, images)
    oc("pull", "--tls-verify=false", oc.image)
    ctrs = ocish_root / "containers"
    ctrs.mkdir(exist_ok=True)
    run("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "ocish-test-full", ctrs)
    try:
        oc.run("-d", "--name", "chatty", "IMAGE", "sh", "-c",
               "while true; do echo 0123456789abcdef0123456789abcdef0123456789; done")
        wait_for(lambda: os.statvfs(ctrs).f_bavail == 0, "a full disk")
        assert " Up " in oc("ps", "-a").stdout.splitlines()[1]
        assert oc("logs", "--tail", "1", "chatty").stdout.startswith("0123456789")
        res = oc.run("-d", "--name", "second", "IMAGE", "true", check=False)
        if res.returncode != 0:  # no room for a second container: refused cleanly
            assert res.returncode == 125
            one_line_error(res)
            assert len(oc("ps", "-a", "-q").stdout.split()) == 1
        oc("stop", "-t", "1", "chatty")
        assert any(" Exited (" in line and line.endswith(" chatty")
                   for line in oc("ps", "-a").stdout.splitlines())
        oc("rm", "-f", *oc("ps", "-a", "-q").stdout.split())
        assert [p for p in os.listdir(ctrs) if not p.endswith(".lock")] == []
    finally:
        for cid in oc("ps", "-a", "-q", check=False).stdout.split():
            oc("rm", "-f", cid, check=False)
        _umount(ctrs)
    assert_nothing_left(ocish_root)


N_PARALLEL = 50


def _parallel_runs(oc: Ocish, names: list[str]) -> list[tuple[int, str, str]]:
    """``run -d`` of ``sleep`` once for each of *names*, all at once: (status, out, err)."""
    oc("pull", "--tls-verify=false", oc.image)
    procs = [subprocess.Popen([*oc.argv(), "run", "-d", "--cgroup-parent", CGROUP_PARENT,
                               "--name", name, oc.image, "sleep", "1000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in names]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        out.append((p.returncode, stdout, stderr))
    return out


def test_parallel_runs_same_name(oc: Ocish) -> None:
    """Exactly one wins; each other says the name is in use, in one line, with 125, and
    leaves nothing."""
    results = _parallel_runs(oc, ["same"] * N_PARALLEL)
    won = [r for r in results if r[0] == 0]
    assert len(won) == 1, [r for r in results if r[0] != 0][:3]
    for code, _, err in results:
        if code != 0:
            assert code == 125, err
            assert err.count("\n") == 1 and err.startswith("ocish: ") and \
                'The container name "/same" is already in use' in err, err
    assert oc("ps", "-a", "-q", "--no-trunc").stdout.split() == [won[0][1].strip()]
    assert " Up " in oc("ps").stdout
    oc("rm", "-f", "same")
    assert_nothing_left(oc.root)


def test_parallel_runs_different_names(oc: Ocish) -> None:
    names = [f"par{i}" for i in range(N_PARALLEL)]
    results = _parallel_runs(oc, names)
    assert [r for r in results if r[0] != 0] == []
    ids = sorted(r[1].strip() for r in results)
    assert sorted(oc("ps", "-q", "--no-trunc").stdout.split()) == ids
    assert sorted(line.split()[-1] for line in oc("ps", "-a").stdout.splitlines()[1:]) == \
        sorted(names)
    oc("rm", "-f", *names)
    assert_nothing_left(oc.root)


def test_exit_command_is_the_running_launcher(oc: Ocish) -> None:
    """The monitor's exit command is the ocish that ran (the installed launcher when the tests
    run it), so ``--rm`` and the status records work from where ocish is installed."""
    cid = oc.run("-d", "--name", "watched", "IMAGE", "sleep", "1000").stdout.strip()
    monitor = int((oc.root / "containers" / cid / "conmon.pid").read_text())
    argv = Path(f"/proc/{monitor}/cmdline").read_bytes().decode().split("\0")
    exit_cmd = argv[argv.index("--exit-command") + 1]
    assert exit_cmd == str(OCISH)
    assert os.access(exit_cmd, os.X_OK)
    oc("rm", "-f", "watched")
    assert_nothing_left(oc.root)


def test_exit_command_of_python_m_shim(oc: Ocish) -> None:
    """ocish run as ``python -m shim`` (no launcher): the monitor's exit command runs the
    module with the same interpreter, so a detached ``--rm`` container still removes itself."""
    python = OCISH.parent.parent / "lib" / "ocirt" / "bin" / "python3"
    python = python if python.exists() else OCISH.parent / "python"
    oc("pull", "--tls-verify=false", oc.image)
    res = subprocess.run([str(python), "-m", "shim", *oc.argv()[1:], "run", "-d", "--rm",
                          "--cgroup-parent", CGROUP_PARENT, oc.image, "true"],
                         capture_output=True, text=True, timeout=120, cwd="/")
    assert res.returncode == 0, res.stderr
    wait_for(lambda: oc("ps", "-a", "-q").stdout == "", "removal by the exit command")
    assert_nothing_left(oc.root)
