"""Section 3.1's limits: transformations undo relabelling, relabelling does not transfer,
the first gradient alone does not relabel; and Figure 3 (raw versus sign gradient).

Each transformation is also applied to the original images as a control: a
"reverted" rate means little if the transformation alone changes the label.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from caffe_relabel.experiments import plots
from caffe_relabel.images.distortion import blob_distortion
from caffe_relabel.errors import ArgumentError
from caffe_relabel.models.model import Model
from caffe_relabel.images.preprocess import image_to_blob
from caffe_relabel.relabel.relabeller import Relabeller, RelabelResult
from caffe_relabel.relabel.settings import RelabelSettings
from caffe_relabel.experiments.common import UNCAPPED, ModelRef, open_model
from caffe_relabel.experiments.sources import load_sources
from caffe_relabel.experiments.sweep import iter_pairs, plan_sources
from caffe_relabel.models import zoo
from caffe_relabel.experiments.transfer_models import DIGITS_MLP, open_classifier

CROP_FRACTION = 0.875  # the 224-of-256 centre crop's proportion


@dataclass(frozen=True)
class TransformRates:
    """What a transformation of the relabelled images gives back."""

    keeps_target: float
    reverts: float  # back to the original label
    control_keeps_label: float  # the original image, transformed, keeps its label


@dataclass(frozen=True)
class TransferRates:
    """Relabelled on model A, classified by model B."""

    to: str
    carries_target: float
    original_label: float
    control_accuracy: float  # B on the untouched originals


@dataclass(frozen=True)
class AblationRates:
    """The iterative rule against one step along the first gradient of equal distortion."""

    iterative_success: float
    one_step_success: float
    one_step_misclassified: float  # left the original label, any way


@dataclass(frozen=True)
class LimitationsResult:
    model: str
    relabelled: int  # successful relabellings the transformation and transfer rates are over
    pairs: int
    transforms: dict[str, TransformRates]
    transfer: Optional[TransferRates]
    ablation: AblationRates
    figures: dict[str, Path]


# A converted EfficientNet-Lite is tested on another one (a different real ImageNet network).
_OTHER_LITE = {"efficientnet_lite0": "efficientnet_lite1", "efficientnet_lite1": "efficientnet_lite0",
               "efficientnet_lite2": "efficientnet_lite0"}


def default_transfer(model: Model) -> Optional[str]:
    """The second classifier used when none is named: the MLP for digits, another converted EfficientNet-Lite
    for one (when its weights are present), none otherwise."""
    if model.label_set == "digits":
        return DIGITS_MLP
    other = _OTHER_LITE.get(model.name)
    return other if other is not None and zoo.find_weights(zoo.get(other)) is not None else None


def run_limitations(
    model: ModelRef = "digits",
    out_dir: "str | os.PathLike[str]" = "results",
    sources: "Optional[str | os.PathLike[str]]" = None,
    n: int = 20,
    settings: RelabelSettings = UNCAPPED,
    seed: int = 0,
    shift: Optional[int] = None,
    transfer_to: Optional[str] = None,
    backend: str = "auto",
) -> LimitationsResult:
    """Relabel ``n`` random (source, target) pairs and test each limit on them."""
    net = open_model(model, backend)
    height, width = net.input.size
    if shift is not None and not 1 <= shift < min(height, width):
        # The translated copy is made at the input's size: a larger shift would only move the image out of it.
        raise ArgumentError(f"expected 1 <= shift < {min(height, width)} (the input is {height} x {width}), got {shift}")
    rng = np.random.default_rng(seed)
    pool = list(iter_pairs(plan_sources(load_sources(net, sources, seed=seed), net.classifier.num_classes)))
    jobs = [pool[i] for i in sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False))]
    relabeller = Relabeller(net, settings)
    results = relabeller.run_batch([s.image for s, _ in jobs], [t for _, t in jobs])
    ok = [r for r in results if r.success]
    shift = shift if shift is not None else max(1, round(net.input.size[1] * 4 / 224))
    transforms = {
        f"crop {CROP_FRACTION:g}": lambda im: _crop(im, CROP_FRACTION),
        f"shift {shift}px": lambda im: _translate(im, shift),
        "mirror": lambda im: im[:, ::-1],
    }
    rates = {name: _transform_rates(net, ok, f) for name, f in transforms.items()}
    target_net = transfer_to or default_transfer(net)
    transfer = _transfer(ok, target_net, net.classifier.backend_name) if target_net and ok else None
    ablation = _ablation(net, relabeller, results)
    out = Path(out_dir)
    figures = {
        "transforms": plots.rate_bars(
            {k: {"relabelled keeps target": v.keeps_target, "relabelled reverts": v.reverts,
                 "original keeps label (control)": v.control_keeps_label} for k, v in rates.items()},
            out / f"limits_transforms_{net.name}.png",
            f"Section 3.1 ({net.name}): transformed relabelled images, {len(ok)} relabellings"),
        "ablation": plots.rate_bars(
            {"iterative sgn rule": {"relabelled": ablation.iterative_success},
             "first gradient only,\nequal distortion": {"relabelled": ablation.one_step_success,
                                                       "misclassified": ablation.one_step_misclassified}},
            out / f"limits_ablation_{net.name}.png",
            f"Section 3.1 ({net.name}): iterative rule vs one step, {len(results)} pairs"),
        "figure3": _figure3(net, jobs[0][0].image, jobs[0][1], out / f"figure3_{net.name}.png"),
    }
    if transfer is not None:
        figures["transfer"] = plots.rate_bars(
            {f"{net.name} -> {transfer.to}": {"carries target": transfer.carries_target,
                                              "original label": transfer.original_label,
                                              "accuracy on originals (control)": transfer.control_accuracy}},
            out / f"limits_transfer_{net.name}.png", f"Section 3.1: transfer of {len(ok)} relabelled images")
    return LimitationsResult(net.name, len(ok), len(results), rates, transfer, ablation, figures)


def _crop(image: np.ndarray, fraction: float) -> np.ndarray:
    from skimage.transform import resize

    h, w = image.shape[:2]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    return np.clip(resize(image[top:top + ch, left:left + cw], (h, w), order=1, mode="edge"), 0.0, 1.0)


def _translate(image: np.ndarray, pixels: int) -> np.ndarray:
    # Down and right, with the edge repeated into the uncovered border.
    padded = np.pad(image, ((pixels, 0), (pixels, 0), (0, 0)), mode="edge")
    return padded[: image.shape[0], : image.shape[1]]


# Samples per forward or backward outside the relabelling loop: memory stays that of a small batch, whatever n.
_BATCH = 16


def _labels(net: Model, images: list) -> np.ndarray:
    return _forward_labels(net, np.stack([image_to_blob(im, net.input) for im in images]))


def _forward_labels(net: Model, blobs: np.ndarray) -> np.ndarray:
    return np.concatenate([net.classifier.forward(blobs[i:i + _BATCH]) for i in range(0, len(blobs), _BATCH)]).argmax(1)


def _transform_rates(net: Model, ok: list[RelabelResult], f: Callable) -> TransformRates:
    if not ok:
        return TransformRates(float("nan"), float("nan"), float("nan"))
    moved = _labels(net, [f(r.image) for r in ok])
    control = _labels(net, [f(r.original) for r in ok])
    return TransformRates(
        float(np.mean([m == r.target for m, r in zip(moved, ok)])),
        float(np.mean([m == r.original_label for m, r in zip(moved, ok)])),
        float(np.mean([c == r.original_label for c, r in zip(control, ok)])),
    )


def _transfer(ok: list[RelabelResult], name: str, backend: str) -> TransferRates:
    probs = open_classifier(name, backend)
    moved = probs([r.image for r in ok]).argmax(1)
    control = probs([r.original for r in ok]).argmax(1)
    return TransferRates(
        name,
        float(np.mean([m == r.target for m, r in zip(moved, ok)])),
        float(np.mean([m == r.original_label for m, r in zip(moved, ok)])),
        float(np.mean([c == r.original_label for c, r in zip(control, ok)])),
    )


def _ablation(net: Model, relabeller: Relabeller, results: list[RelabelResult]) -> AblationRates:
    """One step along sgn(first gradient), scaled to the distortion the iterative run ended with."""
    spec = net.input
    x0 = np.stack([image_to_blob(r.original, spec) for r in results])
    targets = [r.target for r in results]
    direction = np.sign(np.concatenate([net.classifier.loss_and_gradient(x0[i:i + _BATCH], targets[i:i + _BATCH]).grad
                                        for i in range(0, len(x0), _BATCH)]))
    unit = blob_distortion(direction, np.zeros_like(direction), spec.pixel_unit)
    scale = np.array([r.distortion for r in results]) / np.where(unit > 0, unit, 1.0)
    low, high = (b.astype(np.float32) for b in spec.blob_bounds())
    x1 = np.clip(x0 - scale[:, None, None, None].astype(np.float32) * direction, low, high)
    labels = _forward_labels(net, x1)
    return AblationRates(
        float(np.mean([r.success for r in results])),
        float(np.mean([l == r.target for l, r in zip(labels, results)])),
        float(np.mean([l != r.original_label for l, r in zip(labels, results)])),
    )


def _figure3(net: Model, image, target: int, path: Path) -> Path:
    from caffe_relabel.images.preprocess import fit, load_image

    original = fit(load_image(image), net.input)
    grad = net.classifier.loss_and_gradient(image_to_blob(original, net.input)[None], [target]).grad[0]
    hwc = grad.transpose(1, 2, 0)
    if net.input.channel_order == "BGR":
        hwc = hwc[:, :, ::-1]
    return plots.gradient_figure(original, hwc, path, f"Figure 3 ({net.name}): first-iteration gradient toward "
                                 f"'{plots.short_name(net.class_name(target))}'")
