"""What a created-but-not-started container costs, runtime A (default ocirt) against B (runc).

    .venv/bin/python bench/memory.py [--runtime A --vs B] [-k K]

For each runtime it creates K containers (`sleep 100`, never started), then reads for each one
the waiting init process's Rss / Pss / private memory from /proc/<pid>/smaps_rollup and the
memory charged to the container's own memory cgroup (v1: memory.usage_in_bytes and
memory.max_usage_in_bytes; v2: memory.current and memory.peak if the kernel has it).  It prints
the median (and min-max) over the K containers side by side with the ratio of medians (A/B),
then deletes everything.  See bench/README.md for what the numbers mean.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from benchlib import (
    CGROUP_PARENT,
    DEFAULT_A,
    DEFAULT_B,
    BenchError,
    Runtime,
    labels,
    machine,
    resolve,
    teardown,
    version,
)

V1 = Path("/sys/fs/cgroup/memory")
FILES = (["memory.usage_in_bytes", "memory.max_usage_in_bytes"] if V1.is_dir()
         else ["memory.current", "memory.peak"])


def measure(rt: Runtime, cid: str) -> dict[str, float]:
    """Memory of one created container, in KiB, keyed by metric name."""
    pid = rt.state(cid)["pid"]
    rollup = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").open()
                  if line.split(":")[0] in ("Rss", "Pss", "Private_Clean", "Private_Dirty"))
    kb = {k: float(v.split()[0]) for k, v in rollup.items()}
    got = {"init Rss": kb["Rss"], "init Pss": kb["Pss"],
           "init private": kb["Private_Clean"] + kb["Private_Dirty"]}
    cgroup = (V1 if V1.is_dir() else Path("/sys/fs/cgroup")) / CGROUP_PARENT / cid
    for name in FILES:
        if (cgroup / name).exists():
            got[f"cgroup {name}"] = int((cgroup / name).read_text()) / 1024
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", default=DEFAULT_A, help="runtime A (default: %(default)s)")
    ap.add_argument("--vs", default=DEFAULT_B, help="runtime B (default: %(default)s)")
    ap.add_argument("-k", type=int, default=5, help="containers per runtime (default: %(default)s)")
    args = ap.parse_args()
    paths = resolve(args.runtime), resolve(args.vs)
    la, lb = labels(*paths)
    built: list[Runtime] = []
    results: dict[str, list[dict[str, float]]] = {}
    try:
        built = [Runtime(la, paths[0])]
        built.append(Runtime(lb, paths[1]))
        versions = {rt.label: version(rt) for rt in built}
        for rt in built:
            ids = [rt.create("sleep", "100")[0] for _ in range(args.k)]
            results[rt.label] = [measure(rt, cid) for cid in ids]
            rt.cleanup()
    except BenchError as exc:
        sys.exit(f"memory.py: {exc}")
    finally:
        teardown(built, "memory.py")

    print(" | ".join(f"{k}: {v}" for k, v in (machine() | {"containers": args.k}).items()))
    for label, ver in versions.items():
        print(f"{label}: {ver}")
    print(f"{'MiB, median (min-max) of K':<32}{la:>22}{lb:>22}{'A/B':>8}")
    for metric in results[la][0]:
        cells, med = "", []
        for label in (la, lb):
            vals = [r[metric] / 1024 for r in results[label]]
            med.append(statistics.median(vals))
            cells += f"{f'{med[-1]:.2f} ({min(vals):.2f}-{max(vals):.2f})':>22}"
        print(f"{metric:<32}{cells}{med[0] / med[1]:7.2f}x")


if __name__ == "__main__":
    main()
