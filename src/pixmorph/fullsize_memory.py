"""Will a full-size translation fit in the CPU's memory? Checked before ``pixmorph translate`` reads a pixel.

An image within the 256-megapixel read limit can still need far more memory than the machine has once the
generator runs on it at full size (a 9-block ResNet holds ~1 KB of activations per pixel), and the kernel's
OOM killer then ends the process without a word. The estimate here is made before any image is decoded, from
the files' headers, and a file that would not fit is refused in one line naming the way out (``--size N``).

How the estimate is made: the generator runs on fake tensors (shapes only, no memory, no arithmetic: a
fraction of a second) at two probe sizes, and forward hooks record the largest activation a layer returns. Its growth
between the two probes is the bytes per pixel of the largest activation (a two-step model, which resizes to
its model size first, grows by its input and output alone). The peak of a pass is a few such activations
alive at once (a layer's input, its output, a residual block's skip, the allocator's slack); measured as the
growth of peak RSS (``ru_maxrss``) of a float32 no-grad pass on a 1024x1024 image over one on a 64x64 image,
one thread, torch 2.14.1 on a 2-core CPU (the same per pixel at 2048x2048 and with two threads), the
reference generators need: CycleGAN's ResNet (ngf 64, 9 blocks) 908 B/px, 3.5x the largest activation the
probe finds (260 B/px); DeepSIM's global generator 983 B/px, 3.8x (260); FUNIT's (reconstruct, G(x, x))
1845 B/px, 3.6x (517); pix2pix's U-Net 380 B/px, 3.0x (128). PEAK_FACTOR is 4: above all of them. bf16 needs
less than the float32 figure, so the estimate errs on the side of refusing.

Translate reads a file only when its batch comes, so one batch is all that is held; each file is read at full
size (6 bytes a value: Pillow's image, a copy, the float32 tensor) before a ``--size`` resize, so that counts too.

Checked end to end: ``pixmorph translate`` of one 2048x2048 RGB image with a reference CycleGAN run (fp32, CPU)
peaked at 4.39 GiB of RSS (``/usr/bin/time -v``), 0.86 GiB of which the process held before any image (torch,
the model): 3.5 GiB for the translation, which the check estimates at 4.1 GiB.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

PEAK_FACTOR = 4.0
DECODE_BYTES_PER_VALUE = 6  # a full-size read: Pillow's 8-bit image and its copy (1 + 1) and the float32 tensor (4)
CGROUP = Path("/sys/fs/cgroup")  # cgroup v2's files of this process's container
_PROBE_SIDES = (256, 512)  # the fake probe costs nothing at any size; two sizes separate fixed from per-pixel


class TooLargeForMemory(ValueError):
    """An image whose full-size translation needs more memory than is available; the message is one line."""


def available_memory() -> int | None:
    """Bytes this process may still allocate: psutil's figure if installed, else /proc/meminfo's MemAvailable,
    else os.sysconf's free pages; a cgroup's (a container's) limit less what it holds other than inactive page
    cache, when lower. None when nothing says."""
    figure = None
    try:
        import psutil

        figure = int(psutil.virtual_memory().available)
    except Exception:  # not installed, or it cannot read the figure here
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        figure = int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            pass
        if figure is None:
            try:
                figure = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (ValueError, OSError, AttributeError):
                pass
    try:  # cgroup v2: what is left under the container's limit
        limit = (CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            left = int(limit) - int((CGROUP / "memory.current").read_text()) + _reclaimable(CGROUP)
            figure = left if figure is None else min(figure, left)
    except (OSError, ValueError):
        pass
    return figure


def _reclaimable(cgroup: Path) -> int:
    """Bytes of the cgroup's ``memory.current`` that the kernel gives back before an OOM kill: its inactive page
    cache (files read earlier: a dataset, the checkpoint), as ``docker stats`` leaves it out; 0 when not said."""
    try:
        for line in (cgroup / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "inactive_file":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def bytes_per_pixel(generator: nn.Module, channels: int) -> tuple[float, float] | None:
    """(fixed bytes, bytes per input pixel) of the largest activation ``generator`` returns from a layer, in
    float32, from two passes on fake tensors (shapes only); None when the generator cannot run on them."""
    try:
        from torch._subclasses.fake_tensor import FakeTensorMode  # what torch.compile traces with
    except ImportError:
        return None
    stride, least = getattr(generator, "stride", 1), getattr(generator, "min_size", 1)
    # on the generator's device: a CPU probe of a GPU's generator fails (two devices), and nothing would say
    device = next((p.device for p in generator.parameters()), torch.device("cpu"))
    seen, largest = [0], []

    def record(module, inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            seen[0] = max(seen[0], output.numel() * output.element_size())

    hooks = [m.register_forward_hook(record) for m in generator.modules()]
    try:
        for side in _PROBE_SIDES:
            side = max(side, least) + (-max(side, least)) % stride
            seen[0] = 0
            with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
                generator(torch.empty(1, channels, side, side, device=device))
            largest.append((side * side, seen[0]))
    except Exception:  # an operation fake tensors cannot run: no estimate (the translation goes on as before)
        return None
    finally:
        for h in hooks:
            h.remove()
    (p0, b0), (p1, b1) = largest
    per_pixel = max(0.0, (b1 - b0) / (p1 - p0))
    return max(0.0, b0 - per_pixel * p0), per_pixel


def check_fits(files: Sequence[tuple[Path, int, int]], generator: nn.Module, channels: int, batch_size: int,
               size: int | None = None, available: int | None = None) -> None:
    """Refuse (:class:`TooLargeForMemory`, one line) files of ``(file, width, height)`` whose translation (in
    batches of up to ``batch_size`` images of one size) needs more than the available memory, naming the first
    file of the size that needs most. ``size``: images are resized to size x size first. Nothing is refused when
    no figure is known."""
    if not files:
        return
    available = available_memory() if available is None else available
    if available is None:
        return
    from pixmorph.messages import one_line

    # Each file is decoded at full size (8-bit, then float32) and only then resized to ``size``: one at a time.
    big, big_w, big_h = max(files, key=lambda f: f[1] * f[2])
    decode = DECODE_BYTES_PER_VALUE * channels * big_w * big_h
    if decode > available:
        raise TooLargeForMemory(f"{one_line(big)}: {big_w}x{big_h} pixels: reading it needs about {_gib(decode)} of "
                                f"memory (before any --size resize) and {_gib(available)} is available: give a "
                                f"smaller copy of the file (or use a machine with more memory)")
    shapes = Counter((size, size) if size else (w, h) for _, w, h in files)
    per = bytes_per_pixel(generator, channels)
    if per is None:
        return
    fixed, per_pixel = per

    def need(shape: tuple[int, int], count: int) -> float:
        return PEAK_FACTOR * min(batch_size, count) * (fixed + per_pixel * shape[0] * shape[1])

    worst = max(shapes, key=lambda shape: need(shape, shapes[shape]))  # (a file is read when its batch comes)
    needed = need(worst, shapes[worst]) + decode
    if needed <= available:
        return
    file, w, h = next(f for f in files if ((size, size) if size else f[1:]) == worst)
    batch = min(batch_size, shapes[worst])
    at_size = min(batch_size, len(files))  # with --size N, every image shares the batches
    room = available - PEAK_FACTOR * at_size * fixed - decode  # for the pixels of a batch
    side = int((room / (PEAK_FACTOR * at_size * per_pixel)) ** 0.5) if room > 0 else 0
    hint = f"--size {side // 64 * 64 or side}" if side >= 1 else "--size N"
    how = f"at --size {size}" if size else "at full size"
    batched = f" in batches of {batch}" if batch > 1 else ""
    smaller_batch = "or a smaller --batch-size, " if batch > 1 else ""
    raise TooLargeForMemory(f"{one_line(file)}: {w}x{h} pixels: translating it {how}{batched} needs about "
                            f"{_gib(needed)} of memory and {_gib(available)} is available: give {hint} "
                            f"({smaller_batch}or a machine with more memory)")


def batch_that_fits(generator: nn.Module, channels: int, pixels: int, batch_size: int, device: torch.device,
                    available: int | None = None) -> int:
    """The largest batch, up to ``batch_size``, of images of ``pixels`` pixels whose pass through ``generator`` fits
    the memory ``device`` has free (a CPU's: :func:`available_memory`; a GPU's: what CUDA says), by the estimate
    above; at least 1 (one at a time is refused nowhere), and ``batch_size`` when nothing says."""
    if batch_size <= 1:
        return batch_size
    if available is None:
        if device.type == "cuda":
            available = torch.cuda.mem_get_info(device)[0]
        elif device.type == "cpu":
            available = available_memory()
    per = bytes_per_pixel(generator, channels) if available is not None else None
    if per is None:
        return batch_size
    fixed, per_pixel = per
    one = PEAK_FACTOR * (fixed + per_pixel * pixels)
    return max(1, min(batch_size, int(available // one))) if one > 0 else batch_size


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_translate_fits(translator, direction: str, files: Sequence[Path], batch_size: int, size: int | None,
                         half: str | None = None) -> None:
    """:func:`check_fits` for ``pixmorph translate``'s files on a CPU translator (a GPU's running out of memory
    is an error the CLI reports; the CPU's is a kill). ``half``: the files are A|B pairs, half of each is read."""
    if translator.device.type != "cpu" or not files:
        return
    from pixmorph.data.folders import input_size

    sized = [(f, *wh) for f in files if (wh := input_size(f, half))]
    generator = translator.method.translators().get(direction)  # the PyTorch net, also for the ONNX runtime
    channels = translator.input_channels.get(direction) or translator.config.data.channels or 3
    if isinstance(generator, nn.Module):
        check_fits(sized, generator, channels, batch_size, size)
