"""The model registry: every served model's spec, registered once by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from vitrine.errors import UnknownName
from vitrine.products import CAMPAIGN_STYLES, CATALOG_COLOURS, CATEGORIES, TRANSLATIONS
from vitrine.spec import (
    BatchingPolicy,
    Conditioning,
    ImageLimits,
    LargeImages,
    ModelSpec,
    Option,
    OptionKind,
    PrecisionPolicy,
    ShapeProfile,
    Task,
    TensorSpec,
    Tiling,
)

__all__ = ["SPECS", "get_spec", "specs_for_method"]

_IMAGE_AXES = ("height", "width", None)

UPLOAD_MAX_SIDE = 6000
"""The longest side of a photo an editor takes (phone and studio cameras: 3,000-6,000 px)."""
UPLOAD_MAX_PIXELS = 25_000_000
"""The most pixels of a photo an editor takes (25 MP)."""
OUTPUT_MAX_SIDE = 8192
"""The longest side of any editor's output."""
OUTPUT_MAX_PIXELS = 8192 * 8192
"""The most pixels of any editor's output (64 MP)."""


def _upload_limits(min_side: int, scale: int = 1) -> ImageLimits:
    """What an editor's pipeline takes: photos up to the upload limits whose output, ``scale``
    times larger each way, stays within the output limits."""
    return ImageLimits(
        min_side=min_side,
        max_side=min(UPLOAD_MAX_SIDE, OUTPUT_MAX_SIDE // scale),
        max_pixels=min(UPLOAD_MAX_PIXELS, OUTPUT_MAX_PIXELS // scale**2),
    )


def _image_tensor(name: str, prefix: str = "", channels: int = 3) -> TensorSpec:
    axes = tuple(f"{prefix}{axis}" if axis else None for axis in _IMAGE_AXES)
    return TensorSpec(name=name, dtype="UINT8", dims=(-1, -1, channels), axis_names=axes)


def _editor(
    name: str,
    task: Task,
    *,
    options: tuple[Option, ...] = (),
    output_channels: int = 3,
    min_side: int,
    max_side: int,
    opt_side: int,
    large: LargeImages | None,
    **fields: Any,
) -> ModelSpec:
    """A same-size image editor: image (+ options) in, image of the same size out. Its core
    model takes ``min_side`` to ``max_side``; its pipeline real photos, run as ``large``
    says (None: the pipeline takes what the core takes)."""
    return ModelSpec(
        name=name,
        task=task,
        inputs=(_image_tensor("image"), *(option.core for option in options)),
        outputs=(_image_tensor("result", channels=output_channels),),
        profile=ShapeProfile(
            min=(1, min_side, min_side, 3),
            opt=(4, opt_side, opt_side, 3),
            max=(8, max_side, max_side, 3),
        ),
        limits=_upload_limits(min_side) if large else ImageLimits(min_side, max_side),
        client_method=task.value,
        selector=None,
        options=options,
        loadtest_side=opt_side,
        large=large,
        **fields,
    )


def _superres(scale: int, max_side: int, min_gain_db: float) -> ModelSpec:
    return ModelSpec(
        name=f"superres_x{scale}",
        task=Task.SUPER_RESOLVE,
        description=f"ESPCN-family x{scale} super-resolution (residual over bicubic)",
        architecture="espcn",
        arch_kwargs={"scale": scale, "features": (64, 64, 32)},
        inputs=(_image_tensor("image"),),
        outputs=(_image_tensor("result", prefix="out_"),),
        profile=ShapeProfile(
            min=(1, 8, 8, 3),
            opt=(4, max_side // 4, max_side // 4, 3),
            max=(8, max_side, max_side, 3),
        ),
        limits=_upload_limits(8, scale),
        # FP16 measured at most 1 level off, >= 62.0 dB; gate: +1 level, -3 dB (rounded down)
        precision=PrecisionPolicy(
            fp32_layers=("to_subpixels",),  # the output layer
            fp16_max_abs_error_uint8=2,
            fp16_min_psnr_db=59.0,
        ),
        client_method="super_resolve",
        selector=("scale", scale),
        output_scale=scale,
        quality_targets={"psnr_y_over_bicubic_db": min_gain_db},
        loadtest_side=max_side // 4,
        large=LargeImages(Tiling.TILES, tile=max_side // 2, margin=8),  # a 5x5 and two 3x3
        seconds_per_megapixel=8.0 * scale**2 / 4,  # ~3 s per input MP at x2 on 2 cores
    )


ENHANCE_FAMILIES = ("linear", "gamma", "colour_cast", "under_exposure", "over_exposure", "combined")
"""The degradation families enhancement is judged on separately (the evaluation draws them,
``vitrine.training.enhance_families``)."""

_ENHANCE_TARGETS = {
    "psnr_over_best_baseline_db": 0.01,
    "delta_e_below_best_baseline": 0.01,
    **{
        f"{family}_{margin}": 0.01
        for family in ENHANCE_FAMILIES
        for margin in ("psnr_over_best_baseline_db", "delta_e_below_best_baseline")
    },
    "linear_psnr_vs_autocontrast_db": -1.0,  # within 1 dB of auto-contrast, which undoes it
    "neutral_psnr_db": 35.0,  # a photo needing no correction comes back unchanged
}
"""Beat every baseline on mean PSNR and mean CIEDE2000 (lower is better) over the fixed
cases and in each family; undo a linear change as auto-contrast does; add no cast."""


def _enhance() -> ModelSpec:
    return ModelSpec(
        name="enhance",
        task=Task.ENHANCE,
        description="exposure, contrast and colour-cast correction by predicted curves",
        architecture="curves",
        arch_kwargs={"features": 32, "iterations": 8, "thumbnail": 64, "bins": 16, "hidden": 64},
        inputs=(_image_tensor("image"),),
        outputs=(_image_tensor("result"),),
        profile=ShapeProfile(min=(1, 16, 16, 3), opt=(4, 256, 256, 3), max=(8, 1024, 1024, 3)),
        limits=_upload_limits(16),
        # FP16 measured at most 1 level off, >= 62.1 dB; gate: +1 level, -3 dB (rounded down)
        precision=PrecisionPolicy(
            fp32_layers=("head",),  # the curve parameters
            fp16_max_abs_error_uint8=2,
            fp16_min_psnr_db=59.0,
        ),
        client_method="enhance",
        selector=None,
        quality_targets=_ENHANCE_TARGETS,
        loadtest_side=256,
        large=LargeImages(Tiling.CURVES, tile=256),  # the probe: 4 x the 64 px thumbnail
        seconds_per_megapixel=2.0,  # one probe call, then a table lookup per pixel
    )


def _denoise() -> ModelSpec:
    return _editor(
        "denoise",
        Task.DENOISE,
        description="blind denoising (Gaussian noise, JPEG artefacts): residual U-Net",
        architecture="residual_unet",
        arch_kwargs={"features": 32, "levels": 4},
        options=(Option("strength", OptionKind.STRENGTH, auto=True),),  # the network is blind
        min_side=16,
        max_side=1024,
        opt_side=256,
        large=LargeImages(Tiling.TILES, tile=512, margin=96, batch=2),  # 0.55 GB a call
        seconds_per_megapixel=20.0,  # ~8 s per MP on 2 busy cores
        # FP16 measured at most 1 level off, >= 62.3 dB; gate: +1 level, -3 dB (rounded down)
        precision=PrecisionPolicy(
            fp32_layers=("tail",),  # the predicted noise
            fp16_max_abs_error_uint8=2,
            fp16_min_psnr_db=59.0,
        ),
        quality_targets={"psnr_over_best_baseline_db_sigma25": 1.0},
    )


def _inpaint() -> ModelSpec:
    return _editor(
        "inpaint",
        Task.INPAINT,
        description="hole filling (strokes, boxes, watermark text) by a gated-convolution U-Net",
        architecture="gated_unet",
        arch_kwargs={"features": 32, "levels": 3},
        options=(Option("mask", OptionKind.MASK),),
        min_side=32,
        max_side=512,
        opt_side=256,
        large=LargeImages(Tiling.HOLES, tile=512, margin=64, batch=2),  # 0.35 GB a call
        seconds_per_megapixel=6.0,  # the holes' windows only
        # FP16 measured at most 1 level off, >= 71.7 dB; gate: +1 level, -3 dB (rounded down)
        precision=PrecisionPolicy(fp16_max_abs_error_uint8=2, fp16_min_psnr_db=68.0),
        quality_targets={"hole_psnr_over_best_baseline_db": 1.5},
    )


def _remove_background() -> ModelSpec:
    return _editor(
        "remove_background",
        Task.REMOVE_BACKGROUND,
        description="product cut-out: alpha matte by a U-Net, composited on a background",
        architecture="matte_unet",
        arch_kwargs={"features": 16, "levels": 4, "working_side": 128},
        options=(Option("background", OptionKind.BACKGROUND),),
        output_channels=4,
        min_side=32,
        max_side=1024,
        opt_side=256,
        large=LargeImages(Tiling.MATTE, tile=1024),
        seconds_per_megapixel=2.0,  # one working-size call, the guided filter at full size
        # FP16 measured at most 1 level off, >= 68.2 dB; gate: +1 level, -3 dB (rounded down)
        precision=PrecisionPolicy(fp16_max_abs_error_uint8=2, fp16_min_psnr_db=65.0),
        quality_targets={"iou": 0.90, "iou_over_grabcut": 0.15, "second_set_iou": 0.90},
    )


def _stylize() -> ModelSpec:
    return _editor(
        "stylize",
        Task.STYLIZE,
        description="multi-style transfer: a feed-forward network with conditional instance norm",
        architecture="style_net",
        arch_kwargs={"styles": len(CAMPAIGN_STYLES), "features": 16, "blocks": 3},
        options=(
            Option("style", OptionKind.LABEL, choices=CAMPAIGN_STYLES),
            Option("strength", OptionKind.STRENGTH),  # 0: the photo, 1: fully stylised
        ),
        min_side=32,
        max_side=512,
        opt_side=256,
        large=LargeImages(Tiling.TILES, tile=512, margin=64, blend=True, batch=4),
        seconds_per_megapixel=10.0,  # instance norm: tiles feathered together
        # FP16 measured at most 1 level off, >= 61.4 dB; gate: +1 level, -3 dB (rounded down)
        precision=PrecisionPolicy(
            fp32_layers=("tail",),  # the output layer
            fp16_max_abs_error_uint8=2,
            fp16_min_psnr_db=58.0,
        ),
        # closer to the style than a colour transfer; more of the photo than the style alone
        # ... and on photographs it never saw, the photo's structure under every style
        quality_targets={
            "style_distance_below_histogram_match": 0.0,
            "content_ssim_over_style_image": 0.0,
            **{f"edge_correlation_{style}": 0.3 for style in CAMPAIGN_STYLES},
        },
    )


def _translate() -> ModelSpec:
    return _editor(
        "translate",
        Task.TRANSLATE,
        description="photo <-> pencil sketch: a CycleGAN's two ResNet generators",
        architecture="cyclegan",
        arch_kwargs={"features": 16, "blocks": 4},
        options=(Option("direction", OptionKind.LABEL, choices=TRANSLATIONS),),
        min_side=32,
        max_side=512,
        opt_side=256,
        large=LargeImages(Tiling.TILES, tile=512, margin=64, blend=True, batch=4),
        seconds_per_megapixel=15.0,  # instance norm: tiles feathered together
        # FP16 measured at most 1 level off, >= 61.0 dB; gate: +1 level, -3 dB (rounded down)
        precision=PrecisionPolicy(
            fp32_layers=("tail",),  # the output layers
            fp16_max_abs_error_uint8=2,
            fp16_min_psnr_db=58.0,
        ),
        quality_targets={"sketch_psnr_over_best_naive_db": 0.0},
    )


_FASHION_MNIST = Conditioning(
    categories=CATEGORIES, colours=CATALOG_COLOURS, latent_dim=64, side=32, max_count=16
)
"""What every catalog generator is conditioned on (``vitrine.training.catalog_data``)."""


GENERATOR_TARGETS = {
    "category_consistency": 0.90,  # the judge's accuracy on the requested category
    "colour_consistency": 0.95,  # ... and on the requested colour
    "fid_floor_headroom": 0.0,  # 3 - FID / floor (real train vs real test): FID <= 3x floor
    "fid_naive_headroom": 0.0,  # 1/3 - FID / naive baseline's FID: FID <= 1/3 of naive
    "diversity_over_real": 0.70,  # within-class feature spread, generated / real
}
"""Issue 4's targets for every catalog generator, as margins ``vitrine eval`` reports."""


def _generator(name: str, conditioning: Conditioning = _FASHION_MNIST, **fields: Any) -> ModelSpec:
    """A conditional generator: latent (N, Z) + category and colour indices -> images."""
    z, side, count = conditioning.latent_dim, conditioning.side, conditioning.max_count
    label = TensorSpec(name="", dtype="INT32", dims=(1,), axis_names=(None,))
    latent = TensorSpec(name="latent", dtype="FP32", dims=(z,), axis_names=(None,))
    styles = (  # the fine styles' latent and truncation ψ, applied in the style space
        dataclasses.replace(latent, name="mix_latent"),
        TensorSpec(name="truncation", dtype="FP32", dims=(1,), axis_names=(None,)),
    )
    return ModelSpec(
        name=name,
        task=Task.GENERATE,
        inputs=(
            latent,
            dataclasses.replace(label, name="category"),
            dataclasses.replace(label, name="color"),
            *(styles if conditioning.style_mixing else ()),
        ),
        outputs=(
            TensorSpec(name="images", dtype="UINT8", dims=(side, side, 3), axis_names=(None,) * 3),
        ),
        profile=ShapeProfile(min=(1, z), opt=(count // 2, z), max=(count, z)),
        limits=ImageLimits(min_side=side, max_side=side),
        client_method="generate",
        selector=("model", name),
        batching=BatchingPolicy(max_batch_size=count, preferred_batch_sizes=(count // 2, count)),
        loadtest_side=side,
        response_cache=True,  # the same request (seed included) makes the same bytes
        conditioning=conditioning,
        **fields,
    )


def _dcgan() -> ModelSpec:
    return _generator(
        "dcgan",
        description="conditional DCGAN (spectral-norm projection discriminator), 32 px catalog",
        architecture="dcgan",
        arch_kwargs={"latent_dim": 64, "features": 48, "categories": 10, "colours": 10},
        # FP16 measured at most 3 levels off, >= 64.3 dB; gate: +1 level, -3 dB (rounded down)
        precision=PrecisionPolicy(
            fp32_layers=("to_rgb",),  # the output layer
            fp16_max_abs_error_uint8=4,
            fp16_min_psnr_db=61.0,
        ),
        quality_targets=GENERATOR_TARGETS,
    )


_VAE_KWARGS = {
    "latent_dim": 64,
    "features": 64,  # the decoder's; the encoder (vae_edit serves it) is half as wide
    "encoder_features": 32,
    "categories": 10,
    "colours": 10,
}


def _vae() -> ModelSpec:
    return _generator(
        "vae",
        description="conditional VAE decoder (trained as a VAE-GAN), 32 px catalog",
        architecture="cvae",
        arch_kwargs=_VAE_KWARGS,
        # FP16 measured at most 2 levels off, >= 63.2 dB; gate: +1 level, -3 dB (rounded down)
        precision=PrecisionPolicy(
            fp32_layers=("to_rgb",),  # the decoder's output layer
            fp16_max_abs_error_uint8=3,
            fp16_min_psnr_db=60.0,
        ),
        quality_targets=GENERATOR_TARGETS,
    )


def _vae_edit() -> ModelSpec:
    """The trained VAE's encoder and decoder: ``z = lerp(mean(image), mean(other), blend)
    + spread * noise(seed)``, decoded. ``variations`` and ``interpolate`` call it."""
    side, count = _FASHION_MNIST.side, _FASHION_MNIST.max_count
    spec = _editor(
        "vae_edit",
        Task.LATENT_EDIT,
        description="conditional VAE encoder + decoder: variations and interpolations, 32 px",
        architecture="cvae",
        arch_kwargs=_VAE_KWARGS,
        options=(
            Option("other", OptionKind.IMAGE),  # the image to blend towards
            Option("category", OptionKind.LABEL, choices=_FASHION_MNIST.categories),
            Option("color", OptionKind.LABEL, choices=_FASHION_MNIST.colours),
            Option("blend", OptionKind.STRENGTH),  # 0: image, 1: other
            Option("seed", OptionKind.SEED, size=_FASHION_MNIST.latent_dim),
            Option("spread", OptionKind.STRENGTH),  # scale of the seed's noise
        ),
        min_side=side,
        max_side=side,
        opt_side=side,
        large=None,
        # FP16 measured at most 2 levels off, >= 61.8 dB; gate: +1 level, -3 dB (rounded down)
        precision=PrecisionPolicy(
            fp32_layers=("to_rgb",),  # the decoder's output layer
            fp16_max_abs_error_uint8=3,
            fp16_min_psnr_db=58.0,
        ),
        quality_targets={"reconstruction_psnr_over_label_mean_db": 0.0},
        weights_from="vae",
    )
    return dataclasses.replace(
        spec,
        client_method="variations",  # and interpolate
        profile=ShapeProfile(
            min=(1, side, side, 3), opt=(count // 2, side, side, 3), max=(count, side, side, 3)
        ),
        batching=BatchingPolicy(max_batch_size=count, preferred_batch_sizes=(count // 2, count)),
    )


def _stylegan() -> ModelSpec:
    return _generator(
        "stylegan",
        dataclasses.replace(_FASHION_MNIST, style_mixing=True),
        description="StyleGAN-lite: mapping network, modulated convolutions, noise; 32 px catalog",
        architecture="stylegan",
        arch_kwargs={
            "latent_dim": 64,
            "categories": 10,
            "colours": 10,
            "channels": [128, 128, 64, 32],  # at 4, 8, 16 and 32 px
            "style_dim": 128,
            "coarse_layers": 3,  # 4 and 8 px take the first latent's style when mixing
        },
        # FP16 measured at most 5 levels off, >= 62.4 dB; gate: +1 level, -3 dB (rounded down)
        precision=PrecisionPolicy(
            fp32_layers=("to_rgb",),  # the RGB skip branch
            fp16_max_abs_error_uint8=6,
            fp16_min_psnr_db=59.0,
        ),
        quality_targets=GENERATOR_TARGETS,
    )


def _registry(specs: Iterable[ModelSpec]) -> dict[str, ModelSpec]:
    registry: dict[str, ModelSpec] = {}
    for spec in specs:
        if spec.name in registry:
            raise ValueError(f"duplicate spec name {spec.name!r}")
        registry[spec.name] = spec
    return registry


SPECS: dict[str, ModelSpec] = _registry(
    (
        _superres(scale=2, max_side=512, min_gain_db=1.0),
        _superres(scale=4, max_side=256, min_gain_db=0.5),
        _enhance(),
        _denoise(),
        _inpaint(),
        _remove_background(),
        _stylize(),
        _translate(),
        _dcgan(),
        _vae(),
        _vae_edit(),
        _stylegan(),
    )
)


def get_spec(name: str) -> ModelSpec:
    """The spec called ``name``; the error lists the known names."""
    try:
        return SPECS[name]
    except KeyError:
        raise UnknownName(f"unknown model {name!r}; known: {', '.join(sorted(SPECS))}") from None


def specs_for_method(method: str) -> dict[object, ModelSpec]:
    """Specs backing one client method, keyed by their selector value (None: no selector)."""
    return {
        spec.selector[1] if spec.selector else None: spec
        for spec in SPECS.values()
        if spec.client_method == method
    }
