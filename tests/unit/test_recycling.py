"""Which steps get fresh instances after a large photo grew them."""

from __future__ import annotations

from vitrine.serving.recycling import GrowthTracker
from vitrine.serving.stubs import Stub

MIB = 1 << 20


def _stub(pid: int, model: str, rss_mib: int, ticks: int) -> Stub:
    return Stub(pid, model, f"{model}_0_{pid}", "S", rss_mib * MIB, ticks)


def test_a_grown_step_is_recycled_once_all_its_stubs_are_idle() -> None:
    tracker = GrowthTracker(grown_by=32 * MIB, idle_seconds=2.0)
    fresh = [_stub(1, "decode", 80, 10), _stub(2, "decode", 82, 10), _stub(3, "core", 200, 5)]
    assert tracker.observe(fresh, now=0.0) == ()
    assert tracker.observe(fresh, now=2.5) == ()  # idle, at their fresh size
    busy = [_stub(1, "decode", 180, 50), _stub(2, "decode", 82, 10), _stub(3, "core", 260, 9)]
    assert tracker.observe(busy, now=3.0) == ()  # decode 1 and core working: not idle
    assert tracker.observe(busy, now=4.0) == ()  # idle for 1 s only
    assert tracker.observe(busy, now=5.5) == ("core", "decode")  # both grown, idle 2.5 s


def test_growth_below_the_threshold_is_left_alone() -> None:
    tracker = GrowthTracker(grown_by=32 * MIB, idle_seconds=1.0)
    assert tracker.observe([_stub(1, "encode", 90, 1)], now=0.0) == ()
    assert tracker.observe([_stub(1, "encode", 90, 1)], now=2.0) == ()
    assert tracker.observe([_stub(1, "encode", 120, 1)], now=3.0) == ()  # +30 MiB


def test_new_instances_are_measured_afresh() -> None:
    tracker = GrowthTracker(grown_by=32 * MIB, idle_seconds=1.0)
    tracker.observe([_stub(1, "encode", 90, 1)], now=0.0)
    tracker.observe([_stub(1, "encode", 90, 1)], now=2.0)
    assert tracker.observe([_stub(1, "encode", 300, 1)], now=3.0) == ("encode",)
    tracker.forget("encode")
    replaced = [_stub(7, "encode", 95, 1)]  # a new process, its pool fresh again
    assert tracker.observe(replaced, now=3.5) == ()
    assert tracker.observe(replaced, now=5.0) == ()
    assert tracker.observe([_stub(7, "encode", 140, 1)], now=6.5) == ("encode",)
