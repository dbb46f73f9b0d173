"""The DeepSIM parts of the ``pixmorph`` command: the single-image options of ``pixmorph train`` and
``pixmorph edit``. Light at import (click only): the CLI must not load torch to print its help."""

from __future__ import annotations

import functools
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from pixmorph.messages import one_line

SINGLE_IMAGE_FLAGS = ("image", "primitive", "seg", "edges", "kind", "max_side")


def single_image_options(command: Callable) -> Callable:
    """Add --image/--primitive/--seg/--edges/--kind/--max-side to ``pixmorph train``; the command receives
    them as one ``single_image`` dict (None values for flags not given)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        kwargs["single_image"] = {name: kwargs.pop(name) for name in SINGLE_IMAGE_FLAGS}
        return command(*args, **kwargs)

    options = [
        click.option("--image", help="deepsim: the one training image, or 'example' (a built-in photo and edges)."),
        click.option("--primitive", help="deepsim: its primitive: an edge map or segmentation file, auto-edges "
                                         "(Canny, the default) or auto-seg (SLIC superpixels)."),
        click.option("--seg", help="deepsim: 'auto' (SLIC superpixels) or a segmentation file as the primitive."),
        click.option("--edges", help="deepsim: 'auto' (Canny) or an edge-map file; alone: the edge map is the "
                                     "primitive; with --seg or a segmentation --primitive: train on seg+edges."),
        click.option("--kind", type=click.Choice(["edges", "seg", "seg+edges"]),
                     help="deepsim: the primitive's kind (default: guessed from the file)."),
        click.option("--max-side", type=click.IntRange(min=16), help="deepsim: scale the image to this longer side (then to 16s)."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def apply_single_image(method: str, d: dict[str, Any], flags: dict[str, Any] | None, resume: bool,
                       dry_run: bool = False) -> dict[str, Any]:
    """Fold the single-image flags into the config dict of ``pixmorph train`` (a ``dry_run`` writes nothing)."""
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    if method != "deepsim":
        if given:
            names = ", ".join("--" + k.replace("_", "-") for k in given)
            raise click.UsageError(f"{names}: single-image options, for `pixmorph train deepsim` only")
        return d
    if resume and (Path(d["train"]["out"]) / "config.json").is_file():
        return _relocated(d, given)  # the saved config has them; flags only say where a moved file is now
    if not given.get("image") and not (d.get("data") or {}).get("root"):
        raise click.UsageError("pixmorph train deepsim needs --image IMG (or --image example for the built-in photo)")
    configured = ((d.get("data") or {}).get("options") or {}).get("primitive")  # from --config
    if given.get("kind") in ("seg", "seg+edges") and not {"seg", "primitive"} & set(given) and not configured:
        edges = "; its edge map: --edges FILE, else Canny edges of the image" if given["kind"] == "seg+edges" else ""
        raise click.UsageError(f"--kind {given['kind']}: give the segmentation with --seg FILE (or --seg auto: SLIC "
                               f"superpixels of the image){edges}")
    if "seg" in given:
        if "primitive" in given:
            raise click.UsageError("--seg names the primitive already: give --seg or --primitive, not both")
        seg = given.pop("seg")
        given["primitive"] = "auto-seg" if seg == "auto" else seg
        if "kind" not in given and "edges" not in given:  # a segmentation, whatever its file looks like
            given["kind"] = "seg"
    from pixmorph.methods.deepsim import apply_cli_options

    return apply_cli_options(d, **{k: given.get(k) for k in SINGLE_IMAGE_FLAGS if k != "seg"}, dry_run=dry_run)


@contextmanager
def example_removed_if_refused(out: str, flags: dict[str, Any] | None, dry_run: bool) -> Iterator[None]:
    """``--image example`` writes the built-in example into RUN/example before the run's settings are checked:
    a run that ends without a checkpoint (refused: a bad --device or --set) takes away the example folder and
    the run folder this command made for it, as a refused run leaves no folder behind. (A run that diverged
    keeps it beside its logs.)"""
    from pixmorph.train.loop import TrainingDiverged, first_missing, remove_if_empty

    folder = Path(out) / "example"
    created = first_missing(folder) if (flags or {}).get("image") == "example" and not dry_run else None
    try:
        yield
    except BaseException as error:
        if created is not None and not (Path(out) / "checkpoint").exists() and not isinstance(error, TrainingDiverged):
            shutil.rmtree(folder, ignore_errors=True)
            if created != folder:  # the run folder too: gone unless the run left more than a refused one leaves
                remove_if_empty(Path(out), created)
        raise


def guessed_kind_note(cfg: Any, flags: dict[str, Any] | None) -> str | None:
    """What a run says when it guessed its primitive's kind from the file (--primitive FILE alone)."""
    given = {k for k, v in (flags or {}).items() if v is not None}
    primitive = (cfg.data.options or {}).get("primitive", "auto")
    if "primitive" not in given or given & {"kind", "edges", "seg"} or primitive.startswith("auto"):
        return None
    kind = cfg.data.options["kind"]
    return (f"{primitive}: read as {'an edge map' if kind == 'edges' else 'a segmentation'} (guessed from the "
            f"file; --kind {'seg' if kind == 'edges' else 'edges'} says otherwise)")


def _relocated(d: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """A resumed DeepSIM run keeps its image, primitive, kind and size: a flag that would change them is
    refused in one line; one that names the new place of a training file that is no longer where it was is
    taken. A missing file not given again is named, with the flag that gives its new place."""
    data = d.setdefault("data", {})
    opts = data.setdefault("options", {})
    out = d["train"]["out"]
    kind = opts.get("kind", "edges")
    if given.get("image") == "example":
        given["image"] = str(Path(out) / "example" / "image.png")
    for flag, value in given.items():
        if flag in ("kind", "max_side"):
            if value != opts.get(flag, kind if flag == "kind" else None):
                raise click.UsageError(f"--{flag.replace('_', '-')} {value}: {out} trained with "
                                       f"{opts.get(flag)!r}, and a resumed run keeps it: start a new run with "
                                       f"another --out")
            continue
        section, key = (data, "root") if flag == "image" else \
            (opts, "edges" if flag == "edges" and kind == "seg+edges" else "primitive")
        saved, shown = section.get(key), value
        if key == "primitive" and value == "auto":  # as a new run reads --edges auto / --seg auto
            value = "auto-edges" if flag == "edges" else "auto-seg"
        if _same_file(saved, value):
            continue
        if saved and not str(saved).startswith("auto") and not Path(saved).exists() and Path(value).is_file():
            click.echo(f"{saved} is not there any more: {out} now reads it from {value}", err=True)
            section[key] = str(Path(value).expanduser().resolve())
            continue
        raise click.UsageError(f"--{flag} {shown}: {out} trained on {saved}, and a resumed run keeps its image "
                               f"and primitive (a moved file may be given again at its new place): start a new "
                               f"run with another --out")
    _refuse_missing(data, out, kind)
    return d


def _same_file(saved: Any, value: str) -> bool:
    if saved is None or str(saved).startswith("auto") or str(value).startswith("auto"):
        return str(saved) == str(value)
    return Path(saved).expanduser().resolve() == Path(value).expanduser().resolve()


def _refuse_missing(data: dict[str, Any], out: str, kind: str) -> None:
    """One line, with the flag to give, for a training file of the run that is no longer where it was."""
    opts = data.get("options") or {}
    files = [("--image", data.get("root")), ("--seg" if kind != "edges" else "--edges", opts.get("primitive")),
             ("--edges", opts.get("edges"))]
    for flag, path in files:
        if path and not str(path).startswith("auto") and not Path(path).exists():
            raise click.UsageError(f"{path}: {out} trained on this file, and it is not there any more: give its "
                                   f"new place with {flag} FILE (with --resume)")


def dry_run_size(cfg: Any, flags: dict[str, Any] | None) -> str:
    """What ``pixmorph train deepsim --dry-run`` prints for data.load_size/crop_size: they do not apply, the
    image's own size (``max_side``, then multiples of 16) does; read from the file's header, or known for
    the built-in example (not written in a dry run)."""
    from pixmorph.data import primitives as P
    from pixmorph.data.single_image import EXAMPLE_SIZE, training_size

    max_side = (cfg.data.options or {}).get("max_side")
    if (flags or {}).get("image") == "example":
        size = P.round_size(*EXAMPLE_SIZE, max_side)
    else:
        size = training_size(cfg.data.root, max_side)
    return f"from the data: {size[0]}x{size[1]}, the image's size" if size else "from the data: the image's size"


def save_training_primitive(cfg: Any, pair: Any = None) -> list[Path]:
    """The training primitive, as the model sees it (at the training size), as files in ``RUN/primitive``: a
    computed one (``auto-edges``, ``auto-seg`` or ``--edges auto``) is something to edit and render with
    ``pixmorph edit``; a given one keeps the run whole (``pixmorph serve`` takes its canvas and palette from
    there when the file has moved, or on another machine). ``pair``: the run's SingleImage dataset, already
    read (its primitive may be a file in RUN/primitive, set aside by --overwrite); else it is read here."""
    from pixmorph.data.single_image import SingleImage
    from pixmorph.images import save_image

    pair = pair if pair is not None else SingleImage(cfg.data.root, cfg.data.options or {})
    folder = Path(cfg.train.out) / "primitive"
    stem = Path(cfg.data.root).stem
    if pair.options.kind == "seg+edges":
        return [save_image(pair.primitive[:3], folder / f"{stem}_seg.png"),
                save_image(pair.primitive[3:], folder / f"{stem}_edges.png")]
    return [save_image(pair.primitive, folder / f"{stem}_{pair.options.kind}.png")]


def computed_primitive(options: dict[str, Any]) -> bool:
    """Whether a run computes (part of) its primitive from its image."""
    from pixmorph.data.single_image import AUTO_EDGES, AUTO_SEG

    return options.get("primitive", AUTO_EDGES) in (AUTO_EDGES, AUTO_SEG) or (
        options.get("kind") == "seg+edges" and options.get("edges", "auto") == "auto")


def primitive_hint(run: str | Path, files: list[Path], options: dict[str, Any]) -> str:
    """Where the computed primitive is, and how to render an edited copy (``options``: the run's data.options;
    a seg+edges run on the user's segmentation computed only the edge map)."""
    from pixmorph.data.single_image import AUTO_SEG

    args = f"{files[0]} --edges {files[1]}" if len(files) == 2 else str(files[0])
    if len(files) == 2 and options.get("primitive") != AUTO_SEG:
        what = f"computed edge map: {files[1]} (beside your segmentation at the training size, {files[0]})"
    else:
        what = f"computed primitive: {', '.join(map(str, files))}"
    return f"{what} (edit a copy, then `pixmorph edit {run} {args} --out DIR`)"


def warn_of_unlikely_primitives(options: dict[str, Any]) -> None:
    """At training, as at edit time: a warning when the file given as the edge map is in colour (the photo?)
    or the one given as the segmentation looks like a drawn edge map."""
    from pixmorph.data.single_image import AUTO_EDGES, AUTO_SEG
    from pixmorph.methods.deepsim import warn_if_not_primitive

    kind, primitive, edges = options.get("kind"), options.get("primitive"), options.get("edges", "auto")
    if primitive not in (None, AUTO_EDGES, AUTO_SEG, "auto"):
        warn_if_not_primitive(primitive, "edges" if kind == "edges" else "seg", kind, reader="run")
    if kind == "seg+edges" and edges != "auto":
        warn_if_not_primitive(edges, "edges", kind, reader="run")


@click.command("edit")
@click.argument("checkpoint", type=click.Path(exists=True))
@click.argument("primitives", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (<name>.png per input).")
@click.option("--edges", "edge_files", multiple=True, type=click.Path(exists=True),
              help="seg+edges models: one edge map per segmentation, in order (repeat the option; a folder gives "
                   "its images in name order).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="auto: bf16 on CUDA and on CPUs with AMX or AVX512-BF16, else fp32.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Primitives of one size rendered per generator call (fewer where memory is short).")
def edit_command(checkpoint: str, primitives: tuple[str, ...], out: str, edge_files: tuple[str, ...],
                 device: str, precision: str, batch_size: int) -> None:
    """Render edited PRIMITIVES (edge maps / segmentations: files or folders) with a DeepSIM CHECKPOINT (run
    or checkpoint folder)."""
    from pixmorph import load
    from pixmorph.images import files_and_folders
    from pixmorph.methods.deepsim import edit
    from pixmorph.train.loop import resolve_device

    primitive_files, edge_maps = files_and_folders(primitives, "render"), files_and_folders(edge_files, "render")
    if not primitive_files:
        raise ValueError(f"no image files in {', '.join(primitives)}: nothing to render")
    translator = load(checkpoint, device=str(resolve_device(device)), precision=precision)
    with warnings.catch_warnings(record=True) as mismatched:
        warnings.simplefilter("always")
        written = edit(translator, primitive_files, out, edges=edge_maps or None, batch_size=batch_size)
    for w in mismatched:  # one line each (a primitive that does not look like what the model takes)
        click.echo(f"warning: {one_line(w.message)}", err=True)
    click.echo(f"{len(written)} edited image{'' if len(written) == 1 else 's'} rendered into {out}")
