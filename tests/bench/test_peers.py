"""bench/peers.py hands the attacks the same network the Relabeller uses."""

import numpy as np
import torch

from caffe_relabel.models import testmodels

from caffe_relabel.models import zoo
from caffe_relabel.backends.engine import EngineClassifier
from caffe_relabel.images.preprocess import image_to_blob
from caffe_relabel.models.model import Model


def test_public_module_gives_the_logits_of_the_preprocessed_image(bench_module):
    peers = bench_module("peers")
    assert not hasattr(peers, "BlobInput")  # the attacks get the library's own model.module
    clf = EngineClassifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS)
    spec = zoo.get("digits").input
    images = list(np.random.default_rng(0).uniform(0, 1, (3,) + spec.size + (spec.channels,)))
    module = Model(clf, spec).module
    with torch.no_grad():
        got = module(peers.to_tensor(images, clf.module.device)).numpy()
    want = clf.blob(np.stack([image_to_blob(im, spec) for im in images]), clf.module.logits_name)
    # float32 blob built two ways (torch vs numpy float64 then cast): differences of one ulp in the input
    assert np.allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-4)
