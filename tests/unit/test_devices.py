"""GPU detection: a GPU the driver lists and what torch can do with it are told apart."""

from __future__ import annotations

import pytest

from vitrine import devices
from vitrine.devices import Gpu, GpuReport

H200 = Gpu("NVIDIA H200", "9.0", "580.159.03", 143771)


@pytest.mark.parametrize(
    ("report", "problem"),
    [
        (GpuReport(), "no NVIDIA GPU here"),
        (GpuReport(gpus=(H200,)), "NVIDIA H200 is present but torch is not installed"),
        (
            GpuReport(gpus=(H200,), torch="2.13.0+cpu"),
            "NVIDIA H200 is present but torch 2.13.0+cpu has no CUDA (a CPU build)",
        ),
        (
            GpuReport(device_nodes=True, torch="2.13.0+cpu"),
            "an NVIDIA GPU is present but torch 2.13.0+cpu has no CUDA (a CPU build)",
        ),
        (
            GpuReport(gpus=(H200,), torch="2.11.0+cu130", torch_cuda="13.0"),
            "torch 2.11.0+cu130 (CUDA 13.0) cannot use it",
        ),
    ],
)
def test_the_reason_names_what_is_missing(report: GpuReport, problem: str) -> None:
    assert not report.torch_usable
    assert problem in (report.torch_problem() or "")
    assert report.present == (problem != "no NVIDIA GPU here")


def test_a_gpu_torch_can_use_has_no_problem() -> None:
    report = GpuReport((H200,), True, "2.11.0+cu130", "13.0", torch_devices=1)
    assert report.present and report.torch_usable and report.torch_problem() is None


def test_nvidia_smi_rows_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Done:
        stdout = "NVIDIA H200, 9.0, 580.159.03, 143771\nNVIDIA H200, 9.0, 580.159.03, [N/A]\n"

    monkeypatch.setattr(devices.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(devices.subprocess, "run", lambda *args, **kwargs: Done())
    assert devices._nvidia_smi() == (H200, Gpu("NVIDIA H200", "9.0", "580.159.03", None))


def test_this_machine_is_detected_once() -> None:
    report = devices.detect()
    assert devices.detect() is report
    assert report.torch_usable == (report.torch_problem() is None)
