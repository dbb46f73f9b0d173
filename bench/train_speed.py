"""Training speed: seconds per step, images/s, peak memory and FLOP utilisation.

Uses a method's reference architecture (``--method cyclegan``, the default: ``CycleGANConfig()``,
ResNet generator with 9 blocks, ngf 64, 70x70 PatchGAN, at 256x256; ``funit``: the paper's
animal-faces ``FunitConfig()`` at 128x128; ``deepsim``: pix2pixHD's global generator and two-scale
discriminator with the perceptual loss, on an image and its Canny edges at 256x256, TPS warp in the
step) and the same training step as ``pixmorph.train.loop``: the method's
``train_step`` under ``torch.autocast`` with the loop's ``_make_update`` (backward through a
GradScaler that is enabled only for fp16, then the optimizer step). Data loading, logging,
samples and checkpoints are left out: this is the cost of the step itself, on random images.

    python bench/train_speed.py --device cpu --batch-sizes 1,4 --steps 3 --warmup 1
    python bench/train_speed.py --device cuda --precision bf16 --json runs/speed.json
    python bench/train_speed.py --method funit --device cuda --precision bf16 --batch-sizes 8,64

On a shared, busy CPU absolute times drift with the load; ``--compare`` times settings interleaved
(one step of each in turn, the order reversed every round) and reports each one's time as a ratio
to the first, paired round by round, plus its FLOP rate as a fraction of an fp32 matrix multiply
timed in the same rounds (what the CPU gave this process at that moment):

    python bench/train_speed.py --device cpu --compare plain fused channels_last,fused --steps 4
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import time
from typing import Any

import pixmorph  # before torch: it sets a short OpenMP spin (GOMP_SPINCOUNT, see pixmorph/__init__.py)
import torch
from machine import cpu_model  # bench/ is on sys.path when run as a script
from options import device_or_error, positive_ints, size_problem
from torch.utils.flop_counter import FlopCounterMode

from pixmorph.config import TrainConfig
from pixmorph.data.primitives import canny_edges
from pixmorph.methods import Method
from pixmorph.methods.cyclegan import CycleGAN, CycleGANConfig
from pixmorph.methods.deepsim import DeepSIM, DeepSIMConfig
from pixmorph.methods.funit import Funit, FunitConfig
from pixmorph.train import speed
from pixmorph.train.loop import PRECISIONS, _make_update, resolve_device

DESIGN_TFLOP_256_B1 = 1.9  # DESIGN.md: one CycleGAN training step with identity loss at 256², batch 1

# --method: what the header says, the default image side
METHODS = {
    "cyclegan": ("CycleGAN reference (CycleGANConfig defaults: ResNet-9 generators ngf 64, 70x70 PatchGAN ndf 64, "
                 "identity loss on)", 256),
    "funit": ("FUNIT, the paper's animal-faces config (FunitConfig defaults: nf 64, 10-block multi-task D over 119 "
              "classes, R1 penalty; batch n = n content + n class images)", 128),
    "deepsim": ("DeepSIM, the paper's networks (DeepSIMConfig defaults: global generator ngf 64, 4 downsamplings, 9 "
                "blocks; 2-scale D; LSGAN + feature matching + perceptual loss; TPS warp and Canny redraw in the "
                "step) on an image and its edges", 256),
}

# Dense peaks in TFLOP/s by substring of the CUDA device name (first match wins), from the
# vendors' data sheets: bf16/fp16 on tensor cores, TF32 on tensor cores, fp32 without them.
CUDA_PEAKS: list[tuple[str, dict[str, float]]] = [
    ("H100 PCIe", {"bf16": 756.0, "tf32": 378.0, "fp32": 51.0}),
    ("H100", {"bf16": 989.0, "tf32": 495.0, "fp32": 67.0}),  # SXM
    ("H200", {"bf16": 989.0, "tf32": 495.0, "fp32": 67.0}),  # same compute as H100 SXM
    ("A100", {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--method", default="cyclegan", choices=list(METHODS), help="whose reference training step")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--size", type=int, default=None, help="image side in pixels; default the method's (cyclegan and "
                   "deepsim 256, funit 128)")
    p.add_argument("--batch-sizes", default=None,
                   help='comma-separated; default "1,4" on CPU, "1,4,16" on CUDA (deepsim: 1, its one image)')
    p.add_argument("--precision", default="fp32", choices=list(PRECISIONS))
    p.add_argument("--steps", type=int, default=None, help="timed steps; default 3 on CPU, 20 on CUDA")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first; default 1 on CPU, 5 on CUDA")
    p.add_argument("--channels-last", action="store_true", help="networks and inputs in channels_last")
    p.add_argument("--fused", action="store_true", help="fused Adam (as the loop's train.fused_optimizer)")
    p.add_argument("--compile", action="store_true", help="torch.compile every network in place (as train.compile)")
    p.add_argument("--winograd", action="store_true",
                   help="CPU: Winograd 3x3 convolutions where they win (as train.winograd, which training turns on by "
                        "default only on CPUs without native bf16 dot products: no AMX or AVX512-BF16)")
    p.add_argument("--compile-mode", default="default", choices=list(speed.COMPILE_MODES),
                   help="torch.compile mode (as train.compile_mode); reduce-overhead records CUDA graphs")
    p.add_argument("--compare", nargs="+", metavar="SETTING", default=None,
                   help="settings to time interleaved, each a comma list of channels_last, fused, compile, winograd, "
                        "fp32, bf16, fp16, threads=N, or plain; the first is the baseline (batch: the first of --batch-sizes)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU); default: torch's")
    p.add_argument("--cpu-peak-gflops", type=float, default=None, help="CPU peak to report %% of peak against")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="FILE", help="also write the environment and rows here (with --compare: one row per setting)")
    args = p.parse_args(argv)
    cpu = device_or_error(p, args.device).type == "cpu"
    args.size = args.size if args.size is not None else METHODS[args.method][1]
    default_batches = "1" if args.method == "deepsim" else ("1,4" if cpu else "1,4,16")
    args.batch_sizes = positive_ints(p, "--batch-sizes", args.batch_sizes or default_batches)
    args.steps = args.steps if args.steps is not None else (3 if cpu else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if cpu else 5)
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be >= 1, --warmup >= 0")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads {args.threads}: must be at least 1")
    with torch.device("meta"):  # the networks' shapes only, no weights: instant even for DeepSIM's 182 M
        problem = size_problem(new_method(args.method).nets, args.size)
    if problem:
        p.error(f"--size {args.size}: {problem}")
    for spec in args.compare or []:
        try:
            setting_args(args, spec)
        except ValueError as err:
            p.error(str(err))
    return args


def conv_uses_tf32() -> bool:
    """Whether fp32 convolutions may run on TF32 tensor cores (cuDNN allows it by default)."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        return conv.fp32_precision == "tf32"
    return bool(torch.backends.cudnn.allow_tf32)


def peak_tflops(device: torch.device, precision: str, cpu_peak_gflops: float | None) -> tuple[float | None, str]:
    """The peak to compare with, in TFLOP/s, and what it is (``None`` when unknown)."""
    if device.type == "cpu":
        if cpu_peak_gflops is None:
            return None, "n/a (give --cpu-peak-gflops)"
        return cpu_peak_gflops / 1000, f"{cpu_peak_gflops:g} GFLOP/s (--cpu-peak-gflops)"
    name = torch.cuda.get_device_name(device)
    kind = "bf16" if precision in ("bf16", "fp16") else ("tf32" if conv_uses_tf32() else "fp32")
    for key, peaks in CUDA_PEAKS:
        if key in name:
            return peaks[kind], f"{peaks[kind]:g} TFLOP/s dense {kind} ({key})"
    return None, f"n/a (no {kind} peak known for {name})"


def environment(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "pixmorph": pixmorph.__version__,
                           "torch": torch.__version__, "python": platform.python_version(), "device": device.type}
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    else:
        env["device_name"] = cpu_model()
        env["cores"] = os.cpu_count()
        env["load_avg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    env.update(method=args.method, threads=torch.get_num_threads(), precision=args.precision, channels_last=args.channels_last,
               fused=args.fused, compile=args.compile and args.compile_mode, winograd=args.winograd,
               omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "unset"),
               gomp_spincount=os.environ.get("GOMP_SPINCOUNT", "unset"),
               size=args.size, steps=args.steps, warmup=args.warmup,
               peak=peak_tflops(device, args.precision, args.cpu_peak_gflops)[1])
    return env


def print_header(env: dict[str, Any]) -> None:
    print(f"pixmorph {env['pixmorph']}, torch {env['torch']}, python {env['python']}, {env['date']}")
    if env["device"] == "cuda":
        print(f"device: cuda, {env['device_name']} (CUDA {env['cuda']})")
    else:
        load = "/".join(f"{x:.2f}" for x in env["load_avg_1_5_15"])
        print(f"device: cpu, {env['device_name']}, {env['cores']} cores, load avg {load} (1/5/15 min) at start")
        if env["load_avg_1_5_15"][0] > 0.5:
            print("warning: the CPU was busy just before this run (1-min load > 0.5); if other processes keep "
                  "using it, these timings are slower than on an idle machine")
    print(f"threads {env['threads']}, precision {env['precision']}, channels_last {env['channels_last']}, "
          f"fused {env['fused']}, compile {env['compile']}, winograd {env['winograd']}, "
          f"OMP_WAIT_POLICY {env['omp_wait_policy']}, GOMP_SPINCOUNT {env['gomp_spincount']}, "
          f"size {env['size']}x{env['size']}, {env['warmup']} warmup + {env['steps']} timed steps")
    print(f"model: {METHODS[env['method']][0]}")
    print(f"peak: {env['peak']}")
    if env["winograd"]:
        print("FLOP/s below are the direct convolutions' FLOPs over the time (an effective rate): Winograd "
              "does the same convolutions with fewer multiplications")


def new_method(name: str) -> Method:
    """The method ``name`` at its reference config."""
    if name == "funit":
        return Funit(FunitConfig())
    if name == "deepsim":
        return DeepSIM(DeepSIMConfig())
    return CycleGAN(CycleGANConfig())


def build(name: str, n: int, size: int, device: torch.device) -> tuple[Method, dict[str, torch.Tensor]]:
    """The method at its reference config and a random batch of ``n`` in its data's format."""
    method = new_method(name)
    images = lambda: torch.rand(n, 3, size, size, device=device) * 2 - 1  # noqa: E731
    if name == "funit":
        labels = lambda: torch.randint(0, method.cfg.num_classes, (n,), device=device)  # noqa: E731
        return method, {"content": images(), "content_label": labels(), "class": images(), "class_label": labels()}
    if name == "deepsim":
        photo = images()
        return method, {"A": canny_edges(photo), "B": photo, "auto_edges": torch.ones(n, 1, device=device)}
    return method, {"A": images(), "B": images()}


def make_step(n: int, args: argparse.Namespace, device: torch.device) -> tuple[Method, Any]:
    """A fresh reference method on ``device`` and a callable running one training step on a random batch."""
    torch.manual_seed(args.seed)
    method, batch = build(args.method, n, args.size, device)
    method.nets.to(device).train()
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    # The loop's own switches (pixmorph.train.speed), applied as train() applies them.
    options = TrainConfig(channels_last=args.channels_last, compile=args.compile, compile_mode=args.compile_mode,
                          fused_optimizer=args.fused, winograd=args.winograd)
    chosen = speed.resolve(options, device)
    speed.apply_to_nets(method.nets, chosen, method.step_modules())  # (FUNIT: the parts its step calls)
    speed.apply_to_optimizers(method.optimizers, chosen)
    batch = {k: v.contiguous(memory_format=fmt) if v.dim() == 4 else v for k, v in batch.items()}
    # As in pixmorph.train.loop.train: a GradScaler per optimizer, enabled only for fp16, and autocast.
    scalers = {name: torch.amp.GradScaler(device.type, enabled=args.precision == "fp16") for name in method.optimizers}
    update = _make_update(method, scalers)
    autocast_dtype = PRECISIONS[args.precision]

    def step() -> None:
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            method.train_step(batch, update)

    return method, step


class _NoModuleTracker:
    """Stands in for FlopCounterMode's per-module tracker, whose backward hooks fail inside
    ``autograd.grad(create_graph=True)`` (FUNIT's R1 penalty); every count goes to the total."""

    parents = {"Global"}

    def __enter__(self) -> "_NoModuleTracker":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def count_flops(step: Any) -> int:
    """FLOPs of one training step as torch's FlopCounterMode counts them (conv/matmul, forward + backward)."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _NoModuleTracker()  # type: ignore[assignment]
    with counter:
        step()
    return counter.get_total_flops()


def step_flops(n: int, args: argparse.Namespace, device: torch.device, step: Any) -> int:
    """FLOPs of ``step``, counted on a plain copy when it is compiled (the counter sees eager operators)
    or uses Winograd convolutions (the rate reported is then the direct convolutions' FLOPs per second, an
    effective rate comparable across settings); runs ``step`` once either way, as its first warm-up."""
    if not (args.compile or args.winograd):
        return count_flops(step)
    eager = argparse.Namespace(**{**vars(args), "compile": False, "winograd": False})
    method, eager_step = make_step(n, eager, device)
    flops = count_flops(eager_step)
    del method, eager_step
    step()
    return flops


def time_steps(step: Any, steps: int, device: torch.device) -> tuple[float, float]:
    """(mean, min) seconds per step over ``steps`` steps; the mean is wall time between synchronisations."""
    cuda = device.type == "cuda"
    marks = [torch.cuda.Event(enable_timing=True) for _ in range(steps + 1)] if cuda else []
    per_step: list[float] = []
    if cuda:
        torch.cuda.synchronize(device)
        marks[0].record()
    t0 = time.perf_counter()
    for i in range(steps):
        t = time.perf_counter()
        step()
        if cuda:
            marks[i + 1].record()
        else:
            per_step.append(time.perf_counter() - t)
    if cuda:
        torch.cuda.synchronize(device)
    total = time.perf_counter() - t0
    if cuda:
        per_step = [marks[i].elapsed_time(marks[i + 1]) / 1000 for i in range(steps)]
    return total / steps, min(per_step)


def peak_memory_gib(device: torch.device) -> float:
    """CUDA: peak allocated by torch since the last reset. CPU: peak RSS of this whole process so far."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def measure(n: int, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """One row: build, count the FLOPs of one step, warm up, time; then free everything."""
    method, step = make_step(n, args, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        flops = step_flops(n, args, device, step)  # untimed; it also serves as the first warm-up step
        for _ in range(args.warmup):
            step()
        mean_s, min_s = time_steps(step, args.steps, device)
        mem = peak_memory_gib(device)
    except torch.OutOfMemoryError:
        return {"batch": n, "error": "out of memory"}
    finally:
        del method, step
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    peak, _ = peak_tflops(device, args.precision, args.cpu_peak_gflops)
    achieved = flops / mean_s / 1e12
    return {"batch": n, "sec_per_step": mean_s, "min_sec_per_step": min_s, "images_per_s": n / mean_s,
            "flops_per_step": flops, "achieved_tflops": achieved,
            "pct_of_peak": None if peak is None else 100 * achieved / peak,
            "peak_mem_gib": mem, "peak_mem_kind": "cuda max_memory_allocated" if device.type == "cuda"
            else "process peak RSS (ru_maxrss, cumulative over rows)"}


COLUMNS = "{:>5}  {:>9}  {:>10}  {:>8}  {:>11}  {:>10}  {:>9}  {:>7}  {:>9}"


def print_table_header(device: torch.device) -> None:
    rate = "TFLOP/s" if device.type == "cuda" else "GFLOP/s"
    mem = "peak GiB" if device.type == "cuda" else "RSS GiB"
    head = COLUMNS.format("batch", "s/step", "min s/step", "img/s", "TFLOP/step", "GFLOP/img", rate, "% peak", mem)
    print(head)
    print("-" * len(head))


def print_row(row: dict[str, Any], device: torch.device) -> None:
    if "error" in row:
        print(f"{row['batch']:>5}  {row['error']}")
        return
    scale = 1.0 if device.type == "cuda" else 1000.0  # TFLOP/s on CUDA, GFLOP/s on CPU
    pct = "n/a" if row["pct_of_peak"] is None else f"{row['pct_of_peak']:.1f}"
    print(COLUMNS.format(row["batch"], f"{row['sec_per_step']:.4f}", f"{row['min_sec_per_step']:.4f}",
                         f"{row['images_per_s']:.2f}", f"{row['flops_per_step'] / 1e12:.3f}",
                         f"{row['flops_per_step'] / row['batch'] / 1e9:.1f}",
                         f"{row['achieved_tflops'] * scale:.1f}", pct, f"{row['peak_mem_gib']:.2f}"), flush=True)


def print_flop_check(rows: list[dict[str, Any]], size: int) -> None:
    """Compare the counted FLOPs per image with DESIGN.md's ≈1.9 TFLOP (256², batch 1), scaled by area."""
    done = [r for r in rows if "error" not in r]
    if not done:
        return
    per_image = done[0]["flops_per_step"] / done[0]["batch"] / 1e12
    expected = DESIGN_TFLOP_256_B1 * (size / 256) ** 2
    print(f"\nmeasured FLOPs per training step: {per_image:.3f} TFLOP per image at {size}x{size} "
          f"(batch {done[0]['batch']}); DESIGN.md: ~{DESIGN_TFLOP_256_B1} TFLOP at 256x256 batch 1"
          + (f", i.e. ~{expected:.4f} TFLOP scaled to {size}x{size}" if size != 256 else ""))
    print("(FlopCounterMode counts convolutions and matmuls, forward and backward; norms, activations, "
          "losses and the Adam update are not counted)")


def setting_args(args: argparse.Namespace, spec: str) -> argparse.Namespace:
    """``args`` with the switches of one --compare setting (``channels_last,fused``, ``bf16,threads=1``,
    ``plain``); the precision is --precision's unless the setting names one."""
    out = argparse.Namespace(**{**vars(args), "channels_last": False, "fused": False, "compile": False,
                                "winograd": False})
    for item in filter(None, spec.split(",")):
        name, _, value = item.partition("=")
        if name == "threads":
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"--compare {spec!r}: threads takes a whole number of at least 1, e.g. threads=1")
            out.threads = int(value)
        elif name in ("channels_last", "fused", "compile", "winograd") and not value:
            setattr(out, name, True)
        elif name in PRECISIONS and not value:
            out.precision = name
        elif item != "plain":
            raise ValueError(f"--compare {spec!r}: unknown switch {item!r} "
                             "(channels_last, fused, compile, winograd, fp32, bf16, fp16, threads=N, plain)")
    return out


def sgemm_gflops(threads: int) -> float:
    """GFLOP/s of a 2048^2 fp32 matrix multiply now: the CPU's practical peak under the current load."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.mm(a, b)
    t = time.perf_counter()
    for _ in range(3):
        torch.mm(a, b)
    dt = (time.perf_counter() - t) / 3
    torch.set_num_threads(previous)
    return 2 * 2048**3 / dt / 1e9


def compare(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """Time the --compare settings interleaved, print paired ratios to the first and return one row per setting."""
    n, default_threads = args.batch_sizes[0], torch.get_num_threads()
    settings = {spec: setting_args(args, spec) for spec in args.compare}
    steps, flops = {}, {}
    for spec, a in settings.items():
        torch.set_num_threads(a.threads or default_threads)
        steps[spec] = make_step(n, a, device)[1]
        flops[spec] = step_flops(n, a, device, steps[spec])  # also the first warm-up (and the compilation)
        for _ in range(args.warmup):
            steps[spec]()
    times: dict[str, list[float]] = {spec: [] for spec in settings}
    sgemm: list[float] = []
    for r in range(args.steps):
        order = list(settings) if r % 2 == 0 else list(settings)[::-1]
        for spec in order:
            torch.set_num_threads(settings[spec].threads or default_threads)
            times[spec].append(time_steps(steps[spec], 1, device)[0])
        sgemm.append(sgemm_gflops(default_threads))
        print(f"round {r + 1}: " + ", ".join(f"{s} {times[s][-1]:.2f} s" for s in settings)
              + f", sgemm {sgemm[-1]:.0f} GFLOP/s, load {os.getloadavg()[0]:.2f}", flush=True)
    base = args.compare[0]
    print(f"\nbatch {n}, {args.size}x{args.size}, {args.steps} interleaved rounds; ratio = time / time of {base!r}, "
          "paired by round (< 1 is faster)")
    print(f"{'setting':28s} {'mean s':>8} {'min s':>8} {'ratio':>7} {'GFLOP/s':>8} {'of sgemm':>9}")
    rows = []
    for spec in settings:
        ratio = statistics.mean(t / b for t, b in zip(times[spec], times[base]))
        gflops = flops[spec] / statistics.mean(times[spec]) / 1e9
        rows.append({"setting": spec, "batch": n, "sec_per_step": statistics.mean(times[spec]),
                     "min_sec_per_step": min(times[spec]), "ratio_to_first": ratio, "flops_per_step": flops[spec],
                     "gflops": gflops, "pct_of_sgemm": 100 * gflops / statistics.mean(sgemm),
                     "rounds_sec": times[spec], "sgemm_gflops": sgemm})
        print(f"{spec:28s} {rows[-1]['sec_per_step']:8.2f} {rows[-1]['min_sec_per_step']:8.2f} {ratio:7.3f} "
              f"{gflops:8.1f} {rows[-1]['pct_of_sgemm']:8.0f}%")
    print(f"sgemm (2048^2 fp32, {default_threads} threads) in the same rounds: mean {statistics.mean(sgemm):.0f} GFLOP/s")
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    env = environment(args, device)
    print_header(env)
    if args.compare:
        rows = compare(args, device)
        print("load avg at end: " + "/".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min)")
        write_json(args.json, env, rows)
        if args.json:
            print(f"wrote {args.json}")
        return
    print()
    print_table_header(device)
    rows = []
    for n in args.batch_sizes:
        rows.append(measure(n, args, device))
        print_row(rows[-1], device)
        write_json(args.json, env, rows)  # after each row: a run stopped by a time limit keeps the rows it has
    if args.method == "cyclegan":  # DESIGN.md's figure is CycleGAN's
        print_flop_check(rows, args.size)
    if device.type == "cpu":
        env["load_avg_1_5_15_at_end"] = [round(x, 2) for x in os.getloadavg()]
        print("load avg at end: " + "/".join(f"{x:.2f}" for x in env["load_avg_1_5_15_at_end"]) + " (1/5/15 min)")
    write_json(args.json, env, rows)
    if args.json:
        print(f"wrote {args.json}")


def write_json(path: str | None, env: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    if path:
        with open(path, "w") as f:
            json.dump({"environment": env, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
