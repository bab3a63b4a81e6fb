"""The one digest form ocish stores and accepts: sha256, lowercase hex."""

from __future__ import annotations

import re

DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
