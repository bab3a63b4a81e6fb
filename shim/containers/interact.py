"""The user's side of an interactive container or exec: the terminal in raw mode, the window
size, detach keys and the relay between the user's stdio and the container's.

A relay ends when the container's output ends (the process exited, its monitor closed the
attach socket), or when the user types the detach keys.
"""

from __future__ import annotations

import os
import selectors
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import OcishError

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def detach_keys(text: str | None) -> bytes:
    """Docker's ``--detach-keys`` syntax (``ctrl-a,x``: comma-separated, each ``ctrl-X`` for
    X in a-z @ [ \\ ] ^ _, or one character) as the bytes to watch for; b"" (given as "")
    turns detaching off."""
    if text is None:
        text = DEFAULT_DETACH_KEYS
    out = bytearray()
    for part in text.split(",") if text else []:
        low = part.lower()
        if low.startswith("ctrl-") and len(low) == 6 and "a" <= low[5] <= "z":
            out.append(ord(low[5]) - ord("a") + 1)
        elif low.startswith("ctrl-") and len(low) == 6 and low[5] in _CTRL:
            out.append(_CTRL[low[5]])
        elif len(part) == 1 and part.isascii():
            out.append(ord(part))
        else:
            raise OcishError(f"invalid detach keys {text!r}: unknown key {part!r} (want "
                             "ctrl-<a-z@[\\]^_> or one character, comma-separated)",
                             status=125)
    return bytes(out)


def _scan(keys: bytes, held: bytes, data: bytes) -> tuple[bytes, bytes, bool]:
    """Pass *data* on, except a prefix of the detach *keys* that may be completed by the
    next read (held back; let through once it does not match). (to send, held, detached)"""
    out = bytearray()
    for b in data:
        cand = held + bytes([b])
        if keys.startswith(cand):
            held = cand
            if held == keys:
                return bytes(out), b"", True
            continue
        out += held
        held = b""
        if keys[:1] == bytes([b]):
            held = bytes([b])
            if held == keys:
                return bytes(out), b"", True
        else:
            out.append(b)
    return bytes(out), held, False


@contextmanager
def raw_terminal(fd: int | None) -> Iterator[None]:
    """The terminal *fd* in raw mode (None, or not a terminal: nothing), restored however
    this ends, SIGTERM and SIGHUP included."""
    if fd is None or not os.isatty(fd):
        yield
        return
    import termios
    import tty

    old = termios.tcgetattr(fd)

    def ended(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    saved = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:  # not proxied to the container
            saved[sig] = signal.signal(sig, ended)
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def terminal_size(fd: int | None) -> tuple[int, int] | None:
    """(rows, columns) of the terminal *fd*, None if it is none."""
    if fd is None or not os.isatty(fd):
        return None
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


def follow_window(fd: int | None, resize: Callable[[int, int], None]) -> None:
    """Send the terminal's size now and again on each SIGWINCH."""
    if terminal_size(fd) is None:
        return

    def changed(signum: int = 0, frame: object = None) -> None:
        size = terminal_size(fd)
        if size is not None:
            resize(*size)

    signal.signal(signal.SIGWINCH, changed)
    changed()


def pump(outputs: dict[int, Callable[[], bool]], stdin_fd: int | None,
         send: Callable[[bytes], None] | None, close_send: Callable[[], None] | None,
         keys: bytes) -> bool:
    """Relay until every output has ended: each of *outputs* is called when its fd is
    readable and returns False at its end; what the user types goes to *send* (its end to
    *close_send*), watched for the detach *keys*. True if the user detached."""
    sel = selectors.DefaultSelector()
    for fd in outputs:
        sel.register(fd, selectors.EVENT_READ, "out")
    if stdin_fd is not None and send is not None:
        sel.register(stdin_fd, selectors.EVENT_READ, "in")
    live = len(outputs)
    held = b""
    try:
        while live:
            for key, _ in sel.select():
                if key.data == "out":
                    if not outputs[key.fd]():
                        sel.unregister(key.fd)
                        live -= 1
                    continue
                assert send is not None
                try:
                    data = os.read(key.fd, 4096)
                except OSError:
                    data = b""
                try:
                    if not data:
                        sel.unregister(key.fd)
                        if held:
                            send(held)
                        if close_send is not None:
                            close_send()
                        continue
                    detached = False
                    if keys:
                        data, held, detached = _scan(keys, held, data)
                    if data:
                        send(data)
                    if detached:
                        return True
                except OSError:  # the container's stdin is gone: its output may go on
                    if key.fd in sel.get_map():
                        sel.unregister(key.fd)
    finally:
        sel.close()
    return False


def copier(fd: int, out: object) -> Callable[[], bool]:
    """An output of pump: what *fd* gives, to the binary stream *out*; False at its end (EOF,
    or EIO of a pty master whose other side is closed)."""
    def copy() -> bool:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            return False
        out.write(data)  # type: ignore[attr-defined]
        out.flush()  # type: ignore[attr-defined]
        return True

    return copy


def framed(sock: object) -> Callable[[], bool]:
    """An output of pump: conmon's attach socket, whose packets are one byte naming the
    stream (2 stdout, 3 stderr) and the data."""
    outs = {2: sys.stdout.buffer, 3: sys.stderr.buffer}

    def copy() -> bool:
        try:
            packet = sock.recv(8193)  # type: ignore[attr-defined]
        except OSError:
            return False
        if not packet:
            return False
        out = outs.get(packet[0])
        if out is not None:
            out.write(packet[1:])
            out.flush()
        return True

    return copy
