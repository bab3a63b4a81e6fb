"""CVE-2019-5736 and its kin: a container must never get a writable handle on a file the
runtime runs from (its binary or, for a script, its interpreter).

The attack: make the kernel run the runtime's executable inside the container, dumpable, then
open it through /proc/<pid>/exe and, once nothing executes it any more, reopen that handle for
writing through /proc/self/fd/N. The kernel resolves /proc/self/exe of the process that calls
execve, so a container program that is a script starting with "#!/proc/self/exe", or the path
/proc/self/exe itself, runs whatever the runtime's last process was executing.

Every test here runs the runtime from a private copy of its files (for a script, of its
interpreter too), so that a vulnerable runtime damages only the copy, whose checksum is the
verdict. The containers see the host's /usr (read-only) so that a dynamically linked
interpreter could really run in them: a static busybox rootfs alone would make the attack fail
for want of a loader, not because the runtime is safe.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from spec_support import Bundle, ConsoleReceiver, Containers, Runtime, SuiteResources

# The attacker's program when the runtime's executable is a Python interpreter: it holds a
# read-only fd of its own executable across an exec of a shell, which then reopens it for
# writing once the interpreter no longer runs.
ATTACK_PY = """\
import os
fd = os.open("/proc/self/exe", os.O_RDONLY)
os.set_inheritable(fd, True)
os.execv("/bin/sh", ["sh", "-c", "sleep 0.3; "
         "if echo written by the container >> /proc/self/fd/%d; then echo wrote; "
         "else echo write-failed; fi > /tmp/attack" % fd])
"""
EVIL = "#!/proc/self/exe\n" + ATTACK_PY


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_id(path: Path) -> str:
    st = path.stat()
    return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}:{st.st_ino}"


class PrivateRuntime:
    """A copy of the runtime under test: its executable and, for a script, its interpreter."""

    def __init__(self, rt: Runtime, where: Path) -> None:
        real = Path(os.path.realpath(rt.path))
        launcher = where / rt.name
        head = real.read_bytes()
        self.files: list[Path] = []
        if head.startswith(b"#!"):
            line, _, rest = head.partition(b"\n")
            interp, *flags = line[2:].split()
            copy = where / os.path.basename(os.path.realpath(interp.decode()))
            shutil.copy2(os.path.realpath(interp.decode()), copy)
            launcher.write_bytes(b" ".join([b"#!" + str(copy).encode(), *flags]) + b"\n" + rest)
            os.chmod(launcher, 0o755)
            self.files.append(copy)
        else:
            shutil.copy2(real, launcher)
        self.files.append(launcher)
        self.runtime = Runtime(path=str(launcher), root=rt.root, name=rt.name)
        self.hashes = {p: sha256(p) for p in self.files}

    @property
    def ids(self) -> list[str]:
        return [file_id(p) for p in self.files]

    def assert_unchanged(self) -> None:
        changed = [str(p) for p, digest in self.hashes.items() if sha256(p) != digest]
        assert changed == [], f"the container wrote to the runtime's files: {changed}"


@pytest.fixture
def private(ctr: Containers, rt: Runtime, suite: SuiteResources) -> Iterator[PrivateRuntime]:
    """The test's containers run with a private copy of the runtime (their teardown too)."""
    copy = PrivateRuntime(rt, suite.next_dir("private-runtime"))
    ctr.rt = copy.runtime
    yield copy
    copy.assert_unchanged()


def with_host_usr(b: Bundle) -> Bundle:
    """The host's /usr, read-only, and the merged-/usr links, so that a host executable run in
    the container finds its loader, its libraries and (Python's) standard library."""
    b.mount(destination="/usr", type="bind", source="/usr", options=["rbind", "ro"])
    b.config["root"]["readonly"] = False  # the attack reports through /tmp/attack
    for name in ("lib", "lib64"):
        if not (b.rootfs / name).exists() and os.path.isdir(f"/usr/{name}"):
            (b.rootfs / name).symlink_to(f"usr/{name}")
    (b.rootfs / "evil").write_text(EVIL)
    os.chmod(b.rootfs / "evil", 0o755)
    return b


ATTACKS = {
    "shebang": ["/evil"],
    "direct": ["/proc/self/exe", "-c", ATTACK_PY],
}


def attack_result(b: Bundle) -> str:
    result = b.rootfs / "tmp" / "attack"
    return result.read_text().strip() if result.exists() else "not run"


@pytest.mark.parametrize("pidns", ["own", "host"])
@pytest.mark.parametrize("form", sorted(ATTACKS))
def test_container_process_cannot_write_runtime(
    ctr: Containers, private: PrivateRuntime, form: str, pidns: str
) -> None:
    """The container's own process is the attack: `create` and `start` exec it."""
    b = with_host_usr(ctr.bundle(ATTACKS[form]))
    if pidns == "host":
        b.drop_namespace("pid")
    ctr.create(b)
    ctr.start(b.id)
    ctr.wait_stopped(b.id, timeout=30)
    private.assert_unchanged()
    assert attack_result(b) != "wrote"


@pytest.mark.needs_probe
@pytest.mark.parametrize(
    "form,pidns,tty",
    [("shebang", "own", False), ("direct", "own", False), ("shebang", "host", False),
     ("direct", "host", False), ("shebang", "own", True)],
)
def test_exec_cannot_write_runtime(
    ctr: Containers, private: PrivateRuntime, probe: str, form: str, pidns: str, tty: bool,
    console: Callable[[], ConsoleReceiver],
) -> None:
    """`exec` of the attack, while the container's init watches /proc for any process whose
    exe it can open (the runtime's exec'd process before and after its execve included) and
    tries to write to the runtime's files and to memfds through what it finds."""
    own = pidns == "own"
    b = with_host_usr(ctr.bundle([probe, "exewatch", "8", *private.ids,
                                  *(["memfd"] if own else [])]))
    if not own:
        b.drop_namespace("pid")
    ctr.create(b)
    ctr.start(b.id)
    if tty:
        receiver = console()
        pid_file = b.path / "exec.pid"
        res = ctr.rt("exec", "-t", "-d", "--console-socket", str(receiver.path),
                     "--pid-file", str(pid_file), b.id, *ATTACKS[form], timeout=30)
        assert res.ok, res.describe()
        receiver.wait()
        pid = int(pid_file.read_text())
        deadline = time.monotonic() + 20
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
    else:
        ctr.rt("exec", b.id, *ATTACKS[form], timeout=30)  # failing is the safe outcome
    for _ in range(20):  # and plain execs: every exec'd process passes the same stages
        assert ctr.rt("exec", b.id, "true", timeout=30).ok
    ctr.wait_stopped(b.id, timeout=30)
    out = (b.path / f"{b.id}.stdout").read_text()
    assert "done scans=" in out, out
    # Reaching the runtime's file is not yet the escape (runc 1.1 runs from a detached
    # read-only bind mount of itself: the container can open it, not write to it).
    written = [line for line in out.splitlines()
               if line.startswith("write ") and line.endswith(" ok")]
    assert written == [], f"a container process wrote to an executable: {written}"
    private.assert_unchanged()
    assert attack_result(b) != "wrote"

