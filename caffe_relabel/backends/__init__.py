"""Classifier backends: real pycaffe, and the Caffe-faithful engine.

``load_classifier(prototxt, weights, backend=...)`` picks one by name;
``"auto"`` takes pycaffe when it imports and the engine otherwise.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Callable, Optional

from caffe_relabel.devices import parse_device
from caffe_relabel.numerics import CUDA_ONLY, check_numerics
from caffe_relabel.errors import ArgumentError, BackendUnavailableError
from caffe_relabel.backends.base import Classifier, LossGradient, softmax_cross_entropy_grad

# Backend name -> "module:class"; a new backend joins here.
BACKENDS: dict[str, str] = {
    "pycaffe": "caffe_relabel.backends.pycaffe:PycaffeClassifier",
    "engine": "caffe_relabel.backends.engine:EngineClassifier",
}


#: What a ``backend=`` argument takes: a backend's name, or "auto".
BACKEND_CHOICES = ("auto", *BACKENDS)


def _backend_class(name: str) -> Callable[..., Classifier]:
    if name not in BACKENDS:
        raise ArgumentError(f"expected backend 'auto' or one of {', '.join(BACKENDS)}, got {name!r}")
    module, _, cls = BACKENDS[name].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise BackendUnavailableError(f"backend {name!r} is not available: {e}") from None


def pycaffe_available() -> bool:
    """True when ``import caffe`` works in this environment."""
    from caffe_relabel.backends.pycaffe import import_caffe

    try:
        import_caffe()
    except BackendUnavailableError:
        return False
    return True


def engine_available() -> bool:
    """True when torch is installed (the engine backend's one extra requirement)."""
    return importlib.util.find_spec("torch") is not None


def load_classifier(
    prototxt: "str | os.PathLike[str]",
    weights: "Optional[str | os.PathLike[str]]" = None,
    backend: str = "auto",
    device: str = "cpu",
    numerics: str = "faithful",
) -> Classifier:
    """A classifier from a deploy prototxt and a caffemodel on the chosen backend.

    ``numerics`` are the engine's (:mod:`caffe_relabel.engine.device`); pycaffe
    is Caffe itself and runs only ``'faithful'``, so with ``backend='auto'``
    other numerics pick the engine. ``'fast-bf16'`` exists only on CUDA.
    """
    check_numerics(numerics)
    kind, _ = parse_device(device)
    if numerics in CUDA_ONLY and kind == "cpu":
        raise ArgumentError(f"numerics {numerics!r} exist only on CUDA (bfloat16 autocast); "
                            f"on device {device!r} use 'fast' (--engine-mode fast) or 'faithful'")
    if backend == "auto":
        backend = "pycaffe" if numerics == "faithful" and pycaffe_available() else "engine"
    if backend == "engine":
        return _backend_class(backend)(prototxt, weights, device=device, numerics=numerics)
    if numerics != "faithful":
        raise ArgumentError(f"numerics {numerics!r} are the engine's; backend {backend!r} runs only 'faithful' "
                            "(for them: backend 'engine', --backend engine)")
    return _backend_class(backend)(prototxt, weights, device=device)


__all__ = ["BACKENDS", "BACKEND_CHOICES", "Classifier", "LossGradient", "engine_available", "load_classifier",
           "pycaffe_available",
           "softmax_cross_entropy_grad"]
