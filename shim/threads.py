"""Running a few jobs at once (the layers of a pull or a push) on plain threads.

Not concurrent.futures: its import brings logging, traceback and tokenize, ~6 ms of every pull
and push, for what is a handful of threads taking jobs from a list.
"""

from __future__ import annotations

import threading

TYPE_CHECKING = False  # not typing's: typing costs ms
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


def run_all(jobs: Sequence[Callable[[], None]], workers: int) -> None:
    """Run *jobs* on up to *workers* threads and wait for them.

    Once a job fails no new job starts; when the running ones are done, the error of the first
    failed job (in the order of *jobs*) is raised. The threads are daemons: an interrupt of the
    waiting caller (Ctrl-C) does not wait for the jobs; what they leave half-written (ingest
    files, snapshot temp dirs) is never taken for complete and is cleaned up later.
    """
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            job()
        return
    todo = list(enumerate(jobs))
    todo.reverse()  # pop() takes them in order
    failed: list[tuple[int, BaseException]] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if failed or not todo:
                    return
                index, job = todo.pop()
            try:
                job()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                with lock:
                    failed.append((index, exc))

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(min(workers, len(jobs)))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    finally:
        with lock:
            todo.clear()  # interrupted: no new job starts
    if failed:
        raise min(failed, key=lambda f: f[0])[1]
