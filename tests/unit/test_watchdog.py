"""The watchdog's pure parts."""

from __future__ import annotations

from vitrine.serving.watchdog import _dead_stubs


def test_dead_stub_names_come_from_triton_errors() -> None:
    errors = [
        "[StatusCode.INTERNAL] in ensemble 'superres_x2_pipeline', Stub process 'superres_x2_0_0' is not healthy.",
        "Stub process 'superres_x4_decode_1_0' is not healthy",
        "[StatusCode.UNAVAILABLE] failed to connect to all addresses",
    ]
    assert _dead_stubs(errors) == ("superres_x2", "superres_x4_decode")


def test_no_named_stub_means_probe_the_steps() -> None:
    assert _dead_stubs(["[StatusCode.DEADLINE_EXCEEDED] Deadline Exceeded"]) == ()
