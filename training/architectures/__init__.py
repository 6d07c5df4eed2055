"""Architecture registry: one file per family, built only from constructor arguments."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from vitrine.training.architectures.catalog_judge import CatalogJudge
from vitrine.training.architectures.curves import CurveEnhancer
from vitrine.training.architectures.cvae import ConditionalVAE
from vitrine.training.architectures.cyclegan import CycleTranslator
from vitrine.training.architectures.dcgan import ConditionalGenerator
from vitrine.training.architectures.espcn import ESPCN
from vitrine.training.architectures.gated_unet import GatedUNet
from vitrine.training.architectures.matte_unet import MatteUNet
from vitrine.training.architectures.residual_unet import ResidualUNet
from vitrine.training.architectures.style_net import StyleTransferNet
from vitrine.training.architectures.stylegan import StyleGenerator

__all__ = ["ARCHITECTURES", "build_architecture"]

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "espcn": ESPCN,
    "curves": CurveEnhancer,
    "matte_unet": MatteUNet,
    "gated_unet": GatedUNet,
    "residual_unet": ResidualUNet,
    "dcgan": ConditionalGenerator,
    "cvae": ConditionalVAE,
    "stylegan": StyleGenerator,
    "style_net": StyleTransferNet,
    "cyclegan": CycleTranslator,
    "catalog_judge": CatalogJudge,
}


def build_architecture(name: str, kwargs: Mapping[str, Any]) -> nn.Module:
    """Instantiate architecture ``name`` with ``kwargs`` (lists become tuples, as in JSON)."""
    try:
        factory = ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}") from None
    return factory(**{key: tuple(v) if isinstance(v, list) else v for key, v in kwargs.items()})
