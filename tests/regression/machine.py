"""What a regression run's numbers depend on: the CPU and the BLAS kernel pycaffe's OpenBLAS chose.

Debian's OpenBLAS is built for every x86-64 core type and picks one at load time;
``OPENBLAS_CORETYPE`` (read when the library loads) forces another, so one machine can
stand in for other CPUs. Each kernel sums in its own order, which is why pycaffe's
numbers drift between machines (tests/regression/test_regression.py).
"""

from __future__ import annotations

import ctypes
import platform
import re
from pathlib import Path
from typing import Any, Optional

import numpy as np

# The CPU flags that decide which kernels OpenBLAS and PyTorch may run (/proc/cpuinfo calls SSE3 "pni").
_FLAGS = ("pni", "ssse3", "sse4_2", "avx", "fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_bf16")


def cpu() -> dict[str, Any]:
    """The CPU's model name and its SIMD flags (from /proc/cpuinfo; empty where there is none)."""
    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.exists() else ""
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    have = set(flags.group(1).split()) if flags else set()
    return {"model": model.group(1).strip() if model else platform.processor(), "machine": platform.machine(),
            "flags": [f for f in _FLAGS if f in have]}


def _loaded_openblas() -> Optional[str]:
    # The libopenblas this process has mapped (pycaffe's, once caffe is imported).
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    for line in maps.read_text().splitlines():
        path = line.split()[-1]
        if "libopenblas" in Path(path).name:
            return path
    return None


def openblas() -> dict[str, Optional[str]]:
    """The OpenBLAS pycaffe links: library path, kernel (``openblas_get_corename``) and build config."""
    from caffe_relabel.backends.pycaffe import import_caffe

    import_caffe()
    path = _loaded_openblas()
    if path is None:
        return {"library": None, "corename": None, "config": None}
    lib = ctypes.CDLL(path)
    name, config = lib.openblas_get_corename, lib.openblas_get_config
    name.restype = config.restype = ctypes.c_char_p
    return {"library": path, "corename": name().decode(), "config": config().decode().strip()}


def describe() -> dict[str, Any]:
    """CPU, BLAS and numpy version, as recorded next to the reference numbers."""
    return {"cpu": cpu(), "openblas": openblas(), "numpy": np.__version__}
