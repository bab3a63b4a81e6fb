"""The launchers: the standard library first on their import path; the dev launcher's source
finder."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from conftest import REPO

# Planted modules write here when imported: none of them ever should be.
SHADOW = "open({marker!r}, 'a').write(__name__ + ' from ' + __file__ + '\\n')\n"


def run_empty_env(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """As engines run the runtime: any environment, here none at all."""
    return subprocess.run(cmd, cwd=cwd, env={}, capture_output=True, text=True, timeout=120)


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
