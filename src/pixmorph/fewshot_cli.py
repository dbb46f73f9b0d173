"""``pixmorph fewshot``: translate content images into a class given by K example images (FUNIT)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True))
@click.option("--content", "content", multiple=True, required=True, type=click.Path(exists=True),
              help="Content image(s) or folder(s); repeatable, or several after one flag.")
@click.option("--class-images", "class_images", multiple=True, required=True, type=click.Path(exists=True),
              help="K >= 1 images of the target class: files and/or a folder (repeatable).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--size", type=int, help="Translate at SIZE x SIZE (default: the training size).")
@click.option("--device", default="auto", show_default=True)
def fewshot(checkpoint: str, content: tuple[str, ...], class_images: tuple[str, ...], out: str, size: int | None,
            device: str) -> None:
    """Re-render CONTENT images as the class shown by --class-images, with a FUNIT CHECKPOINT."""
    from pixmorph.fewshot import class_image_files, load_fewshot, source_class_overlap
    from pixmorph.images import check_images, list_images, read_image
    from pixmorph.train.loop import resolve_device

    model = load_fewshot(checkpoint, device=str(resolve_device(device)))
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
