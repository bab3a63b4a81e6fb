"""``--pidfd-socket``: send a pidfd of the container's process, framed like the console socket."""

from __future__ import annotations

import os

from ..errors import from_oserror


def send_pidfd(path: str, pid: int, tag: bytes = b"init") -> None:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    pidfd = -1
    try:
        sock.connect(path)
        pidfd = os.pidfd_open(pid)
        socket.send_fds(sock, [tag], [pidfd])
    except OSError as exc:
        raise from_oserror(f"send pidfd to {path}", exc) from None
    finally:
        sock.close()
        if pidfd >= 0:
            os.close(pidfd)
