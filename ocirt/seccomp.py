"""linux.seccomp: compiled to BPF with libseccomp (through pyseccomp) and loaded with seccomp(2).

Compiling happens in the runtime, before anything forks, and the program is cached on disk by a
hash of the profile and of what else decides the program (libseccomp's and ocirt's versions, the
machine, the kernel), checksummed and checked before use (see :func:`program`), so containers
that share a profile (podman's and Docker's default) never import pyseccomp on the hot path.
The init loads the raw program itself: no library is needed once it is inside the container.
"""

from __future__ import annotations

import ctypes
import errno
import os

from . import jsonio
from .errors import ConfigError, SysError
from .specraw import ACTIONS, ARCHES, FLAGS, OPERATORS
from .state import write_atomic

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

SECCOMP_FILTER_FLAG_NEW_LISTENER = 8
_DEFAULT_ERRNO = 1  # EPERM
_NR_SECCOMP = {"x86_64": 317, "aarch64": 277}.get(os.uname().machine, -1)
_SECCOMP_SET_MODE_FILTER = 1


def _action(name: str, errno_ret: int | None, where: str) -> int:
    if name not in ACTIONS:
        raise ConfigError(f"{where}: unknown seccomp action {name!r}")
    value = ACTIONS[name]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        value |= (_DEFAULT_ERRNO if errno_ret is None else errno_ret) & 0xFFFF
    return value


class Filter:
    """A compiled profile, ready for the init or an exec'd process to load.

    With SCMP_ACT_NOTIFY rules, loading yields a notify fd that goes, with the container's
    process state, to the listener at ``listenerPath`` (connected by the runtime beforehand,
    since the path is on the host)."""

    __slots__ = ("bpf", "flags", "listener_fd", "metadata", "oci_version")

    def __init__(self, bpf: bytes, flags: int, listener_fd: int = -1, metadata: str = "",
                 oci_version: str = "") -> None:
        self.bpf = bpf
        self.flags = flags
        self.listener_fd = listener_fd
        self.metadata = metadata
        self.oci_version = oci_version


def prepare(profile: dict[str, Any], oci_version: str) -> Filter:
    """Compile (or fetch from the cache) and, for notify rules, connect to the listener."""
    # the profile was checked when config.json was parsed (ocirt.specraw.seccomp): its
    # members have their types, its names are known, a notify rule has its listener
    notify = profile["defaultAction"] == "SCMP_ACT_NOTIFY" or any(
        rule["action"] == "SCMP_ACT_NOTIFY" for rule in profile.get("syscalls") or [])
    listener = profile.get("listenerPath") or ""
    filt = Filter(program(profile), flags_of(profile), -1, profile.get("listenerMetadata") or "",
                  oci_version)
    if notify:
        import socket

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(listener)
        except OSError as exc:
            sock.close()
            raise SysError(f"connect to seccomp listener {listener}", exc.errno or 0) from None
        filt.listener_fd = sock.detach()
        filt.flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER
    return filt


def install(filt: Filter, state: dict[str, Any], pid: int) -> None:
    """Load the filter on this process; hand a notify fd to the listener with the
    ContainerProcessState (``state`` is the container's state, ``pid`` this process's)."""
    fd = load(filt.bpf, filt.flags)
    if filt.listener_fd < 0:
        return
    import socket

    message = {"ociVersion": filt.oci_version, "fds": ["seccompFd"], "pid": pid,
               "metadata": filt.metadata, "state": state}
    sock = socket.socket(fileno=filt.listener_fd)
    try:
        socket.send_fds(sock, [jsonio.dumps(message).encode()], [fd])
    except OSError as exc:
        raise SysError("send the seccomp notify fd to the listener", exc.errno or 0) from None
    finally:
        sock.close()
        os.close(fd)
        filt.listener_fd = -1


def flags_of(profile: dict[str, Any]) -> int:
    out = 0
    for name in profile.get("flags") or []:
        if name not in FLAGS:
            raise ConfigError(f"linux.seccomp.flags: unknown or unsupported flag {name!r}")
        out |= FLAGS[name]
    return out


def compile_bpf(profile: dict[str, Any]) -> bytes:
    """The profile as a classic BPF program. Syscalls this libseccomp does not know, and rules
    whose action is the default one, are skipped, as runc does.

    Each architecture gets its own filter, merged at the end: on x86 libseccomp rewrites socket
    rules for socketcall(2), where two rules runc accepts (podman's ``socket`` rules without
    CAP_AUDIT_WRITE) collide with EEXIST; such a rule is dropped for that compat architecture
    only, never for the native one."""
    import tempfile

    import pyseccomp as ps

    default = _action(profile["defaultAction"], profile.get("defaultErrnoRet"),
                      "linux.seccomp.defaultAction")
    native = ps.system_arch()
    arches = [native]
    for arch in profile.get("architectures") or []:
        if arch not in ARCHES:
            raise ConfigError(f"linux.seccomp.architectures: unknown architecture {arch!r}")
        if getattr(ps.Arch, ARCHES[arch]) not in arches:
            arches.append(getattr(ps.Arch, ARCHES[arch]))
    filters = []
    for arch in arches:
        one = ps.SyscallFilter(default)
        one.set_attr(ps.Attr.CTL_NNP, 0)  # the runtime decides no_new_privs
        if arch != native:
            one.add_arch(arch)
            one.remove_arch(ps.Arch.NATIVE)
        _add_rules(ps, one, profile, default, compat=arch != native)
        filters.append(one)
    filt = filters[0]
    for one in filters[1:]:
        filt.merge(one)
    with tempfile.TemporaryFile() as f:
        filt.export_bpf(f)
        f.seek(0)
        program = f.read()
    return enosys_stub(ps, profile, arches) + program


# Classic BPF, as struct sock_filter {u16 code; u8 jt; u8 jf; u32 k} (linux/filter.h).
_LD_ABS, _JEQ, _JGT, _JSET, _JA, _RET = 0x20, 0x15, 0x25, 0x45, 0x05, 0x06
_X32_BIT = 0x40000000
_AUDIT_ARCH_X86_64 = 0xC000003E
_RET_ENOSYS = ACTIONS["SCMP_ACT_ERRNO"] | errno.ENOSYS


def enosys_stub(ps: Any, profile: dict[str, Any], arches: list[int]) -> bytes:
    """A prefix for the program that answers ENOSYS to a syscall newer than any the profile
    names (for its architecture), as runc does: a program then falls back from a syscall its
    kernel (as far as the profile knows) lacks, instead of failing with the default errno.
    Nothing for a permissive default action, or one whose errno is ENOSYS already."""
    default = profile["defaultAction"]
    if default in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG") or (
            default == "SCMP_ACT_ERRNO" and profile.get("defaultErrnoRet") == errno.ENOSYS):
        return b""
    names = [n for rule in profile.get("syscalls") or [] for n in rule["names"]]
    # audit arch -> (largest plain syscall, largest x32 syscall); x32 shares x86_64's audit
    # arch and marks its syscall numbers with bit 30
    last: dict[int, list[int]] = {}
    for arch in arches:
        x32 = arch == ps.Arch.X32
        audit = _AUDIT_ARCH_X86_64 if x32 else int(arch)
        numbers = [ps.resolve_syscall(arch, n) for n in names]
        largest = max((nr for nr in numbers if nr >= 0), default=-1)
        if largest >= 0:
            last.setdefault(audit, [-1, -1])[1 if x32 else 0] = largest
    # Labels resolve forward only; each arch's section: plain numbers, then x32 ones.
    code: list[tuple[int, int | str, int | str, int | str]] = [(_LD_ABS, 0, 0, 4)]
    for audit in last:
        code.append((_JEQ, f"arch{audit}", 0, audit))
    code.append((_JA, 0, 0, "filter"))
    labels: dict[str, int] = {}
    for audit, (plain, x32) in last.items():
        labels[f"arch{audit}"] = len(code)
        code.append((_LD_ABS, 0, 0, 0))
        if audit == _AUDIT_ARCH_X86_64:
            code.append((_JSET, f"x32{audit}", 0, _X32_BIT))
        code.append((_JGT, "enosys", "filter", plain) if plain >= 0 else (_JA, 0, 0, "filter"))
        if audit == _AUDIT_ARCH_X86_64:
            labels[f"x32{audit}"] = len(code)
            code.append((_JGT, "enosys", "filter", x32) if x32 >= 0 else (_JA, 0, 0, "filter"))
    labels["enosys"] = len(code)
    code.append((_RET, 0, 0, _RET_ENOSYS))
    labels["filter"] = len(code)
    import struct

    def offset(target: int | str, at: int) -> int:
        return target if isinstance(target, int) else labels[target] - at - 1

    out = bytearray()
    for at, (op, jt, jf, k) in enumerate(code):
        if op == _JA:
            out += struct.pack("=HBBI", op, 0, 0, offset(k, at))
        else:
            out += struct.pack("=HBBI", op, offset(jt, at), offset(jf, at), int(k))
    return bytes(out)


def _add_rules(ps: Any, filt: Any, profile: dict[str, Any], default: int, compat: bool) -> None:
    """Add the profile's rules to ``filt`` (one architecture)."""
    for i, rule in enumerate(profile.get("syscalls") or []):
        where = f"linux.seccomp.syscalls[{i}]"
        action = _action(rule["action"], rule.get("errnoRet"), where)
        if action == default:
            continue
        conditions = []
        for arg in rule.get("args") or []:
            op = OPERATORS.get(arg["op"])
            if op is None:
                raise ConfigError(f"{where}: unknown seccomp operator {arg['op']!r}")
            conditions.append(ps.Arg(arg["index"], op, arg["value"], arg.get("valueTwo", 0)))
        indexes = [a["index"] for a in rule.get("args") or []]
        # libseccomp takes one condition per argument in a rule; repeated indexes mean "any of".
        groups = [[c] for c in conditions] if len(set(indexes)) < len(indexes) else [conditions]
        for name in rule["names"]:
            if ps.resolve_syscall(ps.Arch.NATIVE, name) < 0:
                continue
            for group in groups:
                try:
                    filt.add_rule(action, name, *group)
                except OSError as exc:
                    if compat and exc.errno == errno.EEXIST:
                        continue
                    raise SysError(f"{where}: add rule for {name}", exc.errno or 0) from None


# The cache: ``<runtime dir>/ocirt-cache/seccomp/<key>.bpf``, each file _CACHE_MAGIC, the key it
# was written for, the SHA-256 of the program, then the program. A file is loaded only if all
# of that checks out, in a directory (and its parent) of our own that no one else can write:
# anything else (a corrupted, truncated or planted file, a symlink, a FIFO) is compiled again.
_CACHE_MAGIC = b"ocirt-seccomp-bpf-1\n"
#: bump when compile_bpf() would compile a profile differently
_CACHE_FORMAT = 2
_BPF_MAXINSNS = 4096


def cache_dir() -> str:
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    base = xdg if os.geteuid() != 0 and xdg else "/run"
    return os.path.join(base, "ocirt-cache", "seccomp")


def libseccomp_version() -> str:
    """The version of the libseccomp that compiles profiles (the one pyseccomp loads), or ""
    when there is none."""
    class Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return ""
    lib.seccomp_version.restype = ctypes.POINTER(Version)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def cache_facts() -> list[str]:
    """What besides the profile decides the compiled program: this compiler (ocirt's version
    and cache format), libseccomp's version, the machine and the kernel (libseccomp asks the
    kernel which actions it supports)."""
    from . import __version__

    uname = os.uname()
    return [__version__, str(_CACHE_FORMAT), libseccomp_version(), uname.machine, uname.release]


def cache_key(profile: dict[str, Any], facts: list[str]) -> bytes:
    import hashlib

    return hashlib.sha256(jsonio.dumps([facts, profile], sort_keys=True).encode()).digest()


def cache_entry(key: bytes, bpf: bytes) -> bytes:
    """The contents of a cache file for ``bpf`` compiled for ``key``."""
    import hashlib

    return _CACHE_MAGIC + key + hashlib.sha256(bpf).digest() + bpf


def _from_entry(data: bytes, key: bytes) -> bytes | None:
    """The program in a cache file's contents, if they are an intact entry for ``key``."""
    import hashlib

    start = len(_CACHE_MAGIC) + 64
    bpf = data[start:]
    if not data.startswith(_CACHE_MAGIC) or data[len(_CACHE_MAGIC):start - 32] != key \
            or not bpf or len(bpf) % 8 or len(bpf) > 8 * _BPF_MAXINSNS:
        return None
    return bpf if hashlib.sha256(bpf).digest() == data[start - 32:start] else None


def _open_cache_dir() -> int:
    """An fd of the cache directory, made if missing; -1 if it is not to be trusted: a symlink
    or not a directory, owned by someone else than us or root, writable by group or others
    (the directory or its parent ``ocirt-cache``)."""
    seccomp_dir = cache_dir()
    base = os.path.dirname(os.path.dirname(seccomp_dir))
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(base, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return -1
    for name in ("ocirt-cache", "seccomp"):
        try:
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
            except FileExistsError:
                pass
            sub = os.open(name, flags, dir_fd=fd)
        except OSError:
            return _close(fd)
        os.close(fd)
        fd = sub
        st = os.fstat(fd)
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            return _close(fd)
    return fd


def _close(fd: int) -> int:
    os.close(fd)
    return -1


def _read_cached(dir_fd: int, name: str, key: bytes) -> bytes | None:
    import stat

    try:  # O_NONBLOCK: a FIFO planted there must not block us
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        limit = len(_CACHE_MAGIC) + 64 + 8 * _BPF_MAXINSNS
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022 \
                or st.st_size > limit:
            return None
        return _from_entry(os.read(fd, limit + 1), key)
    except OSError:
        return None
    finally:
        os.close(fd)


def program(profile: dict[str, Any]) -> bytes:
    """The BPF program for ``profile``, from the cache when this profile was compiled before."""
    key = cache_key(profile, cache_facts())
    name = key.hex() + ".bpf"
    dir_fd = _open_cache_dir()
    try:
        if dir_fd >= 0:
            cached = _read_cached(dir_fd, name, key)
            if cached is not None:
                return cached
        data = compile_bpf(profile)
        if dir_fd >= 0:
            try:
                write_atomic(name, cache_entry(key, data), 0o600, dir_fd=dir_fd)
            except SysError:
                pass  # a cache that cannot be written only costs time
        return data
    finally:
        if dir_fd >= 0:
            os.close(dir_fd)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load(bpf: bytes, flags: int = 0) -> int:
    """Install the program on the calling thread group (seccomp(SECCOMP_SET_MODE_FILTER));
    with SECCOMP_FILTER_FLAG_NEW_LISTENER the notify fd, else 0."""
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(_NR_SECCOMP, _SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog))
    if result < 0:
        raise SysError("load seccomp filter", ctypes.get_errno())
    return int(result)
