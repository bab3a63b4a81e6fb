"""Small pure pieces: signal names, container ids, the state root, spec parsing, mount options,
the channel's error path."""

from __future__ import annotations

import json
import os

import pytest

from ocirt import spec, state
from ocirt.errors import ConfigError, InvalidIDError, UsageError
from ocirt.linux import signals
from ocirt.linux import syscalls as sc
from ocirt.linux.mounts import Options


@pytest.mark.parametrize("text, number", [
    ("9", 9), ("KILL", 9), ("SIGKILL", 9), ("sigkill", 9), ("term", 15), ("SIGRTMIN", 34),
    ("RTMIN+2", 36), ("SIGRTMAX-1", 63), ("WINCH", 28), ("0", 0),
])
def test_signal_names(text: str, number: int) -> None:
    assert signals.parse(text) == number


@pytest.mark.parametrize("text", ["65", "NOPE", "RTMIN-1", "RTMAX+1", ""])
def test_bad_signals(text: str) -> None:
    with pytest.raises(UsageError):
        signals.parse(text)


@pytest.mark.parametrize("cid", ["c1", "a.b-c_d+e", "X" * 100])
def test_valid_ids(cid: str) -> None:
    assert state.validate_id(cid) == cid


@pytest.mark.parametrize("cid", ["", ".", "..", "../x", "a/b", "a b", "a\nb", "é"])
def test_invalid_ids(cid: str) -> None:
    with pytest.raises(InvalidIDError, match="invalid container ID format"):
        state.validate_id(cid)


def test_default_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/0")
    assert state.default_root() == "/run/ocirt"  # root outside a user namespace ignores it
    monkeypatch.setenv("XDG_RUNTIME_DIR", "")
    assert state.default_root() == "/run/ocirt"


MINIMAL = {"ociVersion": "1.2.0", "root": {"path": "rootfs"},
           "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}}}


def test_parse_minimal() -> None:
    s = spec.parse(json.loads(json.dumps(MINIMAL)))
    assert s.process is not None and s.process.args == ["sh"] and s.root.path == "rootfs"


@pytest.mark.parametrize("patch, message", [
    ({"ociVersion": None}, "config.json: /ociVersion: is required"),
    ({"root": {"readonly": True}}, "config.json: /root/path: is required"),
    ({"process": {"args": "sh", "cwd": "/"}}, "config.json: /process/args: must be an array"),
    ({"process": {"args": [], "cwd": "/"}}, "config.json: /process/args: must not be empty"),
    ({"process": {"args": ["sh"], "cwd": "tmp"}}, "config.json: /process/cwd: must be an absolute path"),
    ({"process": {"args": ["sh"], "cwd": "/", "user": {"uid": -1, "gid": 0}}},
     "config.json: /process/user/uid: must be an integer between"),
    ({"mounts": [{"type": "tmpfs"}]}, "config.json: /mounts/0/destination: is required"),
    ({"linux": {"namespaces": [{"type": "pid"}, {"type": "pid"}]}}, "duplicate namespace"),
    ({"linux": {"namespaces": [{"type": "nope"}]}}, "unknown namespace type"),
    ({"hooks": {"prestart": [{"path": "x"}]}}, "config.json: /hooks/prestart/0/path: must be an absolute"),
    ({"linux": {"rootfsPropagation": "sideways"}}, "unknown propagation"),
])
def test_parse_errors_name_the_field(patch: dict[str, object], message: str) -> None:
    doc = {**json.loads(json.dumps(MINIMAL)), **patch}
    doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        spec.parse(doc)


def test_mount_options() -> None:
    o = Options(["rbind", "ro", "nosuid", "rprivate", "size=10m", "mode=755", "tmpcopyup"])
    assert o.flags == sc.MS_BIND | sc.MS_REC | sc.MS_RDONLY | sc.MS_NOSUID
    assert o.propagation == [sc.MS_PRIVATE | sc.MS_REC]
    assert o.data == "size=10m,mode=755"
    assert Options(["ro", "rw"]).flags == 0


def test_a_peer_that_failed_is_heard_not_a_broken_pipe() -> None:
    """An init that fails and exits before reading the runtime's next message: the runtime's
    send must report the init's error, not EPIPE."""
    from ocirt.process import channel

    def fail(ch: channel.Channel) -> None:
        raise ConfigError("mount proc to /proc: the init's own words")

    pid, parent = channel.fork_child(fail)
    try:
        os.waitpid(pid, 0)  # gone, its read end closed with it
        with pytest.raises(ConfigError, match="the init's own words"):
            parent.send(channel.JOINED, state="{}")
    finally:
        parent.close()
