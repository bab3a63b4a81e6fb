"""A private podman for the engine tests: its own containers.conf, storage, run and tmp dirs
under one directory, the runtime under test plugged in both by path and by name, and the
cleanup that leaves nothing behind (containers, conmons, overlay mounts, libpod cgroups)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

#: the containers.conf name the runtime under test gets in [engine.runtimes]
NAMED = "undertest"
IMAGE = "localhost/busybox:latest"
CGROUP_PARENT = "libpod_parent"   # podman's cgroupfs default
CGROUP_ROOT = Path("/sys/fs/cgroup")


def containers_conf(base: Path, runtime_path: str) -> str:
    """The containers.conf the tests prove: ``runtime`` is the named runtime, and the JSON log
    is on for it and for the runtime's basename (``podman --runtime /path``)."""
    names = sorted({NAMED, os.path.basename(runtime_path)})
    return f"""\
[containers]
# no CAP_SYS_RESOURCE and a nofile hard limit of 20000 on this host
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[network]
network_config_dir = "{base}/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{base}/events.log"
tmp_dir = "{base}/tmp"
runtime = "{NAMED}"
# conmon passes --log-format=json --log <RunDir>/oci-log to the runtimes named here
runtime_supports_json = {json.dumps(names)}

[engine.runtimes]
{NAMED} = ["{runtime_path}"]
"""


class Podman:
    """podman with this directory's configuration; ``netns``: run it in that network
    namespace (nsenter --net keeps the host's mounts, /sys/fs/cgroup included)."""

    def __init__(self, base: Path, runtime_path: str) -> None:
        self.base = base
        self.runtime_path = runtime_path
        self.ids: set[str] = set()
        for d in ("storage", "run", "tmp", "networks"):
            (base / d).mkdir(parents=True, exist_ok=True)
        (base / "containers.conf").write_text(containers_conf(base, runtime_path))
        (base / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{base}/storage"\n'
            f'runroot = "{base}/run"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=str(base / "containers.conf"),
                        CONTAINERS_STORAGE_CONF=str(base / "storage.conf"))

    def __call__(self, *args: str, check: bool = True, timeout: float = 60,
                 netns: str | None = None, runtime: str | None = None
                 ) -> subprocess.CompletedProcess[str]:
        cmd = ["podman"] + (["--runtime", runtime] if runtime else []) + list(args)
        if netns:
            cmd = ["nsenter", f"--net=/run/netns/{netns}"] + cmd
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}: rc {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def inspect(self, name: str, fmt: str) -> str:
        return self("inspect", "-f", fmt, name).stdout.strip()

    def userdata(self, cid: str) -> Path:
        return self.base / "run" / "overlay-containers" / cid / "userdata"

    def oci_log_errors(self, cid: str) -> list[dict[str, Any]]:
        """Error entries in the runtime's JSON log (conmon's --log <RunDir>/oci-log)."""
        log = self.userdata(cid) / "oci-log"
        if not log.exists():
            return []
        entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        return [e for e in entries if e.get("level") in ("error", "fatal", "panic")]

    def conmons(self) -> list[int]:
        """conmon processes working for this podman (their command line names our dirs)."""
        out = []
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and os.path.basename(cmdline[0]) == b"conmon" and \
                    any(str(self.base).encode() in a for a in cmdline):
                out.append(int(pid))
        return out

    def clean(self, netns: str | None = None) -> list[str]:
        """Remove every container and every image but the base ones; return what was left."""
        left = self("ps", "-aq", "--no-trunc", check=False, netns=netns).stdout.split()
        self.ids.update(left)
        if left:
            self("rm", "-f", "-t", "0", *left, check=False, timeout=60, netns=netns)
        return left

    def wait_conmons_gone(self, timeout: float = 10) -> list[int]:
        deadline = time.monotonic() + timeout
        while (pids := self.conmons()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in pids:   # ours, found by our directory in their command line
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        return pids

    def teardown(self) -> list[str]:
        """The module's final cleanup; returns the problems found (after fixing them)."""
        problems = []
        self.clean()
        self("rmi", "-af", check=False)
        self("system", "reset", "-f", check=False, timeout=120)
        if pids := self.wait_conmons_gone():
            problems.append(f"conmon processes left: {pids}")
        mounts = mounts_under(self.base)
        for mnt in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        if mounts:
            problems.append(f"podman left mounts: {mounts}")
        for cid in self.ids:
            for cg in CGROUP_ROOT.glob(f"*/{CGROUP_PARENT}/libpod-{cid}"):
                problems.append(f"cgroup left: {cg}")
                try:
                    cg.rmdir()
                except OSError:
                    pass
        state = subprocess.run([self.runtime_path, "list", "-q"], capture_output=True,
                               text=True).stdout.split()
        if leftover := sorted(self.ids & set(state)):
            problems.append(f"runtime state left for {leftover}")
        remove_empty_cgroup_parent()
        shutil.rmtree(self.base, ignore_errors=True)
        return problems


def mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split()[4].replace("\\040", " ")
            if mnt.startswith(prefix) or mnt == str(path):
                out.append(mnt)
    return out


def remove_empty_cgroup_parent() -> None:
    """podman's cgroupfs parent (and conmon's cgroup in it), once nothing is left in them."""
    for parent in CGROUP_ROOT.glob(f"*/{CGROUP_PARENT}"):
        for child in (parent / "conmon", parent):
            try:
                child.rmdir()
            except OSError:
                pass
