"""Rewrite the venv's ``ocirt`` and ``ocish`` commands to start Python isolated and without site.

pip's console scripts run ``python`` with ``site``: that reads every .pth file and honours
PYTHONPATH, PYTHONSTARTUP and the user's site directory. For a runtime started as root by
containerd or conmon the environment is the caller's, so ``-I`` (isolated: no PYTHON* variables,
no user site) keeps it from injecting code; ``-S`` skips site and its .pth files, 2-3 ms of every
command. The import path site would have built is written into the launcher instead.

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
sys.path[len(sys.path):] = {paths!r}
from {module} import main
sys.exit(main())
"""


def main() -> None:
    bindir = os.path.dirname(sys.executable)
    python = os.path.join(bindir, "python3")
    paths = [sysconfig.get_paths()["purelib"], PROJECT]
    for name, module in COMMANDS.items():
        path = os.path.join(bindir, name)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(TEMPLATE.format(python=python, paths=paths, module=module))
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
