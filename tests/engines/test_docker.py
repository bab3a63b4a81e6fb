"""Debian's dockerd 20.10 (with its own containerd and runc v2 shim) driving the runtime under
test through a daemon.json ``runtimes`` entry, with the docker CLI. dockerd runs in a network
namespace of its own; published ports are fetched on 127.0.0.1 inside it."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Images, Runtime, need
from docker_support import Dockerd, entry_name

IMAGE = "busybox:latest"
MEMORY = 64 << 20


@pytest.fixture(scope="module")
def dockerd(runtime: Runtime, images: Images,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    need("dockerd", "docker", "containerd", "containerd-shim-runc-v2", "ip", "nsenter")
    d = Dockerd(tmp_path_factory.mktemp("docker"), runtime.path, entry_name(runtime.name))
    problems: list[str] = []
    try:
        d.start()
        load = d.docker("load", "-i", str(images.docker_archive), timeout=120)
        assert load.returncode == 0, load.stderr
        yield d
    finally:
        problems = d.stop()
    assert not problems, problems


@pytest.fixture
def clean_log(dockerd: Dockerd) -> Iterator[None]:
    """The test's part of dockerd's log has no error (from the runtime or anything else)."""
    mark = dockerd.log_mark()
    yield
    time.sleep(0.3)   # late lines of a container that just went away
    errors = [line for line in dockerd.log_since(mark).splitlines()
              if "level=error" in line or "level=fatal" in line]
    assert not errors, "\n".join(errors)


def run(d: Dockerd, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return d.docker("run", "--runtime", d.runtime, *args, timeout=timeout)


def gone(path: Path, timeout: float = 5) -> bool:
    """The shim deletes the container (and the runtime its cgroup) just after docker returns."""
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not path.exists()


def inspect(d: Dockerd, name: str, fmt: str) -> str:
    r = d.docker("inspect", "-f", fmt, name)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_image_loaded_and_runtime_registered(dockerd: Dockerd, runtime: Runtime,
                                             clean_log: None) -> None:
    images = dockerd.docker("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert IMAGE in images.stdout.split()
    runtimes = dockerd.docker("info", "--format", "{{json .Runtimes}}")
    assert runtimes.returncode == 0, runtimes.stderr
    assert f'"{dockerd.runtime}":{{"path":"{runtime.path}"' in runtimes.stdout


def test_run_echo(dockerd: Dockerd, clean_log: None) -> None:
    r = run(dockerd, "--rm", IMAGE, "echo", "hello from docker")
    assert (r.returncode, r.stdout, r.stderr) == (0, "hello from docker\n", "")


@pytest.mark.parametrize(("script", "code"), [("true", 0), ("exit 3", 3), ("exit 255", 255)])
def test_exit_code(dockerd: Dockerd, clean_log: None, script: str, code: int) -> None:
    r = run(dockerd, "--rm", IMAGE, "sh", "-c", script)
    assert r.returncode == code, r.stderr


def test_detached_exec_logs_stop_rm(dockerd: Dockerd, runtime: Runtime,
                                    clean_log: None) -> None:
    d = dockerd
    r = run(d, "-d", "--name", "lifecycle", IMAGE, "sh", "-c", "echo started; exec sleep 1000")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        # the runtime under test really runs it: recorded, handed to the shim, its state dir
        assert inspect(d, cid, "{{.HostConfig.Runtime}}") == d.runtime
        assert (d.bundle(cid) / "runtime").read_text().strip() == runtime.path
        assert (d.state_dir / cid).is_dir()
        assert inspect(d, cid, "{{.State.Status}}") == "running"
        ex = d.docker("exec", "lifecycle", "sh", "-c", "echo exec-ok; cat /proc/1/cmdline")
        assert (ex.returncode, ex.stdout) == (0, "exec-ok\nsleep\x001000\x00"), ex.stderr
        assert d.docker("exec", "lifecycle", "sh", "-c", "exit 4").returncode == 4
        top = d.docker("top", "lifecycle")          # the shim asks the runtime (ps)
        assert top.returncode == 0 and "sleep 1000" in top.stdout, top.stderr
        for _ in range(50):
            logs = d.docker("logs", "lifecycle")
            if "started" in logs.stdout:
                break
            time.sleep(0.1)
        assert logs.stdout == "started\n", logs.stderr
        assert d.docker("pause", "lifecycle").returncode == 0
        assert inspect(d, cid, "{{.State.Status}}") == "paused"
        assert d.docker("unpause", "lifecycle").returncode == 0
        assert d.docker("exec", "lifecycle", "true").returncode == 0
        began = time.monotonic()
        stop = d.docker("stop", "-t", "1", "lifecycle")   # busybox sleep ignores SIGTERM
        assert stop.returncode == 0, stop.stderr
        assert time.monotonic() - began < 8
        assert inspect(d, cid, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
        assert not (d.state_dir / cid).exists()
    finally:
        rm = d.docker("rm", "-f", "lifecycle")
    assert rm.returncode == 0, rm.stderr
    assert cid not in d.docker("ps", "-aq", "--no-trunc").stdout
    assert gone(Path("/sys/fs/cgroup/memory/docker", cid))


def test_restart(dockerd: Dockerd, clean_log: None) -> None:
    d = dockerd
    r = run(d, "-d", "--name", "restart", IMAGE, "sh", "-c", "trap 'exit 0' TERM; "
            "while :; do sleep 0.1; done")
    assert r.returncode == 0, r.stderr
    try:
        pid = inspect(d, "restart", "{{.State.Pid}}")
        assert d.docker("restart", "-t", "5", "restart").returncode == 0
        assert inspect(d, "restart", "{{.State.Status}}") == "running"
        assert inspect(d, "restart", "{{.State.Pid}}") != pid
        assert d.docker("stop", "-t", "5", "restart").returncode == 0
        assert inspect(d, "restart", "{{.State.ExitCode}}") == "0"
    finally:
        d.docker("rm", "-f", "restart")


def test_interactive_tty(dockerd: Dockerd, clean_log: None) -> None:
    need("tmux")
    d = dockerd
    sock, done = d.base / "tmux.sock", d.base / "it.rc"
    tmux = ["tmux", "-S", str(sock)]
    cmd = (f"DOCKER_HOST=unix://{d.socket} docker run -it --rm --runtime {d.runtime} {IMAGE} sh;"
           f" echo $? > {done}; sleep 60")
    subprocess.run([*tmux, "new-session", "-d", "-s", "it", "-x", "100", "-y", "30", cmd],
                   check=True)
    try:
        screen = ""
        for _ in range(100):
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "it"],
                                    capture_output=True, text=True).stdout
            if re.search(r"^/ #", screen, re.M):     # capture-pane drops trailing blanks
                break
            time.sleep(0.1)
        assert re.search(r"^/ #", screen, re.M), screen
        subprocess.run([*tmux, "send-keys", "-t", "it", "stty size; tty; exit 5", "Enter"],
                       check=True)
        for _ in range(100):
            if done.exists() and done.read_text().strip():
                break
            time.sleep(0.1)
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "it"],
                                capture_output=True, text=True).stdout
        assert done.read_text().strip() == "5", screen
        assert re.search(r"^30 100\s*$", screen, re.M), screen
        assert re.search(r"^/dev/pts/\d+\s*$", screen, re.M), screen
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def test_memory_limit(dockerd: Dockerd, clean_log: None) -> None:
    d = dockerd
    inside = run(d, "--rm", "-m", "64m", IMAGE,
                 "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert (inside.returncode, inside.stdout) == (0, f"{MEMORY}\n"), inside.stderr
    r = run(d, "-d", "--name", "mem", "-m", "64m", IMAGE, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        cg = Path("/sys/fs/cgroup/memory/docker", cid)
        assert int((cg / "memory.limit_in_bytes").read_text()) == MEMORY
        assert int((cg / "memory.memsw.limit_in_bytes").read_text()) == 2 * MEMORY
        pid = inspect(d, "mem", "{{.State.Pid}}")
        assert f":memory:/docker/{cid}\n" in Path(f"/proc/{pid}/cgroup").read_text()
        # raising both limits (runtime update): memsw must go first, or the kernel refuses
        up = d.docker("update", "-m", "128m", "--memory-swap", "512m", "mem")
        assert up.returncode == 0, up.stderr
        assert int((cg / "memory.limit_in_bytes").read_text()) == 2 * MEMORY
        assert int((cg / "memory.memsw.limit_in_bytes").read_text()) == 8 * MEMORY
    finally:
        d.docker("rm", "-f", "mem")
    assert gone(cg)


def test_oom_killed(dockerd: Dockerd, clean_log: None) -> None:
    d = dockerd
    r = run(d, "--name", "oom", "-m", "64m", "--memory-swap", "64m", IMAGE,
            "dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1")
    try:
        assert r.returncode == 137, r.stderr
        assert inspect(d, "oom", "{{.State.OOMKilled}} {{.State.ExitCode}}") == "true 137"
    finally:
        d.docker("rm", "-f", "oom")


def test_publish_port(dockerd: Dockerd, clean_log: None) -> None:
    d = dockerd
    fetch = (["curl", "-sS", "--max-time", "3"] if shutil.which("curl")
             else ["wget", "-q", "-T", "3", "-O", "-"])
    need(fetch[0])
    r = run(d, "-d", "--name", "web", "-p", "18080:80", IMAGE,
            "httpd", "-f", "-p", "80", "-h", "/var/www")
    assert r.returncode == 0, r.stderr
    try:
        assert "0.0.0.0:18080" in d.docker("port", "web").stdout
        page = None
        for _ in range(50):
            page = d.in_netns(*fetch, "http://127.0.0.1:18080/")
            if page.returncode == 0:
                break
            time.sleep(0.1)
        assert page is not None and page.returncode == 0, page and page.stderr
        assert page.stdout == "<h1>hello from busybox httpd</h1>\n"
    finally:
        d.docker("rm", "-f", "web")


def test_missing_command(dockerd: Dockerd) -> None:
    d = dockerd
    r = run(d, "--rm", "--name", "missing", IMAGE, "/nonexistent")
    message = 'exec: "/nonexistent": stat /nonexistent: no such file or directory'
    assert r.returncode == 127, r.stderr
    assert "OCI runtime create failed" in r.stderr and message in r.stderr, r.stderr
    assert "missing" not in d.docker("ps", "-a", "--format", "{{.Names}}").stdout


def test_exec_missing_command(dockerd: Dockerd) -> None:
    d = dockerd
    assert run(d, "-d", "--name", "execmiss", IMAGE, "sleep", "1000").returncode == 0
    try:
        r = d.docker("exec", "execmiss", "/nonexistent")
        assert r.returncode == 126, r.stderr
        assert "OCI runtime exec failed" in r.stdout + r.stderr
        assert "/nonexistent" in r.stdout + r.stderr
        assert d.docker("exec", "execmiss", "true").returncode == 0
    finally:
        d.docker("rm", "-f", "execmiss")
