"""The ocirt command as users and callers meet it: one-line errors, the --log file, imports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import OCIRT, REPO, ocirt
from support import busybox_bundle

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return busybox_bundle(tmp_path_factory.mktemp("bundle"), "ocirt-test-cli",
                          args=["sleep", "30"])


def test_version() -> None:
    res = ocirt(None, "--version")
    assert res.returncode == 0 and res.stderr == ""
    lines = res.stdout.splitlines()
    assert lines[0].startswith("ocirt version ") and re.match(r"spec: \d+\.\d+\.\d+", lines[1])


def test_shebang_is_an_absolute_interpreter_outside_pyenv() -> None:
    first = OCIRT.read_text().splitlines()[0]
    assert first.startswith("#!/") and "pyenv" not in first and "env " not in first


@pytest.mark.parametrize("args, code, message", [
    (["state", "nope"], 1, "ocirt: container does not exist"),
    (["delete", "nope"], 1, "ocirt: container does not exist"),
    (["kill", "nope", "KILL"], 1, "ocirt: container does not exist"),
    (["start", "../x"], 1, "ocirt: invalid container ID format: ../x"),
    (["kill", "c1", "NOSIG"], 1, "ocirt: unknown signal 'NOSIG'"),
    (["--bogus", "state", "x"], 1, "ocirt: flag provided but not defined: -bogus"),
    (["create"], 1, "ocirt: requires exactly 1 argument"),
    (["frobnicate"], 1, "ocirt: command 'frobnicate' is not supported"),
    (["exec", "nope", "true"], 255, "ocirt: exec failed: container does not exist"),
])
def test_failures_are_one_line(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    res = ocirt(tmp_path, *args)
    assert res.returncode == code
    assert res.stderr.startswith(message) and res.stderr.count("\n") == 1, res.stderr
    assert res.stdout == ""


def test_delete_force_of_a_missing_container_succeeds(tmp_path: Path) -> None:
    res = ocirt(tmp_path, "delete", "--force", "nope")
    assert res.returncode == 0 and res.stderr == ""


def test_json_log(tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    for _ in range(2):
        res = ocirt(tmp_path, "--log", str(log), "--log-format=json", "state", "nope")
        assert res.returncode == 1 and "container does not exist" in res.stderr
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 2
    for entry in entries:
        assert entry["level"] == "error" and entry["msg"] == "container does not exist"
        assert RFC3339.match(entry["time"]), entry["time"]


def test_text_log(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    ocirt(tmp_path, "--log", str(log), "state", "nope")
    assert re.match(r'time="[^"]+" level=error msg="container does not exist"\n$',
                    log.read_text())


def test_bad_log_format(tmp_path: Path) -> None:
    res = ocirt(tmp_path, "--log-format", "xml", "list")
    assert res.returncode == 1 and "invalid log-format" in res.stderr


def test_help_exits_zero_and_unknown_checkpoint_does_not() -> None:
    assert ocirt(None, "--help").returncode == 0
    res = ocirt(None, "create", "--help")
    assert res.returncode == 0 and "--pid-file" in res.stdout
    # podman takes `checkpoint --help` exiting 0 as "checkpointing is supported"
    assert ocirt(None, "checkpoint", "--help").returncode != 0


def test_check(tmp_path: Path) -> None:
    good = ocirt(None, "check", str(REPO / "bundles" / "busybox"))
    assert good.returncode == 0 and good.stdout.endswith(": valid\n")
    (tmp_path / "config.json").write_text(json.dumps(
        {"ociVersion": "1.2.0", "process": {"args": "sh", "cwd": "rel"}, "root": {}}))
    bad = ocirt(None, "check", str(tmp_path))
    # create's validator, in create's words: the first problem, in one line
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr == "ocirt: config.json: /root/path: is required\n"


def test_spec_writes_a_valid_config_and_refuses_to_overwrite(tmp_path: Path) -> None:
    for flags in ([], ["--rootless"]):
        d = tmp_path / ("rootless" if flags else "plain")
        d.mkdir()
        assert ocirt(None, "spec", "--bundle", str(d), *flags).returncode == 0
        assert ocirt(None, "check", str(d)).returncode == 0
        again = ocirt(None, "spec", "--bundle", str(d))
        assert again.returncode == 1 and "exists" in again.stderr


def test_features_reports_only_what_works() -> None:
    res = ocirt(None, "features")
    assert res.returncode == 0
    doc = json.loads(res.stdout)
    assert doc["ociVersionMin"] == "1.0.0" and doc["ociVersionMax"]
    linux = doc["linux"]
    assert set(linux["namespaces"]) == {"pid", "network", "mount", "ipc", "uts", "user",
                                        "cgroup", "time"}
    assert linux["mountExtensions"]["idmap"]["enabled"] is False
    # recursive attributes and tmpcopyup are implemented (spec-tests/test_filesystem.py)
    assert {"rro", "rrw", "rnosuid", "rnodev", "rnoexec", "tmpcopyup"} <= set(doc["mountOptions"])
    assert "CAP_SYS_ADMIN" in linux["capabilities"]


HEAVY = {"jsonschema", "pyroute2", "pyseccomp"}
RECORDER = """
import json, sys
out, argv = sys.argv[1], json.loads(sys.argv[2])
sys.argv = ["ocirt"] + argv
from ocirt.cli.main import main
rc = main()
with open(out, "w") as f:
    json.dump({"rc": rc, "modules": sorted({m.split(".")[0] for m in sys.modules})}, f)
"""


def test_hot_path_imports_no_heavy_module(tmp_path: Path, root: Path, bundle: Path) -> None:
    """create, start, state, exec, kill and delete never import jsonschema, pyroute2 or
    pyseccomp (each costs 40-170 ms to import)."""
    cid = "hotpath"
    steps = [["create", "--bundle", str(bundle), cid], ["start", cid], ["state", cid],
             ["exec", cid, "true"], ["kill", cid, "KILL"], ["delete", "--force", cid]]
    for argv in steps:
        out = tmp_path / "modules.json"
        subprocess.run([sys.executable, "-c", RECORDER, str(out),
                        json.dumps(["--root", str(root), *argv])],
                       check=True, timeout=60, stdout=subprocess.DEVNULL, cwd=REPO)
        result = json.loads(out.read_text())
        assert result["rc"] == 0, argv
        assert not HEAVY & set(result["modules"]), (argv, HEAVY & set(result["modules"]))


def test_a_cached_seccomp_profile_skips_pyseccomp(tmp_path: Path, root: Path,
                                                  bundle: Path) -> None:
    """The first container with a profile compiles it; the next ones load the cached BPF."""
    config = json.loads((bundle / "config.json").read_text())
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 38}, {"names": ["no_such_syscall"], "action": "SCMP_ACT_KILL"}],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "x-test": str(tmp_path),  # a profile no earlier run has cached
    }
    config["root"]["path"] = str(bundle / "rootfs")
    seccomp_bundle = tmp_path / "seccomp-bundle"
    seccomp_bundle.mkdir()
    (seccomp_bundle / "config.json").write_text(json.dumps(config))
    loaded = []
    for cid in ("sc1", "sc2"):
        out = tmp_path / f"{cid}.json"
        subprocess.run([sys.executable, "-c", RECORDER, str(out),
                        json.dumps(["--root", str(root), "create", "--bundle",
                                    str(seccomp_bundle), cid])],
                       check=True, timeout=60, stdout=subprocess.DEVNULL, cwd=REPO)
        loaded.append("pyseccomp" in json.loads(out.read_text())["modules"])
        try:
            assert ocirt(root, "start", cid).returncode == 0
            pid = json.loads(ocirt(root, "state", cid).stdout)["pid"]
            deadline = time.monotonic() + 10
            while "sleep" not in Path(f"/proc/{pid}/cmdline").read_text() and \
                    time.monotonic() < deadline:
                time.sleep(0.01)
            assert "Seccomp:\t2" in Path(f"/proc/{pid}/status").read_text()
        finally:
            assert ocirt(root, "delete", "--force", cid).returncode == 0
    assert loaded == [True, False]


@pytest.mark.parametrize("value", ["true", "maybe"])
def test_rootless_true_or_unknown_is_refused(tmp_path: Path, value: str) -> None:
    """--rootless=true (runc's rootless cgroup mode) is not implemented: refused in one line,
    not accepted and ignored; auto and false work."""
    (tmp_path / "state").mkdir()
    res = ocirt(tmp_path / "state", f"--rootless={value}", "list")
    assert res.returncode != 0 and res.stderr.count("\n") == 1, res
    assert "--rootless" in res.stderr
    for ok in ("auto", "false"):
        assert ocirt(tmp_path / "state", f"--rootless={ok}", "list").returncode == 0
