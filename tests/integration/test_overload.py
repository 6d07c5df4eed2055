"""Past capacity, bounded queues reject at once with a typed error; accepted work still succeeds."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from vitrine.client import AsyncVitrineClient, Unavailable, VitrineClient
from vitrine.serving.embedded import EmbeddedTriton

pytestmark = pytest.mark.integration

BURST = 240  # well past max_queue_size (64) of the core model


def test_overload_fails_fast_and_accepted_requests_succeed(vitrine_server: EmbeddedTriton) -> None:
    pixels = np.zeros((128, 128, 3), np.uint8)

    async def one(client: AsyncVitrineClient) -> tuple[str, float]:
        started = time.perf_counter()
        try:
            result = await client.super_resolve_array(pixels, scale=2)
        except Unavailable as error:
            assert "queue" in str(error)
            return "rejected", time.perf_counter() - started
        assert result.array.shape == (256, 256, 3)
        return "ok", time.perf_counter() - started

    async def burst() -> list[tuple[str, float]]:
        async with AsyncVitrineClient(vitrine_server.grpc_url, timeout=60.0, retries=0) as client:
            return await asyncio.gather(*(one(client) for _ in range(BURST)))

    outcomes = asyncio.run(burst())
    rejected = sorted(seconds for kind, seconds in outcomes if kind == "rejected")
    accepted = sorted(seconds for kind, seconds in outcomes if kind == "ok")
    assert rejected and accepted
    p99 = rejected[int(0.99 * (len(rejected) - 1))]
    median_accepted = accepted[len(accepted) // 2]
    print(
        f"\noverload: {len(accepted)} accepted (median {median_accepted * 1000:.0f} ms), "
        f"{len(rejected)} rejected (p99 {p99 * 1000:.0f} ms)"
    )
    # Fail fast means a rejection does not wait behind the queue: it is answered before the
    # typical accepted request, whatever the machine's speed (the figures are printed; the
    # client's 60 s deadline is the hang guard).
    assert p99 < median_accepted, "rejections waited like queued work"
    with VitrineClient(vitrine_server.grpc_url) as client:
        assert client.super_resolve_array(pixels, scale=2).array.shape == (256, 256, 3)
