"""Bad input on the command line: each gives one clear line on stderr ("ocirt: ..."), a non-zero
exit, and leaves nothing behind (no state dir, no cgroup, no process, no mount)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Bundles, make_rootfs, run

from ocirt.errors import InvalidIDError
from ocirt.state import validate_id

PARENT = "ocirt-test-bad-input"


def assert_one_line_error(res: subprocess.CompletedProcess[str], *needles: str,
                          code: int | None = None) -> None:
    assert res.returncode != 0, f"succeeded: {res.stdout!r}"
    if code is not None:
        assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert res.stderr.startswith("ocirt: ") and res.stderr.count("\n") == 1 \
        and res.stderr.endswith("\n"), f"not one line: {res.stderr!r}"
    for needle in needles:
        assert needle in res.stderr, res.stderr


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_rootfs(tmp_path_factory.mktemp("bad-input-rootfs"))


@pytest.fixture
def bundles(tmp_path: Path, rootfs: Path, root: Path) -> Iterator[Bundles]:
    b = Bundles(tmp_path, rootfs, PARENT)
    yield b
    for cid in os.listdir(root) if root.exists() else []:
        run(root, "delete", "--force", cid)
    left = b.leftovers(root)
    b.remove_cgroups()
    assert not left, "left behind:\n" + "\n".join(left)


@pytest.fixture
def running(bundles: Bundles, root: Path) -> Iterator[str]:
    """A started container, deleted at the end."""
    res = run(root, "create", "--bundle", str(bundles.make("live")), "live")
    assert res.returncode == 0, res.stderr
    res = run(root, "start", "live")
    assert res.returncode == 0, res.stderr
    yield "live"
    run(root, "delete", "--force", "live")


def assert_intact(root: Path, cid: str, status: str = "running") -> None:
    res = run(root, "state", cid)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["status"] == status


# -- container ids ----------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle, code", [
    (["state"], "container does not exist", 1),
    (["start"], "container does not exist", 1),
    (["delete"], "container does not exist", 1),
    (["kill"], "container does not exist", 1),
    (["pause"], "container does not exist", 1),
    (["resume"], "container does not exist", 1),
    (["ps"], "container does not exist", 1),
    (["update", "--pids-limit", "10"], "container does not exist", 1),
    (["events", "--stats"], "container does not exist", 1),
    (["exec"], "exec failed: container does not exist", 255),
])
def test_unknown_container(root: Path, args: list[str], needle: str, code: int) -> None:
    cmd = [*args, "nope"] + (["true"] if args == ["exec"] else [])
    assert_one_line_error(run(root, *cmd), needle, code=code)


BAD_IDS = ["a/b", "/abs", "..", ".", "../x", "a/../b", "a b", "a\nb", "é", "a:b", "x" * 256,
           "x" * 1000, "x" * 2000]


@pytest.mark.parametrize("cid", BAD_IDS, ids=lambda c: repr(c)[:20])
@pytest.mark.parametrize("command", ["create", "state", "start", "kill", "delete", "exec"])
def test_bad_id_is_refused(bundles: Bundles, root: Path, tmp_path: Path, command: str,
                           cid: str) -> None:
    args = {"create": ["create", "--bundle", str(bundles.make("bad"))], "exec": ["exec"]}.get(
        command, [command])
    res = run(root, *args, cid, *(["true"] if command == "exec" else []))
    assert_one_line_error(res, "invalid container ID format", code=255 if command == "exec" else 1)
    assert not root.exists() or os.listdir(root) == []
    assert not (tmp_path / "x").exists() and not os.path.exists("/abs")


@pytest.mark.parametrize("cid", ["a\x00b", "\x00", "a/b", "..", "x" * 256, "x" * 2000])
def test_validate_id_refuses(cid: str) -> None:
    with pytest.raises(InvalidIDError, match="invalid container ID format"):
        validate_id(cid)


def test_longest_id_works_end_to_end(bundles: Bundles, root: Path) -> None:
    """Ids name a directory: up to NAME_MAX (255) characters work; longer ones are refused."""
    cid = "L" * 255
    bundle = bundles.make(cid)
    assert run(root, "create", "--bundle", str(bundle), cid).returncode == 0
    assert_intact(root, cid, "created")
    assert run(root, "start", cid).returncode == 0
    assert_intact(root, cid, "running")
    assert cid in run(root, "list", "-q").stdout.split()
    assert run(root, "kill", cid, "KILL").returncode == 0
    res = run(root, "delete", "--force", cid)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    for cid in ("L" * 1000, "L" * 2000):
        assert_one_line_error(run(root, "create", "--bundle", str(bundle), cid),
                              "invalid container ID format")


# -- flags naming files -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["regular file", "missing", "directory"])
def test_console_socket_that_is_not_a_socket(bundles: Bundles, root: Path, tmp_path: Path,
                                             kind: str) -> None:
    path = tmp_path / "console.sock"
    if kind == "regular file":
        path.write_text("")
    elif kind == "directory":
        path.mkdir()
    res = run(root, "create", "--bundle", str(bundles.make("tty", terminal=True)),
              "--console-socket", str(path), "tty")
    assert_one_line_error(res, "console socket")
    assert bundles.leftovers(root) == []


def test_pid_file_in_a_missing_directory(bundles: Bundles, root: Path, tmp_path: Path) -> None:
    res = run(root, "create", "--bundle", str(bundles.make("pf")), "--pid-file",
              str(tmp_path / "missing" / "pid"), "pf")
    assert_one_line_error(res, "missing")
    assert bundles.leftovers(root) == []
    assert not (tmp_path / "missing").exists()


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory under a read-only bind mount of itself."""
    path = tmp_path / "ro"
    path.mkdir()
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_unwritable_root_under_a_readonly_mount(bundles: Bundles, readonly_dir: Path) -> None:
    root = readonly_dir / "state"
    bundle = bundles.make("ro")
    assert_one_line_error(run(root, "create", "--bundle", str(bundle), "ro"),
                          "read-only file system")
    assert_one_line_error(run(root, "state", "ro"), "container does not exist")
    res = run(root, "delete", "--force", "ro")
    assert res.returncode == 0, res.stderr
    assert run(root, "list", "-q").stdout == ""
    assert not root.exists()
    assert [line for line in bundles.leftovers(root) if not line.startswith("mount")] == []


def test_root_whose_parent_is_a_file(bundles: Bundles, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    root = tmp_path / "file" / "state"
    assert_one_line_error(run(root, "create", "--bundle", str(bundles.make("nf")), "nf"),
                          "not a directory")
    assert_one_line_error(run(root, "state", "nf"), "container does not exist")
    assert run(root, "delete", "--force", "nf").returncode == 0
    listed = run(root, "list", "-q")
    assert listed.stdout == ""
    if listed.returncode:
        assert_one_line_error(listed, str(root))
    assert bundles.leftovers(tmp_path / "nowhere") == []


# -- update, exec, kill on a live container ----------------------------------------------------

MALFORMED_RESOURCES = [b"{", b"[]", b"null", b'"x"', b"\xff\xfe", b'{"memory": [1]}',
                       b'{"memory": {"limit": "x"}}', b'{"pids": {"limit": "x"}}',
                       b'{"pids": 5}', b'{"cpu": {"shares": {}}}', b'{"devices": [7]}',
                       b'{"memory": {"limit": "x", "checkBeforeUpdate": true}}',
                       b'{"memory": {"limit": 1e999}}', b'{"unified": {"a\\u0000": "1"}}',
                       b'{"hugepageLimits": [{"limit": 1}]}', b'{"blockIO": {"weight": -5}}']


@pytest.mark.parametrize("data", MALFORMED_RESOURCES, ids=lambda d: d.decode(errors="replace"))
@pytest.mark.parametrize("via", ["file", "stdin"])
def test_update_with_malformed_resources(running: str, root: Path, tmp_path: Path,
                                         via: str, data: bytes) -> None:
    if via == "file":
        (tmp_path / "resources.json").write_bytes(data)
        res = run(root, "update", "--resources", str(tmp_path / "resources.json"), running)
    else:
        res = run(root, "update", "--resources", "-", running, stdin=data)
    assert_one_line_error(res)
    assert_intact(root, running)


@pytest.mark.parametrize("data, message", [
    (b'{"memory": {"limit": "1g"}}', "resources: /memory/limit: must be an integer"),
    (b'{"blockIO": {"weight": 5}}', "resources: /blockIO/weight: must be 0 or between 10 and 1000"),
    (b"\xff\xfe", "decode resources: not UTF-8 (byte 0)"),
])
def test_update_says_what_is_wrong(running: str, root: Path, data: bytes, message: str) -> None:
    """The resources are checked as create checks linux.resources, in the same words."""
    res = run(root, "update", "--resources", "-", running, stdin=data)
    assert res.returncode == 1 and res.stderr == f"ocirt: {message}\n"
    assert_intact(root, running)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_update_with_unreadable_resources_file(running: str, root: Path, tmp_path: Path,
                                               kind: str) -> None:
    path = tmp_path / "res"
    if kind == "directory":
        path.mkdir()
    assert_one_line_error(run(root, "update", "--resources", str(path), running), str(path))
    assert_intact(root, running)


MALFORMED_PROCESSES = [None, b"", b"{", b"[]", b"null", b"\xff", b'{"args": "sh"}',
                       b'{"args": [], "cwd": "/"}', b'{"args": ["true"]}',
                       b'{"args": ["true"], "cwd": "relative"}',
                       b'{"args": ["a\\u0000"], "cwd": "/"}',
                       b'{"args": ["true"], "cwd": "/", "user": {"uid": -1, "gid": 0}}',
                       b'{"args": ["true"], "cwd": "/", "rlimits": [{"type": "X"}]}',
                       b'{"args": ["/nonexistent"], "cwd": "/"}']


@pytest.mark.parametrize("data", MALFORMED_PROCESSES,
                         ids=lambda d: "missing" if d is None else d.decode(errors="replace"))
def test_exec_with_a_bad_process_file(running: str, root: Path, tmp_path: Path,
                                      data: bytes | None) -> None:
    path = tmp_path / "process.json"
    if data is not None:
        path.write_bytes(data)
    res = run(root, "exec", "--process", str(path), running)
    assert_one_line_error(res, "exec failed", code=255)
    assert_intact(root, running)


@pytest.mark.parametrize("sig", ["NOSIG", "65", "-1", "-9", "", "SIG", "²", "RTMIN+99",
                                 "RTMAX+1", "RTMIN+", "9x", "1e3", " 9"])
def test_kill_with_a_bad_signal(running: str, root: Path, sig: str) -> None:
    assert_one_line_error(run(root, "kill", running, sig), "signal")
    assert_intact(root, running)
