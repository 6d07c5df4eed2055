"""Embedded Triton server launcher."""

from .embedded import (
    EmbeddedTriton,
    TritonInstall,
    TritonNotInstalled,
    TritonStartupError,
    backend_directory,
    find_triton,
    free_port,
    serve_forever,
)

__all__ = [
    "EmbeddedTriton",
    "TritonInstall",
    "TritonNotInstalled",
    "TritonStartupError",
    "backend_directory",
    "find_triton",
    "free_port",
    "serve_forever",
]
