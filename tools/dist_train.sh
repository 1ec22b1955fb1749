#!/usr/bin/env bash
# Train on several GPUs of this machine: tools/dist_train.sh CONFIG GPUS [train.py args...]
# Multi-node: see docs/distributed.md (torchrun --nnodes/--node_rank/--rdzv_endpoint).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [tools/train.py options]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node="$GPUS" "$HERE/train.py" "$CONFIG" "$@"
