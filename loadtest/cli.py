"""The ``vitrine loadtest`` and ``vitrine bench`` subcommands (wired by ``vitrine.cli``).

Only argparse and the model registry are imported here, so ``vitrine --help`` works on the base
install; Locust, onnxruntime, torch and the server load when a command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vitrine.errors import ConfigError
from vitrine.registry import SPECS

__all__ = ["add_loadtest_commands", "cmd_bench", "cmd_loadtest"]

_LOADTEST_EPILOG = """\
examples:
  vitrine loadtest --users 16 --duration 60          embedded server, storefront mix
  vitrine loadtest --address vitrine.internal:8001 --max-p95 superres_x4_pipeline=300
  vitrine loadtest --thresholds slo.toml --mix my-mix.toml
  vitrine loadtest --web                             Locust's web UI on 127.0.0.1:8089
"""

_BENCH_EPILOG = """\
examples:
  vitrine bench                                      defaults: a few minutes on 2 cores
  vitrine bench --duration 10 --label "after: 1 ORT thread per instance"
  vitrine bench --models superres_x2 --sizes 128 256 --concurrency 1 4 16
  vitrine bench --target gpu-torch --address 127.0.0.1:8001 --repository build/gpu-torch
  vitrine bench --large                              12 and 24 MP photos: about an hour
  vitrine bench --large --models enhance remove_background --memory-ceiling 8
"""


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def cmd_loadtest(args: argparse.Namespace) -> int:
    """Handler of ``vitrine loadtest``."""
    from vitrine.loadtest.runner import run_loadtest
    from vitrine.loadtest.thresholds import (
        Thresholds,
        load_thresholds,
        parse_latency_limits,
    )

    base = load_thresholds(args.thresholds) if args.thresholds else Thresholds()
    explicit = [key for key in ("max_failure_ratio", "min_rps") if getattr(args, key) is not None]
    cli = Thresholds(
        max_failure_ratio=args.max_failure_ratio,
        min_rps=args.min_rps,
        p95_ms=parse_latency_limits(args.max_p95),
        p99_ms=parse_latency_limits(args.max_p99),
    )
    return run_loadtest(
        address=args.address,
        metrics_url=args.metrics_url,
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration_s=args.duration,
        mix=args.mix,
        out=args.out,
        thresholds=base.merged(cli, explicit=explicit),
        timeout_s=args.timeout,
        retries=args.retries,
        web=args.web,
    )


_BENCH_OUT = {
    "cpu": Path("reports") / "bench",
    "gpu": Path("reports") / "bench-gpu",
    "gpu-torch": Path("reports") / "gpu",
}
_CONCURRENCY = {"cpu": (1, 4, 16), "gpu-torch": (1, 16)}
_DURATION_S = {"cpu": 2.0, "gpu": 3.0, "gpu-torch": 3.0}


def _large_bench(args: argparse.Namespace) -> int:
    from vitrine.loadtest.bench_large import LargeBenchConfig, run_large_bench

    defaults = LargeBenchConfig()
    config = LargeBenchConfig(
        models=tuple(args.models or ()),
        concurrency=tuple(args.concurrency or defaults.concurrency),
        largest_concurrency=tuple(args.largest_concurrency or defaults.largest_concurrency),
        requests_per_worker=args.requests or defaults.requests_per_worker,
        systems=tuple(args.systems or defaults.systems),
        timeout_s=args.timeout or defaults.timeout_s,
        memory_ceiling_gib=args.memory_ceiling if args.memory_ceiling else None,
        output_format=args.output_format,
        out=args.out or defaults.out,
        label=args.label,
        address=args.address,
        repository=args.repository,
    )
    return run_large_bench(config)


def cmd_bench(args: argparse.Namespace) -> int:
    """Handler of ``vitrine bench``."""
    if args.large:
        if args.target != "cpu" or args.sizes:
            raise ConfigError(
                "--large takes no --sizes (its photos are 12 and 24 MP) and no --target"
            )
        return _large_bench(args)
    out = args.out or _BENCH_OUT[args.target]
    duration = args.duration or _DURATION_S[args.target]
    if args.target == "gpu":
        from vitrine.loadtest.gpu_bench import GpuBenchConfig, run_gpu_bench

        gpu = GpuBenchConfig(
            models=tuple(args.models or ()),
            sizes=tuple(args.sizes or ()),
            duration_s=duration,
            out=out,
            label=args.label,
        )
        return run_gpu_bench(gpu)
    concurrency = tuple(args.concurrency or _CONCURRENCY[args.target])
    if args.target == "gpu-torch":
        from vitrine.loadtest.gpu_torch_bench import GpuTorchBenchConfig, run_gpu_torch_bench

        chosen: dict[str, Any] = {
            "models": tuple(args.models or ()),
            "sizes": tuple(args.sizes or ()),
            "processes": args.processes,
        }
        run_gpu_torch_bench(
            GpuTorchBenchConfig(
                **{key: value for key, value in chosen.items() if value},
                concurrency=concurrency,
                duration_s=duration,
                warmup=max(args.warmup, 1),
                out=out,
                label=args.label,
                address=args.address,
                repository=args.repository,
            )
        )
        return 0
    from vitrine.loadtest.bench import BenchConfig, run_bench

    options: dict[str, Any] = {
        "models": tuple(args.models or ()),
        "sizes": tuple(args.sizes or ()),
        "concurrency": concurrency,
        "duration_s": duration,
        "max_requests": args.requests,
        "warmup": args.warmup,
        "systems": tuple(args.systems or ("limit", "raw", "pipeline", "peer")),
        "limit_threads": tuple(args.limit_threads),
        "output_format": args.output_format,
        "out": out,
        "label": args.label,
        "address": args.address,
        "repository": args.repository,
    }
    return run_bench(BenchConfig(**options))


def add_loadtest_commands(subparsers: Any) -> None:
    """Add ``loadtest`` and ``bench`` to ``vitrine``'s subparsers (handler in ``handler``)."""
    text = "load-test a server with Locust (storefront mix); exit 1 when a threshold breaks"
    loadtest = subparsers.add_parser(
        "loadtest",
        help=text,
        description=text,
        epilog=_LOADTEST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    loadtest.set_defaults(handler=cmd_loadtest)
    loadtest.add_argument(
        "--address", help="gRPC host:port of the server; default: start the embedded server"
    )
    loadtest.add_argument(
        "--metrics-url", help="Triton metrics URL; default http://<address host>:8002/metrics"
    )
    loadtest.add_argument("--users", type=_positive_int, default=16, help="default 16")
    loadtest.add_argument(
        "--spawn-rate", type=_positive_float, help="users started per second; default all at once"
    )
    loadtest.add_argument(
        "--duration", type=_positive_float, default=60.0, help="seconds (default 60)"
    )
    loadtest.add_argument(
        "--mix", type=Path, help="traffic-mix TOML; default loadtest/mixes/storefront.toml"
    )
    loadtest.add_argument("--out", type=Path, help="report folder; default reports/loadtest/<time>")
    loadtest.add_argument(
        "--timeout", type=_positive_float, default=10.0, help="deadline per call, s (default 10)"
    )
    loadtest.add_argument(
        "--retries", type=int, default=0, help="client retries on UNAVAILABLE (default 0)"
    )
    loadtest.add_argument("--thresholds", type=Path, help="thresholds TOML (see --help epilog)")
    loadtest.add_argument(
        "--max-failure-ratio", type=float, help="failed/all per request name (default 0)"
    )
    loadtest.add_argument("--min-rps", type=float, help="minimum overall requests per second")
    loadtest.add_argument(
        "--max-p95",
        action="append",
        default=[],
        metavar="[NAME=]MS",
        help="p95 limit in ms, for every request name or NAME; repeatable",
    )
    loadtest.add_argument(
        "--max-p99", action="append", default=[], metavar="[NAME=]MS", help="as --max-p95"
    )
    loadtest.add_argument(
        "--web", action="store_true", help="open Locust's web UI instead of a headless run"
    )

    text = "benchmark onnxruntime (limit), Vitrine and a naive FastAPI peer side by side"
    bench = subparsers.add_parser(
        "bench",
        help=text,
        description=text,
        epilog=_BENCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.set_defaults(handler=cmd_bench)
    bench.add_argument(
        "--target",
        choices=("cpu", "gpu", "gpu-torch"),
        default="cpu",
        help="cpu: limit vs Vitrine vs peer (default); gpu: PyTorch eager vs onnxruntime "
        "CUDA vs TensorRT FP16 per model, bucket and batch size (needs a GPU node); "
        "gpu-torch: the served TorchScript artifact in-process (limit) vs the raw path and "
        "the pipelines of a gpu-torch server, with each pipeline step's share",
    )
    bench.add_argument(
        "--models", nargs="+", choices=sorted(SPECS), help="default: every benchmarkable spec"
    )
    bench.add_argument(
        "--sizes",
        nargs="+",
        type=_positive_int,
        help="editors' square input sides (a generator runs at the side it generates); "
        "default per spec",
    )
    bench.add_argument(
        "--large",
        action="store_true",
        help="editors on 12 and 24 MP photos: the pipeline against the naive peer, latency, "
        "throughput and peak memory (reports/bench-large)",
    )
    bench.add_argument(
        "--concurrency",
        nargs="+",
        type=_positive_int,
        help="default 1 4 16 (gpu-torch: 1 16; --large: 1 4, on all but the largest photo)",
    )
    bench.add_argument(
        "--largest-concurrency",
        nargs="+",
        type=_positive_int,
        help="--large: levels on each editor's largest photo (default 1; 1 4 runs about "
        "twice as long)",
    )
    bench.add_argument(
        "--duration", type=_positive_float, help="seconds per level (default 2; GPU targets 3)"
    )
    bench.add_argument(
        "--processes",
        type=_positive_int,
        help="gpu-torch: client processes driving the top concurrency (default: half the "
        "cores, at most 8)",
    )
    bench.add_argument(
        "--requests",
        type=_positive_int,
        help="at most this many per level (--large: photos per worker, default 1)",
    )
    bench.add_argument("--warmup", type=int, default=1, help="warm-up calls per worker")
    bench.add_argument(
        "--systems",
        nargs="+",
        choices=("limit", "raw", "pipeline", "peer"),
        help="default: all four (--large: pipeline peer)",
    )
    bench.add_argument(
        "--timeout",
        type=_positive_float,
        help="--large: deadline of each call in seconds (default 1800)",
    )
    bench.add_argument(
        "--memory-ceiling",
        type=float,
        default=12.0,
        metavar="GIB",
        help="--large: a system whose processes hold more is killed and its cell reads "
        "'out of memory' (default 12; 0: none)",
    )
    bench.add_argument(
        "--limit-threads",
        nargs="+",
        type=int,
        default=[1, 0],
        help="onnxruntime intra-op threads tried for the limit (0: all cores); best is kept",
    )
    bench.add_argument("--output-format", choices=("png", "jpeg", "webp"), default="png")
    bench.add_argument(
        "--out",
        type=Path,
        help="default reports/bench (gpu: reports/bench-gpu, gpu-torch: reports/gpu)",
    )
    bench.add_argument("--label", default="", help="names this run in the JSON history")
    bench.add_argument("--address", help="gRPC host:port of a running server")
    bench.add_argument(
        "--repository",
        type=Path,
        help="serve this built repository (gpu-torch: the one --address serves)",
    )
