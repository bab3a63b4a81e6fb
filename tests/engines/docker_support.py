"""A private Docker Engine (Debian's dockerd 20.10 with its own containerd) for the engine tests.

dockerd runs in a network namespace of its own (its docker0 bridge and iptables NAT rules never
touch the VM's), entered with ``nsenter --net`` only: ``ip netns exec`` would also remount /sys
and hide the cgroup mounts dockerd needs. Config, data-root, exec-root, pidfile, socket and log
live under one temporary directory; ``stop()`` removes every trace (processes, mounts, the netns,
empty ``/docker`` cgroup parents) and reports what it could not.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

#: runtime names dockerd keeps for itself; a daemon.json entry may not use them
RESERVED = {"runc", "io.containerd.runc.v2", "io.containerd.runtime.v1.linux"}


def entry_name(runtime_name: str) -> str:
    """The daemon.json ``runtimes`` key for a runtime binary: its own name unless reserved."""
    return runtime_name if runtime_name not in RESERVED else f"{runtime_name}-test"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in pids if _alive(p)]
        if not pids:
            break
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


@dataclass
class Dockerd:
    base: Path                      # everything of this daemon lives under it
    runtime_path: str
    runtime: str                    # the daemon.json runtimes entry, for --runtime
    netns: str = field(default_factory=lambda: f"ocirt-dk-{os.getpid()}-{secrets.token_hex(3)}")
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.base / "docker.sock"

    @property
    def exec_root(self) -> Path:
        return self.base / "exec"

    @property
    def log_path(self) -> Path:
        return self.base / "dockerd.log"

    @property
    def state_dir(self) -> Path:
        """The runtime's --root as dockerd passes it (for every runtime, not only runc)."""
        return self.exec_root / "runtime-runc" / "moby"

    def bundle(self, cid: str) -> Path:
        return self.exec_root / "containerd/daemon/io.containerd.runtime.v2.task/moby" / cid

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}

    def docker(self, *args: str, timeout: float = 60,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, input=input)

    def in_netns(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.netns, *cmd], capture_output=True,
                              text=True, timeout=timeout)

    def log_mark(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, mark: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")

    def start(self, timeout: float = 60) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        config = {
            "data-root": str(self.base / "root"), "exec-root": str(self.exec_root),
            "pidfile": str(self.base / "dockerd.pid"), "hosts": [f"unix://{self.socket}"],
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "runtimes": {self.runtime: {"path": self.runtime_path}},
        }
        (self.base / "daemon.json").write_text(json.dumps(config, indent=2) + "\n")
        subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True)
        subprocess.run(["ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up"],
                       check=True, capture_output=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.netns}", "dockerd",
                 "--config-file", str(self.base / "daemon.json")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.proc.returncode}:\n"
                                   + self.log_path.read_text()[-3000:])
            if self.socket.exists() and self.docker("version", timeout=10).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("dockerd did not answer:\n" + self.log_path.read_text()[-3000:])

    def _our_processes(self) -> list[int]:
        """containerd and its shims started for this daemon (their command lines name base)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and os.path.basename(argv[0]).startswith(b"containerd") \
                    and any(str(self.base).encode() in a for a in argv):
                found.append(int(entry))
        return found

    def _mounts(self) -> list[str]:
        prefix = str(self.base)
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4].encode().decode("unicode_escape") for line in f]
        return [p for p in points if p == prefix or p.startswith(prefix + "/")]

    def stop(self) -> list[str]:
        """Stop the daemon and remove what it left; return what could not be removed."""
        problems: list[str] = []
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq", timeout=30).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, timeout=60)
        helpers = self._our_processes()
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                problems.append(f"dockerd {self.proc.pid} ignored SIGTERM")
                self.proc.kill()
                self.proc.wait(timeout=10)
        left = _wait_gone(helpers + self._our_processes(), 20)
        if left:
            problems.append(f"containerd/shim processes left: {left}")
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _wait_gone(left, 10)
        for point in sorted(self._mounts(), key=lambda p: p.count("/"), reverse=True):
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)
        if self._mounts():
            problems.append(f"mounts left: {self._mounts()}")
        if subprocess.run(["ip", "netns", "del", self.netns], capture_output=True).returncode:
            problems.append(f"could not delete netns {self.netns}")
        for ctrl in os.listdir("/sys/fs/cgroup"):
            parent = Path("/sys/fs/cgroup", ctrl, "docker")
            if parent.is_dir():
                for child in parent.iterdir():
                    if child.is_dir():
                        problems.append(f"cgroup left: {child}")
                try:
                    parent.rmdir()   # dockerd's empty parent; another daemon's stays
                except OSError:
                    pass
        return problems
