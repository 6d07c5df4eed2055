"""`vitrine serve --target gpu-torch`: the gpu-torch repository on this machine's GPU.

The repository's TorchScript artifacts are traced and gated on the GPU that serves them, so
it is built here, once per weights, export code, torch release and GPU (a content-keyed
cache, as the embedded repository is), unless ``--repository`` names one built already.
"""

from __future__ import annotations

import logging
from pathlib import Path

from vitrine import paths
from vitrine.devices import GpuReport, detect
from vitrine.errors import ConfigError
from vitrine.serving.serve import cache_key

__all__ = ["CUDA_POOL_BYTES", "gpu_torch_repository", "require_gpu", "server_arguments"]

CUDA_POOL_BYTES = 1 << 30
"""Triton's CUDA memory pool per GPU (its default is 64 MiB): the core models hand their
outputs over in GPU memory, up to a max batch of 1024 x 1024 RGBA (32 MiB) per instance."""


def require_gpu() -> GpuReport:
    """This machine's GPUs, or :class:`ConfigError` saying why torch cannot use one."""
    report = detect()
    problem = report.torch_problem()
    if problem is not None:
        raise ConfigError(
            f"the gpu-torch target serves on a GPU: {problem}. Without one, serve the embedded "
            "target (vitrine serve), or a repository built with "
            "`vitrine build --target gpu-torch --device cpu` (vitrine serve --repository DIR)"
        )
    return report


def server_arguments(report: GpuReport) -> list[str]:
    """``tritonserver`` flags for the gpu-torch target: a CUDA memory pool on every GPU."""
    return [
        f"--cuda-memory-pool-byte-size={index}:{CUDA_POOL_BYTES}"
        for index in range(max(report.torch_devices, 1))
    ]


def gpu_torch_repository(report: GpuReport) -> Path:
    """The gpu-torch repository of every spec for this GPU, built once."""
    import torch

    from vitrine.export.build import build_target
    from vitrine.export.repository import MARKER
    from vitrine.export.triton_config import Target

    key = cache_key(torch.__version__, report.name)
    out = paths.cache_dir() / "repositories" / f"gpu-torch-{key}"
    if not (out / MARKER).is_file():
        log = logging.getLogger(__name__)
        log.info("building the gpu-torch repository for %s in %s", report.name, out)
        build_target(Target.GPU_TORCH, out, echo=log.info)
    return out
