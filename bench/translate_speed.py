"""Translation speed of a method's reference generator (CycleGAN's ResNet-9 at 256x256 by default; FUNIT's
at 128x128, reconstructing; DeepSIM's global generator on an edge map at 256x256): images/s and peak
memory for eager PyTorch and ONNX Runtime (and, on CUDA, bf16/fp16 channels_last PyTorch; on a CPU with
AMX or AVX512-BF16, bf16 PyTorch contiguous and channels_last), with the software and device it ran on.

The runtimes are timed interleaved (round-robin, one call each in turn) so that a busy shared CPU
slows them alike; the ratio to eager fp32 PyTorch is the robust figure, the absolute one is not.

    python bench/translate_speed.py --device cpu --batch-sizes 1,4 --rounds 5
    python bench/translate_speed.py --device cuda --batch-sizes 1,16,64 --rounds 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import pixmorph  # before torch: it sets a short OpenMP spin (GOMP_SPINCOUNT, see pixmorph/__init__.py)
import torch
from torch.utils.flop_counter import FlopCounterMode
from machine import PeakRSS, cpu_model  # bench/ is on sys.path when run as a script
from options import device_or_error, positive_ints
from train_speed import METHODS, build

from pixmorph.nn.init import init_normal
from pixmorph.nn.resnet_generator import ResnetGenerator
from pixmorph.train.loop import resolve_device
from pixmorph.train.speed import bf16_is_fast

TRANSLATORS = {"cyclegan": "CycleGAN reference generator (ResNet-9, ngf 64)",
               "funit": "FUNIT paper-config generator, reconstructing (content + class encoder of the same image, decoder)",
               "deepsim": "DeepSIM paper-config global generator (ngf 64, 4 downsamplings, 9 blocks) on a 1-channel edge map"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--method", default="cyclegan", choices=list(TRANSLATORS), help="whose generator")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--size", type=int, default=None, help="image side; default the method's (funit 128, else 256)")
    p.add_argument("--batch-sizes", default=None, help='comma-separated; default "1,4" on CPU, "1,16,64" on CUDA')
    p.add_argument("--rounds", type=int, default=None, help="timed calls per runtime; default 3 on CPU, 20 on CUDA")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for both runtimes; default: torch's")
    p.add_argument("--no-onnx", action="store_true", help="PyTorch only")
    args = p.parse_args(argv)
    cpu = device_or_error(p, args.device).type == "cpu"
    args.batch_sizes = positive_ints(p, "--batch-sizes", args.batch_sizes or ("1,4" if cpu else "1,16,64"))
    args.rounds = args.rounds if args.rounds is not None else (3 if cpu else 20)
    args.size = args.size if args.size is not None else METHODS[args.method][1]
    for option, value in (("--rounds", args.rounds), ("--size", args.size), ("--threads", 1 if args.threads is None else args.threads)):
        if value < 1:
            p.error(f"{option} {value}: must be at least 1")
    return args


def runtimes(generator: torch.nn.Module, device: torch.device, onnx_path: Path | None) -> dict[str, Callable]:
    """name -> f(x on the host) -> output on the host, as the Translator runs them."""
    cuda = device.type == "cuda"

    def torch_runner(dtype: torch.dtype | None, channels_last: bool) -> Callable:
        net = generator.to(device)
        fmt = torch.channels_last if channels_last else torch.contiguous_format

        @torch.no_grad()
        def run(x: torch.Tensor) -> torch.Tensor:
            x = x.to(device, non_blocking=True).contiguous(memory_format=fmt)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                y = net(x)
            return y.float().cpu()

        return run

    out: dict[str, Callable] = {"torch fp32": torch_runner(None, False)}
    if cuda:
        out["torch bf16 channels_last"] = torch_runner(torch.bfloat16, True)
        out["torch fp16 channels_last"] = torch_runner(torch.float16, True)
    elif bf16_is_fast(device):  # a CPU with AMX or AVX512-BF16: oneDNN's bf16 convolutions
        out["torch bf16"] = torch_runner(torch.bfloat16, False)
        out["torch bf16 channels_last"] = torch_runner(torch.bfloat16, True)
    if onnx_path is not None:
        from pixmorph.export import OnnxGenerator

        ort = OnnxGenerator(onnx_path, device)
        out[f"onnxruntime ({ort.providers[0].replace('ExecutionProvider', '')})"] = ort
    return out


def measure(runs: dict[str, Callable], x: torch.Tensor, rounds: int, device: torch.device) -> dict[str, dict]:
    """Median seconds per call for each runtime, timed round-robin; peak memory; max abs diff to the first."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    outputs, memory = {}, {}
    for name, run in runs.items():  # warm-up, output and peak memory, one runtime at a time
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        with PeakRSS() as rss:
            outputs[name] = run(x)
            run(x)
        memory[name] = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else rss.gib_above_start
    for _ in range(rounds):
        for name, run in runs.items():
            t = time.perf_counter()
            run(x)  # returns a host tensor, so CUDA work is finished when it returns
            times[name].append(time.perf_counter() - t)
    first = next(iter(outputs.values()))
    return {name: {"sec": statistics.median(times[name]), "peak_gib": memory[name],
                   "max_abs_diff": float((outputs[name] - first).abs().max())} for name in runs}


def header(device: torch.device, args: argparse.Namespace) -> str:
    line = f"pixmorph {pixmorph.__version__}, torch {torch.__version__}"
    try:
        import onnxruntime

        line += f", onnxruntime {onnxruntime.__version__}"
    except ImportError:
        line += ", onnxruntime not installed"
    line += f", {time.strftime('%Y-%m-%d %H:%M')}\n"
    if device.type == "cuda":
        line += f"device: cuda, {torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    else:
        load = "/".join(f"{x:.2f}" for x in os.getloadavg())
        line += (f"device: cpu, {cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, "
                 f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
                 f"GOMP_SPINCOUNT {os.environ.get('GOMP_SPINCOUNT', 'unset')}, load avg {load}")
    return line + f"\nmodel: {TRANSLATORS[args.method]}, {args.size}x{args.size}, " \
                  f"median of {args.rounds} round-robin calls"


def translator(method: str) -> tuple[torch.nn.Module, int]:
    """The method's generator as ``pixmorph translate`` runs it, in eval mode, and its input channels."""
    if method == "cyclegan":
        generator = ResnetGenerator()
        init_normal(generator, 0.02)
        return generator.eval(), 3
    net = next(iter(build(method, 1, 64, torch.device("cpu"))[0].translators().values()))
    return net.eval(), 1 if method == "deepsim" else 3


def forward_gflop(generator: torch.nn.Module, channels: int, size: int) -> float:
    """GFLOP of one image's forward pass, counted by FlopCounterMode (convolutions and matmuls)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        generator(torch.zeros(1, channels, size, size))
    return counter.get_total_flops() / 1e9


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    generator, channels = translator(args.method)
    print(header(device, args), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = None
        if not args.no_onnx:
            from pixmorph.export import export_generator

            onnx_path = export_generator(generator, Path(tmp) / "g.onnx", torch.zeros(1, channels, 64, 64))
        runs = runtimes(generator, device, onnx_path)
        gflop = forward_gflop(generator, channels, args.size)
        design = "; DESIGN.md: 99.1 for CycleGAN's at 256x256" if args.method == "cyclegan" else ""
        print(f"forward: {gflop:.1f} GFLOP per image (FlopCounterMode{design})")
        row = "{:>5}  {:<32} {:>9} {:>9} {:>8} {:>9} {:>10} {:>11}"
        print(row.format("batch", "runtime", "s/call", "img/s", "GFLOP/s", "vs torch", "peak GiB", "max |diff|"))
        for n in args.batch_sizes:
            x = torch.rand(n, channels, args.size, args.size) * 2 - 1
            results = measure(runs, x, args.rounds, device)
            base = next(iter(results.values()))["sec"]
            for name, r in results.items():
                print(row.format(n, name, f"{r['sec']:.3f}", f"{n / r['sec']:.2f}", f"{n * gflop / r['sec']:.0f}",
                                 f"{base / r['sec']:.2f}x", f"{r['peak_gib']:.2f}", f"{r['max_abs_diff']:.1e}"),
                      flush=True)
    if device.type == "cpu":
        print("load avg at end: " + "/".join(f"{x:.2f}" for x in os.getloadavg()))
    print("peak GiB: CPU = resident memory above the level before the call (sampled); "
          "CUDA = torch max_memory_allocated (ONNX Runtime's own CUDA memory is not seen)")


if __name__ == "__main__":
    main()
