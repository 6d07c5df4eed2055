"""Which NVIDIA GPUs this machine has, and whether torch can use them: detected once.

Two questions with two answers: is a GPU *present* (``nvidia-smi`` lists one, or the
driver's ``/dev/nvidia<N>`` nodes exist), and can *torch* use it (a CUDA build of torch that
sees the device). A GPU node with the CPU build of torch has a GPU that torch cannot use,
and says so, instead of "no GPU". Every GPU check of the project (the ``gpu`` test marker,
the TensorRT engine builder, ``vitrine serve --target gpu-torch``, the GPU benchmarks) asks
:func:`detect`.

Torch-free at import: torch is imported only inside :func:`detect`, and only if installed.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["Gpu", "GpuReport", "detect"]

_QUERY = "name,compute_cap,driver_version,memory.total"


@dataclass(frozen=True)
class Gpu:
    """One GPU as ``nvidia-smi`` lists it (or torch, where there is no ``nvidia-smi``)."""

    name: str
    compute_capability: str  # "9.0"
    driver: str | None = None
    memory_mib: int | None = None


@dataclass(frozen=True)
class GpuReport:
    """What :func:`detect` found.

    ``gpus`` are the GPUs the driver lists; ``device_nodes`` whether ``/dev/nvidia<N>``
    exists (a GPU may be passed through without ``nvidia-smi``); ``torch`` is torch's
    version (None: not installed), ``torch_cuda`` the CUDA it was built for (None: a CPU
    build) and ``torch_devices`` how many CUDA devices it can use.
    """

    gpus: tuple[Gpu, ...] = ()
    device_nodes: bool = False
    torch: str | None = None
    torch_cuda: str | None = None
    torch_devices: int = 0

    @property
    def present(self) -> bool:
        """Whether this machine has an NVIDIA GPU, whatever torch can do with it."""
        return bool(self.gpus) or self.device_nodes or self.torch_devices > 0

    @property
    def torch_usable(self) -> bool:
        """Whether torch can run on a GPU here."""
        return self.torch_devices > 0

    @property
    def name(self) -> str:
        """The first GPU's name, or a placeholder."""
        return self.gpus[0].name if self.gpus else "an NVIDIA GPU"

    def torch_problem(self) -> str | None:
        """Why torch cannot use a GPU here (None: it can), naming the actual cause."""
        if self.torch_usable:
            return None
        if not self.present:
            return "no NVIDIA GPU here (nvidia-smi lists none, /dev/nvidia0 is absent)"
        if self.torch is None:
            return f"{self.name} is present but torch is not installed"
        if self.torch_cuda is None:
            return (
                f"{self.name} is present but torch {self.torch} has no CUDA (a CPU build); "
                "install a CUDA build of torch"
            )
        return (
            f"{self.name} is present but torch {self.torch} (CUDA {self.torch_cuda}) cannot use "
            "it: torch.cuda.is_available() is False (driver older than the CUDA build?)"
        )


def _nvidia_smi() -> tuple[Gpu, ...]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        result = subprocess.run(
            [smi, f"--query-gpu={_QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (subprocess.SubprocessError, OSError):
        return ()
    gpus = []
    for line in result.stdout.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 4:
            continue
        name, capability, driver, memory = parts
        gpus.append(Gpu(name, capability, driver, int(memory) if memory.isdigit() else None))
    return tuple(gpus)


def _torch() -> tuple[str | None, str | None, tuple[Gpu, ...]]:
    """torch's version, its CUDA version and the GPUs it can use."""
    if importlib.util.find_spec("torch") is None:
        return None, None, ()
    import torch

    cuda = torch.version.cuda
    if cuda is None or not torch.cuda.is_available():
        return torch.__version__, cuda, ()
    gpus = []
    for index in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(index)
        gpus.append(Gpu(torch.cuda.get_device_name(index), f"{major}.{minor}"))
    return torch.__version__, cuda, tuple(gpus)


@functools.cache
def detect() -> GpuReport:
    """The GPUs of this machine and what torch can do with them (asked once per process)."""
    listed = _nvidia_smi()
    version, cuda, usable = _torch()
    return GpuReport(
        gpus=listed or usable,
        device_nodes=bool(glob.glob("/dev/nvidia[0-9]*")),
        torch=version,
        torch_cuda=cuda,
        torch_devices=len(usable),
    )
