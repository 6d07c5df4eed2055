"""Parity of exported ONNX models: onnxruntime vs PyTorch (FP32) and FP16 vs FP32.

Inputs are crops of the validation photos at the spec's min/opt/max profile shapes
(generators: seeded latents and labels at the profile's batch sizes).
Besides the uint8 outputs, the float tensor feeding the final cast to uint8 is read
back from onnxruntime, so NaN/Inf cannot hide behind the cast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import torch
from PIL import Image
from torch import nn

from vitrine.options import background_value
from vitrine.sampling import sample_latents
from vitrine.spec import ModelSpec, Option, OptionKind
from vitrine.training.photos import load_split
from vitrine.training.uint8_wrapper import Uint8ImageModel

__all__ = ["OnnxRunner", "compare_uint8", "parity_report", "sample_images", "sample_inputs"]


def sample_images(shape: tuple[int, ...], seed: int = 0) -> npt.NDArray[np.uint8]:
    """``shape`` = (N, H, W, 3) uint8: random crops of the validation photos, resized to H x W."""
    batch, height, width, _ = shape
    rng = np.random.default_rng(seed)
    photos = list(load_split("validation").values())
    images = []
    for index in range(batch):
        photo = photos[index % len(photos)]
        side = int(rng.integers(min(photo.shape[:2]) // 2, min(photo.shape[:2]) + 1))
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        images.append(np.asarray(crop.resize((width, height), Image.Resampling.BICUBIC)))
    return np.stack(images)


def _sample_option(
    option: Option, shape: tuple[int, ...], rng: np.random.Generator
) -> npt.NDArray[Any]:
    """Valid values of ``option`` for a batch of ``shape`` = (N, *core dims)."""
    if option.kind is OptionKind.STRENGTH:
        return rng.uniform(0.0, 1.0, shape).astype(np.float32)
    if option.kind is OptionKind.BACKGROUND:  # alternate a colour and the alpha-keeping one
        values = [background_value("#ff8000"), background_value("transparent")]
        return np.stack([values[index % 2] for index in range(shape[0])])
    if option.kind is OptionKind.IMAGE:  # a second set of photo crops
        return sample_images(shape, int(rng.integers(1 << 16)))
    if option.kind is OptionKind.LABEL:
        return rng.integers(len(option.choices), size=shape).astype(np.int32)
    if option.kind is OptionKind.SEED:
        return rng.standard_normal(shape).astype(np.float32)
    masks = np.zeros(shape, dtype=np.uint8)  # one random box per image
    height, width = shape[1:3]
    for mask in masks:
        top, left = int(rng.integers(0, height // 2)), int(rng.integers(0, width // 2))
        mask[top : top + max(1, height // 3), left : left + max(1, width // 3)] = 255
    return masks


def _generator_inputs(spec: ModelSpec, batch: int, seed: int) -> dict[str, npt.NDArray[Any]]:
    """Latents as the sample step draws them, with labels cycling through every value; a
    style-mixing generator's fine styles from another seed, truncation 1, 0.7, 0.4, ..."""
    assert spec.conditioning is not None
    latent, category, colour, *styles = spec.inputs
    rows = np.arange(batch, dtype=np.int32)[:, None]
    dim = spec.conditioning.latent_dim
    feeds = {
        latent.name: sample_latents(seed, batch, dim),
        category.name: rows % len(spec.conditioning.categories),
        colour.name: (rows * 3 + 1) % len(spec.conditioning.colours),
    }
    if styles:
        mix_latent, truncation = styles
        feeds[mix_latent.name] = sample_latents(seed + 1, batch, dim)
        feeds[truncation.name] = (1.0 - 0.3 * (rows % 3)).astype(np.float32)
    return feeds


def sample_inputs(
    spec: ModelSpec, shape: tuple[int, ...], seed: int = 0
) -> dict[str, npt.NDArray[Any]]:
    """Feeds of every core input for a batch of ``shape``: photo crops plus options (editors),
    seeded latents and labels (generators, ``shape`` = (N, Z))."""
    if spec.is_generator:
        return _generator_inputs(spec, shape[0], seed)
    rng = np.random.default_rng([seed, 1])
    shapes = spec.input_shapes(shape)
    options = {o.name: _sample_option(o, shapes[o.core.name], rng) for o in spec.options}
    return {spec.input.name: sample_images(shape, seed), **options}


def compare_uint8(
    reference: npt.NDArray[np.uint8], candidate: npt.NDArray[np.uint8]
) -> dict[str, Any]:
    """Max abs error, share of differing values and PSNR (None when identical) of ``candidate``."""
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {candidate.shape}")
    difference = reference.astype(np.int16) - candidate.astype(np.int16)
    mse = float(np.mean(difference.astype(np.float64) ** 2))
    return {
        "max_abs_error": int(np.abs(difference).max()),
        "differing_fraction": float(np.mean(difference != 0)),
        "psnr_db": None if mse == 0 else float(10.0 * np.log10(255.0**2 / mse)),
    }


@dataclass
class OnnxRunner:
    """An onnxruntime session that also returns the float tensor before the final uint8 cast."""

    session: ort.InferenceSession
    output_name: str
    probe_name: str

    @classmethod
    def open(cls, path: Path, output_name: str) -> OnnxRunner:
        model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
        producer = {out: node for node in model.graph.node for out in node.output}
        cast = producer[output_name]
        while cast.op_type != "Cast":  # walk back through layout ops to the uint8 cast
            cast = producer[cast.input[0]]
        probe_name = cast.input[0]
        known = {info.name: info for info in model.graph.value_info}
        model.graph.output.append(known[probe_name])
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False  # give each run's memory back: two sessions stay open
        session = ort.InferenceSession(model.SerializeToString(), options)
        return cls(session=session, output_name=output_name, probe_name=probe_name)

    def run(self, feeds: dict[str, npt.NDArray[Any]]) -> tuple[npt.NDArray[np.uint8], bool]:
        """The uint8 output and whether the pre-cast float tensor is all finite."""
        output, probe = self.session.run([self.output_name, self.probe_name], feeds)
        return output, bool(np.isfinite(probe).all())


@torch.inference_mode()
def parity_report(
    spec: ModelSpec,
    model: nn.Module,
    onnx_path: Path,
    fp16_path: Path | None = None,
    shapes: tuple[tuple[str, tuple[int, ...]], ...] | None = None,
) -> dict[str, Any]:
    """Compare PyTorch, ONNX FP32 and (optionally) ONNX FP16 at each profile shape."""
    wrapper = Uint8ImageModel(model, spec.task).eval()
    fp32 = OnnxRunner.open(onnx_path, spec.output.name)
    fp16 = OnnxRunner.open(fp16_path, spec.output.name) if fp16_path else None
    policy = spec.precision
    entries = []
    for label, shape in shapes or spec.profile.items():
        feeds = sample_inputs(spec, shape)
        expected = wrapper(*(torch.from_numpy(feed) for feed in feeds.values())).numpy()
        actual, finite = fp32.run(feeds)
        entry: dict[str, Any] = {"profile": label, "shape": list(shape)}
        entry["onnx_fp32_vs_torch"] = compare_uint8(expected, actual) | {"finite": finite}
        error = entry["onnx_fp32_vs_torch"]["max_abs_error"]
        entry["passed"] = finite and error <= policy.max_abs_error_uint8
        if fp16 is not None:
            half, half_finite = fp16.run(feeds)
            entry["onnx_fp16_vs_fp32"] = compare_uint8(actual, half) | {"finite": half_finite}
            psnr = entry["onnx_fp16_vs_fp32"]["psnr_db"]
            entry["passed"] &= (
                half_finite
                and (psnr is None or psnr >= policy.fp16_min_psnr_db)
                and entry["onnx_fp16_vs_fp32"]["max_abs_error"] <= policy.fp16_max_abs_error_uint8
            )
        entries.append(entry)
    return {
        "model": spec.name,
        "opset": spec.onnx_opset,
        "gates": {
            "max_abs_error_uint8": policy.max_abs_error_uint8,
            "fp16_min_psnr_db": policy.fp16_min_psnr_db,
            "fp16_max_abs_error_uint8": policy.fp16_max_abs_error_uint8,
        },
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "shapes": entries,
        "passed": all(entry["passed"] for entry in entries),
    }
