"""What the CVE-2019-5736 protection costs each container process (see ocirt/process/sealed_exec.py).

    .venv/bin/python bench/exec_stub.py [-n ROUNDS]

Every process ocirt starts in a container (the init at create, each exec) gets a sealed memfd
copy of the ocirt-exec stub, made by the runtime before it forks, and its last execve goes
through the stub, which then execs the container's program: one memfd, one write and one seal
more, and one execve of a ~2 KB static program more. This times exactly that difference, the
two ways alternating round by round, taking turns to go first: fork + execve(/bin/true) + wait,
against sealed copy + fork + execve(stub -> /bin/true) + wait. Medians with min-max, in microseconds. runc 1.1 pays the same
kind of price differently (it re-execs itself from a read-only bind mount or a memfd copy of its
~10 MB binary before each init); `make bench` (compare.py) shows the whole commands side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ocirt.process import sealed_exec  # noqa: E402

TRUE = "/bin/true"


def direct() -> None:
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(TRUE, [TRUE])
        finally:
            os._exit(127)
    os.waitpid(pid, 0)


def through_stub() -> None:
    fd = sealed_exec.sealed_stub()
    pid = os.fork()
    if pid == 0:
        try:
            sealed_exec.execve(fd, TRUE, [TRUE], {})
        finally:
            os._exit(127)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise SystemExit(f"the stub did not run {TRUE}: wait status {status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--rounds", type=int, default=500)
    parser.add_argument("--json", metavar="FILE", help="also write every sample here (us)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"direct": [], "stub": []}
    for fn in (direct, through_stub):  # warm-up
        fn()
    pair = (("direct", direct), ("stub", through_stub))
    for i in range(args.rounds):
        for name, fn in pair if i % 2 == 0 else pair[::-1]:  # neither always first
            t = time.perf_counter_ns()
            fn()
            times[name].append((time.perf_counter_ns() - t) / 1000)
    copy = []
    for _ in range(args.rounds):
        t = time.perf_counter_ns()
        os.close(sealed_exec.sealed_stub())
        copy.append((time.perf_counter_ns() - t) / 1000)
    print(f"{'us, median (min-max) of ' + str(args.rounds):<44}{'median':>10}{'min':>10}{'max':>10}")
    rows = [("fork + execve(true) + wait", times["direct"]),
            ("the same through the sealed stub", times["stub"]),
            ("  of which: making the sealed copy", copy)]
    for label, values in rows:
        print(f"{label:<44}{statistics.median(values):>10.0f}{min(values):>10.0f}"
              f"{max(values):>10.0f}")
    extra = statistics.median(times["stub"]) - statistics.median(times["direct"])
    print(f"{'cost per container process (median diff)':<44}{extra:>10.0f}"
          f"   ({statistics.median(times['stub']) / statistics.median(times['direct']):.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": args.rounds, "samples": {**times, "copy": copy}}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
