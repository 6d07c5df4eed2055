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
from ._options import Background, MaskInput, Strength
from ._requests import OutputFormat, Scale
from ._results import ArrayResult, Health, ImageResult
from ._sync import VitrineClient

__all__ = [
    "VitrineClient",
    "AsyncVitrineClient",
    "ImageResult",
    "ArrayResult",
    "Health",
    "Scale",
    "OutputFormat",
    "Strength",
    "Background",
    "MaskInput",
    "VitrineError",
    "InvalidRequest",
    "NotFound",
    "Unavailable",
    "DeadlineExceeded",
    "ResourceExhausted",
    "ServerError",
    "ModelMismatch",
]
