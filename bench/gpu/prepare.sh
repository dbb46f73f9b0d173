#!/usr/bin/env bash
# Fill the git-ignored folder .gpu/ with what bench/gpu/session.sh needs on a lent GPU machine that
# cannot reach the internet and has PyTorch but not all of pixmorph's dependencies (see the device
# tool's KINDS.md): wheels for Python 3.12, the offline perceptual and LPIPS weights, the example data
# of ../shared/data/deepsim, and with --fashion the built-in Fashion-MNIST (a separate call: all of it
# together is over the 64 MiB a call may carry).
#
#   bash bench/gpu/prepare.sh            # ~45 MiB: the speed figures and DeepSIM's shared examples
#   bash bench/gpu/prepare.sh --fashion  # adds Fashion-MNIST (~30 MiB) for bench/fast_quality.py
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=.gpu
SHARED=${SHARED:-../shared/data}
rm -rf "$DEST" && mkdir -p "$DEST/whl" "$DEST/weights" "$DEST/shared"

# pixmorph's dependencies that the GPU image lacks, as wheels for its Python (3.12, x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$DEST/whl" kornia kornia_rs torch-fidelity

# The offline networks: the perceptual loss's VGG16 trunk stored in float16 (29 MiB instead of 59;
# training under bf16 autocast rounds the weights further anyway) and LPIPS' AlexNet kept in float32.
python3 - "$DEST/weights" <<'EOF'
import shutil
import sys
from pathlib import Path

import torch

from pixmorph.metrics import weights as W
from pixmorph.nn.perceptual import STLPIPS_VGG

dest = Path(sys.argv[1])
vgg = torch.load(W.find_weights(STLPIPS_VGG, download=False), map_location="cpu", weights_only=True)
torch.save({k: v.half() if v.is_floating_point() else v for k, v in vgg.items() if k.startswith("net.")},
           dest / "stlpips_vgg16_fp16.pth")
shutil.copy(W.find_weights(W.STLPIPS_ALEX, download=False), dest / "stlpips_alex.pth")
EOF

cp -r "$SHARED/deepsim" "$DEST/shared/"
if [ "${1:-}" = --fashion ]; then
  mkdir -p "$DEST/fashion-mnist" && cp /usr/share/datasets/fashion-mnist/*.gz "$DEST/fashion-mnist/"
fi
du -sh "$DEST"/* && du -sh "$DEST"
