#!/usr/bin/env bash
# The CamVid ablation of docs/results.md, from scratch or continued where it stopped (every step resumes).
#   1. loss: CrossEntropy, Focal, BoundaryFocal, Combo (CrossEntropy + Dice), LovaszSoftmax; 3 seeds each
#   2. on the better of CrossEntropy and BoundaryFocal (by mean mIoU): the loss alone, + EMA, + CutMix; 3 seeds
#   each arm's runs are then evaluated under TTA none/flip/hvflip/d4/flip+scales, and docs/results.md is
#   generated from both sweep folders. About 24 runs of an estimated ~7 minutes each on 2 quiet CPU cores.
# Environment: SWEEPS (default work_dirs/sweeps), CAMVID (data.root, default: the config's ../shared/data/camvid),
# PYTHON (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SWEEPS=${SWEEPS:-work_dirs/sweeps}
CONFIG=configs/camvid/base.py
TTA=none,flip,hvflip,d4,flip+scales
SET=(train.device=cpu)
if [ -n "${CAMVID:-}" ]; then SET+=("data.root=$CAMVID"); fi

"$PY" tools/sweep.py "$CONFIG" --set "${SET[@]}" --seeds 3 --work-dir "$SWEEPS/camvid_loss" --eval-tta "$TTA" \
    --no-progress --grid "loss={'type': 'CrossEntropy'},{'type': 'Focal'},{'type': 'BoundaryFocal'},\
{'type': 'Combo', 'losses': [{'type': 'CrossEntropy'}, {'type': 'Dice'}]},{'type': 'LovaszSoftmax'}"

BEST=$("$PY" tools/sweep.py "$CONFIG" --work-dir "$SWEEPS/camvid_loss" --best-of CrossEntropy,BoundaryFocal)
"$PY" tools/sweep.py "$CONFIG" --set "${SET[@]}" "loss.type=$BEST" --seeds 3 --work-dir "$SWEEPS/camvid_tricks" \
    --eval-tta "$TTA" --no-progress \
    --arm ema "train.ema={'decay': 0.99}" --arm cutmix "data.train.cutmix={'p': 0.5, 'alpha': 1.0}"

"$PY" tools/results_doc.py "$SWEEPS/camvid_loss" "$SWEEPS/camvid_tricks" --out docs/results.md \
    --highlight Pole,SignSymbol,Fence,Pedestrian,Bicyclist
