"""Two-step latent translation (Dong et al. 2017) against CycleGAN on the same pair, image size and budget.

The comparison the paper makes, on the built-in ``sneaker2boot`` (Fashion-MNIST sneakers A <-> ankle
boots B, 32x32 gray): both methods see the same number of real training images (``--images``; CycleGAN
draws one A and one B image per batch item, two-step's step 1 one labelled image). Two-step's step 2
trains the encoder on generated images only (the paper's MSE between E(G(z, c)) and z); its extra
steps are counted apart. Three encoders are scored from the same step-1 generator: ``z-MSE`` (the
paper's loss, the trunk starting as D's), ``z-MSE from scratch`` (the paper's and the reference's: a
freshly initialised encoder, ``model.encoder_init=random``) and ``z-MSE + rec`` (fine-tuned with the L1
reconstruction of real images, ``model.recon_weight``).

Scores of the held-out sneakers translated to boots (``--n-test`` of them):

* ``boot acc``: top-1 accuracy, as "Ankle boot", of the Fashion-MNIST classifier trained on real images
  (:mod:`pixmorph.metrics.classify`);
* ``SSIM`` and ``mask IoU`` between each sneaker and its translation: content kept (the silhouette and
  pose); masks are the pixels brighter than 10% of white;
* ``FID`` to as many real held-out boots (TF-FID Inception-v3; far fewer than 2,048 images, so compare
  rows with each other only);
* ``rec L1``: mean |G(E(x), c) - x| on the held-out sneakers and boots (two-step), and the cycle
  error |F(G(x)) - x| for CycleGAN, in [-1, 1] units.

Baseline rows: the sneakers unchanged, and real boots (training items) in place of translations.
It also trains one two-step model on all ten ``fashion-classes`` and writes a grid of translations to
several classes (``--grid``). Runs on a CPU: ``nice -n 10 python bench/twostep_compare.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pixmorph  # before torch: it sets a short OpenMP spin (GOMP_SPINCOUNT, see pixmorph/__init__.py)
import torch
import yaml

from pixmorph.config import DataConfig, RunConfig, TrainConfig
from pixmorph.data.builtin import prepare_task
from pixmorph.images import list_images, make_grid_image, read_image, to_tensor
from pixmorph.methods.twostep import TwoStep
from pixmorph.metrics import InceptionFeatures, fid_from_features, load_classifier, ssim
from pixmorph.metrics.classify import default_classifier_dir, train_classifier
from pixmorph.train.loop import train

PAIR = "sneaker2boot"
TARGET = "boot"  # the classifier's name for B
GRAY = {"in_channels": 1, "out_channels": 1}
CYCLEGAN = {"ngf": 32, "ndf": 32, "n_blocks": 6, "d_layers": 2, **GRAY}  # the demo's, sized to 32 px
TWOSTEP = {"ngf": 32, "ndf": 32, "z_dim": 100, "embed_dim": 50}  # DCGAN halved for a CPU budget; the paper's z
GRID_CLASSES = ["tshirt", "trouser", "pullover", "dress", "sandal", "sneaker", "bag", "boot"]
MASK_LEVEL = -0.8  # 10% of white in [-1, 1]


def run_config(method: str, data: str, out: Path, model: dict, steps: int, batch: int, **train_kw) -> RunConfig:
    return RunConfig(method=method, model=dict(model),
                     data=DataConfig(root=data, flip=False, channels=1, num_workers=0),
                     train=TrainConfig(out=str(out), batch_size=batch, max_steps=steps, overwrite=True,
                                       log_every=25, sample_every=10**9, checkpoint_every=10**9, tensorboard=False,
                                       device="cpu", **train_kw))


def timed_train(cfg: RunConfig) -> float:
    t0 = time.perf_counter()
    train(cfg, progress=sys.stderr.isatty())
    return time.perf_counter() - t0


def train_cyclegan(out: Path, images: int, batch: int) -> tuple[Path, dict]:
    steps = max(1, images // (2 * batch))  # each step draws `batch` A and `batch` B images
    cfg = run_config("cyclegan", PAIR, out, CYCLEGAN, steps, batch, lr_policy="linear",
                     epochs=steps * batch / 3000 / 2, epochs_decay=steps * batch / 3000 / 2)
    return out, {"steps": steps, "batch": batch, "seconds": round(timed_train(cfg), 1)}


def twostep_model(data: str, step1: int, step2: int, stage: str, **extra) -> dict:
    d = {"model": {**TWOSTEP, "step1_steps": step1, "step2_steps": step2, "stage": stage, **extra},
         "data": {"root": data, "channels": 1}, "train": {"resume": stage == "2"}}
    return TwoStep.complete_run_config(d)["model"]


def train_twostep(out: Path, data: str, step1: int, step2: int, batch: int, encoders: dict[str, dict]
                  ) -> dict[str, tuple[Path, dict]]:
    """Step 1 once, then step 2 from its checkpoint once per encoder variant (name -> model settings)."""
    gan = out / "step1"
    cfg = run_config("twostep", data, gan, twostep_model(data, step1, step2, "1"), step1, batch, lr_policy="constant")
    seconds1 = timed_train(cfg)
    runs = {}
    for name, settings in encoders.items():
        run = out / name
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(gan, run)
        model = twostep_model(data, step1, step2, "2", **settings)
        cfg = run_config("twostep", data, run, model, step1 + step2, batch, lr_policy="constant", resume=True)
        cfg.train.overwrite = False
        seconds2 = timed_train(cfg)
        runs[name] = (run, {"step1": step1, "step2": step2, "batch": batch, **settings,
                            "seconds_step1": round(seconds1, 1), "seconds_step2": round(seconds2, 1)})
    return runs


def load_folder(folder: Path, n: int) -> torch.Tensor:
    return torch.stack([to_tensor(read_image(f, mode="L")) for f in list_images(folder)[:n]])


def to_uint8_rgb(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    ma, mb = a > MASK_LEVEL, b > MASK_LEVEL
    inter = (ma & mb).flatten(1).sum(1).float()
    union = (ma | mb).flatten(1).sum(1).float().clamp(min=1)
    return float((inter / union).mean())


class Scorer:
    def __init__(self, sources: torch.Tensor, real_target: torch.Tensor):
        classifier_dir = default_classifier_dir("fashion")
        if not (classifier_dir / "weights.safetensors").is_file():
            train_classifier("fashion", classifier_dir)
        self.classifier = load_classifier(classifier_dir)
        self.target = self.classifier.label_index(TARGET)
        self.inception = InceptionFeatures()
        self.sources = sources
        self.real_features = self.inception(to_uint8_rgb(real_target))

    def __call__(self, outputs: torch.Tensor, rec_l1: float | None = None) -> dict[str, Any]:
        a, b = to_uint8_rgb(self.sources), to_uint8_rgb(outputs)
        labels = torch.full((len(outputs),), self.target)
        return {
            "boot acc": self.classifier.topk_accuracy(outputs, labels, ks=(1,))[1],
            "SSIM": sum(ssim(x[:1], y[:1]) for x, y in zip(a, b)) / len(a),
            "mask IoU": mask_iou(self.sources, outputs),
            "FID": fid_from_features(self.inception(b), self.real_features, ("outputs", "real boots")),
            "rec L1": rec_l1,
        }


def write_grid(run: Path, out: Path, per_class: int = 1) -> Path:
    """Rows: a held-out item of each class, then its translation to each of GRID_CLASSES."""
    translator = pixmorph.load(run, precision="fp32")
    root = prepare_task("fashion-classes")
    rows = []
    for cls in GRID_CLASSES:
        x = load_folder(root / "test" / cls, per_class)
        for item in x:
            rows.append([item] + [translator(item, f"to:{t}") for t in GRID_CLASSES])
    grid = make_grid_image(rows, pad=2)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.convert("L").resize((grid.width * 2, grid.height * 2), resample=0).save(out, optimize=True)  # 2x: 32 px items are tiny
    return out


def sample_spread(run: Path, per_class: int = 64, seed: int = 0) -> float:
    """How much G's samples of one class vary with z: the pixel standard deviation over ``per_class`` draws,
    averaged over pixels and classes ([-1, 1] units; a G that ignored z would give 0)."""
    method = pixmorph.load(run, precision="fp32").method
    g = torch.Generator().manual_seed(seed)
    spreads = [method.sample(torch.randn(per_class, method.cfg.z_dim, generator=g), torch.full((per_class,), c))
               .std(0).mean().item() for c in range(method.cfg.num_classes)]
    return sum(spreads) / len(spreads)


def table(rows: dict[str, dict[str, Any]]) -> str:
    cols = ["boot acc", "SSIM", "mask IoU", "FID", "rec L1"]
    lines = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        cells = [("-" if r.get(c) is None else f"{r[c]:.3f}" if c != "FID" else f"{r[c]:.1f}") for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/bench-twostep")
    p.add_argument("--images", type=int, default=2400, help="real training images each method draws")
    p.add_argument("--cyclegan-batch", type=int, default=8)
    p.add_argument("--twostep-batch", type=int, default=16)
    p.add_argument("--step2", type=int, default=150, help="encoder steps (step 2), for each encoder variant")
    p.add_argument("--recon-weight", type=float, default=1.0, help="the fine-tuned encoder's reconstruction weight")
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--grid-steps", type=int, default=400, help="fashion-classes step-1 steps for the grid (0: no grid)")
    p.add_argument("--grid", default="docs/twostep_grid.png")
    p.add_argument("--twostep-step1", type=int, default=None,
                   help="step-1 steps instead of the equal-images count (e.g. to match CycleGAN's training time)")
    p.add_argument("--skip-cyclegan", action="store_true", help="leave out the CycleGAN row")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", action="append", default=[], metavar="KEY=VALUE",
                   help="two-step model settings (repeatable), e.g. --model g_updates=1")
    args = p.parse_args(argv)
    for item in args.model:  # recorded with each run's config
        key, _, raw = item.partition("=")
        TWOSTEP[key] = yaml.safe_load(raw)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    t0 = time.perf_counter()

    pair = prepare_task(PAIR)
    sneakers, boots = load_folder(pair / "testA", args.n_test), load_folder(pair / "testB", args.n_test)
    step1 = args.twostep_step1 or max(1, args.images // args.twostep_batch)
    twostep_runs = train_twostep(out / "twostep", PAIR, step1, args.step2, args.twostep_batch,
                                 {"z-MSE": {}, "z-MSE from scratch": {"encoder_init": "random"},
                                  "z-MSE + rec": {"recon_weight": args.recon_weight}})
    if not args.skip_cyclegan:
        cyclegan_run, cyclegan_info = train_cyclegan(out / "cyclegan", args.images, args.cyclegan_batch)

    scorer = Scorer(sneakers, boots)
    rows: dict[str, dict[str, Any]] = {}
    info: dict[str, Any] = {} if args.skip_cyclegan else {"cyclegan": cyclegan_info}
    for name, (run, run_info) in twostep_runs.items():
        method = pixmorph.load(run).method
        rec = 0.5 * (float((method.reconstruct(sneakers, torch.zeros(len(sneakers), dtype=torch.long)) - sneakers)
                           .abs().mean()) + float((method.reconstruct(boots, torch.ones(len(boots), dtype=torch.long))
                                                   - boots).abs().mean()))
        rows[f"two-step, {name} encoder"] = scorer(method.translate(sneakers, "B"), rec)
        info[f"two-step {name}"] = run_info
    if not args.skip_cyclegan:
        cg = pixmorph.load(cyclegan_run)
        fake = cg(sneakers, "AtoB")
        rows["CycleGAN"] = scorer(fake, float((cg(fake, "BtoA") - sneakers).abs().mean()))
    rows["sneakers unchanged"] = scorer(sneakers)
    rows["real boots (training items)"] = scorer(load_folder(pair / "trainB", args.n_test))

    if args.grid_steps:
        runs = train_twostep(out / "classes", "fashion-classes", args.grid_steps, args.step2, args.twostep_batch,
                             {"z-MSE": {}})
        run, grid_info = runs["z-MSE"]
        info["grid"] = {**grid_info, "png": str(write_grid(run, Path(args.grid))), "sample_std": sample_spread(run)}

    result = {"machine": machine(), "twostep_model": TWOSTEP, "command": "python bench/twostep_compare.py " + " ".join(argv or sys.argv[1:]),
              "images": args.images, "n_test": args.n_test, "rows": rows, "runs": info,
              "total_seconds": round(time.perf_counter() - t0, 1)}
    print(table(rows))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
