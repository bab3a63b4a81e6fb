"""One storage root: the database, the content store, the snapshots and the GC lock."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import OcishError
from . import db
from .content import ContentStore
from .snapshots import Snapshots

DEFAULT_ROOT = "/var/lib/ocish"


def default_root() -> str:
    """``$OCISH_ROOT`` or /var/lib/ocish."""
    return os.environ.get("OCISH_ROOT") or DEFAULT_ROOT


class Storage:
    """Everything under ``--root``, opened (and created) on first use."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        try:
            os.makedirs(self.root, mode=0o711, exist_ok=True)
            self.content = ContentStore(self.root)
            self.snapshots = Snapshots(self.root)
            self.db: sqlite3.Connection = db.connect(os.path.join(self.root, "ocish.db"))
        except PermissionError as exc:
            raise OcishError(f"storage root {self.root}: {exc.strerror}") from None
        except sqlite3.Error as exc:
            raise OcishError(f"storage root {self.root}: database: {exc}") from None

    @contextmanager
    def lock(self, exclusive: bool) -> Iterator[None]:
        """Pulls hold this shared, garbage collection exclusive: GC never sees a pull's blobs
        before the pull has recorded them."""
        fd = os.open(os.path.join(self.root, "gc.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def close(self) -> None:
        """Close the database."""
        self.db.close()
