"""The container's console: a pty allocated inside the container, its master sent to the caller.

The protocol callers expect (conmon, containerd's shim, buildah): one sendmsg on the connected
``--console-socket`` with the master's name as data and exactly one SCM_RIGHTS fd, the master.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios

from .errors import OcirtError, from_oserror

TIOCSPTLCK = 0x40045431  # unlock the pty's slave
TIOCGPTN = 0x80045430    # the pty's number


def connect(path: str) -> int:
    """Connect to the caller's console socket (before the container's mount namespace hides it)."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise from_oserror(f"connect to console socket {path}", exc) from None
    return sock.detach()


def socket_pair() -> tuple[int, int]:
    """(our end, the end to give the container) for a foreground ``run`` or ``exec`` that relays
    the terminal itself instead of a caller's --console-socket."""
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return ours.detach(), theirs.detach()


def receive_master(fd: int) -> int:
    """The pty master sent on our end of :func:`socket_pair` (which this closes)."""
    import socket

    with socket.socket(fileno=fd) as sock:
        _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OcirtError("the container did not send its terminal")
    return fds[0]


def set_size(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def create(socket_fd: int, size: tuple[int, int] | None) -> tuple[int, str]:
    """Open a pty in the current /dev/pts, send its master, return (slave fd, slave path)."""
    import socket

    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise from_oserror("open /dev/ptmx", exc) from None
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("i", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
        slave_path = f"/dev/pts/{number}"
        slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
        if size is not None and size != (0, 0):
            set_size(slave, *size)
        sock = socket.socket(fileno=socket_fd)
        try:
            socket.send_fds(sock, [b"/dev/ptmx"], [master])
        finally:
            sock.close()
    except OSError as exc:
        raise OcirtError(f"console: {exc.strerror or exc}") from None
    finally:
        os.close(master)
    return slave, slave_path
