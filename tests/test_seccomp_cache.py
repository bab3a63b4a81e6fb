"""The cache of compiled seccomp profiles (/run/ocirt-cache/seccomp): keyed by everything that
decides the program, written without following symlinks, and never trusted blindly: an entry
that is corrupted, planted or in a directory others control is compiled again, never loaded.

Each test runs in a mount namespace of its own where /run/ocirt-cache is an empty tmpfs, so
that the cache other suites share is never touched; the containers run for real, with ocirt
started from inside that namespace. Their profile makes mkdir fail with ENOSYS; the program
planted in the attacks allows everything, so a container that loaded it gets EROFS instead.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import subprocess
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from support import busybox_bundle, run

from ocirt import __version__, seccomp
from ocirt.linux import syscalls as sc

PROFILE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}],
}
CACHE = Path("/run/ocirt-cache")
SECCOMP_DIR = CACHE / "seccomp"
ALLOW_ALL = struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000)  # BPF_RET|BPF_K SECCOMP_RET_ALLOW


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = busybox_bundle(tmp_path_factory.mktemp("seccomp-cache"), "ocirt-test-seccomp-cache",
                          args=["mkdir", "/tmp/d"])
    config = json.loads((path / "config.json").read_text())
    config["linux"]["seccomp"] = PROFILE
    (path / "config.json").write_text(json.dumps(config))
    return path


def key() -> bytes:
    return seccomp.cache_key(PROFILE, seccomp.cache_facts())


def entry_path() -> Path:
    return SECCOMP_DIR / (key().hex() + ".bpf")


def in_private_cache(fn: Callable[[], None]) -> None:
    """Run ``fn`` in a child in a new mount namespace whose /run/ocirt-cache is an empty tmpfs
    (root's, mode 755); fail with whatever ``fn`` raised there."""
    CACHE.mkdir(exist_ok=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            sc.unshare(sc.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
            sc.mount("tmpfs", str(CACHE), "tmpfs", 0, "mode=755")
            fn()
            code = 0
        except BaseException:  # noqa: BLE001 - reported to the test in the parent
            os.write(w, traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        report = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report


def assert_profile_applied(root: Path, bundle: Path, cid: str) -> None:
    """A container of the bundle gets the profile's filter, not the planted one."""
    res = run(root, "run", "--bundle", str(bundle), cid, timeout=60)
    assert res.returncode == 1 and "Function not implemented" in res.stderr, res


def assert_valid_entry() -> None:
    """The cache now holds this profile's own program, in a regular file of ours."""
    path = entry_path()
    st = path.lstat()
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
    assert path.read_bytes() == seccomp.cache_entry(key(), seccomp.compile_bpf(PROFILE))


def test_the_key_covers_what_decides_the_program() -> None:
    """ocirt's version, libseccomp's (the installed library's), the machine and the kernel
    are in the key: a change of any of them makes another key, so an entry compiled by another
    libseccomp or ocirt is never looked up."""
    facts = seccomp.cache_facts()
    ldconfig = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True)
    lib = next(line.split(" => ")[1] for line in ldconfig.stdout.splitlines()
               if line.strip().startswith("libseccomp.so.2 "))
    installed = os.path.basename(os.path.realpath(lib)).removeprefix("libseccomp.so.")
    assert installed.count(".") == 2 and installed in facts
    assert __version__ in facts and os.uname().machine in facts and os.uname().release in facts
    base = seccomp.cache_key(PROFILE, facts)
    for i in range(len(facts)):
        other = [*facts]
        other[i] += "-other"
        assert seccomp.cache_key(PROFILE, other) != base, facts[i]
    assert seccomp.cache_key({**PROFILE, "defaultErrnoRet": 1}, facts) != base


def test_a_compiled_profile_is_cached_with_its_checksum(root: Path, bundle: Path) -> None:
    def scenario() -> None:
        assert_profile_applied(root, bundle, "cache1")
        st = SECCOMP_DIR.lstat()
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
        assert_valid_entry()
        assert os.listdir(SECCOMP_DIR) == [entry_path().name]  # no temporary left
        assert_profile_applied(root, bundle, "cache2")  # from the cache this time
        assert_valid_entry()

    in_private_cache(scenario)


def _plant(kind: str) -> Path | None:
    """Put an attack at the profile's entry; return the file a symlink points to, if any."""
    path = entry_path()
    good = seccomp.cache_entry(key(), seccomp.compile_bpf(PROFILE))
    header = len(good) - len(seccomp.compile_bpf(PROFILE))
    planted = {
        "allow-all-under-the-header": good[:header] + ALLOW_ALL,
        "truncated": good[:header + 8],
        "flipped-byte": good[:-1] + bytes([good[-1] ^ 0x01]),
        "entry-of-another-key": seccomp.cache_entry(bytes(32), ALLOW_ALL),
        "headerless-program": ALLOW_ALL,
        "owned-by-another-user": seccomp.cache_entry(key(), ALLOW_ALL),
        "writable-by-others": seccomp.cache_entry(key(), ALLOW_ALL),
    }
    SECCOMP_DIR.mkdir(mode=0o700)
    if kind == "symlink":
        target = CACHE / "elsewhere.bpf"
        target.write_bytes(seccomp.cache_entry(key(), ALLOW_ALL))
        os.chmod(target, 0o600)
        path.symlink_to(target)
        return target
    if kind == "fifo":
        os.mkfifo(path, 0o600)
        return None
    path.write_bytes(planted[kind])
    os.chmod(path, 0o666 if kind == "writable-by-others" else 0o600)
    if kind == "owned-by-another-user":
        os.chown(path, 1000, 1000)
    return None


@pytest.mark.parametrize("kind", [
    "allow-all-under-the-header", "truncated", "flipped-byte", "entry-of-another-key",
    "headerless-program", "owned-by-another-user", "writable-by-others", "symlink", "fifo"])
def test_a_bad_entry_is_compiled_again_never_loaded(root: Path, bundle: Path, kind: str) -> None:
    """A corrupted entry, one planted by someone else, a symlink to a valid-looking entry, a
    FIFO: the container gets the profile's filter, and the entry is replaced by a good one
    (never written through the symlink, whose target is unchanged)."""
    def scenario() -> None:
        target = _plant(kind)
        before = target.read_bytes() if target else b""
        assert_profile_applied(root, bundle, "bad1")
        assert_valid_entry()
        if target is not None:
            assert target.read_bytes() == before

    in_private_cache(scenario)


def _untrusted_dir(kind: str) -> Path:
    """Make the cache directory untrusted, with a valid entry allowing everything in it;
    return the directory the entry is in."""
    if kind == "parent-writable-by-others":
        os.chmod(CACHE, 0o777)
    if kind == "symlink":
        real = CACHE / "elsewhere"
        real.mkdir(mode=0o700)
        SECCOMP_DIR.symlink_to(real)
    else:
        real = SECCOMP_DIR
        real.mkdir(mode=0o777 if kind == "writable-by-others" else 0o700)
        os.chmod(real, 0o777 if kind == "writable-by-others" else 0o700)
        if kind == "owned-by-another-user":
            os.chown(real, 1000, 1000)
    (real / entry_path().name).write_bytes(seccomp.cache_entry(key(), ALLOW_ALL))
    os.chmod(real / entry_path().name, 0o600)
    return real


@pytest.mark.parametrize("kind", ["symlink", "writable-by-others", "owned-by-another-user",
                                  "parent-writable-by-others"])
def test_an_untrusted_cache_dir_is_not_used(root: Path, bundle: Path, kind: str) -> None:
    """The cache directory a symlink, writable by others, someone else's, or in a parent
    others can write: nothing in it is loaded (a valid entry allowing everything is there) and
    nothing is written to it; the profile is compiled for each container."""
    def scenario() -> None:
        real = _untrusted_dir(kind)
        before = {p.name: p.read_bytes() for p in real.iterdir()}
        assert_profile_applied(root, bundle, "untrusted1")
        assert {p.name: p.read_bytes() for p in real.iterdir()} == before

    in_private_cache(scenario)
