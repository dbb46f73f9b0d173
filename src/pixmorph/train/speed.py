"""Speed switches of the training loop (``TrainConfig``): memory layout, compilation, fused optimizers,
cuDNN autotuning, TF32, CPU threads and Winograd convolutions on the CPU. Each is method-agnostic: it acts on ``method.nets`` and
``method.optimizers`` as the method built them, and falls back to the plain path where the device or
the torch build lacks the feature. ``None`` in a switch means "on where it is measured to win"."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pixmorph.config import TrainConfig
from pixmorph.nn.winograd import use_winograd

FUSABLE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)  # optimizers with a fused kernel
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class Speed:
    """The switches as resolved for one device."""

    channels_last: bool
    compile: bool
    compile_mode: str
    fused_optimizer: bool
    cudnn_benchmark: bool
    tf32: bool
    pin_memory: bool
    winograd: bool = False

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format


def resolve(t: TrainConfig, device: torch.device, precision: str = "fp32") -> Speed:
    """The switches for ``device`` training at ``precision`` (already resolved: fp32, bf16 or fp16)."""
    cuda = device.type == "cuda"
    if t.compile_mode not in COMPILE_MODES:
        raise ValueError(f"train.compile_mode={t.compile_mode!r}: use one of {', '.join(COMPILE_MODES)}")
    # On the CPU torch.compile measured slower for the reference CycleGAN step (README, Speed), and so did
    # channels_last in float32 (where our Winograd convolutions need the contiguous layout); oneDNN's bf16
    # convolutions work in channels_last and copy a contiguous tensor there and back, so bf16 gets it.
    return Speed(
        channels_last=(cuda or precision == "bf16") if t.channels_last is None else t.channels_last,
        compile=(cuda if t.compile is None else t.compile) and _can_compile(device),
        compile_mode=t.compile_mode,
        fused_optimizer=t.fused_optimizer,
        cudnn_benchmark=cuda and t.cudnn_benchmark,
        tf32=cuda and t.tf32,
        pin_memory=cuda and t.pin_memory,
        # cuDNN picks its own Winograd kernels. On the CPU ours won for 128-512-channel layers on an AVX-512 Xeon
        # without native bf16 (whole step 0.70-0.77x); on an AMD EPYC with AVX512-BF16 oneDNN's direct fp32
        # convolutions were faster (Winograd 1.15x the time), and such CPUs train in bf16 by default anyway.
        winograd=not cuda and (not bf16_is_fast(device) if t.winograd is None else t.winograd),
    )


def apply_to_backend(speed: Speed, t: TrainConfig, device: torch.device) -> None:
    """Process-wide settings: threads (CPU), cuDNN autotuning and TF32 (CUDA; off means full fp32)."""
    if t.threads:
        torch.set_num_threads(t.threads)
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = speed.cudnn_benchmark
    torch.set_float32_matmul_precision("high" if speed.tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = speed.tf32


def apply_to_nets(nets: nn.ModuleDict, speed: Speed, compiled: list[nn.Module] | None = None) -> None:
    """Layout, convolution algorithm and compilation in place, so parameter names (and checkpoints) stay
    as they are. ``compiled``: the modules to compile (the method's ``step_modules``; None: every network)."""
    if speed.winograd:
        for net in nets.values():
            use_winograd(net)
    if speed.channels_last:
        nets.to(memory_format=torch.channels_last)
    if speed.compile:
        # "reduce-overhead" records CUDA graphs: the batch shape must stay the same (drop_last batches do)
        for net in nets.values() if compiled is None else compiled:
            net.compile(mode=None if speed.compile_mode == "default" else speed.compile_mode)


def apply_to_optimizers(optimizers: dict[str, torch.optim.Optimizer], speed: Speed) -> None:
    """Switch Adam/AdamW/SGD to their fused kernels where every parameter's device supports them.

    Called after a resume too: a checkpoint's param_groups carry the flag they were saved with."""
    for opt in optimizers.values():
        if not isinstance(opt, FUSABLE):
            continue
        params = [p for g in opt.param_groups for p in g["params"]]
        fused = speed.fused_optimizer and bool(params) and all(_fused_supported(p) for p in params)
        if any(g.get("differentiable") for g in opt.param_groups):
            fused = False
        for group in opt.param_groups:
            group["fused"] = fused
            if fused:
                group["foreach"] = False  # fused and foreach are exclusive
        if isinstance(opt, (torch.optim.Adam, torch.optim.AdamW)):
            _move_steps(opt, fused)
            if fused and all(p.device.type == "cpu" for p in params):
                _give_dense_views(opt)


class _DenseViewsToFusedKernel:
    """Adam/AdamW whose fused kernel gets each channels_last 4-D tensor as its NHWC view, the same memory
    as a contiguous tensor. torch's CPU kernel (2.14) otherwise copies every channels_last parameter,
    gradient and moment to the contiguous layout and back: 1.25 s of DeepSIM's 182 M-parameter generator
    update against 0.58 s through the views (same results: the update is elementwise)."""

    def _init_group(self, group, params, grads, exp_avgs, exp_avg_sqs, *rest):
        out = super()._init_group(group, params, grads, exp_avgs, exp_avg_sqs, *rest)
        if group.get("fused"):
            for i, tensors in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
                if all(_is_channels_last_only(t) for t in tensors):
                    params[i], grads[i], exp_avgs[i], exp_avg_sqs[i] = (t.permute(0, 2, 3, 1) for t in tensors)
        return out


def _is_channels_last_only(t: torch.Tensor) -> bool:
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def _give_dense_views(opt: torch.optim.Optimizer) -> None:
    """Switch ``opt`` (built by the method as a plain Adam/AdamW) to the class above, in place: its state,
    param groups and checkpoints stay as they are."""
    if not isinstance(opt, _DenseViewsToFusedKernel):
        cls = type(opt)
        opt.__class__ = type(cls.__name__, (_DenseViewsToFusedKernel, cls), {"__module__": cls.__module__})


def _fused_supported(p: torch.Tensor) -> bool:
    return p.is_floating_point() and p.device.type in ("cuda", "cpu")


def _move_steps(opt: torch.optim.Optimizer, fused: bool) -> None:
    """Adam keeps its step count as a float32 tensor on the parameter's device when fused, and as a CPU
    scalar otherwise; convert the existing state (after a resume) to the form the kernel expects."""
    for p, state in opt.state.items():
        step = state.get("step")
        if isinstance(step, torch.Tensor):
            state["step"] = step.to(p.device if fused else "cpu", torch.float32)


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast runs faster than float32 here: a CUDA GPU with bf16, or a CPU with native bf16
    dot products, AMX tiles or AVX512-BF16, where oneDNN runs bf16 convolutions on them (the reference
    CycleGAN step 1.6x faster than float32 on a 2-core Xeon with AMX, 2.6x on a 2-core AMD EPYC with
    AVX512-BF16); without either, bf16 convolutions are emulated and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and (cpu_has_amx() or cpu_has_avx512_bf16())


def cpu_has_amx() -> bool:
    """The CPU has AMX tiles and the kernel let this process use them (torch's private probes, guarded)."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() and torch.cpu._init_amx())
    except (AttributeError, RuntimeError):
        return False


def cpu_has_avx512_bf16() -> bool:
    """The CPU has AVX512-BF16 (AMD Zen 4 on, Intel Cooper Lake; torch's private probe, guarded)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _can_compile(device: torch.device) -> bool:
    """torch.compile needs a working backend: Triton on CUDA, a C++ compiler on the CPU."""
    try:
        if device.type == "cuda":
            from torch.utils._triton import has_triton

            return has_triton()
        from torch._inductor import cpp_builder  # noqa: F401
        import shutil

        return any(shutil.which(c) for c in ("g++", "c++", "clang++"))
    except Exception:
        return False
