"""The paper's figures as PNG files (matplotlib, Agg: no display needed).

Every figure says what it shows in its title and on its axes, and names the
class (and probability) on each image, so it reads without a legend.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from caffe_relabel.files.atomic_write import atomic_path

#: Amplification of the pixel difference in Figure 1 (the paper's x10, around mid-grey).
DIFF_GAIN = 10.0


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: "str | os.PathLike[str]") -> Path:
    path = Path(path)
    try:
        with atomic_path(path, "figure") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    finally:
        _plt().close(fig)
    return path


def _show(ax, image: np.ndarray, title: str) -> None:
    img = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    if img.ndim == 3 and img.shape[2] == 1:
        ax.imshow(img[:, :, 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def short_name(name: str, width: int = 22) -> str:
    """The first synonym of a class name ("tabby, tabby cat" -> "tabby"), cut to ``width``."""
    first = name.split(",")[0]
    return first if len(first) <= width else first[: width - 1] + "…"


@dataclass(frozen=True)
class RelabelRow:
    """One relabelling to draw: the images and the labels the network gave them."""

    original: np.ndarray
    relabelled: np.ndarray
    original_label: str
    original_prob: float
    final_label: str
    final_prob: float
    distortion: float


def amplified_difference(relabelled: np.ndarray, original: np.ndarray, gain: float = DIFF_GAIN) -> np.ndarray:
    """Mid-grey plus ``gain`` times the pixel difference, clipped to [0, 1]."""
    return np.clip(0.5 + gain * (np.asarray(relabelled) - np.asarray(original)), 0.0, 1.0)


def relabel_figure(rows: Sequence[RelabelRow], path: "str | os.PathLike[str]", title: str) -> Path:
    """Figure 1: original | amplified difference | relabelled, one row per relabelling."""
    plt = _plt()
    fig, axes = plt.subplots(len(rows), 3, figsize=(8, 2.9 * len(rows)), squeeze=False)
    for ax, row in zip(axes, rows):
        _show(ax[0], row.original, f"original: {short_name(row.original_label)}\np = {row.original_prob:.3f}")
        _show(ax[1], amplified_difference(row.relabelled, row.original),
              f"difference x{DIFF_GAIN:g} (around grey)\ndistortion {row.distortion:.5f}")
        _show(ax[2], row.relabelled, f"relabelled: {short_name(row.final_label)}\np = {row.final_prob:.3f}")
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


@dataclass(frozen=True)
class ProbPanel:
    """One probability vector to draw, with the classes to point out."""

    title: str
    probs: np.ndarray
    marks: tuple[int, ...] = ()


def probability_figure(panels: Sequence[ProbPanel], class_names: Sequence[str], path: "str | os.PathLike[str]",
                       title: str, columns: int = 2) -> Path:
    """Figure 2/4: class probabilities, one panel per image, the marked classes named."""
    plt = _plt()
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 2.8 * rows), squeeze=False)
    k = len(class_names)
    for ax, panel in zip(axes.flat, panels):
        xs = np.arange(k)
        ax.bar(xs, panel.probs, width=0.8 if k <= 50 else 1.0, color="0.55")
        placed: list[tuple[int, float, int]] = []  # (class, height, text offset) of the labels drawn so far
        for c in panel.marks:
            ax.bar([c], [panel.probs[c]], width=0.8 if k <= 50 else 4.0, color="tab:red")
            # Labels near either end are aligned inwards so they stay inside the axes.
            align = "left" if c < 0.15 * k else "right" if c > 0.85 * k else "center"
            # Two marked classes close together at similar heights: lift the later label above the earlier one.
            lift = max((o + 11 for x, h, o in placed if abs(x - c) < 0.25 * k and abs(h - panel.probs[c]) < 0.1),
                       default=3)
            placed.append((c, float(panel.probs[c]), lift))
            ax.annotate(f"{short_name(class_names[c], 18)} {panel.probs[c]:.2f}", (c, panel.probs[c]),
                        textcoords="offset points", xytext=(0, lift), ha=align if k > 20 else "center",
                        fontsize=8, color="tab:red")
        if k <= 20:
            ax.set_xticks(xs)
            ax.set_xticklabels([short_name(n, 8) for n in class_names], fontsize=8)
        ax.set_ylim(0, 1.15)
        ax.set_xlabel("class")
        ax.set_ylabel("probability")
        ax.set_title(panel.title, fontsize=9)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def gradient_image(grad_hwc: np.ndarray) -> np.ndarray:
    """A gradient shown around mid-grey, scaled so its largest magnitude reaches black or white."""
    g = np.asarray(grad_hwc, dtype=np.float64)
    peak = float(np.abs(g).max())
    return 0.5 + 0.5 * g / peak if peak > 0 else np.full_like(g, 0.5)


def gradient_figure(original: np.ndarray, raw: np.ndarray, path: "str | os.PathLike[str]", title: str) -> Path:
    """Figure 3: the first iteration's raw gradient next to its sign (as the update applies it)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    _show(axes[0], original, "original")
    _show(axes[1], gradient_image(raw), f"(a) raw gradient\n|max| {np.abs(raw).max():.3g}, scaled to fill")
    _show(axes[2], gradient_image(np.sign(raw)), "(b) sgn(gradient)\neach channel in {-1, 0, +1}/255")
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def rate_bars(groups: dict[str, dict[str, float]], path: "str | os.PathLike[str]", title: str,
              ylabel: str = "rate") -> Path:
    """Rates side by side: one group of bars per key of ``groups``, values labelled on the bars."""
    plt = _plt()
    names = list(groups)
    series = list(dict.fromkeys(s for g in groups.values() for s in g))
    fig, ax = plt.subplots(figsize=(max(5, 1.8 * len(names) * max(1, len(series)) / 2), 3.6))
    width = 0.8 / max(1, len(series))
    for j, s in enumerate(series):
        xs = np.arange(len(names)) + (j - (len(series) - 1) / 2) * width
        vals = [groups[n].get(s, np.nan) for n in names]
        bars = ax.bar(xs, vals, width=width, label=s)
        ax.bar_label(bars, labels=[f"{v:.2f}" if np.isfinite(v) else "n/a" for v in vals], fontsize=8)
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names, fontsize=9)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        # Outside the axes, right of the plot: inside, it would cover bars and their labels.
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return _save(fig, path)


def histogram(values: Sequence[float], path: "str | os.PathLike[str]", title: str, xlabel: str,
              line: Optional[float] = None, line_label: str = "") -> Path:
    """A histogram with an optional labelled vertical line (e.g. the distortion cap)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.hist(values, bins=30, color="0.5")
    if line is not None:
        ax.axvline(line, color="tab:red")
        ax.annotate(line_label, (line, ax.get_ylim()[1] * 0.9), color="tab:red", fontsize=8,
                    xytext=(3, 0), textcoords="offset points")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def stack_figures(parts: Sequence["str | os.PathLike[str]"], path: "str | os.PathLike[str]") -> Path:
    """Several PNGs one above the other in one PNG (white-padded to the widest); the parts are removed."""
    import matplotlib.image as mpimg

    images = [mpimg.imread(str(p))[:, :, :3] for p in parts]
    width = max(im.shape[1] for im in images)
    padded = [np.pad(im, ((0, 0), (0, width - im.shape[1]), (0, 0)), constant_values=1.0) for im in images]
    path = Path(path)
    with atomic_path(path, "figure") as tmp:
        mpimg.imsave(str(tmp), np.concatenate(padded, axis=0), format=path.suffix.lstrip(".") or "png")
    for p in parts:
        if Path(p) != path:
            Path(p).unlink()
    return path
