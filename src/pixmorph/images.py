"""Reading and writing image files: the one place pixmorph touches them.

Every reader returns a fully decoded 8-bit ``RGB`` (or ``L``) Pillow image,
whatever the file holds: grayscale, palette, CMYK, 1-bit, 16-bit, float,
with or without alpha (alpha is composited over white). Problems with a file
surface as :class:`ImageReadError`, whose message is one line naming the file.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
import threading
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from pixmorph.messages import collapse_whitespace

__all__ = [
    "IMAGE_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "ImageReadError",
    "ImageTooLarge",
    "BadImageWarning",
    "read_image",
    "decode_image",
    "list_images",
    "warn_of_images_in_subfolders",
    "files_and_folders",
    "check_images",
    "to_tensor",
    "to_pil",
    "save_image",
    "write_error",
    "make_grid_image",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm",
     ".gif", ".tga", ".ico"}
)
DEFAULT_MAX_PIXELS = 16000 * 16000

_OUTPUT_MODES = ("RGB", "L")
_WHITE = 255
# What Pillow's decoders raise on damaged data besides OSError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


class ImageReadError(ValueError):
    """An image file that cannot be used; the message is one line naming the file."""


class ImageTooLarge(ImageReadError):
    """An image with more pixels than the reader's limit; ``pixels``: how many it has (None: not known)."""

    pixels: int | None = None


class BadImageWarning(UserWarning):
    """Issued by :func:`check_images` for each file it skips."""


def _fail(path: str | os.PathLike, problem: object, kind: type[ImageReadError] = ImageReadError) -> ImageReadError:
    return kind(f"{os.fspath(path)}: {collapse_whitespace(problem)}")


def _too_large(path: str | os.PathLike, problem: str, pixels: int | None) -> ImageTooLarge:
    error = _fail(path, problem, ImageTooLarge)
    error.pixels = pixels
    return error


# ---------------------------------------------------------------------------
# Opening and checking


_pixel_limit_lock = threading.Lock()


@contextmanager
def _pillow_pixel_limit(max_pixels: int | None) -> Iterator[None]:
    # Pillow's decompression-bomb check uses a global limit (and only warns
    # below twice that limit). Set it to the caller's limit while opening, so
    # that a format whose opening already decodes a frame (ICO) refuses a huge
    # one before decoding it; the error for sizes up to that is our own
    # (_check_size), so Pillow's warning is not shown.
    with _pixel_limit_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None if max_pixels is None else (max_pixels + 1) // 2  # Pillow refuses at 2x
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _check_is_nonempty_file(path: Path) -> None:
    if path.is_symlink() and not path.exists():
        raise _fail(path, f"a link to {os.readlink(path)}, which does not exist")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise _fail(path, "empty file")


def _open_for_reading(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except PermissionError:  # an ImageReadError, so that skip_bad leaves it out like any unreadable file
        raise _fail(path, "not readable (permission denied)") from None


# The first bytes of the formats a user is likely to have: a file that starts as one but does not open is a
# variant Pillow cannot decode (a 32-bit float RGB TIFF, say), not 'not an image'.
_SIGNATURES = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"GIF8": "GIF",
               b"BM": "BMP"}


def _unidentified(fh) -> str:
    fh.seek(0)
    head = fh.read(12)
    kind = "WebP" if head[:4] == b"RIFF" and head[8:12] == b"WEBP" else \
        next((name for magic, name in _SIGNATURES.items() if head.startswith(magic)), None)
    if kind:
        return f"a {kind} file that Pillow cannot read (a variant it does not support, or a corrupt header)"
    return "not an image file (unknown format or corrupt header)"


def _open(path: Path, fh, max_pixels: int | None) -> Image.Image:
    try:
        with _pillow_pixel_limit(max_pixels):
            return Image.open(fh)
    except UnidentifiedImageError:
        raise _fail(path, _unidentified(fh)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        detail = str(err).split(", could be decompression bomb")[0]  # Pillow's alarm adds nothing for a user
        counted = re.search(r"\((\d+) pixels\)", detail)  # 'Image size (N pixels) exceeds limit of M pixels'
        if counted and max_pixels is not None:  # (Pillow's M is twice its own limit: max_pixels + 1 where it is odd)
            detail = f"{counted[1]} pixels, more than the limit of {max_pixels} pixels"
        raise _too_large(path, f"image too large ({detail})", int(counted[1]) if counted else None) from None
    except _DECODE_ERRORS as err:
        raise _fail(path, f"truncated or corrupt image ({err})") from None


def _check_size(path: Path, img: Image.Image, min_size: int, max_pixels: int | None) -> None:
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        raise _too_large(path, f"image is {width}x{height} ({width * height} pixels), more than the limit of "
                               f"{max_pixels} pixels", width * height)
    if width < min_size or height < min_size:
        raise _fail(
            path, f"image is {width}x{height}, smaller than the minimum {min_size}x{min_size}"
        )


# ---------------------------------------------------------------------------
# Mode conversion


def _scale_to_l(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float single-channel images to 8-bit ``L``."""
    values = np.asarray(img).astype(np.float64)
    if img.mode.startswith("I;16"):
        scaled = values / 257.0
    else:
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        low, high = float(values.min()), float(values.max())
        if img.mode == "F" and low >= 0.0 and high <= 1.0:
            scaled = values * 255.0
        elif low >= 0.0 and high <= 255.0:
            scaled = values
        elif low >= 0.0 and high <= 65535.0:
            scaled = values / 257.0
        elif high > low:
            scaled = (values - low) * (255.0 / (high - low))
        else:
            scaled = np.zeros_like(values)
    return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8))


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in img.info


def _composite_over_white(img: Image.Image) -> Image.Image:
    """Flatten transparency onto a white background (to ``L`` or ``RGB``)."""
    grayscale = img.mode in ("LA", "La")
    with_alpha = img.convert("LA" if grayscale else "RGBA")
    base_mode = "L" if grayscale else "RGB"
    flat = Image.new(base_mode, img.size, _WHITE if grayscale else (_WHITE,) * 3)
    flat.paste(with_alpha.convert(base_mode), mask=with_alpha.getchannel("A"))
    return flat


def _to_l_or_rgb(path: Path, img: Image.Image) -> Image.Image:
    if img.mode.startswith("I") or img.mode == "F":
        return _scale_to_l(img)
    if _has_alpha(img):
        return _composite_over_white(img)
    if img.mode == "L":
        return img
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as err:
        raise _fail(path, f"unsupported colour mode {img.mode} ({err})") from None


EXIF_ORIENTATION = 0x0112  # the EXIF tag exif_transpose reads


def _exif_upright(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except (SyntaxError, ValueError, TypeError, KeyError, OSError, struct.error):
        # Malformed EXIF: keep the pixels as stored rather than reject the file.
        return img.copy()


# ---------------------------------------------------------------------------
# Public readers


def read_image(
    path: str | os.PathLike,
    *,
    mode: str | None = "RGB",
    min_size: int = 1,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Read and fully decode an image file as 8-bit ``RGB`` (or ``L``; ``None``: in its own mode, EXIF
    orientation applied and nothing else, for :func:`as_rgb` or a method's own reading later).

    EXIF orientation is applied, transparency is composited over white and
    16-bit / integer / float images are scaled to 8 bits. Raises
    :class:`ImageReadError` for empty, unreadable, truncated, too small
    (either side below ``min_size``) or too large (more than ``max_pixels``)
    images, and :class:`FileNotFoundError` for a missing file.
    """
    path = Path(path)
    _check_is_nonempty_file(path)
    with _open_for_reading(path) as fh:
        return decode_image(fh, path, mode=mode, min_size=min_size, max_pixels=max_pixels)


def decode_image(
    stream: BinaryIO,
    name: str | os.PathLike,
    *,
    mode: str | None = "RGB",
    min_size: int = 1,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """:func:`read_image` for an open binary stream (an upload, say); ``name`` is what errors call it.
    The size is checked from the header, before any pixel is decoded."""
    if mode is not None and mode not in _OUTPUT_MODES:
        raise ValueError(f"mode must be one of {_OUTPUT_MODES} or None, got {mode!r}")
    img = _open(name, stream, max_pixels)
    _check_size(name, img, min_size, max_pixels)
    try:
        img.load()
    except _DECODE_ERRORS as err:
        raise _fail(name, f"truncated or corrupt image ({err})") from None
    _check_size(name, img, min_size, max_pixels)  # some formats (ICO) take their size when loaded
    img = _exif_upright(img)
    return img if mode is None else _to_l_or_rgb(name, img).convert(mode)


def as_rgb(img: Image.Image) -> Image.Image:
    """An in-memory PIL image as 8-bit RGB, by the same rules as :func:`read_image` (alpha over white)."""
    return _to_l_or_rgb(Path("<image>"), img).convert("RGB")


def check_distinct_outputs(files: Sequence[str | os.PathLike], out_dir: str | os.PathLike, option: str = "--out",
                           keep: Sequence[str | os.PathLike] = ()) -> None:
    """Each input is written to ``out_dir/<stem>.png``: one line naming both files when two would be written
    to the same path (``a/x.png`` and ``b/x.jpg``), or naming an input that its output would replace (``--out``
    the input's own folder), before anything is written; ``option`` is what the user named ``out_dir`` with.
    ``keep``: other input files (few-shot class images, edge maps) that no output may replace either."""
    seen: dict[Path, Path] = {}
    for f in map(Path, files):
        target = Path(out_dir) / f"{f.stem}.png"
        if target.exists() and f.exists() and os.path.samefile(target, f):
            raise ValueError(f"{f}: its output would be written over it ({option} {out_dir} is its folder; each input "
                             f"is written as <name>.png): give another {option}")
        if target.exists() and (kept := next((k for k in keep if Path(k).is_file() and os.path.samefile(target, k)),
                                             None)):
            raise ValueError(f"{kept}: {f}'s output would be written over this input ({option} {out_dir} is its "
                             f"folder; each input is written as <name>.png): give another {option}")
        if (other := seen.setdefault(target, f)) != f:
            remedy = ("rename one of them (each input is written as <name>.png)" if f.parent == other.parent
                      else "give their folders separate commands and --out folders")
            raise ValueError(f"{f}: would be written to {target} like {other}: {remedy}")


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Sorted image files in ``folder`` (by extension, case-insensitive).

    Hidden files and, when recursive, files under hidden folders are left out:
    they are editor/OS debris such as macOS ``._x.png`` or ``.ipynb_checkpoints``.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    found = sorted(
        path
        for path in candidates
        if path.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and (path.is_file() or path.is_symlink() and not path.exists())  # a broken link: named when checked
    )
    if not found:
        looked_for = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise ValueError(f"{folder}: no image files (looked for {looked_for}){_subfolders_hint(folder, recursive)}")
    return found


def _images_in_subfolders(folder: Path) -> dict[str, int]:
    """How many image files each non-hidden subfolder of ``folder`` holds (at any depth), by its name."""
    counts = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            n = len(list_images(sub, recursive=True))
        except ValueError:  # no images there
            continue
        counts[sub.name] = n
    return counts


def files_and_folders(inputs: Iterable[str | os.PathLike], use: str, stacklevel: int = 1) -> list[Path]:
    """The files given, each folder among them in its place as its images (:func:`list_images`), and for each
    folder the warning of :func:`warn_of_images_in_subfolders` (``use``: what moving them up would do with them;
    ``stacklevel`` counted from the caller)."""
    files: list[Path] = []
    for path in map(Path, inputs):
        if path.is_dir():
            files.extend(list_images(path))
            warn_of_images_in_subfolders(path, use, stacklevel=stacklevel + 1)
        else:
            files.append(path)
    return files


def warn_of_images_in_subfolders(folder: str | os.PathLike, use: str, stacklevel: int = 1) -> None:
    """One line naming how many images in which subfolders of ``folder`` are left out: training, translate and
    the Python API read a folder's own files (:func:`list_images`), not its subfolders', though the reference's
    loader walks them and a user may expect them to be read. ``use``: what moving them up would do with them
    (``train on``, ``translate``); ``stacklevel`` as in :func:`warnings.warn`, counted from the caller (1: the
    line that calls this)."""
    folder = Path(folder)
    counts = _images_in_subfolders(folder)
    if counts:
        shown = ", ".join(f"{name}/" for name in list(counts)[:5]) + (", ..." if len(counts) > 5 else "")
        n = sum(counts.values())
        warnings.warn(f"{folder}: {n} image{'s' if n != 1 else ''} in its subfolders ({shown}) left out: subfolders "
                      f"are not searched (move the images up into {folder.name}/ to {use} them)",
                      stacklevel=stacklevel + 1)


def _subfolders_hint(folder: Path, recursive: bool) -> str:
    """For a folder of folders (a dataset root given where its testA/ or a class folder was meant): what it holds."""
    if recursive:
        return ""
    subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        return ""
    shown = ", ".join(f"{name}/" for name in subfolders[:5]) + (", ..." if len(subfolders) > 5 else "")
    return f"; it holds folders ({shown}), which are not searched: give the folder of the images themselves"


def _verify(path: Path, min_size: int, max_pixels: int | None) -> None:
    _check_is_nonempty_file(path)
    with _open_for_reading(path) as fh:
        img = _open(path, fh, max_pixels)
        _check_size(path, img, min_size, max_pixels)
        try:
            img.verify()
            if _verify_misses_a_cut(img, fh):
                fh.seek(0)
                with _pillow_pixel_limit(max_pixels):
                    Image.open(fh).load()
        except _DECODE_ERRORS as err:
            raise _fail(path, f"truncated or corrupt image ({err})") from None


def _verify_misses_a_cut(img: Image.Image, fh: BinaryIO) -> bool:
    """Whether the file could be cut short inside its pixel data and still pass ``verify``, which checks PNG's
    chunks and WebP's length but reads no further than the header of the others: a JPEG ending in its end marker
    is whole (one without is decoded: data after the image's end, as in a motion photo, reads); TIFF, BMP, GIF and
    the rest (rarer, and mostly quick to decode) are decoded."""
    if img.format in ("PNG", "WEBP"):
        return False
    if img.format in ("JPEG", "MPO"):
        return not _ends_with_jpeg_end_marker(fh)
    return True


def _ends_with_jpeg_end_marker(fh: BinaryIO) -> bool:
    """Whether the file's last bytes, trailing padding aside, are a JPEG end-of-image marker (FF D9): a JPEG cut
    short inside its pixel data has a header that reads and lacks it, and only decoding would tell otherwise."""
    fh.seek(0, os.SEEK_END)
    fh.seek(max(0, fh.tell() - 64))
    return fh.read().rstrip(b"\x00\t\n\r ").endswith(b"\xff\xd9")


def check_images(
    paths: Iterable[str | os.PathLike],
    *,
    skip_bad: bool = False,
    min_size: int = 1,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> list[Path]:
    """Quickly check that each file is a readable image (header, size, and
    whatever ``Image.verify`` checks for the format, e.g. PNG checksums).

    Without ``skip_bad`` the first bad file raises, its message naming the
    other bad files too (so that one run finds them all); with it, each bad
    file gives one :class:`BadImageWarning` and the good files are returned.
    Pixels are decoded where ``verify`` would miss a file cut short (a JPEG
    without its end marker; TIFF, BMP, GIF and other formats), not for PNG,
    WebP or a JPEG that ends with its end marker.
    """
    good: list[Path] = []
    bad: list[tuple[Path, Exception]] = []
    for path in map(Path, paths):
        try:
            _verify(path, min_size, max_pixels)
        except (ImageReadError, FileNotFoundError, IsADirectoryError) as err:
            if skip_bad:
                warnings.warn(str(err), BadImageWarning, stacklevel=2)
            bad.append((path, err))
        else:
            good.append(path)
    if bad and not skip_bad:
        first = bad[0][1]
        raise type(first)(f"{first}{_others_hint([path for path, _ in bad[1:]])}") from None
    return good


def header_size(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int] | None:
    """(width, height) from the file's header, no pixel decoded, as :func:`read_image` gives it (an EXIF rotation by
    a quarter turn swaps them); None when it cannot be read (reading it says why)."""
    try:
        with open(path, "rb") as fh, _pillow_pixel_limit(max_pixels), Image.open(fh) as img:
            width, height = img.size
            # Image's own getexif: a PNG's decodes every pixel first, to find an eXIf chunk after the image data
            quarter_turn = Image.Image.getexif(img).get(EXIF_ORIENTATION) in (5, 6, 7, 8)
    except Exception:
        return None
    return (height, width) if quarter_turn else (width, height)


def _others_hint(others: list[Path], shown: int = 3) -> str:
    if not others:
        return ""
    names = ", ".join(p.name for p in others[:shown]) + (", ..." if len(others) > shown else "")
    return f" (and {len(others)} more bad file{'s' if len(others) > 1 else ''}: {names})"


# ---------------------------------------------------------------------------
# Tensors


def to_tensor(img: Image.Image) -> torch.Tensor:
    """``RGB``/``L`` image to a float32 CHW tensor in [-1, 1]."""
    if img.mode not in _OUTPUT_MODES:
        raise ValueError(f"to_tensor expects an RGB or L image, got mode {img.mode}; use read_image")
    array = np.array(img, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).contiguous() / 127.5 - 1.0


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """Tensor in [-1, 1] (CHW, 1xCHW or HW; 1 or 3 channels) to an 8-bit image."""
    t = tensor.detach().cpu().float()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"to_pil expects a 1- or 3-channel CHW tensor, got shape {tuple(tensor.shape)}")
    t = torch.nan_to_num(t, nan=0.0).clamp(-1.0, 1.0)
    array = ((t + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# mkstemp creates files readable by the owner only; saved images should get
# the usual permissions, so read the umask once.
FILE_MODE = _default_file_mode()  # 0666 & ~umask: what open() gives a new file, which mkstemp does not


def save_image(image: Image.Image | torch.Tensor, path: str | os.PathLike,
               png_text: dict[str, str] | None = None) -> Path:
    """Write an image (or a [-1, 1] tensor) atomically, creating parent folders.

    The format comes from the extension. The file is written to a temporary
    file in the same folder and moved into place, so a reader never sees a
    half-written image. ``png_text``: text chunks for a PNG (who wrote it).
    """
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"{path}: unknown image extension {path.suffix!r}")
    if isinstance(image, torch.Tensor):
        image = to_pil(image)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise write_error(path, err) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if png_text and image_format == "PNG":
                info = PngImagePlugin.PngInfo()
                for key, value in png_text.items():
                    info.add_text(key, value)
                image.save(fh, format=image_format, pnginfo=info)
            else:
                image.save(fh, format=image_format)
        os.chmod(tmp_name, FILE_MODE)
        os.replace(tmp_name, path)
    except BaseException as err:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise write_error(path, err) from None
        raise
    return path


def write_error(path: str | os.PathLike, error: OSError) -> OSError:
    """A failed write (a full disk, a file size limit, a read-only folder) as one line naming the file that was
    being written, not the temporary file beside it nor an errno alone."""
    return type(error)(f"{os.fspath(path)}: could not write it ({error.strerror or collapse_whitespace(error)})")


def make_grid_image(rows: Sequence[Sequence[torch.Tensor]], pad: int = 2) -> Image.Image:
    """Lay out [-1, 1] CHW tensors in a grid on a white background.

    Every cell has the size of the largest image; smaller images are centred
    in their cell and short rows leave blank cells.
    """
    cells = [[to_pil(t).convert("RGB") for t in row] for row in rows]
    if not any(cells):
        raise ValueError("make_grid_image needs at least one image")
    cell_w = max(img.width for row in cells for img in row)
    cell_h = max(img.height for row in cells for img in row)
    n_cols = max(len(row) for row in cells)
    grid = Image.new(
        "RGB",
        (n_cols * cell_w + (n_cols + 1) * pad, len(cells) * cell_h + (len(cells) + 1) * pad),
        (_WHITE,) * 3,
    )
    for r, row in enumerate(cells):
        for c, img in enumerate(row):
            x = pad + c * (cell_w + pad) + (cell_w - img.width) // 2
            y = pad + r * (cell_h + pad) + (cell_h - img.height) // 2
            grid.paste(img, (x, y))
    return grid
