"""``make install`` and ``make uninstall``: ocirt and ocish as commands of the system, where
engines call them (``$PREFIX/bin/ocirt``), independent of the checkout they came from.

    /usr/bin/python3 tools/install.py install   --prefix PREFIX [--destdir DESTDIR]
    /usr/bin/python3 tools/install.py uninstall --prefix PREFIX [--destdir DESTDIR]

What install makes (and uninstall removes, nothing else):

    $PREFIX/lib/ocirt/           a virtualenv of the interpreter running this script, holding a
                                 regular (non-editable) ``pip install`` of the project and its
                                 dependencies, and the compiled exec stub as package data
    $PREFIX/lib/ocirt/INSTALLED  what install made, and the fingerprint of what it was made from
    $PREFIX/bin/ocirt, ocish     the launchers (tools/launchers.py): isolated, without site, the
                                 standard library first, then the virtualenv's site-packages
    $PREFIX/bin, $PREFIX/lib     and their parents, when they did not exist

pip builds from a fresh copy of the sources in a temporary directory, never in the checkout:
setuptools' in-tree build keeps ``build/lib`` from run to run, so a module deleted from the
sources would still be installed. A re-run whose sources, installer and interpreter are those of
the last install only checks that: it leaves the install as it is (a fraction of a second).

DESTDIR stages the tree for a package: files go under it, the paths written into them (the
launchers) are the final ones. The virtualenv's own scripts (``lib/ocirt/bin/pip``) keep the
staging path; the commands do not use them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
# What a wheel is built from: setup.cfg's packages (found under these) and the build files.
PACKAGES = ("ocirt", "shim")
BUILD_FILES = ("setup.py", "setup.cfg", "pyproject.toml", "README.md")
# Only the package's long description: an edit is not worth a reinstall.
UNFINGERPRINTED = {"README.md"}
# Built by setup.py from ocirt-exec.c; the copy builds its own.
DERIVED = {os.path.join("ocirt", "libexec", "ocirt-exec")}
LAUNCHERS = os.path.join(HERE, "launchers.py")
COMMANDS = ("ocirt", "ocish")
MANIFEST = "INSTALLED"


class Failed(Exception):
    """An install or uninstall step failed: the message is the one line to print."""


def source_files(src: str) -> list[str]:
    """The sources a wheel is built from, relative to ``src``, sorted."""
    files = [f for f in BUILD_FILES if os.path.isfile(os.path.join(src, f))]
    for package in PACKAGES:
        for top, dirs, names in os.walk(os.path.join(src, package)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in names:
                rel = os.path.relpath(os.path.join(top, name), src)
                if not name.endswith(".pyc") and rel not in DERIVED:
                    files.append(rel)
    return sorted(files)


def fingerprint(src: str, prefix: str) -> str:
    """Changes when anything an install is made from does: the sources, this installer and the
    launchers' writer, the interpreter, the final prefix."""
    h = hashlib.sha256()
    h.update(f"{sys.version}\0{prefix}\0".encode())
    for path in [__file__, LAUNCHERS]:
        with open(path, "rb") as f:
            h.update(f.read())
    for rel in source_files(src):
        if rel in UNFINGERPRINTED:
            continue
        h.update(rel.encode() + b"\0")
        with open(os.path.join(src, rel), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


class Layout:
    """The paths of one install: ``final`` ones (written into launchers) and ``staged`` ones
    (where the files go: the same without DESTDIR)."""

    def __init__(self, prefix: str, destdir: str) -> None:
        if not os.path.isabs(prefix):
            raise Failed(f"PREFIX must be an absolute path: {prefix}")
        if any(c.isspace() for c in prefix):  # the kernel splits a #! line at white space
            raise Failed(f"PREFIX must not contain white space: {prefix!r}")
        self.prefix = os.path.normpath(prefix)
        self.destdir = os.path.abspath(destdir) if destdir else ""
        self.stage = os.path.normpath(self.destdir + self.prefix)
        self.lib = os.path.join(self.stage, "lib", "ocirt")
        self.bindir = os.path.join(self.stage, "bin")
        self.manifest = os.path.join(self.lib, MANIFEST)
        self.shebang = f"#!{os.path.join(self.prefix, 'lib', 'ocirt', 'bin', 'python3')} -IS\n"

    def read_manifest(self) -> dict[str, Any] | None:
        try:
            with open(self.manifest) as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise Failed(f"{self.manifest}: unreadable ({e})") from None
        return data if isinstance(data, dict) else None

    def write_manifest(self, made: list[str], fp: str) -> None:
        tmp = f"{self.manifest}.tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644)
        with os.fdopen(fd, "w") as f:
            json.dump({"fingerprint": fp, "made": made,
                       "commands": [os.path.join("bin", c) for c in COMMANDS]}, f, indent=1)
            f.write("\n")
        os.replace(tmp, self.manifest)

    def is_our_launcher(self, path: str) -> bool:
        """A launcher this install wrote (not a link, not someone else's ocirt)."""
        if os.path.islink(path) or not os.path.isfile(path):
            return False
        with open(path) as f:
            head = f.readline() + f.readline()
        return head.startswith(self.shebang) and "Written by tools/launchers.py" in head


def run(cmd: list[str], what: str) -> None:
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise Failed(f"{what} failed (exit status {res.returncode})")


def venv_ok(lib: str) -> bool:
    """A virtualenv of this very interpreter (a Python upgrade makes a new one)."""
    try:
        with open(os.path.join(lib, "pyvenv.cfg")) as f:
            cfg = dict(line.split("=", 1) for line in f if "=" in line)
    except OSError:
        return False
    cfg = {k.strip(): v.strip() for k, v in cfg.items()}
    return (cfg.get("version") == platform.python_version()
            and os.path.realpath(cfg.get("executable", "")) == os.path.realpath(sys.executable)
            and os.path.exists(os.path.join(lib, "bin", "python3")))


def missing_dirs(layout: Layout) -> list[str]:
    """The directories install will create (final paths): bin, lib and any missing parent; with
    DESTDIR only those below the prefix (the staging tree is the packager's)."""
    top = layout.prefix if layout.destdir else "/"
    made: set[str] = set()
    for d in (os.path.join(layout.prefix, "lib"), os.path.join(layout.prefix, "bin")):
        while not os.path.isdir(layout.destdir + d) and d != top:
            made.add(d)
            d = os.path.dirname(d)
    return sorted(made)


def copy_sources(src: str, dest: str) -> None:
    for rel in source_files(src):
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(src, rel), target)


def install(layout: Layout) -> None:
    manifest = layout.read_manifest()
    if manifest is None and os.path.lexists(layout.lib):
        raise Failed(f"{layout.lib} exists and is not an ocirt install: not touching it")
    fp = fingerprint(SOURCE, layout.prefix)
    commands = [os.path.join(layout.bindir, c) for c in COMMANDS]
    if manifest and manifest.get("fingerprint") == fp and all(map(layout.is_our_launcher,
                                                                  commands)):
        print(f"ocirt install: {layout.prefix} is up to date")
        return
    for path in commands:
        if os.path.lexists(path) and not layout.is_our_launcher(path):
            raise Failed(f"{path} exists and was not installed here: not replacing it")
    made = list(manifest.get("made", [])) if manifest else missing_dirs(layout)
    try:
        if not venv_ok(layout.lib):
            # --clear: a venv of an older interpreter is replaced whole (manifest included).
            run([sys.executable, "-m", "venv", "--clear", layout.lib], "python3 -m venv")
        # Written before anything else goes in: what to remove if this or a later run fails.
        layout.write_manifest(made, "")
        with tempfile.TemporaryDirectory(prefix="ocirt-install-") as tmp:
            copy_sources(SOURCE, tmp)
            # -I: the caller's PYTHONPATH and user site play no part (PIP_* settings do)
            run([os.path.join(layout.lib, "bin", "python3"), "-I", "-m", "pip", "install", "-q",
                 "--disable-pip-version-check", "--no-warn-script-location", tmp],
                "pip install")
        run([os.path.join(layout.lib, "bin", "python3"), "-I", LAUNCHERS,
             os.path.join(layout.prefix, "bin"), "--destdir", layout.destdir],
            "writing the launchers")
        layout.write_manifest(made, fp)
    except BaseException:
        if manifest is None:  # a first install that failed leaves nothing behind
            remove(layout, made)
        raise
    print(f"ocirt install: {layout.prefix}/bin/ocirt and ocish, from {layout.prefix}/lib/ocirt")


def remove(layout: Layout, made: list[str]) -> None:
    for path in (os.path.join(layout.bindir, c) for c in COMMANDS):
        if layout.is_our_launcher(path):
            os.unlink(path)
    if os.path.lexists(layout.lib):
        shutil.rmtree(layout.lib)
    for d in sorted(made, key=len, reverse=True):  # deepest first
        try:
            os.rmdir(layout.destdir + d)
        except OSError:
            pass  # not empty: something else lives there now


def uninstall(layout: Layout) -> None:
    manifest = layout.read_manifest()
    if manifest is None:
        if os.path.lexists(layout.lib):
            raise Failed(f"{layout.lib} is not an ocirt install: not removing it")
        print(f"ocirt uninstall: nothing installed in {layout.prefix}")
        return
    remove(layout, list(manifest.get("made", [])))
    print(f"ocirt uninstall: removed from {layout.prefix}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["install", "uninstall"])
    parser.add_argument("--prefix", default="/usr/local")
    parser.add_argument("--destdir", default="")
    args = parser.parse_args()
    try:
        layout = Layout(args.prefix, args.destdir)
        if args.action == "install":
            install(layout)
        else:
            uninstall(layout)
    except Failed as e:
        print(f"ocirt {args.action}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"ocirt {args.action}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
