"""The regression cases: which images, targets and settings; shared by the
reference script and the test so both run exactly the same thing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from caffe_relabel.models import testmodels

from caffe_relabel.models import zoo
from caffe_relabel.backends import load_classifier
from caffe_relabel.models.model import Model
from caffe_relabel.relabel.relabeller import Relabeller


@dataclass(frozen=True)
class Group:
    name: str
    model: str  # "digits" or a random-weight zoo architecture
    max_distortion: Optional[float]
    max_iter: int
    batch_size: int


GROUPS = (
    # Unconstrained: every case runs to the target, iterations differ per case.
    Group("digits_free", "digits", None, 500, 4),
    # The paper's cap: the digits net resists, so these stop on distortion.
    Group("digits_cap", "digits", 0.01, 500, 4),
    # Full-size GoogLeNet (random weights), a fixed number of steps.
    Group("googlenet_steps", "bvlc_googlenet", None, 5, 2),
)


def inputs(group: Group) -> tuple[list[Any], list[int], list[str]]:
    """(images, targets, source names) of a group."""
    if group.model == "digits":
        data = np.load(testmodels.DIGITS_TEST)
        n, first = (30, 0) if group.name == "digits_free" else (10, 100)
        idx = range(first, first + n)
        images = [data["images"][i][:, :, None] / 255.0 for i in idx]
        targets = [(int(data["labels"][i]) + 1 + i % 9) % 10 for i in idx]
        return images, targets, [f"test_digits[{i}]" for i in idx]
    import skimage.data

    photos = {"chelsea": ("half track", skimage.data.chelsea), "coffee": ("Shih-Tzu", skimage.data.coffee)}
    names = list(photos)
    return ([photos[n][1]() / 255.0 for n in names], [zoo.resolve_class(photos[n][0], "imagenet") for n in names], names)


def relabeller(group: Group, backend: str) -> Relabeller:
    if group.model == "digits":
        prototxt, weights = testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS
    else:
        prototxt, weights = testmodels.random_model(group.model)
    spec = zoo.get(group.model)
    model = Model(load_classifier(prototxt, weights, backend=backend), spec.input, group.model,
                  zoo.class_names(spec.classes), spec.classes)
    return Relabeller(model, max_distortion=group.max_distortion, max_iter=group.max_iter, batch_size=group.batch_size)


def run(group: Group, backend: str) -> list[dict[str, Any]]:
    images, targets, sources = inputs(group)
    results = relabeller(group, backend).run_batch(images, targets)
    out = []
    for src, r in zip(sources, results):
        top = np.argsort(-r.probs)[:5]
        out.append({
            "source": src, "target": r.target, "stop": r.stop, "success": r.success,
            "iterations": r.iterations, "distortion": r.distortion,
            "final_label": r.final_label, "target_prob": r.target_prob,
            "top5": [[int(i), float(r.probs[i])] for i in top], "uint8_label": r.uint8_label,
        })
    return out
