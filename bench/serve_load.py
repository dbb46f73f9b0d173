"""Throughput and latency of ``pixmorph serve`` under concurrent clients: requests served, requests/s,
p50/p95 latency, answers by status (503 = queue full), peak resident memory of the server process, and
the machine and software it ran on.

The server runs in this process (uvicorn on 127.0.0.1, a free port), as ``pixmorph serve`` runs it; the
clients run as threads in a second process, so that they do not share the server's interpreter lock.
Each client sends, in turn, one request for each served model (translate: one --size image; few-shot: a
content image and two class images; edit: the model's training primitive, its longer side resized to
--size) and waits --backoff seconds after a 503 before its next request. Without --runs, tiny runs (CycleGAN, FUNIT,
DeepSIM edges; 2 training steps) are trained in a temporary folder first: the figures then measure the
server far more than the networks.

    python bench/serve_load.py --clients 8 --seconds 10
    python bench/serve_load.py --runs demo=runs/demo/run --clients 16 --seconds 30 --size 32   # after pixmorph demo
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from machine import PeakRSS, cpu_model  # bench/ is on sys.path when run as a script


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--runs", nargs="+", metavar="[NAME=]RUN", default=None,
                   help="run folders to serve, as for pixmorph serve; default: train tiny runs first")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients")
    p.add_argument("--seconds", type=float, default=10.0, help="how long the clients send requests")
    p.add_argument("--max-pending", type=int, default=16,
                   help="the server's queue bound (pixmorph serve --max-pending)")
    p.add_argument("--size", type=int, default=64, help="side of the images sent")
    p.add_argument("--backoff", type=float, default=0.05, help="seconds a client waits after a 503")
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=1, help="requests of each kind sent before the clients start")
    args = p.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.size < 1:
        p.error("--clients, --seconds and --size must be positive")
    from options import device_or_error  # imports torch: not before --help

    device_or_error(p, args.device)  # before the tiny runs are trained
    return args


# -- the models ---------------------------------------------------------------------------------------


def train_tiny_runs(base: Path) -> list[str]:
    """NAME=RUN specs of a CycleGAN, a FUNIT and a DeepSIM (edges) run trained for 2 steps on random images."""
    import numpy as np
    from PIL import Image

    from pixmorph.config import RunConfig
    from pixmorph.methods import deepsim
    from pixmorph.train.loop import train

    rng = np.random.default_rng(0)
    quick = {"max_steps": 2, "tensorboard": False, "device": "cpu", "log_every": 1, "sample_every": 10**6}

    def save(path: Path, shape: tuple[int, ...]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)

    for sub in ("trainA", "trainB"):
        for j in range(3):
            save(base / "unpaired" / sub / f"{j}.png", (20, 20, 3))
    cyclegan = train(RunConfig.from_dict({
        "method": "cyclegan", "model": {"ngf": 8, "ndf": 8, "n_blocks": 1, "d_layers": 1},
        "data": {"root": str(base / "unpaired"), "load_size": 16, "crop_size": 16, "num_workers": 0},
        "train": {"out": str(base / "cyclegan"), "batch_size": 2, **quick}}), progress=False)

    for c in range(6):
        for j in range(3):
            save(base / "classes" / f"class{c}" / f"{j}.png", (16, 16))
    (base / "classes" / "fewshot.json").write_text(json.dumps({"flip": False, "target_classes": ["class4", "class5"]}))
    funit = train(RunConfig.from_dict({
        "method": "funit",
        "model": dict(channels=1, nf=8, nf_mlp=16, latent_dim=8, n_res_blocks=1, n_down_content=1, n_down_class=2,
                      nf_dis=8, n_res_blocks_dis=4, num_classes=4),
        "data": {"root": str(base / "classes"), "load_size": 16, "crop_size": 16, "flip": False, "channels": 1,
                 "num_workers": 0},
        "train": {"out": str(base / "funit"), "batch_size": 4, "lr_policy": "constant", **quick}}), progress=False)

    y, x = np.mgrid[0:48, 0:64]
    photo = np.stack([x * 4, np.where((x - 21) ** 2 + (y - 24) ** 2 < 144, 230, 40), np.where(x > 38, 200, 60)], -1)
    Image.fromarray(photo.astype(np.uint8)).save(base / "photo.png")
    edges = train(deepsim.make_config(base / "photo.png", out=base / "deepsim", train=quick,
                                      model={"ngf": 4, "ndf": 4, "n_blocks": 1, "d_layers": 2, "n_downsampling": 4,
                                             "lambda_vgg": 0}), progress=False)
    return [f"cyclegan={cyclegan}", f"funit={funit}", f"edges={edges}"]


# -- the server's memory --------------------------------------------------------------------------------


# -- the requests -------------------------------------------------------------------------------------


def png(side: int, seed: int, mode: str = "RGB") -> bytes:
    import numpy as np
    from PIL import Image

    array = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def request_kinds(url: str, size: int) -> list[dict]:
    """One request per served model, as plain data for the client process: kind, URL, form, files."""
    import requests
    from PIL import Image

    kinds = []
    for i, model in enumerate(requests.get(f"{url}/api/models", timeout=30).json()):
        name, mode = model["name"], "L" if model["channels"] == 1 else "RGB"
        if model["task"] == "translate":
            files = [("image", ("image.png", png(size, i, mode)))]
        elif model["task"] == "fewshot":
            files = [("content", ("content.png", png(size, 100 + i, mode)))] + [
                ("class_images", (f"class{k}.png", png(size, 200 + 10 * i + k, mode))) for k in range(2)]
        else:
            files = []
            for layer in model["primitive"]["layers"]:
                drawn = requests.get(f"{url}/api/models/{name}/primitive/{layer}", timeout=30).content
                files.append(("primitive" if layer == model["primitive"]["layers"][0] else "edges",
                              (f"{layer}.png", primitive_at(drawn, size))))
        kinds.append({"kind": f"{model['task']} ({name})", "url": f"{url}/api/{model['task']}",
                      "form": {"model": name}, "files": files})
    return kinds


def primitive_at(drawn: bytes, size: int) -> bytes:
    """A training primitive (PNG) scaled to a longer side of ``size``, its aspect kept: squashed to a square, each
    edit was warned of (and logged by the server) as a shape the model never trained on."""
    from PIL import Image

    image = Image.open(io.BytesIO(drawn))
    scale = size / max(image.size)
    buffer = io.BytesIO()
    image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.NEAREST).save(
        buffer, format="PNG")
    return buffer.getvalue()


def client_process(kinds: list[dict], clients: int, seconds: float, backoff: float, out) -> None:
    """Run in a child process: ``clients`` threads, each sending the kinds in turn for ``seconds``;
    sends back (kind, status or error name, latency in s) per request."""
    import requests

    results: list[tuple[str, int | str, float]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    max_requests = 100_000  # per client: the loop ends by this count or by the deadline, whichever first

    def client(index: int) -> None:
        mine = []
        with requests.Session() as session:
            for n in range(max_requests):
                if time.monotonic() >= deadline:
                    break
                k = kinds[(index + n) % len(kinds)]
                start = time.perf_counter()
                try:
                    response = session.post(k["url"], data=k["form"], files=k["files"], timeout=(5, 120))
                    status: int | str = response.status_code
                except requests.RequestException as err:
                    status = type(err).__name__
                mine.append((k["kind"], status, time.perf_counter() - start))
                if status == 503 and backoff > 0:
                    time.sleep(backoff)
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 180)
    out.send(results)
    out.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


# -- the report ---------------------------------------------------------------------------------------


def machine_line() -> str:
    import fastapi
    import torch
    import uvicorn

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu_model()}, {os.cpu_count()} cores ({usable} usable), torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}, fastapi {fastapi.__version__}, "
            f"uvicorn {uvicorn.__version__}, {platform.system()} {platform.release()}")


def report(args, results, seconds: float, rss: PeakRSS, served: int) -> None:
    statuses = Counter(status for _, status, _ in results)
    ok = [latency for _, status, latency in results if status == 200]
    total = len(results)
    print(f"{args.clients} clients for {seconds:.1f} s, max_pending {args.max_pending}, {args.size} px images, "
          f"{args.backoff:g} s back-off after a 503")
    print(f"requests answered: {total} ({total / seconds:.1f}/s); served (200): {len(ok)} ({len(ok) / seconds:.1f}/s); "
          f"the queue counted {served} model calls")
    print(f"latency of 200s: p50 {1000 * percentile(ok, 50):.0f} ms, p95 {1000 * percentile(ok, 95):.0f} ms; "
          f"of all answers: p50 {1000 * percentile([r[2] for r in results], 50):.0f} ms, "
          f"p95 {1000 * percentile([r[2] for r in results], 95):.0f} ms")
    by_status = ", ".join(f"{s}: {n} ({100 * n / total:.1f}%)" for s, n in sorted(statuses.items(), key=str))
    errors = total - statuses[200]
    print(f"answers by status: {by_status}; not 200: {100 * errors / max(total, 1):.1f}%; "
          f"503 (queue full): {statuses[503]}")
    for kind in sorted({k for k, _, _ in results}):
        mine = [latency for k, status, latency in results if k == kind and status == 200]
        print(f"  {kind}: {len(mine)} served, p50 {1000 * percentile(mine, 50):.0f} ms, "
              f"p95 {1000 * percentile(mine, 95):.0f} ms")
    print(f"server process RSS: {rss.start / 2**20:.0f} MiB before the load, peak {rss.peak / 2**20:.0f} MiB during it")
    print(f"machine: {machine_line()}")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import pixmorph  # noqa: F401  (before torch: the OpenMP spin setting, as the CLI does)
    import requests

    from pixmorph.serve.app import create_app
    from pixmorph.serve.background import running
    from pixmorph.serve.models import load_models

    with tempfile.TemporaryDirectory(prefix="pixmorph-serve-bench-") as tmp:
        specs = args.runs or train_tiny_runs(Path(tmp))
        models = load_models(specs, device=args.device)
        for m in models.values():
            print(f"model {m.name}: {m.method} ({m.task}), step {m.translator.step}, {m.path}")
        with running(create_app(models, max_pending=args.max_pending)) as url:
            kinds = request_kinds(url, args.size)
            for k in kinds:
                for _ in range(args.warmup):
                    warm = requests.post(k["url"], data=k["form"], files=k["files"], timeout=(5, 120))
                    if warm.status_code != 200:
                        raise SystemExit(f"{k['kind']}: {warm.status_code} {warm.text[:300]}")
            served_before = requests.get(f"{url}/api/health", timeout=30).json()["served"]
            receive, send = multiprocessing.get_context("spawn").Pipe(duplex=False)
            clients = multiprocessing.get_context("spawn").Process(
                target=client_process, args=(kinds, args.clients, args.seconds, args.backoff, send), daemon=True)
            with PeakRSS(interval=0.01) as rss:
                clients.start()
                if not receive.poll(args.seconds + 240):  # the clients time themselves from their first request
                    clients.kill()
                    raise SystemExit("the clients did not finish")
                results = receive.recv()
                clients.join(30)
            served = requests.get(f"{url}/api/health", timeout=30).json()["served"] - served_before
    report(args, results, args.seconds, rss, served)
    return {"results": results, "served": served}


if __name__ == "__main__":
    main()
