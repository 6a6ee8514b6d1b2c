"""Classifier backends: real pycaffe, and the Caffe-faithful engine.

``load_classifier(prototxt, weights, backend=...)`` picks one by name;
``"auto"`` takes pycaffe when it imports and the engine otherwise.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Callable, Optional

from caffe_relabel.numerics import check_mode
from caffe_relabel.errors import ArgumentError, BackendUnavailableError
from caffe_relabel.backends.base import Classifier, LossGradient, softmax_cross_entropy_grad

# Backend name -> "module:class"; a new backend joins here.
BACKENDS: dict[str, str] = {
    "pycaffe": "caffe_relabel.backends.pycaffe:PycaffeClassifier",
    "engine": "caffe_relabel.backends.engine:EngineClassifier",
}


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
    mode: str = "faithful",
) -> Classifier:
    """A classifier from a deploy prototxt and a caffemodel on the chosen backend.

    ``mode`` is the engine's numeric mode (:mod:`caffe_relabel.engine.device`);
    pycaffe is Caffe itself and runs only ``'faithful'``, so with ``backend='auto'``
    another mode picks the engine.
    """
    check_mode(mode)
    if backend == "auto":
        backend = "pycaffe" if mode == "faithful" and pycaffe_available() else "engine"
    if backend == "engine":
        return _backend_class(backend)(prototxt, weights, device=device, mode=mode)
    if mode != "faithful":
        raise ArgumentError(f"mode {mode!r} is the engine's; backend {backend!r} runs only 'faithful'")
    return _backend_class(backend)(prototxt, weights, device=device)


__all__ = ["BACKENDS", "Classifier", "LossGradient", "engine_available", "load_classifier", "pycaffe_available",
           "softmax_cross_entropy_grad"]
