"""Error mapping from tritonclient statuses, deadlines and the retry policy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from tritonclient.utils import InferenceServerException

from vitrine.client import (
    DeadlineExceeded,
    InvalidRequest,
    ModelMismatch,
    NotFound,
    ResourceExhausted,
    ServerError,
    Unavailable,
    VitrineError,
)
from vitrine.client._errors import map_error
from vitrine.client._retry import (
    Deadline,
    RetryPolicy,
    async_call_with_retry,
    call_with_retry,
    valid_timeout,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("StatusCode.INVALID_ARGUMENT", InvalidRequest),
        ("StatusCode.NOT_FOUND", NotFound),
        ("StatusCode.UNAVAILABLE", Unavailable),
        ("StatusCode.DEADLINE_EXCEEDED", DeadlineExceeded),
        ("StatusCode.RESOURCE_EXHAUSTED", ResourceExhausted),
        ("StatusCode.INTERNAL", ServerError),
        ("StatusCode.UNKNOWN", ServerError),
        ("StatusCode.UNIMPLEMENTED", ServerError),
        (None, ServerError),
    ],
)
def test_map_error(status: str | None, kind: type[VitrineError]) -> None:
    error = map_error(InferenceServerException("image too large: 600x600", status=status))
    assert type(error) is kind and isinstance(error, VitrineError)
    assert str(error) == error.message == "image too large: 600x600"
    assert error.status == (status.removeprefix("StatusCode.") if status else None)


def test_local_errors_have_no_status() -> None:
    assert InvalidRequest("bad").status is None


def test_model_mismatch_lists_problems() -> None:
    error = ModelMismatch(["a: missing input 'x'", "b: not ready"])
    assert error.problems == ("a: missing input 'x'", "b: not ready")
    assert str(error) == "2 model mismatch(es):\n  - a: missing input 'x'\n  - b: not ready"


class FakeClock:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def _failing(statuses: list[str], clock: FakeClock, cost: float = 0.0) -> Callable[..., str]:
    """A fake RPC raising the given statuses in turn, then returning "ok"."""
    timeouts: list[float] = []

    def call(*, client_timeout: float) -> str:
        timeouts.append(client_timeout)
        clock.now += cost
        if len(timeouts) <= len(statuses):
            raise InferenceServerException(
                "boom", status=f"StatusCode.{statuses[len(timeouts) - 1]}"
            )
        return "ok"

    call.timeouts = timeouts  # type: ignore[attr-defined]
    return call


def test_retries_unavailable_with_growing_jittered_backoff() -> None:
    clock = FakeClock()
    call = _failing(["UNAVAILABLE", "UNAVAILABLE"], clock)
    policy = RetryPolicy(retries=2, base_delay=0.1, max_delay=10.0)
    result = call_with_retry(
        call, deadline=Deadline(5.0, clock), policy=policy, sleep=clock.sleep, rand=lambda: 1.0
    )
    assert result == "ok"
    assert clock.sleeps == pytest.approx([0.1, 0.2])
    assert call.timeouts == pytest.approx([5.0, 4.9, 4.7])  # type: ignore[attr-defined]


def test_backoff_jitter_and_cap() -> None:
    policy = RetryPolicy(retries=5, base_delay=0.1, max_delay=0.3)
    assert policy.delay(0, lambda: 0.0) == pytest.approx(0.05)
    assert policy.delay(1, lambda: 0.5) == pytest.approx(0.15)
    assert policy.delay(4, lambda: 1.0) == pytest.approx(0.3)


def test_gives_up_after_retries() -> None:
    clock = FakeClock()
    call = _failing(["UNAVAILABLE"] * 5, clock)
    with pytest.raises(Unavailable, match="boom"):
        call_with_retry(
            call, deadline=Deadline(60.0, clock), policy=RetryPolicy(retries=2), sleep=clock.sleep
        )
    assert len(call.timeouts) == 3 and len(clock.sleeps) == 2  # type: ignore[attr-defined]


def test_zero_retries() -> None:
    clock = FakeClock()
    call = _failing(["UNAVAILABLE"], clock)
    with pytest.raises(Unavailable):
        call_with_retry(
            call, deadline=Deadline(60.0, clock), policy=RetryPolicy(retries=0), sleep=clock.sleep
        )
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("INVALID_ARGUMENT", InvalidRequest),
        ("DEADLINE_EXCEEDED", DeadlineExceeded),
        ("INTERNAL", ServerError),
        ("NOT_FOUND", NotFound),
    ],
)
def test_other_statuses_are_not_retried(status: str, kind: type[VitrineError]) -> None:
    clock = FakeClock()
    call = _failing([status], clock)
    with pytest.raises(kind) as raised:
        call_with_retry(
            call, deadline=Deadline(60.0, clock), policy=RetryPolicy(retries=3), sleep=clock.sleep
        )
    assert raised.value.status == status
    assert isinstance(raised.value.__cause__, InferenceServerException)
    assert len(call.timeouts) == 1 and clock.sleeps == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "message",
    [
        "in ensemble 'superres_x2_pipeline', Stub process 'superres_x2_0_0' is not healthy.",
        "in ensemble 'superres_x2_pipeline', Model 'superres_x2_fullsize', [request id: "
        "<id_unknown>] Server is stopping, scheduler for model has stopped accepting new "
        "inference requests",
    ],
    ids=["dead step", "stopping server"],
)
def test_a_transient_pipeline_failure_is_retryable(message: str) -> None:
    error = map_error(InferenceServerException(message, status="StatusCode.INTERNAL"))
    assert isinstance(error, Unavailable) and error.status == "INTERNAL"


def test_other_internal_errors_are_server_errors() -> None:
    error = map_error(InferenceServerException("onnx runtime error", status="StatusCode.INTERNAL"))
    assert type(error) is ServerError


def test_resource_exhausted_is_retried_like_unavailable() -> None:
    clock = FakeClock()
    call = _failing(["RESOURCE_EXHAUSTED"], clock)
    assert (
        call_with_retry(
            call, deadline=Deadline(60.0, clock), policy=RetryPolicy(retries=1), sleep=clock.sleep
        )
        == "ok"
    )
    assert len(clock.sleeps) == 1


def test_never_sleeps_past_deadline() -> None:
    clock = FakeClock()
    call = _failing(["UNAVAILABLE"] * 10, clock, cost=0.25)
    policy = RetryPolicy(retries=10, base_delay=0.25, max_delay=10.0)
    with pytest.raises(Unavailable):
        call_with_retry(
            call, deadline=Deadline(1.0, clock), policy=policy, sleep=clock.sleep, rand=lambda: 1.0
        )
    # attempt 0.25s, sleep 0.25s, attempt 0.25s: 0.25s left, so the 0.5s sleep is skipped.
    assert clock.sleeps == [0.25]
    assert clock.now - 100.0 == 0.75
    assert call.timeouts == [1.0, 0.5]  # type: ignore[attr-defined]


def test_expired_deadline_sends_nothing() -> None:
    clock = FakeClock()
    deadline = Deadline(1.0, clock)
    clock.now += 1.0
    call = _failing([], clock)
    with pytest.raises(DeadlineExceeded, match="deadline of 1s exceeded"):
        call_with_retry(call, deadline=deadline, policy=RetryPolicy(), sleep=clock.sleep)
    assert call.timeouts == []  # type: ignore[attr-defined]


def test_async_retry_matches_sync() -> None:
    clock = FakeClock()
    failing = _failing(["UNAVAILABLE", "UNAVAILABLE"], clock)

    async def call(*, client_timeout: float) -> str:
        return failing(client_timeout=client_timeout)

    policy = RetryPolicy(retries=2, base_delay=0.1, max_delay=10.0)
    result = asyncio.run(
        async_call_with_retry(
            call,
            deadline=Deadline(5.0, clock),
            policy=policy,
            sleep=clock.async_sleep,
            rand=lambda: 1.0,
        )
    )
    assert result == "ok" and clock.sleeps == pytest.approx([0.1, 0.2])


def test_async_maps_errors() -> None:
    clock = FakeClock()
    failing = _failing(["INVALID_ARGUMENT"], clock)

    async def call(*, client_timeout: float) -> str:
        return failing(client_timeout=client_timeout)

    with pytest.raises(InvalidRequest, match="boom"):
        asyncio.run(
            async_call_with_retry(
                call, deadline=Deadline(5.0, clock), policy=RetryPolicy(), sleep=clock.async_sleep
            )
        )


@pytest.mark.parametrize("seconds", [0, -1.0, float("inf"), float("nan"), True, "5"])
def test_bad_timeouts(seconds: object) -> None:
    assert not valid_timeout(seconds)
    with pytest.raises(InvalidRequest, match="timeout must be a positive number of seconds"):
        Deadline(seconds)  # type: ignore[arg-type]


def test_bad_retries() -> None:
    with pytest.raises(ValueError, match="retries must be a non-negative int"):
        RetryPolicy(retries=-1)
