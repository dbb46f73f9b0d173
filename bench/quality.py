"""Translation quality of each method on its built-in task at a fixed training budget.

Each row of the table is one small function in ``ROWS`` (decorated with ``@row``): it trains its
method on its built-in task for the budget's fixed number of steps (``cpu``: minutes on two CPU
cores; ``gpu``: reference widths, more steps), translates held-out real inputs, and says what to
score them against. The scoring is the same for every row: FID and KID (TF-FID Inception-v3)
against the real target images, and, where the row has them, LPIPS, PSNR, SSIM and L1 against
paired ground truth and top-1/top-5 of the Fashion-MNIST classifier against the class each output
should show. Baseline rows bound each task: for fashion-edges "input unchanged" (the edge maps themselves)
and "ground truth" (the true items against themselves: FID's floor, the classifier's own accuracy); for
glyphs the content image unchanged; for DeepSIM the training photo itself, whatever the edit.

    python bench/quality.py --budget cpu
    python bench/quality.py --budget gpu --device cuda
    python bench/quality.py --methods pix2pix --reuse        # score existing run folders again

Adding a method is one more ``@row`` function. The rows score different tasks: cyclegan, pix2pix and the
two baselines the held-out fashion-edges items; funit 5-shot episodes on the glyphs task's unseen fonts
(against the true glyphs); deepsim held-out views of its one training photo (against those views).
Compare rows of the same task; the two fashion-edges baselines are scored only when cyclegan or pix2pix is.
``twostep`` has a row (sneakers translated to boots) but stays out of the default table until its outputs at
this budget are images: ``--methods twostep`` runs it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pixmorph  # before torch: it sets a short OpenMP spin (GOMP_SPINCOUNT, see pixmorph/__init__.py)
import torch
from PIL import Image

from pixmorph.config import DataConfig, RunConfig, TrainConfig
from pixmorph.data.builtin import TASKS, prepare_task
from pixmorph.metrics.classify import default_classifier_dir, train_classifier
from pixmorph.metrics.evaluator import Evaluator, format_table, to_json, translate_folder
from pixmorph.train import checkpoint as ckpt
from pixmorph.train.loop import resolve_device, train

N_TEST = {"cpu": 200, "gpu": 2000}  # held-out items scored per row
GRAY = {"in_channels": 1, "out_channels": 1}  # Fashion-MNIST is grayscale


@dataclass
class Bench:
    """What a row function gets: the budget, where to write, and helpers to train and translate."""

    budget: str
    device: str
    out: Path
    n_test: int
    steps_override: int | None = None
    workers: int = 1
    reuse: bool = False

    def pick(self, cpu: Any, gpu: Any) -> Any:
        return cpu if self.budget == "cpu" else gpu

    def train(self, method: str, task: str, model: dict[str, Any], steps: int, batch_size: int,
              data_options: dict[str, Any] | None = None, constant_lr: bool = False) -> tuple[Path, dict[str, Any]]:
        """Train ``method`` on built-in ``task`` for ``steps`` (half at the full learning rate, half decaying
        linearly to 0, unless ``constant_lr``); returns the run folder and what was trained, for the JSON."""
        steps = self.steps_override or steps
        run_dir = self.out / self.budget / method
        info = {"task": task, "steps": steps, "batch_size": batch_size, "model": model}
        if self.reuse and _trained_steps(run_dir) == steps:
            print(f"{method}: reusing {run_dir} ({steps} steps)", flush=True)
            return run_dir, {**info, "train_seconds": None}
        epochs = steps / 2 / max(1, TASKS[task].n_train // batch_size)
        cfg = RunConfig(
            method=method, model=dict(model),
            data=DataConfig(root=task, channels=1, num_workers=self.workers, options=dict(data_options or {})),
            train=TrainConfig(out=str(run_dir), batch_size=batch_size, epochs=epochs, epochs_decay=epochs,
                              lr_policy="constant" if constant_lr else "linear", max_steps=steps, device=self.device, log_every=50, sample_every=steps,
                              checkpoint_every=steps, tensorboard=False, overwrite=True))
        print(f"{method}: training {steps} steps of {batch_size} on {task} ({self.device})", flush=True)
        t0 = time.perf_counter()
        train(cfg, progress=sys.stderr.isatty())
        return run_dir, {**info, "train_seconds": round(time.perf_counter() - t0, 1)}

    def translate(self, run_dir: Path, inputs: Path, direction: str = "AtoB") -> Path:
        return translate_folder(run_dir, inputs, run_dir / "test_outputs", direction, self.device)

    def edges_test(self) -> Path:
        """fashion-edges with ``n_test`` held-out items: testA edge maps, testB the true items, same names."""
        return prepare_task("fashion-edges", n_test=self.n_test)


@dataclass
class Scored:
    """A row's outputs and what to score them against."""

    generated: Path
    reference: Path  # real target images (FID/KID), and ground truth by file name when ``pairs``
    pairs: bool = False
    label: str | None = None  # target class for the classifier: a class name, or "auto" (from file names)
    info: dict[str, Any] = field(default_factory=dict)
    title: str | None = None  # the row's name in the table (default: the method's)
    baselines: dict[str, "Scored"] = field(default_factory=dict)  # rows of this task's baselines, scored next


ROWS: dict[str, Callable[[Bench], Scored]] = {}
DEFAULT_ROWS: list[str] = []  # those run without --methods


def row(name: str, default: bool = True) -> Callable[[Callable[[Bench], Scored]], Callable[[Bench], Scored]]:
    """Register a row; ``default=False`` keeps it out of the table until asked for with --methods."""
    def register(fn: Callable[[Bench], Scored]) -> Callable[[Bench], Scored]:
        ROWS[name] = fn
        if default:
            DEFAULT_ROWS.append(name)
        return fn

    return register


@row("cyclegan")
def cyclegan(b: Bench) -> Scored:
    """Unpaired edges -> items. CPU: the demo's generator sized to 32 px; GPU: reference widths (ngf/ndf 64,
    6 blocks as the paper uses below 256 px), ten passes over the 3,000 items."""
    model = b.pick({"ngf": 32, "ndf": 32, "n_blocks": 6, "d_layers": 2, **GRAY},
                   {"ngf": 64, "ndf": 64, "n_blocks": 6, "d_layers": 3, **GRAY})
    run_dir, info = b.train("cyclegan", "fashion-edges", model, b.pick(150, 3750), batch_size=8)
    root = b.edges_test()
    return Scored(b.translate(run_dir, root / "testA"), root / "testB", pairs=True, label="auto", info=info)


@row("pix2pix")
def pix2pix(b: Bench) -> Scored:
    """Paired edges -> items (the supervised reference), scored on the same held-out items as CycleGAN."""
    model = b.pick({"ngf": 32, "ndf": 32, "num_downs": 5, **GRAY},
                   {"ngf": 64, "ndf": 64, "num_downs": 5, "d_layers": 3, **GRAY})
    run_dir, info = b.train("pix2pix", "fashion-edges-paired", model, b.pick(375, 3750), batch_size=8)
    root = b.edges_test()
    return Scored(b.translate(run_dir, root / "testA"), root / "testB", pairs=True, label="auto", info=info)


@row("twostep", default=False)  # runs, but at this budget its outputs were noise (2026-11-23): not in the table yet
def twostep(b: Bench) -> Scored:
    """Class-conditional: held-out sneakers of fashion-classes translated to ankle boots, scored against the
    real held-out boots (FID/KID) and by the classifier (do they look like boots). No paired truth."""
    from pixmorph.data.builtin import FASHION_CLASSES

    steps1, steps2 = b.pick((600, 300), (20000, 10000))
    model = {"class_names": sorted(c.slug for c in FASHION_CLASSES), "channels": 1, "image_size": 32,
             "step1_steps": steps1, "step2_steps": steps2, **b.pick({"ngf": 32, "ndf": 32}, {"ngf": 64, "ndf": 64})}
    run_dir, info = b.train("twostep", "fashion-classes", model, steps1 + steps2, batch_size=64, constant_lr=True)
    root = prepare_task("fashion-classes", n_test=b.n_test)
    return Scored(b.translate(run_dir, root / "test" / "sneaker", "to:boot"), root / "test" / "boot", label="boot", info=info,
                  title="twostep (sneaker->boot)")


@row("funit")
def funit(b: Bench) -> Scored:
    """Few-shot: 5-shot episodes on the glyphs task's held-out fonts (character c of a source font re-rendered
    in an unseen font t from 5 other characters of t), scored against the true glyph of c in t. The model and
    learning rates are bench/funit_fewshot.py's CPU-sized ones; the GPU budget takes the paper's widths."""
    from funit_fewshot import MODEL  # bench/ is on sys.path when this file runs as a script

    from pixmorph.data.fewshot_eval import make_episodes
    from pixmorph.data.glyphs import load_glyphs, prepare_glyphs
    from pixmorph.fewshot import load_fewshot
    from pixmorph.images import to_pil

    model = b.pick(dict(MODEL), {**MODEL, "nf": 64, "nf_mlp": 256, "latent_dim": 64, "n_res_blocks": 2,
                                  "n_down_content": 3, "n_down_class": 4, "nf_dis": 64, "n_res_blocks_dis": 10,
                                  "lr_gen": 1e-4, "lr_dis": 1e-4, "r_w": 0.1})
    run_dir, info = b.train("funit", "glyphs", model, b.pick(600, 20000), batch_size=b.pick(16, 64), constant_lr=True)
    root = prepare_glyphs()
    source, _, _ = load_glyphs(root, "train")
    target, _, _ = load_glyphs(root, "test")
    episodes = make_episodes(source, target, 5, per_font=max(2, b.n_test // len(target)), seed=5)
    generator = load_fewshot(run_dir, device=b.device, precision="fp32").generator
    with torch.no_grad():
        outputs = torch.cat([generator(episodes.content[i : i + 64].to(b.device),
                                       episodes.class_images[i : i + 64].to(b.device)).cpu()
                             for i in range(0, len(episodes.content), 64)])
    generated, truth, content = run_dir / "test_outputs", run_dir / "test_truth", run_dir / "test_content"
    for folder, images in ((generated, outputs), (truth, episodes.truth), (content, episodes.content)):
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            to_pil(image).save(folder / f"{i:04d}.png")
    return Scored(generated, truth, pairs=True, info=info, title="funit (glyphs, 5-shot, unseen fonts)",
                  baselines={"glyphs: content unchanged": Scored(content, truth, pairs=True)})


@row("deepsim")
def deepsim(b: Bench) -> Scored:
    """Single image: trained on scikit-image's astronaut and its Canny edges (the ablation's protocol in
    bench/deepsim_ablation.py), then rendered from the edges of held-out TPS-warped and zoomed views of the
    photo, scored against those views."""
    from deepsim_ablation import CPU_MODEL, held_out_views, train_run
    from skimage import data as skdata

    from pixmorph.data import primitives as P
    from pixmorph.images import to_pil

    size, steps = b.pick(64, 256), b.steps_override or b.pick(300, 8000)
    run_dir = b.out / b.budget / "deepsim"
    photo = skdata.astronaut()  # 512 x 512 RGB
    run_dir.mkdir(parents=True, exist_ok=True)
    train_image = b.out / b.budget / "astronaut.png"
    Image.fromarray(photo).resize((size, size), Image.Resampling.LANCZOS).save(train_image)
    model = b.pick(dict(CPU_MODEL), {})
    info = {"task": f"astronaut {size}px, Canny edges", "steps": steps, "batch_size": 1, "model": model}
    if not (b.reuse and _trained_steps(run_dir) == steps):
        print(f"deepsim: training {steps} steps on astronaut at {size}px ({b.device})", flush=True)
        t0 = time.perf_counter()
        train_run(train_image, "auto-edges", run_dir, steps, size, model, b.device, "fp32", seed=0)
        info["train_seconds"] = round(time.perf_counter() - t0, 1)
    views = held_out_views(photo, size, n=8)
    translator = pixmorph.load(run_dir, device=b.device, precision="fp32")
    generated, truth, unchanged = run_dir / "test_outputs", run_dir / "test_truth", run_dir / "test_training_photo"
    for folder in (generated, truth, unchanged):
        folder.mkdir(parents=True, exist_ok=True)
    for family, images in views.items():
        for i, view in enumerate(images):
            edges = P.canny_edges(view[None])
            to_pil(translator.translate_batch(edges)[0]).save(generated / f"{family}{i}.png")
            to_pil(view).save(truth / f"{family}{i}.png")
            Image.open(train_image).save(unchanged / f"{family}{i}.png")
    return Scored(generated, truth, pairs=True, info=info, title="deepsim (astronaut, held-out views)",
                  baselines={"astronaut: training photo unchanged": Scored(unchanged, truth, pairs=True)})


EDGES_ROWS = ("cyclegan", "pix2pix")  # the rows that baselines() bound: theirs is the fashion-edges task


def baselines(b: Bench) -> dict[str, Scored]:
    """The fashion-edges task's bounds, scored only after a row of that task (:data:`EDGES_ROWS`)."""
    root = b.edges_test()
    return {"fashion-edges: input unchanged": Scored(root / "testA", root / "testB", pairs=True, label="auto"),
            "fashion-edges: ground truth": Scored(root / "testB", root / "testB", pairs=True, label="auto")}


def _trained_steps(run_dir: Path) -> int:
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
    p.add_argument("--methods", default=",".join(DEFAULT_ROWS), help="comma-separated, from " + ",".join(ROWS))
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="runs/bench-quality", help="run folders and outputs go here")
    p.add_argument("--json", default=None, metavar="FILE", help="default: OUT/quality-BUDGET.json")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads; default 1 on a CPU (on cores shared with other jobs two threads "
                        "spin-wait on each other: measured 10x slower CycleGAN steps), else torch's")
    p.add_argument("--workers", type=int, default=1, help="data loading processes while training")
    p.add_argument("--steps", type=int, default=None, help="override every row's steps (quick checks)")
    p.add_argument("--n-test", type=int, default=None, help="held-out items scored (default: cpu 200, gpu 2000)")
    p.add_argument("--reuse", action="store_true", help="keep run folders already trained to the budget")
    p.add_argument("--no-baselines", action="store_true", help="leave out the input-unchanged and ground-truth rows")
    args = p.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if unknown := [m for m in args.methods if m not in ROWS]:
        p.error(f"unknown method(s) {', '.join(unknown)}: known {', '.join(ROWS)}")
    if args.n_test is not None and args.n_test < 1:  # (0 ran the budget's default)
        p.error(f"--n-test {args.n_test}: give 1 or more held-out items")
    try:  # a device that is not here: a usage line, not a traceback
        args.device = str(resolve_device(args.device))
    except ValueError as err:
        p.error(str(err))
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = args.device
    if args.threads or device == "cpu":
        torch.set_num_threads(args.threads or 1)
    bench = Bench(args.budget, device, Path(args.out), args.n_test or N_TEST[args.budget],
                  args.steps, args.workers, args.reuse)
    bench.out.mkdir(parents=True, exist_ok=True)
    command = "python bench/quality.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    t_start = time.perf_counter()

    classifier = default_classifier_dir("fashion")
    if not (classifier / ckpt.WEIGHTS).is_file():
        print(f"training the Fashion-MNIST classifier into {classifier} (once)", flush=True)
        train_classifier("fashion", classifier, device=bench.device)
    evaluator = Evaluator(device=bench.device, classifier=classifier)
    rows: list[dict[str, Any]] = []

    def score(name: str, scored: Scored) -> None:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small-sample notes: the image count is printed with the table
            result = evaluator(scored.generated, scored.reference, pairs=scored.pairs, label=scored.label)
        rows.append({"method": name, **scored.info, **result, "eval_seconds": round(time.perf_counter() - t0, 1)})
        print(format_table(rows[-1:]).splitlines()[-1], flush=True)

    for method in args.methods:
        scored = ROWS[method](bench)
        score(scored.title or method, scored)
        if not args.no_baselines:
            for name, baseline in scored.baselines.items():
                score(name, baseline)
    if not args.no_baselines and any(method in EDGES_ROWS for method in args.methods):
        for name, scored in baselines(bench).items():
            score(name, scored)

    report = {
        "command": command, "budget": args.budget, "device": bench.device, "machine": machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()), "n_test": bench.n_test,
        "seconds": round(time.perf_counter() - t_start), "inception": evaluator.inception.description,
        "lpips_net": evaluator.lpips.name, "classifier": {"path": str(classifier), **evaluator.classifier.test_accuracy},
        "rows": rows,
    }
    json_path = Path(args.json) if args.json else bench.out / f"quality-{args.budget}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(to_json(report))

    m = report["machine"]
    print(f"\n{command}\n{m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['threads']} threads), "
          f"device {bench.device}, {report['date']}, {report['seconds']} s in all")
    print(f"{bench.n_test} held-out test items per row; FID/KID on {bench.n_test} images per side (below "
          f"2048: compare rows with each other, not with published FIDs); LPIPS {report['lpips_net']}; "
          f"classifier top-1 on real test items {report['classifier'].get('top1', float('nan')):.3f}")
    print(format_table(rows))
    print(f"\njson: {json_path}")
    return report


if __name__ == "__main__":
    main()
