"""How OpenMP's wait policy changes the demo's training speed: each setting in its own process, with as
many threads as cores; the last row is pixmorph's default, which trains with the cores other processes
leave free (pixmorph/train/cpu_share.py).

    python bench/omp_waits.py --steps 60            # on an idle machine
    python bench/omp_waits.py --steps 20 --busy 2   # beside two busy processes (started and stopped here)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ALL_CORES = str(os.cpu_count())
SETTINGS = {  # name: (environment, train.threads)
    "default (long spin)": ({"GOMP_SPINCOUNT": "300000"}, ALL_CORES),  # libgomp's own default spin
    "OMP_WAIT_POLICY=PASSIVE": ({"OMP_WAIT_POLICY": "PASSIVE"}, ALL_CORES),
    "GOMP_SPINCOUNT=20000": ({"GOMP_SPINCOUNT": "20000"}, ALL_CORES),
    "GOMP_SPINCOUNT=100000": ({"GOMP_SPINCOUNT": "100000"}, ALL_CORES),
    "pixmorph (20000, free-core threads)": ({"GOMP_SPINCOUNT": "20000"}, "auto"),
}

CHILD = """
import sys, time
from pathlib import Path
import pixmorph
from pixmorph.demo import demo_config
from pixmorph.train.loop import train
steps = int(sys.argv[2])
cfg = demo_config(Path(sys.argv[1]), 60, "cpu")
cfg.train.max_steps, cfg.train.overwrite = steps, True
cfg.train.threads = None if sys.argv[3] == "auto" else int(sys.argv[3])
start = time.perf_counter()
train(cfg, progress=False)
print(steps / (time.perf_counter() - start))
"""


def steps_per_second(env: dict[str, str], threads: str, steps: int, out: str) -> float:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    result = subprocess.run([sys.executable, "-c", CHILD, out, str(steps), threads], env={**clean, **env},
                            capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=60, help="training steps per setting (the time counts start-up)")
    p.add_argument("--busy", type=int, default=0, help="busy-looping processes to run beside the training")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error(f"--steps {args.steps}: must be at least 1")
    if args.busy < 0:
        p.error(f"--busy {args.busy}: must be 0 or more")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        time.sleep(1 if hogs else 0)
        print(f"demo training step (32x32, batch 8), {args.steps} steps, {args.busy} busy processes beside it, "
              f"{os.cpu_count()} cores, load avg {os.getloadavg()[0]:.2f} at start")
        with tempfile.TemporaryDirectory() as tmp:
            for name, (env, threads) in SETTINGS.items():
                print(f"{name:36s} {steps_per_second(env, threads, args.steps, tmp):.2f} steps/s", flush=True)
    finally:
        for h in hogs:
            h.kill()


if __name__ == "__main__":
    main()
