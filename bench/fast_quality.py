"""Quality kept: CycleGAN on built-in fashion-edges trained with the fast settings reaches the same L1 to
ground truth (held-out edges -> items) as plain fp32 settings, at the same number of images seen.

"plain" turns every speed switch off (fp32, contiguous NCHW, no compile, unfused optimizer); "fast" uses
the loop's defaults for the device plus channels_last (on the CPU the defaults turn it on in bf16 only) and,
with --compile, torch.compile. Each setting is trained with the same seeds; the spread between seeds
of one setting is the noise the difference between settings is judged against.

    python bench/fast_quality.py --seeds 0,1 --epochs 0.25 --out runs/fast_quality
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import pixmorph  # before torch: it sets a short OpenMP spin (GOMP_SPINCOUNT, see pixmorph/__init__.py)
import torch

from pixmorph.config import DataConfig, RunConfig, TrainConfig
from pixmorph.data.builtin import prepare_task
from pixmorph.demo import DEMO_BATCH, DEMO_MODEL
from pixmorph.images import list_images, read_image, to_tensor
from pixmorph.train.loop import resolve_precision, train

from options import device_or_error  # bench/ is on sys.path when run as a script

PLAIN = {"precision": "fp32", "channels_last": False, "compile": False, "fused_optimizer": False,
         "cudnn_benchmark": False, "tf32": False}


def settings(compile_: bool) -> dict[str, dict]:
    fast = {"channels_last": True, "fused_optimizer": True, "compile": compile_ or None}
    return {"plain": PLAIN, "fast": fast}


def run_config(out: Path, seed: int, epochs: float, device: str, options: dict) -> RunConfig:
    return RunConfig(method="cyclegan", model=dict(DEMO_MODEL),
                     data=DataConfig(root="fashion-edges", flip=True, channels=1, num_workers=1),
                     train=TrainConfig(out=str(out), batch_size=DEMO_BATCH, epochs=epochs, epochs_decay=epochs,
                                       seed=seed, device=device, log_every=25, sample_every=10**9,
                                       checkpoint_every=10**9, tensorboard=False, overwrite=True, **options))


def held_out(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    root = prepare_task("fashion-edges")
    files = list_images(root / "testA")[:n]
    edges = torch.stack([to_tensor(read_image(f, mode="L")) for f in files])
    truth = torch.stack([to_tensor(read_image(root / "testB" / f.name, mode="L")) for f in files])
    return edges, truth


def checked(p: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, list[int]]:
    """The device and the seeds, or a usage error naming the option (before any training)."""
    device = str(device_or_error(p, args.device))
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds {args.seeds!r}: give whole numbers separated by commas, e.g. 0,1")
    if args.epochs <= 0:
        p.error(f"--epochs {args.epochs:g}: must be more than 0")
    if args.n_test < 1:
        p.error(f"--n-test {args.n_test}: must be at least 1")
    return device, seeds


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1", help="comma-separated; each setting is trained once per seed")
    p.add_argument("--epochs", type=float, default=0.25, help="epochs constant, then as many decaying")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="fast setting also compiles the networks")
    p.add_argument("--n-test", type=int, default=200, help="held-out items scored")
    p.add_argument("--out", default="runs/fast_quality", help="run folders and fast_quality.json go here")
    args = p.parse_args(argv)
    device, seeds = checked(p, args)
    print(f"pixmorph {pixmorph.__version__}, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"device {device}, threads {torch.get_num_threads()}, load avg {os.getloadavg()[0]:.2f}", flush=True)
    edges, truth = held_out(args.n_test)
    print(f"fashion-edges, CycleGAN demo model {DEMO_MODEL}, batch {DEMO_BATCH}, {args.epochs:g}+{args.epochs:g} epochs, "
          f"L1 over {len(edges)} held-out items (input unchanged: {(edges - truth).abs().mean():.4f})", flush=True)
    fast_precision = resolve_precision(TrainConfig().precision, torch.device(device))
    print(f"plain: fp32, every speed switch off; fast: the loop's defaults here ({fast_precision}) plus channels_last, "
          f"fused Adam{', torch.compile' if args.compile else ''}", flush=True)
    rows = []
    for seed in seeds:
        for name, options in settings(args.compile).items():  # alternate settings so load drift hits both
            t0 = time.perf_counter()
            run = train(run_config(Path(args.out) / f"{name}_seed{seed}", seed, args.epochs, device, options), progress=False)
            wall = time.perf_counter() - t0
            stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if line.strip()]
            steps = stats[-1]["step"] if stats else 0
            l1 = float((pixmorph.load(run, precision="fp32")(edges) - truth).abs().mean())
            rows.append({"setting": name, "seed": seed, "steps": steps, "images_seen": steps * DEMO_BATCH,
                         "wall_s": wall, "l1": l1})
            print(f"{name:6s} seed {seed}: {steps} steps ({steps * DEMO_BATCH} images) in {wall:.0f} s, "
                  f"L1 to truth {l1:.4f} (load {os.getloadavg()[0]:.2f})", flush=True)
    means = {n: statistics.mean(r["l1"] for r in rows if r["setting"] == n) for n in ("plain", "fast")}
    print(f"\nmean L1: plain {means['plain']:.4f}, fast {means['fast']:.4f}, difference {means['fast'] - means['plain']:+.4f}")
    if len(seeds) > 1:
        spread = {n: max(r["l1"] for r in rows if r["setting"] == n) - min(r["l1"] for r in rows if r["setting"] == n)
                  for n in means}
        print(f"seed-to-seed spread: plain {spread['plain']:.4f}, fast {spread['fast']:.4f}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "fast_quality.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
