"""`make bench` several times, and every figure as the median over the runs with its spread.

    .venv/bin/python bench/runs.py [-k RUNS] [--out DIR] [--quick]

Runs compare.py, exec_stub.py and images.py (what `make bench` runs) RUNS times (default 3), one
after the other; run r passes `--rotate r` to compare.py, so each runtime goes first in the
one-pass parts (memory-limit bisection, N containers) once in three runs. Each script's own
output and JSON samples go to DIR (default: a new /tmp/ocirt-bench-runs-* dir, kept).

Then one table per script: for every row the script prints, the median over the runs of the
run's own figure (its median over its rounds) and, in brackets, the min-max of those per-run
figures: the spread *across runs*, not across rounds.  Ratios are taken per run (as each run
prints them), then their median (min-max) over the runs.  A run that fails stops everything
with its last stderr line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compare import MEM_ROWS, PARALLEL_ROWS, TIME_ROW_SPECS, Wrapper, section

HERE = Path(__file__).resolve().parent
Cell = list[float]  # one figure per run


def run(script: str, args: list[str], out: Path) -> None:
    """Run bench/SCRIPT with ARGS, its stdout to OUT; exit with its last stderr line on failure."""
    with open(out, "w") as f:
        done = subprocess.run([sys.executable, str(HERE / script), *args], stdout=f,
                              stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        sys.exit(f"runs.py: {script} exited {done.returncode}: {last}")


def med(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def cell(values: Cell, digits: int) -> str:
    """median (min-max) over the runs, '-' where a run had no figure."""
    if not values:
        return "-"
    sep = ".." if min(values) < 0 else "-"  # -2.5..32.8, not -2.5-32.8
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}{sep}{max(values):.{digits}f})")


def per_run(docs: list[dict], metric: str, label: str, scale: float = 1.0) -> Cell:
    """Each run's median of metric/label over its rounds (scaled)."""
    got = []
    for doc in docs:
        m = med(doc["samples"].get(metric, {}).get(label))
        if m is not None:
            got.append(m * scale)
    return got


def ratios(docs: list[dict], metric: str, a: str, b: str) -> Cell:
    """Each run's a/b of the medians; none at all unless every run has one (a negative
    MemAvailable drop has no meaningful ratio, and a range over fewer runs would mislead)."""
    got = []
    for doc in docs:
        x, y = (med(doc["samples"].get(metric, {}).get(k)) for k in (a, b))
        if x is None or y is None or x <= 0 or y <= 0:
            return []
        got.append(x / y)
    return got


def compare_table(docs: list[dict]) -> None:
    labels = list(docs[0]["versions"])
    a, others = labels[0], labels[1:]
    head = f"{'':<34}{'unit':>6}" + "".join(f"{x:>22}" for x in labels)
    head += "".join(f"{a + '/' + x:>22}" for x in others)

    def cells(metric: str, unit: str, scale: float, digits: int) -> str:
        line = "".join(f"{cell(per_run(docs, metric, x, scale), digits):>22}" for x in labels)
        if unit:
            line += "".join(f"{cell(ratios(docs, metric, a, x), 2):>22}" for x in others)
        return line

    n = len(docs)
    rounds = docs[0]["args"]["n"]
    of = f"median (min-max) over {n} runs of each run's median of {rounds} rounds"
    section(f"time, {of}", head, TIME_ROW_SPECS, cells)
    section(f"memory, {of}", head, MEM_ROWS, cells)
    if all("echo limit" in d["samples"] for d in docs):
        section(f"smallest memory limit for `echo hi`, median (min-max) over {n} runs", head,
                [("memory+swap limit", "echo limit", "KiB", 1.0, 0)], cells)
    if all("all running" in d["samples"] for d in docs):
        par = docs[0]["args"]["parallel"]
        section(f"{par} containers (`sleep 30`) at once, median (min-max) over {n} runs "
                "(one pass per run)", head, PARALLEL_ROWS, cells)
    print()
    print(f"crun's wrapper, ms: median (min-max) over {n} runs of each run's median of "
          f"{rounds} rounds")
    for name, metric in Wrapper.ROWS:
        print(f"  {name:<40}{cell(per_run(docs, metric, 'crun'), 2):>22}")


def exec_stub_table(docs: list[dict]) -> None:
    print()
    print(f"exec stub, us: median (min-max) over {len(docs)} runs of each run's median of "
          f"{docs[0]['rounds']} rounds")
    for name, key in (("fork + execve(true) + wait", "direct"),
                      ("the same through the sealed stub", "stub"),
                      ("  of which: making the sealed copy", "copy")):
        print(f"  {name:<42}{cell([statistics.median(d['samples'][key]) for d in docs], 0):>22}")
    diffs = [statistics.median(d["samples"]["stub"]) - statistics.median(d["samples"]["direct"])
             for d in docs]
    print(f"  {'cost per container process (diff)':<42}{cell(diffs, 0):>22}")


def images_table(docs: list[dict]) -> None:
    n, rounds = len(docs), docs[0]["args"]["n"]
    print()
    print(f"images, median (min-max) over {n} runs of each run's median of {rounds} rounds")
    print(f"{'':<32}{'unit':>5}{'ocish':>24}{'other':>24}{'ocish/other':>22}")
    for text, unit, cells in image_rows(docs):
        widths = (24, 24, 22)[:len(cells)]  # the `ocish images` rows have one cell
        print(f"{text:<32}{unit:>5}"
              + "".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))


def image_rows(docs: list[dict]) -> list[tuple[str, str, list[str]]]:
    """images.py's rows over the runs: (name, unit, [ocish, other, ratio] cells)."""
    rows = []
    for prefix, other, unit, text, digits in (
            ("pull", "skopeo", "MB/s", "pull vs skopeo copy", 1),
            ("unpack", "tar", "s", "unpack vs tar -xzf", 3)):
        for image in ("random", "files"):
            figure = f"{prefix} {image}"
            rows.append((f"{text}, {image}", unit,
                         [cell(per_run(docs, figure, "ocish"), digits),
                          cell(per_run(docs, figure, other), digits),
                          cell(ratios(docs, figure, "ocish", other), 2)]))
    for label, text in (("images", f"ocish images, {docs[0]['args']['images']} images"),
                        ("empty", "ocish images, empty store")):
        rows.append((text, "ms", [cell(per_run(docs, "images_ms", label), 1)]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", type=int, default=3, help="runs (default: %(default)s)")
    ap.add_argument("--out", help="dir for each run's output (default: a new temp dir)")
    ap.add_argument("--quick", action="store_true", help="each script with its --quick")
    ap.add_argument("--report", metavar="DIR",
                    help="run nothing: print the tables of the runs whose outputs are in DIR")
    ap.add_argument("--markdown", action="store_true",
                    help="with --report: the summary tables of README.md instead")
    args = ap.parse_args()
    if args.report:
        out = Path(args.report)
        args.k = len(list(out.glob("run*-compare.json")))
        if args.markdown:
            markdown(load_runs(out, args.k))
        else:
            report(out, args.k, "(from the files)", "?", [])
        return
    out = Path(args.out or tempfile.mkdtemp(prefix="ocirt-bench-runs-"))
    out.mkdir(parents=True, exist_ok=True)
    quick = ["--quick"] if args.quick else []
    commit = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "?"
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    loads = []
    for r in range(args.k):
        for script, extra in (("compare.py", ["--rotate", str(r)]), ("exec_stub.py", []),
                              ("images.py", [])):
            name = f"run{r + 1}-{script[:-3]}"
            print(f"runs.py: run {r + 1}/{args.k}: {script}", file=sys.stderr, flush=True)
            loads.append(os.getloadavg()[0])
            flags = [] if script == "exec_stub.py" else quick
            run(script, [*extra, *flags, "--json", str(out / f"{name}.json")],
                out / f"{name}.txt")
    report(out, args.k, started, commit, loads)


def load_runs(out: Path, k: int) -> dict[str, list[dict]]:
    """The JSON files of runs 1..k in *out*, per script."""
    return {kind: [json.loads((out / f"run{r + 1}-{kind}.json").read_text()) for r in range(k)]
            for kind in ("compare", "exec_stub", "images")}


def markdown(docs: dict[str, list[dict]]) -> None:
    """README.md's summary: every row, median (min-max) over the runs, as Markdown tables."""
    cmp, n = docs["compare"], len(docs["compare"])
    labels = list(cmp[0]["versions"])
    print(f"| figure, median (min-max) of {n} runs | " + " | ".join(labels)
          + " | " + " | ".join(f"{labels[0]}/{x}" for x in labels[1:]) + " |")
    print("| --- " * (2 * len(labels)) + "|")
    rows = [*TIME_ROW_SPECS, *MEM_ROWS, ("smallest memory limit for `echo hi`", "echo limit",
                                         "KiB", 1.0, 0), *PARALLEL_ROWS]
    for name, metric, unit, scale, digits in rows:
        vals = [cell(per_run(cmp, metric, x, scale), digits) for x in labels]
        rats = [cell(ratios(cmp, metric, labels[0], x), 2) if unit else "" for x in labels[1:]]
        print(f"| {name.strip()} ({unit or 'count'}) | " + " | ".join([*vals, *rats]) + " |")
    for name, metric in Wrapper.ROWS:
        print(f"| crun's wrapper: {name} (ms) | | | {cell(per_run(cmp, metric, 'crun'), 2)} "
              "| | |")
    stub = docs["exec_stub"]
    direct = [statistics.median(d["samples"]["direct"]) for d in stub]
    through = [statistics.median(d["samples"]["stub"]) for d in stub]
    copy = [statistics.median(d["samples"]["copy"]) for d in stub]
    extra = [b - a for a, b in zip(direct, through, strict=True)]
    for text, vals in (("fork + execve(true) + wait, direct", direct),
                       ("the same through the sealed stub", through),
                       ("making the sealed copy alone", copy),
                       ("cost per container process (diff)", extra)):
        print(f"| exec stub: {text} (us) | {cell(vals, 0)} | | | | |")
    print()
    imgs = docs["images"]
    print(f"| figure, median (min-max) of {n} runs | ocish | other | ocish/other |")
    print("| --- | --- | --- | --- |")
    for text, unit, cells in image_rows(imgs):
        print(f"| {text} ({unit}) | " + " | ".join(cells + [""] * (3 - len(cells))) + " |")


def report(out: Path, k: int, started: str, commit: str, loads: list[float]) -> None:
    """The three tables from the JSON files of runs 1..k in *out*."""
    docs = load_runs(out, k)
    c0 = docs["compare"][0]
    load = f"{min(loads):.1f}-{max(loads):.1f}" if loads else "?"
    print(f"runs: {k} | started: {started} | ended: {time.strftime('%H:%M:%S %Z')} | "
          f"commit: {commit} | nproc: {c0['machine']['nproc']} | kernel: "
          f"{c0['machine']['kernel']} | load (1 min) at each script's start: {load} | "
          f"outputs: {out}")
    print(" | ".join(f"{k}: {v}" for k, v in c0["versions"].items())
          + " (crun through the unshare wrapper)")
    compare_table(docs["compare"])
    exec_stub_table(docs["exec_stub"])
    images_table(docs["images"])


if __name__ == "__main__":
    main()
