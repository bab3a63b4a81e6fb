"""A create killed half-way (SIGKILL while a createRuntime hook runs) leaves a container in
"creating" that `delete --force` removes entirely: state dir, cgroups, processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import OCIRT, REPO, ocirt


def _wait_for(path: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    return path.read_text().strip()


def test_delete_force_cleans_up_after_a_killed_create(tmp_path: Path, root: Path) -> None:
    subprocess.run([str(REPO / "bundles" / "mkrootfs"), str(tmp_path / "rootfs")], check=True,
                   capture_output=True)
    config = json.loads((REPO / "bundles" / "busybox" / "config.json").read_text())
    config["linux"]["cgroupsPath"] = f"/ocirt-test-interrupted/{tmp_path.name}"
    hook_pid = tmp_path / "hook.pid"
    config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": [
        "sh", "-c", f"echo $$ > {hook_pid}; exec sleep 30"]}]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    create = subprocess.Popen([str(OCIRT), "--root", str(root), "create", "--bundle",
                               str(tmp_path), "cut"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hook = int(_wait_for(hook_pid))
    create.send_signal(signal.SIGKILL)
    create.wait()
    os.kill(hook, signal.SIGKILL)
    state = json.loads(ocirt(root, "state", "cut").stdout)
    assert state["status"] == "creating" and state["pid"] == 0
    cgroups = [Path(p) for p in json.loads((root / "cut" / "state.json").read_text())
               ["cgroup_paths"].values()]
    assert any(p.exists() for p in cgroups)
    res = ocirt(root, "delete", "--force", "cut")
    assert res.returncode == 0, res.stderr
    assert not (root / "cut").exists()
    assert not any(p.exists() for p in cgroups)
    assert ocirt(root, "list", "-q").stdout == ""
