"""The GPU training run: one command on a GPU node trains the named models at once.

    scripts/gpu_train.sh OUT MODEL...         # on the node; build/gpu-corpus/ carried
    scripts/gpu_train.sh --stage              # a call that only carries an earlier part
    scripts/gpu_train.sh OUT MODEL... --preset gpu_smoke --device cpu   # here, in seconds

1. environment: the GPU, torch, CUDA, cores (as ``scripts/gpu_check.py`` records them);
2. unpack: the corpus bundle of ``make gpu-corpus`` (parts checked against SHA256SUMS): the
   packaged photos (read through ``VITRINE_CORPUS_DIR``) and the wheels a node may lack;
   Vitrine is linked from this checkout beside them;
3. imports: every module training needs, imported by the node's Python, or the run stops
   and names what is missing;
4. train: ``vitrine train MODEL --preset PRESET --device DEVICE`` for every model at once
   on the one GPU, each with its share of the CPU cores as batch workers and its own
   training time budget (``--budget-seconds``: a model that is slower than planned ends
   early with its final checkpoint rather than not at all), all under one deadline;
5. summary: ``OUT/summary.json`` (per model: exit status, seconds, steps done and planned,
   wall time, file sizes, the evaluation's margins) beside ``OUT/<model>.safetensors``,
   ``.json`` and ``.log`` and ``OUT/train.log``.

Exit status 0 when every model wrote its checkpoint within the limits. Uses the standard
library only: Vitrine runs in the subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpu_check import ROOT, bundle_parts, environment, link_vitrine, stage, unpack

DEADLINE_S = 450.0  # 8 minutes for the whole call, with room to start and copy results back
BUDGET_S = 270.0  # each model's training time; its start-up and final evaluation come on top
SIZE_LIMIT_BYTES = 16 << 20  # a checkpoint or sidecar that can be committed
IMPORTS = ("torch", "numpy", "PIL", "cv2", "skimage", "safetensors", "tqdm", "pywt")


class Run:
    """The results folder and its log."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.started = time.monotonic()
        out.mkdir(parents=True, exist_ok=True)
        self.log = (out / "train.log").open("a", encoding="utf-8")
        self.summary: dict[str, Any] = {}

    def say(self, text: str) -> None:
        line = f"[{time.monotonic() - self.started:6.1f} s] {text}"
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def write(self) -> None:
        self.summary["seconds"] = round(time.monotonic() - self.started, 1)
        (self.out / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")


def missing_imports(python: str, env: dict[str, str]) -> list[str]:
    """The modules of ``IMPORTS`` that ``python`` cannot import in ``env``."""
    code = (
        "import importlib, json\n"
        "missing = []\n"
        f"for name in {list(IMPORTS)!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        missing.append(f'{name} ({error})')\n"
        "print(json.dumps(missing))\n"
    )
    result = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return [f"the probe failed: {result.stderr.strip()[-500:]}"]
    found: list[str] = json.loads(result.stdout)
    return found


def train_command(
    python: str, model: str, args: argparse.Namespace, workers: int, run_dir: Path
) -> list[str]:
    """The ``vitrine train`` command line of ``model``."""
    return [
        python,
        "-c",
        "import sys; from vitrine.cli import main; sys.exit(main())",
        "train",
        model,
        "--preset",
        args.preset,
        "--device",
        args.device,
        "--workers",
        str(workers),
        "--threads",
        str(args.threads),
        "--budget-seconds",
        str(args.budget),
        "--run-dir",
        str(run_dir),
        "--out",
        str(args.out),
        "--restart",
    ]


def describe(out: Path, model: str, status: object, seconds: float) -> dict[str, Any]:
    """What ``model``'s run left in ``out``: its status, steps, time, sizes and margins."""
    weights, sidecar = out / f"{model}.safetensors", out / f"{model}.json"
    entry: dict[str, Any] = {"status": status, "seconds": round(seconds, 1)}
    if not (weights.is_file() and sidecar.is_file()):
        return entry | {"ok": False, "problem": "no checkpoint written"}
    meta = json.loads(sidecar.read_text())
    sizes = {path.name: path.stat().st_size for path in (weights, sidecar)}
    entry |= {
        "steps": meta["steps"],
        "planned_steps": meta.get("planned_steps", meta["steps"]),
        "wall_seconds": meta.get("wall_seconds"),
        "device": meta.get("device"),
        "gpu": meta.get("gpu"),
        "precision": meta["training"]["precision"],
        "sizes": sizes,
        "margins": meta.get("metrics", {}).get("margins", {}),
    }
    too_large = [name for name, size in sizes.items() if size >= SIZE_LIMIT_BYTES]
    entry["ok"] = status == 0 and not too_large
    if too_large:
        entry["problem"] = f"over 16 MiB: {too_large}"
    return entry


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End ``process`` and its DataLoader workers (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def train_all(args: argparse.Namespace) -> int:
    out: Path = args.out
    run = Run(out)
    work: Path = args.work
    python = args.python
    run.summary = {"models": {}, "preset": args.preset, "device": args.device}
    run.summary["environment"] = environment()
    parts, problems = bundle_parts(args.corpus)
    if problems:
        run.say("corpus: " + "; ".join(problems))
        run.summary["problem"] = "incomplete corpus bundle"
        run.write()
        return 1
    bundle = work / "corpus-bundle"
    run.summary["corpus"] = unpack(parts, bundle)
    site = bundle / "site"
    link_vitrine(site)
    env = os.environ | {
        "PYTHONPATH": str(site),
        "VITRINE_CORPUS_DIR": str(bundle / "corpus"),
        "PYTHONUNBUFFERED": "1",
    }
    missing = missing_imports(python, env)
    if missing:
        run.say("imports: missing " + "; ".join(missing))
        run.summary["problem"] = f"missing modules: {missing}"
        run.write()
        return 1
    cores = os.cpu_count() or 2
    workers = args.workers or max(1, (cores - len(args.models)) // len(args.models))
    run.summary |= {"workers_per_model": workers, "budget_seconds": args.budget}
    processes = {}
    for model in args.models:
        command = train_command(python, model, args, workers, work / "runs" / model)
        run.say(f"{model}: {' '.join(command[3:])}")
        log = (out / f"{model}.log").open("wb")
        processes[model] = (
            subprocess.Popen(
                command,
                cwd=work,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            ),
            time.monotonic(),
        )
    deadline = run.started + args.deadline
    pending = dict(processes)
    while pending:
        for model, (process, started) in list(pending.items()):
            status: object = process.poll()
            if status is None and time.monotonic() < deadline:
                continue
            if status is None:
                _stop(process)
                status = "deadline"
            del pending[model]
            entry = describe(out, model, status, time.monotonic() - started)
            run.summary["models"][model] = entry
            run.say(f"{model}: {'ok' if entry['ok'] else 'FAILED'} {json.dumps(entry)}")
            run.write()
        time.sleep(1.0)
    passed = all(entry["ok"] for entry in run.summary["models"].values())
    run.summary["passed"] = passed
    run.write()
    run.say(f"{'passed' if passed else 'FAILED'}; results in {out}")
    return 0 if passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, help="results folder")
    parser.add_argument("models", nargs="*", help="models to train (e.g. denoise superres_x2)")
    parser.add_argument("--stage", action="store_true", help="only check carried parts")
    parser.add_argument("--preset", default="gpu", help="config preset (gpu_smoke: seconds)")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu", "auto"))
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="training s a model")
    parser.add_argument("--deadline", type=float, default=DEADLINE_S, help="s for everything")
    parser.add_argument("--workers", type=int, help="batch workers a model (default: cores)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads a model")
    parser.add_argument("--corpus", type=Path, default=ROOT / "build" / "gpu-corpus")
    parser.add_argument("--work", type=Path, default=Path("/tmp/vitrine-gpu-train"))
    parser.add_argument("--python", default=sys.executable, help="the Python that has torch")
    args = parser.parse_args(argv)
    if args.stage:
        return stage(args.corpus)
    if args.out is None or not args.models:
        parser.error("name the results folder (OUT) and the models, or pass --stage")
    args.out, args.corpus, args.work = (p.resolve() for p in (args.out, args.corpus, args.work))
    return train_all(args)


if __name__ == "__main__":
    raise SystemExit(main())
