"""Second classifiers to test transfer on: any model this package opens, or a scikit-learn MLP for digits.

No second trained Caffe digits network exists offline, so ``digits-mlp`` (a
multi-layer perceptron trained on the same digits training split) stands in
as "another network" for the digits model.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from caffe_relabel.interrupts import keep_interrupts
from caffe_relabel.images.preprocess import fit
from caffe_relabel.experiments.common import open_model

#: images (list of H x W x C in [0, 1]) -> N x K class probabilities
ProbsFn = Callable[[list], np.ndarray]

DIGITS_MLP = "digits-mlp"


def open_classifier(name: str, backend: str = "auto") -> ProbsFn:
    """A probability function for ``name``: a model name, ``random:<zoo name>`` or ``digits-mlp``."""
    if name == DIGITS_MLP:
        return _digits_mlp()
    net = open_model(name, backend)

    def probs(images: list) -> np.ndarray:
        return np.stack([p.probabilities for p in net.predict_many(images)])

    return probs


def _digits_mlp() -> ProbsFn:
    from sklearn.neural_network import MLPClassifier

    from caffe_relabel.models.testmodels import DIGITS_SIZE, digits_dataset

    train_x, train_y, _, _ = digits_dataset()
    mlp = MLPClassifier(hidden_layer_sizes=(128,), max_iter=400, random_state=0)
    with keep_interrupts():  # scikit-learn stops training at Ctrl-C and returns as if it had finished
        mlp.fit(train_x.reshape(len(train_x), -1) / 255.0, train_y)

    def probs(images: list) -> np.ndarray:
        flat = np.stack([fit(im, _grey_spec(DIGITS_SIZE))[:, :, 0].reshape(-1) for im in images])
        return mlp.predict_proba(flat)

    return probs


def _grey_spec(size: int):
    from caffe_relabel.images.preprocess import InputSpec

    return InputSpec(size=(size, size), channel_order="GREY", mean=(0.0,), resize=None)
