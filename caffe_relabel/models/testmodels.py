"""Models this project makes itself, for tests and offline demos.

- ``digits``: a small classifier trained with real Caffe's Adam solver on
  scikit-learn's handwritten digits; committed under ``caffe_relabel/data/digits``
  (prototxt, caffemodel, held-out test images) and reproducible with
  ``python -m caffe_relabel.models.testmodels digits``.
- ``bvlc_googlenet``, ``bvlc_alexnet``, ``bvlc_reference_caffenet`` and the
  Model Zoo architectures of ``prototxt/zoo`` (:data:`ZOO_ARCHITECTURES`:
  ResNet-50, VGG-16, SqueezeNet, NIN, MobileNet, DenseNet) with seeded random
  weights, at full size, for faithfulness checks. Too big to commit; ``python -m caffe_relabel.models.testmodels random`` writes them to the
  cache (``$CAFFE_RELABEL_HOME/testmodels``), and :func:`random_model`
  makes one on first use.

Random weights are He-scaled Gaussians (std sqrt(2 / fan_in)) and small
Gaussian biases from a per-layer seeded generator, so every machine writes
the same bytes. The deploy prototxts of AlexNet and CaffeNet carry no
fillers (Caffe's default is zero), and GoogLeNet's xavier scale shrinks the
signal through 22 layers; He scaling (the first layer divided by the
pixels' spread) keeps the logits spread and unsaturated, which
:func:`logit_spread` checks. BatchNorm gets a near-identity normalisation
(small means, variances near 1, scale factor 1) and Scale a gain near 1.
Residual sums and linear bottlenecks still grow or shrink the signal over 50
layers, so for the zoo architectures the classifier layer is then multiplied
by the power of two that brings the logits' spread on a fixed smooth image
nearest to 2 (:func:`_calibrate_classifier`; a power of two keeps the bytes
exact, and only a spread within float rounding of a rounding boundary could
make two machines pick different powers).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from caffe_relabel.files.download import sha1_file
from caffe_relabel.errors import ModelNotFoundError
from caffe_relabel.files.paths import cache_dir, package_data, repo_prototxt, zoo_prototxt

DIGITS_DIR = package_data("digits")
DIGITS_PROTOTXT = DIGITS_DIR / "deploy.prototxt"
DIGITS_WEIGHTS = DIGITS_DIR / "digits.caffemodel"
DIGITS_TEST = DIGITS_DIR / "test_digits.npz"
DIGITS_MEAN = 128.0
DIGITS_SIZE = 16

BVLC_RANDOM_MODELS = ("bvlc_googlenet", "bvlc_alexnet", "bvlc_reference_caffenet")
# The real architectures of prototxt/zoo (see its LICENSES.md), BVLC layers only.
ZOO_ARCHITECTURES = (
    "resnet50", "vgg16", "squeezenet_v1_0", "squeezenet_v1_1", "nin_imagenet",
    "mobilenet_v1", "mobilenet_v2", "densenet121",
)
RANDOM_MODELS = BVLC_RANDOM_MODELS + ZOO_ARCHITECTURES
# Caffe's transform_param.scale of the nets trained with one (the blob is
# (pixel - mean) * scale): their first layer sees a spread of about 1, not 64.
ZOO_INPUT_SCALE = {"mobilenet_v1": 0.017, "mobilenet_v2": 0.017, "densenet121": 0.017}
# BGR per-channel means each architecture was trained with (prototxt/zoo/LICENSES.md);
# ResNet-50 and NIN were trained with a mean image, given here as its channel means.
ZOO_MEANS = {
    "resnet50": (104.0, 117.0, 123.0), "vgg16": (103.939, 116.779, 123.68),
    "squeezenet_v1_0": (104.0, 117.0, 123.0), "squeezenet_v1_1": (104.0, 117.0, 123.0),
    "nin_imagenet": (104.0, 117.0, 123.0), "mobilenet_v1": (103.94, 116.78, 123.68),
    "mobilenet_v2": (103.94, 116.78, 123.68), "densenet121": (103.94, 116.78, 123.68),
}
RANDOM_SEED = 0


def digits_dataset(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits as 16x16 uint8 images: (train_x, train_y, test_x, test_y), 1347/450 split."""
    from sklearn.datasets import load_digits
    from skimage.transform import resize

    d = load_digits()
    imgs = np.stack([resize(im / 16.0, (DIGITS_SIZE, DIGITS_SIZE), order=1, anti_aliasing=False) for im in d.images])
    imgs = np.clip(np.round(imgs * 255), 0, 255).astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(imgs))
    train, test = order[:1347], order[1347:]
    return imgs[train], d.target[train], imgs[test], d.target[test]


def _train_prototxt(batch: int) -> str:
    deploy = DIGITS_PROTOTXT.read_text()
    body = deploy.split('layer { name: "conv1"', 1)[1].rsplit('layer { name: "prob"', 1)[0]
    return (
        'name: "digits_train"\n'
        f'layer {{ name: "data" type: "Input" top: "data" top: "label" input_param {{ '
        f"shape {{ dim: {batch} dim: 1 dim: {DIGITS_SIZE} dim: {DIGITS_SIZE} }} shape {{ dim: {batch} }} }} }}\n"
        'layer { name: "conv1"' + body
        + 'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc2" bottom: "label" top: "loss" }\n'
    )


def train_digits(out_dir: Path = DIGITS_DIR, iterations: int = 2000, batch: int = 64) -> float:
    """Train the digits model with Caffe's SGD solver; returns held-out accuracy."""
    from caffe_relabel.backends.pycaffe import import_caffe

    caffe = import_caffe()
    caffe.set_mode_cpu()
    caffe.set_random_seed(RANDOM_SEED)
    train_x, train_y, test_x, test_y = digits_dataset()
    with tempfile.TemporaryDirectory() as tmp:
        net_path = Path(tmp, "train.prototxt")
        net_path.write_text(_train_prototxt(batch))
        solver_path = Path(tmp, "solver.prototxt")
        solver_path.write_text(
            # Adam: the 0..255 input scale makes plain SGD's step size hard to pick.
            f'net: "{net_path}"\ntype: "Adam"\nbase_lr: 0.001\nmomentum: 0.9\nmomentum2: 0.999\n'
            f'weight_decay: 0.0005\nlr_policy: "step"\ngamma: 0.1\nstepsize: {iterations * 3 // 4}\n'
            f"max_iter: {iterations}\n"
            f"display: 0\nsnapshot: 0\nrandom_seed: {RANDOM_SEED}\nsolver_mode: CPU\n"
        )
        solver = caffe.get_solver(str(solver_path))
        rng = np.random.default_rng(RANDOM_SEED)
        blob = train_x.astype(np.float32)[:, None] - DIGITS_MEAN
        for _ in range(iterations):
            idx = rng.choice(len(blob), size=batch, replace=False)
            solver.net.blobs["data"].data[...] = blob[idx]
            solver.net.blobs["label"].data[...] = train_y[idx]
            solver.step(1)
        out_dir.mkdir(parents=True, exist_ok=True)
        solver.net.save(str(out_dir / "digits.caffemodel"))
    np.savez_compressed(out_dir / "test_digits.npz", images=test_x, labels=test_y)
    return digits_accuracy(out_dir / "digits.caffemodel")


def digits_accuracy(weights: Path = DIGITS_WEIGHTS) -> float:
    """Held-out accuracy of the digits model, evaluated by pycaffe."""
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    clf = PycaffeClassifier(DIGITS_PROTOTXT, weights)
    data = np.load(DIGITS_TEST)
    probs = clf.forward(data["images"].astype(np.float32)[:, None] - DIGITS_MEAN)
    return float((probs.argmax(1) == data["labels"]).mean())


def random_model_path(name: str, seed: int = RANDOM_SEED) -> Path:
    return cache_dir("testmodels") / f"{name}-random-seed{seed}.caffemodel"


def random_model_prototxt(name: str) -> Path:
    """The force_backward deploy prototxt of a random-weight architecture."""
    return zoo_prototxt(name) if name in ZOO_ARCHITECTURES else repo_prototxt(name)


# Mean-subtracted 0..255 pixels have a spread of about 64: the first layer's
# weights are scaled down by that so its outputs start near unit size.
INPUT_SCALE = 64.0


def _fill(shape: tuple[int, ...], rng: np.random.Generator, is_bias: bool, fan_in: int, input_spread: float) -> np.ndarray:
    if is_bias:
        return rng.normal(0.0, 0.01, size=shape).astype(np.float32)
    std = np.sqrt(2.0 / fan_in) / input_spread
    return rng.normal(0.0, std, size=shape).astype(np.float32)


def _fill_layer(kind: str, shapes: list[tuple[int, ...]], rng: np.random.Generator, input_spread: float) -> list[np.ndarray]:
    """Random parameter blobs for one layer of type ``kind``."""
    if kind == "BatchNorm":  # mean, variance, moving-average factor (Caffe divides the first two by it)
        mean = rng.normal(0.0, 0.1, size=shapes[0]).astype(np.float32)
        var = rng.uniform(0.5, 1.5, size=shapes[1]).astype(np.float32)
        return [mean, var, np.ones(shapes[2], np.float32)]
    if kind == "Scale":
        gain = [rng.uniform(0.8, 1.2, size=shapes[0]).astype(np.float32)]
        return gain + [_fill(s, rng, True, 1, 1.0) for s in shapes[1:]]
    fan_in = int(np.prod(shapes[0][1:]))
    return [_fill(s, rng, is_bias=j > 0, fan_in=fan_in, input_spread=input_spread) for j, s in enumerate(shapes)]


LOGIT_SPREAD = 2.0


def _calibrate_classifier(net: Any, input_spread: float) -> None:
    """Scale the last parameterised layer by a power of two so the logits spread about LOGIT_SPREAD."""
    shape = net.blobs[net.inputs[0]].data.shape[1:]
    # A smooth image: 8x8 Gaussian blocks at the spread of mean-subtracted pixels.
    coarse = np.random.default_rng(RANDOM_SEED).normal(0.0, input_spread, size=(shape[0], 8, 8))
    reps = (1, -(-shape[1] // 8), -(-shape[2] // 8))
    x = np.kron(coarse, np.ones(reps))[:, : shape[1], : shape[2]]
    net.blobs[net.inputs[0]].reshape(1, *shape)
    net.reshape()
    net.blobs[net.inputs[0]].data[...] = x
    # The logits are the bottom of the final Softmax; ReLU and average pooling between the
    # classifier and them are positively homogeneous, so scaling the classifier scales them.
    net.forward()
    logits = net.blobs[net.bottom_names[list(net.layer_dict)[-1]][0]].data
    last = list(net.params)[-1]
    power = int(np.round(np.log2(LOGIT_SPREAD / float(logits.ravel().std()))))
    for b in net.params[last]:
        b.data[...] *= np.float32(2.0 ** power)


def make_random_model(name: str, seed: int = RANDOM_SEED) -> Path:
    """Write ``name``'s deploy net with seeded random weights to the cache (atomically)."""
    from caffe_relabel.backends.pycaffe import import_caffe

    if name not in RANDOM_MODELS:
        raise ModelNotFoundError(f"expected one of {', '.join(RANDOM_MODELS)}, got {name!r}")
    caffe = import_caffe()
    caffe.set_mode_cpu()
    net = caffe.Net(str(random_model_prototxt(name)), caffe.TEST)
    input_name = net.inputs[0]
    spread = INPUT_SCALE * ZOO_INPUT_SCALE.get(name, 1.0)
    for i, (layer, blobs) in enumerate(net.params.items()):
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), i])
        first = input_name in net.bottom_names[layer]
        values = _fill_layer(net.layer_dict[layer].type, [b.data.shape for b in blobs], rng, spread if first else 1.0)
        for b, v in zip(blobs, values):
            b.data[...] = v
    if name in ZOO_ARCHITECTURES:
        _calibrate_classifier(net, spread)
    path = random_model_path(name, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.part")
    net.save(str(tmp))
    os.replace(tmp, path)
    return path


def random_model(name: str, seed: int = RANDOM_SEED) -> tuple[Path, Path]:
    """(prototxt, caffemodel) of a random-weight zoo architecture, made on first use."""
    path = random_model_path(name, seed)
    if not path.exists():
        make_random_model(name, seed)
    return random_model_prototxt(name), path


def zoo_input_spec(name: str, size: int = 224) -> Any:
    """The InputSpec of a zoo architecture: its mean, and its input scale after the mean."""
    from caffe_relabel.images.preprocess import InputSpec

    return InputSpec(size=(size, size), channel_order="BGR", mean=ZOO_MEANS[name], resize=256,
                     input_scale=ZOO_INPUT_SCALE.get(name, 1.0))


def scaled_digits(folder: "str | os.PathLike[str]", input_scale: float) -> tuple[Path, Path]:
    """The digits model re-expressed for an input scale after the mean (a LeNet-style net
    trained on (pixel - mean) * input_scale): conv1's weights divided by ``input_scale``, so
    the same function of the pixels. Written to ``folder`` as (prototxt, caffemodel); with a
    power of two (1/256) every product, and so every output, is bit-identical to the original's."""
    import shutil

    from caffe_relabel.netdef.proto.io import read_weights, write_weights

    net = read_weights(DIGITS_WEIGHTS)
    (conv1,) = [layer for layer in net.layer if layer.name == "conv1"]
    weights = conv1.blobs[0]
    scaled = np.asarray(weights.data, dtype=np.float32) / np.float32(input_scale)
    weights.data[:] = scaled.tolist()
    folder = Path(folder)
    proto, model = folder / "deploy.prototxt", folder / "scaled_digits.caffemodel"
    shutil.copyfile(DIGITS_PROTOTXT, proto)
    write_weights(net, model)
    return proto, model


def logit_spread(clf: Any, x: np.ndarray) -> float:
    """Std of the log-probabilities over classes, averaged over samples (0 = degenerate)."""
    logp = np.log(np.maximum(clf.forward(x), 1e-30))
    return float(logp.std(axis=1).mean())


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m caffe_relabel.models.testmodels", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("digits", help="retrain the committed digits model with Caffe's solver")
    rand = sub.add_parser("random", help="write the random-weight zoo architectures to the cache")
    rand.add_argument("--force", action="store_true", help="rewrite even if present")
    rand.add_argument("names", nargs="*", metavar="NAME",
                      help=f"any of {', '.join(RANDOM_MODELS)} (default: the three BVLC nets; "
                      "the zoo architectures are otherwise made on first use)")
    args = parser.parse_args(argv)
    if args.cmd == "digits":
        acc = train_digits()
        print(f"digits: held-out accuracy {acc:.4f}; sha1 {sha1_file(DIGITS_WEIGHTS)}")
        return 0 if acc >= 0.95 else 1
    unknown = [n for n in args.names if n not in RANDOM_MODELS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; expected any of {', '.join(RANDOM_MODELS)}")
    for name in args.names or BVLC_RANDOM_MODELS:
        path = random_model_path(name)
        if args.force or not path.exists():
            make_random_model(name)
        print(f"{name}: {path} sha1 {sha1_file(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
