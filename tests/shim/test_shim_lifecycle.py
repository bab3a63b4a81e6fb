"""ocish's container lifecycle beyond run/stop/rm, for real on ocirt and on runc: restart,
pause/unpause, rename, container prune, restart policies, system boot after a simulated
reboot, healthchecks and the event log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from container_support import CGROUP_PARENT, CGROUP_ROOT, Ocish, wait_for
from shim_support import one_line_error

pytest_plugins = ["shim_fixtures", "container_fixtures"]

TICKER = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done"


def _state(oc: Ocish, name: str) -> dict[str, object]:
    return oc.inspect(name)["State"]  # type: ignore[return-value]


def _ps_status(oc: Ocish, name: str) -> str:
    for line in oc("ps", "-a").stdout.splitlines()[1:]:
        if line.split()[-1] == name:
            return line
    raise AssertionError(f"{name} not in ps -a")


def _log_lines(oc: Ocish, name: str) -> int:
    return len(oc("logs", name).stdout.splitlines())


def test_pause_unpause_restart_rename(oc: Ocish) -> None:
    cid = oc.run("-d", "--name", "tick", "IMAGE", "sh", "-c", TICKER).stdout.strip()
    wait_for(lambda: _log_lines(oc, "tick") > 2, "ticks")
    oc("pause", "tick")
    st = _state(oc, "tick")
    assert (st["Status"], st["Paused"], st["Running"]) == ("paused", True, True)
    assert "(Paused)" in _ps_status(oc, "tick") and "Up " in _ps_status(oc, "tick")
    frozen = _log_lines(oc, "tick")
    time.sleep(1)  # ten ticks' time: a running loop would have written more
    assert _log_lines(oc, "tick") == frozen
    res = oc("pause", "tick", check=False)
    assert "is already paused" in one_line_error(res)
    res = oc("rm", "tick", check=False)
    assert "paused" in one_line_error(res)
    oc("unpause", "tick")
    wait_for(lambda: _log_lines(oc, "tick") > frozen, "ticks after unpause")
    assert _state(oc, "tick")["Status"] == "running"
    res = oc("unpause", "tick", check=False)
    assert "is not paused" in one_line_error(res)

    started = _state(oc, "tick")["StartedAt"]
    assert oc("restart", "-t", "1", "tick").stdout == "tick\n"
    info = oc.inspect("tick")
    assert info["Id"] == cid and info["State"]["Status"] == "running"  # type: ignore[index]
    assert info["State"]["StartedAt"] > started  # type: ignore[index,operator]

    oc("rename", "tick", "tock")
    assert oc.inspect("tock")["Name"] == "/tock" and oc.inspect(cid[:12])["Id"] == cid
    assert "No such object: tick" in one_line_error(oc("inspect", "tick", check=False))
    oc.run("-d", "--name", "other", "IMAGE", "true")
    res = oc("rename", "tock", "other", check=False)
    assert 'The container name "/other" is already in use' in one_line_error(res)
    # a paused container stops (the stop signal is acted on once thawed) and rm -f goes
    oc("pause", "tock")
    oc("stop", "-t", "20", "tock")
    assert _state(oc, "tock")["Status"] == "exited"
    oc("start", "tock")
    oc("pause", "tock")
    oc("rm", "-f", "tock", "other")
    _settle(oc)


def test_container_prune(oc: Ocish) -> None:
    oc.run("--name", "old", "IMAGE", "sh", "-c", "echo data > /big")
    time.sleep(1.1)  # "old" was created a second before the cut
    cut = f"{time.time():.3f}"
    time.sleep(0.1)
    new = oc.run("-d", "--name", "new", "IMAGE", "true").stdout.strip()
    oc("wait", "new")
    oc.run("-d", "--name", "up", "IMAGE", "sleep", "1000")
    res = oc("container", "prune", input="n\n")  # asks first; "n" removes nothing
    assert res.stdout == ("WARNING! This will remove all stopped containers.\n"
                          "Are you sure you want to continue? [y/N] ")
    assert len(oc("ps", "-a", "-q").stdout.split()) == 3
    res = oc("container", "prune", "-f", "--filter", f"until={cut}")
    old_id = oc("ps", "-a", "-q", "--no-trunc").stdout  # "new" and "up" are left
    assert "old" not in oc("ps", "-a").stdout
    lines = res.stdout.splitlines()
    assert lines[0] == "Deleted Containers:" and len(lines) == 4 and lines[2] == ""
    assert len(lines[1]) == 64 and lines[1] not in old_id
    assert lines[3] == "Total reclaimed space: " + lines[3].split(": ")[1]
    assert lines[3] != "Total reclaimed space: 0B"  # /big was written to its upper dir
    res = oc("container", "prune", "-f", "--filter", "label=no.such.label")
    assert res.stdout == "Total reclaimed space: 0B\n"
    res = oc("container", "prune", "-f", "--filter", "label!=no.such.label")
    assert res.stdout == f"Deleted Containers:\n{new}\n\nTotal reclaimed space: 0B\n"
    assert [ln.split()[-1] for ln in oc("ps", "-a").stdout.splitlines()[1:]] == ["up"]
    assert oc("container", "prune", "-f").stdout == "Total reclaimed space: 0B\n"
    oc("rm", "-f", "up")
    _settle(oc)


def test_restart_policy_flags_refused(oc: Ocish) -> None:
    oc("pull", "--tls-verify=false", oc.image)
    for args, text in ((["--restart", "sometimes"], "unknown policy 'sometimes'"),
                       (["--restart", "always:3"], "only be used with 'on-failure'"),
                       (["--restart", "on-failure:x"], "must be an integer"),
                       (["--rm", "--restart", "always"], "Conflicting options"),
                       (["--health-interval", "soon", "--health-cmd", "true"], "duration"),
                       (["--no-healthcheck", "--health-cmd", "true"], "conflicts")):
        res = oc.run(*args, "IMAGE", "true", check=False)
        assert res.returncode == 125 and text in one_line_error(res)


def test_on_failure_restarts_n_times(oc: Ocish) -> None:
    oc.run("-d", "--name", "flaky", "--restart", "on-failure:2", "IMAGE", "sh", "-c",
           "echo run; exit 3")

    def done() -> bool:
        info = oc.inspect("flaky")
        return info["RestartCount"] == 2 and info["State"]["Status"] == "exited"  # type: ignore[index]

    wait_for(done, "two restarts, then exited")
    # the last exit command finished without a third restart
    _settle_exit_commands(oc)
    info = oc.inspect("flaky")
    assert info["RestartCount"] == 2 and info["State"]["ExitCode"] == 3  # type: ignore[index]
    assert info["HostConfig"]["RestartPolicy"] == {  # type: ignore[index]
        "Name": "on-failure", "MaximumRetryCount": 2}
    assert oc("logs", "flaky").stdout == "run\n" * 3
    # a start of the user's resets the count
    oc("start", "flaky")
    wait_for(done, "two more restarts")
    oc("rm", "flaky")
    _settle(oc)


def _settle(oc: Ocish) -> None:
    """Wait for the monitors of removed containers and their exit commands: an exit command
    takes (and drops) the container's lock before it finds the container gone."""
    wait_for(lambda: _processes(oc) == [], "the end of the monitors and exit commands")


def _processes(oc: Ocish, word: bytes = b"") -> list[str]:
    """The processes whose command line names this test's root (and *word*)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name != str(os.getpid()) and any(str(oc.root).encode() in a for a in argv) \
                and (not word or word in argv):
            found.append(proc.name)
    return found


def _exit_commands(oc: Ocish) -> list[str]:
    return _processes(oc, b"cleanup")


def test_always_restarts_unless_stopped_by_user(oc: Ocish) -> None:
    oc.run("-d", "--name", "svc", "--restart", "always", "IMAGE", "sleep", "1000")
    first = _state(oc, "svc")
    os.kill(int(first["Pid"]), signal.SIGKILL)  # type: ignore[call-overload]

    def restarted() -> bool:
        info = oc.inspect("svc")
        st = info["State"]
        return bool(st["Status"] == "running" and st["Pid"] != first["Pid"] and  # type: ignore[index]
                    info["RestartCount"] == 1)

    wait_for(restarted, "a restart after the init was killed")
    assert _state(oc, "svc")["StartedAt"] > first["StartedAt"]  # type: ignore[operator]
    oc("stop", "-t", "1", "svc")
    _settle_exit_commands(oc)
    st = _state(oc, "svc")
    assert st["Status"] == "exited" and oc.inspect("svc")["RestartCount"] == 1
    assert "Exited (" in _ps_status(oc, "svc")
    oc("rm", "svc")
    _settle(oc)


def _simulate_reboot(oc: Ocish, name: str) -> None:
    """What a host's reboot does to a container: its monitor and processes gone, the
    runtime's state (/run) and the cgroups gone; its rootfs mount is left here, for boot."""
    info = oc.inspect(name)
    cid, pid = str(info["Id"]), int(info["State"]["Pid"])  # type: ignore[index]
    monitor = int((oc.root / "containers" / cid / "conmon.pid").read_text())
    os.kill(monitor, signal.SIGKILL)  # first: no exit command runs
    wait_for(lambda: not Path(f"/proc/{monitor}/cmdline").exists()
             or Path(f"/proc/{monitor}/cmdline").read_bytes() == b"", "the monitor's end")
    os.kill(pid, signal.SIGKILL)
    state_dir = oc.root / "runtime" / Path(oc.runtime).name / cid
    subprocess.run(["rm", "-rf", str(state_dir)], check=True)
    for ctl in CGROUP_ROOT.iterdir():
        cg = ctl / CGROUP_PARENT.lstrip("/") / cid
        if cg.is_dir():
            wait_for(lambda cg=cg: _rmdir(cg), f"the removal of {cg}")  # type: ignore[misc]


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False  # its processes are not all gone yet
    return True


def test_system_boot(oc: Ocish) -> None:
    for name, policy in (("always", "always"), ("plain", "no"), ("unless", "unless-stopped"),
                         ("stopped", "unless-stopped")):
        oc.run("-d", "--name", name, "--restart", policy, "IMAGE", "sleep", "1000")
    oc("stop", "-t", "1", "stopped")
    for name in ("always", "plain", "unless"):
        _simulate_reboot(oc, name)
    assert str(oc.root / "containers") in Path("/proc/self/mountinfo").read_text()
    oc("system", "boot")
    states = {n: _state(oc, n)["Status"] for n in ("always", "plain", "unless", "stopped")}
    assert states == {"always": "running", "plain": "exited", "unless": "running",
                      "stopped": "exited"}
    assert _state(oc, "plain")["ExitCode"] == 137
    oc("rm", "-f", "always", "plain", "unless", "stopped")
    _settle(oc)


def test_healthcheck(oc: Ocish) -> None:
    # healthy once the container got SIGUSR1 (no timing involved)
    oc.run("-d", "--name", "doc", "--health-cmd", "cat /tmp/ok", "--health-interval",
           "1s", "--health-retries", "2", "IMAGE", "sh", "-c",
           "trap 'echo fine > /tmp/ok' USR1; while :; do sleep 0.2; done")
    assert "(health: starting)" in _ps_status(oc, "doc")
    wait_for(lambda: "(unhealthy)" in _ps_status(oc, "doc"), "unhealthy")
    health = _state(oc, "doc")["Health"]
    assert health["Status"] == "unhealthy" and health["FailingStreak"] >= 2  # type: ignore[index]
    entry = health["Log"][-1]  # type: ignore[index]
    assert entry["ExitCode"] == 1 and "No such file" in entry["Output"]
    res = oc("healthcheck", "run", "doc", check=False)
    assert (res.returncode, res.stdout) == (1, "unhealthy\n")
    oc("kill", "-s", "USR1", "doc")
    wait_for(lambda: "(healthy)" in _ps_status(oc, "doc"), "healthy")
    assert oc("healthcheck", "run", "doc").stdout == ""
    health = _state(oc, "doc")["Health"]
    assert health["FailingStreak"] == 0 and health["Log"][-1]["Output"] == "fine\n"  # type: ignore[index]
    assert len(health["Log"]) <= 5  # type: ignore[index,arg-type]
    assert oc.inspect("doc")["Config"]["Healthcheck"]["Test"] == [  # type: ignore[index]
        "CMD-SHELL", "cat /tmp/ok"]
    events = oc("events", "--since", "0", "--until", f"{time.time():.3f}", "--filter",
                "event=health_status", "--format", "{{.Action}}").stdout.splitlines()
    assert events[:2] == ["health_status: unhealthy", "health_status: healthy"]
    oc("rm", "-f", "doc")  # the runner dies with it (checked by the fixture)
    oc.run("-d", "--name", "plain", "IMAGE", "sleep", "1000")
    res = oc("healthcheck", "run", "plain", check=False)
    assert res.returncode == 125 and "has no defined healthcheck" in one_line_error(res)
    assert "Health" not in _state(oc, "plain")
    oc("rm", "-f", "plain")
    _settle(oc)


def test_events(oc: Ocish) -> None:
    oc("pull", "--tls-verify=false", oc.image)
    since = f"{time.time():.3f}"
    out = oc.root.parent / f"events-{os.getpid()}.out"
    with open(out, "w") as f:
        follower = subprocess.Popen([*oc.argv(), "events", "--filter", "container=ev",
                                     "--format", "{{.Action}} {{.Actor.Attributes.name}}"],
                                    stdout=f, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)  # (events from before it started would only be missed)
        assert oc.run("--rm", "--name", "ev", "IMAGE", "sh", "-c", "exit 4",
                      check=False).returncode == 4
        wait_for(lambda: "destroy" in out.read_text(), "the followed destroy event")
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait()
        out.unlink()
    until = f"{time.time():.3f}"
    res = oc("events", "--since", since, "--until", until, "--filter", "container=ev")
    lines = res.stdout.splitlines()
    assert [ln.split()[2] for ln in lines] == ["create", "start", "die", "destroy"]
    assert lines[2][:30].endswith("Z") and lines[2].split()[1] == "container" and "exitCode=4" in lines[2]
    assert f"image={oc.image}" in lines[0] and "name=ev)" in lines[0]
    res = oc("events", "--since", since, "--until", until, "--filter", "event=die",
             "--format", "{{json .}}")
    ev = json.loads(res.stdout.splitlines()[-1])
    assert ev["Type"] == "container" and ev["Action"] == "die"
    assert ev["Actor"]["Attributes"]["exitCode"] == "4"
    assert oc("events", "--since", since, "--until", until, "--filter", "type=image").stdout \
        == ""
    oc("tag", oc.image, "ev/tagged:1")
    oc("rmi", "ev/tagged:1")
    res = oc("events", "--since", since, "--until", f"{time.time():.3f}", "--filter",
             "type=image", "--format", "{{.Action}} {{.Actor.ID}}")
    assert res.stdout.splitlines() == ["tag ev/tagged:1", "untag ev/tagged:1"]
    res = oc("events", "--since", "soon", check=False)
    assert "not a time" in one_line_error(res)


def test_healthcheck_timeout(oc: Ocish) -> None:
    oc.run("-d", "--name", "slow", "--health-cmd", "sleep 600", "--health-timeout", "1s",
           "--health-interval", "1s", "--health-retries", "1", "IMAGE", "sleep", "1000")
    wait_for(lambda: "(unhealthy)" in _ps_status(oc, "slow"), "unhealthy")
    cid = str(oc.inspect("slow")["Id"])
    entry = _state(oc, "slow")["Health"]["Log"][0]  # type: ignore[index]
    assert (entry["ExitCode"], entry["Output"]) == (-1, "Health check exceeded timeout (1s)")
    # each probe's process in the container is killed at its timeout: after two probes at
    # most the one under way is left
    wait_for(lambda: len(_state(oc, "slow")["Health"]["Log"]) >= 2,  # type: ignore[index,arg-type]
             "a second probe")
    probes = []
    for proc in Path("/proc").iterdir():
        try:
            if b"600" in (proc / "cmdline").read_bytes() and \
                    cid in (proc / "cgroup").read_text():
                probes.append(proc.name)
        except OSError:
            continue
    assert len(probes) <= 1, probes
    oc("rm", "-f", "slow")
    _settle(oc)


def test_stop_and_rm_during_the_restart_delay(oc: Ocish) -> None:
    """A user's stop or rm -f while the exit command sleeps the back-off wins over the
    restart. After 5 restarts the back-off is 3.2 s: long enough to catch."""
    for name in ("a", "b"):
        oc.run("-d", "--name", name, "--restart", "always", "IMAGE", "sh", "-c", "exit 1")

    def waiting(name: str) -> bool:
        info = oc.inspect(name)
        return bool(info["State"]["Status"] == "restarting" and  # type: ignore[index]
                    info["RestartCount"] >= 5 and  # type: ignore[operator]
                    "Restarting (1) " in _ps_status(oc, name))

    for name in ("a", "b"):
        wait_for(lambda name=name: waiting(name), f"{name} restarting")  # type: ignore[misc]
        if name == "a":
            oc("stop", "a")
        else:
            oc("rm", "-f", "b")
    _settle_exit_commands(oc)
    info = oc.inspect("a")
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 1  # type: ignore[index]
    count = info["RestartCount"]
    assert oc("ps", "-a", "--no-trunc").stdout.count("\n") == 2  # a only
    assert oc.inspect("a")["RestartCount"] == count
    oc("rm", "a")
    _settle(oc)


def _settle_exit_commands(oc: Ocish) -> None:
    wait_for(lambda: _exit_commands(oc) == [], "the end of the exit commands")


def test_event_log_rotates(oc: Ocish) -> None:
    """Past 1 MiB the log becomes events.log.1 (the older one dropped); events reads both."""
    log = oc.root / "events" / "events.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    old = {"status": "pull", "id": "old", "Type": "image", "Action": "pull",
           "Actor": {"ID": "old", "Attributes": {"name": "old"}}, "scope": "local",
           "time": 1000, "timeNano": 1000 * 10**9}
    line = json.dumps(old) + "\n"
    log.write_text(line * ((1 << 20) // len(line) + 1))
    oc("pull", "-q", "--tls-verify=false", oc.image)  # appended, then rotated
    oc("tag", oc.image, "rot/tagged:1")  # a new log
    assert (log.parent / "events.log.1").stat().st_size > 1 << 20
    assert log.read_text().count("\n") == 1
    res = oc("events", "--since", "0", "--until", f"{time.time():.3f}", "--format",
             "{{.Action}} {{.Actor.ID}}")
    lines = res.stdout.splitlines()
    assert lines[-2:] == [f"pull {oc.image}", "tag rot/tagged:1"]
    assert set(lines[:-2]) == {"pull old"}
    oc("rmi", "rot/tagged:1")


def test_healthcheck_output_is_capped(oc: Ocish) -> None:
    oc.run("-d", "--name", "loud", "--health-cmd", "head -c 1000000 /dev/zero | tr '\\0' x",
           "--health-interval", "1s", "IMAGE", "sleep", "1000")
    wait_for(lambda: "(healthy)" in _ps_status(oc, "loud"), "healthy")
    assert _state(oc, "loud")["Health"]["Log"][0]["Output"] == "x" * 4096  # type: ignore[index]
    oc("rm", "-f", "loud")
    _settle(oc)
