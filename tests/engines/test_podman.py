"""Real podman (with conmon, and buildah for ``podman build``) driving the runtime under test,
plugged in both as ``podman --runtime <path>`` and as a named runtime in containers.conf.

Every container runs with ``--network none``: podman's bridge network would create a bridge and
iptables rules in the VM's own network namespace. The one ``-p`` test runs all its podman
commands in a network namespace of its own."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Images, Runtime, need
from podman_support import CGROUP_PARENT, CGROUP_ROOT, IMAGE, NAMED, Podman

NONET = ("--network", "none")


@pytest.fixture(scope="module")
def podman(runtime: Runtime, images: Images,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    need("podman", "conmon")
    pm = Podman(tmp_path_factory.mktemp("podman"), runtime.path)
    try:
        pm("import", "--change", 'CMD ["/bin/sh"]', str(images.rootfs_tar), IMAGE)
        pm("load", "-i", str(images.docker_archive))
        yield pm
    finally:
        problems = pm.teardown()
    assert not problems, problems


@pytest.fixture
def pm(podman: Podman) -> Iterator[Podman]:
    """The module's podman; every container a test leaves is removed, and its conmon must go."""
    yield podman
    podman.clean()
    pids = podman.wait_conmons_gone()
    assert not pids, f"conmon still running after the test: {pids}"


@pytest.fixture(params=["path", "named"])
def way(request: pytest.FixtureRequest, runtime: Runtime) -> str | None:
    """How podman gets the runtime: ``--runtime <path>``, or containers.conf's named runtime
    (the configured default, so no flag)."""
    return runtime.path if request.param == "path" else None


def name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def no_runtime_errors(text: str) -> None:
    """No error-level line from the runtime (plain or JSON log format) in podman's output."""
    bad = [line for line in text.splitlines()
           if re.search(r'level=(error|fatal)|"level":\s*"(error|fatal)"', line)]
    assert not bad, bad


def test_run_rm_echo(pm: Podman, way: str | None, runtime: Runtime) -> None:
    c = name()
    p = pm("run", "--name", c, *NONET, IMAGE, "echo", "hello from podman", runtime=way)
    assert p.stdout == "hello from podman\n"
    no_runtime_errors(p.stderr)
    expected = runtime.path if way else NAMED
    assert pm.inspect(c, "{{.OCIRuntime}}") == expected
    cid = pm.inspect(c, "{{.Id}}")
    assert pm.oci_log_errors(cid) == []
    pm("rm", c)
    p = pm("run", "--rm", *NONET, IMAGE, "echo", "again", runtime=way)
    assert p.stdout == "again\n"
    no_runtime_errors(p.stderr)


def test_exit_code_kept(pm: Podman) -> None:
    p = pm("run", "--rm", *NONET, IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3",
           check=False)
    assert (p.returncode, p.stdout) == (3, "out\n")
    assert "err" in p.stderr


def test_detached_exec_logs_stop_rm(pm: Podman, way: str | None) -> None:
    c = name()
    pm("run", "-d", "--name", c, *NONET, IMAGE, "sh", "-c", "echo started; exec sleep 1000",
       runtime=way)
    assert pm.inspect(c, "{{.State.Status}}") == "running"
    cid = pm.inspect(c, "{{.Id}}")
    conmon = int(pm.inspect(c, "{{.State.ConmonPid}}"))
    cmdline = Path(f"/proc/{conmon}/cmdline").read_bytes().split(b"\0")
    assert b"--log-format=json" in cmdline     # the runtime is in runtime_supports_json
    p = pm("exec", c, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline")
    assert p.stdout.startswith("exec-ok\nsleep")
    assert pm("exec", c, "sh", "-c", "exit 5", check=False).returncode == 5
    for _ in range(50):
        if "started" in pm("logs", c).stdout:
            break
        time.sleep(0.1)
    assert pm("logs", c).stdout == "started\n"
    p = pm("stop", "-t", "1", c)
    no_runtime_errors(p.stderr)
    assert pm.inspect(c, "{{.State.Status}}") == "exited"
    assert pm.inspect(c, "{{.State.ExitCode}}") == "137"   # busybox sleep ignores SIGTERM
    assert pm.oci_log_errors(cid) == []
    pm("rm", c)
    assert not list(CGROUP_ROOT.glob(f"*/{CGROUP_PARENT}/libpod-{cid}"))
    assert pm.wait_conmons_gone() == []


def test_interactive_tty_in_tmux(pm: Podman, tmp_path: Path) -> None:
    need("tmux")
    sock, rcfile = f"ocirt-{uuid.uuid4().hex[:8]}", tmp_path / "rc"
    env = " ".join(f"{k}={pm.env[k]}" for k in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"))
    cmd = f"env {env} podman run -it --rm --network none {IMAGE} sh; echo $? > {rcfile}"
    tmux = ["tmux", "-L", sock]

    def pane() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", "p"], capture_output=True,
                              text=True).stdout

    def wait_for(pred: object, what: str) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if pred():  # type: ignore[operator]
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; pane:\n{pane()}")

    subprocess.run([*tmux, "new", "-d", "-s", "p", "-x", "100", "-y", "30", cmd], check=True)
    try:
        wait_for(lambda: re.search(r"[#$] ?$", pane().rstrip("\n"), re.M), "the prompt")
        subprocess.run([*tmux, "send-keys", "-t", "p", "stty size; tty", "Enter"], check=True)
        wait_for(lambda: "30 100" in pane(), "stty size")
        assert "/dev/pts/" in pane()
        subprocess.run([*tmux, "send-keys", "-t", "p", "exit 7", "Enter"], check=True)
        wait_for(rcfile.exists, "the exit code")
        time.sleep(0.1)
        assert rcfile.read_text().strip() == "7"
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def test_memory_limit_and_oom(pm: Podman) -> None:
    p = pm("run", "--rm", *NONET, "--memory", "64m", IMAGE,
           "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert p.stdout.strip() == str(64 << 20)
    p = pm("run", "--rm", *NONET, "--memory", "64m", "--memory-swap", "64m", IMAGE,
           "sh", "-c", "head -c 200m /dev/zero | tail", check=False, timeout=120)
    assert p.returncode == 137, p.stderr


def test_pids_limit(pm: Podman) -> None:
    p = pm("run", "--rm", *NONET, "--pids-limit", "17", IMAGE,
           "cat", "/sys/fs/cgroup/pids/pids.max")
    assert p.stdout.strip() == "17"


def test_cap_drop(pm: Podman) -> None:
    def capeff(*flags: str) -> int:
        out = pm("run", "--rm", *NONET, *flags, IMAGE, "grep", "CapEff", "/proc/self/status")
        return int(out.stdout.split()[1], 16)

    default = capeff()
    assert default & (1 << 13) and default & 1      # NET_RAW, CHOWN
    dropped = capeff("--cap-drop", "net_raw")
    assert dropped == default & ~(1 << 13)
    assert capeff("--cap-drop", "all") == 0


def test_read_only(pm: Podman) -> None:
    p = pm("run", "--rm", *NONET, "--read-only", IMAGE, "sh", "-c",
           "touch /tmp/ok && echo tmp-ok; touch /x", check=False)
    assert p.returncode == 1
    assert "tmp-ok" in p.stdout and "Read-only file system" in p.stderr


def test_user(pm: Podman) -> None:
    p = pm("run", "--rm", *NONET, "--user", "1000:1000", IMAGE, "id")
    assert re.match(r"uid=1000\b.* gid=1000\b", p.stdout), p.stdout


def test_pause_unpause(pm: Podman) -> None:
    c = name()
    pm("run", "-d", "--name", c, *NONET, IMAGE, "sleep", "1000")
    cid = pm.inspect(c, "{{.Id}}")
    freezer = CGROUP_ROOT / "freezer" / CGROUP_PARENT / f"libpod-{cid}" / "freezer.state"
    pm("pause", c)
    assert pm.inspect(c, "{{.State.Status}}") == "paused"
    assert freezer.read_text().strip() == "FROZEN"
    pm("unpause", c)
    assert pm.inspect(c, "{{.State.Status}}") == "running"
    assert freezer.read_text().strip() == "THAWED"
    assert pm("exec", c, "echo", "alive").stdout == "alive\n"
    pm("rm", "-f", "-t", "0", c)


def test_build_run_step(pm: Podman, runtime: Runtime, tmp_path: Path) -> None:
    """buildah's RUN steps call the runtime (through a logging wrapper around it)."""
    calls = tmp_path / "calls.log"
    wrapper = tmp_path / "rt-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {runtime.path} "$@"\n')
    wrapper.chmod(0o755)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(
        f"FROM {IMAGE}\nRUN echo built-by-run > /built && mkdir /made && id -u > /made/uid\n")
    tag = f"localhost/built-{uuid.uuid4().hex[:8]}"
    try:
        p = pm("build", "--runtime", str(wrapper), "--network", "none", "-t", tag, str(ctx),
               timeout=120)
        no_runtime_errors(p.stderr)
        subcommands = {line.split()[0] for line in calls.read_text().splitlines()
                       if line.split()}
        assert {"create", "start", "delete"} <= subcommands, subcommands
        p = pm("run", "--rm", *NONET, tag, "cat", "/built", "/made/uid")
        assert p.stdout == "built-by-run\n0\n"
    finally:
        pm("rmi", "-f", tag, check=False)


def test_build_from_loaded_docker_archive(pm: Podman, tmp_path: Path) -> None:
    """The docker-archive image (podman load) as a base, with the runtime from containers.conf."""
    (tmp_path / "Containerfile").write_text(
        "FROM docker.io/library/busybox:latest\nRUN echo layered > /layer\n")
    tag = f"localhost/loaded-{uuid.uuid4().hex[:8]}"
    try:
        pm("build", "--network", "none", "--pull=never", "-t", tag, str(tmp_path), timeout=120)
        assert pm("run", "--rm", *NONET, tag, "cat", "/layer").stdout == "layered\n"
    finally:
        pm("rmi", "-f", tag, check=False)


def test_command_not_found_127(pm: Podman) -> None:
    p = pm("run", "--rm", *NONET, IMAGE, "/nonexistent", check=False)
    assert p.returncode == 127, p.stderr
    # the runtime's own message (podman prefixes the runtime's name, or path, itself)
    assert 'exec: "/nonexistent"' in p.stderr and "no such file or directory" in p.stderr


def test_command_not_executable_126(pm: Podman) -> None:
    p = pm("run", "--rm", *NONET, IMAGE, "/etc/passwd", check=False)
    assert p.returncode == 126, p.stderr
    assert 'exec: "/etc/passwd"' in p.stderr and "permission denied" in p.stderr


@pytest.fixture
def netns() -> Iterator[str]:
    need("ip", "nsenter")
    ns = f"ocirt-pm-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_publish_port_in_own_netns(pm: Podman, netns: str) -> None:
    """``-p`` with podman's bridge network, all of it inside the test's network namespace.
    (``ip netns exec`` remounts /sys, which hides /sys/fs/cgroup from podman and the runtime,
    so podman runs under ``nsenter --net``.)"""
    need("curl")
    c = name()
    try:
        pm("run", "-d", "--name", c, "-p", "18080:80", IMAGE,
           "httpd", "-f", "-p", "80", "-h", "/var/www", netns=netns)
        body = ""
        for _ in range(50):
            p = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "curl", "-s",
                                "http://127.0.0.1:18080/"], capture_output=True, text=True)
            body = p.stdout
            if "hello from busybox httpd" in body:
                break
            time.sleep(0.1)
        assert "hello from busybox httpd" in body
    finally:
        pm.clean(netns=netns)
