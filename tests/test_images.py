"""Tests for pixmorph.images: real files of every awkward kind, built in tmp_path."""

from __future__ import annotations

import os
import re
import stat
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from pixmorph.images import (
    BadImageWarning,
    ImageReadError,
    ImageTooLarge,
    check_images,
    list_images,
    make_grid_image,
    read_image,
    save_image,
    to_pil,
    to_tensor,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(int)


def noise_rgb(size=(64, 48), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def png16_bytes(array: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB)."""
    height, width = array.shape[:2]
    rows = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def assert_one_line_naming(err: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for word in words:
        assert word in message


# ---------------------------------------------------------------------------
# Colour modes


def test_grayscale_l_becomes_rgb_with_equal_channels(tmp_path):
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)

    rgb = read_image(path)
    assert rgb.mode == "RGB"
    for channel in range(3):
        np.testing.assert_array_equal(pixels(rgb)[:, :, channel], gray)

    as_l = read_image(path, mode="L")
    assert as_l.mode == "L"
    np.testing.assert_array_equal(pixels(as_l), gray)


def test_la_is_composited_over_white(tmp_path):
    path = tmp_path / "la.png"
    Image.new("LA", (4, 4), (0, 128)).save(path)
    out = pixels(read_image(path))
    expected = round(255 * (255 - 128) / 255)  # black at alpha 128 over white
    assert abs(out - expected).max() <= 1


def test_rgba_half_transparent_is_composited_over_white(tmp_path):
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[:, 0] = (200, 0, 0, 128)  # half transparent red
    rgba[:, 1] = (10, 20, 30, 255)  # opaque
    rgba[:, 2] = (0, 0, 0, 0)  # fully transparent black
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)

    out = pixels(read_image(path))
    alpha = 128 / 255
    half = [c * alpha + 255 * (1 - alpha) for c in (200, 0, 0)]
    assert np.abs(out[:, 0] - half).max() <= 1
    np.testing.assert_array_equal(out[:, 1], [[10, 20, 30]] * 2)
    np.testing.assert_array_equal(out[:, 2], [[255, 255, 255]] * 2)


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_with_transparency(tmp_path, suffix):
    img = Image.new("P", (4, 2), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)
    img.paste(1, (2, 0, 4, 2))  # right half uses the transparent index
    path = tmp_path / f"palette{suffix}"
    img.save(path, transparency=1)

    out = pixels(read_image(path))
    np.testing.assert_array_equal(out[:, :2], np.full((2, 2, 3), (255, 0, 0)))
    np.testing.assert_array_equal(out[:, 2:], np.full((2, 2, 3), 255))


def test_cmyk_jpeg_colours_are_right(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    with Image.open(path) as raw:
        assert raw.mode == "CMYK"
    out = pixels(read_image(path))
    assert np.abs(out - (255, 0, 0)).max() <= 8


def test_one_bit_image(tmp_path):
    bits = Image.new("1", (8, 4), 0)
    bits.paste(1, (4, 0, 8, 4))
    path = tmp_path / "bits.png"
    bits.save(path)
    out = pixels(read_image(path))
    assert set(np.unique(out[:, :4])) == {0}
    assert set(np.unique(out[:, 4:])) == {255}


def test_16bit_grayscale_gradient_spans_8bit_range(tmp_path):
    gradient = np.linspace(0, 65535, 300).round().astype(np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(np.tile(gradient, (3, 1))).save(path)
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")

    row = pixels(read_image(path, mode="L"))[1]
    assert row.min() == 0 and row.max() == 255
    assert np.all(np.diff(row) >= 0)
    np.testing.assert_array_equal(row, np.round(gradient / 257))
    rgb = pixels(read_image(path))
    np.testing.assert_array_equal(rgb[1, :, 0], row)


def test_16bit_rgb_png(tmp_path):
    ramp = np.linspace(0, 65535, 8).round().astype(np.uint16)
    rgb16 = np.stack([ramp, ramp[::-1], np.full(8, 0x8080, np.uint16)], axis=-1)[None]
    path = tmp_path / "rgb16.png"
    path.write_bytes(png16_bytes(rgb16, color_type=2))

    out = pixels(read_image(path))[0]
    expected = np.round(rgb16[0] / 257)
    assert np.abs(out - expected).max() <= 1
    assert out[:, 0].min() == 0 and out[:, 0].max() == 255


@pytest.mark.parametrize(
    "values, expected",
    [
        (np.array([0, 100, 255], np.int32), [0, 100, 255]),  # already 8-bit range
        (np.array([0, 32896, 65535], np.int32), [0, 128, 255]),  # 16-bit range
        (np.array([-10, 0, 10], np.int32), [0, 128, 255]),  # anything else: min..max
        (np.array([0.0, 0.5, 1.0], np.float32), [0, 128, 255]),  # float 0..1
    ],
)
def test_int32_and_float_images_are_scaled_by_value_range(tmp_path, values, expected):
    path = tmp_path / "wide.tif"
    Image.fromarray(values.reshape(1, 3)).save(path)
    with Image.open(path) as raw:
        assert raw.mode in ("I", "F")
    np.testing.assert_array_equal(pixels(read_image(path, mode="L"))[0], expected)


def test_exif_orientation_is_applied(tmp_path):
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 10, 10))  # red block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)

    out = read_image(path)
    assert out.size == (20, 40)
    red_corner = pixels(out)[2, -3]  # the stored top-left is now top-right
    assert red_corner[0] > 200 and red_corner[2] < 60


# ---------------------------------------------------------------------------
# Bad files


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_image_raises_naming_the_file(tmp_path, suffix):
    path = tmp_path / f"cut{suffix}"
    noise_rgb().save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(ImageReadError) as err:
        read_image(path)
    assert_one_line_naming(err, path, "truncated or corrupt")


def test_text_file_with_image_extension(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\nsecond line\n")
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    assert_one_line_naming(err, path, "not an image file")


@pytest.mark.parametrize("head, kind", [(b"II*\x00", "TIFF"), (b"\x89PNG\r\n\x1a\n", "PNG"),
                                        (b"RIFF\x00\x00\x00\x00WEBP", "WebP")])
def test_a_file_of_a_known_format_pillow_cannot_open_is_not_called_not_an_image(tmp_path, head, kind):
    """A 32-bit float RGB TIFF (which Pillow cannot open) was 'not an image file (unknown format or corrupt header)'."""
    path = tmp_path / "scan.tif"
    path.write_bytes(head + b"\x00" * 64)
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    assert_one_line_naming(err, path, f"a {kind} file that Pillow cannot read (a variant it does not support, or a "
                                      "corrupt header)")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    assert_one_line_naming(err, path, "empty file")


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.png"
    with pytest.raises(FileNotFoundError, match="nowhere.png: no such file"):
        read_image(path)


def test_image_below_min_size(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1)).save(path)
    assert read_image(path).size == (1, 1)
    with pytest.raises(ImageReadError) as err:
        read_image(path, min_size=4)
    assert_one_line_naming(err, path, "1x1", "minimum 4x4")


def test_image_above_max_pixels(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (30, 20)).save(path)
    assert read_image(path, max_pixels=600).size == (30, 20)
    with pytest.raises(ImageReadError) as err:
        read_image(path, max_pixels=599)
    assert_one_line_naming(err, path, "30x20", "599")


def test_max_pixels_overrides_pillow_global_limit(tmp_path, monkeypatch):
    path = tmp_path / "medium.png"
    Image.new("L", (40, 40)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow would call this a bomb
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path, max_pixels=None).size == (40, 40)
    assert Image.MAX_IMAGE_PIXELS == 100  # restored



def test_a_bomb_is_refused_in_plain_words(tmp_path):
    """Far over the limit, Pillow refuses the file while opening it; its error's alarm is not repeated."""
    path = tmp_path / "big.png"
    Image.new("1", (300, 300)).save(path)
    with pytest.raises(ImageTooLarge) as err:
        read_image(path, max_pixels=1000)
    assert_one_line_naming(err, path, "image too large", "90000")
    assert "DOS" not in str(err.value)


def test_an_odd_pixel_limit_is_said_as_given(tmp_path):
    """Pillow's own check counts twice its limit, which an odd --max-pixels made one more than given."""
    path = tmp_path / "big.png"
    Image.new("L", (41, 41)).save(path)
    with pytest.raises(ImageTooLarge, match=r"\(1681 pixels, more than the limit of 1599 pixels\)"):
        read_image(path, max_pixels=1599)

def test_unknown_output_mode_is_rejected(tmp_path):
    path = tmp_path / "x.png"
    Image.new("RGB", (2, 2)).save(path)
    with pytest.raises(ValueError, match="mode"):
        read_image(path, mode="RGBA")


# ---------------------------------------------------------------------------
# Folders and quick checks


def test_list_images_sorted_case_insensitive_and_skips_others(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.Jpeg", "notes.txt", "._a.jpg", "d.webp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.png").write_bytes(b"x")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "f.png").write_bytes(b"x")

    names = [p.name for p in list_images(tmp_path)]
    assert names == ["a.jpg", "b.PNG", "c.Jpeg", "d.webp"]
    nested = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)]
    assert nested == ["a.jpg", "b.PNG", "c.Jpeg", "d.webp", "sub/e.png"]


def test_list_images_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("no pictures here")
    with pytest.raises(ValueError) as err:
        list_images(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{tmp_path}: no image files (looked for ")
    assert ".png" in message and ".jpg" in message and "\n" not in message


def test_list_images_of_a_folder_of_folders_names_them(tmp_path, write_image):
    """A dataset root given where one of its image folders was meant (`translate RUN horse2zebra`): the error
    says it holds folders, which are not searched."""
    for sub in ("testA", "trainA", ".hidden"):
        write_image(tmp_path / sub / "x.png", 4, 4)
    with pytest.raises(ValueError) as err:
        list_images(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{tmp_path}: no image files (looked for ")
    assert message.endswith("; it holds folders (testA/, trainA/), which are not searched: give the folder of the "
                            "images themselves")
    assert [p.name for p in list_images(tmp_path, recursive=True)] == ["x.png", "x.png"]


def test_list_images_missing_folder(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="nope: no such folder"):
        list_images(missing)


def test_check_images_raises_first_bad_file(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (4, 4)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    assert check_images([good]) == [good]
    with pytest.raises(ImageReadError) as err:
        check_images([good, bad])
    assert_one_line_naming(err, bad, "not an image file")
    assert "more bad" not in str(err.value)


def test_check_images_error_names_every_bad_file(tmp_path):
    """A folder with several bad files says so in the first error, so one run finds them all."""
    good = tmp_path / "good.png"
    Image.new("RGB", (4, 4)).save(good)
    bad = [tmp_path / f"bad{i}.png" for i in range(5)]
    for b in bad:
        b.write_text("nope")
    with pytest.raises(ImageReadError) as err:
        check_images([good, *bad])
    assert_one_line_naming(err, bad[0], "not an image file")
    assert "(and 4 more bad files: bad1.png, bad2.png, bad3.png, ...)" in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"\(and 1 more bad file: bad0.png\)"):
        check_images([tmp_path / "missing.png", bad[0]])


@pytest.mark.parametrize("suffix", [".jpg", ".tif", ".bmp", ".gif", ".tga", ".ppm", ".ico", ".webp", ".png"])
@pytest.mark.parametrize("kept", [0.3, 0.9, 0.99])
def test_check_images_refuses_a_file_cut_short_inside_its_pixels(tmp_path, suffix, kept):
    """Their headers read, and Pillow's verify() looks no further for most formats: a JPEG (or BMP, TIFF, ...) cut
    short passed the check and stopped a translation or a training run only when its turn to be read came."""
    path = tmp_path / f"cut{suffix}"
    noise_rgb().save(path)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * kept)])
    with pytest.raises(ImageReadError) as err:
        check_images([path])
    assert_one_line_naming(err, path)  # "truncated or corrupt", or (an ICO cut inside its directory) "not an image"


def test_check_images_keeps_a_jpeg_with_data_after_its_end_and_decodes_whole_ones_only_where_it_must(tmp_path,
                                                                                                     monkeypatch):
    """A motion photo (a video after the JPEG's end marker) or zero padding is a whole image; a JPEG that ends in
    its marker, and a PNG, are checked without decoding their pixels (a folder of them is checked quickly)."""
    whole, moving, padded, png = (tmp_path / n for n in ("whole.jpg", "moving.jpg", "padded.jpg", "whole.png"))
    noise_rgb().save(whole)
    noise_rgb().save(png)
    moving.write_bytes(whole.read_bytes() + b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    padded.write_bytes(whole.read_bytes() + b"\x00" * 16)
    decoded = []
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: (decoded.append(self.format), load(self))[1])
    assert check_images([whole, moving, padded, png]) == [whole, moving, padded, png]
    assert decoded.count("JPEG") == 1  # the motion photo's, to tell it from a cut one
    assert pixels(read_image(moving)).tolist() == pixels(read_image(whole)).tolist()


def test_check_images_skip_bad_warns_once_per_file_and_drops(tmp_path):
    good_a = tmp_path / "a.png"
    good_b = tmp_path / "b.jpg"
    Image.new("RGB", (4, 4)).save(good_a)
    Image.new("RGB", (4, 4)).save(good_b)
    text = tmp_path / "text.png"
    text.write_text("nope")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    cut_png = tmp_path / "cut.png"
    noise_rgb().save(cut_png)
    cut_png.write_bytes(cut_png.read_bytes()[:-200])  # verify() catches a PNG without IEND

    with pytest.warns(BadImageWarning) as caught:
        kept = check_images([good_a, text, empty, good_b, cut_png], skip_bad=True)
    assert kept == [good_a, good_b]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3
    assert messages[0].startswith(f"{text}: ")
    assert messages[1].startswith(f"{empty}: ")
    assert messages[2].startswith(f"{cut_png}: ")


def test_files_and_folders_lists_folders_in_place_and_warns_of_their_subfolders(tmp_path):
    """What translate, edit and fewshot read from their FILES_OR_DIRS arguments (fewshot and edit left a folder's
    subfolders out without the warning translate and training give)."""
    from pixmorph.images import files_and_folders

    for name in ("dir/b.png", "dir/a.png", "dir/sub/c.png", "alone.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    with pytest.warns(UserWarning, match=r"dir: 1 image in its subfolders \(sub/\) left out: .* to use them\)$"):
        files = files_and_folders([tmp_path / "alone.png", tmp_path / "dir"], "use")
    assert files == [tmp_path / "alone.png", tmp_path / "dir" / "a.png", tmp_path / "dir" / "b.png"]


def test_a_broken_link_in_a_folder_is_named_not_passed_over(tmp_path):
    """A link whose target is gone (x.jpg -> a moved file) was left out of a folder's images without a word; it is
    now listed, and the check names it (skip_bad leaves it out with that warning)."""
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "x.jpg").symlink_to(tmp_path / "moved" / "x.jpg")
    files = list_images(tmp_path)
    assert files == [tmp_path / "a.png", tmp_path / "x.jpg"]
    with pytest.raises(ImageReadError, match=rf"^{re.escape(str(tmp_path / 'x.jpg'))}: a link to .*moved/x.jpg, which "
                                             r"does not exist$"):
        check_images(files)
    with pytest.warns(BadImageWarning, match="a link to"):
        assert check_images(files, skip_bad=True) == [tmp_path / "a.png"]


# ---------------------------------------------------------------------------
# Tensors, saving, grids


def test_to_tensor_to_pil_round_trip_is_exact():
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb = Image.fromarray(np.stack([values, values.T, 255 - values], axis=-1))

    t = to_tensor(rgb)
    assert t.shape == (3, 16, 16) and t.dtype == torch.float32
    assert t.min().item() == -1.0 and t.max().item() == 1.0
    np.testing.assert_array_equal(pixels(to_pil(t)), pixels(rgb))
    np.testing.assert_array_equal(pixels(to_pil(t[None])), pixels(rgb))

    gray = Image.fromarray(values)
    tg = to_tensor(gray)
    assert tg.shape == (1, 16, 16)
    back = to_pil(tg)
    assert back.mode == "L"
    np.testing.assert_array_equal(pixels(back), values)


def test_to_pil_clamps_and_rounds():
    t = torch.tensor([[[-3.0, -1.0, 0.0, 1.0, 5.0, 2 / 255 - 1 + 0.001]]])
    np.testing.assert_array_equal(pixels(to_pil(t))[0], [0, 0, 128, 255, 255, 1])


def test_to_tensor_rejects_unconverted_modes():
    with pytest.raises(ValueError, match="RGBA"):
        to_tensor(Image.new("RGBA", (2, 2)))


def test_save_image_is_atomic_and_creates_folders(tmp_path):
    target = tmp_path / "out" / "deep" / "sample.png"
    img = noise_rgb((8, 6))
    save_image(img, target)
    assert target.is_file()
    np.testing.assert_array_equal(pixels(read_image(target)), pixels(img))
    assert sorted(p.name for p in target.parent.iterdir()) == ["sample.png"]

    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask

    save_image(to_tensor(Image.new("RGB", (8, 6), (255, 255, 255))), target)  # replace
    assert pixels(read_image(target)).min() == 255
    assert sorted(p.name for p in target.parent.iterdir()) == ["sample.png"]


def test_save_image_failure_leaves_nothing_behind(tmp_path):
    target = tmp_path / "photo.jpg"
    with pytest.raises(OSError):
        save_image(Image.new("RGBA", (4, 4)), target)  # JPEG cannot hold alpha
    assert list(tmp_path.iterdir()) == []


def test_save_image_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match="unknown image extension"):
        save_image(Image.new("RGB", (2, 2)), tmp_path / "x.notanimage")


def test_make_grid_image_layout():
    red = to_tensor(Image.new("RGB", (4, 6), (255, 0, 0)))
    blue_small = to_tensor(Image.new("RGB", (2, 2), (0, 0, 255)))
    gray = to_tensor(Image.new("L", (4, 6), 0))

    grid = make_grid_image([[red, blue_small], [gray]], pad=2)
    assert grid.mode == "RGB"
    assert grid.size == (2 * 4 + 3 * 2, 2 * 6 + 3 * 2)
    out = pixels(grid)
    assert (out[0, :] == 255).all()  # top padding is white
    np.testing.assert_array_equal(out[2, 2], (255, 0, 0))  # first cell
    np.testing.assert_array_equal(out[2 + 2, 2 + 4 + 2 + 1], (0, 0, 255))  # centred small image
    np.testing.assert_array_equal(out[2 + 2, 2 + 4 + 2], (255, 255, 255))  # left of it: white
    np.testing.assert_array_equal(out[2 + 1, 2 + 4 + 2 + 1], (255, 255, 255))  # above it: white
    np.testing.assert_array_equal(out[2, 2 + 4 + 2], (255, 255, 255))  # around it: white
    np.testing.assert_array_equal(out[2 + 6 + 2, 2], (0, 0, 0))  # gray cell, second row
    np.testing.assert_array_equal(out[2 + 6 + 2, 2 + 4 + 2], (255, 255, 255))  # missing cell


# ---------------------------------------------------------------------------
# The real example images


def shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real example data not found at {path}")
    return path


def test_real_rgba_car_becomes_rgb():
    path = shared("deepsim/car/train_B/car.png")
    with Image.open(path) as raw:
        assert raw.mode == "RGBA"
        size = raw.size
    img = read_image(path)
    assert img.mode == "RGB" and img.size == size == (640, 320)
    assert len(np.unique(pixels(img).reshape(-1, 3), axis=0)) > 1000  # a photo, not a blank


@pytest.mark.parametrize(
    "relative",
    [
        "deepsim/face/train_edges/face_small.png",  # single-channel L
        "deepsim/face/test_edges/face_small_test1.png",  # gray stored as RGBA
        "deepsim/face/test_edges/face_small_test2.png",
    ],
)
def test_real_edge_maps_come_out_rgb_with_equal_channels(relative):
    img = read_image(shared(relative))
    out = pixels(img)
    assert img.mode == "RGB" and img.size == (256, 256)
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 1])
    np.testing.assert_array_equal(out[:, :, 1], out[:, :, 2])
    assert out.min() == 0 and out.max() == 255  # edges on a background


@pytest.mark.parametrize(
    "relative", ["deepsim/car/train_seg/car.png", "deepsim/car/test_seg/car_test1.png"]
)
def test_real_segmentation_maps_load_as_rgb(relative):
    img = read_image(shared(relative))
    assert img.mode == "RGB" and img.size == (640, 320)


def test_real_jpegs_load():
    folder = shared("funit")
    paths = list_images(folder, recursive=True)
    assert len(paths) == 6
    assert check_images(paths) == paths
    for path in paths:
        img = read_image(path)
        assert img.mode == "RGB" and img.size == (128, 128)
        assert pixels(img).std() > 5


def test_two_inputs_written_to_one_output_name_the_remedy_that_works(tmp_path):
    """a.png and a.jpg in one folder were told to take separate --out folders, which one command cannot
    give them; they are told to rename one. Files of two folders are told to take separate commands."""
    from pixmorph.images import check_distinct_outputs

    with pytest.raises(ValueError, match=r"in/a.jpg: would be written to .*out/a.png like .*in/a.png: rename one of them"):
        check_distinct_outputs([tmp_path / "in/a.png", tmp_path / "in/a.jpg"], tmp_path / "out")
    with pytest.raises(ValueError, match="b/a.png: would be written to .*out/a.png like .*in/a.png: give their folders separate commands"):
        check_distinct_outputs([tmp_path / "in/a.png", tmp_path / "b/a.png"], tmp_path / "out")
    check_distinct_outputs([tmp_path / "in/a.png", tmp_path / "in/b.png"], tmp_path / "out")


def test_a_file_without_read_permission_is_an_unreadable_image(tmp_path, monkeypatch):
    """PermissionError passed by check_images (an OSError, `error: [Errno 13] Permission denied: ...`), so
    skip_bad did not leave such a training image out. (Simulated: the tests may run as root, whom chmod 000
    does not stop.)"""
    import builtins

    from pixmorph import images

    locked = tmp_path / "locked.png"
    Image.new("RGB", (4, 4)).save(locked)
    Image.new("RGB", (4, 4)).save(tmp_path / "open.png")

    def open_unless_locked(path, *args, **kwargs):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(images, "open", open_unless_locked, raising=False)
    with pytest.raises(images.ImageReadError, match=r"locked.png: not readable \(permission denied\)$"):
        images.read_image(locked)
    with pytest.warns(images.BadImageWarning, match="locked.png: not readable"):
        assert images.check_images([locked, tmp_path / "open.png"], skip_bad=True) == [tmp_path / "open.png"]
