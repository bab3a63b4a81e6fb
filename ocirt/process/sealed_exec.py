"""The last execve of every process ocirt starts in a container goes through a sealed copy of
a tiny static program, ``ocirt-exec`` (its source, ocirt/libexec/ocirt-exec.c, says why): the
container must never see the host's Python interpreter as /proc/self/exe of a process it can
reach, or it could run it and reopen it for writing (CVE-2019-5736).

The copy is a memfd sealed against writes, growth, shrinking and new seals, made by the runtime
before it forks, so the file is read on the host, and execed by its fd (execveat, AT_EMPTY_PATH)
once the process is inside the container.
"""

from __future__ import annotations

import fcntl
import os

from ..errors import OcirtError, SysError

#: The stub, built from ocirt-exec.c when ocirt is installed.
STUB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "libexec", "ocirt-exec")
#: argv[0] the stub insists on: run any other way, it refuses to exec anything.
MAGIC = "ocirt-exec"

_MFD_EXEC = 0x0010  # kernel 6.3+: say so explicitly (vm.memfd_noexec may require it)
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def sealed_stub() -> int:
    """A close-on-exec fd of a sealed memfd holding the stub."""
    try:
        with open(STUB, "rb") as f:
            program = f.read()
    except OSError as exc:
        raise OcirtError(f"{STUB} cannot be read ({os.strerror(exc.errno or 0).lower()}): "
                         "ocirt is not completely installed") from None
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        try:
            fd = os.memfd_create("ocirt-exec", flags | _MFD_EXEC)
        except OSError as exc:
            if exc.errno != 22:  # EINVAL: a kernel before 6.3, where memfds are executable
                raise
            fd = os.memfd_create("ocirt-exec", flags)
    except OSError as exc:
        raise SysError("create the sealed exec stub (memfd_create)", exc.errno or 0) from None
    try:
        view = memoryview(program)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    except OSError as exc:
        os.close(fd)
        raise SysError("seal the exec stub", exc.errno or 0) from None
    return fd


def execve(stub_fd: int, path: str, args: list[str], env: dict[str, str]) -> None:
    """Exec ``path`` with ``args`` and ``env`` through the stub; returns only on failure of the
    exec of the stub itself (OSError). Failures of the program's own exec the stub reports
    on fd 2, exiting 127 (not found) or 126."""
    os.execve(stub_fd, [MAGIC, path, *args], env)
