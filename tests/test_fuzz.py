"""A property-based fuzzer of config.json: the valid busybox config, mutated into invalid ones.

For every generated config, ``ocirt check`` and ``ocirt create`` (then ``delete --force``) each
either succeed or fail cleanly: a non-zero exit and exactly one line on stderr starting with
"ocirt: ", never a traceback, never a hang. They are one validator: when ``check`` refuses a
config, ``create`` refuses it with the same line and makes nothing (no state dir); when ``check``
takes it, ``create`` never fails with a config.json message. After ``delete --force`` nothing is
left: no state dir, no mount under the test's directory, no cgroup under the test's parent, no
process of the container, nothing written outside the rootfs through a hostile path.

The JSON Schema (ocirt/schema) is the cross-check of that validator, run in-process on many more
configs: whatever the schema refuses, the parser refuses too.

cgroupsPath takes any value, "/", "." and "/a/.." included: ``create`` and ``delete`` run in a
cgroup sandbox (spec-tests/cgroup_sandbox.py) whose root, in every hierarchy, is the test's
parent cgroup. Even an ocirt that signalled or removed everything below "the root" would reach
nothing of the host's.

The default run is bounded and deterministic (``make test``); ``OCIRT_FUZZ_EXAMPLES=10000``
(``make fuzz``) runs a long randomised one (``OCIRT_FUZZ_SEED`` fixes its seed).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import OCIRT, REPO
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from support import json_paths, validator_verdict, without_nulls

from ocirt.cgroups import detect
from ocirt.cgroups.fs import resolve_paths
from ocirt.schema import validate_config as schema_problems

EXAMPLES = int(os.environ.get("OCIRT_FUZZ_EXAMPLES", "0") or 0)
LONG = EXAMPLES > 0
TIMEOUT = 30  # seconds per command: anything longer is a hang
PARENT = f"ocirt-test-fuzz-{os.getpid()}"
SANDBOX = f"/{PARENT}"  # the cgroup that is the root of every hierarchy for create and delete
_spec = importlib.util.spec_from_file_location("cgroup_sandbox",
                                               REPO / "spec-tests" / "cgroup_sandbox.py")
assert _spec is not None and _spec.loader is not None
cgroup_sandbox = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cgroup_sandbox)
BASE: dict[str, Any] = json.loads((REPO / "bundles" / "busybox" / "config.json").read_text())


# -- the values -------------------------------------------------------------------------------

HUGE = [-1, 0, 1, 7, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63,
        2**64 - 1, 2**64, -(2**31), -(2**63), -(2**64), 10**30, -(10**30)]
NUMBERS = st.one_of(st.sampled_from(HUGE), st.integers(),
                    st.floats(allow_nan=True, allow_infinity=True))
ODD_TEXT = ["", " ", "\x00", "a\x00b", "/\x00", "\ud800", "x\udcff", "\u2028", "\n", "é",
            "\U0001f4a5" * 50, "x" * 5000, "../" * 40, "%s%n", "$(reboot)", "'\""]
TEXT = st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=20))
#: Paths that try to leave the rootfs: through symlinks the fixture plants in it (/escape,
#: /up, /loop) or ``..``; relative ones; ones below a file. None names a host file we'd harm.
HOSTILE_PATHS = ["", ".", "..", "relative/x", "x/../../y", "/", "//", "/x//y/./z", "/escape",
                 "/escape/x", "/up", "/up/x", "/up/../../x", "/loop", "/loop/x", "/../outside/x",
                 "/../../../../outside/x", "/proc/self/root/x", "/proc/1/root/x",
                 "/proc/self/fd/0", "/dev/null/x", "/bin/busybox", "/bin/busybox/x", "/etc/..",
                 "/tmp/\x00", "/tmp/\ud800", "/" + "d" * 300, "/" + "a/" * 300, "/tmp/\n",
                 "/sys/fs/cgroup/../../escape/x", "/nonexistent/deep/path"]
PATHS = st.one_of(st.sampled_from(HOSTILE_PATHS), TEXT, TEXT.map(lambda t: "/" + t))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, PATHS)
JUNK = st.recursive(SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(TEXT, c, max_size=4),
                    max_leaves=10)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually ``value``, sometimes junk of any type."""
    return st.one_of(value, value, value, JUNK)


def _objects(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of ``fields`` (missing required fields included) and junk keys."""
    return st.fixed_dictionaries({}, optional={k: _maybe(v) for k, v in fields.items()}).flatmap(
        lambda d: st.dictionaries(TEXT, JUNK, max_size=1).map(lambda extra: {**extra, **d}))


MOUNTS = st.lists(_objects({
    "destination": PATHS,
    "type": st.sampled_from(["tmpfs", "bind", "proc", "sysfs", "devpts", "mqueue", "cgroup",
                             "cgroup2", "overlay", "none", "", "bogusfs"]),
    "source": st.sampled_from(["", "tmpfs", "proc", "/nonexistent", "relative", "bindsrc",
                               "bindfile", "/dev/null", "none", "\x00"]),
    "options": st.lists(st.sampled_from(["bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec",
                                         "remount", "rshared", "shared", "rslave", "private",
                                         "unbindable", "size=-1", "size=1", "mode=99999",
                                         "mode=755", "nosymfollow", "strictatime", "tmpcopyup",
                                         "bogus=1", "", ",", "\x00"]), max_size=5),
}), max_size=4)
NAMESPACES = st.lists(_objects({
    "type": st.sampled_from(["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
                             "bogus", "", "MOUNT"]),
    "path": st.sampled_from(["", "/nonexistent", "relative", "/proc/self/ns/bogus", "bindfile",
                             "/dev/null"]),
}), max_size=9)
RLIMITS = st.lists(_objects({
    "type": st.sampled_from(["RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_NPROC", "RLIMIT_STACK",
                             "RLIMIT_BOGUS", "rlimit_nofile", "", "NOFILE"]),
    "soft": NUMBERS, "hard": NUMBERS,
}), max_size=4)
HOOK = _objects({
    "path": st.sampled_from(["/nonexistent/hook", "relative/hook", "/bin/false", "/bin/true",
                             "/", "", "bindfile", "/dev/null", "/bin/\x00"]),
    "args": st.lists(TEXT, max_size=3), "env": st.lists(TEXT, max_size=3),
    "timeout": NUMBERS,
})
HOOKS = st.dictionaries(st.sampled_from(["prestart", "createRuntime", "createContainer",
                                         "startContainer", "poststart", "poststop", "bogus"]),
                        _maybe(st.lists(HOOK, max_size=2)), max_size=3)
ACTIONS = st.sampled_from(["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_TRACE",
                           "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_KILL_PROCESS", "BOGUS", ""])
SECCOMP = _objects({
    "defaultAction": ACTIONS, "defaultErrnoRet": NUMBERS,
    "architectures": st.lists(st.sampled_from(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "BOGUS", ""]),
                              max_size=3),
    "flags": st.lists(st.sampled_from(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC",
                                       "BOGUS"]), max_size=2),
    "listenerPath": PATHS, "listenerMetadata": TEXT,
    "syscalls": st.lists(_objects({
        "names": st.lists(st.sampled_from(["read", "write", "mount", "bogus_syscall", "", "\x00"]),
                          max_size=3),
        "action": ACTIONS, "errnoRet": NUMBERS,
        "args": st.lists(_objects({"index": NUMBERS, "value": NUMBERS, "valueTwo": NUMBERS,
                                   "op": st.sampled_from(["SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ",
                                                          "BOGUS"])}), max_size=2),
    }), max_size=3),
})
DEVICE_RULE = _objects({"allow": st.booleans(), "type": st.sampled_from(["a", "c", "b", "x", ""]),
                        "major": NUMBERS, "minor": NUMBERS,
                        "access": st.sampled_from(["rwm", "r", "", "xyz"])})
THROTTLE = st.lists(_objects({"major": NUMBERS, "minor": NUMBERS, "rate": NUMBERS,
                              "weight": NUMBERS, "leafWeight": NUMBERS}), max_size=2)
RESOURCES = _objects({
    "devices": st.lists(DEVICE_RULE, max_size=3),
    "memory": _objects({k: NUMBERS for k in ("limit", "reservation", "swap", "kernel",
                                             "kernelTCP", "swappiness")}
                       | {"disableOOMKiller": st.booleans()}),
    "cpu": _objects({k: NUMBERS for k in ("shares", "quota", "burst", "period", "realtimeRuntime",
                                          "realtimePeriod", "idle")}
                    | {"cpus": st.sampled_from(["0", "0-1", "0-1000", "junk", ""]),
                       "mems": st.sampled_from(["0", "9", "junk"])}),
    "pids": _objects({"limit": NUMBERS}),
    "blockIO": _objects({"weight": NUMBERS, "leafWeight": NUMBERS, "weightDevice": THROTTLE,
                         "throttleReadBpsDevice": THROTTLE, "throttleWriteIOPSDevice": THROTTLE}),
    "hugepageLimits": st.lists(_objects({"pageSize": st.sampled_from(["2MB", "1GB", "junk",
                                                                      "../x", "a/b"]),
                                         "limit": NUMBERS}), max_size=2),
    "network": _objects({"classID": NUMBERS,
                         "priorities": st.lists(_objects({"name": TEXT, "priority": NUMBERS}),
                                                max_size=2)}),
    "rdma": st.dictionaries(TEXT, _objects({"hcaHandles": NUMBERS, "hcaObjects": NUMBERS}),
                            max_size=2),
    "unified": st.dictionaries(st.sampled_from(["memory.max", "pids.max", "../../x", "a/b",
                                                ".hidden", "cgroup.procs", "bogus", ""]),
                               TEXT, max_size=2),
})
DEVICES = st.lists(_objects({"type": st.sampled_from(["c", "b", "p", "u", "x"]), "path": PATHS,
                             "major": NUMBERS, "minor": NUMBERS, "fileMode": NUMBERS,
                             "uid": NUMBERS, "gid": NUMBERS}), max_size=2)
ID_MAPPINGS = st.lists(_objects({"containerID": NUMBERS, "hostID": NUMBERS, "size": NUMBERS}),
                       max_size=2)
PROCESS_USER = _objects({"uid": NUMBERS, "gid": NUMBERS, "umask": NUMBERS,
                         "additionalGids": st.lists(NUMBERS, max_size=3)})

#: Fields with their own hostile values (the generic mutations below reach every other one).
TARGETED: dict[tuple[str, ...], st.SearchStrategy[Any]] = {
    ("mounts",): MOUNTS,
    ("linux", "namespaces"): NAMESPACES,
    ("process", "rlimits"): RLIMITS,
    ("hooks",): HOOKS,
    ("linux", "seccomp"): SECCOMP,
    ("linux", "resources"): RESOURCES,
    ("linux", "devices"): DEVICES,
    ("linux", "uidMappings"): ID_MAPPINGS,
    ("linux", "gidMappings"): ID_MAPPINGS,
    ("linux", "sysctl"): st.dictionaries(st.sampled_from(["net.ipv4.ip_forward", "kernel.shmmax",
                                                          "kernel.hostname", "vm.swappiness",
                                                          "net/../../x", "bogus"]), TEXT,
                                         max_size=2),
    ("linux", "maskedPaths"): st.lists(PATHS, max_size=3),
    ("linux", "readonlyPaths"): st.lists(PATHS, max_size=3),
    ("linux", "rootfsPropagation"): st.sampled_from(["shared", "rshared", "slave", "private",
                                                     "unbindable", "bogus"]),
    ("linux", "timeOffsets"): st.dictionaries(st.sampled_from(["monotonic", "boottime", "bogus"]),
                                              _objects({"secs": NUMBERS, "nanosecs": NUMBERS}),
                                              max_size=2),
    ("linux", "personality"): _objects({"domain": st.sampled_from(["LINUX", "LINUX32", "X"]),
                                        "flags": st.lists(TEXT, max_size=2)}),
    ("linux", "intelRdt"): _objects({"closID": TEXT, "l3CacheSchema": TEXT}),
    ("root", "path"): st.sampled_from(["", "rootfs", "./rootfs", "rootfs/", "rootfs/bin/busybox",
                                       "config.json", "nonexistent", "/nonexistent", "bindfile",
                                       "rootfs/\x00", "rootfs\ud800", "/proc/self/fd/0"]),
    ("process", "cwd"): PATHS,
    ("process", "args"): st.lists(TEXT, max_size=3),
    ("process", "env"): st.lists(TEXT, max_size=3),
    ("process", "user"): PROCESS_USER,
    ("process", "capabilities"): st.dictionaries(
        st.sampled_from(["bounding", "effective", "permitted", "inheritable", "ambient"]),
        st.lists(st.sampled_from(["CAP_SYS_ADMIN", "CAP_BOGUS", "cap_chown", "", "CAP_SYS_RESOURCE"]),
                 max_size=3), max_size=3),
    ("process", "oomScoreAdj"): NUMBERS,
    ("process", "consoleSize"): _objects({"height": NUMBERS, "width": NUMBERS}),
    ("process", "ioPriority"): _objects({"class": st.sampled_from(["IOPRIO_CLASS_RT", "BOGUS"]),
                                         "priority": NUMBERS}),
    ("process", "scheduler"): _objects({"policy": st.sampled_from(["SCHED_OTHER", "SCHED_FIFO",
                                                                   "SCHED_DEADLINE", "X"]),
                                        "nice": NUMBERS, "priority": NUMBERS,
                                        "runtime": NUMBERS, "flags": st.lists(TEXT, max_size=2)}),
    ("hostname",): TEXT,
    ("ociVersion",): st.sampled_from(["1.2.0", "0.0.1", "99.0.0", "", "junk"]),
    ("annotations",): st.dictionaries(TEXT, JUNK, max_size=2),
}


ALL_PATHS = sorted(set(json_paths(BASE)) | set(TARGETED), key=repr)

MUTATION = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(ALL_PATHS), JUNK),         # a wrong type anywhere
    st.tuples(st.just("del"), st.sampled_from(ALL_PATHS[1:])),           # a missing field
    st.sampled_from(sorted(TARGETED, key=repr)).flatmap(                 # a hostile value
        lambda p: st.tuples(st.just("set"), st.just(p), TARGETED[p])),
    st.tuples(st.just("append"), st.sampled_from([("mounts",), ("linux", "namespaces"),
                                                  ("process", "rlimits")]),
              st.one_of(MOUNTS, NAMESPACES, RLIMITS)),
)
#: What becomes of the JSON text: as is, cut short, or made invalid UTF-8.
ENCODING = st.sampled_from(["json"] * 18 + ["truncated", "latin1"])
#: cgroupsPath: none (the default: the container id), the roots of the hierarchy and the
#: runtime's own cgroup in their spellings, escapes, text, junk of other types.
CGROUPS_PATH = st.one_of(st.none(), st.none(), st.none(), TEXT, TEXT.map(lambda t: "/" + t),
                         st.sampled_from(["/", "//", "///", "/.", "/./", "/a/..", "/a/b/../..",
                                          ".", "./", "", "a/..", "..", "../..", "/..", "/../x",
                                          "a/../../b", "./x", "//x", "a/b/c", "/x/y",
                                          "cgroup.procs", "/cgroup.procs/x", "\x00",
                                          "a\ud800"]), JUNK)


def _apply(doc: Any, mutation: tuple[Any, ...]) -> Any:
    """Apply one mutation; a path that no longer exists (an earlier one changed it) is skipped."""
    kind, path = mutation[0], mutation[1]
    if kind == "set" and not path:
        return copy.deepcopy(mutation[2])
    parent = doc
    for key in path[:-1]:
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            return doc
    last: Any = path[-1] if path else None
    if kind == "set" and (isinstance(parent, dict) or
                          (isinstance(parent, list) and isinstance(last, int)
                           and last < len(parent))):
        parent[last] = copy.deepcopy(mutation[2])
    elif kind == "del" and isinstance(parent, dict | list):
        try:
            del parent[last]
        except (KeyError, IndexError, TypeError):
            pass
    elif kind == "append" and isinstance(parent, dict) and isinstance(parent.get(last), list):
        parent[last].extend(copy.deepcopy(mutation[2]))
    return doc


# -- the environment --------------------------------------------------------------------------

class Env:
    """One module's directory: a pristine rootfs, the bundle, the state root, the traps."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.pristine = base / "pristine"
        self.bundle = base / "bundle"
        self.rootfs = self.bundle / "rootfs"
        self.root = base / "state"
        self.outside = base / "outside"  # what an escape through /escape, /up or .. would reach
        self.count = 0

    def refresh_rootfs(self) -> None:
        """A fresh copy of the rootfs, with symlinks that point out of it."""
        if self.rootfs.exists():
            subprocess.run(["rm", "-rf", str(self.rootfs)], check=True)
        subprocess.run(["cp", "-a", str(self.pristine), str(self.rootfs)], check=True)
        (self.rootfs / "escape").symlink_to(self.outside)
        (self.rootfs / "up").symlink_to("../../outside")
        (self.rootfs / "loop").symlink_to("loop")
        (self.rootfs / "etc" / "escape").symlink_to("../../../outside")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(tmp_path_factory.mktemp("fuzz"))
    subprocess.run([str(REPO / "bundles" / "mkrootfs"), str(e.pristine)], check=True,
                   capture_output=True)
    e.bundle.mkdir()
    e.outside.mkdir()
    (e.bundle / "bindsrc").mkdir()
    (e.bundle / "bindfile").write_text("x")
    e.refresh_rootfs()
    yield e
    for cid in os.listdir(e.root) if e.root.exists() else []:
        _run("--root", str(e.root), "delete", "--force", cid, sandboxed=True)
    cgroup_sandbox.remove(SANDBOX)


def _remove_parent_cgroups() -> None:
    for h in detect.hierarchies():
        top = os.path.join(h.mountpoint, PARENT)
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def _run(*args: str, sandboxed: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ocirt with its output in files (a created container's init keeps the caller's stdio,
    so pipes would stay open); a command still running after TIMEOUT is a hang. ``sandboxed``:
    in the cgroup sandbox (every command that touches cgroups: they are the sandbox's)."""
    cmd = [str(OCIRT), *args]
    if sandboxed:
        cmd = [sys.executable, str(cgroup_sandbox.__file__), SANDBOX, "--", *cmd]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"ocirt {' '.join(args)} hung for {TIMEOUT} s")
        out.seek(0)
        err.seek(0)
        res = subprocess.CompletedProcess(proc.args, proc.returncode,
                                          out.read().decode(errors="replace"),
                                          err.read().decode(errors="replace"))
    assert not (sandboxed and res.returncode == 125), f"no cgroup sandbox: {res.stderr}"
    return res


def _assert_clean_outcome(res: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    if res.returncode != 0:
        assert res.returncode > 0, f"killed by signal {-res.returncode}: {res.stderr}"
        assert res.stderr.startswith("ocirt: ") and res.stderr.count("\n") == 1 \
            and res.stderr.endswith("\n"), f"not one line: {res.stderr!r}"


def _cgroup_paths(cgroups_path: Any, cid: str) -> list[str]:
    """The container's own cgroups on the host, as ocirt places them in the sandbox, where the
    root of every hierarchy, and ocirt's own cgroup, is our parent (none for a path it
    refuses)."""
    hs = [detect.Hierarchy(h.key, h.controllers, os.path.join(h.mountpoint, PARENT), "/")
          for h in detect.hierarchies()]
    paths = [*resolve_paths(f"/{cid}", cid, hs).values()]  # without a cgroupsPath
    if isinstance(cgroups_path, str) and cgroups_path:
        try:
            paths += resolve_paths("/" + cgroups_path.lstrip("/"), cid, hs).values()
        except Exception:  # noqa: BLE001 - refused (a root, '..'): ocirt made nothing
            pass
    return paths


def _leftovers(e: Env, cid: str, cgroups_path: Any) -> list[str]:
    """Everything of the container still on the host."""
    left = []
    if e.root.exists() and os.listdir(e.root):
        left.append(f"state: {os.listdir(e.root)}")
    with open("/proc/self/mountinfo") as f:
        left += [f"mount: {line.strip()}" for line in f if str(e.base) in line]
    own = _cgroup_paths(cgroups_path, cid)
    left += [f"cgroup: {path}" for path in own if os.path.exists(path)]
    _remove_parent_cgroups()  # the parents create made on the way (as runc, it leaves them)
    for h in detect.hierarchies():
        top = os.path.join(h.mountpoint, PARENT)
        for dirpath, dirnames, _ in os.walk(top):
            left += [f"cgroup: {os.path.join(dirpath, d)}" for d in dirnames]
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            root = os.readlink(f"/proc/{pid}/root")
        except OSError:
            continue
        if str(e.base) in cmdline or root.startswith(str(e.base)):
            left.append(f"process {pid}: {cmdline}")
    if os.listdir(e.outside):
        left.append(f"written outside the rootfs: {os.listdir(e.outside)}")
    return left


def _force_clean(e: Env, cid: str, cgroups_path: Any) -> None:
    """After a failed check: remove what ocirt left, so that the next example starts clean."""
    _run("--root", str(e.root), "delete", "--force", cid, sandboxed=True)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if str(e.base) in line]
    for point in reversed(points):
        subprocess.run(["umount", "-l", point], capture_output=True)
    for line in _leftovers(e, cid, cgroups_path):
        if line.startswith("process "):
            try:
                os.kill(int(line.split()[1].rstrip(":")), signal.SIGKILL)
            except OSError:
                pass
    cgroup_sandbox.remove(SANDBOX)  # what runs in it, then its cgroups
    if e.root.exists():
        shutil.rmtree(e.root, ignore_errors=True)
    for entry in os.listdir(e.outside):
        subprocess.run(["rm", "-rf", str(e.outside / entry)], check=False)


def _encodable(text: str) -> bool:
    """False for a lone surrogate: no path has it, and ocirt refuses such a string itself."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _write_config(e: Env, doc: Any, encoding: str, cid: str, cgroups_path: Any) -> Any:
    """Write config.json; returns its cgroupsPath."""
    if isinstance(doc, dict) and isinstance(doc.get("linux"), dict) and cgroups_path is not None:
        doc["linux"]["cgroupsPath"] = cgroups_path
    if isinstance(doc, dict) and isinstance(doc.get("root"), dict):
        path = doc["root"].get("path")
        if isinstance(path, str) and "\x00" not in path and _encodable(path):
            # never let a root path name a host directory outside the test's
            real = os.path.realpath(os.path.join(e.bundle, path), strict=False)
            if os.path.isdir(real) and not real.startswith(str(e.base) + "/"):
                doc["root"]["path"] = "nonexistent"
    text = json.dumps(doc)
    data = text.encode()
    if encoding == "truncated":
        data = data[: len(data) // 2]
    elif encoding == "latin1":
        data = text.replace("busybox", "b\xfcsyb\xf6x").encode("latin-1", errors="replace")
    (e.bundle / "config.json").write_bytes(data)
    linux = doc.get("linux") if isinstance(doc, dict) else None
    return linux.get("cgroupsPath") if isinstance(linux, dict) else None


def _seeded(test: Any) -> Any:
    """``OCIRT_FUZZ_SEED`` fixes the seed of a long run (the default run is derandomized)."""
    value = os.environ.get("OCIRT_FUZZ_SEED", "")
    return seed(int(value))(test) if value else test


@given(mutations=st.lists(MUTATION, min_size=1, max_size=4), encoding=ENCODING,
       cgroups_path=CGROUPS_PATH)
@settings(max_examples=EXAMPLES or 150, deadline=None, database=None, derandomize=not LONG,
          print_blob=True, suppress_health_check=list(HealthCheck))
@_seeded
def test_fuzzed_config(env: Env, mutations: list[tuple[Any, ...]], encoding: str,
                       cgroups_path: Any) -> None:
    e = env
    e.count += 1
    cid = f"fz{e.count}"
    doc: Any = copy.deepcopy(BASE)
    doc["process"]["args"] = ["sleep", "30"]
    for m in mutations:
        doc = _apply(doc, m)
    cgroups_path = _write_config(e, doc, encoding, cid, cgroups_path)
    passed = False
    try:
        checked = _run("check", str(e.bundle))
        _assert_clean_outcome(checked)
        created = _run("--root", str(e.root), "create", "--bundle", str(e.bundle), cid,
                       sandboxed=True)
        _assert_clean_outcome(created)
        # check says what the validator says (create's own load, parse and validate_config)
        verdict = validator_verdict(bundle=str(e.bundle))
        assert checked.stderr == (f"ocirt: {verdict}\n" if verdict else ""), verdict
        if checked.returncode != 0:
            # one validator: the same line, and create refused before it made anything
            assert created.returncode != 0, f"check refused, create took it: {checked.stderr}"
            assert created.stderr == checked.stderr
            assert not e.root.exists() or not os.listdir(e.root), "create made a state dir"
        else:
            assert not created.stderr.startswith("ocirt: config.json:"), \
                f"check took it, create refused the config: {created.stderr}"
        deleted = _run("--root", str(e.root), "delete", "--force", cid, sandboxed=True)
        assert "Traceback" not in deleted.stderr, deleted.stderr
        assert deleted.returncode == 0, deleted.stderr
        left = _leftovers(e, cid, cgroups_path)
        assert not left, "left behind after delete --force:\n" + "\n".join(left)
        passed = True
    finally:
        if not passed:
            _force_clean(e, cid, cgroups_path)
        if not passed or not (e.rootfs / "bin" / "busybox").is_file() or e.count % 25 == 0:
            e.refresh_rootfs()


@given(mutations=st.lists(MUTATION, min_size=1, max_size=4))
@settings(max_examples=EXAMPLES or 1000, deadline=None, database=None,
          derandomize=not LONG, print_blob=True, suppress_health_check=list(HealthCheck))
@_seeded
def test_schema_refusals_are_parser_refusals(mutations: list[tuple[Any, ...]]) -> None:
    """The cross-check: a config the JSON Schema refuses, the parser (create's and check's
    validator) refuses too. A miss is a rule of the schema the parser lacks."""
    doc: Any = copy.deepcopy(BASE)
    for m in mutations:
        doc = _apply(doc, m)
    doc = json.loads(json.dumps(doc))  # what a config.json file decodes to
    problems = schema_problems(without_nulls(doc))
    verdict = validator_verdict(doc)
    assert "Traceback" not in verdict and "\n" not in verdict
    if problems:
        assert verdict, f"the schema refuses it ({problems[0]}), the parser takes it"
