"""Finding python-backend stub processes in /proc: a real child process posing as a stub."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vitrine.export.triton_config import Target, core_config, decode_config, pipeline_config, render
from vitrine.registry import SPECS
from vitrine.serving.stubs import (
    STUB_EXECUTABLE,
    Stub,
    configured_stubs,
    end,
    resident_bytes,
    stubs,
    unhealthy_models,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@pytest.fixture()
def fake_stub(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``/bin/sh`` running ``<repository>/superres_x2/1/model.py`` under the stub's name and
    argument layout (model file, shm region, sizes, parent pid, library path, handle, instance)."""
    script = tmp_path / "repository" / "superres_x2" / "1" / "model.py"
    script.parent.mkdir(parents=True)
    script.write_text("sleep 60\n")
    argv = [
        f"/backends/python/{STUB_EXECUTABLE}", str(script), "triton_python_backend_shm_region_1",
        "1048576", "1048576", str(os.getpid()), "/backends/python", "336", "superres_x2_0_1",
        "DEFAULT",
    ]  # fmt: skip
    process = subprocess.Popen(argv, executable="/bin/sh")
    deadline = time.monotonic() + 10
    while not stubs(os.getpid()) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield process
    process.kill()
    process.wait()


def test_a_stub_is_found_with_its_model_and_instance(
    fake_stub: subprocess.Popen[bytes],
) -> None:
    (found,) = stubs(os.getpid())
    assert (found.pid, found.model, found.instance) == (
        fake_stub.pid,
        "superres_x2",
        "superres_x2_0_1",
    )
    assert found.rss > 0 and not found.stopped
    assert resident_bytes(os.getpid()) > found.rss  # this process and its stub


def test_a_stopped_stub_is_unhealthy_and_ended_without_a_continue(
    fake_stub: subprocess.Popen[bytes],
) -> None:
    os.kill(fake_stub.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while not stubs(os.getpid())[0].stopped:
        assert time.monotonic() < deadline, "the stub never showed as stopped"
        time.sleep(0.01)
    assert unhealthy_models(stubs(os.getpid()), {"superres_x2": 1}) == ("superres_x2",)
    end([fake_stub.pid])
    assert fake_stub.wait(timeout=10) == -signal.SIGKILL
    assert stubs(os.getpid()) == []  # a reaped or zombie stub is no live stub


def test_other_children_are_no_stubs() -> None:
    with subprocess.Popen(["sleep", "60"]) as other:
        try:
            assert [stub.pid for stub in stubs(os.getpid())] == []
        finally:
            other.kill()


def _stub(model: str, state: str = "S") -> Stub:
    return Stub(pid=1, model=model, instance=f"{model}_0_0", state=state, rss=1)


def test_a_step_short_of_stubs_or_with_a_stopped_one_is_unhealthy() -> None:
    configured = {"decode": 2, "core": 2, "encode": 2}
    running = [
        _stub("decode"),
        _stub("decode"),
        _stub("core"),
        _stub("encode", "T"),
        _stub("encode"),
    ]
    assert unhealthy_models(running, configured) == ("core", "encode")
    healthy = [
        _stub("decode"),
        _stub("decode"),
        _stub("core", "R"),
        _stub("core"),
        _stub("encode"),
        _stub("encode"),
    ]
    assert unhealthy_models(healthy, configured) == ()


def test_configured_stubs_count_the_python_steps_only(tmp_path: Path) -> None:
    spec = SPECS["superres_x2"]
    for config in (
        decode_config(spec, Target.EMBEDDED),
        core_config(spec, Target.EMBEDDED),
        core_config(spec, Target.CPU),  # onnxruntime backend: no stubs
        pipeline_config(spec),
    ):
        folder = tmp_path / f"{config.name}_{config.backend or config.platform}"
        folder.mkdir()
        (folder / "config.pbtxt").write_text(render(config))
    counts = configured_stubs(tmp_path)
    assert counts == {"superres_x2_decode_python": 2, "superres_x2_python": 2}
