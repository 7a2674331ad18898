"""Build the paas-node image locally (no registry): ``python -m bigdata_paas.nodes.image``.

The image is tagged ``localhost/paas-node:<NODE_IMAGE_VERSION>`` and labelled with a digest
of what it is built from (node_image/* beside this module, and the busybox binary), so
``ensure_image`` is quick when the image is there and current, and rebuilds it when a file
changed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bigdata_paas.nodes.errors import NodeRuntimeError
from bigdata_paas.nodes.podman_cli import podman_env

NODE_IMAGE_VERSION = "1"
NODE_IMAGE = f"localhost/paas-node:{NODE_IMAGE_VERSION}"
IMAGE_DIR = Path(__file__).resolve().parent / "node_image"
BUSYBOX = Path("/bin/busybox")
DIGEST_LABEL = "paas.image-digest"


def _sources(busybox: Path) -> dict[str, Path]:
    files = {p.name: p for p in sorted(IMAGE_DIR.iterdir()) if p.is_file()}
    files["busybox"] = busybox
    return files


def image_digest(busybox: Path = BUSYBOX) -> str:
    """A digest of everything the image is built from."""
    digest = hashlib.sha256()
    for name, path in _sources(busybox).items():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _podman(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        env=podman_env(),
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def ensure_image(tag: str = NODE_IMAGE, busybox: Path = BUSYBOX) -> str:
    """Build ``tag`` unless it exists with the current digest; return the tag.

    Needs a static busybox (Debian's busybox-static installs /bin/busybox).
    """
    if not busybox.exists():
        raise NodeRuntimeError(f"{busybox} is missing: install busybox-static")
    digest = image_digest(busybox)
    found = _podman(
        ["image", "inspect", "--format", f'{{{{index .Labels "{DIGEST_LABEL}"}}}}', tag], 60
    )
    if found.returncode == 0 and found.stdout.strip() == digest:
        return tag
    with tempfile.TemporaryDirectory(prefix="paas-node-image-") as context:
        for name, path in _sources(busybox).items():
            shutil.copy2(path, Path(context) / name)
        done = _podman(
            [
                "build",
                "--pull=false",
                "--quiet",
                "--label",
                f"{DIGEST_LABEL}={digest}",
                "--tag",
                tag,
                "--file",
                str(Path(context) / "Containerfile"),
                context,
            ],
            600,
        )
    if done.returncode != 0:
        raise NodeRuntimeError(f"podman build of {tag} failed: {done.stderr.strip()[-2000:]}")
    return tag


def main() -> int:
    try:
        print(ensure_image())
    except (NodeRuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"cannot build the node image: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
