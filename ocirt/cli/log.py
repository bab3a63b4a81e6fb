"""The --log file: logrus-compatible text or JSON lines, appended, never truncated.

containerd reads the last ``level: error`` entry as the failure message (every line must be JSON
with an RFC 3339 ``time`` carrying a zone); podman reads the whole file as one object. So each
failure writes exactly one error entry, and also one line on stderr.
"""

from __future__ import annotations

import os
import sys
import time

from .. import jsonio
from ..errors import SysError

#: appended, never truncated; never opened through a symlink (the path is the caller's, in a
#: directory others may write: a planted link must not make root append to another file)
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


class Log:
    def __init__(self, path: str = "", fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.debug_enabled = debug
        if path:
            self._create()

    def _create(self) -> None:
        """Create the file up front, as runc does: containerd opens it after any failed command
        and, when it is missing, reports "unable to retrieve OCI runtime error" instead."""
        try:
            os.close(os.open(self.path, _FLAGS, 0o644))
        except OSError as exc:  # as runc: a log that cannot be written is an error
            self.path = ""
            raise SysError(f"open {exc.filename or ''}".rstrip(), exc.errno or 0) from None

    def _write(self, level: str, msg: str) -> None:
        if self.fmt == "json":
            line = jsonio.dumps({"level": level, "msg": msg, "time": _now()})
        else:
            line = f'time="{_now()}" level={level} msg={jsonio.dumps(msg)}'
        if not self.path:
            if level != "error":
                sys.stderr.write(line + "\n")
            return
        try:
            fd = os.open(self.path, _FLAGS, 0o644)
        except OSError:
            return
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def error(self, msg: str) -> None:
        """Log the failure; the one-line stderr message is the caller's to print."""
        self._write("error", msg)

    def warning(self, msg: str) -> None:
        """To the log file, or without one to stderr, as runc's logging does (a caller that
        must keep the container's stderr clean passes --log)."""
        self._write("warning", msg)

    def debug(self, msg: str) -> None:
        if self.debug_enabled:
            self._write("debug", msg)
