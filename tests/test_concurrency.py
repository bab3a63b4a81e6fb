"""Commands racing each other: many creates at once, creates of one id, and kill, delete and
state of one container at the same time. No traceback, no corrupt state, one winner, nothing
left behind."""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support import Bundles, make_rootfs, run

PARENT = "ocirt-test-concurrency"
WORKERS = 16


def assert_clean_failure(res: subprocess.CompletedProcess[str], *allowed: str) -> None:
    """A failure is one line, "ocirt: " and one of the ``allowed`` messages."""
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    assert res.returncode != 0
    assert res.stderr.startswith("ocirt: ") and res.stderr.count("\n") == 1, repr(res.stderr)
    assert any(a in res.stderr for a in allowed), res.stderr


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_rootfs(tmp_path_factory.mktemp("concurrency-rootfs"))


@pytest.fixture
def bundles(tmp_path: Path, rootfs: Path, root: Path) -> Iterator[Bundles]:
    b = Bundles(tmp_path, rootfs, PARENT)
    yield b
    ids = os.listdir(root) if root.exists() else []
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda cid: run(root, "delete", "--force", cid), ids))
    left = b.leftovers(root)
    b.remove_cgroups()
    assert not left, "left behind:\n" + "\n".join(left)


def test_100_parallel_creates(bundles: Bundles, root: Path) -> None:
    ids = [f"par{i}" for i in range(100)]
    paths = {cid: bundles.make(cid) for cid in ids}
    with ThreadPoolExecutor(WORKERS) as pool:
        created = list(pool.map(lambda c: run(root, "create", "--bundle", str(paths[c]), c), ids))
        assert [(r.returncode, r.stderr) for r in created] == [(0, "")] * len(ids)
        assert sorted(run(root, "list", "-q").stdout.split()) == sorted(ids)
        started = list(pool.map(lambda c: run(root, "start", c), ids))
        assert [(r.returncode, r.stderr) for r in started] == [(0, "")] * len(ids)
        states = list(pool.map(lambda c: run(root, "state", c), ids))
        assert {json.loads(r.stdout)["status"] for r in states} == {"running"}
        assert len({json.loads(r.stdout)["pid"] for r in states}) == len(ids)
        deleted = list(pool.map(lambda c: run(root, "delete", "--force", c), ids))
        assert [(r.returncode, r.stderr) for r in deleted] == [(0, "")] * len(ids)
    assert run(root, "list", "-q").stdout == ""
    assert bundles.leftovers(root) == []


def test_20_parallel_creates_of_one_id(bundles: Bundles, root: Path) -> None:
    bundle = bundles.make("same")
    barrier = threading.Barrier(20)

    def create(_: int) -> subprocess.CompletedProcess[str]:
        barrier.wait()
        return run(root, "create", "--bundle", str(bundle), "same")

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(create, range(20)))
    winners = [r for r in results if r.returncode == 0]
    assert len(winners) == 1, [r.stderr for r in results]
    for r in results:
        if r.returncode:
            assert_clean_failure(r, "container with id exists: same")
    state = json.loads(run(root, "state", "same").stdout)
    assert state["status"] == "created" and state["bundle"] == str(bundle)
    assert os.path.exists(f"/proc/{state['pid']}")
    recorded = json.loads((root / "same" / "state.json").read_text())
    assert recorded["pid"] == state["pid"] and recorded["start_time"] > 0
    assert sorted(os.listdir(root / "same")) == ["exec.fifo", "init.err", "state.json"]
    assert run(root, "start", "same").returncode == 0
    assert json.loads(run(root, "state", "same").stdout)["status"] == "running"
    assert run(root, "delete", "--force", "same").returncode == 0
    assert bundles.leftovers(root) == []


GONE = "container does not exist"


def _check_state(res: subprocess.CompletedProcess[str]) -> None:
    """`state` output is always a whole, valid state or "does not exist"."""
    if res.returncode == 0:
        state = json.loads(res.stdout)
        assert state["id"] == "race" and state["status"] in ("created", "running", "stopped")
        assert res.stderr == ""
    else:
        assert_clean_failure(res, GONE)


@pytest.mark.parametrize("round_", range(3))
def test_parallel_kill_delete_state(bundles: Bundles, root: Path, round_: int) -> None:
    bundle = bundles.make(f"race{round_}")
    assert run(root, "create", "--bundle", str(bundle), "race").returncode == 0
    assert run(root, "start", "race").returncode == 0
    rng = random.Random(round_)
    ops = [rng.choice(["state", "state", "kill", "kill-all", "delete", "delete-force"])
           for _ in range(60)]
    ops[rng.randrange(20, 60)] = "delete-force"  # at least one that must end it

    def act(op: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        args = {"state": ["state", "race"], "kill": ["kill", "race", "KILL"],
                "kill-all": ["kill", "--all", "race", "TERM"], "delete": ["delete", "race"],
                "delete-force": ["delete", "--force", "race"]}[op]
        return op, run(root, *args)

    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(act, ops))
    for op, res in results:
        assert "Traceback" not in res.stderr + res.stdout, (op, res.stderr)
        if op == "state":
            _check_state(res)
        elif op == "delete-force":
            assert res.returncode == 0 and res.stderr == "", res.stderr
        elif res.returncode:
            assert_clean_failure(res, GONE, "container not running", "cannot delete",
                                 "container is not running", "process already finished")
    assert_clean_failure(run(root, "state", "race"), GONE)
    assert bundles.leftovers(root) == []


def test_create_racing_state_and_delete(bundles: Bundles, root: Path) -> None:
    """state and delete --force while the create of the same id is in progress: each sees a
    whole container or none, and in the end nothing is left."""
    bundle = bundles.make("early")
    for _ in range(5):
        def act(op: str) -> tuple[str, subprocess.CompletedProcess[str]]:
            if op == "create":
                return op, run(root, "create", "--bundle", str(bundle), "race")
            if op == "delete":
                return op, run(root, "delete", "--force", "race")
            return op, run(root, "state", "race")

        ops = ["create"] + ["state"] * 6 + ["delete"] * 3
        with ThreadPoolExecutor(len(ops)) as pool:
            results = list(pool.map(act, ops))
        for op, res in results:
            if op == "state":
                if res.returncode == 0:
                    assert json.loads(res.stdout)["status"] in ("creating", "created", "stopped")
                else:
                    assert_clean_failure(res, GONE)
            elif op == "create" and res.returncode:
                assert_clean_failure(res, GONE, "exec fifo", "container init exited")
            else:
                assert "Traceback" not in res.stderr and res.returncode == 0, res.stderr
        assert run(root, "delete", "--force", "race").returncode == 0
        assert bundles.leftovers(root) == []
