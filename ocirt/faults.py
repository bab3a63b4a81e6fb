"""A test-only fault hook: ``OCIRT_TEST_FAULT=<step>`` makes ocirt SIGKILL itself at that step.

The steps are the points where a crash leaves the most half-done work (the hardening tests kill
ocirt at each one and check that ``state`` and ``delete --force`` recover with nothing leaked).
Without the variable this is one dictionary lookup.
"""

from __future__ import annotations

import os

STEPS = (
    "create:state-dir", "create:cgroups", "create:spawned", "create:state-saved",
    "create:pid-file", "start:released", "exec:spawned", "delete:killed", "delete:cgroups-removed",
)


def step(name: str) -> None:
    if os.environ.get("OCIRT_TEST_FAULT") == name:
        os.kill(os.getpid(), 9)
