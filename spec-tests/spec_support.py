"""Helpers shared by the spec-tests: runtime driver, bundles, containers, console, leak scan.

Everything here drives the runtime only through its command line (runc's contract) and
observes the result from the host (/proc, /sys/fs/cgroup, files) or from inside the
container (busybox applets and the static `probe` helper).
"""

from __future__ import annotations

import contextlib
import copy
import errno
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Put into the environment of every runtime invocation; must never reach a container or a hook.
HOST_ENV_MARKER = "SPEC_TESTS_RUNTIME_ENV_MARKER"

# Linux capability numbers (include/uapi/linux/capability.h).
CAP_NUMBERS: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

# The capability set Docker/podman give a container by default.
DEFAULT_CAPS: list[str] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

NAMESPACE_PROC_NAMES = {
    "pid": "pid",
    "network": "net",
    "ipc": "ipc",
    "uts": "uts",
    "mount": "mnt",
    "cgroup": "cgroup",
    "user": "user",
    "time": "time",
}

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "user:x:1000:1000:unprivileged user:/home/user:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = (
    "root:x:0:\n"
    "tty:x:5:\n"
    "wheel:x:10:\n"
    "dialout:x:20:\n"
    "user:x:1000:\n"
    "nogroup:x:65534:\n"
)


def cap_mask(names: Iterable[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAP_NUMBERS[name]
    return mask


def default_mounts() -> list[dict[str, Any]]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
    ]


def default_config(args: Sequence[str], *, hostname: str = "spec-tests") -> dict[str, Any]:
    """A config.json written to the OCI runtime-spec (not produced by `runc spec`)."""
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": [f"PATH={DEFAULT_PATH}", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": list(DEFAULT_CAPS),
                "effective": list(DEFAULT_CAPS),
                "permitted": list(DEFAULT_CAPS),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": hostname,
        "mounts": default_mounts(),
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
            ],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


# --------------------------------------------------------------------------------------------
# Small /proc helpers
# --------------------------------------------------------------------------------------------


def proc_status(pid: int | str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def parse_status(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def ns_link(pid: int | str, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def wait_pid_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def mountinfo_lines() -> list[str]:
    return Path("/proc/self/mountinfo").read_text().splitlines()


def cgroup_roots() -> list[Path]:
    """Every mounted cgroup hierarchy under /sys/fs/cgroup (v1 controllers and unified)."""
    roots = []
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():
        return [base]
    for entry in sorted(base.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            roots.append(entry)
    return roots


def host_cgroup_controllers() -> dict[str, str]:
    """Map hierarchy name (as in /proc/self/cgroup, e.g. 'memory', 'name=systemd', '') to path."""
    out = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        out[names] = path
    return out


def placement_hierarchies() -> list[str]:
    """Keys of /proc/self/cgroup a container's processes must be in cgroupsPath of: those that
    carry resource controllers (v1), and the cgroup2 one ("") on a hybrid or v2 host."""
    keys = [k for k in host_cgroup_controllers() if not k.startswith("name=")]
    if "" in keys and not Path("/sys/fs/cgroup/unified").is_dir() \
            and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        keys.remove("")
    return keys


def parse_proc_cgroup(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        _, names, path = line.split(":", 2)
        out[names] = path
    return out


# --------------------------------------------------------------------------------------------
# Runtime driver
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    pid: int = 0  # pid of the runtime process that ran this command

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        return (
            f"command: {' '.join(self.args)}\nexit status: {self.returncode}\n"
            f"stdout: {self.stdout!r}\nstderr: {self.stderr!r}"
        )

    def check(self) -> Result:
        if self.returncode != 0:
            raise AssertionError("runtime command failed\n" + self.describe())
        return self

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


class RuntimeTimeout(AssertionError):
    pass


StdArg = int | IO[Any] | None


@dataclass
class Runtime:
    """The runtime under test; every call gets `--root <private dir>`."""

    path: str
    root: Path
    name: str = ""
    env_marker: str = HOST_ENV_MARKER

    def __post_init__(self) -> None:
        if not self.name:
            self.name = os.path.basename(self.path)

    @property
    def is_runc(self) -> bool:
        return self.name == "runc"

    def argv(self, *args: str, global_args: Sequence[str] = ()) -> list[str]:
        return [self.path, "--root", str(self.root), *global_args, *args]

    def environ(self, env: dict[str, str] | None = None) -> dict[str, str]:
        base = dict(os.environ)
        base[self.env_marker] = "leaked-from-the-runtime-environment"
        if env is not None:
            base.update(env)
        return base

    def __call__(
        self,
        *args: str,
        input: bytes | str | None = None,
        timeout: float = 30.0,
        global_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        stdin: StdArg = subprocess.DEVNULL,
        stdout: StdArg = None,
        stderr: StdArg = None,
        cwd: str | os.PathLike[str] | None = None,
        fd_map: dict[int, int] | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> Result:
        """Run one runtime command and wait for the runtime process to exit.

        stdout/stderr default to anonymous temporary files (not pipes) so a container that
        inherits them cannot make this call hang; their content is returned in the Result.
        fd_map places extra fds at given numbers in the runtime process ({target: source}).
        """
        argv = self.argv(*args, global_args=global_args)
        with contextlib.ExitStack() as stack:
            out_f = err_f = None
            if stdout is None:
                out_f = stack.enter_context(tempfile.TemporaryFile())
                stdout = out_f
            if stderr is None:
                err_f = stack.enter_context(tempfile.TemporaryFile())
                stderr = err_f
            if input is not None:
                in_f = stack.enter_context(tempfile.TemporaryFile())
                in_f.write(input.encode() if isinstance(input, str) else input)
                in_f.seek(0)
                stdin = in_f
            pass_fds: tuple[int, ...] = ()
            child_setup = preexec
            if fd_map:
                pass_fds = tuple(fd_map)
                mapping = dict(fd_map)

                def child_setup() -> None:
                    # Park every source above the targets first so no source is clobbered.
                    parked = {t: fcntl.fcntl(s, fcntl.F_DUPFD, 200) for t, s in mapping.items()}
                    for t, s in parked.items():
                        os.dup2(s, t, inheritable=True)
                    for s in parked.values():
                        os.close(s)
                    if preexec is not None:
                        preexec()

            proc = subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                env=self.environ(env),
                cwd=cwd,
                pass_fds=pass_fds,
                preexec_fn=child_setup,
            )
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise RuntimeTimeout(f"runtime command timed out after {timeout}s: {argv}") from None
            out = err = ""
            if out_f is not None:
                out_f.seek(0)
                out = out_f.read().decode(errors="replace")
            if err_f is not None:
                err_f.seek(0)
                err = err_f.read().decode(errors="replace")
        return Result(argv, rc, out, err, proc.pid)

    def popen(self, *args: str, global_args: Sequence[str] = (), **kw: Any) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(
            self.argv(*args, global_args=global_args), env=self.environ(kw.pop("env", None)), **kw
        )


# --------------------------------------------------------------------------------------------
# Bundles and containers
# --------------------------------------------------------------------------------------------


def build_rootfs(dest: Path, probe: Path | None) -> None:
    """A minimal busybox root filesystem (world-readable so user-namespaced roots can use it)."""
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user", "mnt", "run"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    shutil.copy2("/bin/busybox", dest / "bin" / "busybox")
    applets = subprocess.run(
        ["/bin/busybox", "--list"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    for applet in applets:
        link = dest / "bin" / applet
        if applet == "busybox" or link.exists() or link.is_symlink():
            continue
        link.symlink_to("busybox")
    (dest / "etc" / "passwd").write_text(PASSWD)
    (dest / "etc" / "group").write_text(GROUP)
    if probe is not None:
        shutil.copy2(probe, dest / "bin" / "probe")
        os.chmod(dest / "bin" / "probe", 0o755)


@dataclass
class Bundle:
    path: Path
    id: str
    config: dict[str, Any]

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def process(self) -> dict[str, Any]:
        return self.config["process"]

    @property
    def linux(self) -> dict[str, Any]:
        return self.config["linux"]

    def write(self) -> None:
        self.config_path.write_text(json.dumps(self.config, indent=2))

    def namespace_types(self) -> list[str]:
        return [ns["type"] for ns in self.linux.get("namespaces", [])]

    def drop_namespace(self, kind: str) -> None:
        self.linux["namespaces"] = [ns for ns in self.linux["namespaces"] if ns["type"] != kind]

    def add_namespace(self, kind: str, path: str | None = None) -> None:
        self.drop_namespace(kind)
        ns: dict[str, str] = {"type": kind}
        if path:
            ns["path"] = path
        self.linux["namespaces"].append(ns)

    def mount(self, **m: Any) -> None:
        self.config["mounts"].append(m)


@dataclass
class Created:
    id: str
    result: Result
    pid: int  # from the pid file; 0 when there is none
    pid_file: Path | None
    create_pid: int = 0

    @property
    def ok(self) -> bool:
        return self.result.ok


@dataclass
class RunOutput:
    id: str
    stdout: str
    stderr: str
    state: dict[str, Any]
    pid: int

    def lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.strip()]


@dataclass
class SuiteResources:
    """Everything the suite creates on the host, so that leaks can be found at the end."""

    tmp: Path
    root: Path
    cgroup_parent: str  # e.g. "spec-tests-1234"
    rootfs_base: Path | None = None
    probe: Path | None = None
    probe_error: str = ""
    counter: int = 0
    extra_cleanups: list[Callable[[], None]] = field(default_factory=list)

    def next_dir(self, prefix: str) -> Path:
        self.counter += 1
        d = self.tmp / f"{prefix}{self.counter}"
        d.mkdir(mode=0o755)
        os.chmod(d, 0o755)
        return d

    def cgroup_path(self, container_id: str) -> str:
        return f"/{self.cgroup_parent}/{container_id}"


class Containers:
    """Per-test container helper: allocates ids and guarantees `delete --force` at teardown."""

    def __init__(self, rt: Runtime, res: SuiteResources, workdir: Path, tag: str) -> None:
        self.rt = rt
        self.res = res
        self.workdir = workdir
        self.tag = tag
        self.ids: list[str] = []
        self.pids: dict[str, int] = {}
        self._n = 0

    # -- ids and bundles -------------------------------------------------------------------
    def new_id(self) -> str:
        self._n += 1
        cid = f"st-{self.tag}-{self._n}"
        self.ids.append(cid)
        return cid

    def bundle(self, args: Sequence[str] = ("true",), *, hostname: str = "spec-tests") -> Bundle:
        cid = self.new_id()
        path = self.workdir / f"b{self._n}"
        path.mkdir(mode=0o755)
        assert self.res.rootfs_base is not None
        subprocess.run(["cp", "-a", str(self.res.rootfs_base), str(path / "rootfs")],
                       check=True, timeout=60)
        cfg = default_config(args, hostname=hostname)
        cfg["linux"]["cgroupsPath"] = self.res.cgroup_path(cid)
        return Bundle(path, cid, cfg)

    def cgroup_dirs(self, cid: str) -> list[Path]:
        rel = self.res.cgroup_path(cid).lstrip("/")
        return [r / rel for r in cgroup_roots() if (r / rel).exists()]

    # -- lifecycle -------------------------------------------------------------------------
    def create(
        self,
        bundle: Bundle,
        *,
        cid: str | None = None,
        pid_file: Path | str | None | bool = True,
        console_socket: Path | str | None = None,
        stdin: StdArg = subprocess.DEVNULL,
        stdout: StdArg = None,
        stderr: StdArg = None,
        extra: Sequence[str] = (),
        global_args: Sequence[str] = (),
        check: bool = True,
        write: bool = True,
        timeout: float = 30.0,
        cwd: Path | str | None = None,
        fd_map: dict[int, int] | None = None,
        env: dict[str, str] | None = None,
        bundle_arg: str | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> Created:
        """`create --bundle B --pid-file P <id>`, stdio by default to files in the bundle.

        The container inherits the very stdio given here; the runtime's own output on that
        stdio (there should be none on success) lands in the same files and is returned.
        """
        cid = cid or bundle.id
        if cid not in self.ids:
            self.ids.append(cid)
        if write:
            bundle.write()
        args: list[str] = ["create", "--bundle", bundle_arg or str(bundle.path)]
        pid_path: Path | None = None
        if pid_file is True:
            pid_path = bundle.path / "init.pid"
        elif pid_file:
            pid_path = Path(str(pid_file))
        if pid_path is not None:
            args += ["--pid-file", str(pid_path)]
        if console_socket is not None:
            args += ["--console-socket", str(console_socket)]
        args += [*extra, cid]
        with contextlib.ExitStack() as stack:
            out_path = err_path = None
            if stdout is None:
                out_path = bundle.path / f"{cid}.stdout"
                stdout = stack.enter_context(open(out_path, "wb"))
            if stderr is None:
                err_path = bundle.path / f"{cid}.stderr"
                stderr = stack.enter_context(open(err_path, "wb"))
            result = self.rt(
                *args,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                global_args=global_args,
                timeout=timeout,
                cwd=cwd,
                fd_map=fd_map,
                env=env,
                preexec=preexec,
            )
        if out_path is not None:
            result.stdout = out_path.read_text(errors="replace")
        if err_path is not None:
            result.stderr = err_path.read_text(errors="replace")
        pid = 0
        if pid_path is not None and not pid_path.is_absolute() and cwd:
            pid_path = Path(cwd) / pid_path
        if result.ok and pid_path is not None and pid_path.exists():
            text = pid_path.read_text()
            if text.isdigit():
                pid = int(text)
                self.pids[cid] = pid
        if check:
            result.check()
            if pid_path is not None and not pid:
                raise AssertionError(
                    f"create succeeded but the pid file {pid_path} is missing or not plain "
                    f"digits: {pid_path.read_bytes() if pid_path.exists() else None!r}"
                )
        return Created(cid, result, pid, pid_path)

    def start(self, cid: str, *, check: bool = True, **kw: Any) -> Result:
        res = self.rt("start", cid, **kw)
        if check:
            res.check()
        return res

    def state(self, cid: str) -> dict[str, Any]:
        res = self.rt("state", cid).check()
        try:
            return json.loads(res.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"state output is not JSON: {e}\n{res.describe()}") from None

    def kill(self, cid: str, *sig: str, all: bool = False, check: bool = True) -> Result:
        args = ["kill"] + (["--all"] if all else []) + [cid, *sig]
        res = self.rt(*args)
        if check:
            res.check()
        return res

    def delete(self, cid: str, *, force: bool = False, check: bool = True) -> Result:
        args = ["delete"] + (["--force"] if force else []) + [cid]
        res = self.rt(*args)
        if check:
            res.check()
        return res

    def wait_status(self, cid: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        pid = self.pids.get(cid)
        if status == "stopped" and pid:
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                pidfd = -1
            if pidfd >= 0:
                try:
                    select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
                finally:
                    os.close(pidfd)
        last: dict[str, Any] = {}
        while True:
            last = self.state(cid)
            if last.get("status") == status:
                return last
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"container {cid} did not reach status {status!r} in {timeout}s: {last}"
                )
            time.sleep(0.02)

    def wait_stopped(self, cid: str, timeout: float = 10.0) -> dict[str, Any]:
        return self.wait_status(cid, "stopped", timeout)

    def run(
        self,
        bundle: Bundle,
        *,
        stdin: StdArg = subprocess.DEVNULL,
        timeout: float = 10.0,
        delete: bool = True,
        **create_kw: Any,
    ) -> RunOutput:
        """create + start + wait for `stopped`; returns what the container wrote."""
        created = self.create(bundle, stdin=stdin, **create_kw)
        assert created.pid, f"no pid after create: {created.result.describe()}"
        self.start(created.id)
        st = self.wait_stopped(created.id, timeout=timeout)
        out = (bundle.path / f"{created.id}.stdout").read_text(errors="replace")
        err = (bundle.path / f"{created.id}.stderr").read_text(errors="replace")
        if delete:
            self.delete(created.id)
        return RunOutput(created.id, out, err, st, created.pid)

    def output(self, bundle: Bundle, **kw: Any) -> str:
        """Run to completion and return stdout; fails the test if anything went to stderr."""
        out = self.run(bundle, **kw)
        assert out.stderr == "", f"unexpected stderr from container/runtime: {out.stderr!r}"
        return out.stdout

    # -- teardown --------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        problems = []
        for cid in self.ids:
            state_dir = self.rt.root / cid
            try:
                self.rt("delete", "--force", cid, timeout=30)
            except RuntimeTimeout as e:
                problems.append(str(e))
            if state_dir.exists():
                problems.append(f"state dir {state_dir} still exists after delete --force")
            pid = self.pids.get(cid)
            if pid and not wait_pid_gone(pid, 5):
                problems.append(f"init pid {pid} of {cid} still alive after delete --force")
            for d in self.cgroup_dirs(cid):
                problems.append(f"cgroup dir {d} still exists after delete --force")
        return problems


# --------------------------------------------------------------------------------------------
# Console socket receiver
# --------------------------------------------------------------------------------------------


@dataclass
class ConsoleMessage:
    payload: bytes
    fds: list[int]
    cmsg_count: int
    flags: int
    extra_data: bytes


class ConsoleReceiver:
    """Listens on an AF_UNIX SOCK_STREAM path and receives one SCM_RIGHTS message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self._done = threading.Event()
        self.message: ConsoleMessage | None = None
        self.error: BaseException | None = None
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = self.sock.accept()
                except TimeoutError:
                    continue
                self.connections += 1
                with conn:
                    conn.settimeout(10)
                    data, anc, flags, _ = conn.recvmsg(
                        4096, socket.CMSG_SPACE(16 * 4) + socket.CMSG_SPACE(16)
                    )
                    fds: list[int] = []
                    for level, kind, cdata in anc:
                        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                            n = len(cdata) // 4
                            fds.extend(int.from_bytes(cdata[i * 4 : i * 4 + 4], "little")
                                       for i in range(n))
                    # Anything sent after the message (there should be nothing) until close.
                    extra = b""
                    with contextlib.suppress(OSError):
                        while True:
                            chunk = conn.recv(4096)
                            if not chunk:
                                break
                            extra += chunk
                    if self.message is None:
                        self.message = ConsoleMessage(data, fds, len(anc), flags, extra)
                        self._done.set()
                    else:
                        for fd in fds:
                            os.close(fd)
        except BaseException as e:  # noqa: BLE001 - reported to the test
            self.error = e
            self._done.set()

    def wait(self, timeout: float = 10.0) -> ConsoleMessage:
        if not self._done.wait(timeout):
            raise AssertionError("no message arrived on the console socket")
        if self.error is not None:
            raise AssertionError(f"console socket receiver failed: {self.error!r}")
        assert self.message is not None
        return self.message

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        if self.message is not None:
            for fd in self.message.fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.message.fds = []


def read_pty(master: int, timeout: float = 10.0, until: bytes | None = None) -> bytes:
    """Read a pty master until EOF/EIO (all slaves closed), `until` seen, or the deadline."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return data
        r, _, _ = select.select([master], [], [], remaining)
        if not r:
            return data
        try:
            chunk = os.read(master, 4096)
        except OSError as e:
            if e.errno == errno.EIO:
                return data
            raise
        if not chunk:
            return data
        data += chunk
        if until is not None and until in data:
            return data


# --------------------------------------------------------------------------------------------
# Leak scan
# --------------------------------------------------------------------------------------------


def is_under(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    p, r = str(path), str(root).rstrip("/")
    return p == r or p.startswith(r + "/")


def scan_leaks(res: SuiteResources) -> list[str]:
    leaks: list[str] = []
    for line in mountinfo_lines():
        fields = line.split()
        if len(fields) > 4 and (is_under(fields[4], res.tmp) or is_under(fields[3], res.tmp)):
            leaks.append(f"mount: {line}")
    for root in cgroup_roots():
        parent = root / res.cgroup_parent
        if parent.is_dir():
            for child in sorted(parent.iterdir()):
                if child.is_dir():
                    leaks.append(f"cgroup dir: {child}")
    if res.root.is_dir():
        for entry in sorted(res.root.iterdir()):
            leaks.append(f"state entry in --root: {entry}")
    marker = f"/{res.cgroup_parent}/"
    me = os.getpid()
    for pdir in Path("/proc").iterdir():
        if not pdir.name.isdigit() or int(pdir.name) == me:
            continue
        reasons = []
        with contextlib.suppress(OSError):
            if marker in (pdir / "cgroup").read_text():
                reasons.append("in the suite's cgroup")
        for link in ("root", "cwd"):
            with contextlib.suppress(OSError):
                target = os.readlink(pdir / link)
                if is_under(target, res.tmp):
                    reasons.append(f"{link} -> {target}")
        if reasons:
            with contextlib.suppress(OSError):
                if not pid_alive(int(pdir.name)):
                    continue
                cmd = (pdir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                leaks.append(f"process {pdir.name} ({cmd.strip()}): {', '.join(reasons)}")
    return leaks


def remove_cgroup_parents(res: SuiteResources) -> list[str]:
    problems = []
    for root in cgroup_roots():
        parent = root / res.cgroup_parent
        if parent.is_dir():
            try:
                parent.rmdir()
            except OSError as e:
                problems.append(f"cannot remove {parent}: {e}")
    return problems


def tree_has_mounts(path: Path) -> bool:
    return any(
        len(fields := line.split()) > 4 and is_under(fields[4], path)
        for line in mountinfo_lines()
    )


def safe_rmtree(path: Path) -> None:
    """Remove a test directory, but never descend into something still mounted."""
    if not path.exists() or tree_has_mounts(path):
        return
    shutil.rmtree(path, ignore_errors=True)



# --------------------------------------------------------------------------------------------
# Assertion helpers shared by several modules
# --------------------------------------------------------------------------------------------


def wait_for_file_text(path: Path, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.02)
    raise AssertionError(f"{text!r} did not appear in {path}: {content!r}")


def processes_using(path: Path) -> list[str]:
    """Host processes whose cwd/root is under path or whose command line mentions it."""
    p = str(path)
    found = []
    for pdir in Path("/proc").iterdir():
        if not pdir.name.isdigit() or int(pdir.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmd = (pdir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            links = []
            for name in ("cwd", "root"):
                with contextlib.suppress(OSError):
                    links.append(os.readlink(pdir / name))
            if p in cmd or any(link == p or link.startswith(p + "/") for link in links):
                found.append(f"{pdir.name}: {cmd.strip()} {links}")
    return found


def assert_failed_cleanly(ctr: Containers, b: Bundle, res: Result, *needles: str) -> None:
    assert res.returncode != 0, res.describe()
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.error_lines()
    assert len(lines) == 1, f"expected exactly one error line on stderr:\n{res.describe()}"
    for needle in needles:
        assert needle in res.stderr, res.describe()
    # Nothing left: state, list entry, pid file, cgroup, processes.
    assert not (ctr.rt.root / b.id).exists(), "state dir left behind"
    listed = ctr.rt("list", "-q").check().stdout.split()
    assert b.id not in listed
    assert not (b.path / "init.pid").exists(), "pid file written for a failed create"
    assert ctr.cgroup_dirs(b.id) == [], "cgroup dirs left behind"
    deadline = time.monotonic() + 2
    while processes_using(b.path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_using(b.path) == []
    assert ctr.rt("state", b.id).returncode != 0


# --------------------------------------------------------------------------------------------
# Misc
# --------------------------------------------------------------------------------------------

RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def is_rfc3339(value: str) -> bool:
    return bool(RFC3339.match(value))


def deep_copy(cfg: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(cfg)


def kill_and_reap(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(5)


class MountNamespace:
    """A mount namespace of the test's own (``unshare --mount --propagation private``, held by
    a sleep): the runtime is run inside it as its caller, so that whatever a runtime mounts in
    its caller's namespace (or leaks there) never reaches the host's, and goes with it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sleep", "600"])
        deadline = time.monotonic() + 10
        while ns_link(self.proc.pid, "mnt") == ns_link("self", "mnt"):
            assert time.monotonic() < deadline, "unshare did not make a mount namespace"
            time.sleep(0.01)
        self.path = f"/proc/{self.proc.pid}/ns/mnt"

    def enter(self) -> None:
        """preexec: the runtime's process joins the namespace."""
        import ctypes

        fd = os.open(self.path, os.O_RDONLY)
        if ctypes.CDLL(None, use_errno=True).setns(fd, 0x00020000) != 0:  # CLONE_NEWNS
            os._exit(121)
        os.close(fd)

    def mountinfo(self) -> list[str]:
        return Path(f"/proc/{self.proc.pid}/mountinfo").read_text().splitlines()
