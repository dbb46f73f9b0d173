"""Correctness checks that only a GPU can answer, run first in a device lease (bench/gpu/session.sh):
pixmorph's instance norm and torch's ``F.instance_norm`` in channels_last against a contiguous float64
reference (torch 2.14's CPU ``F.instance_norm`` has a wrong channels_last gradient at batch 1: is CUDA's
right?), the ResNet generator's gradients in channels_last against contiguous, and torch.compile's
forward against eager. Prints one line per check with its error and PASS/FAIL; exits 1 on a FAIL.

    python bench/gpu/checks.py            # cuda when there is one, else cpu
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

from pixmorph.nn.norm import instance_norm
from pixmorph.nn.resnet_generator import ResnetGenerator

CL = torch.channels_last
failures: list[str] = []


def report(name: str, err: float, tol: float, ours: bool = True) -> None:
    """A check of torch's own function (ours=False) reports, but does not fail the run."""
    ok = err <= tol
    if not ok and ours:
        failures.append(name)
    print(f"{'PASS' if ok else 'FAIL' if ours else 'WRONG (torch)'}  {name}: relative error {err:.2e} (tolerance {tol:.0e})", flush=True)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def norm_gradients(device: torch.device) -> None:
    for fn_name, fn in (("pixmorph instance_norm", instance_norm), ("torch's F.instance_norm", F.instance_norm)):
        for n in (1, 3):
            g = torch.Generator().manual_seed(n)
            x0 = torch.randn(n, 16, 12, 10, generator=g, dtype=torch.float64)
            w0, b0 = torch.rand(16, generator=g, dtype=torch.float64) + 0.5, torch.randn(16, generator=g, dtype=torch.float64)
            up = torch.randn(n, 16, 12, 10, generator=g, dtype=torch.float64)
            ref = [t.clone().requires_grad_() for t in (x0, w0, b0)]
            F.instance_norm(ref[0], weight=ref[1], bias=ref[2]).backward(up)
            x = x0.float().to(device).contiguous(memory_format=CL).requires_grad_()
            w, b = w0.float().to(device).requires_grad_(), b0.float().to(device).requires_grad_()
            y = fn(x, weight=w, bias=b)
            y.backward(up.float().to(device).contiguous(memory_format=CL))
            err = max(rel(y.detach().cpu(), F.instance_norm(x0, weight=w0, bias=b0)),
                      *(rel(t.grad.cpu(), r.grad) for t, r in zip((x, w, b), ref)))
            report(f"{fn_name}, channels_last, batch {n}, value and gradients vs float64", err, 1e-4,
                   ours=fn is instance_norm)


def generator_gradients(device: torch.device) -> None:
    for n in (1, 2):
        torch.manual_seed(0)
        net = ResnetGenerator(3, 3, ngf=16, n_blocks=2).to(device)
        x = torch.randn(n, 3, 64, 64, device=device)
        grads = []
        for fmt in (torch.contiguous_format, CL):
            net.zero_grad()
            net.to(memory_format=fmt)(x.contiguous(memory_format=fmt)).square().mean().backward()
            grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
        report(f"ResNet generator (batch {n}, fp32): parameter gradients channels_last vs contiguous",
               rel(grads[1], grads[0]), 1e-4)


def compiled_forward(device: torch.device) -> None:
    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, ngf=16, n_blocks=2).to(device).to(memory_format=CL)
    x = torch.randn(2, 3, 64, 64, device=device).contiguous(memory_format=CL)
    with torch.no_grad():
        eager = net(x)
        compiled = torch.compile(net)(x)
    report("ResNet generator: torch.compile forward vs eager (fp32)", rel(compiled, eager), 1e-4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-compile", action="store_true")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False  # compare in full fp32
    torch.backends.cudnn.allow_tf32 = False
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}")
    norm_gradients(device)
    generator_gradients(device)
    if not args.no_compile:
        compiled_forward(device)
    if failures:
        print(f"{len(failures)} check(s) failed: {'; '.join(failures)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
