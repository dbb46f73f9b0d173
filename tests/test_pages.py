"""The HTML pages a run and the demo write, opened in a real browser (headless Chromium through
Playwright): every image decodes, the figures are on the page, and it is not blank."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pixmorph.demo import _write_page

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in the [test] extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium (./run does)")


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 900, "height": 700})
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page


def decoded_images(page) -> list[int]:
    """[images on the page, images the browser decoded to a non-empty picture]"""
    return page.evaluate("[document.images.length, "
                         "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length]")


def is_blank(page, tmp_path: Path) -> bool:
    from PIL import Image

    shot = tmp_path / "shot.png"
    page.screenshot(path=str(shot), full_page=True)
    lo, hi = Image.open(shot).convert("L").getextrema()
    return hi - lo < 50


def test_samples_page_shows_every_grid_and_the_latest_losses(browser, cyclegan_run, tmp_path):
    folder = cyclegan_run / "samples"
    page = open_page(browser, folder / "index.html")
    total, decoded = decoded_images(page)
    assert total == len(list(folder.glob("step_*.png"))) >= 1
    assert decoded == total
    assert "Samples of run" in page.inner_text("h1")
    headers = page.eval_on_selector_all("#latest th", "cells => cells.map(c => c.textContent)")
    assert {"step", "G_A", "D_A", "images_per_s"} <= set(headers)
    assert page.inner_text("#columns").startswith("Columns: real | translated | translated back")
    assert not is_blank(page, tmp_path)


def test_demo_page_shows_input_output_truth_and_the_figures(browser, tmp_path):
    names = [tmp_path / f"test_{i:06d}.png" for i in range(3)]
    edges, outputs, truth = (torch.rand(3, 1, 32, 32) * 2 - 1 for _ in range(3))
    result = {"l1_model": 0.123, "l1_identity": 0.456, "l1_untrained": 0.789}
    page = open_page(browser, _write_page(tmp_path / "demo", names, edges, outputs, truth, result))
    assert decoded_images(page) == [9, 9]
    text = page.inner_text("body")
    assert "CycleGAN 0.123" in text and "input unchanged 0.456" in text and "untrained generator 0.789" in text
    rows = page.eval_on_selector_all("tr", "rows => rows.map(r => r.cells.length)")
    assert rows == [4, 4, 4, 4]  # header + one row per item: name | input | output | truth
    assert not is_blank(page, tmp_path)


def test_a_missing_image_is_caught(browser, cyclegan_run, tmp_path):
    """The check above can fail: a page whose grid file is gone has an undecoded image."""
    folder = tmp_path / "samples"
    shutil.copytree(cyclegan_run / "samples", folder)
    next(folder.glob("step_*.png")).unlink()
    total, decoded = decoded_images(open_page(browser, folder / "index.html"))
    assert decoded == total - 1
