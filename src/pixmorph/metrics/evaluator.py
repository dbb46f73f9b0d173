"""Scoring a folder of outputs against a reference folder: the engine of ``pixmorph eval`` and the benchmark.

An :class:`Evaluator` loads each network once (lazily) and keeps the Inception features of every
folder it has seen, so scoring several outputs against one reference folder reads it once.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from pixmorph.metrics.folders import check_pair_sizes, image_files, match_pairs, read_uint8, to_float

if TYPE_CHECKING:
    from pixmorph.api import Translator

ALL_METRICS = ("fid", "kid", "lpips", "psnr", "ssim", "l1", "acc")
PAIRED_METRICS = ("lpips", "psnr", "ssim", "l1")
DEFAULT_METRICS = ALL_METRICS  # those that apply: paired ones with pairs=True, acc with a label


def parse_metrics(text: str | Sequence[str] | None) -> tuple[str, ...]:
    if text is None:
        return DEFAULT_METRICS
    names = [m.strip().lower() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    unknown = [m for m in names if m not in ALL_METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}: choose from {','.join(ALL_METRICS)}")
    return tuple(dict.fromkeys(names))


class Evaluator:
    """``Evaluator(...)(generated_dir, reference_dir, pairs=..., label=...)`` -> dict of figures.

    ``metrics`` names what to compute (default: all that apply). The Inception network, the LPIPS
    network and the classifier are found and loaded on first use."""

    def __init__(self, metrics: str | Sequence[str] | None = None, device: str | torch.device = "cpu",
                 inception_weights: str | os.PathLike | None = None, lpips_net: str = "auto",
                 lpips_weights: str | os.PathLike | None = None, classifier: str | os.PathLike | None = None,
                 kid_subsets: int = 100, kid_subset_size: int = 1000, batch_size: int = 32, progress: bool = False):
        self.metrics = parse_metrics(metrics)
        self.progress = progress  # a bar while Inception reads the images (seconds per batch on a CPU)
        self.explicit = metrics is not None
        self.device = torch.device(device)
        self.inception_weights, self.lpips_net, self.lpips_weights = inception_weights, lpips_net, lpips_weights
        self.classifier_path = classifier
        for name, value in (("kid_subsets", kid_subsets), ("kid_subset_size", kid_subset_size),
                            ("batch_size", batch_size)):
            if value < 1:  # a batch of -1 scored nothing and printed LPIPS 0
                raise ValueError(f"{name}={value}: give 1 or more")
        if kid_subset_size < 2:  # the unbiased estimate divides by m(m-1): nan ± nan, and numpy's bare warning
            raise ValueError(f"kid_subset_size={kid_subset_size}: KID needs subsets of 2 or more images")
        self.kid_subsets, self.kid_subset_size, self.batch_size = kid_subsets, kid_subset_size, batch_size
        self._inception = self._lpips = self._classifier = None
        self._features: dict[tuple, torch.Tensor] = {}

    # -- networks, loaded on first use

    @property
    def inception(self):
        if self._inception is None:
            from pixmorph.metrics.fid import InceptionFeatures

            self._inception = InceptionFeatures(self.inception_weights, self.device, self.batch_size, self.progress)
        return self._inception

    @property
    def lpips(self):
        if self._lpips is None:
            from pixmorph.metrics.perceptual import load_lpips

            self._lpips = load_lpips(self.lpips_net, self.lpips_weights, self.device)
        return self._lpips

    @property
    def classifier(self):
        if self._classifier is None:
            from pixmorph.metrics.classify import default_classifier_dir, load_classifier

            path = self.classifier_path or default_classifier_dir("fashion")
            if self.classifier_path is None and not Path(path).exists():
                raise FileNotFoundError(f"no classifier given and none at {path}: build it with "
                                        "`pixmorph classifier train fashion` or pass --classifier CKPT")
            self._classifier = load_classifier(path, self.device)
            self.classifier_path = path
        return self._classifier

    def features(self, files: list[Path], images: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Inception features of ``files``, cached by path, size and modification time."""
        key = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
        if key not in self._features:
            self._features[key] = self.inception.of_images(images if images is not None else read_uint8(files))
        return self._features[key]

    # -- scoring

    def __call__(self, generated: str | os.PathLike, reference: str | os.PathLike, *, pairs: bool = False,
                 label: str | int | None = None) -> dict[str, Any]:
        wanted = self._wanted(pairs, label)
        self._load_networks(wanted)
        gen_files, ref_files = image_files(generated), image_files(reference)
        labels = self._labels(gen_files, label) if "acc" in wanted else None  # before the images are read
        gen_images = read_uint8(gen_files)
        result: dict[str, Any] = {"generated": str(generated), "reference": str(reference),
                                  "n_generated": len(gen_files), "n_reference": len(ref_files)}
        if set(PAIRED_METRICS) & wanted:  # before the Inception features: pairs of unequal sizes fail fast
            matched, gens, refs = self._pairs(gen_files, gen_images, ref_files, reference)
            self._check_small_pairs(matched, gens, wanted)
        names = (f"{generated} (generated)", f"{reference} (reference)")
        if {"fid", "kid"} & wanted:
            _check_counts(wanted, names, len(gen_files), len(ref_files))  # before minutes of Inception features
            f_gen = self.features(gen_files, gen_images)
            f_ref = self.features(ref_files)
            result["inception"] = self.inception.description
            if "fid" in wanted:
                from pixmorph.metrics.fid import fid_from_features

                result["fid"] = fid_from_features(f_gen, f_ref, names=names)
            if "kid" in wanted:
                from pixmorph.metrics.fid import kid_from_features, kid_subsets_used

                result["kid"], result["kid_std"] = kid_from_features(
                    f_gen, f_ref, self.kid_subsets, self.kid_subset_size, names=names)
                result["kid_subsets"], result["kid_subset_size"] = kid_subsets_used(
                    len(f_gen), len(f_ref), self.kid_subsets, self.kid_subset_size)
        if set(PAIRED_METRICS) & wanted:
            result.update(self._paired(matched, gens, refs, wanted))
        if "acc" in wanted:
            result.update(self._accuracy(gen_images, labels, label))
        return result

    def check(self, files: Sequence[Path], *, pairs: bool = False, label: str | int | None = None,
              reference: str | os.PathLike | None = None) -> None:
        """Refuse, before slow work (translating the images to score, say), what the names of the files to
        score already decide: metrics that do not apply, a missing classifier, and a ``label`` it does not know
        (``auto``: a file whose folder or name gives no class it knows), networks whose weights are missing,
        and, with the ``reference`` folder, one without images, names that pair with none of its files, and image
        counts FID or KID cannot use."""
        wanted = self._wanted(pairs, label)
        self._load_networks(wanted)
        if "acc" in wanted:
            self._labels(files, label)
        if reference is None:
            return
        ref_files = image_files(reference)
        if set(PAIRED_METRICS) & wanted and files:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # files left without a reference are warned of when scored
                match_pairs(list(files), ref_files)
        if {"fid", "kid"} & wanted:
            generated = f"{Path(files[0]).parent} (generated)" if files else "generated"
            _check_counts(wanted, (generated, f"{reference} (reference)"), len(files), len(ref_files))

    def _load_networks(self, wanted: set[str]) -> None:
        """Find and load the networks ``wanted`` needs before any image is read: missing weights are said at
        once, not after minutes of translating or of Inception features."""
        if {"fid", "kid"} & wanted:
            self.inception
        if "lpips" in wanted:
            self.lpips

    def _wanted(self, pairs: bool, label: str | int | None) -> set[str]:
        """The metrics that apply; one asked for by name that does not: refused."""
        wanted = set(self.metrics)
        if not pairs:
            asked = sorted(wanted & set(PAIRED_METRICS))
            if self.explicit and asked:
                raise ValueError(f"{', '.join(asked)} compare aligned pairs: add --pairs (files matched by name; "
                                 "pairs=True from Python)")
            wanted -= set(PAIRED_METRICS)
        if label is None:
            if self.explicit and "acc" in wanted:
                raise ValueError("acc needs the target class: --label CLASS, or --label auto for built-in file names "
                                 "(label= from Python)")
            wanted.discard("acc")
        elif "acc" not in wanted:  # a label given for nothing: the user expects a top-1 that would not come
            raise ValueError(f"--label {label} is the class for acc (top-1/top-5), which --metrics "
                             f"{','.join(self.metrics)} leaves out: add acc, or leave --label out")
        return wanted

    def _labels(self, files: Sequence[Path], label: str | int) -> torch.Tensor:
        """The target class of each file, as the classifier numbers its classes."""
        from pixmorph.metrics.classify import auto_labels

        clf = self.classifier
        if str(label).lower() == "auto":
            return auto_labels(files, clf)
        return torch.full((len(files),), clf.label_index(label), dtype=torch.long)

    @staticmethod
    def _pairs(gen_files, gen_images, ref_files, reference) -> tuple[list[tuple[Path, Path]], list, list]:
        """The (generated, reference) files matched by name and their images, checked to be of equal sizes."""
        index = {f: i for i, f in enumerate(gen_files)}
        matched = match_pairs(gen_files, ref_files)
        gens = [gen_images[index[g]] for g, _ in matched]
        refs = read_uint8([r for _, r in matched])
        check_pair_sizes(matched, gens, refs, reference)
        return matched, gens, refs

    def _check_small_pairs(self, matched, gens, wanted) -> None:
        """SSIM's window and the LPIPS trunk need a least image size: checked before the Inception features."""
        from pixmorph.metrics.pairs import SSIM_WINDOW

        if "ssim" in wanted:
            _refuse_small_pairs(matched, gens, wanted, "ssim", SSIM_WINDOW, "SSIM (its Gaussian window)")
        if "lpips" in wanted:
            _refuse_small_pairs(matched, gens, wanted, "lpips", self.lpips.min_side,
                                f"LPIPS ({self.lpips.name}, an AlexNet trunk)")

    def _paired(self, matched, gens, refs, wanted) -> dict[str, Any]:
        from pixmorph.metrics import pairs as P

        out: dict[str, Any] = {"n_pairs": len(matched)}
        if "psnr" in wanted:
            out["psnr"] = sum(P.psnr(a, b) for a, b in zip(gens, refs)) / len(gens)
        if "ssim" in wanted:
            out["ssim"] = sum(P.ssim(a, b) for a, b in zip(gens, refs)) / len(gens)
        if "l1" in wanted:
            out["l1"] = sum(P.l1(a, b) for a, b in zip(gens, refs)) / len(gens)
        if "lpips" in wanted:
            groups: dict[tuple, list[int]] = defaultdict(list)
            for i, a in enumerate(gens):
                groups[tuple(a.shape)].append(i)
            total = 0.0
            for indices in groups.values():
                for s in range(0, len(indices), self.batch_size):
                    chunk = indices[s : s + self.batch_size]
                    x = torch.stack([to_float(gens[i]) for i in chunk]).to(self.device)
                    y = torch.stack([to_float(refs[i]) for i in chunk]).to(self.device)
                    total += float(self.lpips(x, y).sum())
            out["lpips"] = total / len(gens)
            out["lpips_net"] = self.lpips.name
        return out

    def _accuracy(self, images, labels: torch.Tensor, label) -> dict[str, Any]:
        from pixmorph.metrics.classify import topk_accuracy

        clf = self.classifier
        if len({im.shape for im in images}) == 1:
            logits = clf.logits(torch.stack([to_float(im) for im in images]))
        else:  # mixed sizes: the classifier resizes each image to its own size
            logits = torch.cat([clf.logits(to_float(im).unsqueeze(0)) for im in images])
        acc = topk_accuracy(logits, labels, (1, 5))
        return {**{f"top{k}": value for k, value in acc.items()}, "label": str(label),
                "classifier": str(self.classifier_path),
                "classifier_test_top1": clf.test_accuracy.get("top1")}


def _refuse_small_pairs(matched: list[tuple[Path, Path]], gens: list[torch.Tensor], wanted: set[str], metric: str,
                       least: int, what: str) -> None:
    """Images smaller than ``metric`` takes, said before the Inception features (minutes), not after."""
    small = [i for i, image in enumerate(gens) if min(image.shape[1:]) < least]
    if not small:
        return
    (h, w), more = gens[small[0]].shape[1:], f" (and {len(small) - 1} more)" if len(small) > 1 else ""
    others = ",".join(m for m in ALL_METRICS if m in wanted and m != metric)
    leave_out = f"leave it out: --metrics {others}" if others else "leave it out"
    raise ValueError(f"{matched[small[0]][0]} is {w}x{h}{more}: {what} needs images of at least {least}x{least} "
                     f"pixels; {leave_out}")


def _check_counts(wanted: set[str], names: tuple[str, str], n_gen: int, n_ref: int) -> None:
    """What FID and KID refuse for their image counts, said before any feature is computed."""
    from pixmorph.metrics.fid import check_fid_counts, check_kid_counts

    if "fid" in wanted:
        check_fid_counts(names, n_gen, n_ref)
    if "kid" in wanted:
        check_kid_counts(names, n_gen, n_ref)


def evaluate(generated: str | os.PathLike, reference: str | os.PathLike, *, pairs: bool = False,
             label: str | int | None = None, **options) -> dict[str, Any]:
    """One-off scoring; ``options`` are :class:`Evaluator`'s."""
    return Evaluator(**options)(generated, reference, pairs=pairs, label=label)


def translate_folder(checkpoint: str | os.PathLike | Translator, inputs: str | os.PathLike, out: str | os.PathLike,
                     direction: str | None = "AtoB", device: str = "cpu", batch_size: int = 16,
                     side_by_side: bool = False, progress: bool = False) -> Path:
    """Translate every image under ``inputs`` into ``out`` as ``<stem>.png``, with a checkpoint (loaded in
    fp32, so that scores compare across machines) or a loaded Translator; ``direction=None``: its default.
    ``side_by_side``: inputs are A|B files (the pix2pix layout), of which the direction's source half is
    translated (:func:`write_targets` writes the other halves). ``progress``: a bar over the images translated."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: give 1 or more")
    from pixmorph import load
    from pixmorph.api import Translator, file_batches
    from pixmorph.data.folders import input_half, read_input, warn_if_side_by_side_input, warn_unless_side_by_side_input
    from pixmorph.images import check_distinct_outputs, check_images

    translator = checkpoint if isinstance(checkpoint, Translator) else load(checkpoint, device=device, precision="fp32")
    direction = direction or translator.default_direction()
    half = input_half(direction, translator.config.data.options) if side_by_side else None
    files = image_files(inputs)
    out = Path(out)
    check_distinct_outputs(files, out, option="GENERATED")
    seen: dict[str, Path] = {}
    for f in files:
        if (other := seen.setdefault(f.stem, f)) != f:
            raise ValueError(f"{f}: same name stem as {other}; outputs are written as <stem>.png")
    check_images(files)  # every bad file named before the first output, one cut short inside its pixels too
    if half and files:
        warn_unless_side_by_side_input(files[0], half)
    elif files and translator.config.method == "pix2pix":  # A|B test files translated whole, as translate warns
        warn_if_side_by_side_input(files[0], input_half(direction, translator.config.data.options))
    from tqdm import tqdm

    with tqdm(total=len(files), unit="img", desc="translating", disable=not progress) as bar:
        translator.translate_files(file_batches(files, batch_size, half), direction, out,
                                   lambda f: translator.input_tensor(read_input(f, half)), done=bar.update)
    return out


def write_targets(inputs: str | os.PathLike, out: str | os.PathLike, input_half: str = "A") -> Path:
    """The other halves of A|B files than ``input_half`` as ``out/<stem>.png``: the ground truth of
    :func:`translate_folder` with ``side_by_side``."""
    from pixmorph.data.folders import split_side_by_side
    from pixmorph.images import save_image

    for f in image_files(inputs):
        a, b = split_side_by_side(f, mode=None)
        save_image(a if input_half == "B" else b, Path(out) / f"{f.stem}.png")
    return Path(out)


# ---------------------------------------------------------------------------
# Reporting

_LABELS = [("fid", "FID", "{:.2f}"), ("kid", "KID", "{:.4f}"), ("lpips", "LPIPS", "{:.4f}"),
           ("psnr", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"), ("l1", "L1", "{:.4f}"),
           ("top1", "top-1", "{:.3f}"), ("top5", "top-5", "{:.3f}")]


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    text = spec.format(value)
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # -0.00 reads like a bug


def _kid_note(result: dict[str, Any]) -> str:
    """KID's spread and what it is over; no ± when there was one subset (each whole set)."""
    if "kid" not in result:
        return ""
    size = result["kid_subset_size"]
    if result["kid_std"] is None:
        return f"one subset: all {size} images of each set (no spread to give)"
    return f"± {result['kid_std']:.4f} over {result['kid_subsets']} subsets of {size} images"


def format_result(result: dict[str, Any]) -> str:
    """A single evaluation as aligned lines: each figure with what it was computed on."""
    lines = [f"generated   {result['generated']} ({result['n_generated']} images)",
             f"reference   {result['reference']} ({result['n_reference']} images)"]
    notes = {"fid": result.get("inception", ""),
             "kid": _kid_note(result),
             "lpips": f"{result.get('lpips_net', '')}, {result.get('n_pairs', '')} pairs",
             "top1": f"classifier {result.get('classifier', '')}, label {result.get('label', '')}"}
    for key, name, spec in _LABELS:
        if key in result:
            lines.append(f"{name:<11} {_fmt(result[key], spec):>9}   {notes.get(key, '')}".rstrip())
    return "\n".join(lines)


def format_table(rows: Sequence[dict[str, Any]], first: str = "method") -> str:
    """Rows of results as a Markdown table (columns: those present in any row)."""
    columns = [(k, n, s) for k, n, s in _LABELS if any(k in r for r in rows)]
    # LPIPS values of different networks (the original AlexNet, shift-tolerant stlpips) are different scales
    nets = sorted({str(r["lpips_net"]) for r in rows if "lpips" in r and r.get("lpips_net")})
    lpips = f"LPIPS ({', '.join(nets)})" if nets else "LPIPS"
    header = [first] + [lpips if k == "lpips" else n for k, n, _ in columns]
    body = [[str(r.get(first, ""))] + [_fmt(r.get(k), s) for k, _, s in columns] for r in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    rule = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([fmt(header), rule] + [fmt(b) for b in body])


def to_json(data: Any) -> str:
    """JSON with non-finite numbers written as null (PSNR of identical images is +inf)."""
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(data), indent=2, allow_nan=False) + "\n"
