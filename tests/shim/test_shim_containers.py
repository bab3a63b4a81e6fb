"""ocish containers, for real: images from the local registry, conmon as the monitor, and the
same tests with ocirt and with runc as the runtime (container_fixtures.oc). ocish killed mid-run
and parallel runs are in test_shim_faults.py."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from container_support import CGROUP_PARENT, Ocish, assert_nothing_left, wait_for
from shim_support import one_line_error

pytest_plugins = ["shim_fixtures", "container_fixtures"]


def test_run_rm_echo(oc: Ocish) -> None:
    res = oc.run("--rm", "IMAGE", "echo", "hi")
    assert res.stdout == "hi\n"
    assert_nothing_left(oc.root)


def test_run_status_and_streams(oc: Ocish) -> None:
    res = oc.run("--rm", "IMAGE", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (res.returncode, res.stdout) == (3, "out\n")
    assert "err\n" in res.stderr


def test_run_options_and_defaults(oc: Ocish) -> None:
    script = ("echo $FOO; pwd; hostname; cat /etc/hostname; grep CapEff /proc/self/status; "
              "ls /sys/class/net; cat /proc/kcore | wc -c; (echo x > /proc/sys/kernel/domainname) 2>&1 || true; "
              "ls /dev")
    res = oc.run("--rm", "-e", "FOO=bar", "-w", "/tmp", "--hostname", "box", "IMAGE",
                 "sh", "-c", script)
    lines = res.stdout.splitlines()
    assert lines[:4] == ["bar", "/tmp", "box", "box"]
    assert lines[4].split() == ["CapEff:", "00000000a80425fb"]  # Docker's default set
    assert lines[5] == "lo"  # --network none: only loopback
    assert lines[6] == "0"  # masked
    assert "Read-only file system" in lines[7]
    assert "sda" not in res.stdout and "null" in lines[8:]


def test_entrypoint(oc: Ocish) -> None:
    res = oc.run("--rm", "--entrypoint", "echo", "IMAGE", "a", "b")
    assert res.stdout == "a b\n"


@pytest.mark.parametrize(("cmd", "status"), [("/no/such/cmd", 127), ("nosuchcmd", 127),
                                             ("/etc/passwd", 126)])
def test_run_cannot_invoke(oc: Ocish, cmd: str, status: int) -> None:
    oc("pull", "--tls-verify=false", oc.image)  # (else the pull's progress is on stderr too)
    res = oc.run("--rm", "IMAGE", cmd, check=False)
    assert res.returncode == status
    one_line_error(res)
    assert_nothing_left(oc.root)


def test_create_failures_leave_nothing(oc: Ocish) -> None:
    oc.run("--rm", "IMAGE", "true")  # the image is here now
    for args, status in ((["--user", "nosuchuser"], 125), (["--name", "bad/name"], 125),
                         (["-w", "relative"], 125)):
        res = oc.run(*args, "IMAGE", "true", check=False)
        assert res.returncode == status
        one_line_error(res)
        assert_nothing_left(oc.root)
    res = oc("run", "--pull", "never", "no-such-image:1", "true", check=False)
    assert res.returncode == 125 and "No such image" in one_line_error(res)
    oc.run("-d", "--name", "taken", "IMAGE", "true")
    res = oc.run("--name", "taken", "IMAGE", "true", check=False)
    assert res.returncode == 125 and "already in use" in one_line_error(res)
    oc("rm", "-f", "taken")


def test_detached_lifecycle(oc: Ocish) -> None:
    cid = oc.run("-d", "--name", "web", "IMAGE", "sh", "-c",
                 "echo started; echo warn >&2; exec sleep 1000").stdout.strip()
    assert len(cid) == 64
    ps = oc("ps").stdout.splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                             "PORTS", "NAMES"]
    assert ps[1].startswith(cid[:12]) and ps[1].endswith("web") and " Up " in ps[1]
    assert oc("ps", "-q").stdout == cid[:12] + "\n"
    assert oc("ps", "-q", "--no-trunc").stdout == cid + "\n"
    wait_for(lambda: "started" in oc("logs", "web").stdout, "log")
    logs = oc("logs", "web")
    assert (logs.stdout, logs.stderr) == ("started\n", "warn\n")
    state = oc.inspect("web")["State"]
    assert state["Status"] == "running" and state["Pid"] > 0  # type: ignore[index]
    oc("stop", "-t", "1", "web")
    ps_a = oc("ps", "-a").stdout.splitlines()[1]
    assert "Exited (143)" in ps_a or "Exited (137)" in ps_a  # sleep dies of SIGTERM
    assert oc("ps", "-q").stdout == ""
    assert oc("wait", "web").stdout in ("143\n", "137\n")
    oc("start", "web")  # an exited container runs again
    wait_for(lambda: oc("logs", "web").stdout == "started\nstarted\n", "second start's log")
    res = oc("rm", "web", check=False)
    assert "stop the container" in one_line_error(res)
    oc("kill", "-s", "KILL", "web")
    assert oc("wait", "web").stdout == "137\n"
    oc("rm", "web")
    assert_nothing_left(oc.root)


def test_logs_follow_and_tail(oc: Ocish) -> None:
    oc.run("-d", "--name", "talker", "IMAGE", "sh", "-c",
           "for i in 1 2 3; do echo line $i; sleep 0.3; done")
    follow = oc("logs", "-f", "talker")  # returns when the container has exited
    assert follow.stdout == "line 1\nline 2\nline 3\n"
    assert oc("logs", "--tail", "1", "talker").stdout == "line 3\n"
    assert oc("wait", "talker").stdout == "0\n"
    oc("rm", "talker")


def _kill_and_check(oc: Ocish, pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: "Exited (137)" in oc("ps", "-a").stdout, "exited status")
    assert oc("ps", "-q").stdout == ""
    oc("rm", "-f", "victim")
    assert_nothing_left(oc.root)


def test_killed_monitor(oc: Ocish) -> None:
    cid = oc.run("-d", "--name", "victim", "IMAGE", "sleep", "1000").stdout.strip()
    monitor = int((oc.root / "containers" / cid / "conmon.pid").read_text())
    assert b"conmon" in Path(f"/proc/{monitor}/cmdline").read_bytes()
    _kill_and_check(oc, monitor)


def test_killed_init(oc: Ocish) -> None:
    oc.run("-d", "--name", "victim", "IMAGE", "sleep", "1000")
    _kill_and_check(oc, int(oc.inspect("victim")["State"]["Pid"]))  # type: ignore[index]


def test_create_start_and_inspect(oc: Ocish) -> None:
    cid = oc("create", "--tls-verify=false", "--cgroup-parent", CGROUP_PARENT, "--name", "c1",
             oc.image, "echo", "created").stdout.strip()
    info = oc.inspect("c1")
    assert info["Id"] == cid and info["Name"] == "/c1"
    assert info["State"]["Status"] == "created"  # type: ignore[index]
    assert info["Path"] == "echo" and info["Args"] == ["created"]
    assert info["HostConfig"]["NetworkMode"] == "none"  # type: ignore[index]
    oc("start", "c1")
    assert oc("wait", "c1").stdout == "0\n"
    assert oc("logs", "c1").stdout == "created\n"
    oc("rm", "c1")


def test_image_in_use_is_kept(oc: Ocish) -> None:
    oc.run("-d", "--name", "user", "IMAGE", "true")
    res = oc("rmi", oc.image, check=False)
    assert "being used by container" in one_line_error(res)
    oc("image", "prune", "-a", "-f")
    assert oc.image.split("/", 1)[1].split(":")[0] in oc("images").stdout
    oc("rm", "-f", "user")
    oc("rmi", oc.image)


def test_stop_timeouts(oc: Ocish) -> None:
    # sh as init ignores SIGTERM: stop must SIGKILL it after the timeout (--stop-timeout,
    # else -t)
    oc.run("-d", "--name", "stubborn", "--stop-timeout", "1", "IMAGE", "sh", "-c",
           "while true; do sleep 0.1; done")
    oc("stop", "stubborn")
    assert oc("wait", "stubborn").stdout == "137\n"
    oc("rm", "stubborn")


def test_detached_rm_removes_itself(oc: Ocish) -> None:
    oc.run("-d", "--rm", "IMAGE", "true")
    wait_for(lambda: oc("ps", "-a", "-q").stdout == "", "removal by the exit command")
    assert_nothing_left(oc.root)


def test_created_container_is_removed(oc: Ocish) -> None:
    oc("create", "--tls-verify=false", "--cgroup-parent", CGROUP_PARENT, "--name", "never",
       oc.image, "true")
    line = oc("ps", "-a").stdout.splitlines()[1]
    assert " Created " in line and line.endswith("never")
    oc("rm", "never")
    assert_nothing_left(oc.root)


def test_foreground_run_forwards_signals(oc: Ocish) -> None:
    oc("pull", "--tls-verify=false", oc.image)
    proc = subprocess.Popen([*oc.argv(), "run", "--cgroup-parent", CGROUP_PARENT, "--rm",
                             oc.image, "sh", "-c",
                             "trap 'echo got TERM; exit 7' TERM; echo ready; "
                             "while true; do sleep 0.1; done"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out) == (7, "got TERM\n")


def test_network_host(oc: Ocish) -> None:
    res = oc.run("--rm", "--network", "host", "IMAGE", "ls", "/sys/class/net")
    assert sorted(res.stdout.split()) == sorted(os.listdir("/sys/class/net"))
    res = oc.run("--rm", "--network", "bridge", "IMAGE", "true", check=False)
    assert res.returncode == 125 and "not implemented" in one_line_error(res)
    assert_nothing_left(oc.root)
    res = oc("run", "--no-such-flag", oc.image, check=False)
    assert res.returncode == 125 and "unrecognized" in one_line_error(res)


def test_seccomp_and_no_new_privileges(oc: Ocish) -> None:
    show = ["IMAGE", "grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"]
    fields = dict(line.split(":\t") for line in oc.run("--rm", *show).stdout.splitlines())
    assert fields == {"Seccomp": "2", "NoNewPrivs": "0"}  # the default profile, filtering
    fields = dict(line.split(":\t") for line in oc.run(
        "--rm", "--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges",
        *show).stdout.splitlines())
    assert fields == {"Seccomp": "0", "NoNewPrivs": "1"}
    for bad in ("seccomp=/no/such/profile.json", "apparmor=foo"):
        res = oc.run("--security-opt", bad, "IMAGE", "true", check=False)
        assert res.returncode == 125
        one_line_error(res)
    assert_nothing_left(oc.root)
