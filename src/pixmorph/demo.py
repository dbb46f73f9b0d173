"""``pixmorph demo``: CycleGAN on built-in fashion-edges in a few CPU minutes, judged against ground truth."""

from __future__ import annotations

import html
import re
from pathlib import Path

from PIL import Image

import torch

from pixmorph.api import Translator, load
from pixmorph.config import DataConfig, RunConfig, TrainConfig
from pixmorph.data.builtin import prepare_task
from pixmorph.images import list_images, make_grid_image, read_image, save_image, to_tensor
from pixmorph.messages import one_line
from pixmorph.train import checkpoint as ckpt
from pixmorph.train.loop import build_method, resolve_device, train

# A generator sized to 32 px images: the reference ResNet with fewer, narrower layers.
# Fashion-MNIST is grayscale: one channel in and out.
DEMO_MODEL = {"ngf": 32, "ndf": 32, "n_blocks": 6, "d_layers": 2, "in_channels": 1, "out_channels": 1}
DEMO_EPOCHS = 0.5  # then as much again with the learning rate decaying to 0: ~375 steps of 8 images
DEMO_BATCH = 8
N_TEST = 200
N_SHOWN = 16


def demo_config(out: Path, minutes: float, device: str) -> RunConfig:
    return RunConfig(
        method="cyclegan",
        model=dict(DEMO_MODEL),
        data=DataConfig(root="fashion-edges", flip=True, channels=1, num_workers=1),
        train=TrainConfig(out=str(out / "run"), overwrite=True,  # a demo run again starts over
                          batch_size=DEMO_BATCH, epochs=DEMO_EPOCHS,
                          epochs_decay=DEMO_EPOCHS, time_budget=minutes * 60, device=device,
                          log_every=25, sample_every=250, checkpoint_every=500),
    )


def l1_to_truth(translate, inputs: torch.Tensor, truth: torch.Tensor) -> float:
    return float((translate(inputs) - truth).abs().mean())


PAGE_TITLE = "<title>pixmorph demo</title>"
MARK = {"Software": "pixmorph demo"}  # a PNG text chunk in every image the demo writes: its own, to write over
_PAGE_IMAGE = re.compile(r"test_\d+_(input|output|truth)\.png$")  # the names _write_page gives the task's items


def refuse_foreign_files(out: Path) -> None:
    """A one-line FileExistsError, before any training, when ``out`` holds files the demo would write over that
    are not its own earlier output (its page, its grid, its page's images, its run); another demo's folder is
    its own to write over again."""
    page = out / "index.html"
    if page.is_file() and PAGE_TITLE not in page.read_text(errors="replace"):  # `--out .` in a website's folder
        raise FileExistsError(f"{page}: not a page of the demo, which it would write over: give another --out")
    if page.is_file():
        return  # the folder of an earlier demo (one from before the images were marked too)
    foreign = [] if not (out / "demo_grid.png").exists() or _marked(out / "demo_grid.png") else ["demo_grid.png"]
    images = out / "images"
    if images.is_dir():
        foreign += [f"images/{p.name}" for p in sorted(images.iterdir())
                    if _PAGE_IMAGE.match(p.name) and not _marked(p)]
    elif images.exists():
        foreign.append("images (a file)")
    run = out / "run"
    if ckpt.holds_checkpoint(run) and not _a_demo_run(run):
        foreign.append("run/ (another run)")
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise FileExistsError(f"{one_line(out)}: its {', '.join(map(one_line, foreign[:3]))}{more} are not the demo's, "
                              f"which it would write over: give another --out (or move them away)")


def _marked(path: Path) -> bool:
    """Whether ``path`` is an image the demo wrote (its PNG text chunk)."""
    try:
        with Image.open(path) as im:
            return path.is_file() and im.info.get("Software") == MARK["Software"]
    except (OSError, ValueError):
        return False


def _a_demo_run(run: Path) -> bool:
    try:
        ran = ckpt.config_that_ran(run)
    except (OSError, ValueError):
        return False
    data = ran.get("data")
    return ran.get("method") == "cyclegan" and isinstance(data, dict) and data.get("root") == "fashion-edges"


def run_demo(out: Path, minutes: float = 10.0, device: str = "auto") -> dict:
    refuse_foreign_files(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = demo_config(out, minutes, str(resolve_device(device)))
    run_dir = train(cfg)

    root = prepare_task("fashion-edges")
    files = list_images(root / "testA")[:N_TEST]
    edges = torch.stack([to_tensor(read_image(f, mode="L")) for f in files])
    truth = torch.stack([to_tensor(read_image(root / "testB" / f.name, mode="L")) for f in files])
    translator = load(run_dir, device=cfg.train.device, precision="fp32")  # the L1 figure in fp32 everywhere
    torch.manual_seed(cfg.train.seed)  # the generator training started from, not whatever the RNG holds now
    untrained = Translator(build_method(RunConfig.from_dict(cfg.to_dict())), cfg, torch.device("cpu"), 0)
    result = {
        "l1_model": l1_to_truth(translator, edges, truth),
        "l1_identity": l1_to_truth(lambda x: x, edges, truth),
        "l1_untrained": l1_to_truth(untrained, edges, truth),
    }
    outputs = translator(edges)
    result["grid"] = _write_grid(out / "demo_grid.png", edges, outputs, truth)
    result["page"] = _write_page(out, files, edges, outputs, truth, result)
    result["run"] = run_dir
    return result


def _write_grid(path: Path, edges, outputs, truth) -> Path:
    """Columns of (edge map | CycleGAN | ground truth) triplets, four triplets per row."""
    triplets = [[edges[i], outputs[i], truth[i]] for i in range(min(N_SHOWN, len(edges)))]
    rows = [sum(triplets[i : i + 4], []) for i in range(0, len(triplets), 4)]
    grid = make_grid_image(rows, pad=2)
    grid = grid.resize((grid.width * 4, grid.height * 4), resample=0)  # 32 px items are small on screen
    save_image(grid, path, png_text=MARK)
    return path


def _write_page(out: Path, files, edges, outputs, truth, result: dict) -> Path:
    images = out / "images"
    rows = []
    for i, f in enumerate(files[:64]):
        cells = []
        for kind, t in (("input", edges[i]), ("output", outputs[i]), ("truth", truth[i])):
            name = f"{f.stem}_{kind}.png"
            save_image(t, images / name, png_text=MARK)
            cells.append(f'<td><img src="images/{html.escape(name)}" width=96></td>')
        rows.append(f"<tr><td>{html.escape(f.stem)}</td>{''.join(cells)}</tr>")
    page = out / "index.html"
    page.write_text(
        f"<!doctype html><meta charset=utf-8>{PAGE_TITLE}"
        "<style>body{font-family:sans-serif}img{image-rendering:pixelated}</style>"
        "<h1>CycleGAN on fashion-edges: edge map &rarr; item</h1>"
        f"<p>Mean L1 to ground truth over {len(files)} held-out items: CycleGAN {result['l1_model']:.3f}, "
        f"input unchanged {result['l1_identity']:.3f}, untrained generator {result['l1_untrained']:.3f}. "
        f'Training samples: <a href="run/samples/index.html">run/samples</a>.</p>'
        "<table><tr><th>item</th><th>input (edges)</th><th>output</th><th>ground truth</th></tr>"
        + "\n".join(rows) + "</table>\n"
    )
    return page
