"""Screenshots of `pixmorph serve`'s page, one per view, for the docs: the runs are served by the real app
(uvicorn on a free 127.0.0.1 port, in a thread) and the page is driven in headless Chromium as a user
would: Translate uploads the input images; Few-shot picks the K class images and the content images and
clicks Translate; Edit draws a stroke on the primitive (paints a label colour on a segmentation, draws a
black line on an edge map) and clicks Generate. Each view is shot once its outputs have arrived:
OUT/serve_translate.png, OUT/serve_fewshot.png, OUT/serve_edit.png (a view whose run is not given is
skipped).

    python bench/serve_screenshots.py --translate runs/horse2zebra --translate-inputs a.jpg b.jpg \\
        --fewshot runs/funit --fewshot-class-images data/classes/lion --fewshot-content c.jpg d.jpg \\
        --edit runs/deepsim_car --out docs/

Needs Playwright's Python package and a Chromium (the system one: apt-get install chromium); it downloads
nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pixmorph  # noqa: F401  (before torch: it sets the OpenMP spin, as the CLI does)
from pixmorph.serve.app import create_app
from pixmorph.serve.background import running
from pixmorph.serve.models import load_models, model_name

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
VIEWPORT = {"width": 1100, "height": 700}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--translate", type=Path, help="a CycleGAN, pix2pix or two-step run folder")
    p.add_argument("--translate-inputs", type=Path, nargs="+", default=[], help="images (or folders of them)")
    p.add_argument("--translate-direction", help="AtoB, BtoA, ...; default the page's first")
    p.add_argument("--fewshot", type=Path, help="a FUNIT run folder")
    p.add_argument("--fewshot-class-images", type=Path, nargs="+", default=[],
                   help="the K class images, or a folder of them")
    p.add_argument("--fewshot-content", type=Path, nargs="+", default=[], help="content images (or folders)")
    p.add_argument("--edit", type=Path, help="a DeepSIM run folder")
    p.add_argument("--out", type=Path, default=Path("docs"), help="folder the screenshots go to")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser")
                   or shutil.which("google-chrome"), help="the browser executable")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for each view's outputs")
    args = p.parse_args(argv)
    if not (args.translate or args.fewshot or args.edit):
        p.error("nothing to shoot: give --translate, --fewshot and/or --edit")
    if args.translate and not args.translate_inputs:
        p.error("--translate needs --translate-inputs")
    if args.fewshot and not (args.fewshot_class_images and args.fewshot_content):
        p.error("--fewshot needs --fewshot-class-images and --fewshot-content")
    if not args.chromium:
        p.error("no Chromium found: apt-get install chromium, or give --chromium")
    return args


def image_files(paths: list[Path]) -> list[str]:
    """The image files named, folders expanded to the images in them (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"{path}: no such file or folder")
    if not files:
        raise SystemExit(f"no images in {' '.join(map(str, paths))}")
    return [str(f) for f in files]


def model_specs(runs: dict[str, Path | None]) -> dict[str, str]:
    """{view: NAME=RUN} for the runs given, each named after its folder (unique)."""
    specs, taken = {}, set()
    for view, run in runs.items():
        if run is None:
            continue
        name = base = model_name(run)
        n = 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        specs[view] = f"{name}={run}"
    return specs


# ---- the views ---------------------------------------------------------------------------------------------

def wait_for_rows(page, results: str, count: int, timeout_ms: float) -> list[str]:
    """Wait until ``count`` result rows each show a decoded output or an error; return the errors."""
    page.wait_for_function("""([results, count]) => {
        const rows = document.querySelectorAll(results + " .result");
        return rows.length >= count && [...rows].every((row) => row.querySelector(".error")
            || [...row.querySelectorAll("img.output")].some((i) => i.complete && i.naturalWidth > 0)); }""",
                           arg=[results, count], timeout=timeout_ms)
    return page.eval_on_selector_all(results + " .error", "errors => errors.map((e) => e.textContent)")


def shoot_translate(page, model: str, direction: str | None, inputs: list[str], out: Path, timeout_ms: float) -> None:
    page.click("#tab-translate")
    page.select_option("#translate-model", model)
    if direction:
        page.select_option("#translate-direction", direction)
    page.set_input_files("#translate-files", inputs)
    for error in wait_for_rows(page, "#translate-results", len(inputs), timeout_ms):
        print(f"translate: the page shows an error: {error}", file=sys.stderr)
    page.screenshot(path=str(out))


def shoot_fewshot(page, model: str, class_images: list[str], content: list[str], out: Path,
                  timeout_ms: float) -> None:
    page.click("#tab-fewshot")
    page.select_option("#fewshot-model", model)
    page.set_input_files("#fewshot-class", class_images)
    page.set_input_files("#fewshot-content", content)
    page.click("#fewshot-run")
    for error in wait_for_rows(page, "#fewshot-results", len(content), timeout_ms):
        print(f"few-shot: the page shows an error: {error}", file=sys.stderr)
    page.wait_for_function("document.querySelectorAll('#fewshot-class-thumbs img').length === 0 || "
                           "[...document.querySelectorAll('#fewshot-class-thumbs img')].every((i) => i.complete)")
    page.screenshot(path=str(out))


def wait_for_primitive(page, timeout_ms: float) -> list[str]:
    """Wait until every layer canvas of the chosen edit model holds its (opaque) training primitive; its
    layers."""
    page.wait_for_function("""() => [...document.querySelectorAll(".editor figure:not([hidden]) canvas")]
        .every((c) => c.width > 0 && c.getContext("2d").getImageData(c.width >> 1, c.height >> 1, 1, 1).data[3] === 255)""",
                           timeout=timeout_ms)
    return page.eval_on_selector_all(".editor figure:not([hidden]) canvas", "cs => cs.map((c) => c.id.slice(12))")


def drag(page, canvas_id: str, points: list[tuple[float, float]]) -> None:
    """A mouse stroke through ``points``, given as fractions of the canvas's width and height."""
    box = page.evaluate("""(id) => { const c = document.getElementById(id), r = c.getBoundingClientRect();
        return [r.left + c.clientLeft, r.top + c.clientTop, c.clientWidth, c.clientHeight]; }""", canvas_id)
    left, top, width, height = box
    page.mouse.move(left + points[0][0] * width, top + points[0][1] * height)
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(left + x * width, top + y * height, steps=4)
    page.mouse.up()


def wave(y: float, x0: float = 0.2, x1: float = 0.8, amplitude: float = 0.06, n: int = 12) -> list[tuple[float, float]]:
    """A gentle S-curve across the canvas at height ``y`` (fractions of the canvas)."""
    import math

    return [(x0 + (x1 - x0) * i / (n - 1), y + amplitude * math.sin(2 * math.pi * i / (n - 1))) for i in range(n)]


def paint_segmentation(page) -> None:
    """Paint a thick band in a label colour other than the one under its middle."""
    middle = page.evaluate("""() => { const c = document.getElementById("edit-canvas-seg");
        return [...c.getContext("2d").getImageData(c.width >> 1, Math.round(c.height * 0.55), 1, 1).data.slice(0, 3)]; }""")
    if page.is_visible("#edit-layer"):  # seg+edges: choose the layer (a seg-only model is on it already)
        page.select_option("#edit-layer", "seg")
    swatches = page.query_selector_all("#palette button.swatch")
    colours = [s.get_attribute("title") for s in swatches]
    other = next((i for i, title in enumerate(colours) if title != f"label colour rgb({','.join(map(str, middle))})"), 0)
    if swatches:
        swatches[other].click()
    page.fill("#edit-brush", "12")
    drag(page, "edit-canvas-seg", wave(0.55, amplitude=0.04))


def shoot_edit(page, model: str, out: Path, timeout_ms: float) -> None:
    page.click("#tab-edit")
    page.select_option("#edit-model", model)
    layers = wait_for_primitive(page, timeout_ms)
    if "seg" in layers:
        paint_segmentation(page)
    if "edges" in layers:
        if "seg" in layers:
            page.select_option("#edit-layer", "edges")
        page.fill("#edit-brush", "3")
        drag(page, "edit-canvas-edges", wave(0.75))
    page.click("#edit-generate")
    page.wait_for_function("""() => { const img = document.getElementById("edit-output");
        return document.getElementById("edit-error").textContent
            || (!img.hidden && img.complete && img.naturalWidth > 0 && !document.getElementById("edit-generate").disabled); }""",
                           timeout=timeout_ms)
    error = page.inner_text("#edit-error")
    if error:
        print(f"edit: the page shows an error: {error}", file=sys.stderr)
    show_whole(page, "#edit-output")
    page.screenshot(path=str(out))
    page.set_viewport_size(VIEWPORT)


def show_whole(page, selector: str, most: int = 1400) -> None:
    """Make the viewport taller (up to ``most`` px) when the element ends below it: the canvases and the
    output wrap onto two lines when they are wide."""
    bottom = page.eval_on_selector(selector, "e => e.closest('figure').getBoundingClientRect().bottom")
    if bottom > VIEWPORT["height"]:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": min(most, int(bottom) + 16)})


# ---- main -------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> list[Path]:
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright

    specs = model_specs({"translate": args.translate, "fewshot": args.fewshot, "edit": args.edit})
    names = {view: spec.split("=", 1)[0] for view, spec in specs.items()}
    models = load_models(list(specs.values()), device=args.device, precision=args.precision)
    for view, name in names.items():
        task = models[name].task
        if task != view:
            raise SystemExit(f"--{view} {getattr(args, view)}: a {models[name].method} run ({task}), not one for {view}")
    args.out.mkdir(parents=True, exist_ok=True)
    timeout_ms = 1000 * args.timeout
    written: list[Path] = []
    with running(create_app(models)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url + "/")
            page.wait_for_function("document.body.dataset.ready === 'true'", timeout=60_000)
            if "translate" in names:
                written.append(args.out / "serve_translate.png")
                shoot_translate(page, names["translate"], args.translate_direction,
                                image_files(args.translate_inputs), written[-1], timeout_ms)
            if "fewshot" in names:
                written.append(args.out / "serve_fewshot.png")
                shoot_fewshot(page, names["fewshot"], image_files(args.fewshot_class_images),
                              image_files(args.fewshot_content), written[-1], timeout_ms)
            if "edit" in names:
                written.append(args.out / "serve_edit.png")
                shoot_edit(page, names["edit"], written[-1], timeout_ms)
        finally:
            browser.close()
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main()
