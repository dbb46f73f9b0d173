"""The ``pixmorph`` command: train, translate, demo, data."""

from __future__ import annotations

import json
import os
import sys
import warnings
from contextlib import ExitStack, nullcontext
from pathlib import Path

import click

from pixmorph.cli_deepsim import (apply_single_image, computed_primitive, dry_run_size, edit_command,
                                   example_removed_if_refused, guessed_kind_note, primitive_hint,
                                   save_training_primitive, single_image_options, warn_of_unlikely_primitives)
from pixmorph.cli_types import FiniteFloat
from pixmorph.config import RunConfig, apply_overrides, check_config_values, load_yaml
from pixmorph.messages import one_line

TRAIN_FLAGS = {  # flag name -> (section, key)
    "data": ("data", "root"), "out": ("train", "out"), "batch_size": ("train", "batch_size"),
    "epochs": ("train", "epochs"), "epochs_decay": ("train", "epochs_decay"), "steps": ("train", "max_steps"),
    "time_budget": ("train", "time_budget"), "device": ("train", "device"), "precision": ("train", "precision"),
    "seed": ("train", "seed"), "load_size": ("data", "load_size"), "crop_size": ("data", "crop_size"),
    "workers": ("data", "num_workers"),
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pixmorph")
def cli() -> None:
    """pixmorph: image-to-image translation (CycleGAN, pix2pix, DeepSIM, FUNIT, two-step) with one CLI and one training loop."""


@cli.command()
@click.argument("method")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file with sections method/model/data/train.")
@click.option("--data", help="Data folder, or a built-in task (fashion-edges, sneaker2boot, ...).")
@click.option("--out", help="Run folder (checkpoint/, samples/, stats.jsonl, config.json).")
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--epochs", type=FiniteFloat(min=0), help="Epochs at the initial learning rate.")
@click.option("--epochs-decay", type=FiniteFloat(min=0), help="Epochs of linear decay to 0.")
@click.option("--steps", type=click.IntRange(min=0), help="Stop at this step.")
@click.option("--time-budget", type=FiniteFloat(min=0),
              help="Seconds of training, then save and stop (0: no limit; a --resume does not inherit it).")
@click.option("--device", help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), help="auto (default): bf16 on CUDA and on CPUs with AMX or AVX512-BF16, else fp32.")
@click.option("--seed", type=int)
@click.option("--load-size", type=click.IntRange(min=1))
@click.option("--crop-size", type=click.IntRange(min=1))
@click.option("--workers", type=click.IntRange(min=0), help="Data loading processes.")
@click.option("--resume", is_flag=True, help="Continue from the run folder's checkpoint (with its saved config).")
@click.option("--overwrite", is_flag=True, help="Start over in a run folder that holds a checkpoint.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Any hyperparameter, e.g. --set model.ngf=32 --set train.log_every=10 (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and exit.")
@click.option("--devices", type=click.IntRange(min=1),
              help="Train on N processes of this machine, one per GPU (or N CPU processes with --device cpu): "
                   "starts torchrun for you. --batch-size is per process.")
@single_image_options
def train(method: str, config_file: str | None, resume: bool, overwrite: bool, overrides: tuple[str, ...], dry_run: bool,
          devices: int | None, single_image: dict, **flags) -> None:
    """Train METHOD (cyclegan, pix2pix, deepsim, funit, twostep) on a data folder or built-in task."""
    from pixmorph.train.distributed import failing_together_before_joining, launched_by_torchrun

    if devices and devices > 1 and not dry_run and not launched_by_torchrun():
        from pixmorph.train.launch import relaunch

        sys.exit(relaunch(devices, sys.argv[1:], flags["device"]))

    with ExitStack() as cleanup:  # (a refused run takes away the files it wrote: RUN/example)
        # (each process of a torchrun reads its own machine's files here: one that fails must stop the others too)
        with nullcontext() if dry_run else failing_together_before_joining():
            cfg, kind_set = assemble_run_config(method, config_file, resume, overwrite, overrides, dry_run,
                                                single_image, flags, cleanup)
        train_with(cfg, kind_set, single_image, dry_run)


def train_with(cfg: RunConfig, kind_set: bool, single_image: dict, dry_run: bool) -> None:
    """``pixmorph train`` once its config is assembled: --dry-run's print, or the run."""
    from pixmorph.methods import get_method
    from pixmorph.train.loop import (build_method, check_crop_fits_the_networks, check_run_folder, complete_config,
                                     train as run_training)

    if dry_run:  # a run's config is completed by train() (what a method takes from its data: two-step's classes)
        check_run_folder(cfg)  # first, as the run checks it: completing the config can take a while
        cfg = complete_config(cfg, dry_run=True)
        resolved = dry_run_config(cfg, get_method(cfg.method), single_image)
        if get_method(cfg.method).data_layout != "single":  # DeepSIM trains at its image's size, not a crop
            check_crop_fits_the_networks(build_method(cfg), resolved["data"]["crop_size"])
        click.echo(json.dumps(resolved, indent=2))
        return

    primitive_files: list[Path] = []

    def write_primitive(pair) -> list[Path]:  # once the run is accepted: a refused one leaves the user's edits as they are
        if (single_image or {}).get("image") == "example":
            from pixmorph.methods.deepsim import example_note

            click.echo(example_note(cfg.train.out), err=True)
        if not kind_set and (note := guessed_kind_note(cfg, single_image)):
            click.echo(note, err=True)
        primitive_files.extend(save_training_primitive(cfg, pair))
        return primitive_files

    new_deepsim = cfg.method == "deepsim" and not cfg.train.resume
    if new_deepsim:  # before the run: an --overwrite sets aside RUN/primitive, where the files may be
        warn_of_unlikely_primitives(cfg.data.options or {})
    run_dir = run_training(cfg, on_start=write_primitive if new_deepsim else None)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, once
        click.echo(f"checkpoint: {run_dir / 'checkpoint'}\nsamples:    {run_dir / 'samples' / 'index.html'}")
        if primitive_files and computed_primitive(cfg.data.options or {}):
            click.echo(primitive_hint(run_dir, primitive_files, cfg.data.options or {}))


def assemble_run_config(method: str, config_file: str | None, resume: bool, overwrite: bool,
                        overrides: tuple[str, ...], dry_run: bool, single_image: dict, flags: dict,
                        cleanup: ExitStack) -> tuple[RunConfig, bool]:
    """The run config of ``pixmorph train``: a --resume's saved config, then the YAML, the flags and the --set
    overrides, each laid over what comes before it; and whether the DeepSIM primitive's kind was set (so not
    guessed from its file). What it writes (RUN/example) is taken away again by ``cleanup``'s end when the run is
    refused."""
    from pixmorph.methods import METHODS

    if method == "deepsim" and flags.get("data"):  # it would be taken as the image, or dropped by --image
        raise click.UsageError(f"--data {flags['data']}: deepsim trains on one image: give it with --image IMG")
    model_config = METHODS[method].Config if method in METHODS else None  # an unknown name is refused below
    d = load_yaml(config_file) if config_file else {}
    if d.get("method") not in (None, method):  # its model settings are another method's: name that, not a field
        raise click.UsageError(f"{config_file} is a {d['method']} config (method: {d['method']}): run "
                               f"`pixmorph train {d['method']} --config {config_file}`, or change its method")
    d = check_config_values(d, model_config, config_file) if config_file else {}
    out = flags["out"] or d.get("train", {}).get("out") or f"runs/{method}"
    saved = Path(out) / "config.json"
    if resume:
        from pixmorph.train.checkpoint import check_resumed_method, config_that_ran

        check_resumed_method(Path(out), method)
    if resume and saved.is_file():  # continue with the config that ran; a YAML, flags and --set apply on top
        ran = config_that_ran(Path(out))
        ran.get("train", {}).pop("time_budget", None)  # one invocation's limit, not the run's: give it again
        d = merged(ran, {k: v for k, v in d.items() if k != "method"})
    d["method"] = method
    d.setdefault("train", {})["out"] = out
    d["train"]["overwrite"] = overwrite
    for name, value in flags.items():
        if value is not None:
            section, key = TRAIN_FLAGS[name]
            d.setdefault(section, {})[key] = None if name == "time_budget" and value == 0 else value
    if resume:
        d["train"]["resume"] = True
        if not saved.is_file() and not (d.get("data") or {}).get("root") and not (single_image or {}).get("image"):
            data_flag = "--image" if method == "deepsim" else "--data"
            raise click.UsageError(f"--resume: {out} holds no run (no config.json) and no {data_flag} is given: "
                                   f"check --out, or add {data_flag} to start a run there")
    kind_set = ((d.get("data") or {}).get("options") or {}).get("kind") is not None or \
        any(o.split("=")[0].strip() == "data.options.kind" for o in overrides)  # so not guessed from the file
    if (single_image or {}).get("image") == "example" and not (resume or overwrite or dry_run):
        from pixmorph.train.checkpoint import refuse_to_start_over

        refuse_to_start_over(out, method)  # before RUN/example is written into a folder the run would refuse
    cleanup.enter_context(example_removed_if_refused(out, single_image, dry_run))  # RUN/example is written here
    d = apply_single_image(method, d, single_image, resume, dry_run)
    d = apply_overrides(d, list(overrides), model_config)
    return RunConfig.from_dict(d), kind_set


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` laid over it key by key, sections within sections (a YAML given again on a
    resume changes the options it names and leaves the others as the run had them, data.root included)."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def dry_run_config(cfg: RunConfig, method_cls: type, single_image: dict) -> dict:
    """The config as ``--dry-run`` prints it: the image sizes resolved as training resolves them (a built-in
    task's size, without preparing it), or, where the data decides them, said so instead of null."""
    from pixmorph.data import builtin
    from pixmorph.data.fewshot import dry_run_flip
    from pixmorph.data.layouts import layout_options
    from pixmorph.data.resolve import native_size, resolve_sizes

    d = cfg.to_dict()
    root = cfg.data.root
    example = (single_image or {}).get("image") == "example"  # its files are not written in a dry run
    if root and not example and not Path(root).expanduser().exists() and not builtin.is_builtin(root):
        raise FileNotFoundError(f"{root}: no such file or folder, and not a built-in task "
                                f"(built-in: {', '.join(sorted(builtin.TASKS))})")
    d["data"]["options"] = layout_options(method_cls.data_layout, cfg.data.options)  # as training parses them
    if method_cls.data_layout == "fewshot":  # the data's own flip: false (glyphs) turns data.flip off
        d["data"]["flip"] = dry_run_flip(cfg.data)
    if method_cls.data_layout == "single":  # DeepSIM trains at its image's size
        d["data"]["load_size"] = d["data"]["crop_size"] = dry_run_size(cfg, single_image)
    else:
        sizes = resolve_sizes(cfg.data, native_size(cfg.data.root), method_cls.reference_sizes)
        d["data"].update(load_size=sizes.load_size, crop_size=sizes.crop_size)
    return d


def check_to_class(translator: Translator, to_class: str) -> None:
    """``--to CLASS`` refused as the user wrote it (not as the direction ``to:CLASS`` it stands for) when the
    checkpoint has no classes, or not that one."""
    method = translator.config.method
    classes = [d.removeprefix("to:") for d in translator.directions if d.startswith("to:")]
    if not classes:
        raise ValueError(f"--to {to_class}: this {method} checkpoint has no target classes (--to is for two-step "
                         f"models); its directions: {', '.join(translator.directions)}{translator.direction_note()}")
    if to_class not in classes:
        alike = [c for c in classes if c.casefold() == to_class.casefold()]
        guess = f" (did you mean --to {alike[0]}?)" if alike else ""
        raise ValueError(f"--to {to_class}: this {method} checkpoint has no class {to_class!r}; its classes: "
                         f"{', '.join(classes)}{guess}")


@cli.command()
@click.argument("checkpoint", type=click.Path(exists=True))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--direction", default=None,
              help="AtoB or BtoA (CycleGAN), to:CLASS (two-step; or --to), reconstruct (FUNIT, two-step); "
                   "default AtoB, or the checkpoint's only direction.")
@click.option("--to", "to_class", metavar="CLASS", help="Target class, for class-conditional methods (same as --direction to:CLASS).")
@click.option("--size", type=click.IntRange(min=1), help="Translate at SIZE x SIZE instead of full size.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable images with a warning instead of stopping.")
@click.option("--runtime", type=click.Choice(["torch", "onnx"]),
              help="torch (default), or onnx: run the generator with ONNX Runtime (pip install 'pixmorph[onnx]'); "
                   "--onnx FILE implies onnx.")
@click.option("--onnx", "onnx_prefix", type=click.Path(dir_okay=False),
              help="Run with ONNX Runtime (implies --runtime onnx) from the FILE given to `pixmorph export --onnx`, "
                   "which must be an export of this CHECKPOINT; without it, --runtime onnx exports now.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="PyTorch runtime: auto is bf16 on CUDA and on CPUs with AMX or AVX512-BF16, else fp32.")
@click.option("--side-by-side", is_flag=True,
              help="Inputs hold A and B side by side (the pix2pix layout, as `data get pix2pix/...` gives it): the "
                   "half the model takes is translated (A; B for BtoA, or for pix2pix trained with "
                   "data.options.direction=BtoA).")
def translate(checkpoint: str, inputs: tuple[str, ...], out: str, direction: str | None, to_class: str | None, size: int | None,
              batch_size: int, device: str, skip_bad: bool, runtime: str | None, onnx_prefix: str | None,
              precision: str, side_by_side: bool) -> None:
    """Translate image files and folders with a trained CHECKPOINT (run folder or checkpoint folder)."""
    if onnx_prefix and runtime == "torch":
        raise click.BadParameter("--onnx FILE runs ONNX Runtime; drop --runtime torch (or --onnx)",
                                 param_hint="'--onnx'")
    runtime = "onnx" if onnx_prefix else runtime or "torch"
    if runtime == "onnx" and precision in ("bf16", "fp16"):
        raise click.BadParameter(f"{precision} is for the PyTorch runtime; ONNX Runtime runs the exported float32 "
                                 f"files: drop --precision, or give --runtime torch", param_hint="'--precision'")
    if to_class:
        to_class = to_class.removeprefix("to:")  # --to to:boot, as the direction is written
        if direction not in (None, f"to:{to_class}"):
            raise click.UsageError(f"--to {to_class} and --direction {direction}: give one of them (--to CLASS is "
                                   f"--direction to:CLASS)")
        direction = f"to:{to_class}"
    import torch
    from tqdm import tqdm

    from pixmorph import load
    from pixmorph.api import file_batches
    from pixmorph.data.transforms import resize_tensor
    from pixmorph.data.folders import (input_half, read_input, warn_if_side_by_side_input,
                                       warn_unless_side_by_side_input)
    from pixmorph.fullsize_memory import check_translate_fits
    from pixmorph.images import (BadImageWarning, ImageReadError, check_distinct_outputs, check_images,
                                 files_and_folders)
    from pixmorph.methods.deepsim import check_primitives
    from pixmorph.train.loop import resolve_device

    try:
        with warnings.catch_warnings(record=True) as loading:
            warnings.simplefilter("always")
            if onnx_prefix:  # FILE.BtoA.onnx names its direction, and only that file is needed
                from pixmorph.export import named_direction

                translator = load(checkpoint, device=str(resolve_device(device)), precision="fp32")
                named = named_direction(onnx_prefix, translator.directions)
                if named and direction not in (None, named):
                    raise click.UsageError(f"--onnx {onnx_prefix} is the {named} generator, but the direction asked "
                                           f"for is {direction}: give the export's prefix, or one direction")
                direction = direction or named
                translator.use_onnx(onnx_prefix, direction=direction)  # only the file it needs
            else:
                translator = load(checkpoint, device=str(resolve_device(device)), runtime=runtime,
                                  precision=precision)
    except ImportError as e:  # onnxruntime missing: say how to install it
        raise click.ClickException(str(e)) from None
    for w in loading:  # one line each (an ONNX file too old to be checked against the checkpoint)
        click.echo(f"warning: {one_line(w.message)}", err=True)
    if direction is None:
        try:
            direction = translator.default_direction()
        except ValueError as err:
            raise ValueError(f"{err}: --to CLASS") from None
    if to_class:
        check_to_class(translator, to_class)
    translator.generator(direction)  # an unknown direction: said before any file is read or the progress bar is drawn
    half = input_half(direction, translator.config.data.options) if side_by_side else None
    with warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always")
        files = check_images(files_and_folders(inputs, "translate"), skip_bad=skip_bad)
        check_primitives(translator, files, at_own_size=size is None)
        if half and files:
            warn_unless_side_by_side_input(files[0], half)
        elif files and translator.config.method == "pix2pix":
            warn_if_side_by_side_input(files[0], input_half(direction, translator.config.data.options))
    for w in skipped:  # one line each, not Python's warning format; a bad file's as when it fails being read
        click.echo(f"warning: {'skipped ' if w.category is BadImageWarning else ''}{one_line(w.message)}", err=True)
    out_dir = Path(out)
    check_distinct_outputs(files, out_dir)
    check_translate_fits(translator, direction, files, batch_size, size, half)  # before a CPU's OOM kill
    def read(f: Path) -> torch.Tensor | None:  # when its batch comes: a folder takes one batch's memory
        try:
            x = translator.input_tensor(read_input(f, half))
        except ImageReadError as e:
            if not skip_bad:
                raise
            tqdm.write(f"warning: skipped {e}", file=sys.stderr)
            return None
        return x if size is None else resize_tensor(x[None], size)[0]  # as translate_batch would: batches share it

    nothing = f"no readable image among {', '.join(inputs)}: nothing to translate"
    if not files:
        raise ValueError(nothing)
    with tqdm(total=len(files), unit="img") as bar:  # equal sizes (from the headers) share a batch
        n_read = translator.translate_files(file_batches(files, batch_size, half, size), direction, out_dir, read,
                                            done=bar.update)
    if n_read == 0:  # every file failed when decoded (--skip-bad)
        raise ValueError(nothing)
    click.echo(f"{n_read} image{'' if n_read == 1 else 's'} translated {direction} into {out_dir}"
               f"{translator.direction_note()}")


@cli.command()
@click.argument("checkpoint", type=click.Path(exists=True))
@click.option("--onnx", "onnx_file", required=True, type=click.Path(dir_okay=False),
              help="FILE.onnx: one FILE.<direction>.onnx per generator is written (dynamic batch and image size, "
                   "padded to the stride inside the file; a two-step model's files take only its model size).")
@click.option("--check-size", type=click.IntRange(min=1), help="Image side for the check against PyTorch (default: the training size: "
                                                 "the crop, or a DeepSIM run's image; a two-step model: its model size "
                                                 "only).")
def export(checkpoint: str, onnx_file: str, check_size: int | None) -> None:
    """Export every generator of CHECKPOINT to ONNX and check each against PyTorch."""
    from pixmorph.export import export_each

    try:
        exports = export_each(checkpoint, onnx_file, check_size)  # loads and checks: a bad checkpoint is one line
        click.echo(f"exporting the generators of {checkpoint}, each checked against PyTorch (seconds to a minute "
                   "each on a CPU)", err=True)
        for e in exports:  # each said as it is done
            click.echo(f"{e.direction}: {e.path} (max abs difference vs PyTorch: {e.max_abs_diff:.2e})")
    except ImportError as e:
        raise click.ClickException(str(e)) from None


@cli.command()
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--minutes", default=10.0, show_default=True, type=FiniteFloat(min=0), help="Cap on training time (the demo schedule takes ~3 min on 2 idle cores).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
def demo(out: str, minutes: float, device: str) -> None:
    """Train CycleGAN on built-in fashion-edges for a few minutes, translate held-out edge maps, write a page."""
    from pixmorph.demo import run_demo

    result = run_demo(Path(out), minutes=minutes, device=device)
    click.echo(f"L1 to ground truth: CycleGAN {result['l1_model']:.3f}, input unchanged {result['l1_identity']:.3f}, "
               f"untrained {result['l1_untrained']:.3f}")
    click.echo(f"grid: {result['grid']}\npage: {result['page']}")
    click.echo(f"model: {result['run']} (e.g. pixmorph translate {result['run']} EDGE_MAPS --out DIR)")
    click.echo(f"try it in a browser: pixmorph serve demo={result['run']}")


@cli.group()
def data() -> None:
    """Public datasets: list and download; where the built-in tasks are."""


@data.command("list")
def data_list() -> None:
    """Datasets that `pixmorph data get` knows, and the built-in tasks."""
    from pixmorph.data import builtin, download

    for name in download.list_datasets():
        click.echo(f"{name:32s} {download.DATASETS[name].url}")
    for name, task in builtin.TASKS.items():
        click.echo(f"{name:32s} built-in: {task.description}")


@data.command("get")
@click.argument("name")
@click.option("--root", default="datasets", show_default=True, type=click.Path(file_okay=False))
def data_get(name: str, root: str) -> None:
    """Download and unpack dataset NAME into ROOT/NAME (resumes a partial download)."""
    from pixmorph.data import download

    click.echo(f"{name}: {download.download(name, root)}")


@data.command("path")
@click.argument("name")
def data_path(name: str) -> None:
    """The folder of built-in task NAME, prepared first if it is not yet (to read its files)."""
    from pixmorph.data import builtin, download

    if name not in builtin.TASKS:
        where = (f": {name} is a download, `pixmorph data get {name}` puts it in {download.dataset_dir(name)}"
                 if name in download.DATASETS else "")
        raise click.BadParameter(f"{name!r} is no built-in task{where}; those are {', '.join(sorted(builtin.TASKS))}",
                                 param_hint="NAME")
    if not builtin.task_folder(name).is_dir():  # the first time: seconds of silence otherwise
        click.echo(f"building {name} (once, about 10 s)", err=True)
    click.echo(builtin.prepare_task(name))


from pixmorph.metrics.cli import classifier_group, eval_command  # noqa: E402  (light: no torch import)

cli.add_command(eval_command)
cli.add_command(classifier_group)
cli.add_command(edit_command)
from pixmorph.fewshot_cli import fewshot as fewshot_command  # noqa: E402  (FUNIT)

cli.add_command(fewshot_command)
from pixmorph.serve.cli import serve_command  # noqa: E402  (light: uvicorn loads when it runs)

cli.add_command(serve_command)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as the command's other messages are: one line, without the source line that raised it."""
    print(f"warning: {one_line(message)}", file=file or sys.stderr)


def main() -> None:
    """Entry point: known errors are printed as one line, not a traceback."""
    try:
        from pixmorph.errors import USER_ERRORS  # imports torch: seconds, in which a Ctrl-C is likely
    except KeyboardInterrupt:
        click.echo("aborted", err=True)
        sys.exit(130)

    warnings.showwarning = _one_line_warning
    try:
        cli(standalone_mode=False, prog_name="pixmorph")
    except click.exceptions.Abort as abort:
        from pixmorph.train.stopping import StoppedAndSaved, TrainingAborted

        if isinstance(abort.__cause__, EOFError):  # click takes any EOFError for Ctrl-D at a prompt; pixmorph
            click.echo(f"error: a file ended too soon ({abort.__cause__ or 'EOFError'})", err=True)  # asks none
            sys.exit(1)
        if isinstance(abort.__cause__, TrainingAborted):
            click.echo(f"aborted without saving: {abort.__cause__}", err=True)
        elif not isinstance(abort.__cause__, StoppedAndSaved):  # saved: the loop has said where and how to go on
            click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:  # one line, as pixmorph's own errors (click's own show adds its usage)
        ctx = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if isinstance(e, click.UsageError) and ctx else ""
        if says_it_here(e):
            click.echo(f"error: {one_line(e.format_message())}{hint}", err=True)
        sys.exit(e.exit_code)
    except USER_ERRORS as e:
        if says_it_here(e):
            click.echo(f"error: {one_line(e)}", err=True)
        sys.exit(1)
    except (MemoryError, RuntimeError) as e:
        message = stopped_by_another(e) or out_of_memory(e) or lost_process(e)
        if message is None:
            raise
        click.echo(f"error: {message}", err=True)
        sys.exit(1)


def says_it_here(error: BaseException) -> bool:
    """Under torchrun every process of a machine reads the same options and files, so the first process of each
    machine says an error for all of them: once in each machine's log (rank 0 alone left another machine's own
    error unsaid there). An error a process said as its own (train/terminal.py) is not said again."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and not getattr(error, "said", False)


def stopped_by_another(error: BaseException) -> str | None:
    """For a process of a distributed run that another one's error stopped (train.distributed.failing_together:
    a first process out of memory while it drew a sample grid), the line that says so, not that error again."""
    by = getattr(error, "raised_by", None)
    if by is None or str(by) == os.environ.get("RANK", "0"):
        return None
    return f"process {os.environ.get('RANK', '?')}: process {by} of this run stopped (its error is above)"


def lost_process(error: BaseException) -> str | None:
    """One line for a process of a distributed run whose peer stopped (its own error is printed above), else
    None. Gloo and NCCL say so as a closed connection or a failed collective."""
    text = " ".join(str(error).split())
    signs = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL communicator was aborted")
    if os.environ.get("WORLD_SIZE", "1") == "1" or not any(s in text for s in signs):
        return None
    return f"process {os.environ.get('RANK', '?')}: another process of this run stopped (its error is above)"


def out_of_memory(error: BaseException) -> str | None:
    """A one-line account of running out of memory (the CPU's or a GPU's), else None."""
    text = " ".join(str(error).split())
    if type(error).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
        where = "GPU memory"
    elif isinstance(error, MemoryError) or "can't allocate memory" in text:  # the CPU allocator says so
        where = "memory"
    else:
        return None
    detail = text.split(". ")[0][:160]
    return (f"out of {where}{f' ({detail})' if detail else ''}: use smaller images (translate --size, "
            "data --crop-size), a smaller --batch-size, or a machine with more memory")


if __name__ == "__main__":
    main()
