"""``pixmorph fewshot``: translate content images into a class given by K example images (FUNIT)."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import click

from pixmorph.messages import one_line


LIST_FLAGS = ("--content", "--class-images")


def spread_lists(args: list[str], takes_value: set[str]) -> list[str]:
    """``--content A B --class-images C`` -> ``--content A --content B --class-images C``: a list flag takes
    every path up to the next option and may repeat; another option and its value (``--out DIR``) in between
    do not end the list."""
    out: list[str] = []
    current = None
    rest = iter(args)
    for tok in rest:
        name = tok.split("=", 1)[0]
        if tok in LIST_FLAGS:
            current = tok
        elif name in LIST_FLAGS:  # --content=A
            current = name
            out.append(tok)
        elif tok.startswith("-"):
            out.append(tok)
            if tok in takes_value:
                out.extend(itertools.islice(rest, 1))
        elif current is not None:
            out += [current, tok]
        else:
            out.append(tok)
    return out


class ListOptionsCommand(click.Command):
    """A command whose :data:`LIST_FLAGS` options take several values each (click options take one)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {opt for p in self.params if isinstance(p, click.Option) and not p.is_flag and not p.count
                       for opt in p.opts}
        return super().parse_args(ctx, spread_lists(args, takes_value))


def check_out_is_no_class_folder(out: str, class_files: list[Path]) -> None:
    """Outputs written beside the class images would be read as images of the class by the next call on that
    folder (K grows with translations), though none is written over."""
    out_dir = Path(out)
    if not out_dir.is_dir():
        return
    klass = next((f for f in class_files if f.parent.exists() and out_dir.samefile(f.parent)), None)
    if klass is not None:
        raise ValueError(f"--out {out} holds the class image {klass}: the translations would join the class's images "
                         f"(and be class images to the next --class-images {out}): give another --out")


@click.command(cls=ListOptionsCommand)
@click.argument("checkpoint", type=click.Path(exists=True))
@click.option("--content", multiple=True, required=True, type=click.Path(exists=True), metavar="PATH...",
              help="Content image(s) and/or folder(s) to translate; several paths may follow, and the option may "
                   "repeat.")
@click.option("--class-images", multiple=True, required=True, type=click.Path(exists=True), metavar="PATH...",
              help="K >= 1 images of the target class: files and/or folders; several paths may follow, and the "
                   "option may repeat.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--size", type=click.IntRange(min=1), help="Translate at SIZE x SIZE (default: the training size).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="auto: bf16 on CUDA and on CPUs with AMX or AVX512-BF16, else fp32.")
def fewshot(checkpoint: str, content: tuple[str, ...], class_images: tuple[str, ...], out: str, size: int | None,
            device: str, precision: str) -> None:
    """Re-render content images as the class shown by K example images, with a FUNIT CHECKPOINT.

    \b
    pixmorph fewshot CKPT --content IMG... --class-images FILES_OR_DIR... --out DIR
    """
    from pixmorph.fewshot import class_image_files, load_fewshot, once_each, repeated_note, source_class_overlap
    from pixmorph.images import check_distinct_outputs, check_images, files_and_folders, read_image
    from pixmorph.train.loop import resolve_device

    model = load_fewshot(checkpoint, device=str(resolve_device(device)), precision=precision)
    class_files, repeated = once_each(check_images(class_image_files(class_images)))
    if repeated:
        click.echo(f"warning: {repeated_note(repeated, len(class_files))}", err=True)
    note = source_class_overlap(model, class_files)
    if note:
        click.echo(f"warning: {one_line(note)}", err=True)
    files = check_images(files_and_folders(content, "translate"))
    names = [f"{f.stem}.png" for f in files]
    check_distinct_outputs(files, out, keep=class_files)
    check_out_is_no_class_folder(out, class_files)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = model.class_code([read_image(f, mode=model.mode) for f in class_files])
    from tqdm import tqdm

    from pixmorph.images import save_image, to_tensor

    for f, name in tqdm(list(zip(files, names)), unit="img"):
        x = to_tensor(read_image(f, mode=model.mode))[None]
        save_image(model.translate_code(x, code, size)[0], out_dir / name)
    click.echo(f"{len(files)} image(s) translated with K={len(class_files)} class images into {out_dir}")
