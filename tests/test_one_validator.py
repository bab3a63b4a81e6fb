"""One validator for config.json: ``ocirt check`` and ``ocirt create`` refuse the same configs
with the same line, before create makes anything; the JSON Schema is its cross-check.

The parser (ocirt/spec.py, specread.py, specraw.py) is the validator; the schema (ocirt/schema)
runs beside it here: every member of a rich, valid config is in turn removed or replaced with a
value of every kind, and whatever the schema refuses, the parser must refuse. The parser is
stricter on purpose in a few ways (listed in PARSER_ONLY); any other refusal of its own is a
disagreement too. tests/test_fuzz.py does the same on random configs, and end to end.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from support import busybox_bundle, json_paths, run, without_nulls
from test_schema import full_config

from ocirt import spec
from ocirt.cgroups.fs import resolve_paths
from ocirt.errors import ConfigError
from ocirt.lifecycle.create import validate_config
from ocirt.schema import validate_config as schema_problems


def rich_config() -> dict[str, Any]:
    """test_schema's podman-like config, with every optional member the schema knows."""
    doc = full_config()
    proc = doc["process"]
    proc["commandLine"] = "sh"
    proc["user"]["username"] = "root"
    proc["scheduler"] = {"policy": "SCHED_OTHER", "nice": 0, "priority": 0, "runtime": 0,
                         "deadline": 0, "period": 0, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    res = doc["linux"]["resources"]
    res["memory"].update(kernel=-1, kernelTCP=-1, useHierarchy=True)
    res["cpu"].update(realtimeRuntime=0, realtimePeriod=0)
    res["blockIO"]["weightDevice"].append({"major": 8, "minor": 16, "leafWeight": 10})
    res["blockIO"]["throttleWriteBpsDevice"] = [{"major": 8, "minor": 0, "rate": 1}]
    res["blockIO"]["throttleReadIOPSDevice"] = [{"major": 8, "minor": 0, "rate": 1}]
    res["devices"].append({"allow": True, "type": "a"})
    doc["linux"]["intelRdt"].update(l3CacheSchema="L3:0=ff", memBwSchema="MB:0=20",
                                    enableCMT=True, enableMBM=False)
    doc["linux"]["seccomp"].update(listenerPath="/run/seccomp.sock", listenerMetadata="m")
    doc["linux"]["personality"]["flags"] = []
    doc["linux"]["devices"].append({"path": "/dev/null2", "type": "u", "major": 1, "minor": 3})
    return doc


def parse_verdict(doc: Any) -> str:
    try:
        spec.parse(doc)
    except ConfigError as exc:
        return exc.message
    return ""


DELETE = object()
#: Every value in a long run (make fuzz); by default those that break the most rules: a wrong
#: type, an empty string, the edges of uint32, uint64 and int64, a fraction.
VALUES = [DELETE, "x", "", -1, 2**32, 2**64, -(2**63) - 1, 1.5, {}]
if os.environ.get("OCIRT_FUZZ_EXAMPLES"):
    VALUES += [None, "/abs", 0, 1.0, True, [], ["x"], [1], {"x": "y"}]
#: The parser's deliberate extra strictness, by the words of its message: integers as Go reads
#: them (1.0 is not one), the kernel's ranges (ioPriority 0-7, consoleSize, a hook's timeout in
#: int64), null not taken for a string or an object in a map or an array, and what create needs
#: (process.args, root).
PARSER_ONLY = ("must be an integer", "/process/args: must not be empty", "/root: is required",
               ": must be a string", ": must be an object")


def test_the_rich_config_is_valid_for_both() -> None:
    doc = rich_config()
    assert schema_problems(doc) == []
    assert parse_verdict(doc) == ""


def test_schema_and_parser_agree_on_every_member() -> None:
    base = rich_config()
    misses, extra = [], []
    # the first item of each array stands for the others (the same rules, and it keeps this fast)
    paths = [p for p in json_paths(base) if p and not any(isinstance(k, int) and k for k in p)]
    for path in paths:
        for value in VALUES:
            doc = copy.deepcopy(base)
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            if value is DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(value)
            problems = schema_problems(without_nulls(doc))
            verdict = parse_verdict(doc)
            shown = "<deleted>" if value is DELETE else repr(value)
            if problems and not verdict:
                misses.append(f"{path} = {shown}: schema: {problems[0]}")
            if verdict and not problems and not any(w in verdict for w in PARSER_ONLY):
                extra.append(f"{path} = {shown}: parser: {verdict}")
    assert not misses, "the schema refuses, the parser takes:\n" + "\n".join(misses)
    assert not extra, "the parser refuses, the schema takes:\n" + "\n".join(extra)


# -- hand-written cases: the line both check and create print ----------------------------------

PARENT = f"ocirt-test-validator-{os.getpid()}"


def _minimal() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((REPO / "bundles" / "busybox" / "config.json").read_text())
    doc["linux"]["cgroupsPath"] = f"/{PARENT}/ov1"
    return doc


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    keys = path.split("/")
    parent = doc
    for key in keys[:-1]:
        parent = parent.setdefault(key, {}) if isinstance(parent, dict) else parent[int(key)]
    parent[keys[-1]] = value
    return doc


CASES = [
    ("process/rlimits", [{"type": "error", "hard": 1, "soft": 1}],
     "config.json: /process/rlimits/0/type: unknown resource 'error'"),
    ("process/rlimits", [{"type": "RLIMIT_NOFILE", "hard": -1, "soft": 1}],
     "config.json: /process/rlimits/0/hard: must be an integer between 0 and 18446744073709551615"),
    ("process/user/uid", -1, "config.json: /process/user/uid: must be an integer between 0 and "
     "4294967295"),
    ("process/user/additionalGids", [1, -5],
     "config.json: /process/user/additionalGids/1: must be an integer between 0 and 4294967295"),
    ("process/env", ["=x"], "config.json: /process/env/0: must be an environment entry "
     "KEY=value, not '=x'"),
    ("process/capabilities", {"bounding": ["chown"]}, "config.json: /process/capabilities/"
     "bounding/0: must be a capability such as 'CAP_CHOWN', not 'chown'"),
    ("process/scheduler", {"policy": "SCHED_BOGUS"},
     "config.json: /process/scheduler/policy: unknown policy 'SCHED_BOGUS'"),
    ("process/execCPUAffinity", {"initial": "0-"},
     "config.json: /process/execCPUAffinity/initial: must be a CPU list such as '0-3,7', "
     "not '0-'"),
    ("ociVersion", "1.0", "config.json: /ociVersion: must be a SemVer 2.0.0 version such as "
     "'1.2.0', not '1.0'"),
    ("linux/resources", {"memory": {"limit": "1g"}},
     "config.json: /linux/resources/memory/limit: must be an integer"),
    ("linux/resources", {"cpu": {"shares": -2}},
     "config.json: /linux/resources/cpu/shares: must be an integer between 0 and "
     "18446744073709551615"),
    ("linux/resources", {"pids": {}}, "config.json: /linux/resources/pids/limit: is required"),
    ("linux/resources", {"devices": [{"allow": True, "access": "xyz"}]},
     "config.json: /linux/resources/devices/0/access: must have one of the letters r, w and m, "
     "not 'xyz'"),
    ("linux/resources", {"blockIO": {"weight": 5}},
     "config.json: /linux/resources/blockIO/weight: must be 0 or between 10 and 1000"),
    ("linux/resources", {"hugepageLimits": [{"pageSize": "../x", "limit": 1}]},
     "config.json: /linux/resources/hugepageLimits/0/pageSize: must be a page size such as "
     "'2MB', not '../x'"),
    ("linux/resources", {"rdma": {"mlx": {}}},
     "config.json: /linux/resources/rdma/mlx: needs 'hcaHandles' or 'hcaObjects' (or both)"),
    ("linux/seccomp", {"defaultAction": "SCMP_ACT_BOGUS"},
     "config.json: /linux/seccomp/defaultAction: unknown action 'SCMP_ACT_BOGUS'"),
    ("linux/seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]},
     "config.json: /linux/seccomp/syscalls/0/action: is required"),
    ("linux/seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
     "config.json: /linux/seccomp/architectures/0: unknown architecture 'SCMP_ARCH_Z80'"),
    ("linux/seccomp", {"defaultAction": "SCMP_ACT_NOTIFY"},
     "config.json: /linux/seccomp/listenerPath: is required with SCMP_ACT_NOTIFY"),
    ("linux/seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]},
     "config.json: /linux/seccomp/syscalls/0/args/0/index: must be an integer between 0 and 5"),
    ("linux/timeOffsets", {"realtime": {"secs": 1}},
     "config.json: /linux/timeOffsets/realtime: unknown clock 'realtime'"),
    ("linux/devices", [{"type": "c", "path": "/dev/x", "minor": 1}],
     "config.json: /linux/devices/0/major: is required"),
    ("linux/memoryPolicy", {"mode": "MPOL_X"},
     "config.json: /linux/memoryPolicy/mode: unknown mode 'MPOL_X'"),
    ("linux/rootfsPropagation", "sideways",
     "config.json: /linux/rootfsPropagation: unknown propagation 'sideways'"),
    ("annotations", {"": "x"}, "config.json: /annotations: keys must not be empty"),
    ("hooks", {"prestart": [{"path": "/bin/true", "timeout": 0}]},
     "config.json: /hooks/prestart/0/timeout: must be an integer between 1 and "
     "9223372036854775807"),
]


@pytest.mark.parametrize("path, value, message", CASES, ids=[c[2].split(": ")[1] for c in CASES])
def test_the_parser_says_what_is_wrong(path: str, value: Any, message: str) -> None:
    doc = _set(_minimal(), path, value)
    with pytest.raises(ConfigError) as info:
        validate_config(spec.parse(doc))
    assert info.value.message == message
    if "SCMP_ARCH_Z80" not in message and "SCMP_ACT_NOTIFY" not in message:
        # the schema knows no list of architectures, nor that notify needs a listener
        assert schema_problems(without_nulls(doc)), "the schema takes what the parser refuses"


@pytest.mark.parametrize("path, value, message", CASES[:8] + CASES[9:20:3],
                         ids=[c[2].split(": ")[1] for c in CASES[:8] + CASES[9:20:3]])
def test_check_and_create_refuse_with_the_same_line(tmp_path: Path, path: str, value: Any,
                                                    message: str) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "rootfs").mkdir()
    (bundle / "config.json").write_text(json.dumps(_set(_minimal(), path, value)))
    root = tmp_path / "state"
    checked = run(None, "check", str(bundle))
    created = run(root, "create", "--bundle", str(bundle), "ov1")
    assert checked.returncode == 1 and checked.stderr == f"ocirt: {message}\n"
    assert created.returncode == 1 and created.stderr == checked.stderr
    assert not root.exists() or os.listdir(root) == [], "create made a state dir"
    made = [p for p in resolve_paths(f"/{PARENT}/ov1", "ov1").values() if os.path.exists(p)]
    assert not made, f"create made cgroups: {made}"


def test_check_takes_what_create_runs(tmp_path: Path, root: Path) -> None:
    """check is not stricter than create: the busybox bundle passes both, and runs (``run``
    deletes it when it exits)."""
    bundle = tmp_path / "ov2"
    bundle.mkdir()
    busybox_bundle(bundle, PARENT)
    res = run(None, "check", str(bundle))
    assert res.returncode == 0 and res.stdout == f"{bundle}/config.json: valid\n"
    ran = run(root, "run", "--bundle", str(bundle), "ov2")
    assert ran.returncode == 0 and "hello from ocirt" in ran.stdout, ran.stderr
