# Generated from _async.py by `vitrine regenerate`: do not edit.
"""The blocking client."""

from __future__ import annotations

import time
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import numpy.typing as npt
import tritonclient.grpc

from ._base import ClientBase
from ._errors import ModelMismatch, NotFound, Unavailable
from ._generate import (
    Category,
    Color,
    GeneratorModel,
    MixingModel,
    plan_generate,
    plan_generate_array,
)
from ._images import ImageInput
from ._latent_edit import plan_interpolate, plan_variations
from ._options import Background, MaskInput, Strength
from ._requests import (
    Direction,
    InferPlan,
    OutputFormat,
    Scale,
    Style,
    plan_edit,
    plan_edit_array,
)
from ._results import ArrayResult, GeneratedImages, Health, ImageResult
from ._retry import Deadline, TimedCall, call_with_retry
from ._verify import contracts, metadata_problems, not_ready, unreachable

__all__ = ["VitrineClient"]

R = TypeVar("R")


class VitrineClient(ClientBase):
    """Blocking client of a Vitrine Triton server (gRPC address, e.g. ``"localhost:8001"``).

    Every call has a deadline: ``timeout`` seconds, by default the constructor's plus, for a
    large photo, the editor's expected work (its spec's seconds per megapixel); and it
    retries UNAVAILABLE ``retries`` times with jittered exponential backoff.
    """

    _triton_module = tritonclient.grpc

    def super_resolve(
        self,
        image: ImageInput,
        *,
        scale: Scale,
        output_format: OutputFormat = "png",
        quality: int = 95,
        timeout: float | None = None,
    ) -> ImageResult:
        """Upscale ``image`` through the ``scale`` pipeline; returns the encoded result."""
        plan = plan_edit(
            "super_resolve",
            image,
            options={"scale": scale},
            output_format=output_format,
            quality=quality,
        )
        return self._infer(plan, timeout)

    def super_resolve_array(
        self, pixels: npt.NDArray[Any], *, scale: Scale, timeout: float | None = None
    ) -> ArrayResult:
        """Upscale uint8 (H, W, 3) or (N, H, W, 3) pixels with the core model, no codec."""
        plan = plan_edit_array("super_resolve", pixels, options={"scale": scale})
        return self._infer(plan, timeout)

    def enhance(
        self,
        image: ImageInput,
        *,
        output_format: OutputFormat = "png",
        quality: int = 95,
        timeout: float | None = None,
    ) -> ImageResult:
        """Correct exposure, contrast and colour cast of ``image`` through the pipeline."""
        plan = plan_edit("enhance", image, options={}, output_format=output_format, quality=quality)
        return self._infer(plan, timeout)

    def enhance_array(
        self, pixels: npt.NDArray[Any], *, timeout: float | None = None
    ) -> ArrayResult:
        """Correct uint8 (H, W, 3) or (N, H, W, 3) pixels with the core model, no codec."""
        return self._infer(plan_edit_array("enhance", pixels, options={}), timeout)

    def denoise(
        self,
        image: ImageInput,
        *,
        strength: Strength = "auto",
        output_format: OutputFormat = "png",
        quality: int = 95,
        timeout: float | None = None,
    ) -> ImageResult:
        """Remove sensor noise and JPEG artefacts from ``image`` through the pipeline.

        ``strength`` in [0, 1] blends the input (0) and the full correction (1 = ``"auto"``).
        """
        plan = plan_edit(
            "denoise",
            image,
            options={"strength": strength},
            output_format=output_format,
            quality=quality,
        )
        return self._infer(plan, timeout)

    def denoise_array(
        self,
        pixels: npt.NDArray[Any],
        *,
        strength: Strength = "auto",
        timeout: float | None = None,
    ) -> ArrayResult:
        """Denoise uint8 (H, W, 3) or (N, H, W, 3) pixels with the core model, no codec."""
        plan = plan_edit_array("denoise", pixels, options={"strength": strength})
        return self._infer(plan, timeout)

    def stylize(
        self,
        image: ImageInput,
        *,
        style: Style,
        strength: float = 1.0,
        output_format: OutputFormat = "png",
        quality: int = 95,
        timeout: float | None = None,
    ) -> ImageResult:
        """``image`` in a campaign look (``style``), same size, through the pipeline.

        ``strength`` in [0, 1] blends the photo (0) and the full style (1).
        """
        plan = plan_edit(
            "stylize",
            image,
            options={"style": style, "strength": strength},
            output_format=output_format,
            quality=quality,
        )
        return self._infer(plan, timeout)

    def stylize_array(
        self,
        pixels: npt.NDArray[Any],
        *,
        style: Style,
        strength: float = 1.0,
        timeout: float | None = None,
    ) -> ArrayResult:
        """Stylise uint8 (H, W, 3) or (N, H, W, 3) pixels with the core model, no codec."""
        plan = plan_edit_array("stylize", pixels, options={"style": style, "strength": strength})
        return self._infer(plan, timeout)

    def translate(
        self,
        image: ImageInput,
        *,
        direction: Direction,
        output_format: OutputFormat = "png",
        quality: int = 95,
        timeout: float | None = None,
    ) -> ImageResult:
        """A product photo as a pencil sketch (``"photo_to_sketch"``) or a sketch as a photo
        (``"sketch_to_photo"``), same size, through the pipeline."""
        plan = plan_edit(
            "translate",
            image,
            options={"direction": direction},
            output_format=output_format,
            quality=quality,
        )
        return self._infer(plan, timeout)

    def translate_array(
        self, pixels: npt.NDArray[Any], *, direction: Direction, timeout: float | None = None
    ) -> ArrayResult:
        """Translate uint8 (H, W, 3) or (N, H, W, 3) pixels with the core model, no codec."""
        plan = plan_edit_array("translate", pixels, options={"direction": direction})
        return self._infer(plan, timeout)

    def inpaint(
        self,
        image: ImageInput,
        mask: MaskInput,
        *,
        output_format: OutputFormat = "png",
        quality: int = 95,
        timeout: float | None = None,
    ) -> ImageResult:
        """Fill the pixels of ``image`` that ``mask`` marks (non-zero) through the pipeline.

        ``mask`` is a mode "L"/"1" image or a 2-D bool/uint8 array of the image's size.
        """
        plan = plan_edit(
            "inpaint", image, options={"mask": mask}, output_format=output_format, quality=quality
        )
        return self._infer(plan, timeout)

    def inpaint_array(
        self, pixels: npt.NDArray[Any], mask: MaskInput, *, timeout: float | None = None
    ) -> ArrayResult:
        """Fill the ``mask`` pixels of uint8 (H, W, 3) or (N, H, W, 3) pixels, no codec."""
        return self._infer(plan_edit_array("inpaint", pixels, options={"mask": mask}), timeout)

    def remove_background(
        self,
        image: ImageInput,
        *,
        background: Background = "white",
        output_format: OutputFormat = "png",
        quality: int = 95,
        timeout: float | None = None,
    ) -> ImageResult:
        """Cut the product out of ``image`` onto ``background`` through the pipeline.

        ``"transparent"`` returns RGBA (PNG or WebP); a colour returns an opaque RGB image.
        """
        plan = plan_edit(
            "remove_background",
            image,
            options={"background": background},
            output_format=output_format,
            quality=quality,
        )
        return self._infer(plan, timeout)

    def remove_background_array(
        self,
        pixels: npt.NDArray[Any],
        *,
        background: Background = "white",
        timeout: float | None = None,
    ) -> ArrayResult:
        """Cut out uint8 (H, W, 3) or (N, H, W, 3) pixels: (..., 4) RGBA, no codec."""
        plan = plan_edit_array("remove_background", pixels, options={"background": background})
        return self._infer(plan, timeout)

    def generate(
        self,
        *,
        category: Category,
        color: Color,
        model: GeneratorModel = "dcgan",
        seed: int = 0,
        count: int = 1,
        truncation: float = 1.0,
        output_format: OutputFormat = "png",
        quality: int = 95,
        timeout: float | None = None,
    ) -> GeneratedImages:
        """Make ``count`` catalog images of ``category`` in ``color`` with generator ``model``.

        The same ``seed`` gives the same images (image ``i`` does not depend on ``count``);
        ``truncation`` in (0, 1] trades variety for typical-looking images.
        """
        plan = plan_generate(
            model=model,
            category=category,
            color=color,
            seed=seed,
            count=count,
            truncation=truncation,
            output_format=output_format,
            quality=quality,
        )
        return self._infer(plan, timeout)

    def mix_styles(
        self,
        *,
        coarse_seed: int,
        fine_seed: int,
        category: Category,
        color: Color,
        model: MixingModel = "stylegan",
        count: int = 1,
        truncation: float = 1.0,
        output_format: OutputFormat = "png",
        quality: int = 95,
        timeout: float | None = None,
    ) -> GeneratedImages:
        """Images with the coarse styles (4 and 8 px: silhouette, proportions) of
        ``coarse_seed`` and the fine ones (16 and 32 px: shading, texture) of ``fine_seed``.

        ``generate(seed=s)`` equals ``mix_styles(coarse_seed=s, fine_seed=s)``.
        """
        plan = plan_generate(
            model=model,
            category=category,
            color=color,
            seed=coarse_seed,
            mix_seed=fine_seed,
            count=count,
            truncation=truncation,
            output_format=output_format,
            quality=quality,
        )
        return self._infer(plan, timeout)

    def variations(
        self,
        image: ImageInput,
        *,
        category: Category,
        color: Color,
        count: int = 4,
        seed: int = 0,
        spread: float = 1.0,
        output_format: OutputFormat = "png",
        quality: int = 95,
        timeout: float | None = None,
    ) -> GeneratedImages:
        """``count`` variations of a 32 x 32 catalog image of ``category`` in ``color``.

        The VAE encodes the image, adds ``spread`` (in [0, 1]) times standard-normal noise
        from seed ``seed + i`` to its latent for variation ``i``, and decodes.
        """
        plan = plan_variations(
            image,
            category=category,
            color=color,
            count=count,
            seed=seed,
            spread=spread,
            output_format=output_format,
            quality=quality,
        )
        return self._infer(plan, timeout)

    def interpolate(
        self,
        image_a: ImageInput,
        image_b: ImageInput,
        *,
        category: Category,
        color: Color,
        steps: int = 5,
        output_format: OutputFormat = "png",
        quality: int = 95,
        timeout: float | None = None,
    ) -> GeneratedImages:
        """``steps`` images from ``image_a`` to ``image_b`` (32 x 32 catalog images with the
        same labels), evenly spaced between their VAE latents; both ends included."""
        plan = plan_interpolate(
            image_a,
            image_b,
            category=category,
            color=color,
            steps=steps,
            output_format=output_format,
            quality=quality,
        )
        return self._infer(plan, timeout)

    def generate_array(
        self,
        *,
        category: Category,
        color: Color,
        model: GeneratorModel = "dcgan",
        seed: int = 0,
        count: int = 1,
        truncation: float = 1.0,
        timeout: float | None = None,
    ) -> ArrayResult:
        """The images ``generate`` makes, as uint8 (count, H, W, 3) from the core model, no codec.

        Latents are drawn client-side from ``seed`` exactly as the pipeline draws them.
        """
        plan = plan_generate_array(
            model=model,
            category=category,
            color=color,
            seed=seed,
            count=count,
            truncation=truncation,
        )
        return self._infer(plan, timeout)

    def health(self, *, timeout: float | None = None) -> Health:
        """Liveness, readiness and per-model readiness; all False when unreachable."""
        deadline = self._deadline(timeout)
        try:
            live = bool(self._call(self._triton.is_server_live, deadline))
        except Unavailable:
            return unreachable()
        ready = bool(self._call(self._triton.is_server_ready, deadline))
        models = {c.name: self._model_ready(c.name, deadline) for c in contracts()}
        return Health(live=live, ready=ready, models=models)

    def verify(self, *, timeout: float | None = None) -> None:
        """Raise ModelMismatch listing every served model that disagrees with the specs.

        ``timeout`` bounds the whole check (two RPCs per model), as it does for ``health``.
        """
        deadline = self._deadline(timeout)
        problems: list[str] = []
        for contract in contracts():
            if not self._model_ready(contract.name, deadline):
                problems.append(not_ready(contract.name))
                continue
            get = partial(self._triton.get_model_metadata, contract.name)
            problems += metadata_problems(contract, self._call(get, deadline))
        if problems:
            raise ModelMismatch(problems)

    def close(self) -> None:
        """Close the gRPC channel."""
        self._triton.close()

    def __enter__(self) -> VitrineClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, call: TimedCall[Any], deadline: Deadline) -> Any:
        return call_with_retry(call, deadline=deadline, policy=self._policy)

    def _model_ready(self, model: str, deadline: Deadline) -> bool:
        try:
            return bool(self._call(partial(self._triton.is_model_ready, model), deadline))
        except NotFound:
            return False

    def _infer(self, plan: InferPlan[R], timeout: float | None) -> R:
        deadline = self._deadline(timeout, plan.work_seconds)
        infer = partial(self._triton.infer, plan.model, plan.inputs, outputs=plan.outputs)
        start = time.perf_counter()
        result = self._call(infer, deadline)
        return plan.parse(result, (time.perf_counter() - start) * 1000.0)
