#!/usr/bin/env bash
# Build BVLC Caffe with pycaffe from Debian's `caffe` source package.
#
# Shared by `make setup` (CPU, this machine) and docker/Dockerfile (CUDA).
# The build lives outside the checkout, keyed by Caffe version, Python version
# and flavour, so a second run only checks that the cached module imports.
#
#   build_caffe.sh PYTHON [cpu|cuda]    prints the pycaffe directory on stdout
#
# Environment: CAFFE_RELABEL_BUILD_CACHE (default ~/.cache/caffe-relabel/build),
# JOBS (default: number of cores).
set -euo pipefail

PYTHON=${1:?usage: build_caffe.sh PYTHON [cpu|cuda]}
FLAVOUR=${2:-cpu}
CAFFE_VERSION=1.0.0+git20180821.99bd997
CAFFE_SUITE=bullseye
JOBS=${JOBS:-$(nproc)}

case "$FLAVOUR" in cpu|cuda) ;; *) echo "build_caffe.sh: flavour must be cpu or cuda, got '$FLAVOUR'" >&2; exit 2;; esac

PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# pycaffe is compiled against numpy's C API; it needs numpy < 2 at build and run time.
NPVER=$("$PYTHON" -c 'import numpy; print(numpy.__version__.split(".")[0])') || {
    echo "build_caffe.sh: $PYTHON has no numpy; install numpy<2 first" >&2; exit 2; }
[ "$NPVER" = 1 ] || { echo "build_caffe.sh: $PYTHON has numpy $NPVER.x; pycaffe needs numpy < 2" >&2; exit 2; }
CACHE_ROOT=${CAFFE_RELABEL_BUILD_CACHE:-$HOME/.cache/caffe-relabel/build}
PREFIX="$CACHE_ROOT/caffe-$CAFFE_VERSION-py$PYVER-$FLAVOUR"
PYCAFFE="$PREFIX/src/python"

log() { echo "[build_caffe] $*" >&2; }

if [ -f "$PREFIX/.complete" ] && [ -e "$PYCAFFE/caffe/_caffe.so" ]; then
    log "cached build found: $PREFIX"
    echo "$PYCAFFE"
    exit 0
fi

BUILD_DEPS="cmake g++ dpkg-dev libboost-system-dev libboost-thread-dev
libboost-filesystem-dev libboost-python-dev libboost-regex-dev libprotobuf-dev
protobuf-compiler libgoogle-glog-dev libgflags-dev libhdf5-dev libopenblas-dev"

missing=$(for p in $BUILD_DEPS; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
    log "installing build packages: $(echo $missing)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
fi

rm -rf "$PREFIX"
mkdir -p "$PREFIX/dl"
cd "$PREFIX/dl"

# Fetch the source package without touching the system's apt sources.
APTDIR="$PREFIX/dl/apt"
mkdir -p "$APTDIR/lists/partial"
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
echo "deb-src $MIRROR $CAFFE_SUITE main contrib" > "$APTDIR/sources.list"
APT_OPTS=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$APTDIR/lists")
log "downloading caffe $CAFFE_VERSION source from $MIRROR ($CAFFE_SUITE)"
apt-get "${APT_OPTS[@]}" update -qq >&2
apt-get "${APT_OPTS[@]}" source --download-only "caffe=$CAFFE_VERSION-2" >&2 \
    || apt-get "${APT_OPTS[@]}" source --download-only caffe >&2
dpkg-source -x caffe_*.dsc "$PREFIX/src" >&2
cd "$PREFIX/src"

# protobuf >= 3.21 keeps only the one-argument SetTotalBytesLimit.
sed -i 's/coded_input->SetTotalBytesLimit(kProtoReadBytesLimit, 536870912);/coded_input->SetTotalBytesLimit(kProtoReadBytesLimit);/' src/caffe/util/io.cpp
grep -q 'SetTotalBytesLimit(kProtoReadBytesLimit);' src/caffe/util/io.cpp

# Link against the interpreter's own libpython and headers, not whatever
# libpython3.x the system carries (two runtimes in one process crash).
PY_INC=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
PY_LIB=$("$PYTHON" -c 'import sysconfig, os; print(os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")))')
CMAKE_FLAGS=(-DUSE_OPENCV=OFF -DUSE_LMDB=OFF -DUSE_LEVELDB=OFF -DBLAS=Open
    -DBUILD_docs=OFF -DBUILD_matlab=OFF -DBUILD_python=ON -Dpython_version=3
    -DPYTHON_EXECUTABLE="$PYTHON"
    -DPYTHON_INCLUDE_DIR="$PY_INC" -DPYTHON_LIBRARY="$PY_LIB" -DCMAKE_BUILD_TYPE=Release)
if [ "$FLAVOUR" = cpu ]; then
    CMAKE_FLAGS+=(-DCPU_ONLY=ON -DUSE_CUDNN=OFF)
else
    # All architectures from Pascal up; Caffe's own "Auto" needs a GPU at build time.
    # BVLC Caffe's cuDNN layers use the cuDNN 7 API (removed in cuDNN 8), and
    # cuDNN 7 stops at CUDA 10.2, which cannot target Ampere or Hopper: cuDNN
    # is off unless CAFFE_USE_CUDNN=ON on such an old toolkit.
    CMAKE_FLAGS+=(-DCPU_ONLY=OFF "-DUSE_CUDNN=${CAFFE_USE_CUDNN:-OFF}" -DCUDA_ARCH_NAME=Manual
        "-DCUDA_ARCH_BIN=${CUDA_ARCH_BIN:-60 70 75 80 86 90}" -DCUDA_ARCH_PTX=90)
fi
mkdir -p build && cd build
log "configuring ($FLAVOUR)"
cmake .. "${CMAKE_FLAGS[@]}" >&2
log "compiling with $JOBS jobs"
make -j"$JOBS" pycaffe >&2

"$PYTHON" -c "import sys; sys.path.insert(0, '$PYCAFFE'); import caffe" >&2 || {
    log "the built module does not import; is numpy < 2, six, scikit-image and protobuf installed for $PYTHON?"; }
touch "$PREFIX/.complete"
log "done: $PYCAFFE"
echo "$PYCAFFE"
