#!/usr/bin/env bash
# The exact command that trains editkit's bundled 64x64 face generator on UTKFace (CPU run).
#
#   scripts/train_bundled_generator.sh [OUT_DIR] [MINUTES]      (defaults: runs/bundled_generator, 65)
#
# Re-running with the same OUT_DIR resumes exactly from OUT_DIR/training-state.safetensors.
# The shipped provisional model came from this script's settings run with --threads 2 (OMP_WAIT_POLICY=PASSIVE)
# and a 75-minute limit, stopped by hand after 63 minutes; its 108 kimg snapshot is the bundled generator.
# Choices (measured with benchmarks/train_generator.py on the shared 2-core AMD EPYC, see the model card):
#  * 64x64, channel_base 1024 / channel_max 128 (channels 128,128,64,32,16 at 4..64 px), z = w = 128,
#    2 mapping layers (lr x0.01): the fastest config measured on CPU (~5 img/s under contention),
#    about 1.7x the 2048-base config and 3x the 4096-base one; quality is bounded by training time
#    here, not capacity.
#  * batch 16: more updates per image at a CPU budget of only ~15-30 kimg.
#  * no DiffAugment: 23,317 images and well under one epoch, so D cannot memorise them; mirror flips on.
#  * R1 gamma 0.1 every 16 steps; no path-length regularisation (saves ~20% on CPU).
#  * float32 (bfloat16 autocast gave no reliable gain for this config).
#  * ONE torch thread: on the shared 2-core machine 2 OpenMP threads collapse under contention
#    (1.9 img/s vs 20-22 img/s with 1 thread at load ~4.5; 14 img/s with OMP_WAIT_POLICY=PASSIVE);
#    2 threads only win on an idle machine (~45-52 img/s). torchrun 2 x 1 thread (gloo) gave 14-18 img/s.
#  * channels-last conv weights (default): 1 thread went from ~20-22 to ~27 img/s (median step 30 img/s)
#    at load ~5, i.e. ~90-110 kimg/hour if the machine stays that busy.
#  * time-limited (--max-minutes): the run ends as finished and writes network-final.safetensors.
# On a GPU, drop --threads/--max-minutes and raise --kimg (e.g. 2000) and channel_base (e.g. 4096).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/bundled_generator}"
MINUTES="${2:-65}"
RESUME=()
if [[ -f "$OUT/training-state.safetensors" ]]; then RESUME=(--resume "$OUT"); fi
export OMP_NUM_THREADS=1
exec .venv/bin/editkit train generator \
  --data ../shared/data/faces/utkface_aligned_200.zip \
  --out "$OUT" \
  --resolution 64 --kimg 1000 --batch 16 \
  --z-dim 128 --w-dim 128 --mapping-layers 2 --mapping-lr-mul 0.01 \
  --channel-base 1024 --channel-max 128 --mbstd-group 4 \
  --g-lr 0.0025 --d-lr 0.0025 --r1-gamma 0.1 --r1-interval 16 --pl-weight 0 \
  --style-mixing 0.9 --ema-rampup 0.05 --augment none --mirror \
  --seed 0 --threads 1 --no-amp \
  --sample-kimg 1 --snapshot-kimg 2 --log-kimg 0.25 --grid 8 \
  --max-minutes "$MINUTES" \
  "${RESUME[@]}"
