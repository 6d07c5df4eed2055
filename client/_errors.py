"""Exception hierarchy and the mapping from Triton gRPC statuses onto it."""

from __future__ import annotations

from collections.abc import Iterable

from tritonclient.utils import InferenceServerException

__all__ = [
    "DeadlineExceeded",
    "InvalidRequest",
    "ModelMismatch",
    "NotFound",
    "ResourceExhausted",
    "ServerError",
    "Unavailable",
    "VitrineError",
    "map_error",
]


class VitrineError(Exception):
    """Base of every error the client raises.

    ``status`` is the gRPC status code name (``"INVALID_ARGUMENT"``, ...) when the error
    came from the server, ``None`` when it was raised locally.
    """

    def __init__(self, message: str, *, status: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class InvalidRequest(VitrineError):
    """The request was rejected, locally or by the server (INVALID_ARGUMENT)."""


class NotFound(VitrineError):
    """The model is not loaded on the server (NOT_FOUND)."""


class Unavailable(VitrineError):
    """The server could not be reached or is not ready (UNAVAILABLE); retried."""


class DeadlineExceeded(VitrineError):
    """The call did not finish within its deadline (DEADLINE_EXCEEDED)."""


class ResourceExhausted(VitrineError):
    """The server's queue or a size limit is full (RESOURCE_EXHAUSTED)."""


class ServerError(VitrineError):
    """Any other failure: INTERNAL, UNKNOWN, other statuses, malformed responses."""


class ModelMismatch(VitrineError):
    """``verify()`` found served models that disagree with the specs."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} model mismatch(es):\n{lines}")


_BY_STATUS: dict[str, type[VitrineError]] = {
    "INVALID_ARGUMENT": InvalidRequest,
    "NOT_FOUND": NotFound,
    "UNAVAILABLE": Unavailable,
    "DEADLINE_EXCEEDED": DeadlineExceeded,
    "RESOURCE_EXHAUSTED": ResourceExhausted,
}


def map_error(error: InferenceServerException) -> VitrineError:
    """The typed error for a tritonclient error, keeping its message and status code.

    tritonclient reports statuses as ``"StatusCode.NAME"``; the prefix is dropped. Two
    answers that would be server errors are transient, so ``Unavailable`` (retryable): a
    dead python-backend step ("Stub process ... is not healthy", until the server's
    watchdog reloads it) and a pipeline whose next step was refused by a stopping server
    ("Server is stopping" or "Server not ready", while the server restarts).
    """
    raw_status: str | None = error.status()
    status = raw_status.removeprefix("StatusCode.") if raw_status else None
    message: str = error.message() or str(error)
    kind = _BY_STATUS.get(status or "", ServerError)
    if kind is ServerError and any(words in message for words in _TRANSIENT):
        kind = Unavailable
    return kind(message, status=status)


# Triton's words for a python-backend stub that died, and for a step of a stopping server.
_TRANSIENT = ("is not healthy", "Server is stopping", "Server not ready")
