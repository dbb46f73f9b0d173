"""Translation quality of each method on its built-in task at a fixed training budget.

For every method in ``ENTRIES``: train on its built-in task (a fixed number of steps, set per
budget: ``cpu`` for minutes on two CPU cores, ``gpu`` for reference widths and more steps), translate
the held-out edge maps of ``fashion-edges`` (testA), and score the outputs against the true items
(testB, same file names): FID and KID (TF-FID Inception-v3), LPIPS, PSNR, SSIM and L1 to the paired
ground truth, and top-1/top-5 of the Fashion-MNIST classifier against each item's true class (read
from its file name). Two baseline rows bound the table: "input unchanged" (the edge map itself) and
"ground truth" (the truth against itself: FID's floor, the classifier's own accuracy).

    python bench/quality.py --budget cpu --json runs/bench-quality/cpu.json
    python bench/quality.py --budget gpu --device cuda
    python bench/quality.py --methods pix2pix --reuse        # evaluate existing run folders again

A method added later (deepsim, funit, twostep) is one more ``Entry`` in ``ENTRIES``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import pixmorph
from pixmorph.config import DataConfig, RunConfig, TrainConfig
from pixmorph.data.builtin import TASKS, prepare_task
from pixmorph.metrics.classify import default_classifier_dir, train_classifier
from pixmorph.metrics.evaluate import Evaluator, format_table, to_json, translate_folder
from pixmorph.train import checkpoint as ckpt
from pixmorph.train.loop import resolve_device, train


@dataclass(frozen=True)
class Budget:
    steps: int
    batch_size: int
    model: dict[str, Any]
    n_test: int = 500  # held-out items scored


@dataclass(frozen=True)
class Entry:
    method: str
    task: str  # built-in task it trains on
    budgets: dict[str, Budget]
    eval_task: str = "fashion-edges"  # where the test inputs and their ground truth are
    inputs: str = "testA"
    truth: str = "testB"
    direction: str = "AtoB"
    channels: int = 1  # Fashion-MNIST is grayscale
    data_options: dict[str, Any] = field(default_factory=dict)


GRAY = {"in_channels": 1, "out_channels": 1}
ENTRIES: dict[str, Entry] = {
    "cyclegan": Entry("cyclegan", "fashion-edges", {
        # The demo's generator sized to 32 px; ~375 steps is one pass over the 3,000 items.
        "cpu": Budget(375, 8, {"ngf": 32, "ndf": 32, "n_blocks": 6, "d_layers": 2, **GRAY}),
        # Reference widths (ngf/ndf 64, 6 blocks as the paper uses below 256 px), ten passes.
        "gpu": Budget(3750, 8, {"ngf": 64, "ndf": 64, "n_blocks": 6, "d_layers": 3, **GRAY}, n_test=2000),
    }),
    "pix2pix": Entry("pix2pix", "fashion-edges-paired", {
        "cpu": Budget(375, 8, {"ngf": 32, "ndf": 32, "num_downs": 5, **GRAY}),
        "gpu": Budget(3750, 8, {"ngf": 64, "ndf": 64, "num_downs": 5, "d_layers": 3, **GRAY}, n_test=2000),
    }),
}


def run_config(entry: Entry, budget: Budget, out: Path, device: str, workers: int) -> RunConfig:
    n_train = TASKS[entry.task].n_train
    # Half the steps at the full learning rate, half decaying linearly to 0, ending at exactly budget.steps.
    epochs = budget.steps / 2 / max(1, n_train // budget.batch_size)
    return RunConfig(
        method=entry.method, model=dict(budget.model),
        data=DataConfig(root=entry.task, channels=entry.channels, num_workers=workers, options=dict(entry.data_options)),
        train=TrainConfig(out=str(out), batch_size=budget.batch_size, epochs=epochs, epochs_decay=epochs,
                          max_steps=budget.steps, device=device, log_every=50, sample_every=budget.steps,
                          checkpoint_every=budget.steps, tensorboard=False, overwrite=True))


def trained_steps(run_dir: Path) -> int:
    try:
        return int(ckpt.read_config(ckpt.find_checkpoint(run_dir)).get("step", 0))
    except ckpt.CheckpointError:
        return -1


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "pixmorph": pixmorph.__version__, "python": platform.python_version()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--budget", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--methods", default=",".join(ENTRIES), help="comma-separated subset of " + ",".join(ENTRIES))
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="runs/bench-quality", help="run folders and outputs go here")
    p.add_argument("--json", default=None, metavar="FILE", help="default: OUT/quality-BUDGET.json")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU); default: torch's")
    p.add_argument("--workers", type=int, default=1, help="data loading processes while training")
    p.add_argument("--steps", type=int, default=None, help="override the budget's steps (quick checks)")
    p.add_argument("--n-test", type=int, default=None, help="override the budget's number of test items")
    p.add_argument("--reuse", action="store_true", help="keep run folders already trained to the budget")
    p.add_argument("--no-baselines", action="store_true", help="leave out the input-unchanged and ground-truth rows")
    args = p.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.methods if m not in ENTRIES]
    if unknown:
        p.error(f"unknown method(s) {', '.join(unknown)}: known {', '.join(ENTRIES)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python bench/quality.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))

    classifier = default_classifier_dir("fashion")
    if not (classifier / ckpt.WEIGHTS).is_file():
        print(f"training the Fashion-MNIST classifier into {classifier} (once)", flush=True)
        train_classifier("fashion", classifier, device=device)
    evaluator = Evaluator(device=device, classifier=classifier)
    rows: list[dict[str, Any]] = []

    def score(name: str, generated: Path, truth: Path, extra: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small-sample notes: the n_test figure is printed with the table
            result = evaluator(generated, truth, pairs=True, label="auto")
        row = {"method": name, **extra, **result, "eval_seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(format_table([row]).splitlines()[-1], flush=True)

    n_tests = {args.n_test or ENTRIES[m].budgets[args.budget].n_test for m in args.methods}
    eval_roots, used = {}, {}
    for method in args.methods:
        entry = ENTRIES[method]
        budget = entry.budgets[args.budget]
        budget = Budget(args.steps or budget.steps, budget.batch_size, budget.model, args.n_test or budget.n_test)
        eval_root = prepare_task(entry.eval_task, n_test=budget.n_test)
        eval_roots[method], used[method] = eval_root, dict(budget.__dict__)
        run_dir = out / args.budget / method
        t0 = time.perf_counter()
        if args.reuse and trained_steps(run_dir) == budget.steps:
            print(f"{method}: reusing {run_dir} ({budget.steps} steps)", flush=True)
            train_seconds = None
        else:
            print(f"{method}: training {budget.steps} steps of {budget.batch_size} on {entry.task} ({device})",
                  flush=True)
            train(run_config(entry, budget, run_dir, device, args.workers), progress=sys.stderr.isatty())
            train_seconds = round(time.perf_counter() - t0, 1)
        outputs = run_dir / "test_outputs"
        translate_folder(run_dir, eval_root / entry.inputs, outputs, entry.direction, device)
        score(method, outputs, eval_root / entry.truth,
              {"steps": budget.steps, "batch_size": budget.batch_size, "model": budget.model,
               "train_seconds": train_seconds})

    if not args.no_baselines:
        first = ENTRIES[args.methods[0]]
        root = eval_roots[args.methods[0]]
        score("input unchanged", root / first.inputs, root / first.truth, {})
        score("ground truth", root / first.truth, root / first.truth, {})

    n_test = min(n_tests)
    report = {
        "command": command, "budget": args.budget, "device": device, "machine": machine(),
        "n_test": n_test, "eval_task": "fashion-edges testA -> testB",
        "inception": evaluator.inception.description, "lpips_net": evaluator.lpips.name,
        "classifier": {"path": str(classifier), **evaluator.classifier.test_accuracy},
        "budgets": used,
        "rows": rows,
    }
    json_path = Path(args.json) if args.json else out / f"quality-{args.budget}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(to_json(report))

    print()
    print(f"{command}\n{report['machine']['cpu']}, {report['machine']['cores']} cores, torch "
          f"{report['machine']['torch']} ({report['machine']['threads']} threads), device {device}")
    print(f"{n_test} held-out fashion-edges items; FID/KID with {n_test} images per side (below 2048: compare rows "
          f"with each other, not with published FIDs); LPIPS {report['lpips_net']}; classifier top-1 on real test items "
          f"{report['classifier'].get('top1', float('nan')):.3f}")
    print(format_table(rows))
    print(f"\njson: {json_path}")
    return report


if __name__ == "__main__":
    main()
