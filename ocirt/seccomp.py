"""linux.seccomp: compiled to BPF with libseccomp (through pyseccomp) and loaded with seccomp(2).

Compiling happens in the runtime, before anything forks, and the program is cached on disk by a
hash of the profile, so containers that share a profile (podman's and Docker's default) never
import pyseccomp on the hot path. The init loads the raw program itself: no library is needed
once it is inside the container.
"""

from __future__ import annotations

import ctypes
import errno
import os

from . import jsonio
from .errors import ConfigError, SysError
from .state import write_atomic

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000, "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_NOTIFY": 0x7FC00000,
}
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
             "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
ARCHES = {
    "SCMP_ARCH_X86": "X86", "SCMP_ARCH_X86_64": "X86_64", "SCMP_ARCH_X32": "X32",
    "SCMP_ARCH_ARM": "ARM", "SCMP_ARCH_AARCH64": "AARCH64", "SCMP_ARCH_MIPS": "MIPS",
    "SCMP_ARCH_MIPS64": "MIPS64", "SCMP_ARCH_MIPS64N32": "MIPS64N32",
    "SCMP_ARCH_MIPSEL": "MIPSEL", "SCMP_ARCH_MIPSEL64": "MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32": "MIPSEL64N32", "SCMP_ARCH_PPC": "PPC", "SCMP_ARCH_PPC64": "PPC64",
    "SCMP_ARCH_PPC64LE": "PPC64LE", "SCMP_ARCH_S390": "S390", "SCMP_ARCH_S390X": "S390X",
    "SCMP_ARCH_PARISC": "PARISC", "SCMP_ARCH_PARISC64": "PARISC64",
    "SCMP_ARCH_RISCV64": "RISCV64",
}
#: filter flags of seccomp(2) by their spec names
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2,
         "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32}
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
    try:
        notify = profile.get("defaultAction") == "SCMP_ACT_NOTIFY" or any(
            rule.get("action") == "SCMP_ACT_NOTIFY" for rule in profile.get("syscalls") or [])
        listener = profile.get("listenerPath") or ""
        if notify and not listener:
            raise ConfigError("linux.seccomp: SCMP_ACT_NOTIFY needs a listenerPath")
        filt = Filter(program(profile), flags_of(profile), -1,
                      profile.get("listenerMetadata") or "", oci_version)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        # the profile is raw JSON: a missing field or a wrong type surfaces here
        raise ConfigError(f"linux.seccomp: invalid profile ({type(exc).__name__}: {exc})") \
            from None
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
        return f.read()


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


def cache_dir() -> str:
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    base = xdg if os.geteuid() != 0 and xdg else "/run"
    return os.path.join(base, "ocirt-cache", "seccomp")


def program(profile: dict[str, Any]) -> bytes:
    """The BPF program for ``profile``, from the cache when this profile was compiled before."""
    import hashlib

    key = hashlib.sha256(jsonio.dumps([os.uname().machine, profile], sort_keys=True).encode())
    path = os.path.join(cache_dir(), key.hexdigest() + ".bpf")
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data and len(data) % 8 == 0:
            return data
    except OSError:
        pass
    data = compile_bpf(profile)
    try:
        os.makedirs(cache_dir(), mode=0o700, exist_ok=True)
        write_atomic(path, data, 0o600)
    except (OSError, SysError):
        pass  # a cache that cannot be written only costs time
    return data


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
