"""The built-in few-shot task ``glyphs``: classes are typefaces, content is the character.

Digits and Latin letters (62 characters) are rendered white on black at 32x32 from every font file
found in matplotlib's own font folder (DejaVu, STIX, Computer Modern) and under ``/usr/share/fonts``
(Debian's ``fonts-*`` packages, e.g. fonts-urw-base35, fonts-liberation, fonts-freefont-ttf). A font
is kept when it covers all 62 characters and renders them differently from every font kept before
(duplicates such as matplotlib's and Debian's copy of DejaVu are dropped).

About a fifth of the fonts are held out as target classes, chosen by a hash of the font's name so
the choice does not move when other fonts are installed. For a held-out font the ground truth of
"character c in this font" is its rendered glyph. On disk (FUNIT's layout, read by ``data/fewshot.py``)::

    ROOT/<font>/<u_A|l_a|d_0>.png   one folder per font
    ROOT/train_list.txt             'font/file' lines of the source fonts (training)
    ROOT/test_list.txt              'font/file' lines of the target fonts (never trained on)
    ROOT/fewshot.json               flip: false (a mirrored glyph is another character), fonts and files
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
IMAGE_SIZE = 32
FLIP = False  # a mirrored glyph is another character: training never mirrors them (fewshot.json)
FONT_PIXELS = 22  # ascent-ish size; the glyph is then scaled to fit BOX if larger
BOX = 28  # the glyph's ink fits a BOX x BOX square at the centre of the image
HOLDOUT_PERCENT = 20
SYSTEM_FONT_DIR = Path("/usr/share/fonts")
FONT_SUFFIXES = (".ttf", ".otf")
RECIPE_VERSION = 1
# Fonts whose cmap claims the Latin letters but draws symbols or boxes (checked by eye on a contact sheet).
NOT_LATIN = re.compile(r"last resort|cmex|cmsy|symbol|d050000l|dingbat", re.IGNORECASE)


def char_file(c: str) -> str:
    """File stem of a character; distinct on case-insensitive file systems (``u_A``, ``l_a``, ``d_0``)."""
    kind = "d" if c.isdigit() else "u" if c.isupper() else "l"
    return f"{kind}_{c}"


@dataclass(frozen=True)
class Font:
    slug: str
    name: str
    path: Path


def matplotlib_font_dir() -> Path | None:
    spec = importlib.util.find_spec("matplotlib")  # no import: matplotlib is slow to import
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf"
    return folder if folder.is_dir() else None


def font_files() -> list[Path]:
    """Candidate font files, matplotlib's first, each folder sorted (so the result is deterministic)."""
    dirs = [d for d in (matplotlib_font_dir(), SYSTEM_FONT_DIR) if d and d.is_dir()]
    return [f for d in dirs for f in sorted(d.rglob("*")) if f.suffix.lower() in FONT_SUFFIXES and f.is_file()]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def render_glyph(font: ImageFont.FreeTypeFont, c: str) -> np.ndarray:
    """``c`` white on black, its ink centred and shrunk (never enlarged) to fit BOX x BOX."""
    left, top, right, bottom = font.getbbox(c)
    w, h = max(1, right - left), max(1, bottom - top)
    canvas = Image.new("L", (w + 4, h + 4), 0)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), c, fill=255, font=font)
    ink = canvas.getbbox()
    if ink is None:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    glyph = canvas.crop(ink)
    scale = min(1.0, BOX / max(glyph.size))
    if scale < 1.0:
        glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))),
                             Image.Resampling.LANCZOS)
    out = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
    out.paste(glyph, ((IMAGE_SIZE - glyph.width) // 2, (IMAGE_SIZE - glyph.height) // 2))
    return np.asarray(out)


def _covers(font: ImageFont.FreeTypeFont, path: Path) -> bool:
    """Whether the font has a real glyph for every character (not the .notdef box)."""
    try:
        from fontTools.ttLib import TTFont  # comes with matplotlib

        cmap = TTFont(str(path), fontNumber=0, lazy=True).getBestCmap() or {}
        return all(ord(c) in cmap for c in CHARACTERS)
    except Exception:
        return False


def render_font(path: Path) -> tuple[str, np.ndarray] | None:
    """(font name, uint8 62 x 32 x 32 glyphs), or None when the font lacks a character or cannot be read."""
    try:
        font = ImageFont.truetype(str(path), FONT_PIXELS)
    except OSError:
        return None
    if not _covers(font, path):
        return None
    family, style = font.getname()
    if NOT_LATIN.search(f"{family} {path.name}"):
        return None
    glyphs = np.stack([render_glyph(font, c) for c in CHARACTERS])
    if (glyphs.reshape(len(CHARACTERS), -1).max(1) == 0).any():
        return None
    return f"{family} {style}".strip(), glyphs


def is_target(name: str) -> bool:
    """Held out (a target class) by a stable hash of the font's name."""
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % 100 < HOLDOUT_PERCENT


def collect_fonts(files: list[Path]) -> list[tuple[Font, np.ndarray]]:
    """Fonts that render all characters, without duplicates (same name, or same pixels)."""
    kept: list[tuple[Font, np.ndarray]] = []
    seen_names, seen_pixels = set(), set()
    for path in files:
        rendered = render_font(path)
        if rendered is None:
            continue
        name, glyphs = rendered
        slug, digest = _slug(name), hashlib.sha1(glyphs.tobytes()).hexdigest()
        if slug in seen_names or digest in seen_pixels:
            continue
        seen_names.add(slug)
        seen_pixels.add(digest)
        kept.append((Font(slug, name, path), glyphs))
    return kept


def _save_png(array: np.ndarray, path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=6)  # no metadata: byte-identical reruns
    path.write_bytes(buf.getvalue())


def write_task(out: Path, fonts: list[tuple[Font, np.ndarray]]) -> None:
    """Write the glyph folders, the two list files and ``fewshot.json`` into ``out``."""
    lists: dict[str, list[str]] = {"train": [], "test": []}
    meta = []
    for font, glyphs in fonts:
        (out / font.slug).mkdir(parents=True)
        split = "test" if is_target(font.name) else "train"
        for c, g in zip(CHARACTERS, glyphs):
            _save_png(g, out / font.slug / f"{char_file(c)}.png")
            lists[split].append(f"{font.slug}/{char_file(c)}.png")
        meta.append({"slug": font.slug, "name": font.name, "file": str(font.path), "split": split})
    if not lists["train"] or not lists["test"]:
        raise ValueError(f"glyphs: {len(fonts)} usable fonts give no source/target split; install more fonts "
                         "(pip install matplotlib, or apt-get install fonts-urw-base35 fonts-liberation)")
    for split, lines in lists.items():
        (out / f"{split}_list.txt").write_text("\n".join(lines) + "\n")
    info = {"flip": FLIP, "source_list": "train_list.txt", "target_list": "test_list.txt",
            "characters": CHARACTERS, "image_size": IMAGE_SIZE, "fonts": meta}
    (out / "fewshot.json").write_text(json.dumps(info, indent=1) + "\n")


def prepare_glyphs(root: str | Path | None = None) -> Path:
    """Render the task once into ``root`` (default ``<cache>/builtin``) and return its folder."""
    from pixmorph.data.builtin import prepare_task

    return prepare_task("glyphs", root)


def load_glyphs(root: Path, split: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Glyphs of one split (``train``: source fonts, ``test``: target fonts) as uint8 F x 62 x 32 x 32,
    with the font slugs and the characters."""
    info = json.loads((root / "fewshot.json").read_text())
    slugs = [f["slug"] for f in info["fonts"] if f["split"] == split]
    chars = info["characters"]
    arrays = np.stack([np.stack([np.asarray(Image.open(root / s / f"{char_file(c)}.png").convert("L")) for c in chars])
                       for s in slugs])
    return arrays, slugs, list(chars)


def font_set_id(files: list[Path]) -> str:
    """A short hash of the font files' names and sizes: installing, removing or updating a font changes it."""
    digest = hashlib.sha1()
    for f in files:
        digest.update(f"{f.name}\0{f.stat().st_size}\n".encode())
    return digest.hexdigest()[:10]


def _register_builtin() -> None:
    """Make ``--data glyphs`` resolve like the Fashion-MNIST tasks (``data/builtin.py``). Its cache folder,
    ``glyphs-v<RECIPE_VERSION>-fonts-<font_set_id>``, names the font files it was rendered from, so other fonts
    give a new folder."""
    from pixmorph.data import builtin

    def build(out: Path, n_train: int, n_test: int) -> None:
        write_task(out, collect_fonts(font_files()))

    files = font_files()
    builtin.TASKS["glyphs"] = builtin.BuiltinTask(
        name="glyphs", layout="fewshot", image_size=IMAGE_SIZE, n_train=0, n_test=0, flip=FLIP,
        folder=f"glyphs-v{RECIPE_VERSION}-fonts-{font_set_id(files)}",
        description=f"few-shot: 62 characters x fonts (from {len(files)} font files found), 32x32 grayscale; "
                    "~20% of the fonts held out as target classes (train_list.txt / test_list.txt)")
    builtin._BUILDERS["glyphs"] = build


_register_builtin()
