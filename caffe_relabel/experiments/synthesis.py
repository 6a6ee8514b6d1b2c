"""Section 3.2, Figure 4: relabelling Gaussian noise images into confidently classified ones.

The paper relabelled a random Gaussian image to class 348 with distortion
0.03, "much higher than typically required to relabel natural images".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from caffe_relabel.experiments import plots
from caffe_relabel.models.model import Model
from caffe_relabel.relabel.relabeller import Relabeller, RelabelResult
from caffe_relabel.errors import ArgumentError
from caffe_relabel.relabel.settings import RelabelSettings
from caffe_relabel.experiments.common import UNCAPPED, ModelRef, Stats, open_model

PAPER_DISTORTION = 0.03
NOISE_MEAN = 0.5


@dataclass(frozen=True)
class SynthesisResult:
    model: str
    targets: list[int]
    success_rate: float
    distortion: Stats  # of the successes
    iterations: Stats
    target_prob: Stats  # final probability of the target, successes
    figure: Path


def noise_image(model: Model, seed: int, sigma: float) -> np.ndarray:
    """A seeded Gaussian image at the network's input size, clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    c, h, w = model.input.shape
    return np.clip(rng.normal(NOISE_MEAN, sigma, size=(h, w, c)), 0.0, 1.0)


def run_synthesis(
    model: ModelRef = "digits",
    out_dir: "str | os.PathLike[str]" = "results",
    targets: Optional[Sequence["int | str"]] = None,
    n_targets: Optional[int] = None,
    sigma: float = 0.2,
    settings: RelabelSettings = UNCAPPED,
    seed: int = 0,
    backend: str = "auto",
) -> SynthesisResult:
    """Relabel one noise image per target (every class, ``targets``, or ``n_targets`` sampled)."""
    if not sigma > 0:
        raise ArgumentError(f"expected sigma > 0, got {sigma}")
    net = open_model(model, backend)
    classes = [net.resolve(t) for t in targets] if targets is not None else list(range(net.classifier.num_classes))
    if n_targets is not None and n_targets < len(classes):
        classes = sorted(np.random.default_rng(seed).choice(classes, size=n_targets, replace=False).tolist())
    images = [noise_image(net, seed + i, sigma) for i in range(len(classes))]
    relabeller = Relabeller(net, settings)
    results = relabeller.run_batch(images, classes)
    ok = [r for r in results if r.success]
    # Show one that actually moved: noise can already carry its target.
    shown = next((r for r in results if r.success and r.iterations > 0), results[0])
    figure = _figure4(net, shown, Path(out_dir) / f"figure4_{net.name}.png")
    return SynthesisResult(
        net.name, classes, len(ok) / len(results), Stats.of([r.distortion for r in ok]),
        Stats.of([r.iterations for r in ok]), Stats.of([r.target_prob for r in ok]), figure,
    )


def _figure4(net: Model, r: RelabelResult, path: Path) -> Path:
    names = net.class_names or tuple(str(i) for i in range(net.classifier.num_classes))
    images = plots.relabel_figure(
        [plots.RelabelRow(r.original, r.image, net.class_name(r.original_label), r.original_prob,
                          net.class_name(r.final_label), r.final_prob, r.distortion)],
        path.with_name(path.stem + "_images.png"), f"Figure 4 ({net.name}): Gaussian noise relabelled")
    marks = (r.original_label, r.target)
    return plots.stack_figures(
        [images, plots.probability_figure(
            [plots.ProbPanel("noise image", r.original_probs, marks),
             plots.ProbPanel(f"relabelled to {plots.short_name(net.class_name(r.target))}", r.probs, marks)],
            names, path.with_name(path.stem + "_probs.png"), "class probabilities before and after")],
        path)
