"""The error tree of ocirt.

Every failure the runtime reports is an :class:`OcirtError`. Each kind knows its exit status and
carries one line of text in the words that callers (podman, conmon, containerd) match::

    OcirtError                       exit 1
    ├── UsageError                   bad flags or arguments ("flag provided but not defined: -x")
    ├── InvalidIDError               "invalid container ID format: ../x"
    ├── NotExistError                "container does not exist"
    ├── ExistsError                  "container with id exists: c1"
    ├── ConfigError                  a bundle or config.json that cannot be used
    ├── StatusError                  an operation illegal in the current status ("container not running")
    ├── HookError                    a hook that failed or timed out
    ├── ExecError                    the process could not be started (exit 255 for `exec`);
    │                                "executable file not found in $PATH", "no such file or directory"
    └── SysError                     a failing system call, with the operation and the errno's text
                                     ("permission denied", "operation not permitted")

Only the CLI layer prints or logs these; the layers below raise them.
"""

from __future__ import annotations

import os


class OcirtError(Exception):
    """Base of every error ocirt reports: one line of text and an exit status."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = " ".join(message.split("\n"))

    def __str__(self) -> str:
        return self.message


class UsageError(OcirtError):
    """The command line cannot be parsed."""


class InvalidIDError(OcirtError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"invalid container ID format: {container_id}")


class NotExistError(OcirtError):
    def __init__(self, container_id: str = "") -> None:
        super().__init__("container does not exist")
        self.container_id = container_id


class ExistsError(OcirtError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"container with id exists: {container_id}")


class ConfigError(OcirtError):
    """config.json or the bundle is unusable."""


class StatusError(OcirtError):
    """The operation is not legal in the container's current status."""


class HookError(OcirtError):
    """A lifecycle hook failed."""


class ExecError(OcirtError):
    """The container process could not be started."""

    exit_code = 255


class SysError(OcirtError):
    """A system call failed: ``<op>: <errno text>`` in Go's wording, e.g. ``mount /a: permission denied``."""

    def __init__(self, op: str, errno_: int) -> None:
        super().__init__(f"{op}: {strerror(errno_)}")
        self.errno = errno_


def strerror(errno_: int) -> str:
    """The errno text as Go prints it: lower case first letter ("no such file or directory")."""
    text = os.strerror(errno_)
    return text[:1].lower() + text[1:]


def from_oserror(op: str, exc: OSError) -> SysError:
    return SysError(op, exc.errno or 0)
