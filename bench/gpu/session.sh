#!/usr/bin/env bash
# The GPU figures of the open speed (6) and DeepSIM (10) issues in one device call, most valuable first,
# each stage capped so that the whole fits the time given (default 570 s; a lease has 15 minutes with
# the machine's start). Prepare here, then run there:
#
#   bash bench/gpu/prepare.sh
#   device run: command "bash bench/gpu/session.sh", carry [".gpu"], timeout_s 600
#
# Writes $OUT/session.log (everything), train_*.json and the DeepSIM grids; on a machine without $OUT,
# runs/gpu_session/. BUDGET=SECONDS and DEEPSIM_STEPS=N override; ONLY="stage stage" runs only those
# (a rerun on the warm machine); DEVICE=cpu with a small BUDGET tries the script itself here.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/gpu_session}
mkdir -p "$OUT"
LOG=$OUT/session.log
DEVICE=${DEVICE:-cuda}
START=$SECONDS
BUDGET=${BUDGET:-570}

export PYTHONUNBUFFERED=1 PIXMORPH_OFFLINE=1
export PIXMORPH_STLPIPS_VGG_WEIGHTS=$PWD/.gpu/weights/stlpips_vgg16_fp16.pth
export PIXMORPH_STLPIPS_WEIGHTS=$PWD/.gpu/weights/stlpips_alex.pth
[ -d .gpu/fashion-mnist ] && export PIXMORPH_FASHION_MNIST_DIR=$PWD/.gpu/fashion-mnist
if ! python3 -c "import kornia" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl >>"$LOG" 2>&1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}

left() { echo $((BUDGET - (SECONDS - START))); }

# stage NAME CAP COMMAND...: run COMMAND for at most min(CAP, time left) seconds, logged.
stage() {
  local name=$1 cap=$2 t0=$SECONDS rc
  shift 2
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
  local limit; limit=$(left)
  [ "$cap" -lt "$limit" ] && limit=$cap
  if [ "$limit" -lt 20 ]; then
    echo "=== $name: skipped ($(left) s left)" | tee -a "$LOG"
    return 0
  fi
  echo "=== $name (cap ${limit} s): $*" | tee -a "$LOG"
  timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  echo "=== $name: rc $rc in $((SECONDS - t0)) s, $(left) s left" | tee -a "$LOG"
}

{ nvidia-smi -L 2>/dev/null; python3 -c "import torch, torchvision, kornia; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'kornia', kornia.__version__)"; } >>"$LOG" 2>&1
SPEED=(--device "$DEVICE" --precision bf16 --channels-last --fused --compile)

stage checks 60 python3 bench/gpu/checks.py --device "$DEVICE" --no-compile  # train_speed compiles
# Issue 6: CycleGAN 256x256 training (>= 150 img/s asked) and translation (>= 5,000 img/s at batch 64)
stage train_cyclegan 180 python3 bench/train_speed.py "${SPEED[@]}" --json "$OUT/train_cyclegan.json"
stage translate_cyclegan 60 python3 bench/translate_speed.py --device "$DEVICE"
# Issue 10: DeepSIM's paper networks at 480x480 (the reference: 0.40 s a step with TPS on an H100)
stage train_deepsim 90 python3 bench/train_speed.py --method deepsim --size 480 "${SPEED[@]}" \
  --json "$OUT/train_deepsim.json"

# DeepSIM on the shared car and face with as many steps as the time left allows (the paper: 8k-16k),
# uncompiled (at this budget compiling twice costs more than it saves): a 640x320 car step costs about
# 0.9 of a 480x480 one, a 256x256 face step 0.3, and eager about 1.3x compiled.
SHARED_CAP=$(($(left) - 90))
STEPS=${DEEPSIM_STEPS:-$(python3 - "$OUT/train_deepsim.json" "$SHARED_CAP" <<'EOF'
import json, sys
try:
    s = json.load(open(sys.argv[1]))["rows"][0]["sec_per_step"]
except Exception:
    s = 0.1
budget = int(sys.argv[2]) - 60  # start-up, editing, grids
print(max(200, min(16000, int(budget / (1.2 * 1.3 * s) / 100) * 100)))
EOF
)}
stage deepsim_shared "$SHARED_CAP" python3 bench/deepsim_ablation.py shared --paper --device "$DEVICE" \
  --precision bf16 --steps "$STEPS" --train compile=false --car-side 640 --face-side 256 \
  --shared .gpu/shared/deepsim --work /tmp/deepsim_shared --grid-dir "$OUT" --json "$OUT/deepsim_shared.json"

stage train_funit 60 python3 bench/train_speed.py --method funit --batch-sizes 8,64 "${SPEED[@]}" \
  --json "$OUT/train_funit.json"
stage train_cyclegan_graphs 60 python3 bench/train_speed.py "${SPEED[@]}" --batch-sizes 4,16 \
  --compile-mode reduce-overhead
[ -d .gpu/fashion-mnist ] && stage fast_quality 200 python3 bench/fast_quality.py --device "$DEVICE" --compile
echo "=== done in $((SECONDS - START)) s" | tee -a "$LOG"
