"""make install: ocirt and ocish under a PREFIX, whole without the checkout they came from,
started with an empty environment as engines start them, the standard library first on their
import path; make uninstall removes what install made. And the dev launcher's source finder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from conftest import REPO
from support import busybox_bundle

# Planted modules write here when imported: none of them ever should be.
SHADOW = "open({marker!r}, 'a').write(__name__ + ' from ' + __file__ + '\\n')\n"


def make(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MAKE", "MFLAGS", "DESTDIR", "PREFIX"))}
    return subprocess.run(["make", "--no-print-directory", "-C", str(cwd), *args],
                          capture_output=True, text=True, timeout=600, env=env)


def run_empty_env(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """As engines run the runtime: any environment, here none at all."""
    return subprocess.run(cmd, cwd=cwd, env={}, capture_output=True, text=True, timeout=120)


def copy_of_checkout(dest: Path) -> None:
    """The files a clone of this checkout would have (and new ones not yet added)."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], check=True, capture_output=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = REPO / rel
        if src.is_file() or src.is_symlink():  # a deleted but still tracked file is neither
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel, follow_symlinks=False)


def stdlib_imports(python: Path, launcher: Path, *args: str) -> set[str]:
    """Top-level standard modules a command imports from the standard library's directories
    (not built in, not frozen): the ones a file earlier on the path could stand in for."""
    res = subprocess.run([str(python), "-IS", "-X", "importtime", str(launcher), *args],
                         capture_output=True, text=True, env={}, timeout=60)
    assert res.returncode == 0, res.stderr
    names = {m.group(1).split(".")[0]
             for m in re.finditer(r"^import time:.*\|\s+(\S+)$", res.stderr, re.M)}
    stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
    found = set()
    for name in names:
        for base in stdlib:
            if (Path(base, name + ".py").exists() or Path(base, name, "__init__.py").exists()
                    or any(Path(base, "lib-dynload").glob(name + ".*.so"))):
                found.add(name)
    return found


def plant(where: Path, names: set[str], marker: Path, *packages: str) -> None:
    """Modules ``names`` and packages ``packages`` in ``where`` that write ``marker``."""
    where.mkdir(parents=True, exist_ok=True)
    for name in names:
        (where / f"{name}.py").write_text(SHADOW.format(marker=str(marker)))
    for package in packages:
        (where / package).mkdir(exist_ok=True)
        (where / package / "__init__.py").write_text(SHADOW.format(marker=str(marker)))


def test_make_install_runs_without_the_checkout_and_make_uninstall_undoes_it(
        tmp_path: Path, root: Path) -> None:
    src, prefix, cwd = tmp_path / "checkout", tmp_path / "prefix", tmp_path / "cwd"
    copy_of_checkout(src)
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "other").write_text("not ocirt's\n")
    res = make(src, "install", f"PREFIX={prefix}", "DESTDIR=")
    assert res.returncode == 0, res.stdout + res.stderr
    ocirt, ocish = prefix / "bin" / "ocirt", prefix / "bin" / "ocish"
    stamp = prefix / "lib" / "ocirt" / "INSTALLED"
    before = [p.stat().st_mtime_ns for p in (ocirt, ocish, stamp)]
    res = make(src, "install", f"PREFIX={prefix}", "DESTDIR=")  # idempotent: nothing to do
    assert res.returncode == 0 and "is up to date" in res.stdout, res.stdout + res.stderr
    assert [p.stat().st_mtime_ns for p in (ocirt, ocish, stamp)] == before
    shutil.rmtree(src)

    python = prefix / "lib" / "ocirt" / "bin" / "python3"
    purelib = next((prefix / "lib" / "ocirt" / "lib").glob("python3.*/site-packages"))
    assert (purelib / "ocirt" / "libexec" / "ocirt-exec").is_file()  # the exec stub, built
    bundle = busybox_bundle(tmp_path / "bundle", "ocirt-test-install",
                            args=["echo", "hello from the installed ocirt"])
    run = ["--root", str(root), "run", "-b", str(bundle)]
    names = stdlib_imports(python, ocirt, *run, "probe") | stdlib_imports(python, ocish, "--help")
    assert {"ctypes", "argparse"} <= names, names  # what the commands surely import
    # The same modules (and packages ocirt and shim) where the checkout was and in the working
    # directory, the modules in the install's site-packages: the launchers import none of them.
    marker = tmp_path / "imported"
    for where in (src, cwd):
        plant(where, names, marker, "ocirt", "shim")
    plant(purelib, names, marker)
    subprocess.run([str(python), "-S", "-c", f"import sys; sys.path.insert(0, {str(purelib)!r});"
                    "import ctypes"], env={}, check=True)
    assert marker.read_text().startswith("ctypes from "), "the planted modules do not work"
    marker.unlink()

    # pip's own console scripts (lib/ocirt/bin: a pip install into a venv) work too
    runs = [run_empty_env([str(ocirt), *run, "installed"], cwd),
            run_empty_env([str(python.parent / "ocirt"), *run, "pip-script"], cwd)]
    helps = [run_empty_env([str(ocish), "--help"], cwd),
             run_empty_env([str(python.parent / "ocish"), "--help"], cwd)]
    version = run_empty_env([str(ocish), "version"], cwd)
    assert not marker.exists(), marker.read_text()
    for res in runs:
        assert (res.returncode, res.stdout, res.stderr) == (0, "hello from the installed ocirt\n",
                                                            ""), res.args
    for res in helps:
        assert res.returncode == 0 and res.stdout.startswith("usage: ocish"), res.stderr
    assert version.returncode == 0 and "ocirt version" in version.stdout, version.stderr

    res = make(REPO, "uninstall", f"PREFIX={prefix}", "DESTDIR=")
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*")) == ["bin", "bin/other"]


def test_make_install_destdir_stages_an_install_for_its_final_prefix(tmp_path: Path,
                                                                     root: Path) -> None:
    stage, final = tmp_path / "stage", tmp_path / "final"
    res = make(REPO, "install", f"DESTDIR={stage}", f"PREFIX={final}")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not final.exists()
    shutil.move(f"{stage}{final}", final)  # what installing the package does
    bundle = busybox_bundle(tmp_path / "bundle", "ocirt-test-install",
                            args=["echo", "hello from the staged ocirt"])
    res = run_empty_env([str(final / "bin" / "ocirt"), "--root", str(root), "run", "-b",
                         str(bundle), "staged"])
    assert (res.returncode, res.stdout, res.stderr) == (0, "hello from the staged ocirt\n", "")
    res = make(REPO, "uninstall", f"PREFIX={final}", "DESTDIR=")
    assert res.returncode == 0, res.stdout + res.stderr
    assert list(final.iterdir()) == []  # the prefix itself was the packager's


def test_dev_launcher_takes_only_ocirt_and_shim_from_the_checkout(tmp_path: Path) -> None:
    checkout, bindir, marker = tmp_path / "checkout", tmp_path / "bin", tmp_path / "imported"
    (checkout / "ocirt").mkdir(parents=True)
    (checkout / "ocirt" / "__init__.py").write_text("")
    (checkout / "ocirt" / "__main__.py").write_text(
        "import socket\n"
        "import sys\n"
        "def main():\n"
        "    print(socket.__file__)\n"
        "    print(sys.path)\n"
        "    return 3\n")
    (checkout / "socket.py").write_text(SHADOW.format(marker=str(marker)))
    subprocess.run([sys.executable, str(REPO / "tools" / "launchers.py"), str(bindir),
                    "--source", str(checkout)], check=True)
    res = run_empty_env([str(bindir / "ocirt")], checkout)
    assert res.returncode == 3, res.stderr
    socket_file, path = res.stdout.splitlines()
    assert socket_file.startswith(sysconfig.get_paths()["stdlib"])
    assert str(checkout) not in path
    assert not marker.exists()


def test_a_failed_first_install_leaves_nothing_behind(tmp_path: Path) -> None:
    src, prefix = tmp_path / "checkout", tmp_path / "prefix"
    copy_of_checkout(src)
    with open(src / "setup.py", "a") as f:
        f.write("\nraise SystemExit('broken on purpose')\n")
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "other").write_text("not ocirt's\n")
    res = make(src, "install", f"PREFIX={prefix}", "DESTDIR=")
    assert res.returncode != 0
    assert "ocirt install: pip install failed" in res.stderr, res.stderr
    assert sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*")) == ["bin", "bin/other"]
