"""Unit tests for ocirt.schema: the config.json JSON Schema and validate_config()."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow running without installing the package
    sys.path.insert(0, str(ROOT))

from ocirt.schema import Problem, load_schema, validate_config  # noqa: E402

CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
]


def full_config() -> dict[str, Any]:
    """A config in the style of what podman/runc generate for `podman run alpine sh`."""
    return {
        "ociVersion": "1.2.0",
        "process": {
            "terminal": True,
            "consoleSize": {"height": 24, "width": 80},
            "user": {"uid": 0, "gid": 0, "umask": 18, "additionalGids": [0, 1, 2, 3, 4, 6, 10]},
            "args": ["/bin/sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
                "container=podman",
                "HOSTNAME=",
                "HOME=/root",
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": CAPS,
                "effective": CAPS,
                "permitted": CAPS,
                "inheritable": [],
                "ambient": [],
            },
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576},
                {"type": "RLIMIT_NPROC", "soft": 4194304, "hard": 4194304},
            ],
            "noNewPrivileges": True,
            "oomScoreAdj": 0,
            "apparmorProfile": "containers-default-0.50.1",
            "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2",
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
            "scheduler": {"policy": "SCHED_OTHER", "nice": 0},
            "execCPUAffinity": {"initial": "0", "final": "0-3,7"},
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "4b2f0e9c1d3a",
        "domainname": "example.org",
        "mounts": [
            {
                "destination": "/proc",
                "type": "proc",
                "source": "proc",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"],
            },
            {
                "destination": "/etc/hosts",
                "type": "bind",
                "source": "/run/containers/storage/overlay-containers/4b2f/userdata/hosts",
                "options": ["bind", "rprivate"],
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            },
        ],
        "hooks": {
            "prestart": [
                {
                    "path": "/usr/bin/netns-hook",
                    "args": ["netns-hook", "setup"],
                    "env": ["DEBUG=1"],
                    "timeout": 10,
                }
            ],
            "createRuntime": [{"path": "/usr/libexec/oci/hooks.d/cdi"}],
            "poststop": [{"path": "/usr/bin/cleanup"}],
        },
        "annotations": {
            "io.container.manager": "libpod",
            "org.opencontainers.image.stopSignal": "15",
        },
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "network", "path": "/run/netns/netns-6f1c"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                {"type": "cgroup"},
                {"type": "user"},
                {"type": "time"},
            ],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "timeOffsets": {"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": -10}},
            "devices": [
                {
                    "path": "/dev/fuse",
                    "type": "c",
                    "major": 10,
                    "minor": 229,
                    "fileMode": 438,
                    "uid": 0,
                    "gid": 0,
                },
                {"path": "/run/fifo", "type": "p"},
            ],
            "netDevices": {"eth1": {"name": "net1"}},
            "cgroupsPath": "machine.slice:libpod:4b2f0e9c1d3a",
            "resources": {
                "devices": [
                    {"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
                ],
                "memory": {
                    "limit": 536870912,
                    "reservation": 268435456,
                    "swap": -1,
                    "swappiness": 60,
                    "disableOOMKiller": False,
                    "checkBeforeUpdate": True,
                },
                "cpu": {
                    "shares": 1024,
                    "quota": 100000,
                    "burst": 50000,
                    "period": 100000,
                    "cpus": "0-3",
                    "mems": "0",
                    "idle": 0,
                },
                "pids": {"limit": 2048},
                "blockIO": {
                    "weight": 500,
                    "leafWeight": 0,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 10485760}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}],
                },
                "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
                "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
                "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
                "unified": {"memory.high": "400000000", "io.weight": "default 100"},
            },
            "intelRdt": {"closID": "guaranteed_group", "schemata": ["L3:0=7f0;1=1f", "MB:0=20"]},
            "sysctl": {"net.ipv4.ping_group_range": "0 0"},
            "seccomp": {
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 38,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "syscalls": [
                    {
                        "names": [
                            "accept",
                            "bind",
                            "clone",
                            "execve",
                            "exit_group",
                            "read",
                            "write",
                        ],
                        "action": "SCMP_ACT_ALLOW",
                    },
                    {
                        "names": ["personality"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}],
                    },
                    {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                    {
                        "names": ["clone3"],
                        "action": "SCMP_ACT_ERRNO",
                        "errnoRet": 38,
                        "args": [
                            {
                                "index": 0,
                                "value": 2080505856,
                                "valueTwo": 0,
                                "op": "SCMP_CMP_MASKED_EQ",
                            }
                        ],
                    },
                ],
            },
            "rootfsPropagation": "rslave",
            "maskedPaths": [
                "/proc/acpi",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/sched_debug",
                "/sys/firmware",
            ],
            "readonlyPaths": [
                "/proc/asound",
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
            "mountLabel": "system_u:object_r:container_file_t:s0:c1,c2",
            "personality": {"domain": "LINUX"},
            "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]},
        },
    }


def pointers(problems: list[Problem]) -> list[str]:
    return [p.pointer for p in problems]


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


# ------------------------------------------------------------------ the schema itself


def test_schema_is_valid_draft_2020_12() -> None:
    from jsonschema import Draft202012Validator

    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert load_schema() is schema  # cached


def test_full_config_is_valid() -> None:
    assert validate_config(full_config()) == []


def test_minimal_config_is_valid() -> None:
    assert validate_config({"ociVersion": "1.3.0"}) == []


def test_unknown_properties_are_allowed() -> None:
    doc = full_config()
    doc["vendorExtension"] = {"anything": [1, 2]}
    doc["process"]["somethingNew"] = True
    doc["linux"]["resources"]["memory"]["futureKnob"] = 7
    doc["mounts"][0]["x-note"] = "hi"
    assert validate_config(doc) == []


def test_not_an_object() -> None:
    problem = only(validate_config(["ociVersion"]))
    assert problem.pointer == ""
    assert "must be an object" in problem.message


# ------------------------------------------------------------------ individual mistakes


def test_missing_oci_version() -> None:
    doc = full_config()
    del doc["ociVersion"]
    problem = only(validate_config(doc))
    assert problem.pointer == ""
    assert problem.message == "'ociVersion' is a required property"


@pytest.mark.parametrize("version", ["1.2", "v1.2.0", "01.2.0", "1.2.0\n", ""])
def test_bad_oci_version(version: str) -> None:
    doc = full_config()
    doc["ociVersion"] = version
    problem = only(validate_config(doc))
    assert problem.pointer == "/ociVersion"
    assert "SemVer" in problem.message


def test_prerelease_oci_version_is_fine() -> None:
    doc = full_config()
    doc["ociVersion"] = "1.3.0-rc.1+dev"
    assert validate_config(doc) == []


def test_args_not_an_array() -> None:
    doc = full_config()
    doc["process"]["args"] = "/bin/sh -c true"
    problem = only(validate_config(doc))
    assert problem.pointer == "/process/args"
    assert "must be an array" in problem.message


def test_args_empty() -> None:
    doc = full_config()
    doc["process"]["args"] = []
    problem = only(validate_config(doc))
    assert problem.pointer == "/process/args"
    assert "must not be empty" in problem.message


def test_cwd_relative() -> None:
    doc = full_config()
    doc["process"]["cwd"] = "home/user"
    problem = only(validate_config(doc))
    assert problem.pointer == "/process/cwd"
    assert "must be an absolute path" in problem.message


def test_cwd_missing() -> None:
    doc = full_config()
    del doc["process"]["cwd"]
    problem = only(validate_config(doc))
    assert problem.pointer == "/process"
    assert problem.message == "'cwd' is a required property"


def test_uid_negative() -> None:
    doc = full_config()
    doc["process"]["user"]["uid"] = -1
    problem = only(validate_config(doc))
    assert problem.pointer == "/process/user/uid"
    assert "between 0 and 4294967295" in problem.message


@pytest.mark.parametrize("uid", ["0", 1.5, True, None])
def test_uid_wrong_type(uid: object) -> None:
    doc = full_config()
    doc["process"]["user"]["uid"] = uid
    problem = only(validate_config(doc))
    assert problem.pointer == "/process/user/uid"
    assert "must be an integer" in problem.message


def test_uid_too_large() -> None:
    doc = full_config()
    doc["process"]["user"]["uid"] = 2**32
    assert pointers(validate_config(doc)) == ["/process/user/uid"]


def test_bad_namespace_type() -> None:
    doc = full_config()
    doc["linux"]["namespaces"][2] = {"type": "ipcs"}
    problem = only(validate_config(doc))
    assert problem.pointer == "/linux/namespaces/2/type"
    assert "unknown value 'ipcs'" in problem.message
    assert "pid" in problem.message


def test_duplicate_namespace_type() -> None:
    doc = full_config()
    doc["linux"]["namespaces"].append({"type": "pid", "path": "/proc/1/ns/pid"})
    problem = only(validate_config(doc))
    assert problem.pointer == "/linux/namespaces/8/type"
    assert "duplicate namespace type 'pid'" in problem.message


def test_bad_rootfs_propagation() -> None:
    doc = full_config()
    doc["linux"]["rootfsPropagation"] = "recursive-private"
    problem = only(validate_config(doc))
    assert problem.pointer == "/linux/rootfsPropagation"
    assert "unknown value" in problem.message
    assert "rprivate" in problem.message


def test_hook_path_missing() -> None:
    doc = full_config()
    doc["hooks"]["poststop"].append({"args": ["cleanup"]})
    problem = only(validate_config(doc))
    assert problem.pointer == "/hooks/poststop/1"
    assert problem.message == "'path' is a required property"


def test_hook_path_relative_and_bad_timeout() -> None:
    doc = full_config()
    doc["hooks"]["prestart"][0]["path"] = "netns-hook"
    doc["hooks"]["prestart"][0]["timeout"] = 0
    problems = validate_config(doc)
    assert pointers(problems) == ["/hooks/prestart/0/path", "/hooks/prestart/0/timeout"]
    assert "must be an absolute path" in problems[0].message
    assert ">= 1" in problems[1].message


def test_mount_destination_missing() -> None:
    doc = full_config()
    del doc["mounts"][3]["destination"]
    problem = only(validate_config(doc))
    assert problem.pointer == "/mounts/3"
    assert problem.message == "'destination' is a required property"


def test_mount_destination_relative() -> None:
    doc = full_config()
    doc["mounts"][1]["destination"] = "dev"
    problem = only(validate_config(doc))
    assert problem.pointer == "/mounts/1/destination"
    assert "must be an absolute path" in problem.message


def test_rlimit_type_bad() -> None:
    doc = full_config()
    doc["process"]["rlimits"][1]["type"] = "NOFILE"
    problem = only(validate_config(doc))
    assert problem.pointer == "/process/rlimits/1/type"
    assert "RLIMIT_" in problem.message


def test_rlimit_missing_hard() -> None:
    doc = full_config()
    del doc["process"]["rlimits"][0]["hard"]
    problem = only(validate_config(doc))
    assert problem.pointer == "/process/rlimits/0"
    assert "'hard'" in problem.message


def test_seccomp_action_bad() -> None:
    doc = full_config()
    doc["linux"]["seccomp"]["syscalls"][2]["action"] = "SCMP_ACT_DENY"
    problem = only(validate_config(doc))
    assert problem.pointer == "/linux/seccomp/syscalls/2/action"
    assert "unknown value 'SCMP_ACT_DENY'" in problem.message
    assert "SCMP_ACT_ERRNO" in problem.message


def test_seccomp_default_action_missing_and_bad_op() -> None:
    doc = full_config()
    del doc["linux"]["seccomp"]["defaultAction"]
    doc["linux"]["seccomp"]["syscalls"][1]["args"][0]["op"] = "EQ"
    doc["linux"]["seccomp"]["syscalls"][0]["names"] = []
    problems = validate_config(doc)
    assert pointers(problems) == [
        "/linux/seccomp",
        "/linux/seccomp/syscalls/0/names",
        "/linux/seccomp/syscalls/1/args/0/op",
    ]
    assert "'defaultAction' is a required property" == problems[0].message
    assert "must not be empty" in problems[1].message
    assert "SCMP_CMP_EQ" in problems[2].message


def test_seccomp_listener_metadata_needs_path() -> None:
    doc = full_config()
    doc["linux"]["seccomp"]["listenerMetadata"] = "opaque"
    problem = only(validate_config(doc))
    assert problem.pointer == "/linux/seccomp"
    assert "'listenerPath' is required" in problem.message


def test_capability_name_bad() -> None:
    doc = full_config()
    doc["process"]["capabilities"]["ambient"] = ["chown"]
    problem = only(validate_config(doc))
    assert problem.pointer == "/process/capabilities/ambient/0"
    assert "capability" in problem.message


def test_env_entry_without_equals() -> None:
    doc = full_config()
    doc["process"]["env"].append("JUSTAKEY")
    problem = only(validate_config(doc))
    assert problem.pointer == "/process/env/5"
    assert "KEY=value" in problem.message


def test_oom_score_adj_out_of_range() -> None:
    doc = full_config()
    doc["process"]["oomScoreAdj"] = 1001
    problem = only(validate_config(doc))
    assert problem.pointer == "/process/oomScoreAdj"
    assert "between -1000 and 1000" in problem.message


def test_masked_and_readonly_paths_must_be_absolute() -> None:
    doc = full_config()
    doc["linux"]["maskedPaths"][1] = "proc/kcore"
    doc["linux"]["readonlyPaths"].append("sys")
    problems = validate_config(doc)
    assert pointers(problems) == ["/linux/maskedPaths/1", "/linux/readonlyPaths/6"]
    assert all("must be an absolute path" in p.message for p in problems)


def test_device_problems() -> None:
    doc = full_config()
    doc["linux"]["devices"][0] = {"path": "dev/fuse", "type": "c"}
    doc["linux"]["devices"][1]["type"] = "x"
    problems = validate_config(doc)
    assert [(p.pointer, p.message) for p in problems][:2] == [
        ("/linux/devices/0", "'major' is a required property"),
        ("/linux/devices/0", "'minor' is a required property"),
    ]
    assert pointers(problems)[2:] == ["/linux/devices/0/path", "/linux/devices/1/type"]


def test_block_io_weight_range() -> None:
    doc = full_config()
    doc["linux"]["resources"]["blockIO"]["weight"] = 5
    doc["linux"]["resources"]["blockIO"]["weightDevice"][0] = {"major": 8, "minor": 0}
    problems = validate_config(doc)
    assert pointers(problems) == [
        "/linux/resources/blockIO/weight",
        "/linux/resources/blockIO/weightDevice/0",
    ]
    assert "between 10 and 1000" in problems[0].message
    assert "'weight' or 'leafWeight'" in problems[1].message


def test_time_offsets_unknown_clock() -> None:
    doc = full_config()
    doc["linux"]["timeOffsets"]["realtime"] = {"secs": 1}
    problem = only(validate_config(doc))
    assert problem.pointer == "/linux/timeOffsets/realtime"
    assert "invalid key 'realtime'" in problem.message


def test_pointer_escaping() -> None:
    doc = full_config()
    doc["annotations"]["example.com/a~b"] = 42
    doc["linux"]["sysctl"]["net/ipv4/ip_forward"] = 1
    problems = validate_config(doc)
    assert pointers(problems) == [
        "/annotations/example.com~1a~0b",
        "/linux/sysctl/net~1ipv4~1ip_forward",
    ]
    assert all("must be a string, not integer" in p.message for p in problems)


def test_many_errors_at_once_are_all_reported_and_sorted() -> None:
    doc = full_config()
    del doc["ociVersion"]
    doc["process"]["args"] = "sh"
    doc["process"]["cwd"] = "work"
    doc["process"]["user"]["uid"] = "root"
    doc["mounts"][0]["destination"] = "proc"
    del doc["mounts"][2]["destination"]
    doc["linux"]["namespaces"][0]["type"] = "pidns"
    doc["linux"]["rootfsPropagation"] = "none"
    doc["linux"]["seccomp"]["defaultAction"] = "ALLOW"
    del doc["hooks"]["prestart"][0]["path"]
    problems = validate_config(doc)
    assert pointers(problems) == [
        "",
        "/hooks/prestart/0",
        "/linux/namespaces/0/type",
        "/linux/rootfsPropagation",
        "/linux/seccomp/defaultAction",
        "/mounts/0/destination",
        "/mounts/2",
        "/process/args",
        "/process/cwd",
        "/process/user/uid",
    ]
    assert problems == sorted(problems, key=lambda p: p.pointer)
    for problem in problems:
        assert "\n" not in problem.message
        assert len(problem.message) < 200


def test_input_is_not_modified() -> None:
    doc = full_config()
    doc["process"]["args"] = []
    before = copy.deepcopy(doc)
    validate_config(doc)
    assert doc == before


def test_problem_is_frozen_and_printable() -> None:
    problem = Problem("/process/cwd", "must be an absolute path")
    with pytest.raises(AttributeError):
        problem.pointer = "/x"  # type: ignore[misc]
    assert str(problem) == "/process/cwd: must be an absolute path"


# ------------------------------------------------------------------ import cost


def test_import_does_not_load_jsonschema() -> None:
    code = (
        "import sys\n"
        "import ocirt.schema\n"
        "assert ocirt.schema.load_schema()['type'] == 'object'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'jsonschema'))\n"
    )
    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        python = Path(sys.executable)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [str(python), "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
