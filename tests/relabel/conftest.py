"""Fixtures shared by the relabelling tests."""

import pytest

from caffe_relabel.backends import load_classifier
from caffe_relabel.models import testmodels, zoo
from caffe_relabel.models.model import Model


@pytest.fixture(scope="module")
def engine_model() -> Model:
    """The trained digits model on the engine backend, with its zoo input spec and class names."""
    pytest.importorskip("torch")
    clf = load_classifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, backend="engine")
    return Model(clf, zoo.get("digits").input, "digits", zoo.class_names("digits"), "digits")
