"""`pixmorph serve`'s page driven in a real browser (headless Chromium through Playwright) against a real
server of the four tiny models (tests/serving.py), as a user would:

* Translate: choose model and direction, upload a PNG; the output is a decoded image of the input's size
  that differs from the input. A non-image named .png shows the server's error text in its row, and the
  page still translates afterwards.
* Few-shot: K=2 class images and 2 content images give two decoded 16x16 outputs.
* Edit (edge map): the canvas starts as the training primitive; a mouse stroke paints black pixels where
  it went; Generate renders a 64x48 image; Undo restores the primitive exactly, and its render differs from
  the stroked one and equals the API's render of the primitive file. Reset restores the primitive.
* Edit (seg+edges): the palette shows on the segmentation layer only; a stroke paints exactly the chosen
  label colour (no anti-aliasing) and only on that layer; Generate renders 64x48.
"""

from __future__ import annotations

import base64
import io
import shutil

import numpy as np
import pytest
import requests
from PIL import Image

from serving import png, served_models, served_runs, server  # noqa: F401  (fixtures)

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in the [test] extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium (./run does)")

WAIT_MS = 20_000
BLACK = (0, 0, 0)


# ---- browser and page -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """The served page, loaded and ready (its models listed, the first edit model on the canvas)."""
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server + "/")
    page.wait_for_function("document.body.dataset.ready === 'true'", timeout=WAIT_MS)
    yield page
    page.close()
    assert not errors, f"uncaught errors in the page: {errors}"


# ---- reading pixels out of the page -------------------------------------------------------------------

def image_bytes(page, selector: str) -> bytes:
    """The bytes of the file an <img> shows (its blob URL fetched inside the page)."""
    b64 = page.eval_on_selector(selector, """async (img) => {
        const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
        let text = "";
        for (const b of bytes) text += String.fromCharCode(b);
        return btoa(text);
    }""")
    return base64.b64decode(b64)


def shown_image(page, selector: str) -> Image.Image:
    return Image.open(io.BytesIO(image_bytes(page, selector)))


def canvas_pixels(page, canvas_id: str) -> np.ndarray:
    """A canvas's pixels as an (height, width, 4) uint8 RGBA array."""
    width, height, b64 = page.evaluate("""(id) => {
        const canvas = document.getElementById(id);
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let text = "";
        for (const b of data) text += String.fromCharCode(b);
        return [canvas.width, canvas.height, btoa(text)];
    }""", canvas_id)
    return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(height, width, 4)


def rgba(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGBA"))


def primitive(server: str, model: str, layer: str) -> np.ndarray:
    response = requests.get(f"{server}/api/models/{model}/primitive/{layer}")
    assert response.status_code == 200, response.text
    return rgba(Image.open(io.BytesIO(response.content)))


def wait_for_canvas(page, canvas_id: str, expected: np.ndarray, timeout_s: float = 10) -> None:
    """Wait until the canvas holds exactly ``expected`` (it loads asynchronously)."""
    deadline = page.evaluate("performance.now()") + 1000 * timeout_s
    while True:
        pixels = canvas_pixels(page, canvas_id)
        if pixels.shape == expected.shape and np.array_equal(pixels, expected):
            return
        if page.evaluate("performance.now()") > deadline:
            differ = "shape " + str(pixels.shape) if pixels.shape != expected.shape else \
                f"{int((pixels != expected).any(-1).sum())} pixels"
            raise AssertionError(f"#{canvas_id} does not hold the expected image: {differ} differ")
        page.wait_for_timeout(50)


def wait_for_decoded(page, selector: str, count: int = 1) -> None:
    page.wait_for_function("([selector, count]) => { const imgs = document.querySelectorAll(selector);"
                           "return imgs.length >= count && [...imgs].every(i => i.complete && i.naturalWidth > 0); }",
                           arg=[selector, count], timeout=WAIT_MS)


def differ(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two images of one size, over RGB."""
    return float(np.abs(np.asarray(a.convert("RGB"), np.int16) - np.asarray(b.convert("RGB"), np.int16)).mean())


# ---- drawing on the edit canvas -----------------------------------------------------------------------

def canvas_to_page(page, canvas_id: str, x: float, y: float) -> tuple[float, float]:
    """The page coordinates of canvas pixel coordinates (x, y), through the canvas's content box."""
    box = page.evaluate("""(id) => { const c = document.getElementById(id), r = c.getBoundingClientRect();
        return [r.left + c.clientLeft, r.top + c.clientTop, c.clientWidth / c.width, c.clientHeight / c.height]; }""",
                        canvas_id)
    left, top, sx, sy = box
    return left + x * sx, top + y * sy


def stroke(page, canvas_id: str, points: list[tuple[float, float]]) -> None:
    """Press the mouse at the first point (canvas pixel coordinates), move through the rest, release."""
    page.mouse.move(*canvas_to_page(page, canvas_id, *points[0]))
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(*canvas_to_page(page, canvas_id, x, y), steps=3)
    page.mouse.up()


def horizontal(y: float, x0: float, x1: float, n: int = 6) -> list[tuple[float, float]]:
    return [(x0 + (x1 - x0) * i / (n - 1), y) for i in range(n)]


def generate(page) -> Image.Image:
    """Click Generate and return the newly rendered output."""
    before = page.eval_on_selector("#edit-output", "img => img.src")
    page.click("#edit-generate")
    page.wait_for_function("""(before) => { const img = document.getElementById("edit-output");
        return img.src !== before && !img.hidden && img.complete && img.naturalWidth > 0
               && !document.getElementById("edit-generate").disabled; }""", arg=before, timeout=WAIT_MS)
    assert page.inner_text("#edit-error") == ""
    return shown_image(page, "#edit-output")


def choose_edit_model(page, server: str, name: str) -> dict[str, np.ndarray]:
    """Select an edit model and wait until each of its layers' canvas holds its training primitive."""
    layers = next(m for m in requests.get(f"{server}/api/models").json() if m["name"] == name)["primitive"]["layers"]
    page.click("#tab-edit")
    page.select_option("#edit-model", name)
    expected = {layer: primitive(server, name, layer) for layer in layers}
    for layer, pixels in expected.items():
        wait_for_canvas(page, f"edit-canvas-{layer}", pixels)
    return expected


# ---- translate --------------------------------------------------------------------------------------------

def test_translate_shows_a_translated_image_of_the_input_size(page, tmp_path):
    source = tmp_path / "photo.png"
    source.write_bytes(png(24, 20, seed=3))
    page.select_option("#translate-model", "cyclegan")
    assert page.eval_on_selector_all("#translate-direction option", "os => os.map(o => o.value)") == ["AtoB", "BtoA"]
    page.select_option("#translate-direction", "BtoA")
    page.set_input_files("#translate-files", str(source))
    wait_for_decoded(page, "#translate-results img.output")
    output = shown_image(page, "#translate-results img.output")
    shown_input = shown_image(page, "#translate-results img.input")
    assert output.format == "PNG" and output.size == (24, 20)
    assert page.eval_on_selector("#translate-results img.output", "i => [i.naturalWidth, i.naturalHeight]") == [24, 20]
    assert np.array_equal(rgba(shown_input), rgba(Image.open(source)))
    assert differ(output, shown_input) > 5
    assert "cyclegan, BtoA" in page.inner_text("#translate-results .result")
    assert page.get_attribute("#translate-results a.download", "download") == "photo_BtoA.png"


def test_translate_shows_the_servers_error_for_a_non_image_and_goes_on(page, server, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"these are notes, not a picture\n")
    expected = requests.post(f"{server}/api/translate", data={"model": "cyclegan"},
                             files={"image": ("notes.png", bad.read_bytes(), "image/png")})
    assert expected.status_code == 415
    page.set_input_files("#translate-files", str(bad))
    page.wait_for_selector("#translate-results .result .error", timeout=WAIT_MS)
    assert page.inner_text("#translate-results .result .error") == expected.json()["detail"]
    assert "notes.png" in expected.json()["detail"]
    assert page.query_selector("#translate-results .result img.output") is None

    good = tmp_path / "after.png"
    good.write_bytes(png(24, 20, seed=4))
    page.set_input_files("#translate-files", str(good))
    wait_for_decoded(page, "#translate-results .result:first-child img.output")
    assert page.eval_on_selector_all("#translate-results .result", "rows => rows.length") == 2
    assert shown_image(page, "#translate-results .result:first-child img.output").size == (24, 20)


def test_translate_shows_the_servers_warning_beside_the_result(browser, served_models, tmp_path):
    """A pix2pix dataset file (A|B side by side) is translated whole; the server's warning saying which half to
    give is shown in the result's row (it came in a header the page did not show for translations)."""
    from pixmorph.serve.app import create_app
    from pixmorph.serve.models import load_models
    from serving import running
    from test_user_errors import make_checkpoint

    pair = tmp_path / "pair.png"
    pair.write_bytes(png(64, 32, seed=5))
    p2p = load_models([f"p2p={make_checkpoint(tmp_path / 'p2p')}"], device="cpu", precision="fp32")
    with running(create_app({**served_models, **p2p})) as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=WAIT_MS)
        page.select_option("#translate-model", "p2p")
        page.set_input_files("#translate-files", str(pair))
        wait_for_decoded(page, "#translate-results img.output")
        page.wait_for_selector("#translate-results .result .warning", timeout=WAIT_MS)
        warning = page.inner_text("#translate-results .result .warning")
        page.check("#translate-pairs")  # the pair's A half alone, as `pixmorph translate --side-by-side` cuts it
        page.set_input_files("#translate-files", str(pair))
        page.wait_for_function("document.querySelectorAll('#translate-results .result').length === 2", timeout=WAIT_MS)
        wait_for_decoded(page, "#translate-results .result:first-child img.output")
        halved = shown_image(page, "#translate-results .result:first-child img.output")
        caption = page.inner_text("#translate-results .result:first-child figcaption >> nth=1")
        warned = page.eval_on_selector_all("#translate-results .result:first-child .warning", "w => w.length")
        page.close()
    assert warning.startswith("warning: 64x32, about twice as wide as high") and "give its A half" in warning
    assert "'A|B pairs'" in warning
    assert halved.size == (32, 32) and caption == "p2p, AtoB, one half of the pair" and warned == 0


# ---- few-shot ---------------------------------------------------------------------------------------------

def test_fewshot_translates_each_content_image_as_the_class(page, tmp_path):
    def files(prefix: str, seeds: range) -> list[str]:
        paths = [tmp_path / f"{prefix}{s}.png" for s in seeds]
        for path, seed in zip(paths, seeds):
            path.write_bytes(png(16, 16, seed=seed, mode="L"))
        return [str(p) for p in paths]

    page.click("#tab-fewshot")
    assert page.is_visible("#panel-fewshot") and not page.is_visible("#panel-translate")
    page.select_option("#fewshot-model", "funit")
    assert page.is_disabled("#fewshot-run")
    page.set_input_files("#fewshot-class", files("class", range(10, 12)))
    wait_for_decoded(page, "#fewshot-class-thumbs img", 2)
    assert page.is_disabled("#fewshot-run")  # no content image yet
    page.set_input_files("#fewshot-content", files("content", range(20, 22)))
    assert page.is_enabled("#fewshot-run")
    page.click("#fewshot-run")
    wait_for_decoded(page, "#fewshot-results img.output", 2)
    assert page.eval_on_selector_all("#fewshot-results img.output", "imgs => imgs.length") == 2
    for i in (1, 2):
        assert shown_image(page, f"#fewshot-results .result:nth-child({i}) img.output").size == (16, 16)
    assert page.eval_on_selector_all("#fewshot-results .error", "e => e.length") == 0
    assert "K=2" in page.inner_text("#fewshot-results")
    page.wait_for_function("!document.getElementById('fewshot-run').disabled", timeout=WAIT_MS)


# ---- edit ---------------------------------------------------------------------------------------------------

def test_edit_a_stroke_changes_the_edge_map_and_the_render(page, server):
    start = choose_edit_model(page, server, "edges")["edges"]
    assert page.is_visible("#edit-canvas-edges") and not page.is_visible("#edit-canvas-seg")
    assert page.is_hidden("#palette")

    y = 8  # a row across the image, near its top
    stroke(page, "edit-canvas-edges", horizontal(y + 0.5, 6, 58))
    drawn = canvas_pixels(page, "edit-canvas-edges")
    changed = (drawn != start).any(-1)
    assert changed.sum() >= 40, "the stroke left (almost) nothing on the canvas"
    assert (drawn[changed][:, :3] == BLACK).all(), "the stroke painted something other than black"
    rows = np.nonzero(changed.any(1))[0]
    assert rows.min() >= y - 2 and rows.max() <= y + 2, f"the stroke landed on rows {rows.min()}..{rows.max()}"
    assert (drawn[y, 8:56, :3] == BLACK).all(), "the stroke's path is not black throughout"

    stroked = generate(page)
    assert stroked.size == (64, 48)
    assert "rendered" in page.inner_text("#edit-caption")

    page.click("#edit-undo")
    assert np.array_equal(canvas_pixels(page, "edit-canvas-edges"), start)
    unedited = generate(page)
    assert unedited.size == (64, 48)
    assert differ(stroked, unedited) > 1, "the stroke did not change the render"
    # what the page uploads from its canvas is the primitive itself: the API's render of the file is the same
    api = requests.post(f"{server}/api/edit", data={"model": "edges"},
                        files={"primitive": ("edges.png", requests.get(
                            f"{server}/api/models/edges/primitive/edges").content, "image/png")})
    assert api.status_code == 200, api.text
    assert np.array_equal(rgba(unedited), rgba(Image.open(io.BytesIO(api.content))))


def test_edit_reset_restores_the_primitive(page, server):
    start = choose_edit_model(page, server, "edges")["edges"]
    stroke(page, "edit-canvas-edges", [(10, 40), (30, 30), (50, 40)])
    stroke(page, "edit-canvas-edges", horizontal(20, 5, 60))
    assert not np.array_equal(canvas_pixels(page, "edit-canvas-edges"), start)
    page.click("#edit-reset")
    wait_for_canvas(page, "edit-canvas-edges", start)
    page.click("#edit-undo")  # reset forgets the strokes: nothing is left to undo
    assert np.array_equal(canvas_pixels(page, "edit-canvas-edges"), start)


def test_edit_segmentation_paints_exact_label_colours(page, server):
    models = {m["name"]: m for m in requests.get(f"{server}/api/models").json()}
    palette = [tuple(c) for c in models["segedges"]["primitive"]["palette"]]
    start = choose_edit_model(page, server, "segedges")
    assert page.is_visible("#edit-canvas-seg") and page.is_visible("#edit-canvas-edges")
    assert page.is_visible("#edit-layer-label")

    page.select_option("#edit-layer", "edges")
    assert page.is_hidden("#palette") and page.is_visible("#edit-edge-tools")
    page.select_option("#edit-layer", "seg")
    assert page.is_visible("#palette") and page.is_hidden("#edit-edge-tools")
    swatches = page.query_selector_all("#palette button.swatch")
    assert len(swatches) == len(palette) >= 2

    y = 30
    row = [tuple(p) for p in start["seg"][y, :, :3]]
    index = min(range(len(palette)), key=lambda i: row.count(palette[i]))  # the colour least in that row
    colour = palette[index]
    swatches[index].click()
    assert swatches[index].get_attribute("aria-pressed") == "true"
    page.fill("#edit-brush", "5")  # a wider brush: its round edge is where anti-aliasing would show
    stroke(page, "edit-canvas-seg", horizontal(y + 0.5, 4, 60))

    painted = canvas_pixels(page, "edit-canvas-seg")
    changed = (painted != start["seg"]).any(-1)
    assert changed.sum() >= 100
    assert {tuple(p) for p in painted[changed]} == {colour + (255,)}, "painted pixels are not exactly the colour"
    assert (painted[y, 6:58, :3] == colour).all()
    colours = {tuple(p) for p in painted[..., :3].reshape(-1, 3)}
    assert colours <= set(palette), f"colours outside the palette: {colours - set(palette)}"
    assert np.array_equal(canvas_pixels(page, "edit-canvas-edges"), start["edges"]), "the edges layer changed"

    rendered = generate(page)
    assert rendered.size == (64, 48)
