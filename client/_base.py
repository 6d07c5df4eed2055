"""Configuration shared by the sync and async clients."""

from __future__ import annotations

from typing import Any, ClassVar

from vitrine.channel import channel_args

from ._retry import Deadline, RetryPolicy, valid_timeout

__all__ = ["ClientBase"]


class ClientBase:
    """Holds the connection, default deadline and retry policy.

    ``root_certificates``, ``private_key`` and ``certificate_chain`` are PEM file paths,
    passed to tritonclient with ``ssl``.
    """

    _triton_module: ClassVar[Any]

    def __init__(
        self,
        url: str = "localhost:8001",
        *,
        timeout: float = 30.0,
        retries: int = 2,
        ssl: bool = False,
        root_certificates: str | None = None,
        private_key: str | None = None,
        certificate_chain: str | None = None,
    ) -> None:
        if not valid_timeout(timeout):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.url = url
        self.timeout = timeout
        self._policy = RetryPolicy(retries=retries)
        self._triton: Any = self._triton_module.InferenceServerClient(
            url,
            ssl=ssl,
            root_certificates=root_certificates,
            private_key=private_key,
            certificate_chain=certificate_chain,
            channel_args=channel_args(),
        )

    def _deadline(self, timeout: float | None, work_seconds: float = 0.0) -> Deadline:
        """A call's deadline: ``timeout`` when given, else the client's default plus the
        call's expected work (large photos take longer)."""
        return Deadline(self.timeout + work_seconds if timeout is None else timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, timeout={self.timeout!r})"
