"""Labelled source images for the experiments, in every layout ImageNet comes in.

A source set is one of:

- a folder of class subfolders named by class index, WordNet id or class name
  (ILSVRC-2012's training layout: ``n01440764/n01440764_10026.JPEG``);
- a flat folder of files named ``<WordNet id or class index>_...``
  (``n01440764_tench.JPEG``, as ImageNet samples name them); a folder may mix
  both;
- a ``path label`` list (paths relative to the list file, as in Caffe's
  ``val.txt``), or a validation folder holding its :data:`VAL_LIST` beside
  ``ILSVRC2012_val_*.JPEG``;
- with no path, an offline default: the held-out test digits for the
  ``digits`` label set, and for ImageNet models every natural photo bundled
  with scikit-image, scikit-learn and matplotlib that shows an ImageNet class,
  each whole and in five crops.

A class or file that cannot be used is one error naming the file (and the
line of a list). Every source has a stable id, so a sweep stopped in one
process can be resumed in another.
"""

from __future__ import annotations

import os
import re
import stat
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from caffe_relabel.files.bounded_read import read_bounded
from caffe_relabel.errors import ArgumentError, CaffeRelabelError, ModelNotFoundError
from caffe_relabel.images.files import IMAGE_SUFFIXES
from caffe_relabel.models.model import Model

#: The ``path label`` list a validation folder holds beside its images (Caffe's name for ILSVRC-2012's).
VAL_LIST = "val.txt"

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
        if p.is_dir() and (p / VAL_LIST).is_file():
            sources = _list_sources(p / VAL_LIST, model)
        elif p.is_dir():
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
    """Class subfolders (named by index, WordNet id or class name) and ``<class>_*`` files, in one folder."""
    label = _labeller(model)
    sources = []
    for entry in _entries(root):
        if entry.is_dir():
            sub = Path(entry.path)
            cls = label(entry.name, f"{sub}: class folder")
            sources.extend(Source(f.path, f.path, cls) for f in _entries(sub) if _is_image(f.name))
        elif _is_image(entry.name):
            sources.append(Source(entry.path, entry.path, label(_name_class(entry), f"{entry.path}: file name")))
    return sources


def _entries(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


_NAMED_CLASS = re.compile(r"(n\d+|\d+)_")


def _name_class(entry: os.DirEntry) -> str:
    """The class a flat folder's file is named by: ``n01440764_tench.JPEG`` (as ImageNet names them) or ``3_a.png``."""
    m = _NAMED_CLASS.match(entry.name)
    if m is None:
        raise CaffeRelabelError(
            f"{entry.path}: expected a file name '<WordNet id or class index>_...', e.g. n01440764_tench.JPEG "
            f"(or class subfolders, or a {VAL_LIST} of 'path label' lines beside the images)")
    return m.group(1)


def _list_sources(list_file: Path, model: Model) -> list[Source]:
    """A ``path label`` list, checked line by line as it is read: the first bad line stops it, named."""
    data = read_bounded(list_file, "image list", "list", CaffeRelabelError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CaffeRelabelError(f"{list_file}: image list is not UTF-8 text (byte {e.start})") from None
    label = _labeller(model)
    real_dirs: dict[str, str] = {}
    base = os.path.realpath(list_file.parent)
    sources = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:  # the line is named only on an error: formatting it for each of a million lines costs seconds
            if "\0" in line:
                raise CaffeRelabelError("the line holds a NUL byte; expected 'path label'")
            parts = line.rsplit(None, 1)
            if len(parts) != 2:
                raise CaffeRelabelError(f"expected 'path label', got {line.strip()!r}")
            image = _real_image(base, parts[0].strip(), real_dirs)
            sources.append(Source(image, image, label(parts[1], "label")))
        except CaffeRelabelError as e:
            raise type(e)(f"{list_file}:{n}: {e}") from None
    return sources


def _real_image(base: str, path: str, real_dirs: dict[str, str]) -> str:
    """``os.path.realpath`` of ``path`` (relative to ``base``), an existing regular file, with one lstat.

    Each folder is resolved once, not every line: a million-line list is checked in
    about a second this way, where resolving every line took over a minute.
    """
    joined = path if path.startswith("/") else f"{base}/{path}"
    try:
        st = os.lstat(joined)
        link = stat.S_ISLNK(st.st_mode)
        if link:
            st = os.stat(joined)
    except OSError as e:
        raise CaffeRelabelError(f"{joined}: cannot use the image ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise CaffeRelabelError(f"{joined}: not a regular file; expected an image")
    folder, _, name = joined.rpartition("/")
    if link or name in ("", ".", ".."):
        return os.path.realpath(joined)
    if folder not in real_dirs:
        real_dirs[folder] = os.path.realpath(folder or "/")
    return os.path.join(real_dirs[folder], name)


def _labeller(model: Model) -> Callable[[str, str], int]:
    """``label(text, where)``: :meth:`Model.resolve` once per distinct label text, its error naming ``where``."""
    known: dict[str, int] = {}

    def label(text: str, where: str) -> int:
        if text not in known:
            try:
                known[text] = model.resolve(text)
            except (ModelNotFoundError, ArgumentError) as e:  # a label in a file: the file is what is wrong
                raise ModelNotFoundError(f"{where}: {e}") from None
        return known[text]

    return label


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
