"""Where the server comes from: the installed wheel, or an unpacked copy of it (a GPU node's
bundle), and which Python its stubs run in."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vitrine.serving.embedded import EmbeddedTriton, TritonNotInstalled, find_triton

VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def _unpacked(root: Path, stub: bool = True) -> Path:
    server = root / "pytriton" / "tritonserver"
    files = [
        server / "bin" / "tritonserver",
        server / "backends" / "python" / "libtriton_python.so",
        server / "backends" / "python" / "triton_python_backend_utils.py",
    ]
    if stub:
        files.append(server / "python_backend_stubs" / VERSION / "triton_python_backend_stub")
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    (root / "nvidia_pytriton.libs").mkdir()
    return root


def test_an_unpacked_server_named_by_the_environment_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _unpacked(tmp_path)
    monkeypatch.setenv("VITRINE_TRITON_ROOT", str(root))
    install = find_triton()
    assert install.binary == root / "pytriton" / "tritonserver" / "bin" / "tritonserver"
    assert install.libs == root / "nvidia_pytriton.libs"
    assert install.stub.parent.name == VERSION


def test_an_unpacked_server_without_this_pythons_stub_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VITRINE_TRITON_ROOT", str(_unpacked(tmp_path, stub=False)))
    with pytest.raises(TritonNotInstalled, match=f"no python backend stub for Python {VERSION}"):
        find_triton()


def test_the_stubs_run_in_the_named_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITRINE_TRITON_ROOT", str(_unpacked(tmp_path)))
    install = find_triton()
    server = EmbeddedTriton(tmp_path)
    assert server.environment(install)["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    monkeypatch.setenv("VITRINE_STUB_PYTHON", "/opt/stub-env/bin/python3")
    environment = server.environment(install)
    assert environment["PATH"].split(":")[0] == "/opt/stub-env/bin"
    assert environment["LD_LIBRARY_PATH"].split(":")[0] == str(install.libs)
