"""ocish refusing bad input, for real, with ocirt and with runc as the runtime: one ``ocish: ...``
line, Docker's exit status (125 for ocish's own errors, 126 a command that cannot be invoked,
127 one not found), nothing left behind; and the same statuses as podman's for the same runs.

Not here yet: ``-v``, ``-m`` and ``-p`` are other parts of issue 13; until they are in, their
bad values are unknown flags (125 as well), and the cases below hold either way."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from archive_support import PrivatePodman
from container_support import Ocish, assert_nothing_left
from shim_support import one_line_error

pytest_plugins = ["shim_fixtures", "container_fixtures", "archive_fixtures"]

# (run options, command, expected status, a word of the message)
BAD_RUNS = [
    (["-v", ":/data"], ["true"], 125, ""),  # a bind with no source
    (["-v", "/tmp:relative"], ["true"], 125, ""),  # a relative destination
    (["-m", "-1"], ["true"], 125, ""),
    (["-m", "12zb"], ["true"], 125, ""),
    (["-p", "99999:80"], ["true"], 125, ""),
    (["--user", "no-such-user"], ["true"], 125, "user"),
    (["--network", "bridge"], ["true"], 125, "bridge"),
    (["--name", "a b"], ["true"], 125, "name"),
    (["--no-such-flag"], ["true"], 125, "unrecognized"),
    (["--stop-timeout", "soon"], ["true"], 125, "invalid int"),
    ([], ["/etc"], 126, "/etc"),  # a directory as the command
    ([], ["/no/such/cmd"], 127, "/no/such/cmd"),
]


def _check_refused(oc: Ocish, res: object, status: int, word: str) -> None:
    assert res.returncode == status, res  # type: ignore[attr-defined]
    msg = one_line_error(res)  # type: ignore[arg-type]
    assert word.lower() in msg.lower(), msg
    assert_nothing_left(oc.root)


@pytest.mark.parametrize(("opts", "cmd", "status", "word"), BAD_RUNS,
                         ids=[" ".join(r[0] + r[1]) for r in BAD_RUNS])
def test_bad_run(oc: Ocish, opts: list[str], cmd: list[str], status: int, word: str) -> None:
    oc("pull", "--tls-verify=false", oc.image)  # (else the pull's progress is on stderr too)
    _check_refused(oc, oc("run", "--rm", *opts, oc.image, *cmd, check=False), status, word)
    if status == 125:  # (create does not run the command: 126 and 127 show at start)
        _check_refused(oc, oc("create", *opts, oc.image, *cmd, check=False), status, word)


def test_unknown_images(oc: Ocish) -> None:
    """Not in the store (--pull never), not in the registry, no registry there at all."""
    host = oc.image.split("/", 1)[0]
    for args in (["--pull", "never", "no-such-image:1"], [f"{host}/test/no-such-image:1"],
                 ["127.0.0.1:1/busybox:1"]):
        res = oc("run", "--tls-verify=false", "--rm", *args, "true", check=False)
        assert res.returncode == 125, res.stderr
        # Docker's own note before a pull, then the one error line
        *before, last = res.stderr.splitlines()
        assert all(ln.startswith("Unable to find image ") for ln in before), res.stderr
        assert last.startswith("ocish: ") and "Traceback" not in res.stderr, res.stderr
        assert_nothing_left(oc.root)
    # and pull's own failure is status 1, as Docker's (not the HTTP status)
    res = oc("pull", "--tls-verify=false", f"{host}/test/no-such-image:1", check=False)
    assert res.returncode == 1 and "manifest unknown" in one_line_error(res)


def _rootfs_tar() -> bytes:
    """A one-file root file system, for an image with no command at all."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"no\n"))
    return buf.getvalue()


def test_missing_command(oc: Ocish, tmp_path: Path) -> None:
    """``run`` without an image, and an image with no CMD nor ENTRYPOINT run without one."""
    res = oc("run", check=False)
    _check_refused(oc, res, 125, "required")
    (tmp_path / "rootfs.tar").write_bytes(_rootfs_tar())
    oc("import", str(tmp_path / "rootfs.tar"), "nocmd:1")
    res = oc("run", "--rm", "nocmd:1", check=False)
    _check_refused(oc, res, 125, "no command")
    oc("rmi", "nocmd:1")


def test_commands_on_missing_containers(oc: Ocish) -> None:
    """Docker's status 1 and its words for a container that is not there."""
    for args in (["start", "ghost"], ["stop", "ghost"], ["kill", "ghost"], ["rm", "ghost"],
                 ["logs", "ghost"], ["wait", "ghost"], ["inspect", "ghost"]):
        res = oc(*args, check=False)
        assert res.returncode == 1, (args, res.stderr)
        assert "no such" in one_line_error(res).lower(), (args, res.stderr)


# the same runs with ocish and with podman: (command or options, podman's status)
SAME_AS_PODMAN = [
    (["IMAGE", "sh", "-c", "exit 3"], 3),
    (["IMAGE", "/no/such"], 127),
    (["IMAGE", "nosuch"], 127),
    (["IMAGE", "/etc/passwd"], 126),
    (["IMAGE", "/etc"], 126),
    (["--no-such-flag", "IMAGE", "true"], 125),
    (["--pull", "never", "no-such-image:1", "true"], 125),
]


def test_exit_codes_as_podman(oc: Ocish, podman: PrivatePodman, tmp_path: Path) -> None:
    oc("pull", "--tls-verify=false", oc.image)
    podman("pull", "--tls-verify=false", oc.image)
    # runc: podman's default crun refuses this host's hybrid cgroups; podman's default
    # rlimits are above what this host allows (engines-on-this-host.md)
    pm = ["--runtime", "/usr/sbin/runc", "run", "--rm", "--network", "none", "--ulimit",
          "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
    for args, status in SAME_AS_PODMAN:
        argv = [oc.image if a == "IMAGE" else a for a in args]
        theirs = podman(*pm, *argv, check=False)
        ours = oc("run", "--rm", *argv, check=False)
        assert (ours.returncode, theirs.returncode) == (status, status), \
            (args, ours.stderr, theirs.stderr)
        if status >= 125:
            one_line_error(ours)
    assert_nothing_left(oc.root)
