"""containerd 1.6 with its runc v2 shim driving the runtime under test, the path Kubernetes takes:
``ctr run --runtime io.containerd.runc.v2 --runc-binary <runtime>``. A private containerd (own
config, root, state and sockets, CRI disabled) runs for the module in a namespace of its own; at
the end no shim, runtime process, mount, cgroup or runtime state of that namespace may be left."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Images, Runtime, need
from containerd_support import (
    RUNC_ROOT,
    SHIM,
    Containerd,
    cri_snippet,
    force_clean,
    leftovers,
    read_log_json,
    remove_namespace_dirs,
    rmtree,
)

IMAGE = "docker.io/library/busybox:latest"
NS = f"ocirt-test-ctrd-{os.getpid()}-{secrets.token_hex(2)}"   # unique per session
USED: set[str] = set()   # every container id the module used (for the shim-socket check)


class Ctr:
    """containerd plus the runtime under test: ``run`` always picks the runc v2 shim and the
    runtime binary, as a RuntimeClass handler with options.BinaryName does."""

    def __init__(self, ctrd: Containerd, runtime: Runtime) -> None:
        self.d = ctrd
        self.runtime = runtime
        self.rt = ["--runtime", SHIM, "--runc-binary", runtime.path]

    def __call__(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return self.d.ctr(*args, **kw)  # type: ignore[arg-type]

    def run(self, *args: str, cid: str, cmd: tuple[str, ...] = (),
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        USED.add(cid)
        return self.d.ctr("run", *self.rt, *args, IMAGE, cid, *cmd, timeout=timeout)

    def detached(self, cid: str, *args: str, cmd: tuple[str, ...] = ("sleep", "1000")) -> int:
        """``ctr run -d``; returns the task's host PID."""
        r = self.run("-d", *args, cid=cid, cmd=cmd)
        assert r.returncode == 0, r.stderr + self.d.log_tail()
        assert self.d.task_status(cid) == "RUNNING"
        # the shim records the binary it drives (options.BinaryName): not some runc from PATH
        assert (self.d.bundle(cid) / "runtime").read_text() == self.runtime.path
        pids = self.d.ctr("task", "ls").stdout
        m = re.search(rf"^{re.escape(cid)}\s+(\d+)\s", pids, re.M)
        assert m, pids
        return int(m.group(1))

    def remove(self, cid: str) -> None:
        """Kill, delete the task and the container; each step must work."""
        if self.d.task_status(cid) not in ("STOPPED", ""):
            r = self.d.ctr("task", "kill", "-s", "KILL", cid)
            assert r.returncode == 0, r.stderr
            assert self.d.wait_status(cid, "STOPPED") == "STOPPED"
        r = self.d.ctr("task", "rm", cid)
        assert r.returncode == 0, r.stderr
        r = self.d.ctr("c", "rm", cid)
        assert r.returncode == 0, r.stderr
        assert not (RUNC_ROOT / self.d.namespace / cid).exists(), "runtime state left"
        assert not self.d.bundle(cid).exists(), "bundle left"


@pytest.fixture(scope="module")
def ctrd(tmp_path_factory: pytest.TempPathFactory, images: Images) -> Iterator[Containerd]:
    need("containerd", "ctr", "containerd-shim-runc-v2")
    d = Containerd(tmp_path_factory.mktemp("containerd"), NS)
    try:
        d.start()
        r = d.ctr("image", "import", str(images.docker_archive))
        assert r.returncode == 0, r.stderr
        yield d
    finally:
        problems: list[str] = []
        if d.proc is not None and d.proc.poll() is None:
            d.remove_all()
            problems = leftovers(d, USED)
        d.stop()
        if problems:
            force_clean(d)
        stays = remove_namespace_dirs(NS)
        rmtree(d.base / "root")
        assert not problems, f"left behind in namespace {NS}: {problems}"
        assert not stays, f"not removable: {stays}"


@pytest.fixture
def ctr(ctrd: Containerd, runtime: Runtime) -> Iterator[Ctr]:
    c = Ctr(ctrd, runtime)
    yield c
    ctrd.remove_all()   # after a failure: leave nothing for the next test


def test_run_rm_echo(ctr: Ctr) -> None:
    r = ctr.run("--rm", cid="echo", cmd=("echo", "hello from ctr"))
    assert (r.returncode, r.stdout) == (0, "hello from ctr\n"), r.stderr
    r = ctr.run("--rm", cid="exit3", cmd=("sh", "-c", "exit 3"))
    assert r.returncode == 3, r.stderr
    assert ctr("c", "ls", "-q").stdout == ""


def test_run_stdin_env_cwd(ctr: Ctr) -> None:
    USED.add("io")   # ctr does not pass on stdin EOF: read one line
    r = ctr.d.ctr("run", "--rm", *ctr.rt, "--env", "GREETING=hi there", "--cwd", "/tmp", IMAGE,
                  "io", "sh", "-c", 'echo "$GREETING in $(pwd)"; head -n1; ip -o link | wc -l',
                  input="from stdin\n")
    # ctr gives the container a fresh network namespace with only lo
    assert (r.returncode, r.stdout) == (0, "hi there in /tmp\nfrom stdin\n1\n"), r.stderr


def test_detached_exec_kill_rm(ctr: Ctr) -> None:
    # busybox sh as PID 1 ignores SIGTERM unless it traps it
    ctr.detached("det", cmd=("sh", "-c", "trap 'exit 7' TERM; sleep 1000 & wait"))
    r = ctr("task", "exec", "--exec-id", "e1", "det", "sh", "-c", "echo exec-ok; exit 5")
    assert (r.returncode, r.stdout) == (5, "exec-ok\n"), r.stderr
    r = ctr("task", "exec", "--exec-id", "e2", "det", "cat", "/proc/1/cmdline")
    assert r.returncode == 0 and r.stdout.startswith("sh\0-c\0trap"), (r.stdout, r.stderr)
    r = ctr("task", "kill", "-s", "TERM", "det")
    assert r.returncode == 0, r.stderr
    assert ctr.d.wait_status("det", "STOPPED") == "STOPPED"
    r = ctr("task", "rm", "det")
    assert r.returncode == 0, r.stderr
    assert "exit code 7" in r.stderr     # ctr warns about the task's non-zero exit status
    r = ctr("c", "rm", "det")
    assert r.returncode == 0, r.stderr
    assert ctr("c", "ls", "-q").stdout == ""
    assert not (RUNC_ROOT / NS / "det").exists()


def test_ps_and_kill_all(ctr: Ctr) -> None:
    pid = ctr.detached("ka")
    r = ctr("task", "exec", "--detach", "--exec-id", "bg", "ka", "sleep", "2000")
    assert r.returncode == 0, r.stderr
    r = ctr("task", "ps", "ka")     # the shim calls the runtime's ps --format json
    assert r.returncode == 0, r.stderr
    rows = [line.split()[0] for line in r.stdout.splitlines()[1:]]
    assert str(pid) in rows and len(rows) == 2, r.stdout
    assert "ExecID:bg" in r.stdout, r.stdout
    r = ctr("task", "kill", "--all", "-s", "KILL", "ka")
    assert r.returncode == 0, r.stderr
    assert ctr.d.wait_status("ka", "STOPPED") == "STOPPED"
    ctr.remove("ka")


def test_tty(ctr: Ctr) -> None:
    need("script")
    cmd = " ".join(ctr.d.ctr_cmd("run", "--rm", "-t", *ctr.rt, IMAGE, "tty1",
                                 "sh", "-c", "'tty; exit 4'"))
    USED.add("tty1")
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert re.search(r"/dev/pts/\d+", r.stdout), (r.stdout, r.stderr)
    assert r.returncode == 4, (r.stdout, r.stderr)
    # exec with a terminal (console socket for exec)
    ctr.detached("ttyx")
    cmd = " ".join(ctr.d.ctr_cmd("task", "exec", "-t", "--exec-id", "t1", "ttyx", "tty"))
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert re.search(r"/dev/pts/\d+", r.stdout), (r.stdout, r.stderr)
    assert r.returncode == 0, (r.stdout, r.stderr)
    ctr.remove("ttyx")


def test_memory_limit(ctr: Ctr) -> None:
    pid = ctr.detached("mem", "--memory-limit", str(64 << 20))
    cg = Path("/sys/fs/cgroup/memory") / NS / "mem"
    assert int((cg / "memory.limit_in_bytes").read_text()) == 64 << 20
    assert str(pid) in (cg / "cgroup.procs").read_text().split()
    ctr.remove("mem")
    assert not cg.exists()


def test_pause_resume(ctr: Ctr) -> None:
    ctr.detached("pz")
    freezer = Path("/sys/fs/cgroup/freezer") / NS / "pz" / "freezer.state"
    r = ctr("task", "pause", "pz")
    assert r.returncode == 0, r.stderr
    assert ctr.d.task_status("pz") == "PAUSED"
    assert freezer.read_text().strip() == "FROZEN"
    r = ctr("task", "resume", "pz")
    assert r.returncode == 0, r.stderr
    assert ctr.d.task_status("pz") == "RUNNING"
    assert freezer.read_text().strip() == "THAWED"
    r = ctr("task", "exec", "--exec-id", "after", "pz", "echo", "thawed")
    assert (r.returncode, r.stdout) == (0, "thawed\n"), r.stderr
    ctr.remove("pz")


def test_metrics(ctr: Ctr) -> None:
    ctr.detached("met", "--memory-limit", str(32 << 20))
    r = ctr("task", "metrics", "met")
    assert r.returncode == 0, r.stderr
    values = dict(line.split(None, 1) for line in r.stdout.splitlines() if len(line.split()) > 1)
    assert int(values["memory.usage_in_bytes"]) > 0, r.stdout
    assert int(values["memory.limit_in_bytes"]) == 32 << 20, r.stdout
    assert int(values["cpuacct.usage"]) > 0, r.stdout
    assert int(values["pids.current"]) >= 1, r.stdout
    ctr.remove("met")


def test_exec_failure_reaches_ctr(ctr: Ctr) -> None:
    ctr.detached("xf")
    r = ctr("task", "exec", "--exec-id", "bad", "xf", "/nonexistent")
    assert r.returncode != 0
    # containerd reads the last error entry of the runtime's log.json
    assert "OCI runtime exec failed" in r.stderr, r.stderr
    assert "/nonexistent" in r.stderr and "no such file or directory" in r.stderr, r.stderr
    assert "unable to retrieve OCI runtime error" not in r.stderr, r.stderr
    entries = read_log_json(ctr.d.bundle("xf") / "log.json")
    assert any(e["level"] == "error" and "/nonexistent" in str(e["msg"]) for e in entries)
    # the container is unharmed
    r = ctr("task", "exec", "--exec-id", "good", "xf", "true")
    assert r.returncode == 0, r.stderr
    assert ctr.d.task_status("xf") == "RUNNING"
    ctr.remove("xf")


def test_create_failure_reaches_ctr(ctr: Ctr) -> None:
    r = ctr.run("--rm", cid="cf", cmd=("no-such-command",))
    assert r.returncode != 0
    assert "OCI runtime create failed" in r.stderr, r.stderr
    assert "no-such-command" in r.stderr, r.stderr
    assert "executable file not found in $PATH" in r.stderr, r.stderr
    assert "unable to retrieve OCI runtime error" not in r.stderr, r.stderr
    assert ctr("c", "ls", "-q").stdout == ""
    assert not (RUNC_ROOT / NS / "cf").exists()
    assert not (Path("/sys/fs/cgroup/memory") / NS / "cf").exists()


def test_log_json_clean_run(ctr: Ctr) -> None:
    ctr.detached("lj")
    for n in range(3):
        r = ctr("task", "exec", "--exec-id", f"x{n}", "lj", "true")
        assert r.returncode == 0, r.stderr
    ctr("task", "pause", "lj")
    ctr("task", "resume", "lj")
    log = ctr.d.bundle("lj") / "log.json"
    assert log.exists(), "the shim passes --log <bundle>/log.json: the runtime opens (creates) it"
    entries = read_log_json(log)
    errors = [e for e in entries if e["level"] in ("error", "fatal")]
    assert not errors, errors
    ctr.remove("lj")


def test_cri_runtime_handler_config(tmp_path: Path, runtime: Runtime) -> None:
    """No kubelet, no crictl on Debian bookworm: check that containerd loads the CRI plugin with
    the RuntimeClass handler (runc v2 shim, options.BinaryName = the runtime) and reports it ok."""
    need("containerd", "ctr")
    ns = f"{NS}-cri"
    snippet = (
        '[plugins."io.containerd.grpc.v1.cri"]\n'
        '  sandbox_image = "localhost/pause:local"\n'
        '  restrict_oom_score_adj = true\n'    # no CAP_SYS_RESOURCE on this host
        '[plugins."io.containerd.grpc.v1.cri".cni]\n'
        f'  bin_dir = "{tmp_path / "cni-bin"}"\n  conf_dir = "{tmp_path / "cni-conf"}"\n'
        # a handler table replaces the built-in map, so the default "runc" must be there too
        + cri_snippet("runc", "/usr/sbin/runc") + cri_snippet("ocirt", runtime.path))
    d = Containerd(tmp_path / "cri", ns, cri=snippet)
    try:
        d.start()
        r = d.ctr("plugins", "ls")
        assert r.returncode == 0, r.stderr
        cri = [f for f in map(str.split, r.stdout.splitlines())
               if f[:2] == ["io.containerd.grpc.v1", "cri"]]
        assert cri and cri[0][-1] == "ok", r.stdout
        # the handler reached the CRI config containerd runs with
        deadline = time.monotonic() + 10
        while "Start cri plugin with config" not in d.log.read_text() \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        line = next(x for x in d.log.read_text().splitlines() if "Start cri plugin" in x)
        assert re.search(rf"ocirt:\{{Type:{re.escape(SHIM)} ", line), line
        assert f"BinaryName:{runtime.path}" in line, line
        dump = subprocess.run(["containerd", "--config", str(d.config), "config", "dump"],
                              capture_output=True, text=True, timeout=30)
        assert f'BinaryName = "{runtime.path}"' in dump.stdout, dump.stdout
    finally:
        d.stop()
        rmtree(d.base)


def test_zz_nothing_left(ctrd: Containerd) -> None:
    """Runs last: every container is gone, and none left a shim, a runtime process, a mount,
    a cgroup, runtime state or a shim socket."""
    ctrd.remove_all()
    problems = leftovers(ctrd, USED)
    assert not problems, problems
