"""Hostile calls of the library's API, as reliability cases (``{"call": "tests.fuzz.api_cases:NAME"}``).

Each function makes one call a caller could make; the reliability child runs it
as it runs a command: a library error is a clean exit with its code, anything
else a traceback.
"""

from __future__ import annotations

import numpy as np

from caffe_relabel import Relabeller

DIGITS_SHAPE = (2, 1, 16, 16)


def _digits() -> Relabeller:
    return Relabeller("digits", backend="engine", max_iter=1)


def target_superscript() -> None:
    _digits().run(np.full((16, 16, 1), 0.5), "\u00b2")


def target_double_minus() -> None:
    _digits().run(np.full((16, 16, 1), 0.5), "--1")


def meta_tensor() -> None:
    import torch

    _digits().relabel_batch(torch.zeros(DIGITS_SHAPE, device="meta"), 1)


def sparse_tensor() -> None:
    import torch

    _digits().relabel_batch(torch.zeros(DIGITS_SHAPE).to_sparse(), 1)


def expanded_batch() -> None:
    import torch

    # 10^8 images in a few bytes: a zero-stride view, a terabyte once copied.
    _digits().relabel_batch(torch.zeros(1, 1, 16, 16).expand(10**8, 1, 16, 16), 1)


def broadcast_batch() -> None:
    _digits().relabel_batch(np.broadcast_to(np.zeros((1, 16, 16, 1), np.float32), (10**8, 16, 16, 1)), 1)


def on_iteration_relabel_batch() -> None:
    _digits().relabel_batch(np.zeros(DIGITS_SHAPE, np.float32), 1, on_iteration=5)


def on_iteration_run_batch() -> None:
    _digits().run_batch([np.zeros((16, 16, 1))], [1], on_iteration=5)


def on_iteration_iter_results() -> None:
    list(_digits().iter_results([(np.zeros((16, 16, 1)), 1)], on_iteration=5))


def ambiguous_layout() -> None:
    from caffe_relabel.images.preprocess import InputSpec
    from tests.relabel.test_relabel_batch import _Linear3x3

    spec = InputSpec(size=(3, 3), channel_order="RGB", mean=(0.0, 0.0, 0.0), resize=None, raw_scale=1.0)
    Relabeller(_Linear3x3(), input_spec=spec, max_iter=1).relabel_batch(np.full((4, 3, 3, 3), 0.5), 1)


def unknown_layout() -> None:
    _digits().relabel_batch(np.zeros(DIGITS_SHAPE, np.float32), 1, layout="CHWN")


def subnormal_input_scale() -> None:
    from caffe_relabel.images.preprocess import InputSpec

    InputSpec(size=(16, 16), channel_order="GREY", mean=(0.0,), input_scale=1e-320)


def overflowing_mean() -> None:
    from caffe_relabel.images.preprocess import InputSpec

    InputSpec(size=(16, 16), channel_order="GREY", mean=(1e300,))


CALLS = [name for name, value in list(globals().items()) if callable(value) and not name.startswith("_")
         and value.__module__ == __name__]
