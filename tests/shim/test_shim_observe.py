"""ocish observation commands, for real (on ocirt and on runc): ps --filter/--format/-s/-n/-l,
logs --since/--until/-t and the log drivers, inspect --format/-s, top, port; and the same
containers under a private podman, whose output is compared where its formats are Docker's
(once, not per runtime)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from archive_support import PrivatePodman
from container_support import CGROUP_PARENT, Ocish, assert_nothing_left, wait_for
from shim_support import REPO, Images, one_line_error

pytest_plugins = ["shim_fixtures", "container_fixtures", "archive_fixtures"]

DOCKER_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"


def test_ps_format_filters_and_sizes(oc: Ocish) -> None:
    first = oc.run("--name", "first", "-l", "tier=db", "-l", "solo", "IMAGE", "sh", "-c",
                   "printf ab > /written; exit 3", check=False)
    assert first.returncode == 3
    oc.run("-d", "--name", "second", "-l", "tier=web", "IMAGE", "sleep", "1000")
    ids = {n: oc.inspect(n)["Id"] for n in ("first", "second")}

    def ps(*args: str) -> list[str]:
        return oc("ps", *args).stdout.splitlines()

    # a template per row, Docker's fields
    rows = ps("-a", "--format", "{{.ID}}|{{.Names}}|{{.Image}}|{{.Command}}|{{.State}}|"
              "{{.Status}}|{{.Ports}}|{{.Labels}}|{{.Label \"tier\"}}|{{.Networks}}|"
              "{{.RunningFor}}|{{.CreatedAt}}")
    assert len(rows) == 2
    cells = [r.split("|") for r in rows]  # newest first
    assert [c[1] for c in cells] == ["second", "first"]
    assert cells[0][0] == ids["second"][:12] and cells[1][2] == oc.image  # type: ignore[index]
    assert cells[0][3] == '"sleep 1000"' and cells[1][3] == '"sh -c printf ab > /…"'
    assert [c[4] for c in cells] == ["running", "exited"]
    assert cells[0][5].startswith("Up ") and re.fullmatch(r"Exited \(3\) .* ago", cells[1][5])
    assert cells[1][6:10] == ["", "solo=,tier=db", "db", "none"]
    assert cells[0][10].endswith(" ago")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+", cells[0][11])
    # table: a header of Docker's titles, columns aligned (at least 10 wide, 3 apart)
    table = ps("-a", "--format", "table {{.Names}}\\t{{.State}}\\t{{.ID}}")
    assert table[0] == "NAMES     STATE     CONTAINER ID"
    assert table[1] == f"second    running   {ids['second'][:12]}"  # type: ignore[index]
    # json: Docker's {{json .}} per line
    objs = [json.loads(line) for line in ps("-a", "--format", "json")]
    assert objs[1]["Names"] == "first" and objs[1]["Labels"] == "solo=,tier=db"
    assert sorted(objs[0]) == ["Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes",
                               "Mounts", "Names", "Networks", "Ports", "RunningFor", "Size",
                               "State", "Status"]
    timeless = [{k: v for k, v in json.loads(line).items() if k not in ("RunningFor", "Status")}
                for line in ps("-a", "--format", "{{json .}}")]
    assert timeless == [{k: v for k, v in o.items() if k not in ("RunningFor", "Status")}
                        for o in objs]
    # filters
    name = "--format={{.Names}}"
    assert ps(name) == ["second"]
    assert ps("-a", name, "--filter", "label=tier=db") == ["first"]
    assert ps("-a", name, "--filter", "label=tier") == ["second", "first"]
    assert ps("-a", name, "--filter", "label=tier", "--filter", "label=solo") == ["first"]
    assert ps(name, "--filter", "status=exited") == ["first"]
    assert ps(name, "--filter", "exited=3") == ["first"]
    assert ps(name, "--filter", "exited=0") == []
    assert ps("-a", name, "-f", "name=sec") == ["second"]
    assert ps("-a", name, "-f", f"id={ids['first'][:5]}") == ["first"]  # type: ignore[index]
    assert ps("-a", name, "-f", "before=second") == ["first"]
    assert ps("-a", name, "-f", "since=first") == ["second"]
    assert ps(name, "-f", "since=first") == ["second"]  # 'first' itself is not listed
    assert ps(name, "-n", "1", "-f", "status=exited") == ["first"]  # -n after the filters
    assert ps("-a", name, "-f", f"ancestor={oc.image}") == ["second", "first"]
    assert ps("-a", name, "-f", "ancestor=no-such-image") == []
    assert ps("-a", name, "-f", "network=none", "-f", "status=running") == ["second"]
    assert ps("-a", name, "-f", "health=none") == ["second", "first"]
    assert ps(name, "-n", "1") == ["second"] and ps(name, "-l") == ["second"]
    assert ps(name, "-n", "2") == ["second", "first"]
    for bad in ("colour=red", "status=sleeping", "exited=x", "nokey"):
        res = oc("ps", "--filter", bad, check=False)
        assert res.returncode != 0
        one_line_error(res)
    # sizes: the upper dir's files, and with the image's (virtual)
    info = json.loads(oc("inspect", "-s", "first").stdout)[0]
    assert info["SizeRw"] == 2 and info["SizeRootFs"] > 2
    image_size = info["SizeRootFs"] - 2
    size_table = ps("-a", "-s")
    assert size_table[0].split()[-1] == "SIZE"
    assert size_table[2].endswith(f"   2B (virtual {_human(image_size + 2)})")
    assert ps("-a", "--format", "{{.Names}} {{.Size}}")[1] == \
        f"first 2B (virtual {_human(image_size + 2)})"
    oc("rm", "-f", "first", "second")
    assert_nothing_left(oc.root)


def _human(n: int) -> str:
    """Docker's decimal size with three significant digits."""
    units = ["B", "kB", "MB", "GB"]
    size, i = float(n), 0
    while size >= 1000:
        size, i = size / 1000, i + 1
    return f"{size:.3g}{units[i]}"


def test_logs_times_and_drivers(oc: Ocish) -> None:
    oc.run("-d", "--name", "talker", "IMAGE", "sh", "-c",
           "echo one; sleep 1.5; echo two >&2; sleep 1.5; echo three")
    assert oc("wait", "talker").stdout == "0\n"
    res = oc("logs", "-t", "talker")
    out = res.stdout.splitlines()
    assert [re.fullmatch(rf"({DOCKER_TIME}) (\w+)", line) is not None for line in out] == \
        [True, True]
    assert [line.split(" ", 1)[1] for line in out] == ["one", "three"]
    two = res.stderr.splitlines()[0]
    assert re.fullmatch(rf"{DOCKER_TIME} two", two)
    stamp = two.split(" ")[0]
    # --since/--until: RFC 3339 (inclusive), Unix times, durations
    assert oc("logs", "--since", stamp, "talker").stdout == "three\n"
    assert oc("logs", "--since", stamp, "talker").stderr == "two\n"
    assert oc("logs", "--until", stamp, "talker").stdout == "one\n"
    assert oc("logs", "--since", stamp, "--until", stamp, "talker").stdout == ""
    secs = _epoch(stamp)
    assert oc("logs", "--since", f"{secs:.9f}", "talker").stdout == "three\n"
    assert oc("logs", "--until", str(int(secs) - 3600), "talker").stdout == ""
    assert oc("logs", "--since", "10m", "talker").stdout == "one\nthree\n"
    assert oc("logs", "--until", "1h", "talker").stdout == ""
    res = oc("logs", "--since", "yesterday", "talker", check=False)
    assert res.returncode != 0 and 'invalid value for "since"' in one_line_error(res)
    oc("rm", "talker")
    # none: no log, and Docker's error for logs; json-file: written and read as k8s-file
    oc.run("-d", "--name", "quiet", "--log-driver", "none", "IMAGE", "echo", "lost")
    oc.run("--name", "jf", "--log-driver", "json-file", "IMAGE", "echo", "kept")
    assert oc("wait", "quiet").stdout == "0\n"
    res = oc("logs", "quiet", check=False)
    assert res.returncode == 1 and one_line_error(res) == \
        "ocish: configured logging driver does not support reading"
    assert oc("logs", "jf").stdout == "kept\n"
    assert oc.inspect("quiet")["HostConfig"]["LogConfig"] == {  # type: ignore[index]
        "Type": "none", "Config": {}}
    assert oc.inspect("quiet")["LogPath"] == ""
    # max-size: conmon keeps the log under it, the last lines stay readable
    oc.run("--name", "big", "--log-opt", "max-size=8k", "IMAGE", "sh", "-c",
           "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done")
    log = Path(str(oc.inspect("big")["LogPath"]))
    assert log.stat().st_size <= 8192
    assert oc("logs", "--tail", "1", "big").stdout == "line-1999\n"
    assert oc.inspect("big")["HostConfig"]["LogConfig"] == {  # type: ignore[index]
        "Type": "k8s-file", "Config": {"max-size": "8k"}}
    for bad in (["--log-driver", "syslog"], ["--log-opt", "max-file=3"],
                ["--log-opt", "max-size=lots"]):
        res = oc.run(*bad, "IMAGE", "true", check=False)
        assert res.returncode == 125
        one_line_error(res)
    oc("rm", "quiet", "jf", "big")
    assert_nothing_left(oc.root)


def _epoch(stamp: str) -> float:
    import calendar

    base, frac = stamp.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + frac)


def test_inspect_format_and_sections(oc: Ocish) -> None:
    oc.run("-d", "--name", "box", "-l", "k=v", "--stop-timeout", "3", "IMAGE", "sleep", "1000")
    fmt = oc("inspect", "--format", '{{.State.Status}} {{.State.Running}} {{.Name}} '
             '{{index .Config.Labels "k"}} {{json .Config.Cmd}} {{.Config.StopTimeout}} '
             '{{.Driver}} {{.GraphDriver.Name}} {{len .Mounts}}', "box").stdout
    assert fmt == 'running true /box v ["sleep","1000"] 3 overlay2 overlay2 0\n'
    assert oc("container", "inspect", "-f", "{{range .Config.Env}}{{if .}}[{{.}}]{{end}}"
              "{{end}}", "box").stdout.startswith("[PATH=")
    assert oc("inspect", "-f", "{{upper .State.Status}}|{{.State.Pid | printf \"%d\"}}",
              "box").stdout.split("|")[0] == "RUNNING"
    assert oc("inspect", "-f", '{{if eq .State.Status "running"}}up{{else}}down{{end}} '
              '{{- " " -}} {{not .State.Paused}} {{.HostConfig.LogConfig}}', "box").stdout == \
        "up true map[Config:map[] Type:k8s-file]\n"
    info = oc.inspect("box")
    assert list(info) == ["Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath",
                          "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount",
                          "Driver", "Platform", "MountLabel", "ProcessLabel",
                          "AppArmorProfile", "ExecIDs", "HostConfig", "GraphDriver",
                          "Mounts", "Config", "NetworkSettings"]
    data = info["GraphDriver"]["Data"]  # type: ignore[index]
    for key in ("LowerDir", "UpperDir", "WorkDir", "MergedDir"):
        for d in data[key].split(":"):
            assert Path(d).is_dir(), (key, d)
    assert data["MergedDir"] in Path("/proc/self/mountinfo").read_text()
    assert info["NetworkSettings"]["Networks"].keys() == {"none"}  # type: ignore[index]
    assert info["Config"]["Labels"] == {"k": "v"}  # type: ignore[index]
    assert Path(str(info["HostnamePath"])).read_text() == info["Config"]["Hostname"] + "\n"  # type: ignore[index]
    # errors: one line, no traceback
    for bad in ("{{.State.Nope}}", "{{.State.Status", "{{nosuchfunc .Id}}", "{{end}}"):
        res = oc("inspect", "-f", bad, "box", check=False)
        assert res.returncode != 0
        one_line_error(res)
    res = oc("inspect", "-f", "{{.Name}}", "box", "nothere", check=False)
    assert res.returncode == 1 and res.stdout == "/box\n"
    assert one_line_error(res) == "ocish: No such object: nothere"
    oc("rm", "-f", "box")
    assert_nothing_left(oc.root)


def test_top_and_port(oc: Ocish) -> None:
    oc.run("-d", "--name", "busy", "IMAGE", "sh", "-c", "sleep 1000 & exec sleep 2000")
    pid = int(oc.inspect("busy")["State"]["Pid"])  # type: ignore[index]
    wait_for(lambda: len(oc("top", "busy").stdout.splitlines()) == 3, "both processes")
    lines = oc("top", "busy").stdout.splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert lines[0].startswith("UID" + " " * 17 + "PID")  # Docker's columns, 20 wide
    cmds = sorted(line.split(None, 7)[7] for line in lines[1:])
    assert cmds == ["sleep 1000", "sleep 2000"]
    assert str(pid) in [line.split()[1] for line in lines[1:]]
    custom = oc("container", "top", "busy", "-o", "pid,comm").stdout.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"] and len(custom) == 3
    res = oc("top", "busy", "-o", "comm", check=False)
    assert "Couldn't find PID field in ps output" in one_line_error(res)
    assert oc("port", "busy").stdout == ""
    res = oc("port", "busy", "80", check=False)
    assert res.returncode == 1
    assert one_line_error(res) == "ocish: Error: No public port '80/tcp' published for busy"
    oc("stop", "-t", "0", "busy")
    res = oc("top", "busy", check=False)
    assert "is not running" in one_line_error(res)
    oc("rm", "busy")
    assert_nothing_left(oc.root)


# ---- compared with podman (once; podman on runc, ocish on ocirt) ----

DOCKER_STATE = ["Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid",
                "ExitCode", "Error", "StartedAt", "FinishedAt"]
DOCKER_TOP = ["Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath",
              "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount", "Driver",
              "Platform", "MountLabel", "ProcessLabel", "AppArmorProfile", "ExecIDs",
              "HostConfig", "GraphDriver", "Mounts", "Config", "NetworkSettings"]
DOCKER_CONFIG = ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout",
                 "AttachStderr", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image",
                 "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal",
                 "StopTimeout"]


PODMAN_RUN = ["--runtime", "/usr/sbin/runc", "run", "--network", "none", "--ulimit",
              "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]  # (no CAP_SYS_RESOURCE)


@pytest.fixture
def ocirt_oc(ocish_root: Path, images: Images, request: pytest.FixtureRequest) -> Ocish:
    """An ocish on ocirt (the session's --runtime), for the podman comparisons."""
    path = Path(request.config.getoption("--runtime"))
    return Ocish(ocish_root, str(path if path.exists() else REPO / ".venv" / "bin" / "ocirt"),
                 images)


def test_compared_with_podman(podman: PrivatePodman, ocirt_oc: Ocish) -> None:
    oc, pm = ocirt_oc, podman
    pm("pull", "--tls-verify=false", oc.image)
    oc("pull", "--tls-verify=false", oc.image)

    def both(*args: str, check: bool = True) -> tuple[Any, Any]:
        """The same run under podman and ocish."""
        return (pm(*PODMAN_RUN, *args, check=check),
                oc("run", "--cgroup-parent", CGROUP_PARENT, *args, check=check))

    try:
        # the same failed and ending runs: the same exit statuses
        for args, status in (([oc.image, "sh", "-c", "exit 3"], 3),
                             ([oc.image, "/no/such/cmd"], 127), ([oc.image, "/etc/passwd"], 126),
                             (["--pull", "never", "localhost/no-such-image:1", "true"], 125)):
            p_res, o_res = both("--rm", *args, check=False)
            assert (p_res.returncode, o_res.returncode) == (status, status), \
                (args, p_res.stderr, o_res.stderr)
        both("-d", "--name", "cmp", "-l", "a=b", oc.image, "sh", "-c", "echo hi; sleep 1000")
        tmpl = "{{.ID}}|{{.Names}}|{{.Image}}|{{.Status}}|{{.Ports}}|{{.RunningFor}}"
        p_ps = pm("ps", "--format", tmpl).stdout.strip().split("|")
        o_ps = oc("ps", "--format", tmpl).stdout.strip().split("|")
        assert len(p_ps) == len(o_ps) == 6
        assert all(re.fullmatch(r"[0-9a-f]{12}", c[0]) for c in (p_ps, o_ps))
        assert p_ps[1:3] == o_ps[1:3] == ["cmp", oc.image]
        assert all(c[3].startswith("Up ") for c in (p_ps, o_ps))
        assert p_ps[4] == o_ps[4] == ""
        assert all(c[5].endswith(" ago") for c in (p_ps, o_ps))
        # inspect: the keys Docker's JSON has, and podman's too, are ocish's, same types
        p_info: dict[str, Any] = json.loads(pm("inspect", "cmp").stdout)[0]
        o_info: dict[str, Any] = json.loads(oc("inspect", "cmp").stdout)[0]
        for section, docker_keys in ((None, DOCKER_TOP), ("State", DOCKER_STATE),
                                     ("Config", DOCKER_CONFIG)):
            p_sec = p_info if section is None else p_info[section]
            o_sec = o_info if section is None else o_info[section]
            shared = [k for k in docker_keys if k in p_sec]
            assert shared and all(k in o_sec for k in shared), (section, shared, list(o_sec))
            # in Docker's order (podman's own order differs: it puts HostConfig last)
            assert [k for k in o_sec if k in docker_keys] == [k for k in docker_keys
                                                              if k in o_sec]
        for k in DOCKER_STATE:
            assert type(p_info["State"][k]) is type(o_info["State"][k]), k
        assert p_info["Config"]["Labels"] == o_info["Config"]["Labels"] == {"a": "b"}
        fmt = "{{.State.Status}} {{index .Config.Labels \"a\"}} {{json .Config.Labels}}"
        assert pm("inspect", "--format", fmt, "cmp").stdout == \
            oc("inspect", "--format", fmt, "cmp").stdout == 'running b {"a":"b"}\n'
        # logs -t: the same line format
        wait_for(lambda: oc("logs", "cmp").stdout == "hi\n", "ocish's log")
        wait_for(lambda: pm("logs", "cmp").stdout == "hi\n", "podman's log")
        for res in (pm("logs", "-t", "cmp"), oc("logs", "-t", "cmp")):
            assert re.fullmatch(rf"{DOCKER_TIME} hi\n", res.stdout), res.stdout
    finally:
        pm("rm", "-f", "-t", "0", "cmp", check=False)
        oc("rm", "-f", "cmp", check=False)
    assert_nothing_left(oc.root)
