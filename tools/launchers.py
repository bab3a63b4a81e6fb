"""Write the ``ocirt`` and ``ocish`` commands of an environment: Python isolated, without site,
the standard library first on the import path.

    <environment's python> tools/launchers.py BINDIR [--destdir DIR] [--source DIR]

Run with the interpreter of the virtualenv whose packages the commands use: ``make install``
runs it with ``$PREFIX/lib/ocirt/bin/python`` (BINDIR ``$PREFIX/bin``), the dev set-up with
``.venv/bin/python`` (BINDIR ``.venv/bin``, ``--source`` the checkout of the editable install).

pip's console scripts run ``python`` with ``site``: that reads every .pth file and honours
PYTHONPATH, PYTHONSTARTUP and the user's site directory. For a runtime started as root by
containerd or conmon the environment is the caller's, so ``-I`` (isolated: no PYTHON* variables,
no user site, neither the script's directory nor the working directory on the path) keeps it
from injecting code; ``-S`` skips site and its .pth files, 2-3 ms of every command. The import
path site would have built is written into the launcher instead, in the same order: the standard
library first, then the environment's site-packages, so no file beside the project (a stray
``socket.py``) or in site-packages can stand in for a standard module.

That order costs nothing measurable in an installed environment: ocirt is in site-packages, whose
directory listing the import of ``ocirt`` needs anyway, and the standard library's directories
are listed for its own modules; strace counts the same stat and getdents calls for a ``run``
with site-packages first or last, and ``state`` takes the same time (~12 ms) either way. A
checkout (``--source``) is not put on the path at all: a finder maps only the top-level names
``ocirt`` and ``shim`` to it, so nothing else in the checkout is importable and no listing of
the large dev site-packages is made in vain for them (what the project-first path used to buy).

``--destdir`` is make's DESTDIR: the files go under it, the paths written into them do not.
"""

import argparse
import os
import sys
import sysconfig

COMMANDS = {"ocirt": "ocirt.__main__", "ocish": "shim.__main__"}
MARKER = "# Written by tools/launchers.py"

HEADER = f"""#!{{python}} -IS
{MARKER}: isolated (-I), without site (-S), the standard library first.
import sys
"""

# _frozen_importlib_external is always loaded: importing importlib.machinery costs ~0.5 ms.
SOURCE_FINDER = """from _frozen_importlib_external import PathFinder


class SourceFinder:
    # The editable checkout provides the packages ocirt and shim, and nothing else.
    @staticmethod
    def find_spec(name, path=None, target=None):
        if path is None and name in ("ocirt", "shim"):
            return PathFinder.find_spec(name, [{source!r}])
        return None


sys.meta_path.insert(0, SourceFinder)
"""

BODY = """sys.path.append({purelib!r})
from {module} import main
sys.exit(main())
"""


def strip_destdir(path: str, destdir: str) -> str:
    """The path ``path`` will have once the staged tree under ``destdir`` is in place."""
    if not destdir:
        return path
    root = os.path.abspath(destdir)
    if os.path.commonpath([root, path]) != root:
        sys.exit(f"launchers.py: {path} is not under DESTDIR {root}")
    return "/" + os.path.relpath(path, root)


def render(module: str, python: str, purelib: str, source: str | None) -> str:
    text = HEADER.format(python=python)
    if source:
        text += SOURCE_FINDER.format(source=source)
    return text + BODY.format(purelib=purelib, module=module)


def write(path: str, text: str) -> None:
    """Replace ``path`` atomically; the temporary file is created new, never through a link."""
    tmp = f"{path}.tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)  # whatever the umask
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bindir", help="where the commands go (put under --destdir)")
    parser.add_argument("--destdir", default="", help="staging root (make's DESTDIR)")
    parser.add_argument("--source", help="the checkout of an editable install")
    args = parser.parse_args()
    env_bin = os.path.dirname(os.path.abspath(sys.executable))
    python = strip_destdir(os.path.join(env_bin, "python3"), args.destdir)
    purelib = strip_destdir(sysconfig.get_paths()["purelib"], args.destdir)
    source = os.path.abspath(args.source) if args.source else None
    bindir = os.path.abspath(args.destdir + os.path.abspath(args.bindir))
    os.makedirs(bindir, exist_ok=True)
    for name, module in COMMANDS.items():
        write(os.path.join(bindir, name), render(module, python, purelib, source))


if __name__ == "__main__":
    main()
