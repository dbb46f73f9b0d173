"""``pixmorph fewshot``: translate content images into a class given by K example images (FUNIT)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click


LIST_FLAGS = ("--content", "--class-images")


def split_lists(tokens: tuple[str, ...]) -> dict[str, list[str]]:
    """``--content A B --class-images C D`` (each flag takes every path up to the next flag, and may repeat)."""
    lists: dict[str, list[str]] = {flag: [] for flag in LIST_FLAGS}
    current = None
    for tok in tokens:
        if tok in LIST_FLAGS:
            current = tok
        elif tok.startswith("--") and "=" in tok and tok.split("=", 1)[0] in LIST_FLAGS:
            current = tok.split("=", 1)[0]
            lists[current].append(tok.split("=", 1)[1])
        elif tok.startswith("-"):
            raise click.UsageError(f"unknown option {tok}")
        elif current is None:
            raise click.UsageError(f"{tok}: give content images after --content and class images after --class-images")
        else:
            lists[current].append(tok)
    for flag, paths in lists.items():
        if not paths:
            raise click.UsageError(f"{flag} needs at least one file or folder")
        for path in paths:
            if not Path(path).exists():
                raise click.BadParameter(f"{path}: no such file or folder", param_hint=flag)
    return lists


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("checkpoint", type=click.Path(exists=True))
@click.argument("paths", nargs=-1, type=click.UNPROCESSED)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--size", type=int, help="Translate at SIZE x SIZE (default: the training size).")
@click.option("--device", default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="auto: bf16 on CUDA and on CPUs with AMX, else fp32.")
def fewshot(checkpoint: str, paths: tuple[str, ...], out: str, size: int | None, device: str, precision: str) -> None:
    """Re-render content images as the class shown by K example images, with a FUNIT CHECKPOINT.

    \b
    pixmorph fewshot CKPT --content IMG... --class-images FILES_OR_DIR... --out DIR
      --content        content image(s) and/or folder(s)
      --class-images   K >= 1 images of the target class: files and/or a folder
    """
    lists = split_lists(paths)
    content, class_images = lists["--content"], lists["--class-images"]
    from pixmorph.fewshot import class_image_files, load_fewshot, source_class_overlap
    from pixmorph.images import check_images, list_images, read_image
    from pixmorph.train.loop import resolve_device

    model = load_fewshot(checkpoint, device=str(resolve_device(device)), precision=precision)
    class_files = check_images(class_image_files(class_images))
    note = source_class_overlap(model, class_files)
    if note:
        click.echo(f"warning: {note}", err=True)
    files = [f for p in map(Path, content) for f in (list_images(p) if p.is_dir() else [p])]
    files = check_images(files)
    names = [f"{f.stem}.png" for f in files]
    if len(set(names)) != len(names):
        raise ValueError("two content images have the same name; translate them into separate --out folders")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = model.class_code([read_image(f, mode=model.mode) for f in class_files])
    from pixmorph.images import save_image, to_tensor

    for f, name in zip(files, names):
        x = to_tensor(read_image(f, mode=model.mode))[None]
        save_image(model.translate_code(x, code, size)[0], out_dir / name)
    click.echo(f"{len(files)} image(s) translated with K={len(class_files)} class images into {out_dir}")
