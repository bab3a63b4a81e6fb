"""Builds ocirt's one compiled part, the exec stub (ocirt/libexec/ocirt-exec.c), with the
package: ``pip install .``, editable installs and ``make install`` all run build_py. Metadata is
in setup.cfg."""

import os
import shlex
import subprocess
import sysconfig

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
STUB_SOURCE = os.path.join("ocirt", "libexec", "ocirt-exec.c")
STUB = os.path.join("ocirt", "libexec", "ocirt-exec")
# Freestanding and static: no libc, no loader, no start-up system calls (see the source).
STUB_FLAGS = ["-Os", "-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector",
              "-fno-asynchronous-unwind-tables", "-fno-pie", "-no-pie", "-Wall", "-Wextra",
              "-Werror", "-Wl,--build-id=none", "-Wl,-z,noexecstack", "-Wl,-n", "-s"]


def build_stub() -> None:
    source, target = os.path.join(HERE, STUB_SOURCE), os.path.join(HERE, STUB)
    if os.path.exists(target) and os.path.getmtime(target) >= os.path.getmtime(source):
        return
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")[:1]
    tmp = f"{target}.tmp"
    subprocess.run([*cc, *STUB_FLAGS, "-o", tmp, source], check=True)
    os.replace(tmp, target)


class BuildPy(build_py):
    def run(self) -> None:
        build_stub()
        super().run()


setup(cmdclass={"build_py": BuildPy})
