"""Failing `create`: non-zero exit, one plain error line, and nothing left behind.

runtime.md: "generating an error MUST leave the state of the environment as if the operation
were never attempted".  Callers classify the error text (podman maps "executable file not
found" / "no such file or directory" to exit 127 and "permission denied" to 126).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from spec_support import Bundle, Containers, assert_failed_cleanly, is_rfc3339


def _malformed(b: Bundle) -> bool:
    b.config_path.write_text('{"ociVersion": "1.0.2", "process": ')
    return False


def _missing_config(b: Bundle) -> bool:
    if b.config_path.exists():
        b.config_path.unlink()
    return False


def _missing_rootfs(b: Bundle) -> bool:
    b.config["root"]["path"] = "no-such-rootfs"
    return True


def _bare_not_found(b: Bundle) -> bool:
    b.process["args"] = ["no-such-command-xyz"]
    return True


def _absolute_not_found(b: Bundle) -> bool:
    b.process["args"] = ["/no/such/command"]
    return True


def _not_executable(b: Bundle) -> bool:
    b.process["args"] = ["/etc/passwd"]
    return True


def _terminal_without_socket(b: Bundle) -> bool:
    b.process["terminal"] = True
    return True


def _rlimit_above_hard_limit(b: Bundle) -> bool:
    # The host's nofile hard limit is 20000 and CAP_SYS_RESOURCE is missing: raising fails.
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]
    return True


def _unknown_namespace(b: Bundle) -> bool:
    b.linux["namespaces"].append({"type": "no-such-namespace"})
    return True


def _relative_cwd(b: Bundle) -> bool:
    b.process["cwd"] = "relative/dir"
    return True


def _missing_bind_source(b: Bundle) -> bool:
    b.mount(destination="/mnt/x", type="bind", source=str(b.path / "no-such-dir"),
            options=["rbind"])
    return True


def _join_missing_ns_path(b: Bundle) -> bool:
    b.add_namespace("network", str(b.path / "no-such-netns"))
    return True


def _unknown_rlimit(b: Bundle) -> bool:
    # "error" is not a resource (it once reached setrlimit in the init as Python's exception)
    b.process["rlimits"] = [{"type": "error", "hard": 1, "soft": 1}]
    return True


def _resources_wrong_type(b: Bundle) -> bool:
    b.linux.setdefault("resources", {})["memory"] = {"limit": "1g"}
    return True


def _negative_uid(b: Bundle) -> bool:
    b.process["user"] = {"uid": -1, "gid": 0}
    return True


def _unknown_seccomp_action(b: Bundle) -> bool:
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_BOGUS"}
    return True


CASES: dict[str, tuple[Callable[[Bundle], bool], tuple[str, ...]]] = {
    "malformed-config": (_malformed, ()),
    "missing-config": (_missing_config, ()),
    "missing-rootfs": (_missing_rootfs, ()),
    "bare-command-not-found": (_bare_not_found, ("executable file not found in $PATH",)),
    "absolute-command-not-found": (_absolute_not_found, ("no such file or directory",)),
    "command-not-executable": (_not_executable, ("permission denied",)),
    "terminal-without-console-socket": (_terminal_without_socket, ()),
    "rlimit-above-hard-limit": (_rlimit_above_hard_limit, ()),
    "unknown-namespace": (_unknown_namespace, ()),
    "relative-cwd": (_relative_cwd, ()),
    "missing-bind-source": (_missing_bind_source, ()),
    "join-missing-namespace-path": (_join_missing_ns_path, ()),
    "unknown-rlimit-type": (_unknown_rlimit, ()),
    "resources-wrong-type": (_resources_wrong_type, ()),
    "negative-uid": (_negative_uid, ()),
    "unknown-seccomp-action": (_unknown_seccomp_action, ()),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_create_failure_leaves_nothing(ctr: Containers, case: str) -> None:
    mutate, needles = CASES[case]
    b = ctr.bundle(["sleep", "100"])
    b.write()
    write = mutate(b)
    created = ctr.create(b, check=False, write=write)
    assert_failed_cleanly(ctr, b, created.result, *needles)


def test_create_failure_logged_as_json(ctr: Containers) -> None:
    """containerd reports the last level=error `msg` of the --log file."""
    b = ctr.bundle(["no-such-command-xyz"])
    log = b.path / "log.json"
    created = ctr.create(b, check=False, global_args=["--log", str(log), "--log-format", "json"])
    assert_failed_cleanly(ctr, b, created.result, "executable file not found")
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    errors = [e for e in entries if e.get("level") == "error"]
    assert errors, entries
    assert "executable file not found" in errors[-1]["msg"]
    assert is_rfc3339(errors[-1]["time"])


def test_create_missing_bundle_dir(ctr: Containers, workdir: Path) -> None:
    res = ctr.rt("create", "--bundle", str(workdir / "nope"), "st-missing-bundle")
    assert res.returncode != 0
    assert len(res.error_lines()) == 1 and "Traceback" not in res.stderr
    assert not (ctr.rt.root / "st-missing-bundle").exists()
