"""The real Model Zoo architectures (prototxt/zoo) with seeded random weights, on both backends.

Slow: full-size nets. Fidelity on smooth random inputs, with the issue's
criterion: logits within 1e-5 relative (float32 summation order differs
between Caffe's im2col+BLAS and torch's kernels; errors measured here are
below 1e-6). Input-gradient signs (elements above 1e-6 of the largest): the
engine's disagreement with a float64 evaluation at most max(2 x Caffe's own,
0.1%), the criterion of test_zoo_fidelity.py. The issue's direct ">= 99.9%
engine vs Caffe" does not hold for every net, and not because of the engine:
on ResNet-50, smooth random input, Caffe itself disagrees with float64 on
0.08% of the elements and the engine on 0.03% (sample 0; 0.04% and 0.11% on
sample 1), so the two float32 runs differ on 0.10-0.13% -- float32 noise
through 50 layers of near-ties (ReLU inputs within rounding of zero), which
neither implementation can remove. Photographs: tests/engine/test_zoo_fidelity.py.
The SE-ResNet refusal is fast and runs by default.
"""

from __future__ import annotations

import numpy as np
import pytest

from caffe_relabel import testmodels
from caffe_relabel.backends import load_classifier
from caffe_relabel.errors import UnsupportedLayerError
from caffe_relabel.paths import zoo_prototxt
from tests.conftest import requires_pycaffe

LOGIT_TOL = 1e-5
NOISE_FLOOR = 1e-6


@pytest.mark.parametrize("backend", ["engine", "pycaffe"])
def test_se_resnet_is_refused_naming_axpy(backend: str) -> None:
    if backend == "engine":
        pytest.importorskip("torch")
    # SENet's Caffe fork adds Axpy (x * scale + shortcut), which BVLC Caffe does not have:
    # refused before anything is built, naming the layer and the type.
    with pytest.raises(UnsupportedLayerError, match=r"layer 'conv2_1'.*'Axpy' is not supported"):
        load_classifier(zoo_prototxt("se_resnet50"), None, backend=backend)


@pytest.mark.slow
@requires_pycaffe
@pytest.mark.parametrize("name", testmodels.ZOO_ARCHITECTURES)
def test_architecture_matches_pycaffe(name: str) -> None:
    pytest.importorskip("torch")
    from caffe_relabel.backends.engine import EngineClassifier
    from tests.engine.test_zoo_fidelity import float64_gradient

    proto, weights = testmodels.random_model(name)
    engine, caffe = EngineClassifier(proto, weights), load_classifier(proto, weights, backend="pycaffe")
    scale = testmodels.ZOO_INPUT_SCALE.get(name, 1.0)
    x = (np.random.default_rng(0).uniform(-120, 120, size=(2,) + engine.input_shape) * scale).astype(np.float32)
    logits = engine.net.logits_name
    want = caffe.blob(x, logits)
    assert np.abs(engine.blob(x, logits) - want).max() / np.abs(want).max() <= LOGIT_TOL
    for i, target in enumerate([1, 999]):
        xi, ti = x[i:i + 1], np.array([target])
        a, b = engine.loss_and_gradient(xi, ti).grad, caffe.loss_and_gradient(xi, ti).grad
        exact = float64_gradient(EngineClassifier(proto, weights), xi, ti)
        mask = np.abs(exact) > NOISE_FLOOR * np.abs(exact).max()
        d_engine = float((np.sign(a[mask]) != np.sign(exact[mask])).mean())
        d_caffe = float((np.sign(b[mask]) != np.sign(exact[mask])).mean())
        assert d_engine <= max(2 * d_caffe, 1e-3), f"sample {i}: engine {d_engine:.2e} vs caffe {d_caffe:.2e} off float64"


@pytest.mark.slow
@pytest.mark.parametrize("name", testmodels.ZOO_ARCHITECTURES)
def test_relabeller_runs_on_architecture(name: str) -> None:
    pytest.importorskip("torch")
    import skimage.data

    from caffe_relabel import Relabeller
    from caffe_relabel.backends.engine import EngineClassifier
    from caffe_relabel.model import Model

    proto, weights = testmodels.random_model(name)
    engine = EngineClassifier(proto, weights)
    spec = testmodels.zoo_input_spec(name, engine.input_shape[1])
    relabeller = Relabeller(Model(engine, spec, name), max_iter=30, batch_size=2)
    results = relabeller.run_batch([skimage.data.chelsea(), skimage.data.coffee()], [7, 411])
    for r in results:
        assert r.iterations >= 1
        assert r.target_prob > r.original_probs[r.target]  # the steps push toward the target
        assert r.distortion <= 0.01 + 1e-9  # the paper's cap holds
        assert r.image.shape == (engine.input_shape[1], engine.input_shape[2], 3)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(testmodels.ZOO_INPUT_SCALE))
def test_one_step_is_50_255_grey_level_with_input_scale(name: str) -> None:
    # MobileNet and DenseNet take (pixel * 255 - mean) * 0.017: the step is still 50/255 of a grey level.
    pytest.importorskip("torch")
    import skimage.data

    from caffe_relabel import Relabeller
    from caffe_relabel.backends.engine import EngineClassifier
    from caffe_relabel.model import Model

    proto, weights = testmodels.random_model(name)
    engine = EngineClassifier(proto, weights)
    spec = testmodels.zoo_input_spec(name, engine.input_shape[1])
    assert spec.input_scale == testmodels.ZOO_INPUT_SCALE[name]
    r = Relabeller(Model(engine, spec, name), max_iter=1, max_distortion=None).run(skimage.data.chelsea(), 7)
    moved = np.abs(r.image - r.original) * 255  # in grey levels
    still = moved < 1e-6
    room = (r.original * 255 > 50 / 255) & (r.original * 255 < 255 - 50 / 255)  # not stopped at black or white
    # float32 blob: its spacing near |x| = 2.2 is 2.4e-7, 1e-4 of a 0.0033-unit step.
    exact = np.isclose(moved, 50 / 255, rtol=1e-3, atol=0)
    assert np.all(still[room] | exact[room]) and np.all(moved[~room] <= 50 / 255 * (1 + 1e-3))
    assert r.iterations == 1 and (~still).mean() > 0.5
