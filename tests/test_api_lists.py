"""Lists of images through ``pixmorph.load(...)(images)``: batched by shape, and A|B pairs cut as the command cuts
them (``side_by_side``). Untrained tiny models, fp32 on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixmorph.api import Translator
from pixmorph.batches import equal_shape_batches
from pixmorph.config import RunConfig
from pixmorph.images import read_image
from pixmorph.train.loop import build_method
from test_api import untrained


def gray(width: int, height: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8))


def counting_calls(translator: Translator, direction: str) -> list[int]:
    """The batch sizes the generator of ``direction`` is called with, appended as it runs."""
    sizes: list[int] = []
    translator.generators[direction].register_forward_hook(lambda module, args, out: sizes.append(args[0].shape[0]))
    return sizes


def assert_same(got, want) -> None:
    if isinstance(want, Image.Image):
        assert isinstance(got, Image.Image) and got.size == want.size and got.mode == want.mode
        # the same pixels to rounding: a batched convolution may sum in another order
        assert np.abs(np.asarray(got, np.int16) - np.asarray(want, np.int16)).max() <= 1
    else:
        assert isinstance(got, torch.Tensor) and got.shape == want.shape and got.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_equal_shape_batches_keep_each_index_once_in_order():
    shapes = ["a", "b", "a", "a", "c", "b", "a"]
    assert equal_shape_batches(shapes, 2) == [[0, 2], [3, 6], [1, 5], [4]]
    assert equal_shape_batches(shapes, 8) == [[0, 2, 3, 6], [1, 5], [4]]
    assert equal_shape_batches([], 4) == []


@pytest.mark.parametrize("method", ["cyclegan", "pix2pix"])  # pix2pix: batch norm, each image by its own statistics
@pytest.mark.parametrize("size", [None, 24])
def test_a_list_is_translated_in_batches_of_one_shape_as_one_at_a_time(tmp_path, write_image, size, method):
    """A list was translated one image at a time whatever batch_size said (it applied to tensors only): images of
    one shape (once resized to size=) now share generator calls, and each comes back as before, in its place."""
    translator = untrained("cyclegan") if method == "cyclegan" else pix2pix("AtoB")
    path = write_image(tmp_path / "gray.png", 16, 16, mode="L", seed=3)
    images = [gray(16, 16, 0), path, gray(20, 12, 1), torch.rand(1, 16, 16) * 2 - 1, gray(16, 16, 2),
              torch.rand(2, 1, 20, 12) * 2 - 1, gray(20, 12, 4), torch.rand(1, 12, 20).double() * 2 - 1]
    calls = counting_calls(translator, "AtoB")
    one_by_one = [translator(x) if size is None else translator(x, size=size) for x in images]
    assert len(calls) == len(images)
    calls.clear()
    together = translator(images, size=size)
    # size=None: the 16x16 images (4, the path's too), the 12x20 ones (3), the NCHW tensor's 2; size=24: 7 and 2
    assert sorted(calls) == ([2, 3, 4] if size is None else [2, 7])
    assert len(together) == len(images)
    for got, want in zip(together, one_by_one):
        assert_same(got, want)
    assert together[2].size == ((20, 12) if size is None else (24, 24))
    calls.clear()
    in_twos = translator(images, size=size, batch_size=2)
    assert max(calls) == 2 and sum(calls) == 9
    for got, want in zip(in_twos, one_by_one):
        assert_same(got, want)


def test_a_tensor_of_a_list_is_its_own_not_a_view_of_its_batch():
    translator = untrained("cyclegan")
    out = translator([torch.zeros(1, 16, 16), torch.zeros(1, 16, 16)])
    assert out[0].untyped_storage().nbytes() == out[0].numel() * 4


def test_a_bad_file_in_a_list_stops_it_before_any_translation(tmp_path, write_image):
    """Files are read when their batch comes, but checked first: one whose header does not read, or a PNG cut short
    (its header reads), is named before the first generator call, not after the batches before it."""
    translator = untrained("cyclegan")
    calls = counting_calls(translator, "AtoB")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=rf"^{bad}: "):
        translator([gray(16, 16, 0), bad])
    good = [write_image(tmp_path / f"good{i}.png", 16, 16, mode="L", seed=i) for i in range(2)]
    cut = write_image(tmp_path / "cut.png", 16, 16, mode="L", seed=5)
    cut.write_bytes(cut.read_bytes()[:-40])
    with pytest.raises(ValueError, match=rf"^{cut}: truncated or corrupt image"):
        translator([*good, cut], batch_size=1)
    cut_jpeg = tmp_path / "cut.jpg"  # its header reads; it was named only when its batch came, after the others'
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)).save(cut_jpeg)
    cut_jpeg.write_bytes(cut_jpeg.read_bytes()[:-40])
    with pytest.raises(ValueError, match=rf"^{cut_jpeg}: truncated or corrupt image"):
        translator([*good, cut_jpeg], batch_size=1)
    assert calls == []


def folder_of_files(folder, write_image, pairs: bool = False) -> list:
    """Gray files of two shapes (A|B pairs twice as wide), in the order the folder lists them."""
    shapes = [(16, 16), (24, 24), (16, 16), (16, 16), (24, 24), (16, 16), (16, 16)]
    return [write_image(folder / f"{i}.png", w * (2 if pairs else 1), h, mode="L", seed=i)
            for i, (w, h) in enumerate(shapes)]


@pytest.mark.parametrize("side_by_side", [False, True])
def test_files_are_read_when_their_batch_comes_and_translate_as_read_up_front(tmp_path, write_image, monkeypatch,
                                                                              side_by_side):
    """A list of files (or a folder) was read whole before the first generator call, so its memory grew with its
    length; each file is now read when its batch comes (batches planned from the headers, as `pixmorph translate`
    plans them), and the results are those of the images read first, in the same order."""
    import pixmorph.api

    files = folder_of_files(tmp_path / "in", write_image, pairs=side_by_side)
    translator = untrained("cyclegan")
    read_up_front = [read_image(f, mode=None) for f in files]
    if side_by_side:
        read_up_front = [x.crop((0, 0, x.width // 2, x.height)) for x in read_up_front]
    want = translator(read_up_front, batch_size=2)

    reads: list[Path] = []
    read = pixmorph.api.read_image
    monkeypatch.setattr(pixmorph.api, "read_image", lambda path, **kw: reads.append(path) or read(path, **kw))
    read_at_calls: list[int] = []
    translator.generators["AtoB"].register_forward_hook(lambda *_: read_at_calls.append(len(reads)))
    for given in (tmp_path / "in", str(tmp_path / "in"), files, [str(f) for f in files]):
        reads.clear(), read_at_calls.clear()
        got = translator(given, batch_size=2, side_by_side=side_by_side)
        assert len(got) == len(files)
        for g, w in zip(got, want):
            assert_same(g, w)
        # five 16x16 files in batches of 2, 2, 1, then the two 24x24 ones: each batch's files read before its call
        assert read_at_calls == [2, 4, 5, 7] and len(reads) == len(files)


def test_a_file_whose_header_gives_another_shape_gets_a_call_of_its_own(tmp_path, write_image, monkeypatch):
    """The planned batch holds files whose headers agree; one whose pixels turn out another shape (a malformed
    EXIF rotation) is translated in a call of its shape rather than failing to stack."""
    import pixmorph.data.folders

    files = folder_of_files(tmp_path, write_image)
    translator = untrained("cyclegan")
    want = translator([read_image(f, mode=None) for f in files])
    monkeypatch.setattr(pixmorph.data.folders, "input_size", lambda path, half=None: (16, 16))
    calls = counting_calls(translator, "AtoB")
    got = translator(files)
    assert sorted(calls) == [2, 5]
    for g, w in zip(got, want):
        assert_same(g, w)


def pix2pix(direction: str) -> Translator:
    torch.manual_seed(0)
    cfg = RunConfig.from_dict({"method": "pix2pix", "model": {"ngf": 4, "ndf": 4, "num_downs": 5, "d_layers": 1,
                                                              "in_channels": 1, "out_channels": 1},
                               "data": {"root": "no-such-data", "channels": 1, "crop_size": 16,
                                        "options": {"direction": direction}}})
    return Translator(build_method(cfg), cfg, torch.device("cpu"), 0, precision="fp32")


def test_side_by_side_translates_the_half_the_model_takes(tmp_path):
    """There was no side_by_side in Python (`pixmorph translate --side-by-side` and serve's field had it): a pix2pix
    dataset file had to be cut by hand. The half is the command's: A (left) for AtoB, B for BtoA, the other way for a
    model trained with data.options.direction=BtoA; an odd width leaves its last column out."""
    a, b = gray(16, 16, 0), gray(16, 16, 1)
    pair = Image.new("L", (33, 16))
    pair.paste(a, (0, 0))
    pair.paste(b, (16, 0))
    pair.save(tmp_path / "pair.png")
    cyclegan = untrained("cyclegan")
    for direction, half in (("AtoB", a), ("BtoA", b)):
        want = cyclegan(half, direction)
        for given in (pair, tmp_path / "pair.png", str(tmp_path / "pair.png")):
            assert_same(cyclegan(given, direction, side_by_side=True), want)
        tensor = cyclegan.input_tensor(pair)
        assert_same(cyclegan(tensor, direction, side_by_side=True), cyclegan(cyclegan.input_tensor(half), direction))
        assert_same(cyclegan(tensor[None], direction, side_by_side=True)[0],
                    cyclegan(cyclegan.input_tensor(half), direction))
    for trained, half in (("AtoB", a), ("BtoA", b)):
        model = pix2pix(trained)
        assert_same(model([pair], side_by_side=True)[0], model(half))


def test_side_by_side_of_an_image_that_is_not_a_pair_warns_as_the_command_does(tmp_path, write_image):
    cyclegan = untrained("cyclegan")
    square = write_image(tmp_path / "square.png", 16, 16, mode="L")
    with pytest.warns(UserWarning, match=rf"^{square}: 16x16, not a side-by-side pair \(A\|B, twice as wide as high\): "
                                         r"only its right half was translated; give it without side_by_side to "
                                         r"translate the whole image$"):
        assert cyclegan(square, "BtoA", side_by_side=True).size == (8, 16)
    with pytest.warns(UserWarning, match=r"^16x16, not a side-by-side pair"):
        assert cyclegan(torch.zeros(1, 16, 16), side_by_side=True).shape == (1, 16, 8)
    with pytest.raises(ValueError, match=r"^1x16: width 1: expected A and B side by side \(A\|B\)$"):
        cyclegan(Image.new("L", (1, 16)), side_by_side=True)
    with pytest.warns(UserWarning, match=r"^16x0, not a side-by-side pair"), pytest.raises(RuntimeError):
        cyclegan(torch.zeros(1, 0, 16), side_by_side=True)  # as without side_by_side: not a ZeroDivisionError


def test_a_pix2pix_model_given_an_a_b_file_without_side_by_side_warns_as_the_command_does(tmp_path, write_image):
    """`pixmorph translate` and serve warn that a pix2pix dataset file (A|B) is translated whole without
    --side-by-side; `pixmorph.load(run)("pair.png")` translated it whole without a word. The first file says it."""
    import warnings

    pair = write_image(tmp_path / "pair.png", 32, 16, mode="L")
    square = write_image(tmp_path / "square.png", 16, 16, mode="L")
    model = pix2pix("BtoA")
    with pytest.warns(UserWarning) as caught:
        assert model([pair, pair]) and len(caught) == 1
    assert str(caught[0].message) == (f"{pair}: 32x16, about twice as wide as high: if it is an A|B pair (a pix2pix "
                                      f"dataset file), it is translated whole, as one image; side_by_side=True "
                                      f"translates its B half (the right one) alone")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(square), model(pair, side_by_side=True), untrained("cyclegan")(pair)
