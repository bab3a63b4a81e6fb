"""Rewrite the venv's ``ocirt`` and ``ocish`` commands to start Python isolated and without site.

pip's console scripts run ``python`` with ``site``: that reads every .pth file and honours
PYTHONPATH, PYTHONSTARTUP and the user's site directory. For a runtime started as root by
containerd or conmon the environment is the caller's, so ``-I`` (isolated: no PYTHON* variables,
no user site) keeps it from injecting code; ``-S`` skips site and its .pth files, 2-3 ms of every
command. The import path site would have built is written into the launcher instead, with the
project first: nearly every import of a command is found there, and each directory searched in
vain before it costs a listing (about 1.5 ms a command).

Run by ``make install`` after pip, with the venv's interpreter: ``.venv/bin/python tools/launchers.py``.
"""

import os
import sys
import sysconfig

COMMANDS = {"ocirt": "ocirt.__main__", "ocish": "shim.__main__"}
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TEMPLATE = """#!{python} -IS
# Written by tools/launchers.py: isolated (-I), without site (-S); see there why.
import sys
sys.path[:0] = [{project!r}]
sys.path.append({purelib!r})
from {module} import main
sys.exit(main())
"""


def main() -> None:
    bindir = os.path.dirname(sys.executable)
    python = os.path.join(bindir, "python3")
    purelib = sysconfig.get_paths()["purelib"]
    for name, module in COMMANDS.items():
        path = os.path.join(bindir, name)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(TEMPLATE.format(python=python, project=PROJECT, purelib=purelib,
                                    module=module))
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
