"""Time each container lifecycle operation of runtime A (default ocirt) against B (default runc).

    .venv/bin/python bench/lifecycle.py [--runtime A --vs B] [-n RUNS] [--warmup N] [--json FILE]

Each round runs every operation once for A and once for B, A first in even rounds and B first in
odd ones (A B, B A, A B, ...), so drift hits both and neither always goes first.
Warm-up rounds are run and thrown away.  Per operation it prints min / median / max wall time in
ms for each runtime, the ratio of the medians (A/B), and the peak RSS of the runtime process
(the largest wait4 ru_maxrss over the runs).  See bench/README.md for what each operation is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable

from benchlib import (
    DEFAULT_A,
    DEFAULT_B,
    SPAWNER,
    BenchError,
    Result,
    Runtime,
    labels,
    machine,
    resolve,
    teardown,
    version,
)

OPS = ["create", "start", "state", "kill KILL", "delete", "delete --force", "run true",
       "exec true", "list (10)", "--version", "features"]
Record = Callable[[str, Result], None]


def one_round(rt: Runtime, record: Record) -> None:
    """Run every operation once on `rt`; untimed setup/teardown calls are not recorded."""
    cid, res = rt.create("sleep", "100")
    record("create", res)
    record("start", rt.call("start", cid))
    record("state", rt.call("state", cid))
    record("kill KILL", rt.call("kill", cid, "KILL"))
    rt.wait_stopped(cid)
    record("delete", rt.call("delete", cid))

    cid, _ = rt.create("sleep", "100")
    rt.call("start", cid)
    record("exec true", rt.call("exec", cid, "true"))
    record("delete --force", rt.call("delete", "--force", cid))

    cid = rt.new_id()
    record("run true", rt.call("run", "--bundle", rt.bundle(cid, "true"), cid))
    record("list (10)", rt.call("list", root=rt.list_root))
    record("--version", rt.call("--version"))
    record("features", rt.call("features"))


def bench(a: Runtime, b: Runtime, runs: int, warmup: int) -> dict[str, dict[str, list[Result]]]:
    for rt in (a, b):  # the containers `list` sees: 10 created ones in a separate state dir
        for _ in range(10):
            rt.create("sleep", "100", root=rt.list_root)
    samples: dict[str, dict[str, list[Result]]] = {op: {a.label: [], b.label: []} for op in OPS}
    def recorder(label: str, keep: bool) -> Record:
        def record(op: str, res: Result) -> None:
            if keep:
                samples[op][label].append(res)
        return record

    for i in range(warmup + runs):
        for rt in (a, b) if i % 2 == 0 else (b, a):
            one_round(rt, recorder(rt.label, i >= warmup))
        if sys.stderr.isatty():
            print(f"\rround {i + 1}/{warmup + runs}", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return samples


def report(samples: dict[str, dict[str, list[Result]]], la: str, lb: str) -> None:
    head = f"{'operation':<15}{la + ' ms min/med/max':>25}{lb + ' ms min/med/max':>25}{'A/B':>7}"
    print(head + f"{la + ' maxRSS MiB':>20}{lb + ' maxRSS MiB':>20}{'A/B':>7}")
    for op, by_rt in samples.items():
        ms = {k: sorted(r.ms for r in v) for k, v in by_rt.items()}
        med = {k: statistics.median(v) for k, v in ms.items()}
        rss = {k: max(r.maxrss_kb for r in v) / 1024 for k, v in by_rt.items()}
        cells = "".join(f"{v[0]:8.1f}{med[k]:8.1f}{v[-1]:8.1f}" for k, v in ms.items())
        print(f"{op:<15} {cells} {med[la] / med[lb]:6.2f}x"
              f"{rss[la]:20.1f}{rss[lb]:20.1f}{rss[la] / rss[lb]:6.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", default=DEFAULT_A, help="runtime A (default: %(default)s)")
    ap.add_argument("--vs", default=DEFAULT_B, help="runtime B (default: %(default)s)")
    ap.add_argument("-n", type=int, default=10, help="timed rounds (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=2, help="discarded rounds (default: %(default)s)")
    ap.add_argument("--json", metavar="FILE", help="also write the raw numbers here")
    args = ap.parse_args()
    paths = resolve(args.runtime), resolve(args.vs)
    la, lb = labels(*paths)
    built: list[Runtime] = []
    try:
        built = [Runtime(la, paths[0])]
        built.append(Runtime(lb, paths[1]))
        a, b = built
        versions = {rt.label: version(rt) for rt in built}
        facts = machine() | {"runs": args.n, "warmup": args.warmup,
                             "rss_floor_kb": SPAWNER.floor_kb}
        samples = bench(a, b, args.n, args.warmup)
    except BenchError as exc:
        sys.exit(f"lifecycle.py: {exc}")
    finally:
        teardown(built, "lifecycle.py")
    print(" | ".join(f"{k}: {v}" for k, v in facts.items()))
    for label, ver in versions.items():
        print(f"{label}: {ver}")
    report(samples, la, lb)
    if args.json:
        raw = {op: {k: [{"ms": r.ms, "maxrss_kb": r.maxrss_kb} for r in v] for k, v in d.items()}
               for op, d in samples.items()}
        with open(args.json, "w") as f:
            json.dump({"machine": facts, "versions": versions, "A": la, "B": lb, "ops": raw}, f, indent=1)


if __name__ == "__main__":
    main()
