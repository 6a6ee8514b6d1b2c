"""Section 4: can an RBF SVM tell relabelled images from true members of the target class?

The paper, on GoogLeNet: features before the final fully connected layer,
20 relabelled + 20 true images to train, 30 + 30 to test, 89.6% accuracy on
average over 10 random sets of images and targets. A set here is scaled
down, keeping the 2:3 train/test split and the balance of the two kinds,
when the target class has fewer than 50 true members or fewer relabellings
succeed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from caffe_relabel.experiments import plots
from caffe_relabel.errors import ArgumentError, CaffeRelabelError
from caffe_relabel.models.model import Model
from caffe_relabel.images.preprocess import fit, image_to_blob, load_image
from caffe_relabel.relabel.relabeller import Relabeller
from caffe_relabel.relabel.settings import RelabelSettings
from caffe_relabel.experiments.common import UNCAPPED, ModelRef, Stats, open_model
from caffe_relabel.experiments.features import definition_path, last_fc_input
from caffe_relabel.experiments.sources import Source, by_class, load_sources

PAPER_ACCURACY = 0.896
#: The paper's true images of the target class per set: 20 to train and 30 to test, beside as many relabelled.
PAPER_TRUE_IMAGES = 50
#: The fewest a set may use for its accuracy to mean something: 4 + 4 to train and 6 + 6 to test (the
#: paper's 2:3 split). Below it a report says the data cannot support the row rather than give a number.
MIN_TRUE_IMAGES = 10


@dataclass(frozen=True)
class SvmSet:
    """One random set: its target class, sizes, and the SVM's test accuracy."""

    target: int
    n_train: int  # per kind (relabelled, true)
    n_test: int
    relabel_success_rate: float
    accuracy: float


@dataclass(frozen=True)
class SvmResult:
    model: str
    layer: str
    sets: list[SvmSet]
    accuracy: Stats
    figure: Path


def run_svm(
    model: ModelRef = "digits",
    out_dir: "str | os.PathLike[str]" = "results",
    sources: "Optional[str | os.PathLike[str]]" = None,
    sets: int = 10,
    n_train: int = 20,
    n_test: int = 30,
    settings: RelabelSettings = UNCAPPED,
    seed: int = 0,
    layer: Optional[str] = None,
    backend: str = "auto",
) -> SvmResult:
    """Train and test the SVM on ``sets`` random (target, images) sets."""
    if sets < 1 or n_train < 1 or n_test < 1:
        raise ArgumentError(f"expected sets, n_train, n_test >= 1, got {sets}, {n_train}, {n_test}")
    net = open_model(model, backend)
    layer = layer or last_fc_input(definition_path(net))
    groups = by_class(load_sources(net, sources, seed=seed))
    eligible = [c for c in sorted(groups) if len(groups[c]) >= 2 and len(groups) > 1]
    if not eligible:
        raise CaffeRelabelError("the SVM needs at least two classes with two or more source images each")
    relabeller = Relabeller(net, settings)
    rng = np.random.default_rng(seed)
    results = [_one_set(net, relabeller, groups, int(rng.choice(eligible)), n_train, n_test, layer, rng)
               for _ in range(sets)]
    path = Path(out_dir) / f"svm_{net.name}.png"
    bars = {f"set {i + 1}\n-> {plots.short_name(net.class_name(s.target), 10)}": {"accuracy": s.accuracy}
            for i, s in enumerate(results)}
    figure = plots.rate_bars(bars, path, f"Section 4 ({net.name}): RBF SVM on '{layer}', relabelled vs true "
                             f"(mean {np.mean([s.accuracy for s in results]):.3f}; paper {PAPER_ACCURACY}; chance 0.5)",
                             ylabel="test accuracy")
    return SvmResult(net.name, layer, results, Stats.of([s.accuracy for s in results]), figure)


def _one_set(net: Model, relabeller: Relabeller, groups: dict[int, list[Source]], target: int,
             n_train: int, n_test: int, layer: str, rng: np.random.Generator) -> SvmSet:
    true = groups[target]
    want = min(len(true), n_train + n_test)
    others = [s for c, members in groups.items() if c != target for s in members]
    # A few spare impostors, since some relabellings may fail.
    spare = min(len(others), want + math.ceil(0.25 * want) + 2)
    picked = [others[i] for i in rng.choice(len(others), size=spare, replace=False)]
    done = relabeller.run_batch([s.image for s in picked], [target] * len(picked))
    fakes = [r.image for r in done if r.success][:want]
    m = min(want, len(fakes))
    tr = max(1, round(m * n_train / (n_train + n_test)))
    te = m - tr
    if te < 1:
        raise CaffeRelabelError(f"class {net.class_name(target)}: only {m} usable images per kind, at least 2 needed")
    reals = [fit(load_image(true[i].image), net.input) for i in rng.choice(len(true), size=m, replace=False)]
    x_fake = _features(net, fakes[:m], layer)
    x_real = _features(net, reals, layer)
    order_f, order_r = rng.permutation(m), rng.permutation(m)
    x_train = np.concatenate([x_fake[order_f[:tr]], x_real[order_r[:tr]]])
    x_test = np.concatenate([x_fake[order_f[tr:]], x_real[order_r[tr:]]])
    y_train = np.array([1] * tr + [0] * tr)
    y_test = np.array([1] * te + [0] * te)
    accuracy = float((_classifier().fit(x_train, y_train).predict(x_test) == y_test).mean())
    return SvmSet(target, tr, te, sum(r.success for r in done) / len(done), accuracy)


def too_few_images(per_set: int) -> Optional[str]:
    """Why sets of ``per_set`` true images (and as many relabelled) cannot support an accuracy; None if they can."""
    if per_set >= MIN_TRUE_IMAGES:
        return None
    return (f"a set has only {per_set} true image(s) of its target class: an accuracy needs at least "
            f"{MIN_TRUE_IMAGES} (the paper: {PAPER_TRUE_IMAGES} of one class, 20 to train and 30 to test)")


def _classifier():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    # Standardised features: the RBF kernel's single width then suits every dimension.
    return make_pipeline(StandardScaler(), SVC(kernel="rbf", gamma="scale", C=1.0))


def _features(net: Model, images: list[np.ndarray], layer: str, chunk: int = 16) -> np.ndarray:
    blobs = np.stack([image_to_blob(im, net.input) for im in images])
    parts = [net.classifier.blob(blobs[i:i + chunk], layer) for i in range(0, len(blobs), chunk)]
    return np.concatenate(parts).reshape(len(images), -1).astype(np.float64)
