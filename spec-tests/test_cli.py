"""Command-line surface: --version, list, spec, features, and the --log/--log-format json file."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from spec_support import Containers, Runtime, is_rfc3339


def test_version(rt: Runtime) -> None:
    res = rt("--version").check()
    lines = res.stdout.splitlines()
    assert lines, "no output from --version"
    assert re.match(rf"^{re.escape(rt.name)} version \S+", lines[0]), lines[0]
    assert any(re.match(r"^spec: \d+\.\d+\.\d+", line) for line in lines), res.stdout
    assert res.stderr == ""


def test_list_table(ctr: Containers, rt: Runtime) -> None:
    b = ctr.bundle(["sleep", "100"])
    created = ctr.create(b)
    res = rt("list").check()
    lines = res.stdout.splitlines()
    assert re.split(r"\s+", lines[0].strip()) == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = [re.split(r"\s+", line.strip()) for line in lines[1:] if line.strip()]
    mine = [r for r in rows if r[0] == b.id]
    assert len(mine) == 1, res.stdout
    assert mine[0][1] == str(created.pid)
    assert mine[0][2] == "created"
    assert mine[0][3] == str(b.path)


def test_list_json_and_quiet(ctr: Containers, rt: Runtime) -> None:
    b1 = ctr.bundle(["sleep", "100"])
    b2 = ctr.bundle(["sleep", "100"])
    c1 = ctr.create(b1)
    ctr.create(b2)
    ctr.start(b2.id)

    res = rt("list", "--format", "json").check()
    entries = json.loads(res.stdout)
    # one compact line, as Go's json.Encoder writes it
    assert res.stdout == json.dumps(entries, separators=(",", ":")) + "\n", res.stdout
    assert isinstance(entries, list)
    by_id = {e["id"]: e for e in entries}
    assert by_id[b1.id]["status"] == "created"
    assert by_id[b1.id]["pid"] == c1.pid
    assert by_id[b1.id]["bundle"] == str(b1.path)
    assert by_id[b2.id]["status"] == "running"

    quiet = rt("list", "-q").check()
    ids = quiet.stdout.split()
    assert b1.id in ids and b2.id in ids
    assert all(" " not in line for line in quiet.stdout.splitlines())


def test_list_json_empty_root(rt: Runtime, workdir: Path) -> None:
    """An empty state directory lists as an empty JSON array (or null, as runc prints)."""
    empty = workdir / "emptyroot"
    empty.mkdir()
    res = Runtime(rt.path, empty, rt.name)("list", "--format", "json").check()
    assert json.loads(res.stdout) in ([], None)


def test_spec_writes_config(rt: Runtime, workdir: Path) -> None:
    res = rt("spec", "--bundle", str(workdir)).check()
    assert res.stderr == ""
    cfg = json.loads((workdir / "config.json").read_text())
    assert re.match(r"^\d+\.\d+\.\d+", cfg["ociVersion"])
    assert cfg["process"]["args"]
    assert cfg["root"]["path"]
    types = {ns["type"] for ns in cfg["linux"]["namespaces"]}
    assert {"pid", "mount"} <= types


def test_spec_refuses_to_overwrite(rt: Runtime, workdir: Path) -> None:
    cfg = workdir / "config.json"
    cfg.write_text('{"keep": "me"}')
    res = rt("spec", "--bundle", str(workdir))
    assert res.returncode != 0
    assert res.error_lines(), "no error message"
    assert cfg.read_text() == '{"keep": "me"}'


def test_spec_rootless(rt: Runtime, workdir: Path) -> None:
    rt("spec", "--rootless", "--bundle", str(workdir)).check()
    cfg = json.loads((workdir / "config.json").read_text())
    types = {ns["type"] for ns in cfg["linux"]["namespaces"]}
    assert "user" in types
    assert cfg["linux"]["uidMappings"] and cfg["linux"]["gidMappings"]
    assert rt("spec", "--rootless", "--bundle", str(workdir)).returncode != 0


def test_features(rt: Runtime) -> None:
    """features.md: one JSON object; ociVersionMin/Max are REQUIRED, the rest optional."""
    res = rt("features").check()
    feats = json.loads(res.stdout)
    assert re.match(r"^\d+\.\d+\.\d+", feats["ociVersionMin"])
    assert re.match(r"^\d+\.\d+\.\d+", feats["ociVersionMax"])
    namespaces = set(feats["linux"]["namespaces"])
    assert {"pid", "network", "ipc", "uts", "mount"} <= namespaces
    known_hooks = {"prestart", "createRuntime", "createContainer", "startContainer",
                   "poststart", "poststop"}
    assert set(feats.get("hooks", [])) <= known_hooks
    assert all(c.startswith("CAP_") for c in feats["linux"].get("capabilities", []))
    assert res.stderr == ""


def _log_entries(path: Path) -> list[dict]:
    entries = []
    for line in path.read_text().splitlines():
        if line.strip():
            entries.append(json.loads(line))  # every line must be one JSON object
    return entries


def test_log_json_on_error(rt: Runtime, workdir: Path) -> None:
    """A failing command writes a JSON error line with an RFC 3339 time and also prints it."""
    log = workdir / "log.json"
    res = rt("state", "no-such-container", global_args=["--log", str(log), "--log-format", "json"])
    assert res.returncode != 0
    assert "does not exist" in res.stderr
    entries = _log_entries(log)
    errors = [e for e in entries if e.get("level") == "error"]
    assert errors, entries
    last = errors[-1]
    assert "does not exist" in last["msg"]
    assert is_rfc3339(last["time"]), last["time"]
    assert datetime.fromisoformat(last["time"].replace("Z", "+00:00")).tzinfo is not None


def test_log_that_cannot_be_opened_is_an_error(rt: Runtime, workdir: Path) -> None:
    """--log naming a file that cannot be created fails the command (exit 1, one line naming
    the file), as runc does; --version still answers."""
    log = workdir / "no-such-dir" / "log.json"
    res = rt("list", global_args=["--log", str(log)])
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and str(log) in res.stderr, res.describe()
    assert "no such file or directory" in res.stderr
    assert rt("--version", global_args=["--log", str(log)]).returncode == 0


def test_debug_logs_the_steps(ctr: Containers, workdir: Path) -> None:
    """--debug writes debug entries to --log for create, start and exec, as runc does (and
    nothing to their stdout)."""
    log = workdir / "debug.json"
    flags = ["--debug", "--log", str(log), "--log-format", "json"]
    b = ctr.bundle(["sleep", "100"])
    counts = []
    ctr.create(b, global_args=flags)
    counts.append(len(_log_entries(log)))
    ctr.rt("start", b.id, global_args=flags).check()
    counts.append(len(_log_entries(log)))
    res = ctr.rt("exec", b.id, "true", global_args=flags).check()
    assert res.stdout == ""
    entries = _log_entries(log)
    counts.append(len(entries))
    assert counts[0] > 0 and counts[2] > counts[1], counts
    assert {e["level"] for e in entries} == {"debug"}, entries


def test_log_appends(rt: Runtime, workdir: Path) -> None:
    log = workdir / "log.json"
    log.write_text('{"level":"info","msg":"pre-existing","time":"2024-01-01T00:00:00Z"}\n')
    for name in ("first-missing", "second-missing"):
        res = rt("kill", name, "9", global_args=["--log=" + str(log), "--log-format=json"])
        assert res.returncode != 0
    entries = _log_entries(log)
    assert entries[0]["msg"] == "pre-existing"
    errors = [e for e in entries if e.get("level") == "error"]
    assert len(errors) >= 2, entries


def test_log_quiet_on_success(ctr: Containers, workdir: Path) -> None:
    """A successful create/start/delete prints nothing on stderr (stderr is the container's)."""
    log = workdir / "log.json"
    glob = ["--log", str(log), "--log-format", "json"]
    b = ctr.bundle(["true"])
    created = ctr.create(b, global_args=glob)
    assert created.result.stderr == "" and created.result.stdout == ""
    start = ctr.rt("start", b.id, global_args=glob).check()
    assert start.stderr == "" and start.stdout == ""
    ctr.wait_stopped(b.id)
    delete = ctr.rt("delete", b.id, global_args=glob).check()
    assert delete.stderr == "" and delete.stdout == ""
    if log.exists():
        for entry in _log_entries(log):
            assert entry.get("level") != "error", entry


def test_log_format_text_is_default(rt: Runtime, workdir: Path) -> None:
    log = workdir / "log.txt"
    res = rt("state", "no-such-container", global_args=["--log", str(log)])
    assert res.returncode != 0
    assert "does not exist" in log.read_text()


def test_bad_log_format_rejected(rt: Runtime, workdir: Path) -> None:
    res = rt("list", global_args=["--log-format", "yaml"])
    assert res.returncode != 0
