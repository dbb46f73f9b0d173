"""FUNIT on the built-in glyphs task: the paper's few-shot evaluation on held-out fonts.

Trains FUNIT (small widths, CPU-sized) on the source fonts for a time budget and two classifiers on real
glyphs: one of the target fonts (trained on every character but every 6th, tested on those) and one of
the 62 characters (trained on the source fonts, tested on the target fonts). Then, for 1-shot and 5-shot
episodes on the held-out fonts, it prints:

    font top-1 / top-5   the font classifier's accuracy at the target font (translation accuracy)
    char top-1           the character classifier's accuracy at the content's character (content kept)
    L1                   mean |output - ground-truth glyph| on the [-1, 1] scale
    mFID                 FID per target font (its episodes' outputs against the font's 62 real glyphs,
                         Inception-v3 of the TF FID), averaged over the held-out fonts, as the paper does

for FUNIT and two baselines: the content image unchanged, and the class image nearest to the content.

    python bench/funit_fewshot.py --minutes 30 --threads 2 --out runs/bench_funit   # idle machine; --threads 1 when shared
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import warnings

import numpy as np
import pixmorph  # before torch: it sets a short OpenMP spin (GOMP_SPINCOUNT, see pixmorph/__init__.py)
import torch
from PIL import Image

from pixmorph.config import DataConfig, RunConfig, TrainConfig, apply_overrides
from pixmorph.data.fewshot_eval import Episodes, l1, make_episodes
from pixmorph.data.glyphs import CHARACTERS, load_glyphs, prepare_glyphs
from pixmorph.fewshot import load_fewshot
from pixmorph.methods.funit import GLYPHS_MODEL, FunitConfig
from pixmorph.images import make_grid_image
from pixmorph.metrics.classify import Domain, load_classifier, topk_accuracy, train_classifier
from pixmorph.metrics.fid import InceptionFeatures, SmallSampleWarning, fid_from_features
from pixmorph.messages import one_line
from pixmorph.train.loop import train

# CPU-sized: FUNIT's networks and learning rates for its built-in glyphs task (see pixmorph/methods/funit.py).
MODEL = GLYPHS_MODEL


def train_funit(root: Path, out: Path, minutes: float | None, batch_size: int, steps: int | None = None,
                overrides: list[str] = ()) -> Path:
    """Train for ``minutes`` or, given, ``steps`` (a budget that does not depend on the machine's load);
    ``overrides``: ``section.key=value`` as ``pixmorph train --set`` takes them."""
    cfg = RunConfig(
        method="funit", model=dict(MODEL),
        data=DataConfig(root=str(root), load_size=32, crop_size=32, flip=False, channels=1, num_workers=0),
        train=TrainConfig(out=str(out), batch_size=batch_size, epochs=10_000, epochs_decay=0, lr_policy="constant",
                          time_budget=None if steps else minutes * 60, max_steps=steps, log_every=50,
                          sample_every=10**9, checkpoint_every=500, tensorboard=False, device="cpu", overwrite=True))
    return train(RunConfig.from_dict(apply_overrides(cfg.to_dict(), list(overrides), FunitConfig)))


def font_domain(target: np.ndarray, slugs: list[str]) -> Domain:
    """Target fonts as classes; every 6th character is the classifier's test set."""
    test = np.arange(len(CHARACTERS)) % 6 == 5

    def load(split: str) -> tuple[np.ndarray, np.ndarray]:
        chars = test if split == "test" else ~test
        x = target[:, chars]
        y = np.repeat(np.arange(len(slugs)), chars.sum())
        order = np.random.default_rng(0).permutation(len(y))
        return x.reshape(-1, *x.shape[-2:])[order], y[order]

    return Domain("glyph-target-fonts", tuple(slugs), tuple(slugs), load, flip=False,
                  description="held-out fonts of the glyphs task, 32x32; test = every 6th character")


def char_domain(source: np.ndarray, target: np.ndarray) -> Domain:
    """The 62 characters; trained on the source fonts, tested on the held-out fonts."""

    def load(split: str) -> tuple[np.ndarray, np.ndarray]:
        x = source if split == "train" else target
        y = np.tile(np.arange(len(CHARACTERS)), x.shape[0])
        order = np.random.default_rng(1).permutation(len(y))
        return x.reshape(-1, *x.shape[-2:])[order], y[order]

    names = tuple(f"{c}" for c in CHARACTERS)
    return Domain("glyph-chars", names, names, load, flip=False,
                  description="glyph characters, trained on source fonts, tested on held-out fonts")


def classifier(domain: Domain, folder: Path, epochs: float):
    """Trained once per output folder (they depend only on the real glyphs), then reused. One that does not load
    (an unreadable config.json, a file beside it that train_classifier would not delete, a kill mid-save) is
    moved aside, said in one line, and trained again: train_classifier's overwrite replaces only a whole one."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        try:
            return load_classifier(folder)
        except Exception as e:  # noqa: BLE001 -- whatever it is, a new one is trained and the old kept aside
            aside = next(p for n in range(1, 10**6) if not (p := folder.with_name(f"{folder.name}.broken{n}")).exists())
            folder.rename(aside)
            print(f"{one_line(folder)}: not a classifier that loads ({one_line(e)}): moved to {one_line(aside.name)}, "
                  f"training a new one")
    return train_classifier(domain, folder, epochs=epochs, progress=False, overwrite=True)


def scores(images: torch.Tensor, ep: Episodes, font_clf, char_clf) -> dict[str, float]:
    font = topk_accuracy(font_clf.logits(images), ep.font, (1, 5))
    char = topk_accuracy(char_clf.logits(images), ep.char, (1,))
    return {"font_top1": font[1], "font_top5": font[5], "char_top1": char[1], "l1": l1(images, ep.truth)}


def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """N x 1 x S x S in [-1, 1] -> uint8 N x 3 x S x S (Inception's input)."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def per_font_fid(images: torch.Tensor, fonts: torch.Tensor, real_features: torch.Tensor,
                 inception: InceptionFeatures) -> float:
    """Mean over target fonts of FID(outputs of that font's episodes, its real glyphs).

    ~20 outputs against 62 real glyphs per font: the absolute values carry a large small-sample bias
    (identical for every row of the table), so compare rows, not papers."""
    features = inception(to_uint8_rgb(images))
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        for t in range(real_features.shape[0]):
            values.append(fid_from_features(features[fonts == t], real_features[t]))
    return float(np.mean(values))


def save_grid(ep: Episodes, output: torch.Tensor, path: Path, n_fonts: int = 6) -> None:
    """Per row: the 5 class images | content | FUNIT | ground truth (one episode per target font)."""
    rows, seen = [], set()
    for i in range(len(ep.font)):
        f = int(ep.font[i])
        if f in seen:
            continue
        seen.add(f)
        rows.append([*ep.class_images[i], ep.content[i], output[i], ep.truth[i]])
        if len(rows) == n_fonts:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = make_grid_image(rows)
    grid.resize((grid.width * 2, grid.height * 2), Image.NEAREST).save(path)


def check_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A usage error for a count below 1 or --skip-training without a run, before the glyphs are prepared."""
    for option in ("steps", "batch_size", "per_font", "threads"):
        value = getattr(args, option)
        if value is not None and value < 1:
            p.error(f"--{option.replace('_', '-')} {value}: must be at least 1")
    if args.minutes <= 0:
        p.error(f"--minutes {args.minutes:g}: must be more than 0")
    if args.skip_training and not (Path(args.out) / "funit").is_dir():
        p.error(f"--skip-training: no FUNIT run in {Path(args.out) / 'funit'} to evaluate (train one: leave out "
                "--skip-training, or give its --out)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=12.0, help="FUNIT training time budget")
    p.add_argument("--steps", type=int, help="train this many steps instead (to compare settings on a busy machine)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="a setting as pixmorph train --set takes it (repeatable), e.g. model.dis_as_reference_code=true")
    p.add_argument("--out", default="runs/bench_funit")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--per-font", type=int, default=20, help="episodes per held-out font")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    p.add_argument("--skip-training", action="store_true", help="evaluate the checkpoint already in --out")
    p.add_argument("--grid", default="docs/funit_glyphs_5shot.png")
    p.add_argument("--no-fid", action="store_true", help="skip the per-font FID (Inception on the CPU: minutes)")
    args = p.parse_args(argv)
    check_options(p, args)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    root = prepare_glyphs()
    source, _, _ = load_glyphs(root, "train")
    target, target_slugs, _ = load_glyphs(root, "test")
    print(f"glyphs: {root} ({source.shape[0]} source fonts, {target.shape[0]} held-out fonts, {len(CHARACTERS)} characters)")

    t0 = time.perf_counter()
    if not args.skip_training:
        train_funit(root, out / "funit", args.minutes, args.batch_size, args.steps, args.set)
    train_s = time.perf_counter() - t0
    model = load_fewshot(out / "funit", precision="fp32")
    font_clf = classifier(font_domain(target, target_slugs), out / "font_classifier", epochs=15)
    char_clf = classifier(char_domain(source, target), out / "char_classifier", epochs=4)
    print(f"classifiers on real glyphs: font (held-out characters) top-1 {font_clf.test_accuracy['top1']:.3f}, "
          f"character (held-out fonts) top-1 {char_clf.test_accuracy['top1']:.3f}")

    inception = real_features = None
    if not args.no_fid:
        inception = InceptionFeatures()
        real = torch.from_numpy(target).reshape(-1, 1, *target.shape[-2:])
        real_features = inception(to_uint8_rgb(real.float() / 127.5 - 1)).reshape(target.shape[0], target.shape[1], -1)
        print(f"FID: {inception.description}")

    results = {}
    for k in (1, 5):
        ep = make_episodes(source, target, k, args.per_font, seed=k)
        g = model.generator
        with torch.no_grad():
            funit = g(ep.content, ep.class_images)
        outputs = {"FUNIT": funit, "content unchanged": ep.content, "nearest class image": ep.nearest_class_image()}
        results[k] = {name: scores(x, ep, font_clf, char_clf) for name, x in outputs.items()}
        if inception is not None:
            for name, x in outputs.items():
                results[k][name]["mfid"] = per_font_fid(x, ep.font, real_features, inception)
        if k == 5:
            save_grid(ep, funit, Path(args.grid))

    print(f"\nFUNIT step {model.translator.step}, trained {train_s / 60:.1f} min; "
          f"{len(target_slugs)} held-out fonts x {args.per_font} episodes per K\n")
    print("| K | output | font top-1 | font top-5 | char top-1 | L1 to truth | mFID |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k, rows in results.items():
        for name, s in rows.items():
            mfid = f"{s['mfid']:.1f}" if "mfid" in s else "–"
            print(f"| {k} | {name} | {s['font_top1']:.3f} | {s['font_top5']:.3f} | {s['char_top1']:.3f} | {s['l1']:.3f} | {mfid} |")
    (out / "results.json").write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1))
    print(f"\ngrid: {args.grid}")


if __name__ == "__main__":
    main()
