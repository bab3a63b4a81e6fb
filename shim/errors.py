"""The one exception type ocish reports to the user as ``ocish: MESSAGE``."""

from __future__ import annotations


class OcishError(Exception):
    """An expected failure: printed as one line on stderr, exit status ``status`` (1 unless
    said otherwise; ``run`` and ``create`` use Docker's 125, 126 and 127)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status
