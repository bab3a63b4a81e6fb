"""``run``: create and start; in the foreground, also wait for the init, forward signals to it,
relay its terminal, exit with its status, and delete the container unless ``keep``."""

from __future__ import annotations

import os

from ..linux import syscalls as sc
from ..spec import load
from . import create as create_mod
from .delete import delete
from .foreground import Forwarder
from .start import start

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..state import Store

def run(store: Store, container_id: str, opts: create_mod.Options, detach: bool, keep: bool,
        subreaper: bool = True, warn: Callable[[str], None] | None = None) -> int:
    if detach:
        create_mod.create(store, container_id, opts)
        try:
            start(store, container_id, warn=warn, trace=opts.trace)
        except BaseException:
            delete(store, container_id, force=True)
            raise
        return 0
    if subreaper:
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    own_console = -1
    spec, doc = load(opts.bundle)
    if not opts.console_socket and spec.process is not None and spec.process.terminal:
        from .. import console

        own_console, opts.console_fd = console.socket_pair()
    try:
        state = create_mod.create(store, container_id, opts, (spec, doc))
    finally:
        if opts.console_fd >= 0:
            os.close(opts.console_fd)
            opts.console_fd = -1
    master = -1
    if own_console >= 0:
        from .. import console

        master = console.receive_master(own_console)
    try:
        forwarder = Forwarder()
        start(store, container_id, warn=warn, trace=opts.trace)
        status = forwarder.wait(state.pid, master)
    except BaseException:
        if not keep:
            delete(store, container_id, force=True)
        raise
    finally:
        if master >= 0:
            os.close(master)
    if not keep:
        delete(store, container_id, force=True, warn=warn)
    return status

