"""Content images of ``load_fewshot(ckpt)(content, class_images)``: folders as ``pixmorph fewshot --content`` takes
them, files checked as it checks them, and lists translated in batches. An untrained tiny FUNIT, fp32 on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pixmorph.fewshot import FewShotTranslator
from test_api import untrained


@pytest.fixture(scope="module")
def model() -> FewShotTranslator:
    return FewShotTranslator(untrained("funit"))


def pixels(images: list[Image.Image]) -> list[np.ndarray]:
    return [np.asarray(im, np.int16) for im in images]


def assert_same_images(got: list[Image.Image], want: list[Image.Image]) -> None:
    assert [im.size for im in got] == [im.size for im in want]
    for a, b in zip(pixels(got), pixels(want)):  # to rounding: a batched convolution may sum in another order
        assert np.abs(a - b).max() <= 1


def test_a_content_folder_stands_for_its_images(model, tmp_path, write_image):
    """A folder given as the content was read as one image file ('...: is a folder, not an image file'), where
    class images and `pixmorph fewshot --content DIR` take folders."""
    folder = tmp_path / "content"
    files = [write_image(folder / f"{i}.png", 16 + 4 * i, 16, mode="L", seed=i) for i in range(3)]
    (folder / "notes.txt").write_text("not an image")
    write_image(folder / ".hidden.png", 16, 16, mode="L")
    k = [Image.new("L", (16, 16), 200)]
    want = model(files, k)
    assert len(want) == 3
    for given in (folder, str(folder), [folder], [files[0], folder / "1.png", Image.open(files[2])]):
        assert_same_images(model(given, k), want)
    assert_same_images(model([folder, files[0]], k), want + want[:1])


def test_a_bad_file_in_a_content_folder_is_named_before_any_translation(model, tmp_path, write_image):
    """As `pixmorph fewshot` checks its content files: the first bad one stops the call, naming the others."""
    folder = tmp_path / "content"
    write_image(folder / "0.png", 16, 16, mode="L")
    for name in ("1.png", "2.png"):
        (folder / name).write_bytes(b"not a png")
    calls = []
    handle = model.generator.content_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ValueError, match=rf"^{folder / '1.png'}: .* \(and 1 more bad file: 2.png\)$"):
            model(folder, [Image.new("L", (16, 16))])
    finally:
        handle.remove()
    assert calls == []


def test_content_images_of_any_size_share_generator_calls(model, tmp_path, write_image):
    """Each content image had a generator call of its own; they are all translated at one size (the training size,
    or size=), so batch_size of them now share one, with the same results."""
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 256, (12 + i, 20 - i), dtype=np.uint8))
              for i in range(5)]
    images.append(write_image(tmp_path / "file.png", 16, 16, mode="L", seed=9))
    code = model.class_code([Image.new("L", (16, 16), 90)])
    sizes: list[int] = []
    handle = model.generator.content_encoder.register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0]))
    try:
        for size in (None, 24):
            sizes.clear()
            one_by_one = [model(im, code, size=size)[0] for im in images]
            assert sizes == [1] * 6
            sizes.clear()
            assert_same_images(model(images, code, size=size), one_by_one)
            assert sizes == [6]
            sizes.clear()
            assert_same_images(model(images, code, size=size, batch_size=4), one_by_one)
            assert sizes == [4, 2]
        batch = torch.rand(5, 1, 16, 16) * 2 - 1
        one_by_one = torch.cat([model(x, code)[None] for x in batch])
        sizes.clear()
        torch.testing.assert_close(model(batch, code, batch_size=2), one_by_one, atol=1e-5, rtol=1e-5)
        assert sizes == [2, 2, 1]
    finally:
        handle.remove()
    with pytest.raises(ValueError, match=r"^batch_size=0: give 1 or more$"):
        model(images, code, batch_size=0)
