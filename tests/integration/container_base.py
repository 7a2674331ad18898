"""A Python base image and a wheelhouse for building the platform's Containerfile without a
registry or an index: what a real build gets from ``python:3.11-slim`` and PyPI.

The base is this machine's Debian ``python3.11`` (its standard library, the shared libraries
it and its extension modules link, pip from ensurepip) and a static busybox for ``/bin/sh``,
imported with ``podman import`` as ``localhost/paas-test-python:3.11`` and kept between runs.
The wheels of requirements.lock come from pip's own cache or index, once per lock.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bigdata_paas.nodes.podman_cli import podman_env

BASE_IMAGE = "localhost/paas-test-python:3.11"
PYTHON = Path("/usr/bin/python3.11")
STDLIB = Path("/usr/lib/python3.11")
BUSYBOX = Path("/bin/busybox")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bigdata-paas-tests"
#: the base image's pip, and a setuptools the package builds with (pyproject: setuptools>=64)
TOOLS = ("pip==23.2.1", "setuptools==84.2.1")
#: what a slim image has and manylinux wheels may link (SQLAlchemy's, psycopg's, PyYAML's ...)
LIBDIR = "/lib/x86_64-linux-gnu"
GLIBC_AND_GCC = (
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libnss_files.so.2",
    "libnss_dns.so.2",
    "libgcc_s.so.1",
    "libstdc++.so.6",
)
#: what the platform never needs of the standard library
SKIP = shutil.ignore_patterns(
    "__pycache__", "test", "tests", "idlelib", "tkinter", "turtledemo", "EXTERNALLY-MANAGED"
)


def podman(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        env=podman_env(),
        timeout=timeout,
        stdin=kwargs.pop("stdin", subprocess.DEVNULL),
        **kwargs,
    )


def _linked_libraries(binaries: list[Path]) -> set[Path]:
    """Every shared library the binaries load, by the path the loader finds it at."""
    found: set[Path] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
            if path.startswith("/"):
                found.add(Path(path))
    return found


def _make_root(root: Path, wheels: Path) -> None:
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy2(PYTHON, root / "usr/bin/python3.11")
    for name in ("python3", "python"):
        (root / "usr/bin" / name).symlink_to("python3.11")
    shutil.copytree(STDLIB, root / STDLIB.relative_to("/"), ignore=SKIP, symlinks=True)
    runtime = {Path(LIBDIR, name) for name in GLIBC_AND_GCC if Path(LIBDIR, name).exists()}
    for library in runtime | _linked_libraries([PYTHON, *STDLIB.glob("lib-dynload/*.so")]):
        target = root / library.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library.resolve(), target)
    (root / "bin").mkdir()
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    for applet in ("sh", "mkdir", "rm", "chmod", "ls", "cat", "sleep", "env"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    for directory, mode in (("tmp", 0o1777), ("root", 0o700), ("var/lib", 0o755)):
        (root / directory).mkdir(parents=True, exist_ok=True)
        (root / directory).chmod(mode)
    # pip, as python:3.11-slim has it: its wheel unpacked where Debian's python looks (Debian
    # disables ensurepip for the system python)
    (wheel,) = wheels.glob("pip-*.whl")
    with zipfile.ZipFile(wheel) as unpacked:
        unpacked.extractall(root / "usr/local/lib/python3.11/dist-packages")


def ensure_base_image(wheels: Path) -> str:
    """The base image, made now unless a run before made it; its pip from ``wheels``."""
    if podman("image", "exists", BASE_IMAGE).returncode == 0:
        return BASE_IMAGE
    for needed in (PYTHON, STDLIB, BUSYBOX):
        if not needed.exists():
            raise RuntimeError(f"{needed} is missing: cannot make the base image")
    with tempfile.TemporaryDirectory(prefix="paas-base-") as tmp:
        root = Path(tmp) / "root"
        _make_root(root, wheels)
        archive = Path(tmp) / "root.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(archive), "."], check=True)
        done = podman(
            "import",
            "--change",
            "ENV PATH=/usr/local/bin:/usr/bin:/bin",
            "--change",
            'CMD ["python3"]',
            str(archive),
            BASE_IMAGE,
        )
    assert done.returncode == 0, done.stderr
    return BASE_IMAGE


def ensure_wheelhouse(lock: Path) -> Path:
    """The wheels of ``lock`` (hash-checked) and of TOOLS, in a directory per lock."""
    key = hashlib.sha256(lock.read_bytes() + " ".join(TOOLS).encode()).hexdigest()[:16]
    wheels = CACHE / f"wheels-{key}"
    if (wheels / ".complete").exists():
        return wheels
    wheels.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
    for args in (["--require-hashes", "-r", str(lock)], ["--no-deps", *TOOLS]):
        done = subprocess.run(
            [*pip, "-d", str(wheels), *args], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
    (wheels / ".complete").touch()
    return wheels
