"""pytest wiring for the runtime-agnostic OCI runtime conformance suite.

Run:  .venv/bin/pytest spec-tests --runtime /usr/sbin/runc
(default runtime: build/prefix/bin/ocirt, the installed ocirt that `make test-install` puts there)

The runtime is driven only through its runc-compatible command line.  Every call gets
`--root <private dir>`, every container gets `linux.cgroupsPath = /spec-tests-<pid>/<id>`,
and at the end of the session anything the suite left behind (mounts, cgroups, state dirs,
processes) fails the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from spec_support import (
    ConsoleReceiver,
    Containers,
    MountNamespace,
    Runtime,
    SuiteResources,
    build_rootfs,
    cgroup_roots,
    is_under,
    kill_and_reap,
    mountinfo_lines,
    remove_cgroup_parents,
    safe_rmtree,
    scan_leaks,
    wait_pid_gone,
)

HERE = Path(__file__).resolve().parent
DEFAULT_RUNTIME = HERE.parent / "build" / "prefix" / "bin" / "ocirt"

RES_KEY = pytest.StashKey[SuiteResources]()
RUNTIME_KEY = pytest.StashKey[Runtime]()
RUNC_XFAIL_KEY = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("spec-tests", "OCI runtime conformance suite")
    group.addoption(
        "--runtime",
        default=str(DEFAULT_RUNTIME),
        help="runtime binary to test (runc-compatible CLI); default: %(default)s",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "runc_xfail(reason): known deviation of runc 1.1.x from the spec or the caller "
        "contract; strict xfail when the runtime under test is runc 1.1.x (strict=False: a race "
        "runc loses only sometimes)",
    )
    config.addinivalue_line("markers", "needs_probe: the test runs the static probe helper")
    if config.option.help or getattr(config.option, "version", False):
        return
    path = config.getoption("--runtime")
    resolved = shutil.which(path) or path
    if not (os.path.isfile(resolved) and os.access(resolved, os.X_OK)):
        hint = " (make test-install puts it there)" if path == str(DEFAULT_RUNTIME) else ""
        raise pytest.UsageError(f"--runtime {path}: not an executable file{hint}")
    if os.geteuid() != 0:
        raise pytest.UsageError("spec-tests must run as root")
    rt = Runtime(path=os.path.abspath(resolved), root=Path("/nonexistent"))
    config.stash[RUNTIME_KEY] = rt
    config.stash[RUNC_XFAIL_KEY] = False
    if rt.name == "runc":
        try:
            out = subprocess.run(
                [rt.path, "--version"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        config.stash[RUNC_XFAIL_KEY] = bool(re.match(r"runc version 1\.1\.", out))


def pytest_report_header(config: pytest.Config) -> str | None:
    rt = config.stash.get(RUNTIME_KEY, None)
    if rt is None:
        return None
    runc_note = " (runc 1.1.x: runc_xfail marks apply)" if config.stash[RUNC_XFAIL_KEY] else ""
    return f"runtime under test: {rt.path}{runc_note}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.stash.get(RUNC_XFAIL_KEY, False):
        return
    for item in items:
        for mark in item.iter_markers("runc_xfail"):
            reason = mark.kwargs.get("reason") or (mark.args[0] if mark.args else "")
            # strict unless the test says runc only sometimes fails it (a race it can lose)
            item.add_marker(pytest.mark.xfail(reason=f"runc 1.1.5: {reason}",
                                              strict=mark.kwargs.get("strict", True)))


# --------------------------------------------------------------------------------------------
# Session resources
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def suite(pytestconfig: pytest.Config) -> SuiteResources:
    """Private tmp dir, --root, cgroup parent, busybox rootfs and the compiled probe."""
    tmp = Path(tempfile.mkdtemp(prefix=f"spec-tests-{os.getpid()}-", dir="/tmp"))
    os.chmod(tmp, 0o755)
    root = tmp / "state"
    root.mkdir(mode=0o700)
    res = SuiteResources(tmp=tmp, root=root, cgroup_parent=f"spec-tests-{os.getpid()}")
    pytestconfig.stash[RES_KEY] = res

    probe_src = HERE / "probe" / "probe.c"
    probe_bin = tmp / "probe"
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        res.probe_error = "no C compiler (gcc) found to build spec-tests/probe/probe.c"
    else:
        proc = subprocess.run(
            [cc, "-static", "-O2", "-o", str(probe_bin), str(probe_src)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode == 0:
            res.probe = probe_bin
        else:
            res.probe_error = f"building the probe failed: {proc.stderr.strip()[:500]}"

    base = tmp / "rootfs-base"
    build_rootfs(base, res.probe)
    res.rootfs_base = base
    return res


@pytest.fixture(scope="session")
def rt(pytestconfig: pytest.Config, suite: SuiteResources) -> Runtime:
    """The runtime under test, bound to the session's private --root."""
    base = pytestconfig.stash[RUNTIME_KEY]
    return Runtime(path=base.path, root=suite.root, name=base.name)


@pytest.fixture(scope="session")
def runtime_is_runc(pytestconfig: pytest.Config) -> bool:
    return pytestconfig.stash[RUNC_XFAIL_KEY]


@pytest.fixture
def probe(suite: SuiteResources) -> str:
    """Path of the static probe inside the container rootfs (skips if it could not be built)."""
    if suite.probe is None:
        pytest.skip(suite.probe_error)
    return "/bin/probe"


def _tag(nodeid: str) -> str:
    return hashlib.sha1(nodeid.encode()).hexdigest()[:6]


@pytest.fixture
def workdir(suite: SuiteResources) -> Iterator[Path]:
    """A fresh directory for one test (removed afterwards unless something is mounted in it)."""
    d = suite.next_dir("t")
    yield d
    safe_rmtree(d)


@pytest.fixture
def ctr(
    rt: Runtime, suite: SuiteResources, workdir: Path, request: pytest.FixtureRequest
) -> Iterator[Containers]:
    """Container helper; every id it hands out gets `delete --force` at teardown."""
    helper = Containers(rt, suite, workdir, _tag(request.node.nodeid))
    yield helper
    problems = helper.cleanup()
    if problems:
        pytest.fail("teardown found leftovers:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def console(workdir: Path) -> Iterator[Callable[[], ConsoleReceiver]]:
    """Factory for console-socket receivers bound in the test's workdir."""
    receivers: list[ConsoleReceiver] = []

    def make() -> ConsoleReceiver:
        r = ConsoleReceiver(workdir / f"console{len(receivers)}.sock")
        receivers.append(r)
        return r

    yield make
    for r in receivers:
        r.close()


# --------------------------------------------------------------------------------------------
# Leak check at the end of the session
# --------------------------------------------------------------------------------------------


def _kill_leaked_processes(res: SuiteResources) -> None:
    """SIGKILL processes in the suite's cgroups or rooted/working in its tmp dir, and wait."""
    marker = f"/{res.cgroup_parent}/"
    victims = []
    for pdir in Path("/proc").iterdir():
        if not pdir.name.isdigit() or int(pdir.name) == os.getpid():
            continue
        hit = False
        with contextlib.suppress(OSError):
            hit = marker in (pdir / "cgroup").read_text()
        for link in ("cwd", "root"):
            with contextlib.suppress(OSError):
                hit = hit or is_under(os.readlink(pdir / link), res.tmp)
        if hit:
            with contextlib.suppress(OSError):
                os.kill(int(pdir.name), signal.SIGKILL)
                victims.append(int(pdir.name))
    for pid in victims:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        wait_pid_gone(pid, 5)


def _remove_leaked_cgroups(res: SuiteResources) -> None:
    for root in cgroup_roots():
        parent = root / res.cgroup_parent
        if not parent.is_dir():
            continue
        for dirpath, _dirs, _files in sorted(os.walk(parent), key=lambda t: -len(t[0])):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def _detach_leaked_mounts(res: SuiteResources) -> None:
    points = [line.split()[4] for line in mountinfo_lines()]
    points = [p for p in points if is_under(p, res.tmp)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=10)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    res = session.config.stash.get(RES_KEY, None)
    if res is None:
        return
    for cleanup in res.extra_cleanups:
        with contextlib.suppress(Exception):
            cleanup()
    leaks = scan_leaks(res)
    if not leaks:
        leaks.extend(remove_cgroup_parents(res))
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if leaks:
        if tr is not None:
            tr.write_sep("=", "spec-tests: resources left behind (run FAILED)", red=True)
            for line in leaks:
                tr.write_line(f"LEAK {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        # Best effort so that the next run starts clean; the run is already marked failed.
        _kill_leaked_processes(res)
        _remove_leaked_cgroups(res)
        for entry in list(res.root.iterdir()) if res.root.is_dir() else []:
            shutil.rmtree(entry, ignore_errors=True)
        _detach_leaked_mounts(res)
    safe_rmtree(res.tmp)


@pytest.fixture
def own_mntns() -> Iterator[MountNamespace]:
    """A mount namespace of the test's own, to run the runtime in (see MountNamespace)."""
    ns = MountNamespace()
    try:
        yield ns
    finally:
        kill_and_reap(ns.proc)
