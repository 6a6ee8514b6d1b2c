"""Labelled source images for the experiments.

A source set is either a folder in ImageNet validation layout (one
subfolder per class, named by WordNet id, class index or class name), a
list file with one ``path label`` per line (paths relative to the list
file, as in Caffe's ``val.txt``), or, with no path, an offline default:
the held-out test digits for the ``digits`` label set, and for ImageNet
models every natural photo bundled with scikit-image, scikit-learn and
matplotlib that shows an ImageNet class, each whole and in five crops.
Every source has a stable id, so a sweep stopped in one process can be
resumed in another.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from caffe_relabel.files.bounded_read import read_bounded
from caffe_relabel.errors import ArgumentError, CaffeRelabelError, ModelNotFoundError
from caffe_relabel.models.model import Model

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp", ".jpe"}

# The natural photos bundled with scikit-image, scikit-learn and matplotlib,
# and the ImageNet class each shows; EfficientNet-Lite0 ranks it in its top 3
# on the whole photo (tests/experiments/test_sources.py checks). Left out: the
# photos no ImageNet class describes (skimage's astronaut and coins,
# matplotlib's Minduka_Present_Blue_Pack), skimage.data.cat (chelsea again),
# and those skimage fetches from the web (eagle, lily, skin).
BUNDLED_PHOTOS: dict[str, int] = {
    "skimage:chelsea": 281,  # tabby cat
    "skimage:coffee": 967,  # espresso
    "skimage:rocket": 657,  # missile
    "skimage:stereo_motorcycle_left": 665,  # moped
    "skimage:stereo_motorcycle_right": 665,
    "skimage:camera": 872,  # tripod (grey)
    "skimage:clock": 892,  # wall clock (grey)
    "sklearn:china": 698,  # palace
    "sklearn:flower": 985,  # daisy
    "matplotlib:grace_hopper": 652,  # military uniform
}

# Crops of each photo as (top, left, bottom, right) fractions: the whole
# photo, its centre, and its four corners at 80%, so each class has six
# differently framed images (enough for the SVM's train/test split).
CROPS: dict[str, tuple[float, float, float, float]] = {
    "full": (0.0, 0.0, 1.0, 1.0),
    "centre": (0.125, 0.125, 0.875, 0.875),
    "top-left": (0.0, 0.0, 0.8, 0.8),
    "top-right": (0.0, 0.2, 0.8, 1.0),
    "bottom-left": (0.2, 0.0, 1.0, 0.8),
    "bottom-right": (0.2, 0.2, 1.0, 1.0),
}


@dataclass(frozen=True)
class Source:
    """One labelled image: ``image`` is a path or an H x W x C array in [0, 1]."""

    id: str
    image: Union[str, np.ndarray]
    label: int


def load_sources(
    model: Model,
    path: "Optional[str | os.PathLike[str]]" = None,
    per_class: Optional[int] = None,
    seed: int = 0,
) -> list[Source]:
    """The source set at ``path`` (or the offline default), at most ``per_class`` per class.

    ``per_class`` picks a seeded random subset of each class; the result is
    ordered by class, then id, so the same arguments give the same list.
    """
    if path is None:
        sources = default_sources(model)
    else:
        p = Path(path)
        if p.is_dir():
            sources = _folder_sources(p, model)
        elif p.is_file():
            sources = _list_sources(p, model)
        else:
            raise CaffeRelabelError(f"{p}: no such source folder or list file")
    if not sources:
        raise CaffeRelabelError(f"{path or 'default set'}: no source images found")
    if per_class is not None:
        sources = _sample_per_class(sources, per_class, seed)
    return sorted(sources, key=lambda s: (s.label, s.id))


def default_sources(model: Model) -> list[Source]:
    """The offline set for the model's label set."""
    if model.label_set == "digits":
        from caffe_relabel.models.testmodels import DIGITS_TEST

        data = np.load(DIGITS_TEST)
        return [
            Source(f"digits-test:{i}", im[:, :, None] / 255.0, int(label))
            for i, (im, label) in enumerate(zip(data["images"], data["labels"]))
        ]
    if model.label_set == "imagenet":
        return [Source(f"{name}@{crop}", part, label)
                for name, label in BUNDLED_PHOTOS.items()
                for crop, part in crops(bundled_photo(name)).items()]
    raise CaffeRelabelError(
        f"model {model.name!r} has no offline source set (label set {model.label_set!r}); give a source folder or list file"
    )


def bundled_photo(name: str) -> np.ndarray:
    """One of :data:`BUNDLED_PHOTOS` as an H x W x 3 RGB array in [0, 1] (grey photos repeated in 3 channels)."""
    from caffe_relabel.images.preprocess import load_image

    library, _, photo = name.partition(":")
    if library == "skimage":
        import skimage.data

        if photo.startswith("stereo_motorcycle_"):  # one call gives (left, right, disparity)
            img = skimage.data.stereo_motorcycle()[0 if photo.endswith("left") else 1]
        else:
            img = getattr(skimage.data, photo)()
        return load_image(img)
    if library == "sklearn":
        from sklearn.datasets import load_sample_image

        return load_image(load_sample_image(f"{photo}.jpg"))
    if library == "matplotlib":
        import matplotlib.cbook

        return load_image(matplotlib.cbook.get_sample_data(f"{photo}.jpg", asfileobj=False))
    raise ArgumentError(f"expected a photo of {', '.join(BUNDLED_PHOTOS)}, got {name!r}")


def crops(image: np.ndarray) -> dict[str, np.ndarray]:
    """The :data:`CROPS` of an image (views, no copies)."""
    h, w = image.shape[:2]
    return {name: image[round(t * h):round(b * h), round(l * w):round(r * w)] for name, (t, l, b, r) in CROPS.items()}


def _folder_sources(root: Path, model: Model) -> list[Source]:
    sources = []
    for sub in sorted(d for d in root.iterdir() if d.is_dir()):
        label = _resolve(model, sub.name, f"{sub}: class folder")
        for f in sorted(sub.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                sources.append(Source(str(f), str(f), label))
    return sources


def _list_sources(list_file: Path, model: Model) -> list[Source]:
    sources = []
    data = read_bounded(list_file, "image list", "list", CaffeRelabelError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CaffeRelabelError(f"{list_file}: image list is not UTF-8 text (byte {e.start})") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise CaffeRelabelError(f"{list_file}:{n}: expected 'path label', got {line.strip()!r}")
        image = (list_file.parent / parts[0].strip()).resolve()
        sources.append(Source(str(image), str(image), _resolve(model, parts[1], f"{list_file}:{n}: label")))
    return sources


def _resolve(model: Model, label: str, where: str) -> int:
    try:
        return model.resolve(label)
    except (ModelNotFoundError, ArgumentError) as e:  # a label in a file: the file is what is wrong
        raise ModelNotFoundError(f"{where}: {e}") from None


def _sample_per_class(sources: list[Source], per_class: int, seed: int) -> list[Source]:
    if per_class < 1:
        raise ArgumentError(f"expected per_class >= 1, got {per_class}")
    by_class: dict[int, list[Source]] = defaultdict(list)
    for s in sorted(sources, key=lambda s: s.id):
        by_class[s.label].append(s)
    rng = np.random.default_rng(seed)
    picked = []
    for label in sorted(by_class):
        members = by_class[label]
        keep = rng.permutation(len(members))[:per_class] if len(members) > per_class else range(len(members))
        picked.extend(members[i] for i in sorted(keep))
    return picked


def by_class(sources: list[Source]) -> dict[int, list[Source]]:
    """Sources grouped by label."""
    groups: dict[int, list[Source]] = defaultdict(list)
    for s in sources:
        groups[s.label].append(s)
    return dict(groups)
