"""The one network setting a runtime makes: the loopback interface of a new network namespace
is brought up, as runc leaves it (programs expect 127.0.0.1 to work even with no other
network). Through ioctl(2) on a datagram socket: no netlink library, and ``_socket`` rather than
``socket``, whose enums cost milliseconds to import."""

from __future__ import annotations

import _socket
import fcntl
import struct

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    """Set IFF_UP on ``lo`` of the calling process's network namespace (OSError if it cannot)."""
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        request = struct.pack("16sH14x", b"lo", 0)  # struct ifreq: name, ifr_flags
        _, flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request))
        if not flags & _IFF_UP:
            fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo",
                                                                    flags | _IFF_UP))
    finally:
        sock.close()
