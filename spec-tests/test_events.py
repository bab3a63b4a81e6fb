"""`events`: container statistics as JSON (runtime-cli-contract.md §2.11; go-runc `Stats` runs
`events --stats <id>`, `Events` runs `events --interval=Ns <id>`), compared with the v1 cgroup
files of the container."""

from __future__ import annotations

import json
import select
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from spec_support import Containers, kill_and_reap

CG = Path("/sys/fs/cgroup")
V1 = not (CG / "cgroup.controllers").exists()

pytestmark = pytest.mark.skipif(not V1, reason="host is not on cgroup v1")


def cg_read(ctr: Containers, cid: str, controller: str, name: str) -> int:
    path = CG / controller / ctr.res.cgroup_path(cid).lstrip("/") / name
    return int(path.read_text().split()[0])


def running(ctr: Containers) -> str:
    b = ctr.bundle(["sh", "-c", "sleep 100 & echo ready; wait"])
    b.linux["resources"] = {"memory": {"limit": 64 * 1024 * 1024}, "pids": {"limit": 50}}
    ctr.create(b)
    ctr.start(b.id)
    deadline = time.monotonic() + 10
    while cg_read(ctr, b.id, "pids", "pids.current") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    return b.id


def parse_event(line: str, cid: str) -> dict[str, Any]:
    ev = json.loads(line)
    assert ev.get("type") == "stats", ev
    assert ev.get("id") == cid, ev
    assert isinstance(ev.get("data"), dict), ev
    return ev["data"]


def test_events_stats_matches_cgroup_files(ctr: Containers) -> None:
    cid = running(ctr)
    res = ctr.rt("events", "--stats", cid)
    assert res.returncode == 0, res.describe()
    assert res.stderr == "", res.describe()
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON object:\n{res.describe()}"
    data = parse_event(lines[0], cid)
    # compact, as Go's json.Encoder writes it (scripts written for runc match on that)
    assert lines[0] == json.dumps(json.loads(lines[0]), separators=(",", ":")), lines[0]

    pids = data["pids"]
    assert pids["current"] == cg_read(ctr, cid, "pids", "pids.current") == 2
    assert pids["limit"] == 50

    mem = data["memory"]["usage"]
    assert mem["limit"] == 64 * 1024 * 1024
    now = cg_read(ctr, cid, "memory", "memory.usage_in_bytes")
    assert mem["usage"] > 0
    assert abs(mem["usage"] - now) <= max(1024 * 1024, now // 4), (mem, now)

    total = data["cpu"]["usage"]["total"]
    assert 0 < total <= cg_read(ctr, cid, "cpuacct", "cpuacct.usage"), data["cpu"]


def test_events_interval_streams(ctr: Containers) -> None:
    """`events --interval 1s` prints one stats object per line, repeatedly, until killed."""
    cid = running(ctr)
    proc = ctr.rt.popen("events", "--interval", "1s", cid,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    lines: list[str] = []
    buf = b""
    deadline = time.monotonic() + 10
    try:
        while len(lines) < 2 and time.monotonic() < deadline:
            r, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            chunk = proc.stdout.read1(65536)
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            lines.extend(line.decode() for line in done if line.strip())
        still_running = proc.poll() is None
    finally:
        kill_and_reap(proc)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert len(lines) >= 2, f"got {lines!r}; stderr {err!r}"
    assert still_running, f"events exited on its own; stderr {err!r}"
    for line in lines[:2]:
        assert parse_event(line, cid)["pids"]["current"] == 2


def test_events_on_stopped_container_fails(ctr: Containers) -> None:
    b = ctr.bundle(["true"])
    ctr.create(b)
    ctr.start(b.id)
    ctr.wait_stopped(b.id)
    res = ctr.rt("events", "--stats", b.id)
    assert res.returncode != 0, res.describe()
    assert "not running" in res.stderr, res.describe()
    assert res.stdout == "", res.describe()
    assert "Traceback" not in res.stderr
