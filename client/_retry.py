"""Deadlines and jittered exponential backoff on UNAVAILABLE and RESOURCE_EXHAUSTED (overload),
for both client flavours."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tritonclient.utils import InferenceServerException

from ._errors import DeadlineExceeded, InvalidRequest, ResourceExhausted, Unavailable, map_error

__all__ = [
    "Deadline",
    "RetryPolicy",
    "TimedCall",
    "async_call_with_retry",
    "call_with_retry",
    "valid_timeout",
]

RETRYABLE = (Unavailable, ResourceExhausted)  # the server (or its queue) may take it a moment later

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class TimedCall(Protocol[T_co]):
    """One RPC attempt; tritonclient methods bound with ``functools.partial`` fit."""

    def __call__(self, *, client_timeout: float) -> T_co: ...


def valid_timeout(seconds: object) -> bool:
    """Whether ``seconds`` is a finite, positive number (bools excluded)."""
    return (
        isinstance(seconds, (int, float))
        and not isinstance(seconds, bool)
        and math.isfinite(seconds)
        and seconds > 0
    )


class Deadline:
    """A point in time a whole call (all its RPCs and retries) must finish by."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not valid_timeout(seconds):
            raise InvalidRequest(f"timeout must be a positive number of seconds, got {seconds!r}")
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        """Seconds left; zero or negative once passed."""
        return self._end - self._clock()

    def budget(self) -> float:
        """Seconds left for the next RPC; raises DeadlineExceeded when none are."""
        remaining = self.remaining()
        if remaining <= 0:
            raise DeadlineExceeded(f"deadline of {self.seconds:g}s exceeded")
        return remaining


@dataclass(frozen=True)
class RetryPolicy:
    """Retry UNAVAILABLE up to ``retries`` times, sleeping ``base_delay * 2**attempt``
    (capped at ``max_delay``) scaled by a random factor in [0.5, 1)."""

    retries: int = 2
    base_delay: float = 0.05
    max_delay: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or self.retries < 0:
            raise ValueError(f"retries must be a non-negative int, got {self.retries!r}")

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Backoff before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
        return min(self.max_delay, self.base_delay * 2.0**attempt) * (0.5 + rand() / 2)


def _next_delay(
    error: Unavailable | ResourceExhausted,
    attempt: int,
    policy: RetryPolicy,
    deadline: Deadline,
    rand: Callable[[], float],
) -> float:
    """Sleep before the next attempt; re-raises ``error`` when no retry is left or the
    sleep would reach the deadline."""
    if attempt >= policy.retries:
        raise error
    delay = policy.delay(attempt, rand)
    if delay >= deadline.remaining():
        raise error
    return delay


def call_with_retry(
    call: TimedCall[T],
    *,
    deadline: Deadline,
    policy: RetryPolicy,
    sleep: Callable[[float], object] = time.sleep,
    rand: Callable[[], float] = random.random,
) -> T:
    """Run ``call`` with the time left as ``client_timeout``, mapping tritonclient errors
    to VitrineError and retrying the RETRYABLE errors within the deadline."""
    attempt = 0
    while True:
        try:
            try:
                return call(client_timeout=deadline.budget())
            except InferenceServerException as error:
                raise map_error(error) from error
        except RETRYABLE as error:
            sleep(_next_delay(error, attempt, policy, deadline, rand))
            attempt += 1


async def async_call_with_retry(
    call: TimedCall[Awaitable[T]],
    *,
    deadline: Deadline,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> T:
    """The awaitable twin of :func:`call_with_retry`."""
    attempt = 0
    while True:
        try:
            try:
                return await call(client_timeout=deadline.budget())
            except InferenceServerException as error:
                raise map_error(error) from error
        except RETRYABLE as error:
            await sleep(_next_delay(error, attempt, policy, deadline, rand))
            attempt += 1
