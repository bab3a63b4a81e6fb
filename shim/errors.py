"""The one exception type ocish reports to the user as ``ocish: MESSAGE``."""

from __future__ import annotations


class OcishError(Exception):
    """An expected failure: printed as one line on stderr, exit status 1."""
