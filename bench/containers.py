"""ocish's containers against podman and Docker: what `make bench` prints last.

    .venv/bin/python bench/containers.py [-n ROUNDS] [--warmup N] [--count N] [--quick]
                                         [--no-docker] [--ocish PATH] [--json FILE]

Set up once, in a temp dir: a busybox image (built as the ocish tests build theirs: umoci and
bundles/mkrootfs, one layer) in a docker-registry on a free 127.0.0.1 port; an ocish root; a
private podman (its own --root/--runroot/--tmpdir, overlay storage, cgroupfs, runc: Debian's
default crun refuses this host's hybrid cgroups) that pulls the image from the registry; a
private dockerd (the engine tests' recipe: Debian's dockerd 20.10 and its containerd in a
network namespace of its own, runc) that loads it from a docker-archive (it cannot reach the
registry on the host's loopback from its namespace).

- `run --rm IMAGE true`, wall time of the command, spawn to exit: ocish (ocirt, and runc),
  `podman run --rm --network none`, `docker run --rm --network none`; round i runs the engines
  in an order rotated by i. Target: ocish <= 0.5x podman.
- `ps -a` with COUNT containers running `sleep` (ocish's, then podman's, each engine alone):
  wall time. Target: ocish < 100 ms.
- Supervision memory of those COUNT containers: every process an engine keeps alive besides
  the containers' own (ocish and podman: one conmon each, no daemon; Docker: its
  containerd-shim each, dockerd and containerd not counted), Rss and Pss from
  /proc/PID/smaps_rollup, summed and divided by COUNT. Target: ocish <= 1 MiB.

No timed assertion anywhere: figures are printed, targets marked met or MISSED. Everything goes
at the end, also on an error or Ctrl-C: containers, the daemons and registry (by pid), mounts,
cgroups under this run's own parents, the temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import INSTALLED_BIN, machine, remove_cgroups

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "shim"))
sys.path.insert(0, str(REPO / "tests" / "engines"))
from docker_support import Dockerd  # noqa: E402
from shim_support import Registry, layer1, start_registry  # noqa: E402

OCISH, RUNC = INSTALLED_BIN / "ocish", "/usr/sbin/runc"
PARENT = f"ocish-bench-{os.getpid()}"
TARGETS = {"run_vs_podman": 0.5, "ps_ms": 100.0, "memory_mib": 1.0}
# podman's default rlimits are above this host's hard limits (engines-on-this-host.md)
PODMAN_RUN = ["run", "--network", "none", "--cgroup-parent", f"/{PARENT}-podman",
              "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def sh(*cmd: str | Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                         timeout=timeout)
    if res.returncode != 0:
        raise SystemExit(f"containers.py: {' '.join(map(str, cmd[:4]))}...: "
                         f"{(res.stderr.strip().splitlines() or ['failed'])[-1]}")
    return res.stdout


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one command in ms (it must succeed)."""
    t0 = time.perf_counter()
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env,
                         timeout=300)
    ms = (time.perf_counter() - t0) * 1000
    if res.returncode != 0:
        raise SystemExit(f"containers.py: {' '.join(argv[:6])}...: "
                         f"{res.stderr.decode(errors='replace').strip()[-300:]}")
    return ms


class Podman:
    """A private podman (nothing of it outside *base*)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        for d in ("root", "run", "tmp", "net"):
            (base / d).mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, TMPDIR=str(base / "tmp"))
        self.argv = ["podman", "--root", str(base / "root"), "--runroot", str(base / "run"),
                     "--tmpdir", str(base / "tmp"), "--network-config-dir", str(base / "net"),
                     "--storage-driver", "overlay", "--events-backend", "file",
                     "--cgroup-manager", "cgroupfs", "--runtime", RUNC]

    def __call__(self, *args: str) -> str:
        return sh(*self.argv, *args, env=self.env)

    def close(self) -> None:
        subprocess.run([*self.argv, "rm", "-a", "-f", "-t", "0"], capture_output=True,
                       env=self.env, timeout=600)
        subprocess.run([*self.argv, "rmi", "-a", "-f"], capture_output=True, env=self.env,
                       timeout=300)
        subprocess.run([*self.argv, "system", "reset", "-f"], capture_output=True,
                       env=self.env, timeout=300)


def build_image(work: Path, reg: Registry) -> tuple[str, Path]:
    """busybox (bundles/mkrootfs) as an OCI image: pushed to the registry and saved as a
    docker-archive; (its reference, the archive)."""
    lay = work / "layout"
    sh("umoci", "init", "--layout", lay)
    sh("umoci", "new", "--image", f"{lay}:bb")
    sh("umoci", "config", "--image", f"{lay}:bb", "--config.cmd", "/bin/sh",
       "--config.env", "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
    bundle = work / "bundle"
    sh("umoci", "unpack", "--image", f"{lay}:bb", bundle)
    layer1(bundle / "rootfs")
    sh("umoci", "repack", "--image", f"{lay}:bb", bundle)
    shutil.rmtree(bundle)
    ref = f"{reg.host}/bench/busybox:latest"
    sh("skopeo", "copy", "--dest-tls-verify=false", f"oci:{lay}:bb", f"docker://{ref}")
    archive = work / "busybox.tar"
    sh("skopeo", "copy", f"oci:{lay}:bb", f"docker-archive:{archive}:bench/busybox:latest")
    return ref, archive


def smaps(pid: int) -> tuple[int, int]:
    """(Rss, Pss) in KiB of a process; (0, 0) if it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def processes_naming(text: str) -> list[tuple[int, str]]:
    """(pid, argv[0]) of the processes whose command line contains *text*."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmd:
                out.append((int(proc.name), cmd.split(b"\0")[0].decode(errors="replace")))
    return out


def supervision(pids: list[int], count: int) -> dict[str, float]:
    rss = pss = 0
    for pid in pids:
        r, p = smaps(pid)
        rss, pss = rss + r, pss + p
    return {"processes": len(pids), "rss_mib": rss / 1024 / count, "pss_mib": pss / 1024 / count}


def cell(vals: list[float], digits: int = 0) -> str:
    return (f"{statistics.median(vals):.{digits}f} "
            f"({min(vals):.{digits}f}-{max(vals):.{digits}f})")


def progress(msg: str) -> None:
    if sys.stderr.isatty():
        print(f"\r{msg:<60}", end="", file=sys.stderr, flush=True)


def main() -> None:  # noqa: C901 - one linear script: set up, measure, report, tear down
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10, help="timed rounds of run (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=2, help="discarded rounds (default: %(default)s)")
    ap.add_argument("--count", type=int, default=100,
                    help="sleeping containers for ps and memory (default: %(default)s)")
    ap.add_argument("--ps-rounds", type=int, default=10, help="timed ps -a runs (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help="-n 5 --count 20")
    ap.add_argument("--no-docker", action="store_true", help="leave dockerd out")
    ap.add_argument("--ocish", default=str(OCISH),
                    help="the ocish launcher (default: %(default)s, from make test-install; "
                         "its runtime is the ocirt beside it)")
    ap.add_argument("--json", metavar="FILE", help="also write every sample here")
    args = ap.parse_args()
    if args.quick:
        args.n, args.count = 5, 20
    ocish_bin = os.path.abspath(args.ocish)
    if os.geteuid() != 0:
        sys.exit("containers.py: needs root")
    for tool in (ocish_bin, RUNC, "/usr/bin/conmon", "/usr/bin/umoci", "/usr/bin/skopeo",
                 "/usr/bin/docker-registry"):
        if not os.access(tool, os.X_OK):
            sys.exit(f"containers.py: not found or not executable: {tool} (make test-install, "
                     "make deps)")
    work = Path(tempfile.mkdtemp(prefix="ocish-bench-"))
    reg: Registry | None = None
    podman: Podman | None = None
    dockerd: Dockerd | None = None
    docker_why = "left out (--no-docker)" if args.no_docker else ""
    root = work / "ocish"
    facts = {**machine(), "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    runs: dict[str, list[float]] = {}
    ps_ms: dict[str, list[float]] = {}
    memory: dict[str, dict[str, float]] = {}
    try:
        progress("building the image")
        reg = start_registry(work / "registry")
        ref, archive = build_image(work, reg)
        ocish = [ocish_bin, "--root", str(root)]
        sh(*ocish, "pull", "-q", "--tls-verify=false", ref)
        podman = Podman(work / "podman")
        podman("pull", "-q", "--tls-verify=false", ref)
        if not args.no_docker:
            if shutil.which("dockerd") is None or shutil.which("docker") is None:
                docker_why = "unavailable: dockerd or the docker CLI is not installed"
            else:
                dockerd = Dockerd(work / "docker", RUNC, "runc-bench")
                try:
                    dockerd.start()
                    res = dockerd.docker("load", "-q", "-i", str(archive), timeout=300)
                    if res.returncode != 0:
                        raise RuntimeError(res.stderr)
                except RuntimeError as exc:
                    docker_why = f"unavailable: {str(exc).strip().splitlines()[-1][:200]}"
        cg = ["--cgroup-parent", f"/{PARENT}"]
        engines: dict[str, Callable[[], float]] = {
            "ocish (ocirt)": lambda: timed([*ocish, "run", "--rm", *cg, ref, "true"]),
            "ocish (runc)": lambda: timed([*ocish, "--runtime", RUNC, "run", "--rm", *cg, ref,
                                           "true"]),
            "podman (runc)": lambda: timed([*podman.argv, *PODMAN_RUN, "--rm", ref, "true"],
                                           podman.env),  # type: ignore[union-attr]
        }
        if dockerd is not None and not docker_why:
            d = dockerd
            engines["docker (runc)"] = lambda: timed(
                ["docker", "run", "--rm", "--network", "none", "--cgroup-parent",
                 f"/{PARENT}-docker", "bench/busybox:latest", "true"], d.env)
        names = list(engines)
        runs.update((name, []) for name in names)  # (the table's rows in this order)
        for r in range(args.warmup + args.n):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                ms = engines[name]()
                if r >= args.warmup:
                    runs[name].append(ms)
            progress(f"run --rm true: round {r + 1}/{args.warmup + args.n}")

        # COUNT sleeping containers, ocish's then podman's
        for i in range(args.count):
            sh(*ocish, "run", "-d", *cg, "--name", f"s{i}", ref, "sleep", "100000")
            progress(f"ocish: {i + 1}/{args.count} sleeping containers")
        ps_ms["ocish"] = [timed([*ocish, "ps", "-a"]) for _ in range(args.ps_rounds)]
        ours = [pid for pid, exe in processes_naming(str(root)) if not exe.endswith("sleep")]
        memory["ocish (conmon)"] = supervision(ours, args.count)
        sh(*ocish, "rm", "-f", *[f"s{i}" for i in range(args.count)], timeout=1200)
        for i in range(args.count):
            podman(*PODMAN_RUN, "-d", "--name", f"s{i}", ref, "sleep", "100000")
            progress(f"podman: {i + 1}/{args.count} sleeping containers")
        ps_ms["podman"] = [timed([*podman.argv, "ps", "-a"], podman.env)
                           for _ in range(args.ps_rounds)]
        theirs = [pid for pid, exe in processes_naming(str(podman.base))
                  if exe.endswith("conmon")]
        memory["podman (conmon)"] = supervision(theirs, args.count)
        podman.close()
        if dockerd is not None and not docker_why:
            for i in range(args.count):
                res = dockerd.docker("run", "-d", "--network", "none", "--cgroup-parent",
                                     f"/{PARENT}-docker", "--name", f"s{i}",
                                     "bench/busybox:latest", "sleep", "100000")
                if res.returncode != 0:
                    raise SystemExit(f"containers.py: docker run: {res.stderr.strip()}")
                progress(f"docker: {i + 1}/{args.count} sleeping containers")
            ps_ms["docker"] = [timed(["docker", "ps", "-a"], dockerd.env)
                               for _ in range(args.ps_rounds)]
            shims = [pid for pid, exe in processes_naming(str(dockerd.base))
                     if "containerd-shim" in exe]
            memory["docker (containerd-shim)"] = supervision(shims, args.count)
            dockerd.docker("rm", "-f", *[f"s{i}" for i in range(args.count)], timeout=1200)
        progress("")
        report(args, facts, runs, ps_ms, memory, docker_why)
        if args.json:
            Path(args.json).write_text(json.dumps({"facts": facts, "run_ms": runs,
                                                   "ps_ms": ps_ms, "memory": memory},
                                                  indent=1) + "\n")
    finally:
        progress("cleaning up")
        if root.exists():
            ids = subprocess.run([ocish_bin, "--root", str(root), "ps", "-a", "-q"],
                                 capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run([ocish_bin, "--root", str(root), "rm", "-f", *ids],
                               capture_output=True, timeout=1200)
        if podman is not None:
            podman.close()
        problems: list[str] = []
        if dockerd is not None:
            problems += dockerd.stop()
        if reg is not None:
            reg.stop()
        for m in sorted((ln.split()[4] for ln in open("/proc/self/mountinfo")
                         if ln.split()[4].startswith(str(work))), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        for parent in (PARENT, f"{PARENT}-podman", f"{PARENT}-docker"):
            problems += remove_cgroups(parent)
        progress("")
        for p in problems:
            print(f"warning: left behind: {p}", file=sys.stderr)


def report(args: argparse.Namespace, facts: dict[str, object], runs: dict[str, list[float]],
           ps_ms: dict[str, list[float]], memory: dict[str, dict[str, float]],
           docker_why: str) -> None:
    print(" | ".join(f"{k}: {v}" for k, v in facts.items() if k != "cgroup"))
    print(f"podman: {sh('podman', '--version').strip()} | conmon: "
          f"{sh('/usr/bin/conmon', '--version').splitlines()[0]} | runc: "
          f"{sh(RUNC, '--version').splitlines()[0]}")
    print()
    pod = statistics.median(runs["podman (runc)"])
    print(f"{'run --rm IMAGE true, ms (median (min-max) of ' + str(args.n) + ' rounds)':<62}"
          f"{'vs podman':>10}")
    for name, vals in runs.items():
        print(f"  {name:<22}{cell(vals):>38}{statistics.median(vals) / pod:>9.2f}x")
    if docker_why:
        print(f"  {'docker (runc)':<22}{docker_why}")
    print()
    print(f"ps -a with {args.count} sleeping containers, ms (median (min-max) of "
          f"{args.ps_rounds} runs)")
    for name, vals in ps_ms.items():
        print(f"  {name:<22}{cell(vals, 1):>38}")
    print()
    print(f"supervision memory per container, {args.count} sleeping containers, MiB")
    for name, m in memory.items():
        print(f"  {name:<26}{m['processes']:>5.0f} processes   Rss {m['rss_mib']:6.2f}"
              f"   Pss {m['pss_mib']:6.2f}")
    print()
    print("targets (ocish)")
    ratio = statistics.median(runs["ocish (ocirt)"]) / pod
    ps = statistics.median(ps_ms["ocish"])
    mem = memory["ocish (conmon)"]["pss_mib"]
    for text, value, ok in (
            (f"run --rm <= {TARGETS['run_vs_podman']}x podman's time", f"{ratio:.2f}x",
             ratio <= TARGETS["run_vs_podman"]),
            (f"ps -a < {TARGETS['ps_ms']:.0f} ms with {args.count} containers", f"{ps:.1f} ms",
             ps < TARGETS["ps_ms"]),
            (f"supervision Pss <= {TARGETS['memory_mib']} MiB per container",
             f"{mem:.2f} MiB", mem <= TARGETS["memory_mib"])):
        print(f"  {text:<50}{value:>10}  {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
