"""Section 3, Figures 1 and 2: two exemplars swap labels; distortion over N relabellings.

The paper swapped a 'Shih-Tzu' and a 'half-track' on GoogLeNet (distortions
0.00864 and 0.00712) and found a mean distortion of 0.00814 over 30
relabellings, iterated until the target label was reached.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from caffe_relabel.experiments import plots
from caffe_relabel.version import __version__
from caffe_relabel.errors import ArgumentError, CaffeRelabelError
from caffe_relabel.models.model import Model
from caffe_relabel.relabel.relabeller import Relabeller, RelabelResult
from caffe_relabel.relabel.settings import RelabelSettings
from caffe_relabel.experiments.common import UNCAPPED, ModelRef, Stats, entropy, open_model
from caffe_relabel.experiments.sources import Source, by_class, load_sources
from caffe_relabel.experiments.store import StoredResult
from caffe_relabel.experiments.sweep import iter_pairs, plan_sources

PAPER_MEAN_DISTORTION = 0.00814
PAPER_PAIR_DISTORTIONS = (0.00864, 0.00712)


@dataclass(frozen=True)
class ExamplesResult:
    model: str
    swapped: tuple[StoredResult, StoredResult]  # a relabelling's outcome, as a sweep stores it
    runs: list[StoredResult]
    success_rate: float
    distortion: Stats  # over the successful runs
    iterations: Stats
    entropy_before: Stats  # the paper's "uncertainty", in nats
    entropy_after: Stats
    figure1: Path
    figure2: Path


def run_examples(
    model: ModelRef = "digits",
    out_dir: "str | os.PathLike[str]" = "results",
    sources: "Optional[str | os.PathLike[str]]" = None,
    classes: Optional[Sequence["int | str"]] = None,
    n: int = 30,
    settings: RelabelSettings = UNCAPPED,
    seed: int = 0,
    backend: str = "auto",
) -> ExamplesResult:
    """Swap the labels of two exemplars (of ``classes``, or two random ones) and relabel ``n`` random pairs."""
    net = open_model(model, backend)
    rng = np.random.default_rng(seed)
    srcs = load_sources(net, sources, seed=seed)
    a, b = _pick_pair(net, srcs, classes, rng)
    pool = list(iter_pairs(plan_sources(srcs, net.classifier.num_classes)))
    picks = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
    jobs = [(a, b.label), (b, a.label)] + [pool[i] for i in sorted(picks)]
    relabeller = Relabeller(net, settings)
    results = relabeller.run_batch([s.image for s, _ in jobs], [t for _, t in jobs])
    examples = [StoredResult.from_result(s.id, s.label, r, net.name, __version__) for (s, _), r in zip(jobs, results)]
    # Runs that must reach a confident target get their own figures.
    tag = f"{net.name}_conf{settings.confidence:g}" if settings.confidence else net.name
    runs, runs_results = examples[2:], results[2:]
    ok = [r for r in runs_results if r.success]
    out = Path(out_dir)
    return ExamplesResult(
        model=net.name,
        swapped=(examples[0], examples[1]),
        runs=runs,
        success_rate=len(ok) / len(runs) if runs else float("nan"),
        distortion=Stats.of([r.distortion for r in ok]),
        iterations=Stats.of([r.iterations for r in ok]),
        entropy_before=Stats.of([entropy(r.original_probs) for r in ok]),
        entropy_after=Stats.of([entropy(r.probs) for r in ok]),
        figure1=_figure1(net, results[:2], out / f"figure1_{tag}.png", _stopping(settings.confidence)),
        figure2=_figure2(net, results[:2], out / f"figure2_{tag}.png", _stopping(settings.confidence)),
    )


def _pick_pair(net: Model, srcs: list[Source], classes: Optional[Sequence["int | str"]],
               rng: np.random.Generator) -> tuple[Source, Source]:
    groups = by_class(srcs)
    if classes is None:
        if len(groups) < 2:
            raise CaffeRelabelError("the source set holds one class only; two are needed to swap labels")
        chosen = rng.choice(sorted(groups), size=2, replace=False)
    else:
        if len(classes) != 2:
            raise ArgumentError(f"expected two classes to swap, got {len(classes)}")
        chosen = [net.resolve(c) for c in classes]
        missing = [net.class_name(c) for c in chosen if c not in groups]
        if missing:
            raise CaffeRelabelError(f"no source image of class {', '.join(missing)} in the source set")
    first, second = (groups[int(c)][rng.integers(len(groups[int(c)]))] for c in chosen)
    return first, second


def _stopping(confidence: float) -> str:
    """How the runs stopped, for the figure titles: the two Figure 2 variants must not read alike."""
    return f"stopped at target p >= {confidence:g}" if confidence else "stopped at the first top-1 step"


def _figure1(net: Model, pair: list[RelabelResult], path: Path, stopping: str) -> Path:
    rows = [plots.RelabelRow(r.original, r.image, net.class_name(r.original_label), r.original_prob,
                             net.class_name(r.final_label), r.final_prob, r.distortion) for r in pair]
    return plots.relabel_figure(rows, path, f"Figure 1 ({net.name}): two exemplars with their labels swapped, {stopping}")


def _figure2(net: Model, pair: list[RelabelResult], path: Path, stopping: str) -> Path:
    names = net.class_names or tuple(str(i) for i in range(net.classifier.num_classes))
    panels = []
    for r in pair:
        marks = (r.original_label, r.target)
        panels.append(plots.ProbPanel(f"before: {plots.short_name(net.class_name(r.original_label))}", r.original_probs, marks))
        panels.append(plots.ProbPanel(f"after, target {plots.short_name(net.class_name(r.target))}", r.probs, marks))
    return plots.probability_figure(panels, names, path, f"Figure 2 ({net.name}): class probabilities before and after, {stopping}")
