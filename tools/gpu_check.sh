#!/usr/bin/env bash
# The checks that need a GPU (issue 12), in one go, from the repository root on a machine with CUDA:
#   bash tools/gpu_check.sh            (PYTHON=... to choose the interpreter)
# 1. every test marked `cuda` (sync-free step under set_sync_debug_mode("error"), fp16/bf16 training of every
#    architecture, CUDA checkpoint resumed on the CPU, the trainer benchmark on the device);
# 2. the trainer benchmark against the bare loop on the device, for docs/benchmarks.md.
set -euo pipefail
PYTHON=${PYTHON:-python}
"$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch')"
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name(0))"
cat /proc/loadavg
"$PYTHON" -m pytest -m cuda -q -rs
"$PYTHON" tools/benchmark.py trainer --device cuda --repeats 15
"$PYTHON" tools/benchmark.py trainer --device cuda --batch 16 --size 256 --repeats 15
