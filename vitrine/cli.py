"""The `vitrine` command: train, evaluate, export, build, serve and demo every model.

Each subcommand imports its heavy dependencies only when it runs, so the base install
(the client SDK) can still print ``--help`` and list the models.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from vitrine import paths
from vitrine.errors import ConfigError, UserError
from vitrine.export.triton_config import Target
from vitrine.loadtest.cli import add_loadtest_commands
from vitrine.registry import SPECS, get_spec
from vitrine.serving.embedded import EXIT_TIMEOUT_SECONDS
from vitrine.tasks import handler

__all__ = ["main"]

_EXTRAS = {
    "torch": "train",
    "safetensors": "train",
    "skimage": "train",
    "onnx": "export",
    "onnxruntime": "export",
    "pytriton": "serve",
    "locust": "loadtest",
    "fastapi": "loadtest",
    "uvicorn": "loadtest",
}

_EPILOG = """\
a first session:
  vitrine list                              the models and their pipelines
  vitrine demo                              serve every pipeline and call it (main job)
  vitrine train superres_x2 --preset smoke  train for a few steps
  vitrine eval superres_x2                  PSNR/SSIM vs bicubic and Lanczos
  vitrine export superres_x2                ONNX + FP16 + parity report
  vitrine build --target embedded --out build/repository
  vitrine serve                             gRPC on 127.0.0.1:8001 until Ctrl-C
  vitrine loadtest --users 16 --duration 60 Locust storefront mix with thresholds
  vitrine bench                             onnxruntime vs Vitrine vs a naive peer
"""


def _model_argument(parser: argparse.ArgumentParser, *, trained: bool = False) -> None:
    """The model positional; ``trained``: only models with their own training run."""
    names = [name for name, spec in SPECS.items() if not (trained and spec.weights_from)]
    parser.add_argument("model", choices=sorted(names), help="model name from the catalog")


def _weights_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights", type=Path, help="checkpoint (*.safetensors); default: the shipped weights"
    )


def _cmd_list(args: argparse.Namespace) -> int:
    for spec in SPECS.values():
        first = "category=..., color=..." if spec.is_generator else "image"
        routing = "".join(f", {key}={value!r}" for key, value in spec.selector_kwargs.items())
        print(
            f"{spec.name:14} {spec.description}\n"
            f"{'':14} pipeline {spec.pipeline}, client.{spec.client_method}({first}{routing})"
        )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from vitrine.training.trainer import train

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = get_spec(args.model)
    run_dir = args.run_dir or Path("runs") / f"{spec.name}-{args.preset}"
    result = train(
        spec,
        args.preset,
        run_dir=run_dir,
        out_dir=args.out or run_dir,
        resume=not args.restart,
        stop_after=args.stop_after,
        device=args.device,
        workers=args.workers,
        budget_seconds=args.budget_seconds,
    )
    if result is None:
        print(f"paused after {args.stop_after} steps; run again to resume from {run_dir}")
        return 0
    print(f"wrote {result.weights} (+ .json) in {result.seconds:.0f} s")
    for key, value in result.metrics.get("margins", {}).items():
        print(f"  {key}: {value:+.3f}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from vitrine.reporting import COMPARISON_FILE
    from vitrine.training.evaluate import as_rows, evaluate_checkpoint

    spec = get_spec(args.model)
    out_dir = args.out or paths.reports_dir() / spec.name
    report = evaluate_checkpoint(
        spec, args.weights or paths.weights_path(spec.weights_name), out_dir
    )
    columns, rows = as_rows(report)
    table = Table(title=f"{spec.name}: mean over {handler(spec.task).evaluated_on}")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    for key, value in report["margins"].items():
        console.print(f"{key}: {value:+.3f}")
    console.print(f"wrote {out_dir / 'eval.json'} and {out_dir / COMPARISON_FILE}")
    return 0


def _cmd_judge(args: argparse.Namespace) -> int:
    import torch

    from vitrine.training.judge import train_judge

    if args.threads:
        torch.set_num_threads(args.threads)
    result = train_judge(args.out or paths.weights_dir())
    print(f"wrote {result.weights} (+ .json) in {result.seconds:.0f} s")
    for key, value in result.metrics.items():
        print(f"  {key}: {value:.4f}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from vitrine.export.artifacts import ParityError, export_checkpoint

    spec = get_spec(args.model)
    out_dir = args.out or Path("build") / "export" / spec.name
    weights = args.weights or paths.weights_path(spec.weights_name)
    if args.format != "onnx":
        from vitrine.export.tensorrt import run_export_format

        return run_export_format(spec, args.format, weights, out_dir)
    report_path = paths.reports_dir() / spec.name / "parity.json"
    try:
        result = export_checkpoint(spec, weights, out_dir, report_path=report_path)
    except ParityError as error:
        print(f"error: {error} ({report_path})", file=sys.stderr)
        return 1
    for entry in result.report["shapes"]:
        fp32 = entry["onnx_fp32_vs_torch"]
        fp16 = entry.get("onnx_fp16_vs_fp32", {})
        print(
            f"{entry['profile']:>3} {str(entry['shape']):20} fp32 max|err| {fp32['max_abs_error']}"
            f"  fp16 max|err| {fp16.get('max_abs_error', '-')} psnr {_db(fp16.get('psnr_db'))}"
        )
    print(f"wrote {result.onnx}, {result.onnx_fp16} and {report_path}")
    return 0


def _db(value: float | None) -> str:
    return "identical" if value is None else f"{value:.2f} dB"


def _cmd_build(args: argparse.Namespace) -> int:
    from vitrine.export.build import build_target
    from vitrine.export.gpu_torch import Placement
    from vitrine.export.triton_config import Target

    target = Target(args.target)
    if args.device is not None and target is not Target.GPU_TORCH:
        raise ConfigError("--device is for --target gpu-torch only")
    out = build_target(
        target,
        args.out,
        specs=[get_spec(name) for name in args.models] if args.models else None,
        weights_dir=args.weights_dir,
        placement=Placement(device=args.device or "cuda"),
        echo=print,
    )
    print(f"wrote the {args.target} repository to {out}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from vitrine.serving.embedded import ServerTls
    from vitrine.serving.serve import serve

    repository, extra_args = args.repository, []
    if args.target == Target.GPU_TORCH.value:
        from vitrine.serving.gpu_torch import gpu_torch_repository, require_gpu, server_arguments

        gpus = require_gpu()
        repository = repository or gpu_torch_repository(gpus)
        extra_args = server_arguments(gpus)

    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        raise ConfigError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
    tls = ServerTls(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    return serve(
        host=args.host,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        metrics_port=args.metrics_port,
        repository=repository,
        tls=tls,
        probe_interval=None if args.no_watchdog else args.probe_interval,
        exit_timeout=args.exit_timeout,
        extra_args=extra_args,
    )


def _cmd_regenerate(args: argparse.Namespace) -> int:
    from vitrine.regenerate import regenerate

    stale = regenerate(check=args.check)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path}")
    if not stale:
        print("every derived file is up to date")
    return 1 if args.check and stale else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from vitrine.serving.demo import run_demo

    out_dir = run_demo(args.out)
    print(f"demo outputs: {out_dir}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitrine",
        description="Train, export and serve Vitrine's product-image models on Triton.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Callable[[argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    command("list", _cmd_list, "list the models of the catalog")

    train = command("train", _cmd_train, "train a model (resumes from --run-dir)")
    _model_argument(train, trained=True)
    train.add_argument("--preset", default="full", help="preset of training/configs/<model>.toml")
    train.add_argument(
        "--run-dir", type=Path, help="resumable state; default runs/<model>-<preset>"
    )
    train.add_argument("--out", type=Path, help="final checkpoint folder (e.g. weights)")
    train.add_argument("--restart", action="store_true", help="ignore an earlier run's state")
    train.add_argument("--threads", type=int, help="torch intra-op threads")
    train.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="cpu",
        help="cpu (default; reproduces the shipped weights), cuda, or auto (cuda if present)",
    )
    train.add_argument("--stop-after", type=int, help="pause after this many steps (resumable)")
    train.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes making batches (default 0: one thread); the batches are the same",
    )
    train.add_argument(
        "--budget-seconds",
        type=float,
        help="end the run early, with its final checkpoint, after this much training time",
    )

    evaluate = command(
        "eval",
        _cmd_eval,
        "editors: PSNR/SSIM vs classical baselines; generators: judge consistency, FID, diversity",
    )
    _model_argument(evaluate)
    _weights_argument(evaluate)
    evaluate.add_argument("--out", type=Path, help="report folder; default reports/<model>")

    judge = command(
        "judge", _cmd_judge, "train the catalog judge that grades generators (once, shipped)"
    )
    judge.add_argument("--out", type=Path, help="checkpoint folder; default the shipped weights")
    judge.add_argument("--threads", type=int, help="torch intra-op threads")

    export = command("export", _cmd_export, "export ONNX (FP32 + FP16) and check parity")
    _model_argument(export)
    _weights_argument(export)
    export.add_argument("--out", type=Path, help="output folder; default build/export/<model>")
    export.add_argument(
        "--format",
        choices=("onnx", "trt-plan", "trt"),
        default="onnx",
        help="onnx: ONNX FP32+FP16 and parity; trt-plan: TensorRT build plan; "
        "trt: build and gate the engine (GPU node)",
    )

    build = command("build", _cmd_build, "generate a Triton model repository")
    build.add_argument(
        "--target",
        choices=[target.value for target in Target],
        required=True,
        help="gpu: TensorRT (official image); cpu: onnxruntime (official image); embedded: "
        "onnxruntime in the python backend (vitrine serve); gpu-torch: TorchScript on a GPU "
        "without TensorRT, built on the GPU that serves it",
    )
    build.add_argument("--out", type=Path, required=True, help="repository folder (replaced)")
    build.add_argument("--weights-dir", type=Path, help="checkpoints; default the shipped weights")
    build.add_argument(
        "--models", nargs="+", choices=sorted(SPECS), help="only these models (default: all)"
    )
    build.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        help="gpu-torch only: where it is served (default cuda; cpu: FP32 on CPU instances)",
    )

    serve = command("serve", _cmd_serve, "serve the embedded repository with a real Triton server")
    serve.add_argument(
        "--target",
        choices=(Target.EMBEDDED.value, Target.GPU_TORCH.value),
        default=Target.EMBEDDED.value,
        help="embedded: onnxruntime on CPU (default); gpu-torch: TorchScript on this machine's "
        "GPU (refused without one)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    serve.add_argument("--grpc-port", type=int, default=8001)
    serve.add_argument("--http-port", type=int, default=8000)
    serve.add_argument("--metrics-port", type=int, default=8002)
    serve.add_argument("--repository", type=Path, help="serve this built repository as it is")
    serve.add_argument("--tls-cert", type=Path, help="PEM server certificate: gRPC over TLS")
    serve.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    serve.add_argument("--tls-client-ca", type=Path, help="PEM CA: require client certs (mTLS)")
    serve.add_argument(
        "--probe-interval", type=float, default=2.0, help="seconds between watchdog probes"
    )
    serve.add_argument(
        "--exit-timeout",
        type=int,
        default=EXIT_TIMEOUT_SECONDS,
        help="seconds in-flight requests get to finish after SIGTERM (default %(default)s)",
    )
    serve.add_argument(
        "--no-watchdog",
        action="store_true",
        help="no probes, no healing, model control mode none",
    )

    regenerate = command(
        "regenerate",
        _cmd_regenerate,
        "rewrite every file derived from the specs: the gpu model repository, the blocking "
        "client, the Helm model lists, the model cards and the README's results table",
    )
    regenerate.add_argument(
        "--check", action="store_true", help="write nothing; list stale files and exit 1"
    )

    demo = command("demo", _cmd_demo, "serve, call every pipeline, write outputs and a report")
    demo.add_argument("--out", type=Path, help="output folder; default out/demo-<time>")

    add_loadtest_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vitrine`` command."""
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ModuleNotFoundError as error:
        extra = _EXTRAS.get((error.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"error: {error.name} is missing: pip install 'vitrine[{extra}]'", file=sys.stderr)
        return 2
    except UserError as error:  # anything else is a bug: its traceback stays
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
