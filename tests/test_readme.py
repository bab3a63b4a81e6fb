"""The README's walk-through ("Using ocirt by hand") works as written: every command in its
code block runs, in order, and exits 0 (with a private --root), and what its comments promise
is what a user sees."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import OCIRT, REPO


def walkthrough() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"^## Using ocirt by hand\n+```sh\n(.*?)^```", text, re.M | re.S)
    assert block, "the README has no walk-through"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()
            if line.split("#", 1)[0].strip()]


def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    root = tmp_path / "state"
    outputs: dict[str, str] = {}
    try:
        for line in walkthrough():
            argv = shlex.split(line)
            if argv[0] == "ocirt":
                argv = [str(OCIRT), "--root", str(root), *argv[1:]]
            if argv[-1] == "c1" and argv[-2] == "state" and "start" in outputs:
                _wait_stopped(root)  # "stopped once it has exited"
            # files, not pipes: a created container's init holds the caller's stdio
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                rc = subprocess.run(argv, cwd=REPO, stdout=out, stderr=err, timeout=60,
                                    stdin=subprocess.DEVNULL).returncode
                out.seek(0)
                err.seek(0)
                res = subprocess.CompletedProcess(argv, rc, out.read().decode(),
                                                  err.read().decode())
            assert res.returncode == 0, (line, res.stdout, res.stderr)
            outputs[" ".join(shlex.split(line)[1:3])] = res.stdout
            if "state" in argv and "c1" in argv:
                outputs.setdefault("states", "")
                outputs["states"] += json.loads(res.stdout)["status"] + " "
    finally:
        for cid in ("c1", "c2", "demo"):
            subprocess.run([str(OCIRT), "--root", str(root), "delete", "--force", cid],
                           capture_output=True, timeout=60)
    assert outputs["run -b"] == "hello from ocirt\n"
    assert outputs["states"] == "created stopped "
    assert outputs["exec c2"] == "sleeper\n"


def _wait_stopped(root: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        res = subprocess.run([str(OCIRT), "--root", str(root), "state", "c1"],
                             capture_output=True, text=True, timeout=60)
        if json.loads(res.stdout)["status"] == "stopped":
            return
        time.sleep(0.05)
