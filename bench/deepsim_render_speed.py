"""Images/s of ``deepsim.render`` (what ``pixmorph edit`` runs) one primitive per generator call (``batch_size=1``,
how it rendered before) against primitives of one size batched, with an untrained generator of the paper's size or
the README's CPU-sized one, on drawn edge maps. Timed interleaved (one pass each in turn) so that a busy shared CPU
slows them alike; the best pass of each is printed.

    python bench/deepsim_render_speed.py --net paper --size 256x256 --batch-sizes 1,8
    python bench/deepsim_render_speed.py --net cpu-sized --size 320x240 --count 16
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pixmorph  # before torch: it sets a short OpenMP spin (GOMP_SPINCOUNT, see pixmorph/__init__.py)
import numpy as np
import torch
from options import positive_ints  # bench/ is on sys.path when run as a script
from PIL import Image

from pixmorph.api import Translator
from pixmorph.config import RunConfig
from pixmorph.methods import deepsim
from pixmorph.train.loop import build_method

NETS = {"paper": {"ngf": 64, "n_downsampling": 4, "n_blocks": 9},
        "cpu-sized": {"ngf": 16, "ndf": 16, "n_downsampling": 3, "n_blocks": 3}}


def primitive_size(parser: argparse.ArgumentParser, text: str) -> tuple[int, int]:
    """``--size WIDTHxHEIGHT`` as (width, height), or a usage error."""
    try:
        width, height = map(int, text.lower().split("x"))
    except ValueError:
        parser.error(f"--size {text!r}: give WIDTHxHEIGHT, e.g. 320x240")
    if min(width, height) < 1:
        parser.error(f"--size {text!r}: both sides must be at least 1")
    return width, height


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--net", choices=NETS, default="paper", help="the generator's size (untrained)")
    parser.add_argument("--size", default="256x256", help="WIDTHxHEIGHT of the primitives")
    parser.add_argument("--count", type=int, default=8, help="primitives rendered per pass")
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated batch_size values to time")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes of each batch size")
    args = parser.parse_args(argv)
    width, height = primitive_size(parser, args.size)
    sizes = positive_ints(parser, "--batch-sizes", args.batch_sizes)
    for option, value in (("--count", args.count), ("--rounds", args.rounds)):
        if value < 1:
            parser.error(f"{option} {value}: must be at least 1")
    torch.manual_seed(0)
    cfg = RunConfig.from_dict({"method": "deepsim", "model": {**NETS[args.net], "in_channels": 1},
                               "data": {"root": "none", "channels": 3}})
    model = Translator(build_method(cfg), cfg, torch.device("cpu"), 0, precision="fp32", image_size=(width, height))
    files = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.count):
            lines = np.full((height, width), 255, np.uint8)
            lines[np.random.default_rng(i).integers(0, height, 40)] = 0
            files.append(Path(folder) / f"{i}.png")
            Image.fromarray(lines).save(files[-1])
        print(f"{args.net} generator, {width}x{height}, {args.count} primitives, {torch.get_num_threads()} threads, "
              f"fp32 on the CPU")
        deepsim.render(model, files[:2], batch_size=2)  # warm-up
        times: dict[int, list[float]] = {b: [] for b in sizes}
        for _ in range(args.rounds):
            for b in sizes:
                start = time.perf_counter()
                deepsim.render(model, files, batch_size=b)
                times[b].append(time.perf_counter() - start)
    for b in sizes:
        print(f"batch_size {b}: {args.count / min(times[b]):.2f} images/s (best of {args.rounds}; "
              f"median {args.count / float(np.median(times[b])):.2f})")


if __name__ == "__main__":
    main()
