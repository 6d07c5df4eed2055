"""Typed gRPC client SDK of Vitrine: VitrineClient and its asyncio twin AsyncVitrineClient."""

from ._async import AsyncVitrineClient
from ._errors import (
    DeadlineExceeded,
    InvalidRequest,
    ModelMismatch,
    NotFound,
    ResourceExhausted,
    ServerError,
    Unavailable,
    VitrineError,
)
from ._generate import Category, Color, GeneratorModel, MixingModel
from ._options import Background, MaskInput, Strength
from ._requests import Direction, OutputFormat, Scale, Style
from ._results import ArrayResult, GeneratedImages, Health, ImageResult
from ._sync import VitrineClient

__all__ = [
    "VitrineClient",
    "AsyncVitrineClient",
    "ImageResult",
    "ArrayResult",
    "GeneratedImages",
    "Health",
    "Scale",
    "Direction",
    "OutputFormat",
    "Style",
    "Strength",
    "Background",
    "MaskInput",
    "GeneratorModel",
    "MixingModel",
    "Category",
    "Color",
    "VitrineError",
    "InvalidRequest",
    "NotFound",
    "Unavailable",
    "DeadlineExceeded",
    "ResourceExhausted",
    "ServerError",
    "ModelMismatch",
]
