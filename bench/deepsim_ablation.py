"""DeepSIM benchmarks: the augmentation ablation with ground truth, the paper's car and face, sample warps,
and the training speed.

    python bench/deepsim_ablation.py ablation --steps 600 --size 128 --json runs/ablation.json
    python bench/deepsim_ablation.py shared --steps 800 --grid-dir docs
    python bench/deepsim_ablation.py warps --out docs/deepsim_warps.png
    python bench/deepsim_ablation.py example --out docs/deepsim_example.png
    python bench/deepsim_ablation.py speed --device cuda --size 480 --precision bf16 --paper

ablation
    The protocol of the paper's quantitative section, with a ground truth: train on ONE photo and its Canny
    edges, then render the edges of held-out views of the same scene whose true image is known, and score
    the renders against the truth with LPIPS (the offline network, see pixmorph.metrics.perceptual), PSNR
    and SSIM. Held-out views: ``tps`` (the photo warped by TPS warps the training never drew, at full
    resolution, then shrunk) and ``crop`` (zoomed sub-windows of the full-resolution photo: new framing and
    finer detail). Variants: ``tps`` (DeepSIM: TPS warps, affine in 1%, a mirror half the time, Canny-sigma
    jitter), ``affine`` (affine warps every step + mirror + Canny-sigma jitter), ``crop`` (pix2pix's
    zoom-crop-flip + Canny-sigma jitter) and ``none`` (plain single pair: no augmentation at all, no mirror
    either; ``--model flip=false`` takes the mirror from every variant). Same networks, losses,
    steps and seed for all. A last row scores the training photo itself against every view: what a
    model that ignored the primitive would get.

shared
    ../shared/data/deepsim: the car trained on its segmentation and rendered from the two edited
    segmentations; the face trained on its edge map and rendered from the two edited edge maps. Writes a
    grid per task (primitive | output, rows: training primitive, test 1, test 2), never the photos.

The sizes and widths are CPU-sized by default (ngf 16, 128 px); ``--paper`` takes the paper's networks.
Figures are printed (and written with --json); nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pixmorph  # before torch: it sets a short OpenMP spin (GOMP_SPINCOUNT, see pixmorph/__init__.py)
import torch
import yaml
from machine import cpu_model  # bench/ is on sys.path when run as a script
from options import device_or_error
from PIL import Image

from pixmorph.data import primitives as P
from pixmorph.data import tps
from pixmorph.images import make_grid_image, to_pil, to_tensor
from pixmorph.methods import deepsim


def save_small(grid: Image.Image, path: str | Path) -> None:
    """A figure for the docs: PNG with a 256-colour palette (a third of the size, no visible change)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    grid.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "deepsim"
CPU_MODEL = {"ngf": 16, "ndf": 16}


def environment(device: str) -> dict[str, Any]:
    import os

    env = {"torch": torch.__version__, "pixmorph": pixmorph.__version__, "threads": torch.get_num_threads(),
           "cpu": f"{os.cpu_count()}-core {cpu_model()}", "device": device,
           "date": time.strftime("%Y-%m-%d")}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name()
    return env


def train_run(image: Path, primitive: str, out: Path, steps: int, max_side: int, model: dict[str, Any],
              device: str, precision: str, seed: int, kind: str | None = None,
              train_settings: dict[str, Any] | None = None) -> tuple[Path, float]:
    """Train DeepSIM for ``steps`` (constant lr for the first half, linear decay to 0 in the second,
    as the paper's 8k + 8k); returns the run folder and seconds per step."""
    from pixmorph.train.loop import train

    cfg = deepsim.make_config(
        image, primitive, kind=kind, out=out, max_side=max_side, model=model, data={"num_workers": 0},
        options={"epoch_length": max(1, steps // 2)},
        train={"max_steps": steps, "epochs": 1, "epochs_decay": 1, "device": device, "precision": precision,
               "seed": seed, "log_every": max(1, steps // 10), "sample_every": steps, "checkpoint_every": steps,
               "tensorboard": False, "overwrite": True, **(train_settings or {})})
    t0 = time.perf_counter()
    run = train(cfg, progress=False)
    return run, (time.perf_counter() - t0) / max(steps, 1)


# ---------------------------------------------------------------------------
# ablation


def held_out_views(photo: np.ndarray, size: int, n: int, seed: int = 1000) -> dict[str, list[torch.Tensor]]:
    """True images (CHW in [-1, 1], size x size) of views the training never saw."""
    full = to_tensor(Image.fromarray(photo))[None]
    g = torch.Generator().manual_seed(seed)

    def small(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", antialias=True,
                                               align_corners=False).clamp(-1, 1)[0]

    views: dict[str, list[torch.Tensor]] = {"tps": [], "crop": []}
    for _ in range(n):
        src, dst = tps.random_tps_points(1, 0.1, g, grid="inner")  # the views the README's tables were scored on
        views["tps"].append(small(tps.warp_tps(full, src, dst)))
        zoom = 1.15 + 0.15 * float(torch.rand(1, generator=g))
        side = int(full.shape[-1] / zoom)
        top, left = (int(torch.randint(0, full.shape[-1] - side + 1, (1,), generator=g)) for _ in range(2))
        views["crop"].append(small(full[..., top : top + side, left : left + side]))
    return views


def score(rendered: list[torch.Tensor], truth: list[torch.Tensor], lpips) -> dict[str, float]:
    from pixmorph.metrics.pairs import psnr, ssim

    def u8(t: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.array(to_pil(t))).permute(2, 0, 1).contiguous()

    with torch.no_grad():
        lp = lpips(torch.stack(rendered).float(), torch.stack(truth).float())
    return {"lpips": float(lp.mean()), "psnr": float(np.mean([psnr(u8(a), u8(b)) for a, b in zip(rendered, truth)])),
            "ssim": float(np.mean([ssim(u8(a), u8(b)) for a, b in zip(rendered, truth)]))}


def ablation(args: argparse.Namespace) -> dict[str, Any]:
    from skimage import data as skdata

    from pixmorph.metrics.perceptual import load_lpips

    photo = getattr(skdata, args.photo)()
    photo = photo if photo.ndim == 3 else np.stack([photo] * 3, -1)
    h, w = photo.shape[:2]
    side = min(h, w)
    photo = photo[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
    work = Path(args.work) / "ablation"
    work.mkdir(parents=True, exist_ok=True)
    train_image = work / f"{args.photo}.png"
    Image.fromarray(photo).resize((args.size, args.size), Image.Resampling.LANCZOS).save(train_image)
    views = held_out_views(photo, args.size, args.views)
    edges = {k: [P.canny_edges(v[None])[0] for v in vs] for k, vs in views.items()}
    lpips = load_lpips("auto")
    print(f"LPIPS network: {lpips.name}", file=sys.stderr)
    model = model_settings(args)
    results: dict[str, Any] = {"env": environment(args.device), "photo": args.photo, "size": args.size,
                               "steps": args.steps, "views": args.views, "model": model or "paper",
                               "lpips_net": lpips.name, "seeds": args.seeds, "rows": []}
    # The baseline every variant must beat: the training photo itself, whatever the held-out view.
    photo_small = to_tensor(Image.open(train_image).convert("RGB"))
    baseline = {"variant": "photo unchanged", "seed": None, "s_per_step": float("nan")}
    for family in views:
        baseline[family] = score([photo_small] * len(views[family]), views[family], lpips)
    print(json.dumps(baseline), flush=True)
    grid_rows = []
    for variant in args.variants:
        for seed in range(args.seed, args.seed + args.seeds):
            m = {"flip": variant != "none", **model, "augment": variant, "canny_sigma_aug": variant != "none"}
            run, s_per_step = train_run(train_image, "auto-edges", work / f"{variant}_s{seed}", args.steps,
                                        args.size, m, args.device, args.precision, seed,
                                        train_settings=args.train_settings)
            translator = pixmorph.load(run, device=args.device, precision="fp32")
            row = {"variant": variant, "seed": seed, "s_per_step": s_per_step}
            for family in views:
                rendered = [translator.translate_batch(e[None])[0] for e in edges[family]]
                row[family] = score(rendered, views[family], lpips)
                if seed == args.seed:
                    grid_rows.append((variant, family, rendered[:3]))
            print(json.dumps(row), flush=True)
            results["rows"].append(row)
    if args.grid:
        # each row: the edges of three held-out views, then the truth or a variant's renders of them
        cells = [[*edges[f][:3], *views[f][:3]] for f in views]
        cells += [[*edges[f][:3], *rendered] for _, f, rendered in grid_rows]
        save_small(make_grid_image(cells), args.grid)
        results["grid"] = str(args.grid)
        results["grid_rows"] = ["truth: " + f for f in views] + [f"{v} on {f}" for v, f, _ in grid_rows]
    results["rows"].append(baseline)
    print_table(results)
    return results


def print_table(results: dict[str, Any]) -> None:
    rows = results["rows"]
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    print(f"\n{results['photo']} {results['size']}px, {results['steps']} steps, {results['views']} views per family, "
          f"{results['seeds']} seed(s); LPIPS {results['lpips_net']} (lower is better)")
    print("| variant | views | LPIPS | PSNR (dB) | SSIM | s/step |")
    print("| --- | --- | --- | --- | --- | --- |")
    for v in variants:
        mine = [r for r in rows if r["variant"] == v]
        for family in ("tps", "crop"):
            cells = []
            for k, digits in (("lpips", 3), ("psnr", 2), ("ssim", 3)):
                values = [r[family][k] for r in mine]
                spread = f" ± {np.std(values):.{digits}f}" if len(values) > 1 else ""
                cells.append(f"{np.mean(values):.{digits}f}{spread}")
            s_per_step = np.mean([r["s_per_step"] for r in mine])
            print(f"| {v} | {family} | {' | '.join(cells)} | {'–' if np.isnan(s_per_step) else f'{s_per_step:.2f}'} |")


# ---------------------------------------------------------------------------
# shared: the paper's car and face


TASKS = {
    "car": {"image": "car/train_B/car.png", "primitive": "car/train_seg/car.png", "kind": "seg",
            "tests": ["car/test_seg/car_test1.png", "car/test_seg/car_test2.png"]},
    "face": {"image": "face/train_B/face_small.png", "primitive": "face/train_edges/face_small.png", "kind": "edges",
             "tests": ["face/test_edges/face_small_test1.png", "face/test_edges/face_small_test2.png"]},
}


def shared(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(args.shared)
    results: dict[str, Any] = {"env": environment(args.device), "tasks": {}}
    model = model_settings(args)
    for name in args.tasks:
        task = TASKS[name]
        max_side = args.car_side if name == "car" else args.face_side
        run, s_per_step = train_run(root / task["image"], str(root / task["primitive"]), Path(args.work) / name,
                                    args.steps, max_side, model, args.device, args.precision, args.seed, task["kind"],
                                    args.train_settings)
        out = Path(args.work) / name / "edits"
        paths = [root / task["primitive"], *[root / t for t in task["tests"]]]
        written = deepsim.edit(run, paths, out, device=args.device)
        prims = deepsim.load_primitives(paths, task["kind"], max_side)
        rows = [[p, to_tensor(Image.open(w).convert("RGB"))] for p, w in zip(prims, written)]
        entry = {"steps": args.steps, "size": list(P.round_size(*Image.open(paths[0]).size, max_side)),
                 "s_per_step": s_per_step, "model": model or "paper", "outputs": [str(w) for w in written]}
        # how well the training pair itself is reproduced (the only primitive with a ground truth)
        truth = P.load_image(root / task["image"], max_side)
        entry["train_l1"] = float((rows[0][1] - truth).abs().mean())
        if args.grid_dir:
            grid = Path(args.grid_dir) / f"deepsim_{name}.png"
            save_small(make_grid_image(rows), grid)
            entry["grid"] = str(grid)
        results["tasks"][name] = entry
        print(json.dumps({name: entry}), flush=True)
    return results


# ---------------------------------------------------------------------------
# warps: a figure of sample augmentations


def warps_figure(args: argparse.Namespace) -> dict[str, Any]:
    from pixmorph.data.single_image import write_example
    from pixmorph.methods.deepsim import DeepSIM, DeepSIMConfig

    example = write_example(Path(args.work) / "example")
    image = P.load_image(example["image"], args.size)[None]
    edges = P.canny_edges(image)
    rows = []
    for mode in ("tps", "affine", "crop"):
        method = DeepSIM(DeepSIMConfig(in_channels=1, ngf=4, ndf=4, n_blocks=1, augment=mode, tps_prob=1.0))
        g = torch.Generator().manual_seed(args.seed)
        a_row, b_row = [edges[0]], [image[0]]
        for _ in range(args.warps):
            A, B = method.augment(edges, image, torch.ones(1, 1), generator=g)
            a_row.append(A[0])
            b_row.append(B[0])
        rows += [b_row, a_row]
    save_small(make_grid_image(rows), args.out)
    print(f"wrote {args.out}: rows = (image, edges) for tps, affine, crop; column 1 unwarped")
    return {"out": str(args.out)}


def example_figure(args: argparse.Namespace) -> dict[str, Any]:
    """The built-in example in one row: photo, its Canny edges, the two edited edge maps."""
    from pixmorph.data.single_image import write_example

    paths = write_example(Path(args.work) / "example")
    cells = [P.load_image(paths["image"])] + [P.load_edges(f, (320, 208)) for f in (paths["edges"], *paths["edited"])]
    save_small(make_grid_image([cells]), args.out)
    print(f"wrote {args.out}: photo | edges | edited_removed | edited_moved")
    return {"out": str(args.out)}


# ---------------------------------------------------------------------------
# speed


def speed(args: argparse.Namespace) -> dict[str, Any]:
    from pixmorph.methods.deepsim import DeepSIM, DeepSIMConfig
    from pixmorph.train.loop import PRECISIONS, _make_update, resolve_device

    device = resolve_device(args.device)
    cfg = DeepSIMConfig(in_channels=1, **model_settings(args))
    method = DeepSIM(cfg)
    method.nets.to(device).train()
    scalers = {k: torch.amp.GradScaler(device.type, enabled=args.precision == "fp16") for k in method.optimizers}
    update = _make_update(method, scalers)
    img = torch.rand(1, 3, args.size, args.size, device=device) * 2 - 1
    batch = {"A": P.canny_edges(img), "B": img, "auto_edges": torch.ones(1, 1, device=device)}
    dtype = PRECISIONS[args.precision]

    def step():
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            method.train_step(batch, update)

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    s = (time.perf_counter() - t0) / args.steps
    result = {"env": environment(str(device)), "size": args.size, "precision": args.precision,
              "model": {"paper": True, **args.model_settings} if args.paper else model_settings(args), "s_per_step": s}
    print(json.dumps(result))
    return result


def model_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The networks' settings: the paper's (--paper) or the CPU-sized ngf 16, with every --model on top."""
    return {**({} if args.paper else CPU_MODEL), **args.model_settings}


def parse_value(raw: str) -> Any:
    """A number, else YAML (PyYAML reads 5e-4 as a string)."""
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return yaml.safe_load(raw)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["ablation", "shared", "warps", "example", "speed"])
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default 600); speed: timed steps (default 10)")
    p.add_argument("--size", type=int, default=128, help="ablation/speed: image side; warps: longer side")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads (1: on a shared 2-core machine two OpenMP threads wait for each other)")
    p.add_argument("--paper", action="store_true", help="the paper's networks (ngf 64, ndf 64) instead of ngf 16")
    p.add_argument("--model", action="append", default=[], metavar="KEY=VALUE",
                   help="model settings on top of the CPU-sized ngf 16 (or of the paper's with --paper; repeatable), "
                        "e.g. --model lr=5e-4 --model n_blocks=3")
    p.add_argument("--train", action="append", default=[], metavar="KEY=VALUE",
                   help="training-loop settings (repeatable), e.g. --train compile=false")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="runs/deepsim_bench", help="run folders")
    p.add_argument("--json", help="also write the figures here")
    # ablation
    p.add_argument("--photo", default="astronaut", help="a scikit-image photo (skimage.data.<name>)")
    p.add_argument("--views", type=int, default=8, help="held-out views per family")
    p.add_argument("--variants", default="tps,affine,crop,none")
    p.add_argument("--seeds", type=int, default=1, help="ablation: seeds --seed, --seed + 1, ...")
    p.add_argument("--grid", help="ablation: write a grid of renders here")
    # shared
    p.add_argument("--shared", default=str(SHARED))
    p.add_argument("--tasks", default="car,face")
    p.add_argument("--car-side", type=int, default=320)
    p.add_argument("--face-side", type=int, default=128)
    p.add_argument("--grid-dir", help="shared: write deepsim_<task>.png grids here")
    # warps / speed
    p.add_argument("--out", default="docs/deepsim_warps.png")
    p.add_argument("--warmup", type=int, default=2, help="speed: untimed steps first")
    p.add_argument("--warps", type=int, default=3, help="warps: samples per mode")
    args = p.parse_args(argv)
    args.variants = args.variants.split(",")
    args.tasks = args.tasks.split(",")
    device_or_error(p, args.device)
    args.steps = args.steps if args.steps is not None else (10 if args.mode == "speed" else 600)
    if args.steps < 1 or args.warmup < 0:
        p.error(f"--steps {args.steps} / --warmup {args.warmup}: --steps must be at least 1, --warmup 0 or more")
    # recorded in the results with the rest of the model
    args.model_settings = {k: parse_value(v) for k, _, v in (item.partition("=") for item in args.model)}
    args.train_settings = {k: parse_value(v) for k, _, v in (item.partition("=") for item in args.train)}
    if args.device == "cpu" or not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    result = {"ablation": ablation, "shared": shared, "warps": warps_figure, "example": example_figure, "speed": speed}[args.mode](args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
